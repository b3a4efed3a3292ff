//! Reading and writing configuration files in JSON or TOML, chosen by the file's extension.

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// A configuration file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    Json,
    Toml,
}

impl Format {
    /// The format named by `path`'s extension (`.json` or `.toml`, any case).
    pub(crate) fn of_path(what: &str, path: &Path) -> Result<Self> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match ext.as_deref() {
            Some("json") => Ok(Format::Json),
            Some("toml") => Ok(Format::Toml),
            _ => Err(Error::Config(format!(
                "{what} file {}: unknown format (expected a .json or .toml extension)",
                path.display()
            ))),
        }
    }
}

/// Parses `text` as `format`; errors name `what` and, from the parser, the line and column (and
/// for TOML the offending line, with its key).
pub(crate) fn parse<T: DeserializeOwned>(what: &str, format: Format, text: &str) -> Result<T> {
    match format {
        Format::Json => {
            serde_json::from_str(text).map_err(|e| Error::Config(format!("{what}: {e}")))
        }
        Format::Toml => toml::from_str(text).map_err(|e| Error::Config(format!("{what}: {e}"))),
    }
}

/// `text`, read from `path`, parsed in the format its extension names; errors name the path.
pub(crate) fn parse_for_path<T: DeserializeOwned>(
    what: &str,
    path: &Path,
    text: &str,
) -> Result<T> {
    let format = Format::of_path(what, path)?;
    parse(&format!("{what} file {}", path.display()), format, text)
}

/// Reads `path` (without blocking the runtime) and parses it by its extension.
pub(crate) async fn load<T: DeserializeOwned>(what: &str, path: &Path) -> Result<T> {
    // Refuse an unknown extension before touching the file system.
    Format::of_path(what, path)?;
    let text = tokio::fs::read_to_string(path)
        .await
        .map_err(|e| Error::Config(format!("{what} file {}: {e}", path.display())))?;
    parse_for_path(what, path, &text)
}

/// `value` as a TOML document.
pub(crate) fn to_toml<T: Serialize>(what: &str, value: &T) -> Result<String> {
    toml::to_string(value).map_err(|e| Error::Config(format!("{what}: {e}")))
}

/// The file methods every configuration type has (`from_json`, `from_toml`, `to_toml`,
/// `from_str_for_path`, `load`), for use inside its `impl` block; `$what` names the type in
/// errors (e.g. `"router configuration"`).
macro_rules! file_methods {
    ($what:expr) => {
        /// Parses a JSON configuration (durations in seconds); an error gives the line and column.
        pub fn from_json(json: &str) -> $crate::error::Result<Self> {
            $crate::config_file::parse($what, $crate::config_file::Format::Json, json)
        }

        /// Parses a TOML configuration (the same fields as JSON; durations in seconds); an error
        /// gives the line and column and quotes the offending line with its key.
        pub fn from_toml(toml: &str) -> $crate::error::Result<Self> {
            $crate::config_file::parse($what, $crate::config_file::Format::Toml, toml)
        }

        /// The configuration as a TOML document ([`from_toml`](Self::from_toml) reads it back).
        pub fn to_toml(&self) -> $crate::error::Result<String> {
            $crate::config_file::to_toml($what, self)
        }

        /// Parses `text`, the contents of `path`, as JSON or TOML by `path`'s extension (`.json`,
        /// `.toml`); any other extension is an [`Error::Config`](crate::Error::Config) naming the
        /// path.
        pub fn from_str_for_path(
            text: &str,
            path: impl AsRef<std::path::Path>,
        ) -> $crate::error::Result<Self> {
            $crate::config_file::parse_for_path($what, path.as_ref(), text)
        }

        /// Reads a `.json` or `.toml` configuration file (asynchronously); errors name the path.
        pub async fn load(path: impl AsRef<std::path::Path>) -> $crate::error::Result<Self> {
            $crate::config_file::load($what, path.as_ref()).await
        }
    };
}
pub(crate) use file_methods;
