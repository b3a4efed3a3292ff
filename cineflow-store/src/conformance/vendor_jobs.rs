//! The behaviour of [`Store::find_tasks_by_vendor_job`].

use cineflow_core::provider::ProviderJob;
use cineflow_core::{Attempt, ProviderId, Store, Task, TaskStatus};

use super::fixtures::{Fixture, at};
use super::{Must, ids};

/// `task`'s attempt `n` on `provider`, with the vendor job `vendor_job_id` if any.
fn attempt(task: &Task, n: u32, provider: &ProviderId, vendor_job_id: Option<&str>) -> Attempt {
    let mut attempt = Attempt::new(
        n,
        provider.clone(),
        "sora-2",
        format!("{}-{n}", task.id),
        at(100),
    )
    .with_reason("priority".into());
    attempt.job = vendor_job_id.map(|id| ProviderJob::new(provider.clone(), id, "sora-2", at(100)));
    attempt
}

/// Writes `attempts` onto the stored `task` (status `queued`) and returns it as stored.
async fn record(store: &dyn Store, task: &Task, attempts: Vec<Attempt>) -> Task {
    let mut t = store.get_task(task.id).await.must("read a task");
    t.attempts = attempts;
    t.status = TaskStatus::Queued;
    store.update_task(&t).await.must("record attempts")
}

/// Tasks are found, across runs and by task id, by a vendor job any of their attempts recorded:
/// the provider and the whole id must match (not a prefix, not an id of another provider, not
/// the same text elsewhere in the task), ids with quotes, backslashes and Unicode included, and
/// a job recorded by a later write is found.
pub async fn tasks_are_found_by_the_vendor_job_they_recorded(store: &dyn Store) {
    let f = Fixture::new(3, 1);
    f.store(store).await;
    let g = f.another_run(2);
    g.insert(store).await;
    let sorahk = ProviderId::new("sorahk").must("provider id");
    let aihubmix = ProviderId::new("aihubmix").must("provider id");
    let odd = "job \"1\" \\ 二";
    let a = record(
        store,
        &f.tasks[0],
        vec![
            attempt(&f.tasks[0], 1, &sorahk, Some("job-1")),
            attempt(&f.tasks[0], 2, &sorahk, Some("job-2")),
        ],
    )
    .await;
    let b = record(
        store,
        &g.tasks[0],
        vec![attempt(&g.tasks[0], 1, &aihubmix, Some("job-1"))],
    )
    .await;
    let c = record(
        store,
        &f.tasks[1],
        vec![
            attempt(&f.tasks[1], 1, &sorahk, Some("job-10")),
            attempt(&f.tasks[1], 2, &sorahk, None),
        ],
    )
    .await;
    let mut d = store.get_task(g.tasks[1].id).await.must("read a task");
    d.full_prompt = "\"job-3\" and job-1".into();
    let d = store.update_task(&d).await.must("write a prompt");
    let e = record(
        store,
        &g.tasks[2],
        vec![attempt(&g.tasks[2], 1, &sorahk, Some(odd))],
    )
    .await;

    let find = |p: &ProviderId, id: &str| {
        let (p, id) = (p.clone(), id.to_owned());
        async move {
            store
                .find_tasks_by_vendor_job(&p, &id)
                .await
                .must("find tasks by vendor job")
        }
    };
    assert_eq!(
        find(&sorahk, "job-1").await,
        vec![a.clone()],
        "job-1 at sorahk"
    );
    assert_eq!(
        find(&sorahk, "job-2").await,
        vec![a.clone()],
        "a later attempt"
    );
    assert_eq!(
        find(&aihubmix, "job-1").await,
        vec![b.clone()],
        "another provider"
    );
    assert_eq!(
        find(&sorahk, "job-10").await,
        vec![c.clone()],
        "the whole id"
    );
    assert_eq!(
        find(&sorahk, "job-").await,
        Vec::<Task>::new(),
        "not a prefix"
    );
    assert_eq!(
        find(&sorahk, "job-3").await,
        Vec::<Task>::new(),
        "not a prompt"
    );
    assert_eq!(
        find(&aihubmix, "job-2").await,
        Vec::<Task>::new(),
        "wrong provider"
    );
    assert_eq!(
        find(&sorahk, odd).await,
        vec![e.clone()],
        "quotes and Unicode"
    );
    assert_eq!(d.attempts.len(), 0);

    // The same job recorded a second time (it must not happen, but a lookup must show it).
    let twice = record(
        store,
        &f.tasks[2],
        vec![attempt(&f.tasks[2], 1, &sorahk, Some("job-1"))],
    )
    .await;
    let mut want = vec![a, twice];
    want.sort_by_key(|t| t.id);
    let got = find(&sorahk, "job-1").await;
    assert_eq!(ids(&got), ids(&want), "ordered by task id");
    assert_eq!(got, want);
}
