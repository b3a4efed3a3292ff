//! The server example (`examples/server/`) over real HTTP on loopback: CineFlow's acceptance
//! walk step by step, a real run on `MockProvider` downloaded with a `Range` request, retry,
//! the admin routes, authentication and the 400 / 401 / 404 envelopes, and uploads with `../`
//! names or over the limit. The server's code is the example's own (`app.rs` and its modules).
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../examples/server/app.rs"]
#[allow(dead_code)]
mod app;
mod server_support;

use app::config::{ServerConfig, Token};
use cineflow::core::{ErrorCode, ProviderError, SubmitState};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use server_support::{
    DEMO, DOWNLOAD_TRIES, TOKEN, assert_envelope, assert_names_field, start, start_with,
};
use sha2::{Digest, Sha256};

#[tokio::test]
async fn cineflows_acceptance_walk_passes_step_by_step() {
    let s = start().await;
    // 1. create a storyboard (201, 2 segments)
    let (status, sb) = s
        .upload(
            "/storyboards",
            "storyboard_demo.json",
            DEMO.as_bytes().to_vec(),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{sb}");
    assert_eq!(sb["segment_count"], 2);
    let sb_id = sb["id"].as_str().unwrap();
    assert_eq!(sb_id.len(), 32);
    // 2. listed
    let (_, list) = s
        .get("/storyboards?sort=created_at&order=desc&page=1&page_size=200")
        .await;
    assert_eq!(list["total"], 1);
    assert_eq!(list["page_size"], 200);
    assert_eq!(list["items"][0]["id"], sb_id);
    // 3. segments
    let (_, segs) = s
        .get(&format!(
            "/storyboards/{sb_id}/segments?sort=segment_index&order=asc"
        ))
        .await;
    assert_eq!(segs["total"], 2);
    assert_eq!(segs["items"][0]["segment_index"], 1);
    assert_eq!(segs["items"][0]["duration_seconds"], 10);
    assert_eq!(segs["items"][0]["resolution"], "horizontal");
    assert_eq!(segs["items"][1]["asset"]["characters"][0]["id"], "@alice");
    let seg1 = segs["items"][0]["id"].as_str().unwrap().to_owned();
    // 4. a prompt patched
    let (status, seg) = s
        .patch(
            &format!("/segments/{seg1}"),
            json!({"prompt_text": "A city at dawn."}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{seg}");
    assert_eq!(seg["prompt_text"], "A city at dawn.");
    assert_eq!(
        seg["asset"]["scene"], "Future City",
        "other fields are kept"
    );
    // 5. models sora2 / sora2pro listed, as aliases of a living model
    let (_, models) = s.get("/models?enabled=true&sort=id&order=asc").await;
    let items = models["items"].as_array().unwrap();
    for alias in ["sora2", "sora2pro"] {
        let m = items
            .iter()
            .find(|m| m["id"] == alias)
            .unwrap_or_else(|| panic!("{alias}: {models}"));
        assert_eq!(m["alias_of"], "seedance-2");
        assert_eq!(m["available"], true);
    }
    // 6. a dry run created
    let (status, run) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb_id, "model_id": "sora2", "gen_count": 1, "range": "all",
                   "concurrency": 2, "dry_run": true, "output_mode": "centralized", "force": false}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["total_tasks"], 2);
    let run_id = run["id"].as_str().unwrap().to_owned();
    // 7. it completes
    let done = s.wait_run(&run_id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["completed"], 2);
    assert_eq!(s.mock.submits(), 0, "a dry run calls no vendor");
    // 8. tasks sorted by segment_index, both ways
    let asc = s.tasks(&run_id, "sort=segment_index&order=asc").await;
    assert_eq!(
        asc.iter()
            .map(|t| t["segment_index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [1, 2]
    );
    let desc = s.tasks(&run_id, "sort=segment_index&order=desc").await;
    assert_eq!(
        desc.iter()
            .map(|t| t["segment_index"].as_u64().unwrap())
            .collect::<Vec<_>>(),
        [2, 1]
    );
    let task_id = asc[0]["id"].as_str().unwrap().to_owned();
    // 9. task detail
    let (status, task) = s.get(&format!("/tasks/{task_id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(task["error_code"], Value::Null);
    assert_eq!(task["status"], "completed");
    assert_eq!(
        task["metadata_url"],
        format!("/api/v1/tasks/{task_id}/metadata")
    );
    assert!(
        task["full_prompt"]
            .as_str()
            .unwrap()
            .starts_with("A city at dawn. [Scene: Future City]"),
        "{task}"
    );
    // 10. metadata (the sidecar as it would be written)
    let (status, meta) = s.get(&format!("/tasks/{task_id}/metadata")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(meta["local_task_id"], task_id);
    assert_eq!(meta["segment_index"], 1);
    assert_eq!(meta["full_prompt"], task["full_prompt"]);
    // 11. download: 404 in a dry run
    let (status, body) = s.get(&format!("/tasks/{task_id}/download")).await;
    assert_envelope(status, &body, StatusCode::NOT_FOUND, "not_found");
    // 12. retry: a completed task is not retried (CineFlow re-ran it and paid again)
    let (status, body) = s.post(&format!("/tasks/{task_id}/retry"), json!({})).await;
    assert_envelope(status, &body, StatusCode::CONFLICT, "conflict");
    assert_eq!(body["details"]["from"], "completed");
    // the three filters (and one that matches, so the filters are not ignored)
    let (_, failed_runs) = s.get("/runs?status=failed").await;
    assert_eq!(failed_runs["total"], 0);
    let (_, completed_runs) = s.get("/runs?status=completed").await;
    assert_eq!(completed_runs["total"], 1);
    assert!(
        s.tasks(&run_id, "status=failed&retryable=true")
            .await
            .is_empty()
    );
    assert!(s.tasks(&run_id, "error_code=rate_limited").await.is_empty());
    assert_eq!(
        s.tasks(&run_id, "status=completed&segment_index=2")
            .await
            .len(),
        1
    );
    // 401 / 404 / 400
    let res = s
        .http
        .get(format!("{}/api/v1/runs", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let body: Value = res.json().await.unwrap();
    assert_envelope(
        StatusCode::UNAUTHORIZED,
        &body,
        StatusCode::UNAUTHORIZED,
        "unauthorized",
    );
    let wrong = s
        .http
        .get(format!("{}/api/v1/runs", s.base))
        .bearer_auth("test-tokeN")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let (status, body) = s.get(&format!("/tasks/{}", "0".repeat(32))).await;
    assert_envelope(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s.get(&format!("/runs/{}/tasks", "0".repeat(32))).await;
    assert_envelope(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb_id, "model_id": "sora2", "gen_count": 0}),
        )
        .await;
    assert_names_field(status, &body, "gen_count");
}

#[tokio::test]
async fn a_real_run_on_a_mock_provider_is_downloaded_through_the_api_with_a_range_request() {
    let s = start().await;
    let sb = s.demo_storyboard().await;
    let (status, run) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb, "model_id": "sora2pro", "range": "1"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{run}");
    let run_id = run["id"].as_str().unwrap();
    assert_eq!(s.wait_run(run_id).await["status"], "completed");
    assert_eq!(s.mock.submits(), 1);
    let task = &s.tasks(run_id, "").await[0];
    let id = task["id"].as_str().unwrap();
    assert_eq!(task["video_url"], format!("/api/v1/tasks/{id}/download"));
    assert_eq!(task["provider_id"], "mock");

    let url = format!("/api/v1/tasks/{id}/download");
    let full = s.req(Method::GET, &url).send().await.unwrap();
    assert_eq!(full.status(), StatusCode::OK);
    assert_eq!(full.headers()["content-type"], "video/mp4");
    assert_eq!(full.headers()["accept-ranges"], "bytes");
    let bytes = full.bytes().await.unwrap();
    assert_eq!(
        bytes.len() as u64,
        task["artifact"]["size_bytes"].as_u64().unwrap()
    );
    let sha = format!("{:x}", Sha256::digest(&bytes));
    assert_eq!(sha, task["artifact"]["sha256"].as_str().unwrap());

    let part = s
        .req(Method::GET, &url)
        .header("Range", "bytes=4-103")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes 4-103/{}", bytes.len())
    );
    assert_eq!(&part.bytes().await.unwrap()[..], &bytes[4..104]);

    let (status, meta) = s.get(&format!("/tasks/{id}/metadata")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(meta["sha256"], sha, "the stored sidecar: {meta}");
    assert_eq!(meta["download_status"], "success");
}

#[tokio::test]
async fn failed_tasks_are_found_by_the_filters_and_a_download_failure_is_retried_without_paying() {
    let s = start().await;
    // Segment 1's submit is refused; segment 2's video cannot be downloaded (every try).
    s.mock.inject_submit_error(
        ProviderError::new(ErrorCode::ContentPolicy, "prompt refused")
            .with_submit_state(SubmitState::Rejected),
    );
    for _ in 0..DOWNLOAD_TRIES {
        s.mock
            .inject_download_error(ProviderError::new(ErrorCode::Network, "connection reset"));
    }
    let sb = s.demo_storyboard().await;
    let (_, run) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb, "model_id": "sora2", "concurrency": 1}),
        )
        .await;
    let run_id = run["id"].as_str().unwrap();
    let done = s.wait_run(run_id).await;
    assert_eq!(done["status"], "failed", "{done}");
    assert_eq!(
        (done["failed"].as_u64(), done["download_failed"].as_u64()),
        (Some(1), Some(1))
    );

    let refused = s
        .tasks(run_id, "status=failed&error_code=content_policy")
        .await;
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["segment_index"], 1);
    assert_eq!(refused[0]["error_code"], "content_policy");
    assert_eq!(refused[0]["retryable"], false);
    assert!(
        s.tasks(run_id, "status=failed&retryable=true")
            .await
            .is_empty()
    );
    let lost = s
        .tasks(run_id, "status=download_failed&retryable=true")
        .await;
    assert_eq!(lost.len(), 1);
    assert_eq!(lost[0]["error_code"], "download_failed");
    assert_eq!(lost[0]["segment_index"], 2);
    assert_eq!(s.mock.submits(), 2);

    let id = lost[0]["id"].as_str().unwrap();
    let (status, task) = s.post(&format!("/tasks/{id}/retry"), json!({})).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert_eq!(task["status"], "running", "downloading again: {task}");
    let t = s.wait_task(id).await;
    assert_eq!(t["status"], "completed", "{t}");
    assert_eq!(
        s.mock.submits(),
        2,
        "the retry downloaded again and paid nothing"
    );
    let video = s
        .req(Method::GET, &format!("/api/v1/tasks/{id}/download"))
        .send()
        .await
        .unwrap();
    assert_eq!(video.status(), StatusCode::OK);
}

#[tokio::test]
async fn bad_input_gets_a_400_envelope_naming_the_field() {
    let s = start().await;
    let sb = s.demo_storyboard().await;
    let malformed = s
        .req(Method::POST, "/api/v1/runs")
        .header("content-type", "application/json")
        .body("{\"storyboard_id\": ");
    let (status, body) = s.send(malformed).await;
    assert_names_field(status, &body, "body");
    let (status, body) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb, "model_id": "sora2", "routing_strategy": "fastest"}),
        )
        .await;
    assert_names_field(status, &body, "routing_strategy");
    let (status, body) = s
        .post("/runs", json!({"storyboard_id": sb, "model_id": "sora2", "output_mode": "custom", "output_path": "/etc"}))
        .await;
    assert_names_field(status, &body, "output_mode");
    let (status, body) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb, "model_id": "sora2", "range": "1-x"}),
        )
        .await;
    assert_names_field(status, &body, "range");
    let (status, body) = s
        .post(
            "/runs",
            json!({"storyboard_id": "nope", "model_id": "sora2"}),
        )
        .await;
    assert_names_field(status, &body, "storyboard_id");
    let (_, run) = s
        .post(
            "/runs",
            json!({"storyboard_id": sb, "model_id": "sora2", "dry_run": true}),
        )
        .await;
    let run_id = run["id"].as_str().unwrap();
    for (query, field) in [
        ("status=bogus", "status"),
        ("error_code=oops", "error_code"),
        ("retryable=maybe", "retryable"),
        ("segment_index=-1", "segment_index"),
        ("sort=prompt", "sort"),
        ("order=up", "order"),
        ("page=0", "page"),
        ("page_size=100000", "page_size"),
    ] {
        let (status, body) = s.get(&format!("/runs/{run_id}/tasks?{query}")).await;
        assert_names_field(status, &body, field);
    }
    let (status, body) = s.get("/runs?status=exploded").await;
    assert_names_field(status, &body, "status");
    let (status, body) = s.get("/tasks/..%2F..%2Fetc").await;
    assert_names_field(status, &body, "id");
    let (_, segs) = s.get(&format!("/storyboards/{sb}/segments")).await;
    let seg = segs["items"][0]["id"].as_str().unwrap();
    for (patch, field) in [
        (json!({"resolution": "diagonal"}), "resolution"),
        (json!({"duration_seconds": "ten"}), "duration_seconds"),
        (json!({"image_url": "/etc/passwd"}), "image_url"),
        (json!({"prompt_text": 5}), "prompt_text"),
    ] {
        let (status, body) = s.patch(&format!("/segments/{seg}"), patch).await;
        assert_names_field(status, &body, field);
    }
    let (status, body) = s
        .patch(&format!("/segments/{seg}"), json!({"prompt_text": "  "}))
        .await;
    assert_envelope(status, &body, StatusCode::BAD_REQUEST, "validation_error");
    let (status, body) = s
        .upload(
            "/storyboards",
            "sb.json",
            br#"{"segments":[{"segment_index":0,"prompt_text":"x"}]}"#.to_vec(),
        )
        .await;
    assert_envelope(status, &body, StatusCode::BAD_REQUEST, "validation_error");
    assert_eq!(
        body["details"]["violations"][0]["path"], "segments[0].segment_index",
        "{body}"
    );
    let (status, body) = s.get("/no-such-route").await;
    assert_envelope(status, &body, StatusCode::NOT_FOUND, "not_found");
}

fn png(len: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n".to_vec();
    v.resize(len, 7);
    v
}

fn files_in(dir: &std::path::Path) -> usize {
    std::fs::read_dir(dir).map_or(0, |d| d.count())
}

#[tokio::test]
async fn uploads_with_dotdot_names_are_refused_and_nothing_is_written() {
    let s = start().await;
    let sb = s.demo_storyboard().await;
    let (_, segs) = s.get(&format!("/storyboards/{sb}/segments")).await;
    let seg = segs["items"][0]["id"].as_str().unwrap().to_owned();
    for name in ["../../evil.png", "..\\evil.png", "a/b.png", ".."] {
        let (status, body) = s
            .upload(
                &format!("/segments/{seg}/assets/start-image"),
                name,
                png(64),
            )
            .await;
        assert_names_field(status, &body, "file");
        let (status, body) = s
            .upload("/storyboards", name, DEMO.as_bytes().to_vec())
            .await;
        assert_names_field(status, &body, "file");
    }
    assert_eq!(files_in(&s.config.upload_dir), 0);
    assert!(!s.dir.path().join("evil.png").exists());
    let (_, list) = s.get("/storyboards").await;
    assert_eq!(
        list["total"], 1,
        "no storyboard stored from a refused upload"
    );

    // A good upload gets a server-chosen name, is served back, and becomes the start image.
    let (status, body) = s
        .upload(
            &format!("/segments/{seg}/assets/start-image"),
            "start.png",
            png(64),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let url = body["image_url"].as_str().unwrap();
    assert!(
        url.starts_with("/uploads/") && !url.contains("start.png"),
        "{url}"
    );
    assert_eq!(body["segment"]["image_url"], url);
    let served = s.http.get(format!("{}{url}", s.base)).send().await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(served.bytes().await.unwrap().to_vec(), png(64));
    // The console sends the resolved URL back in its PATCH: it stays the same upload.
    let (status, seg_after) = s
        .patch(
            &format!("/segments/{seg}"),
            json!({"image_url": format!("{}{url}", s.base)}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{seg_after}");
    assert_eq!(seg_after["image_url"], url);
    let escape = s
        .http
        .get(format!("{}/uploads/..%2Fcineflow.db", s.base))
        .send()
        .await
        .unwrap();
    assert_ne!(escape.status(), StatusCode::OK);
    let (status, body) = s
        .upload(
            &format!("/segments/{seg}/assets/start-image"),
            "x.png",
            b"GIF89a".to_vec(),
        )
        .await;
    assert_names_field(status, &body, "file");
}

#[tokio::test]
async fn an_oversized_upload_is_refused_naming_the_field_and_nothing_is_written() {
    let s = start_with(Some(TOKEN), |c| c.max_upload_bytes = 4096).await;
    let sb = s.demo_storyboard().await;
    let (_, segs) = s.get(&format!("/storyboards/{sb}/segments")).await;
    let seg = segs["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, body) = s
        .upload(
            &format!("/segments/{seg}/assets/start-image"),
            "big.png",
            png(64 * 1024),
        )
        .await;
    assert_names_field(status, &body, "file");
    assert_eq!(files_in(&s.config.upload_dir), 0);
    let big = json!({"storyboard_id": sb, "model_id": "sora2", "pad": "x".repeat(8192)});
    let (status, body) = s.post("/runs", big).await;
    assert_names_field(status, &body, "body");
    let (_, runs) = s.get("/runs").await;
    assert_eq!(runs["total"], 0);
}

#[tokio::test]
async fn admin_patches_edit_the_live_router() {
    let s = start().await;
    let (_, providers) = s
        .get("/admin/providers?sort=id&order=asc&page=1&page_size=200")
        .await;
    assert_eq!(
        providers["total"], 1,
        "only registered providers: {providers}"
    );
    assert_eq!(providers["items"][0]["id"], "mock");
    assert_eq!(providers["items"][0]["breaker_open"], false);
    let (status, p) = s
        .patch(
            "/admin/providers/mock",
            json!({"enabled": false, "priority": 5}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{p}");
    assert_eq!(p["enabled"], false);
    assert_eq!(p["priority"], 5);
    let mock = cineflow::core::ProviderId::new("mock").unwrap();
    assert!(!s.orch.router().config().providers[&mock].enabled);
    let (status, m) = s
        .patch("/admin/models/sora2", json!({"enabled": false}))
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["enabled"], false);
    assert_eq!(m["provider_map"]["mock"], json!(["mock-video-1"]));
    let (_, disabled) = s.get("/models?enabled=false").await;
    assert!(
        disabled["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["id"] == "seedance-2")
    );
    let (status, body) = s
        .patch("/admin/providers/nobody", json!({"enabled": true}))
        .await;
    assert_envelope(status, &body, StatusCode::NOT_FOUND, "not_found");
    let (status, body) = s
        .patch("/admin/providers/mock", json!({"weight": -1}))
        .await;
    assert_names_field(status, &body, "weight");
}

#[tokio::test]
async fn an_admin_patch_edits_one_route_of_a_model_in_the_live_router() {
    let s = start().await;
    let seedance = cineflow::core::ModelId::new("seedance-2").unwrap();
    let mock = cineflow::core::ProviderId::new("mock").unwrap();
    let route = |s: &server_support::Server| {
        s.orch.router().config().models[&seedance]
            .routes
            .iter()
            .find(|r| r.provider == mock)
            .cloned()
            .unwrap()
    };
    let before = route(&s);
    // An alias edits its target's route; CineFlow's body names the vendor models.
    let (status, m) = s
        .patch(
            "/admin/models/sora2/providers/mock",
            json!({"provider_model_ids": ["mock-video-2", "mock-video-1"], "priority": 3,
                   "weight": 4, "enabled": false}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["id"], "sora2");
    assert_eq!(
        m["provider_map"]["mock"],
        json!(["mock-video-2", "mock-video-1"])
    );
    let now = route(&s);
    assert_eq!(now.vendor_models, ["mock-video-2", "mock-video-1"]);
    assert_eq!((now.priority, now.weight, now.enabled), (3, 4, false));
    assert_ne!(
        (before.priority, before.weight, before.enabled),
        (now.priority, now.weight, now.enabled)
    );

    // Bad input names the field and changes nothing, not even the valid fields beside it.
    for (body, field) in [
        (
            json!({"provider_model_ids": [], "priority": 9}),
            "provider_model_ids",
        ),
        (
            json!({"provider_model_ids": "mock-video-1"}),
            "provider_model_ids",
        ),
        (
            json!({"provider_model_ids": ["a", 3]}),
            "provider_model_ids[1]",
        ),
        (
            json!({"provider_model_ids": ["a", "a"]}),
            "provider_model_ids[1]",
        ),
        (json!({"provider_model_ids": ["a"], "weight": -1}), "weight"),
        (json!({"priority": "high"}), "priority"),
        (json!({"enabled": "no"}), "enabled"),
    ] {
        let (status, e) = s
            .patch("/admin/models/seedance-2/providers/mock", body.clone())
            .await;
        assert_names_field(status, &e, field);
        assert_eq!(route(&s), now, "{body}");
    }
    for path in [
        "/admin/models/seedance-2/providers/nobody",
        "/admin/models/no-such-model/providers/mock",
    ] {
        let (status, e) = s.patch(path, json!({"enabled": true})).await;
        assert_envelope(status, &e, StatusCode::NOT_FOUND, "not_found");
    }
    assert_eq!(route(&s), now);
}

#[tokio::test]
async fn without_a_token_the_server_is_open_on_loopback_only() {
    let s = start_with(None, |_| {}).await;
    let (status, _) = s.get("/runs").await;
    assert_eq!(status, StatusCode::OK);
    let mut c = ServerConfig::local(".");
    let public = "0.0.0.0:8088".parse().unwrap();
    let err = c.check_bind(public).unwrap_err();
    assert!(err.contains("CINEFLOW_SERVER_TOKEN"), "{err}");
    assert!(c.check_bind("127.0.0.1:8088".parse().unwrap()).is_ok());
    assert!(c.check_bind("[::1]:8088".parse().unwrap()).is_ok());
    c.token = Token::new("s3cret");
    assert!(c.check_bind(public).is_ok());
    assert!(
        !format!("{c:?}").contains("s3cret"),
        "the token never shows in Debug"
    );
    c.token = None;
    c.allow_open = true;
    assert!(c.check_bind(public).is_ok());
}
