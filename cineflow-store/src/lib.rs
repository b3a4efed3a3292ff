//! # cineflow-store
//!
//! Storage backends for cineflow's [`Store`] trait, and [`connect`] to open one by URL.
//!
//! | URL | backend |
//! |---|---|
//! | `memory://` | [`MemoryStore`]: in process, not durable |
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
//! let store = cineflow_store::connect("memory://").await?;
//! assert_eq!(store.list_runs(&Default::default()).await?.total, 0);
//! # Ok::<(), cineflow_core::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::sync::Arc;

pub use cineflow_core::store::{MemoryStore, Store};
use cineflow_core::{Error, Result};

/// Opens a store by URL.
///
/// # Errors
/// [`Error::Config`] for a URL whose scheme names no available backend.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    let scheme = url.split_once("://").map(|(s, _)| s).ok_or_else(|| {
        Error::Config(format!(
            "store URL {url:?} has no scheme (expected e.g. memory://)"
        ))
    })?;
    match scheme {
        "memory" => Ok(Arc::new(MemoryStore::new())),
        other => Err(Error::Config(format!(
            "no store backend for scheme {other:?} in this build (available: memory)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn unknown_schemes_and_missing_schemes_are_configuration_errors() {
        for url in ["nosuch://x", "cineflow.db"] {
            let err = connect(url).await.unwrap_err();
            assert_eq!(err.kind(), cineflow_core::ErrorKind::Config, "{url}");
        }
        assert!(connect("memory://").await.is_ok());
    }
}
