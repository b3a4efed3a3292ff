//! # cineflow-core
//!
//! The core of cineflow: storyboards and their segments (read from CineFlow's JSON), runs and
//! tasks with guarded state machines, the [`VideoProvider`], [`Store`] and [`ArtifactSink`]
//! traits, and the [`Orchestrator`] that submits, polls, downloads and records every video —
//! durably, and without ever paying twice for one.
//!
//! | feature | what it adds |
//! |---|---|
//! | `testing` | [`MockProvider`](mock::MockProvider): a scriptable provider that serves a real MP4, and the [testing guide](guide) |
//!
//! Guides: [write your own provider](guide::provider) (the contract, [`SubmitState`],
//! reconciliation, the conformance suite) and, with `testing`, testing code that uses cineflow
//! (`MockProvider` under paused time). Types of other crates that appear in this API are
//! re-exported in [`reexports`]; [`async_trait`](macro@async_trait) is the attribute the traits are written with.
//!
//! ```
//! use cineflow_core::{Storyboard, Segment};
//! let sb = Storyboard::from_json(r#"{"segments":[{"segment_index":1,
//!     "prompt_text":"A city at night.","asset":{"scene":"Future City"},
//!     "director_intent":"Establishing shot."}]}"#)?;
//! assert_eq!(
//!     sb.segments[0].full_prompt(),
//!     "A city at night. [Scene: Future City] (Director Note: Establishing shot.)"
//! );
//! # Ok::<(), cineflow_core::Error>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config_file;
pub mod error;
pub mod error_code;
pub mod events;
pub mod film;
pub mod guide;
pub mod ids;
pub mod media;
#[cfg(feature = "testing")]
pub mod mock;
pub mod orchestrator;
mod payload;
pub mod prompt;
pub mod provider;
mod setters;
pub use provider::callback;
mod provider_error;
pub mod range;
pub mod router;
pub mod run;
pub mod sink;
pub mod store;
pub mod storyboard;
pub mod task;
pub mod usage;

pub use error::{Error, ErrorKind, Result, Violation};
pub use error_code::ErrorCode;
pub use events::{Event, EventKind};
pub use ids::{ModelId, ProviderId, RunId, SegmentId, StoryboardId, TaskId};
pub use media::{
    AspectRatio, ImageKind, ImageRef, MediaKind, MediaRef, MediaRole, Orientation, Resolution,
};
pub use orchestrator::{
    CallbackConfig, Orchestrator, OrchestratorBuilder, OrchestratorConfig, PollPolicy,
    ReconcilePolicy, RunHandle,
};
pub use payload::VendorPayload;
pub use provider::{
    ByteStream, Capabilities, Durations, GenerationRequest, JobQuery, JobState, JobStatus,
    ModelCapabilities, PolledJobs, ProviderError, ProviderJob, ServiceTier, SubmitState,
    VideoAsset, VideoProvider, VideoProviderExt,
};
pub use range::SegmentRange;
pub use router::{
    DEFAULT_MAX_CONCURRENT_CALLS, Price, ProviderSettings, RouteConfig, Router, RouterConfig,
    Strategy,
};
pub use run::{Run, RunCounts, RunSpec, RunStatus};
pub use sink::{ArtifactKey, ArtifactSink, FrameFormat, LocalDirSink, MemorySink, StoredVideo};
pub use store::{MemoryStore, Page, PageRequest, RunQuery, SortOrder, Store, TaskQuery, TaskSort};
pub use storyboard::{
    BibleCharacter, Chain, Character, Continuity, Segment, SegmentAsset, SegmentPatch, Storyboard,
    VideoOptions,
};
pub use task::{
    Artifact, Attempt, AttemptOutcome, ChainedFrame, FrameOrigin, Lease, ModelAlias, Task,
    TaskError, TaskStatus,
};
pub use usage::{AttemptCost, Usage};

/// The attribute that writes [`VideoProvider`], [`Store`] and [`ArtifactSink`] impls with
/// plain `async fn`s (re-exported from [`async-trait`](https://docs.rs/async-trait), the version
/// this crate's traits are built with).
///
/// ```
/// use cineflow_core::{async_trait, ArtifactKey, ArtifactSink, ByteStream, StoredVideo};
///
/// #[derive(Debug)]
/// struct Nowhere;
///
/// #[async_trait]
/// impl ArtifactSink for Nowhere {
///     async fn put_video(
///         &self,
///         _key: &ArtifactKey,
///         _body: ByteStream,
///     ) -> cineflow_core::Result<StoredVideo> {
///         Err(cineflow_core::Error::Config("nowhere stores nothing".into()))
///     }
///
///     async fn put_sidecar(
///         &self,
///         _key: &ArtifactKey,
///         _sidecar: &serde_json::Value,
///     ) -> cineflow_core::Result<String> {
///         Ok(String::new())
///     }
/// }
/// ```
#[doc(no_inline)]
pub use async_trait::async_trait;

/// The crates whose types appear in this crate's public API, at the versions it is built with:
/// name them from here instead of guessing a version for your own `Cargo.toml`.
///
/// | crate | where its types appear |
/// |---|---|
/// | [`async_trait`](mod@async_trait) | the traits ([`VideoProvider`], [`Store`], [`ArtifactSink`]) |
/// | [`bytes`] | [`ByteStream`] chunks, [`ArtifactSink::put_last_frame`] |
/// | [`futures`] | [`ByteStream`] is a [`futures::Stream`]; [`RunHandle::events`] |
/// | [`serde_json`] | vendor payloads ([`JobStatus::raw`]), sidecars, `extra` request fields |
/// | [`time`] | every timestamp ([`ProviderJob::submitted_at`], [`JobQuery`]) |
/// | [`tokio`] | [`Orchestrator::subscribe`]'s `broadcast::Receiver` |
/// | [`uuid`] | the ids' [`from_uuid`](TaskId::from_uuid) / [`as_uuid`](TaskId::as_uuid) |
pub mod reexports {
    #[doc(no_inline)]
    pub use async_trait;
    #[doc(no_inline)]
    pub use bytes;
    #[doc(no_inline)]
    pub use futures;
    #[doc(no_inline)]
    pub use serde_json;
    #[doc(no_inline)]
    pub use time;
    #[doc(no_inline)]
    pub use tokio;
    #[doc(no_inline)]
    pub use uuid;
}

/// Compile-time checks: the traits stay dyn-compatible and the handles stay thread-safe.
const _: () = {
    const fn assert_send_sync<T: ?Sized + Send + Sync>() {}
    assert_send_sync::<dyn VideoProvider>();
    assert_send_sync::<dyn Store>();
    assert_send_sync::<dyn ArtifactSink>();
    assert_send_sync::<Orchestrator>();
    assert_send_sync::<ProviderError>();
    assert_send_sync::<Error>();
};
