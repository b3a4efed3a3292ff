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
