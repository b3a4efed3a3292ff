//! # cineflow-store
//!
//! Storage backends for cineflow's [`Store`] trait, [`connect`] to open one by URL, and the
//! conformance suite every backend passes (module `conformance`, feature `conformance`).
//!
//! | feature | URL | backend |
//! |---|---|---|
//! | (always) | `memory://` | [`MemoryStore`]: in process, not durable |
//! | `file` | `file://DIR`, `file:///ABS/DIR` | `FileStore`: a directory of pretty JSON files, one process at a time |
//! | `sqlite` (default) | `sqlite://PATH`, `sqlite:///ABS/PATH`, `sqlite::memory:` | `SqliteStore`: an embedded database (WAL), shareable by processes on one machine |
//! | `postgres` | `postgres://…`, `postgresql://…` | `PostgresStore`: a shared database for many workers on many machines |
//! | `conformance` | | `conformance`: the behaviours every [`Store`] must have, as tests |
//! | `object-store` | | `object::ObjectStoreSink`: videos in S3/S3-compatible storage, GCS or Azure |
//!
//! All backends keep the [`Store`] contract the same way: writes are durable when they return,
//! task and run updates are compare-and-swap on `revision` ([`ErrorKind::Conflict`] when stale),
//! task writes are fenced by the lease ([`ErrorKind::LeaseLost`]), missing records are
//! [`ErrorKind::NotFound`] and storage failures are [`ErrorKind::Backend`] with their cause as
//! the error's source.
//!
//! [`ErrorKind::Conflict`]: cineflow_core::ErrorKind::Conflict
//! [`ErrorKind::LeaseLost`]: cineflow_core::ErrorKind::LeaseLost
//! [`ErrorKind::NotFound`]: cineflow_core::ErrorKind::NotFound
//! [`ErrorKind::Backend`]: cineflow_core::ErrorKind::Backend
//!
//! ```
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! use cineflow_core::{ErrorKind, RunId};
//! let store = cineflow_store::connect("memory://").await?;
//! assert_eq!(store.list_runs(&Default::default()).await?.total, 0);
//! let missing = store.get_run(RunId::new()).await.unwrap_err();
//! assert_eq!(missing.kind(), ErrorKind::NotFound);
//! # Ok::<(), cineflow_core::Error>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![cfg_attr(docsrs, feature(doc_cfg))]

use std::sync::Arc;

pub use cineflow_core::store::{MemoryStore, Store};
use cineflow_core::{Error, Result};

mod common;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "file")]
mod file;
#[cfg(feature = "object-store")]
pub mod object;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod sql;
#[cfg(feature = "sqlite")]
mod sqlite;

/// The crates whose types appear in this crate's public API, at the versions it is built with
/// (cineflow-core's own are in `cineflow_core::reexports`).
///
/// | crate | where its types appear |
/// |---|---|
/// | `sqlx` (features `sqlite`, `postgres`) | `PostgresStore::from_pool`, `PostgresStore::connect_with`, `PostgresStore::pool` |
/// | `object_store` (feature `object-store`) | `ObjectStoreSink::new` |
pub mod reexports {
    #[cfg(feature = "object-store")]
    #[doc(no_inline)]
    pub use object_store;
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[doc(no_inline)]
    pub use sqlx;
}

#[cfg(feature = "file")]
pub use file::FileStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

/// Opens a store by URL (see the table in the [crate docs](crate)).
///
/// - `memory://`: a new, empty [`MemoryStore`].
/// - `file://DIR`: a `FileStore` in `DIR` (relative to the working directory, or absolute as
///   in `file:///var/lib/cineflow`), created if missing.
/// - `sqlite://PATH`, `sqlite:///ABS/PATH` (sqlx URL syntax, `?…` parameters allowed), or
///   `sqlite::memory:`: a `SqliteStore`, the file created if missing.
/// - `postgres://…` or `postgresql://…`: a `PostgresStore`; the schema is migrated.
///
/// # Errors
/// [`Error::Config`] for a URL without a scheme, an unknown scheme, or a scheme whose cargo
/// feature is not enabled (the message names the feature); [`Error::Backend`] if the backend
/// cannot be opened.
pub async fn connect(url: &str) -> Result<Arc<dyn Store>> {
    let scheme = if url.starts_with("sqlite:") {
        "sqlite"
    } else {
        url.split_once("://").map(|(s, _)| s).ok_or_else(|| {
            Error::Config(format!(
                "store URL {url:?} has no scheme (expected memory://, file://, sqlite:// or \
                 postgres://)"
            ))
        })?
    };
    match scheme {
        "memory" => Ok(Arc::new(MemoryStore::new())),
        "file" => open_file(url).await,
        "sqlite" => open_sqlite(url).await,
        "postgres" | "postgresql" => open_postgres(url).await,
        other => Err(Error::Config(format!(
            "no store backend for scheme {other:?} (known: memory, file, sqlite, postgres)"
        ))),
    }
}

#[cfg(not(all(feature = "file", feature = "sqlite", feature = "postgres")))]
fn feature_off(scheme: &str, feature: &str) -> Error {
    Error::Config(format!(
        "{scheme}:// stores need the `{feature}` feature of cineflow-store, which this build \
         does not enable"
    ))
}

#[cfg(feature = "file")]
async fn open_file(url: &str) -> Result<Arc<dyn Store>> {
    let dir = url.strip_prefix("file://").unwrap_or_default();
    if dir.is_empty() {
        return Err(Error::Config(format!(
            "store URL {url:?} names no directory (expected file://DIR or file:///ABS/DIR)"
        )));
    }
    Ok(Arc::new(FileStore::open(dir).await?))
}

#[cfg(not(feature = "file"))]
async fn open_file(_url: &str) -> Result<Arc<dyn Store>> {
    Err(feature_off("file", "file"))
}

#[cfg(feature = "sqlite")]
async fn open_sqlite(url: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(SqliteStore::connect(url).await?))
}

#[cfg(not(feature = "sqlite"))]
async fn open_sqlite(_url: &str) -> Result<Arc<dyn Store>> {
    Err(feature_off("sqlite", "sqlite"))
}

#[cfg(feature = "postgres")]
async fn open_postgres(url: &str) -> Result<Arc<dyn Store>> {
    Ok(Arc::new(PostgresStore::connect(url).await?))
}

#[cfg(not(feature = "postgres"))]
async fn open_postgres(_url: &str) -> Result<Arc<dyn Store>> {
    Err(feature_off("postgres", "postgres"))
}

#[cfg(test)]
mod tests {
    use cineflow_core::ErrorKind;

    use super::*;

    #[tokio::test]
    async fn unknown_schemes_and_missing_schemes_are_configuration_errors() {
        for url in ["nosuch://x", "cineflow.db"] {
            let err = connect(url).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{url}");
        }
        assert!(connect("memory://").await.is_ok());
    }

    #[tokio::test]
    async fn disabled_backends_name_the_feature_to_enable() {
        let cases: [(&str, &str, bool); 3] = [
            ("file://x", "`file`", cfg!(feature = "file")),
            ("sqlite://x.db", "`sqlite`", cfg!(feature = "sqlite")),
            ("postgres://h/db", "`postgres`", cfg!(feature = "postgres")),
        ];
        for (url, feature, enabled) in cases {
            if enabled {
                continue;
            }
            let err = connect(url).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Config, "{url}");
            assert!(err.to_string().contains(feature), "{err}");
        }
    }

    #[cfg(feature = "file")]
    #[tokio::test]
    async fn file_urls_open_relative_and_absolute_directories() {
        let dir = tempfile::tempdir().unwrap();
        let abs = dir.path().join("abs");
        let store = connect(&format!("file://{}", abs.display())).await.unwrap();
        assert_eq!(store.list_runs(&Default::default()).await.unwrap().total, 0);
        assert!(abs.join("LOCK").exists());
        assert_eq!(
            connect("file://").await.unwrap_err().kind(),
            ErrorKind::Config
        );
        // A second open of the same directory is refused while the first is open.
        let again = connect(&format!("file://{}", abs.display()))
            .await
            .unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Config, "{again}");
        drop(store);
        assert!(connect(&format!("file://{}", abs.display())).await.is_ok());
    }

    #[cfg(feature = "sqlite")]
    #[tokio::test]
    async fn sqlite_urls_open_files_and_memory_databases() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("new").join("nested.db");
        let store = connect(&format!("sqlite://{}", path.display()))
            .await
            .unwrap();
        assert_eq!(store.list_runs(&Default::default()).await.unwrap().total, 0);
        assert!(path.exists());
        let mem = connect("sqlite::memory:").await.unwrap();
        assert_eq!(
            mem.list_storyboards(Default::default())
                .await
                .unwrap()
                .total,
            0
        );
    }
}
