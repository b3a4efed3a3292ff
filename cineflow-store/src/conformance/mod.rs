//! The store conformance suite: the behaviours every [`Store`] must have, one `pub async fn`
//! each, and [`conformance_tests!`](crate::conformance_tests) to run them all as tests.
//!
//! Every backend in this crate (memory, file, SQLite, Postgres) runs this suite; a custom
//! store should too:
//!
//! ```
//! // tests/conformance.rs of a crate with its own store (here a MemoryStore stands in).
//! use std::sync::Arc;
//! use cineflow_core::{MemoryStore, Result, Store};
//! use cineflow_store::conformance::StoreFactory;
//!
//! /// One store per behaviour.
//! struct MyFactory {
//!     store: MemoryStore,
//! }
//!
//! #[async_trait::async_trait]
//! impl StoreFactory for MyFactory {
//!     async fn open(&self) -> Result<Arc<dyn Store>> {
//!         Ok(Arc::new(self.store.clone()))
//!     }
//!
//!     fn is_durable(&self) -> bool {
//!         false
//!     }
//! }
//!
//! cineflow_store::conformance_tests!(Some(MyFactory { store: MemoryStore::new() }));
//! ```
//!
//! The macro expands into one `#[test]` per behaviour, named after it (e.g.
//! `update_task_is_compare_and_swap`), so a failure names the behaviour that broke. Each test
//! evaluates the factory expression anew, so every behaviour gets a store of its own. The
//! expression is an `Option`: `None` skips every test (the expression should say why; the
//! Postgres tests use this when no database is configured).
//!
//! The behaviours assert on [`ErrorKind`]s, never on message text, and compare whole records
//! (`Task`, `Run`, `Storyboard` equality), so every field must round-trip exactly — timestamps
//! to the nanosecond, attempt histories, Unicode.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
pub use cineflow_core::Store;
use cineflow_core::store::{Page, TaskQuery};
use cineflow_core::{Error, ErrorKind, Result, Task, TaskId};

mod behaviours;
mod continuity;
mod fixtures;
mod retention;
mod robustness;
mod round_trips_and_leases;
mod vendor_jobs;

pub use behaviours::*;
pub use continuity::*;
pub use fixtures::*;
pub use retention::*;
pub use robustness::*;
pub use round_trips_and_leases::*;
pub use vendor_jobs::*;

/// Opens the stores a behaviour runs against.
///
/// [`conformance_tests!`](crate::conformance_tests) creates one factory per behaviour, so a
/// factory owns one storage location (a directory, a database file, a Postgres schema).
#[async_trait]
pub trait StoreFactory: Send + Sync {
    /// Opens the store at this factory's location. The first call sees an empty store; a later
    /// call, made once every handle from the earlier one is dropped, opens the same data again.
    async fn open(&self) -> Result<Arc<dyn Store>>;

    /// Whether a store opened again sees what an earlier one wrote. Default `true`; `false`
    /// skips [`data_survives_closing_and_reopening`].
    fn is_durable(&self) -> bool {
        true
    }

    /// Removes what the factory created, after a behaviour passed. Default: nothing (a temporary
    /// directory cleans itself up when the factory is dropped).
    async fn cleanup(&self) {}
}

/// A [`StoreFactory`] for [`MemoryStore`](cineflow_core::MemoryStore): every `open` returns a
/// handle on the same in-memory data. Not durable.
#[derive(Debug, Clone, Default)]
pub struct MemoryFactory {
    store: cineflow_core::MemoryStore,
}

impl MemoryFactory {
    /// A factory over a new, empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

#[async_trait]
impl StoreFactory for MemoryFactory {
    async fn open(&self) -> Result<Arc<dyn Store>> {
        Ok(Arc::new(self.store.clone()))
    }

    fn is_durable(&self) -> bool {
        false
    }
}

/// Writes a line to the test's stderr, bypassing libtest's output capture, so that skips and
/// known failures are visible in a normal `cargo test` run.
pub fn note(message: &str) {
    use std::io::Write;
    // One write, so the line is not split by the harness's own output.
    let _ = std::io::stderr().write_all(format!("{message}\n").as_bytes());
}

/// Generates one `#[test]` per conformance behaviour for a backend.
///
/// `$factory` is an expression of type `Option<F>` where `F:`[`StoreFactory`]; it is evaluated
/// once per test, so each behaviour gets a fresh store. `None` skips the tests (print why from
/// the expression; [`note`] prints past the test harness's output capture).
///
/// `known_failures` lists behaviours the backend is known to fail, each with the reason: such
/// a test passes while the behaviour fails (printing the reason) and fails once the behaviour
/// passes, so the list cannot go stale. Names are checked at compile time.
///
/// ```
/// use cineflow_store::conformance::MemoryFactory;
///
/// cineflow_store::conformance_tests!(
///     Some(MemoryFactory::new()),
///     known_failures = {
///         a_lease_with_a_huge_ttl_stays_live: "the deadline overflows to `now`",
///     }
/// );
/// ```
///
/// The tests run on a multi-threaded tokio runtime built by this crate; the calling crate needs
/// no tokio dependency of its own.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:expr $(,)?) => {
        $crate::conformance_tests!($factory, known_failures = {});
    };
    ($factory:expr, known_failures = { $($known:ident : $why:literal),* $(,)? } $(,)?) => {
        const _: () = { $( let _ = $crate::conformance::$known; )* };
        $crate::__conformance_tests! {
            (($factory) ($( ($known, $why) )*))
            store: [
                storyboards_round_trip_and_are_listed_newest_first
                putting_a_storyboard_again_replaces_it_and_its_segments
                segments_are_read_and_patched
                an_invalid_segment_patch_is_rejected_and_changes_nothing
                a_run_and_its_tasks_are_stored_together
                a_run_reusing_an_existing_task_id_is_rejected_whole
                a_run_with_a_task_of_another_run_is_rejected_whole
                a_run_with_a_duplicated_task_id_is_rejected_whole
                inserting_a_run_twice_is_a_conflict
                runs_are_listed_newest_first_and_filtered
                update_run_is_compare_and_swap
                run_counts_count_tasks_by_status
                update_task_is_compare_and_swap
                update_task_keeps_the_stored_lease
                tasks_are_filtered_by_status
                tasks_are_filtered_by_retryable
                tasks_are_filtered_by_error_code_segment_and_run
                tasks_are_sorted_by_segment_index_with_ties_by_version_then_id
                tasks_are_sorted_by_created_at_with_ties_by_id
                task_pages_have_totals_and_pages_past_the_end_are_empty
                attempt_history_round_trips_exactly
                unicode_and_long_prompts_round_trip
                claims_take_claimable_tasks_oldest_first_up_to_the_limit
                claims_take_expired_leases_and_respect_the_run_filter
                heartbeat_extends_a_held_lease_and_fails_for_a_lost_one
                heartbeat_many_renews_held_leases_and_answers_each_in_order
                update_task_and_release_writes_the_task_and_gives_its_lease_up
                a_stale_worker_is_fenced_off_after_its_lease_is_taken_over
                a_write_without_the_lease_is_fenced_off_while_the_lease_is_live
                release_by_a_non_holder_is_a_no_op
                a_lease_with_a_huge_ttl_stays_live
                concurrent_compare_and_swap_writers_lose_no_update
                missing_records_are_not_found
                errors_are_told_apart_by_kind
                an_empty_store_has_nothing_to_list_or_claim
                tasks_are_found_by_the_vendor_job_they_recorded
                a_deleted_run_and_its_tasks_are_gone_and_other_runs_stay
                claims_skip_tasks_waiting_for_another_until_they_are_opened
                tasks_inserted_waiting_for_another_are_claimed_only_once_opened
            ]
            factory: [
                data_survives_closing_and_reopening
            ]
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_tests {
    ($ctx:tt store: [$($name:ident)*] factory: [$($fname:ident)*]) => {
        $( $crate::__conformance_test!($ctx store $name); )*
        $( $crate::__conformance_test!($ctx factory $fname); )*
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __conformance_test {
    ((($factory:expr) ($( ($known:ident, $why:literal) )*)) $kind:ident $name:ident) => {
        #[test]
        fn $name() {
            $crate::conformance::__private::block_on(async {
                let Some(factory) = $factory else { return };
                let known: &[(&str, &str)] = &[$( (stringify!($known), $why) ),*];
                let outcome = $crate::__conformance_test!(@run $kind factory $name);
                $crate::conformance::__private::finish(&factory, stringify!($name), known, outcome)
                    .await;
            });
        }
    };
    (@run store $factory:ident $name:ident) => {{
        let store = $crate::conformance::__private::open(&$factory, stringify!($name)).await;
        let outcome = $crate::conformance::__private::catch(
            $crate::conformance::$name(&*store),
        )
        .await;
        drop(store);
        outcome
    }};
    (@run factory $factory:ident $name:ident) => {
        $crate::conformance::__private::catch($crate::conformance::$name(&$factory)).await
    };
}

/// Support for [`conformance_tests!`](crate::conformance_tests); not a public API.
#[doc(hidden)]
pub mod __private {
    use std::any::Any;
    use std::future::Future;
    use std::panic::AssertUnwindSafe;
    use std::sync::Arc;

    use futures::FutureExt;

    use super::{Store, StoreFactory, note};

    /// Runs a test body on a fresh multi-threaded runtime.
    pub fn block_on(body: impl Future<Output = ()>) {
        match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(rt) => rt.block_on(body),
            Err(e) => panic!("cannot start a tokio runtime: {e}"),
        }
    }

    /// Opens the factory's store or fails the test.
    pub async fn open(factory: &dyn StoreFactory, behaviour: &str) -> Arc<dyn Store> {
        match factory.open().await {
            Ok(store) => store,
            Err(e) => panic!("{behaviour}: cannot open the store: {e} ({:?})", e.kind()),
        }
    }

    /// Runs a behaviour, catching its panic.
    pub async fn catch(
        behaviour: impl Future<Output = ()>,
    ) -> Result<(), Box<dyn Any + Send + 'static>> {
        AssertUnwindSafe(behaviour).catch_unwind().await
    }

    /// Turns a behaviour's outcome into the test's, honouring the known failures.
    pub async fn finish(
        factory: &dyn StoreFactory,
        behaviour: &str,
        known: &[(&str, &str)],
        outcome: Result<(), Box<dyn Any + Send + 'static>>,
    ) {
        let known = known
            .iter()
            .find(|(n, _)| *n == behaviour)
            .map(|(_, why)| *why);
        match (outcome, known) {
            (Ok(()), None) => factory.cleanup().await,
            (Ok(()), Some(why)) => panic!(
                "{behaviour} is listed as a known failure ({why}) but it passed: \
                 remove it from known_failures"
            ),
            (Err(_), Some(why)) => {
                note(&format!("known failure of {behaviour}: {why}"));
                factory.cleanup().await;
            }
            (Err(panic), None) => std::panic::resume_unwind(panic),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Assertion helpers shared by the behaviours.

/// Unwraps a step's result, failing the behaviour with the step, the error and its kind.
pub(crate) trait Must<T> {
    fn must(self, step: &str) -> T;
}

impl<T> Must<T> for Result<T> {
    #[track_caller]
    fn must(self, step: &str) -> T {
        match self {
            Ok(v) => v,
            Err(e) => panic!("{step}: unexpected error: {e} ({:?})", e.kind()),
        }
    }
}

/// Asserts that a step failed with `kind`, returning the error.
#[track_caller]
pub(crate) fn fails<T: Debug>(result: Result<T>, kind: ErrorKind, step: &str) -> Error {
    match result {
        Ok(v) => panic!("{step}: expected a {kind:?} error, got Ok({v:?})"),
        Err(e) => {
            assert_eq!(e.kind(), kind, "{step}: wrong kind of error: {e}");
            e
        }
    }
}

/// Ids of a page's tasks, for readable diffs.
pub(crate) fn ids(tasks: &[Task]) -> Vec<TaskId> {
    tasks.iter().map(|t| t.id).collect()
}

/// What `query` must return from a store holding exactly `all` (by the reference semantics of
/// [`TaskQuery::matches`] and [`TaskQuery::compare`]).
pub(crate) fn oracle(all: &[Task], query: &TaskQuery) -> Page<Task> {
    let mut matching: Vec<Task> = all.iter().filter(|t| query.matches(t)).cloned().collect();
    matching.sort_by(|a, b| query.compare(a, b));
    query.page.slice(matching)
}

/// Asserts that the store answers `query` like the reference does over `all`.
pub(crate) async fn assert_query(store: &dyn Store, all: &[Task], query: &TaskQuery, what: &str) {
    let want = oracle(all, query);
    let got = store.list_tasks(query).await.must(what);
    assert_eq!(ids(&got.items), ids(&want.items), "{what}: ids in order");
    assert_eq!(got, want, "{what}: whole page");
}

/// A short lease TTL that has lapsed by the time anyone looks: claims with it leave a lease
/// that is immediately claimable again, without sleeping.
pub(crate) const LAPSED: Duration = Duration::ZERO;
/// A lease TTL that outlives any test.
pub(crate) const LIVE: Duration = Duration::from_secs(3600);
