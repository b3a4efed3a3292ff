//! Behaviours: exact round trips of whole tasks, and leases.

use std::collections::HashSet;
use std::time::Duration;

use cineflow_core::provider::{ProviderJob, VideoAsset};
use cineflow_core::store::TaskQuery;
use cineflow_core::{
    Artifact, Attempt, AttemptCost, AttemptOutcome, ErrorCode, ErrorKind, ImageRef, Lease,
    ModelAlias, ModelId, Price, ProviderId, Result, ServiceTier, Store, Task, TaskError, TaskId,
    TaskStatus, Usage,
};
use time::OffsetDateTime;

use super::fixtures::{Fixture, at};
use super::{LAPSED, LIVE, Must, fails, ids};
// ---------------------------------------------------------------------------------------------
// Exact round trips

/// A task with a full attempt history (jobs, assets, vendor payloads, outcomes, errors,
/// nanosecond timestamps in other offsets) and an artifact reads back exactly, and survives
/// later writes.
pub async fn attempt_history_round_trips_exactly(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let provider = ProviderId::new("sorahk").must("provider id");
    let backup = ProviderId::new("aihubmix").must("provider id");
    let t0 = time::macros::datetime!(2026-01-11 15:08:35.987654321 +08:00);
    let job = |vendor_job_id: &str, p: &ProviderId, at: OffsetDateTime| {
        ProviderJob::new(p.clone(), vendor_job_id, "sora-2-pro", at)
            .with_base_url("https://api.example.com/v1".into())
            .with_extra(
                serde_json::json!({"queue": "hd", "nested": {"n": 1, "list": [1.5, "二", null]}}),
            )
    };
    let mut error = TaskError::new(ErrorCode::RateLimited, "429: slow down — 请稍后再试");
    error.provider_code = Some("rate_limit_exceeded".into());
    error.http_status = Some(429);
    error.raw = Some(r#"{"error":{"code":"rate_limit_exceeded"}}"#.into());
    let attempts = vec![
        Attempt::new(
            1,
            provider.clone(),
            "sora-2-pro",
            format!("{}-1", f.tasks[0].id),
            t0,
        )
        .with_reason("priority 1".into())
        .with_job(job("job_1", &provider, t0))
        .with_vendor_payload(serde_json::json!({"status": "failed", "progress": 12}))
        .with_finished_at(t0 + time::Duration::nanoseconds(1_234_567_891))
        .with_outcome(AttemptOutcome::Failed {
            error: error.clone(),
        }),
        Attempt::new(
            2,
            backup.clone(),
            "sora-2",
            format!("{}-2", f.tasks[0].id),
            t0 + time::Duration::seconds(3),
        )
        .with_reason("failover after rate_limited".into())
        .with_vendor_payload(serde_json::Value::Null)
        .with_finished_at(t0 + time::Duration::seconds(4))
        .with_outcome(AttemptOutcome::Interrupted {
            error: TaskError::new(ErrorCode::Interrupted, "crashed during submit"),
        }),
        Attempt::new(
            3,
            provider.clone(),
            "sora-2-pro",
            format!("{}-3", f.tasks[0].id),
            t0 + time::Duration::minutes(5),
        )
        .with_reason("retry by user".into())
        .with_job(job("job_3", &provider, t0 + time::Duration::minutes(5)))
        .with_asset(
            VideoAsset::new("https://cdn.example.com/v/job_3.mp4?sig=abc&exp=1")
                .with_expires_at(t0 + time::Duration::hours(1) + time::Duration::nanoseconds(7))
                .with_content_type("video/mp4".into()),
        )
        .with_last_frame(
            VideoAsset::new("https://cdn.example.com/v/job_3_last.png?sig=abc&exp=1")
                .with_expires_at(t0 + time::Duration::hours(1))
                .with_content_type("image/png".into()),
        )
        .with_vendor_payload(serde_json::json!({"status": "succeeded", "progress": 100}))
        .with_finished_at(t0 + time::Duration::minutes(9))
        .with_outcome(AttemptOutcome::Succeeded)
        .with_model_alias(ModelAlias {
            from: ModelId::new("sora2").must("model id"),
            to: ModelId::new("seedance-2").must("model id"),
        })
        .with_cost(AttemptCost {
            price: Some(Price::per_million_tokens(7.0, "USD")),
            service_tier: Some(ServiceTier::Default),
            estimate: Some(0.756),
            estimated_tokens: Some(108_000),
            reported: Some(Usage::new(108_900).with_total_tokens(108_900)),
            reported_cost: Some(0.7623),
            charged: Some(0.7623),
        })
        // Every store keeps the hash of the attempt's callback token.
        .with_callback_token_hash(
            cineflow_core::callback::CallbackToken::from_presented("t0ken").hash(),
        ),
    ];
    let mut t = f.tasks[0].clone();
    t.status = TaskStatus::Completed;
    t.progress = Some(100);
    t.attempts = attempts;
    t.error = Some(error);
    t.image = Some(ImageRef::new("https://example.com/ref.png").must("image ref"));
    t.dry_run = false;
    t.is_pro = true;
    t.artifact = Some(Artifact {
        location: "/videos/1/Segment_1/1_v1.mp4".into(),
        sidecar: Some("/videos/1/Segment_1/1_v1.json".into()),
        sha256: "ab".repeat(32),
        size_bytes: 12_345_678_901,
        content_type: "video/mp4".into(),
    });
    t.last_frame = Some(Box::new(Artifact {
        location: "/videos/1/Segment_1/1_v1_last_frame.png".into(),
        sidecar: None,
        sha256: "cd".repeat(32),
        size_bytes: 7_609,
        content_type: "image/png".into(),
    }));
    t.last_frame_error = Some(Box::new(TaskError::new(
        ErrorCode::DownloadFailed,
        "an earlier frame",
    )));
    t.updated_at = t0 + time::Duration::minutes(10);
    let written = store.update_task(&t).await.must("update_task");
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(stored, written);
    assert_eq!(
        stored,
        {
            let mut changed = t.clone();
            changed.revision = t.revision + 1;
            changed
        },
        "every field round-trips"
    );
    assert_eq!(stored.attempts, t.attempts, "the whole history is kept");

    let mut later = stored.clone();
    later.progress = Some(99);
    let again = store.update_task(&later).await.must("a later write");
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(stored, again);
    assert_eq!(stored.attempts, t.attempts, "history survives later writes");
    let listed = store
        .list_tasks(&TaskQuery::for_run(f.run.id))
        .await
        .must("list_tasks");
    assert_eq!(
        listed.items,
        vec![stored],
        "listing returns the same record"
    );
}

/// CJK, emoji and combining text, and prompts of the maximum 10,000 characters, round-trip in
/// storyboards and tasks.
pub async fn unicode_and_long_prompts_round_trip(store: &dyn Store) {
    let long: String = "雨🌧️é".chars().cycle().take(10_000).collect();
    assert_eq!(long.chars().count(), 10_000);
    let doc = serde_json::json!({
        "metadata": {"project_name": "夜の東京 🌃"},
        "segments": [
            {"segment_index": 1, "prompt_text": "夜晚的城市 🌃 — neon rain, 東京, émigré 👩‍🚀",
             "asset": {"characters": [{"name": "小明", "id": "@xiaoming"}], "scene": "天台 🏙️"}},
            {"segment_index": 2, "prompt_text": long.clone()},
        ]
    });
    let mut sb = cineflow_core::Storyboard::from_value(&doc).must("storyboard");
    sb.name = "故事板 📽️ «test»".into();
    let f = Fixture::of(&sb, 1, at(0));
    let mut tasks = f.tasks.clone();
    tasks[1].full_prompt = format!("{long}{long}");
    tasks[0].error = Some(TaskError::new(
        ErrorCode::ContentPolicy,
        "内容违规 🚫: \"quoted\" \\ backslash \u{0} nul",
    ));
    store.put_storyboard(&sb).await.must("put_storyboard");
    store.insert_run(&f.run, &tasks).await.must("insert_run");
    assert_eq!(store.get_storyboard(sb.id).await.must("get_storyboard"), sb);
    assert_eq!(
        store
            .get_segment(sb.segments[1].id)
            .await
            .must("get_segment")
            .1
            .prompt_text,
        long
    );
    for t in &tasks {
        assert_eq!(&store.get_task(t.id).await.must("get_task"), t);
    }
    let mut t = tasks[0].clone();
    t.full_prompt = "更新 ✅ 🎬".into();
    let written = store.update_task(&t).await.must("update_task");
    assert_eq!(store.get_task(t.id).await.must("get_task"), written);
    assert_eq!(written.full_prompt, "更新 ✅ 🎬");
}

// ---------------------------------------------------------------------------------------------
// Leases

pub(super) fn lease_of(task: &Task) -> Lease {
    match &task.lease {
        Some(l) => l.clone(),
        None => panic!("task {} has no lease", task.id),
    }
}

/// Claims take non-terminal tasks without a live lease, oldest first, at most `limit`; each
/// claimed task gets a new lease for the owner and its revision bumped, and is stored so.
pub async fn claims_take_claimable_tasks_oldest_first_up_to_the_limit(store: &dyn Store) {
    let f = Fixture::new(5, 1);
    f.store(store).await;
    // Oldest first is the reverse of segment order in the fixture.
    let mut by_age = f.tasks.clone();
    by_age.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
    let mut done = by_age[0].clone();
    done.status = TaskStatus::Completed;
    store.update_task(&done).await.must("complete the oldest");
    let mut cancelled = by_age[3].clone();
    cancelled.status = TaskStatus::Cancelled;
    store.update_task(&cancelled).await.must("cancel one");

    let before = OffsetDateTime::now_utc();
    let first = store
        .claim_tasks("worker-a", None, 2, LIVE)
        .await
        .must("claim 2");
    assert_eq!(
        ids(&first),
        vec![by_age[1].id, by_age[2].id],
        "the two oldest claimable tasks, oldest first"
    );
    let mut tokens = HashSet::new();
    for (c, original) in first.iter().zip([&by_age[1], &by_age[2]]) {
        let l = lease_of(c);
        assert_eq!(l.owner, "worker-a");
        assert!(l.expires_at > before, "the lease is live");
        assert!(tokens.insert(l.token), "every claim gets its own token");
        assert_eq!(
            c.revision,
            original.revision + 1,
            "a claim bumps the revision"
        );
        assert_eq!(
            {
                let mut changed = c.clone();
                changed.lease = None;
                changed.revision = original.revision;
                changed
            },
            *original,
            "a claim changes nothing but the lease and revision"
        );
        assert_eq!(&store.get_task(c.id).await.must("get_task"), c);
    }
    let second = store
        .claim_tasks("worker-b", None, 10, LIVE)
        .await
        .must("claim the rest");
    assert_eq!(
        ids(&second),
        vec![by_age[4].id],
        "terminal and leased tasks are skipped"
    );
    assert!(tokens.insert(lease_of(&second[0]).token));
    let third = store
        .claim_tasks("worker-c", None, 10, LIVE)
        .await
        .must("claim again");
    assert!(
        third.is_empty(),
        "live leases are not taken: {:?}",
        ids(&third)
    );
}

/// Claims take tasks whose lease has lapsed (with a new token), keep to the requested run, and
/// a limit of 0 claims nothing.
pub async fn claims_take_expired_leases_and_respect_the_run_filter(store: &dyn Store) {
    let a = Fixture::new(2, 1);
    a.store(store).await;
    let b = a.another_run(2);
    b.insert(store).await;

    assert!(
        store
            .claim_tasks("w", None, 0, LIVE)
            .await
            .must("limit 0")
            .is_empty(),
        "limit 0 claims nothing"
    );
    let lapsed = store
        .claim_tasks("worker-a", Some(a.run.id), 10, LAPSED)
        .await
        .must("claim run a");
    let mut want_a: Vec<&Task> = a.tasks.iter().collect();
    want_a.sort_by(|x, y| x.created_at.cmp(&y.created_at).then(x.id.cmp(&y.id)));
    assert_eq!(
        ids(&lapsed),
        want_a.iter().map(|t| t.id).collect::<Vec<_>>(),
        "only run a's tasks"
    );
    let of_b = store
        .claim_tasks("worker-b", Some(b.run.id), 10, LIVE)
        .await
        .must("claim run b");
    assert_eq!(of_b.len(), 4);
    assert!(
        of_b.iter().all(|t| t.run_id == b.run.id),
        "only run b's tasks"
    );

    let retaken = store
        .claim_tasks("worker-c", None, 10, LIVE)
        .await
        .must("claim lapsed leases");
    assert_eq!(
        ids(&retaken),
        ids(&lapsed),
        "lapsed leases are taken, oldest first"
    );
    for (new, old) in retaken.iter().zip(&lapsed) {
        let (nl, ol) = (lease_of(new), lease_of(old));
        assert_eq!(nl.owner, "worker-c");
        assert_ne!(nl.token, ol.token, "a new claim gets a new token");
        assert_eq!(new.revision, old.revision + 1);
    }
    let b_tokens: HashSet<u64> = of_b.iter().map(|t| lease_of(t).token).collect();
    assert!(
        retaken
            .iter()
            .all(|t| !b_tokens.contains(&lease_of(t).token))
    );
}

/// A heartbeat by the holder extends its lease (same owner and token, later deadline, no
/// revision change); a heartbeat with another token or owner, or after a takeover, is
/// [`ErrorKind::LeaseLost`].
pub async fn heartbeat_extends_a_held_lease_and_fails_for_a_lost_one(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    let claimed = store
        .claim_tasks("worker-a", None, 1, Duration::from_secs(60))
        .await
        .must("claim");
    let t = &claimed[0];
    let held = lease_of(t);
    let renewed = store.heartbeat(t.id, &held, LIVE).await;
    renewed_in_place(store, t, renewed, "heartbeat").await;

    let forged = Lease {
        token: held.token.wrapping_add(1_000_003),
        ..held.clone()
    };
    fails(
        store.heartbeat(t.id, &forged, LIVE).await,
        ErrorKind::LeaseLost,
        "another token",
    );
    let impostor = Lease {
        owner: "worker-z".into(),
        ..held.clone()
    };
    fails(
        store.heartbeat(t.id, &impostor, LIVE).await,
        ErrorKind::LeaseLost,
        "another owner",
    );

    // Takeover: a lapses, b claims, a's heartbeat is refused.
    let other = f.tasks.iter().find(|x| x.id != t.id).map(|x| x.id);
    let lapsed = store
        .claim_tasks("worker-a", None, 1, LAPSED)
        .await
        .must("claim with a lapsing lease");
    assert_eq!(lapsed.first().map(|x| x.id), other);
    let taken = store
        .claim_tasks("worker-b", None, 1, LIVE)
        .await
        .must("takeover");
    assert_eq!(ids(&taken), ids(&lapsed));
    fails(
        store
            .heartbeat(lapsed[0].id, &lease_of(&lapsed[0]), LIVE)
            .await,
        ErrorKind::LeaseLost,
        "a heartbeat after a takeover",
    );
    assert_eq!(
        store.get_task(taken[0].id).await.must("get_task").lease,
        taken[0].lease,
        "a refused heartbeat changes nothing"
    );
}

/// Several leases renewed in one call ([`Store::heartbeat_many`]): each answer, in the order
/// given, is what a heartbeat would have answered for its lease: held leases are extended, a
/// lease with another token is [`ErrorKind::LeaseLost`], a task that does not exist is
/// [`ErrorKind::NotFound`]; nothing else changes.
pub async fn heartbeat_many_renews_held_leases_and_answers_each_in_order(store: &dyn Store) {
    let f = Fixture::new(3, 1);
    f.store(store).await;
    let claimed = store
        .claim_tasks("worker-a", None, 3, Duration::from_secs(60))
        .await
        .must("claim");
    assert_eq!(claimed.len(), 3);
    let forged = Lease {
        token: lease_of(&claimed[1]).token.wrapping_add(1_000_003),
        ..lease_of(&claimed[1])
    };
    let missing = TaskId::new();
    let asked = vec![
        (claimed[2].id, lease_of(&claimed[2])),
        (claimed[1].id, forged),
        (missing, lease_of(&claimed[0])),
        (claimed[0].id, lease_of(&claimed[0])),
    ];
    let answers = store
        .heartbeat_many(&asked, LIVE)
        .await
        .must("heartbeat_many");
    assert_eq!(answers.len(), 4, "one answer per lease");
    let [third, second, missing_one, first]: [Result<Lease>; 4] = match answers.try_into() {
        Ok(a) => a,
        Err(_) => unreachable!("four answers"),
    };
    fails(second, ErrorKind::LeaseLost, "another token");
    fails(
        missing_one,
        ErrorKind::NotFound,
        "a task that does not exist",
    );
    let stored = store.get_task(claimed[1].id).await.must("get_task");
    assert_eq!(
        stored.lease, claimed[1].lease,
        "a refused renewal changes nothing"
    );
    for (t, answer) in [(&claimed[2], third), (&claimed[0], first)] {
        renewed_in_place(store, t, answer, "a held lease").await;
    }
    assert!(
        store
            .heartbeat_many(&[], LIVE)
            .await
            .must("no lease")
            .is_empty()
    );
}

/// A task's last write and the release of its lease in one call
/// ([`Store::update_task_and_release`]): written as `update_task` writes it, with the lease
/// given up (the returned and the stored task have none, and the task can be claimed again at
/// once); a stale revision is a conflict and a write with another token is
/// [`ErrorKind::LeaseLost`], both changing nothing.
pub async fn update_task_and_release_writes_the_task_and_gives_its_lease_up(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    let claimed = store
        .claim_tasks("worker-a", None, 2, LIVE)
        .await
        .must("claim");
    assert_eq!(claimed.len(), 2);
    let mut t = claimed[0].clone();
    t.progress = Some(42);
    let mut stale = t.clone();
    stale.revision += 1;
    fails(
        store.update_task_and_release(&stale).await,
        ErrorKind::Conflict,
        "a stale revision",
    );
    let mut forged = t.clone();
    if let Some(lease) = forged.lease.as_mut() {
        lease.token = lease.token.wrapping_add(1_000_003);
    }
    fails(
        store.update_task_and_release(&forged).await,
        ErrorKind::LeaseLost,
        "another token",
    );
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(
        (stored.revision, &stored.lease, stored.progress),
        (t.revision, &t.lease, claimed[0].progress),
        "refused writes change nothing"
    );

    let written = store
        .update_task_and_release(&t)
        .await
        .must("update_task_and_release");
    assert_eq!(written.revision, t.revision + 1);
    assert_eq!(written.lease, None, "the returned task has no lease");
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(stored.lease, None, "the stored task has no lease");
    assert_eq!(
        (stored.revision, stored.progress),
        (t.revision + 1, Some(42))
    );
    let again = store
        .claim_tasks("worker-b", None, 2, LIVE)
        .await
        .must("claim again");
    assert_eq!(
        ids(&again),
        vec![t.id],
        "claimable at once, the other task still held"
    );
    let other = store.get_task(claimed[1].id).await.must("get_task");
    assert_eq!(
        other.lease, claimed[1].lease,
        "the other task's lease is kept"
    );
}

/// Checks that `renewed`, the renewal of claimed task `t`'s lease, kept its owner and token,
/// moved its deadline on, is what the store holds, and did not bump the revision.
async fn renewed_in_place(store: &dyn Store, t: &Task, renewed: Result<Lease>, step: &str) {
    let held = lease_of(t);
    let renewed = renewed.must(step);
    assert_eq!((&renewed.owner, renewed.token), (&held.owner, held.token));
    assert!(
        renewed.expires_at > held.expires_at,
        "{step}: the deadline moves on"
    );
    let stored = store.get_task(t.id).await.must("get_task");
    assert_eq!(stored.lease.as_ref(), Some(&renewed));
    assert_eq!(
        stored.revision, t.revision,
        "{step}: a renewal does not bump the revision"
    );
}

/// Fencing: once worker A's lease lapsed and worker B claimed the task, A's writes (with A's
/// lease, stale or fresh revision) are [`ErrorKind::LeaseLost`] — even after B's lease lapsed
/// in turn; B's write succeeds.
pub async fn a_stale_worker_is_fenced_off_after_its_lease_is_taken_over(store: &dyn Store) {
    let f = Fixture::new(2, 1);
    f.store(store).await;
    let a = store
        .claim_tasks("worker-a", None, 1, LAPSED)
        .await
        .must("a claims")
        .remove(0);
    let b = store
        .claim_tasks("worker-b", None, 1, LIVE)
        .await
        .must("b claims")
        .remove(0);
    assert_eq!(a.id, b.id);

    let mut stale = a.clone();
    stale.set_status(TaskStatus::Submitting).must("transition");
    fails(
        store.update_task(&stale).await,
        ErrorKind::LeaseLost,
        "a writes with its old lease",
    );
    let mut fresh_revision = stale.clone();
    fresh_revision.revision = b.revision;
    fails(
        store.update_task(&fresh_revision).await,
        ErrorKind::LeaseLost,
        "a writes with its old lease and the current revision",
    );
    assert_eq!(
        store.get_task(b.id).await.must("get_task"),
        b,
        "a changed nothing"
    );

    let mut w = b.clone();
    w.set_status(TaskStatus::Submitting).must("transition");
    let written = store.update_task(&w).await.must("b writes");
    assert_eq!(written.revision, b.revision + 1);
    assert_eq!(written.lease, b.lease);
    assert_eq!(written.status, TaskStatus::Submitting);

    // The other task: A's lease lapses, B takes over with a lease that lapses too. A is still
    // fenced: its token is not the task's any more.
    let a2 = store
        .claim_tasks("worker-a", None, 1, LAPSED)
        .await
        .must("a claims the other task")
        .remove(0);
    assert_ne!(a2.id, b.id, "b's task is still leased");
    let b2 = store
        .claim_tasks("worker-b", None, 1, LAPSED)
        .await
        .must("b takes it over")
        .remove(0);
    assert_eq!(b2.id, a2.id);
    fails(
        store
            .update_task(&{
                let mut changed = a2.clone();
                changed.revision = b2.revision;
                changed
            })
            .await,
        ErrorKind::LeaseLost,
        "a writes after a takeover whose lease lapsed too",
    );
    let mut w2 = b2.clone();
    w2.progress = Some(3);
    store
        .update_task(&w2)
        .await
        .must("b writes with its lapsed but unchallenged lease");
}

/// While a lease is live, a write that carries no lease is [`ErrorKind::LeaseLost`]; after the
/// holder releases it, such a write succeeds and the released lease no longer fences.
pub async fn a_write_without_the_lease_is_fenced_off_while_the_lease_is_live(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let held = store
        .claim_tasks("worker-a", None, 1, LIVE)
        .await
        .must("claim")
        .remove(0);
    let mut unleased = held.clone();
    unleased.lease = None;
    unleased.progress = Some(1);
    fails(
        store.update_task(&unleased).await,
        ErrorKind::LeaseLost,
        "a write without the live lease",
    );
    assert_eq!(store.get_task(held.id).await.must("get_task"), held);

    store
        .release(held.id, &lease_of(&held))
        .await
        .must("release");
    let released = store.get_task(held.id).await.must("get_task");
    assert_eq!(released.lease, None, "released");
    let written = store
        .update_task(&{
            let mut changed = unleased.clone();
            changed.revision = released.revision;
            changed
        })
        .await
        .must("a write without a lease after release");
    assert_eq!(written.progress, Some(1));
    assert_eq!(written.lease, None);
    let current = store.get_task(held.id).await.must("get_task");
    fails(
        store
            .update_task(&{
                let mut changed = current;
                changed.lease = held.lease.clone();
                changed
            })
            .await,
        ErrorKind::LeaseLost,
        "a write carrying a released lease",
    );
}

/// Releasing a lease one does not hold (another token) is a no-op that succeeds; the holder's
/// release clears it (without a revision change) and makes the task claimable again.
pub async fn release_by_a_non_holder_is_a_no_op(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let held = store
        .claim_tasks("worker-a", None, 1, LIVE)
        .await
        .must("claim")
        .remove(0);
    let lease = lease_of(&held);
    let foreign = Lease {
        owner: "worker-b".into(),
        token: lease.token.wrapping_add(7_777_777),
        expires_at: lease.expires_at,
    };
    store
        .release(held.id, &foreign)
        .await
        .must("release by a non-holder");
    assert_eq!(
        store.get_task(held.id).await.must("get_task"),
        held,
        "nothing changed"
    );
    assert!(
        store
            .claim_tasks("worker-b", None, 1, LIVE)
            .await
            .must("claim")
            .is_empty(),
        "still leased"
    );
    store.release(held.id, &lease).await.must("release");
    let released = store.get_task(held.id).await.must("get_task");
    assert_eq!(
        released,
        {
            let mut changed = held.clone();
            changed.lease = None;
            changed
        },
        "only the lease is cleared"
    );
    store
        .release(held.id, &lease)
        .await
        .must("releasing twice is a no-op");
    store
        .release(TaskId::new(), &lease)
        .await
        .must("releasing a missing task is a no-op");
    let again = store
        .claim_tasks("worker-b", None, 1, LIVE)
        .await
        .must("claim after release");
    assert_eq!(ids(&again), vec![held.id]);
    assert_ne!(lease_of(&again[0]).token, lease.token);
}

/// A lease with an enormous TTL (`Duration::MAX`) is live — the deadline saturates, it never
/// wraps into the past — so nobody else can claim the task.
pub async fn a_lease_with_a_huge_ttl_stays_live(store: &dyn Store) {
    let f = Fixture::new(1, 1);
    f.store(store).await;
    let held = store
        .claim_tasks("worker-a", None, 1, Duration::MAX)
        .await
        .must("claim");
    assert_eq!(held.len(), 1);
    let deadline = lease_of(&held[0]).expires_at;
    assert!(
        deadline > OffsetDateTime::now_utc() + time::Duration::days(365),
        "the deadline is far away: {deadline}"
    );
    assert!(
        store
            .claim_tasks("worker-b", None, 1, LIVE)
            .await
            .must("claim")
            .is_empty(),
        "the task stays leased"
    );
    let renewed = store
        .heartbeat(held[0].id, &lease_of(&held[0]), Duration::MAX)
        .await
        .must("heartbeat");
    assert!(renewed.expires_at > OffsetDateTime::now_utc() + time::Duration::days(365));
}
