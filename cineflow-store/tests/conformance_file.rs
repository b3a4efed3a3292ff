//! The store conformance suite against `FileStore`, plus its own crash-recovery and locking
//! behaviours.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use cineflow_core::{ErrorKind, Store, TaskQuery};
use cineflow_store::FileStore;
use cineflow_store::conformance::{Fixture, StoreFactory};

/// A file store in a temporary directory of its own.
struct FileFactory {
    dir: tempfile::TempDir,
}

impl FileFactory {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn root(&self) -> PathBuf {
        self.dir.path().join("store")
    }
}

#[async_trait]
impl StoreFactory for FileFactory {
    async fn open(&self) -> cineflow_core::Result<Arc<dyn Store>> {
        Ok(Arc::new(FileStore::open(self.root()).await?))
    }
}

cineflow_store::conformance_tests!(Some(FileFactory::new()));

#[tokio::test]
async fn a_second_open_of_the_same_directory_is_refused_until_the_first_is_closed() {
    let f = FileFactory::new();
    let first = FileStore::open(f.root()).await.unwrap();
    let err = FileStore::open(f.root()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Config, "{err}");
    assert!(err.to_string().contains("already open"), "{err}");
    let clone = first.clone();
    drop(first);
    assert!(
        FileStore::open(f.root()).await.is_err(),
        "a clone keeps the store open"
    );
    drop(clone);
    FileStore::open(f.root()).await.unwrap();
}

#[tokio::test]
async fn records_are_pretty_json_files_one_per_record() {
    let f = FileFactory::new();
    let store = FileStore::open(f.root()).await.unwrap();
    let fx = Fixture::new(2, 1);
    fx.store(&store).await;
    for (dir, id) in [
        ("storyboards", fx.storyboard.id.to_string()),
        ("runs", fx.run.id.to_string()),
        ("tasks", fx.tasks[1].id.to_string()),
    ] {
        let text = std::fs::read_to_string(f.root().join(dir).join(format!("{id}.json"))).unwrap();
        assert!(text.contains("\n  \""), "{dir}/{id}.json is pretty-printed");
        let value: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(value["id"], id);
    }
    assert_eq!(
        std::fs::read_dir(f.root().join("tasks")).unwrap().count(),
        2
    );
}

#[tokio::test]
async fn torn_writes_left_by_a_crash_are_ignored_and_removed_at_open() {
    let f = FileFactory::new();
    let fx = Fixture::new(1, 1);
    {
        let store = FileStore::open(f.root()).await.unwrap();
        fx.store(&store).await;
    }
    // A crash in the middle of rewriting the task: half a JSON document in the .tmp file.
    let task_file = f
        .root()
        .join("tasks")
        .join(format!("{}.json", fx.tasks[0].id));
    let torn = task_file.with_extension("json.tmp");
    let full = std::fs::read(&task_file).unwrap();
    std::fs::write(&torn, &full[..full.len() / 2]).unwrap();
    std::fs::write(f.root().join("runs").join("garbage.json.tmp"), b"{\"id\":").unwrap();

    let store = FileStore::open(f.root()).await.unwrap();
    assert_eq!(store.get_task(fx.tasks[0].id).await.unwrap(), fx.tasks[0]);
    assert!(!torn.exists(), "the torn file is removed");
    assert!(!f.root().join("runs").join("garbage.json.tmp").exists());
}

#[tokio::test]
async fn tasks_of_a_run_whose_insert_did_not_finish_are_removed_at_open() {
    let f = FileFactory::new();
    let committed = Fixture::new(1, 2);
    let interrupted = committed.another_run(2);
    {
        let store = FileStore::open(f.root()).await.unwrap();
        committed.store(&store).await;
        interrupted.insert(&store).await;
    }
    // Simulate a crash after the task files were written but before the run file (the
    // commit marker) was.
    std::fs::remove_file(
        f.root()
            .join("runs")
            .join(format!("{}.json", interrupted.run.id)),
    )
    .unwrap();

    let store = FileStore::open(f.root()).await.unwrap();
    assert_eq!(
        store.get_run(interrupted.run.id).await.unwrap_err().kind(),
        ErrorKind::NotFound
    );
    for t in &interrupted.tasks {
        assert_eq!(
            store.get_task(t.id).await.unwrap_err().kind(),
            ErrorKind::NotFound
        );
        assert!(
            !f.root()
                .join("tasks")
                .join(format!("{}.json", t.id))
                .exists(),
            "the orphan task file is removed"
        );
    }
    let all = store.list_tasks(&TaskQuery::default()).await.unwrap();
    assert_eq!(all.items, committed.tasks);
    // The run can be inserted again from scratch.
    interrupted.insert(&store).await;
    assert_eq!(store.run_counts(interrupted.run.id).await.unwrap().total, 2);
}

#[tokio::test]
async fn a_corrupt_record_file_is_a_backend_error_naming_the_file() {
    let f = FileFactory::new();
    let fx = Fixture::new(1, 1);
    {
        let store = FileStore::open(f.root()).await.unwrap();
        fx.store(&store).await;
    }
    let path = f.root().join("runs").join(format!("{}.json", fx.run.id));
    std::fs::write(&path, b"{ not json").unwrap();
    let err = FileStore::open(f.root()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(err.to_string().contains(&fx.run.id.to_string()), "{err}");
    assert!(
        std::error::Error::source(&err).is_some(),
        "the cause is kept"
    );
}

#[tokio::test]
async fn an_unusable_directory_is_a_backend_error() {
    let f = FileFactory::new();
    std::fs::write(f.dir.path().join("file"), b"not a directory").unwrap();
    let err = FileStore::open(f.dir.path().join("file"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
    assert!(std::error::Error::source(&err).is_some());
}
