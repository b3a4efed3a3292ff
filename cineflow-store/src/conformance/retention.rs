//! Deleting finished runs (retention).

use cineflow_core::store::{RunQuery, TaskQuery};
use cineflow_core::{ErrorKind, Store};

use super::fixtures::Fixture;
use super::{Must, fails};

/// A deleted run and its tasks are gone; another run, its tasks and the storyboard stay;
/// deleting it again (or an unknown run) is `NotFound`.
pub async fn a_deleted_run_and_its_tasks_are_gone_and_other_runs_stay(store: &dyn Store) {
    let gone = Fixture::new(2, 2);
    let kept = Fixture::of(&gone.storyboard, 3, super::fixtures::at(5));
    gone.store(store).await;
    kept.store(store).await;
    store.delete_run(gone.run.id).await.must("delete_run");
    fails(
        store.get_run(gone.run.id).await,
        ErrorKind::NotFound,
        "the deleted run",
    );
    for t in &gone.tasks {
        fails(
            store.get_task(t.id).await,
            ErrorKind::NotFound,
            "a task of the deleted run",
        );
    }
    let left = store
        .list_tasks(&TaskQuery::for_run(gone.run.id))
        .await
        .must("list the deleted run's tasks");
    assert_eq!(left.total, 0, "no task of the deleted run is listed");
    let runs = store
        .list_runs(&RunQuery::default())
        .await
        .must("list_runs");
    assert_eq!(runs.items, vec![kept.run.clone()], "the other run stays");
    for t in &kept.tasks {
        assert_eq!(
            &store.get_task(t.id).await.must("get_task"),
            t,
            "its tasks stay"
        );
    }
    store
        .get_storyboard(gone.storyboard.id)
        .await
        .must("the storyboard stays");
    fails(
        store.delete_run(gone.run.id).await,
        ErrorKind::NotFound,
        "deleting it again",
    );
}
