//! The crate's one error type.

use std::fmt;

use crate::provider_error::ProviderError;

/// A result with [`Error`] as its default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A boxed error cause, kept as the [`source`](std::error::Error::source) of an [`Error`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// One violation found while validating input, located by its JSON path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// Where the violation is, e.g. `segments[3].duration_seconds` (or `$` for the document).
    pub path: String,
    /// What is wrong there.
    pub message: String,
}

impl Violation {
    pub(crate) fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

fn join_violations(v: &[Violation]) -> String {
    v.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Everything that can go wrong in cineflow-core and the stores and sinks built on it.
///
/// Match on [`Error::kind`] for decisions; the variants carry details for humans.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A storyboard document failed validation; every violation names its JSON path.
    #[error("invalid storyboard: {}", join_violations(.violations))]
    InvalidStoryboard {
        /// All violations found, in document order.
        violations: Vec<Violation>,
    },
    /// A segment range such as `1-3,5` had parts that are not numbers or ranges.
    #[error("invalid segment range {input:?}: bad part(s) {}", .bad_parts.join(", "))]
    InvalidRange {
        /// The whole input.
        input: String,
        /// Each part that could not be understood, as written.
        bad_parts: Vec<String>,
    },
    /// An id or slug did not have the expected form.
    #[error("invalid {kind} {value:?}: {reason}")]
    InvalidId {
        /// What kind of id was expected.
        kind: &'static str,
        /// The rejected value (truncated).
        value: String,
        /// Why it was rejected.
        reason: String,
    },
    /// An argument or configuration field was out of range or malformed.
    #[error("invalid {field}: {reason}")]
    InvalidInput {
        /// The field, e.g. `gen_count`.
        field: String,
        /// Why it was rejected.
        reason: String,
    },
    /// A state machine refused a move (e.g. retrying a running task).
    #[error("illegal {entity} transition from {from} to {to}")]
    IllegalTransition {
        /// `task` or `run`.
        entity: &'static str,
        /// The current state.
        from: String,
        /// The requested state.
        to: String,
    },
    /// The requested record does not exist.
    #[error("{entity} {id} not found")]
    NotFound {
        /// What was looked up (`task`, `run`, …).
        entity: &'static str,
        /// Its id.
        id: String,
    },
    /// A compare-and-swap lost: the record changed since it was read.
    #[error("conflict on {entity} {id}: {reason}")]
    Conflict {
        /// What was written.
        entity: &'static str,
        /// Its id.
        id: String,
        /// What differed (e.g. expected and actual revision).
        reason: String,
    },
    /// A write was fenced off: the writer no longer holds the task's lease.
    #[error("lease on task {task} is not held by {owner}")]
    LeaseLost {
        /// The task.
        task: String,
        /// The worker that tried to write.
        owner: String,
    },
    /// The storage backend failed (I/O, database, serialization).
    #[error("store backend error: {message}")]
    Backend {
        /// What was being done.
        message: String,
        /// The underlying cause.
        #[source]
        source: Option<BoxError>,
    },
    /// Writing an artifact (video or sidecar) failed.
    #[error("artifact sink error: {message}")]
    Sink {
        /// What was being written (paths are the sink's own, never user input).
        message: String,
        /// The underlying cause.
        #[source]
        source: Option<BoxError>,
    },
    /// A provider call failed.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// No configured provider can serve a request.
    #[error("no provider for model {model}: {reason}")]
    NoProvider {
        /// The logical model.
        model: String,
        /// Why each candidate was excluded.
        reason: String,
    },
    /// The orchestrator or a component was misconfigured.
    #[error("configuration error: {0}")]
    Config(String),
    /// A media tool (`ffmpeg`, `ffprobe`) or a media file it worked on failed.
    #[error("media error: {message}")]
    Media {
        /// What was being done, and what the tool said.
        message: String,
        /// The underlying cause.
        #[source]
        source: Option<BoxError>,
    },
}

/// The category of an [`Error`], for programmatic decisions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input: storyboard, range, id or argument.
    InvalidInput,
    /// An illegal state transition.
    IllegalTransition,
    /// The record does not exist.
    NotFound,
    /// A compare-and-swap conflict.
    Conflict,
    /// A fenced write by a worker that lost its lease.
    LeaseLost,
    /// A storage backend failure.
    Backend,
    /// An artifact sink failure.
    Sink,
    /// A provider failure.
    Provider,
    /// No provider can serve the request.
    NoProvider,
    /// Misconfiguration.
    Config,
    /// A media tool or file failed.
    Media,
}

impl Error {
    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidStoryboard { .. }
            | Error::InvalidRange { .. }
            | Error::InvalidId { .. }
            | Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::IllegalTransition { .. } => ErrorKind::IllegalTransition,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::LeaseLost { .. } => ErrorKind::LeaseLost,
            Error::Backend { .. } => ErrorKind::Backend,
            Error::Sink { .. } => ErrorKind::Sink,
            Error::Provider(_) => ErrorKind::Provider,
            Error::NoProvider { .. } => ErrorKind::NoProvider,
            Error::Config(_) => ErrorKind::Config,
            Error::Media { .. } => ErrorKind::Media,
        }
    }

    /// A backend error with a cause.
    pub fn backend(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Backend {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A media-tool error with a cause.
    pub fn media(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Media {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// A sink error with a cause.
    pub fn sink(message: impl Into<String>, source: impl Into<BoxError>) -> Self {
        Error::Sink {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An invalid-input error for a named field.
    pub fn invalid_input(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    /// A not-found error for an entity (`task`, `run`, …) and its id.
    pub fn not_found(entity: &'static str, id: impl ToString) -> Self {
        Error::NotFound {
            entity,
            id: id.to_string(),
        }
    }
}
