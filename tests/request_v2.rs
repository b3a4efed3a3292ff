//! Storyboard fields for the 2026 request (issue 14, item 2): the example storyboard with every
//! field parses, and every field reaches the vendor's request (a `MockProvider` records each
//! request it is sent); a last frame is never sent to a model without last-frame support; the
//! character bible's images reach the request in bible order; the retired-model refusal and the
//! opt-in alias hold for a storyboard using the new fields.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use cineflow_core::mock::MockProvider;
use cineflow_core::{
    AspectRatio, Capabilities, Error, ErrorCode, GenerationRequest, ImageRef, MediaKind, MediaRef,
    MediaRole, MemoryStore, ModelAlias, ModelCapabilities, ModelId, Orchestrator, Orientation,
    Resolution, Router, RouterConfig, RunSpec, RunStatus, Store, Storyboard, Task, TaskQuery,
    TaskStatus, VideoProvider,
};
use time::macros::date;

mod common;

use common::{fast_config, model, run_to_end};

const EVERY_FIELD: &str = include_str!("../examples/storyboards/every_field.json");
const CDN: &str = "https://cdn.example.com/harbour";

fn every_field() -> Storyboard {
    Storyboard::from_json(EVERY_FIELD).unwrap()
}

/// A router sending [`model`] to `mock` as `mock-video-1`.
fn router(mock: &MockProvider) -> Router {
    let provider: Arc<dyn VideoProvider> = Arc::new(mock.clone());
    Router::new().route(model(), provider, "mock-video-1")
}

/// The request `mock` received for the task of segment `index`.
fn request_of(mock: &MockProvider, tasks: &[Task], index: u32) -> GenerationRequest {
    let task = tasks.iter().find(|t| t.segment_index == index).unwrap();
    let sent: Vec<GenerationRequest> = mock
        .submitted_requests()
        .into_iter()
        .filter(|r| r.task_id == task.id)
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    sent.into_iter().next().unwrap()
}

fn sources(refs: &[MediaRef]) -> Vec<(MediaKind, MediaRole, String)> {
    refs.iter()
        .map(|r| (r.kind(), r.role(), r.source().to_owned()))
        .collect()
}

#[test]
fn the_example_storyboard_with_every_field_parses() {
    let sb = every_field();
    assert_eq!(sb.name, "Harbour at dawn");
    assert_eq!(sb.segments.len(), 3);
    assert_eq!(sb.character_bible.len(), 2);
    let s1 = &sb.segments[0];
    assert_eq!(
        (s1.duration_s, s1.is_pro, s1.aspect_ratio()),
        (8, true, AspectRatio::R21x9)
    );
    assert_eq!(s1.options.references.len(), 3);
    let s2 = &sb.segments[1];
    assert_eq!(
        (s2.duration_s, s2.orientation, s2.options.resolution),
        (5, Orientation::Vertical, Some(Resolution::P720))
    );
    assert!(s2.options.return_last_frame);
    assert!(sb.segments[2].options.model_chosen_duration);
}

#[test]
fn the_readme_table_documents_every_field_of_the_example_storyboard() {
    let readme = include_str!("../README.md");
    let doc: serde_json::Value = serde_json::from_str(EVERY_FIELD).unwrap();
    let mut keys: Vec<String> = doc.as_object().unwrap().keys().cloned().collect();
    for (list, prefix) in [("segments", ""), ("character_bible", "character_bible[].")] {
        for item in doc[list].as_array().unwrap() {
            for (k, v) in item.as_object().unwrap() {
                keys.push(format!("{prefix}{k}"));
                if let Some(obj) = v.as_object() {
                    keys.extend(obj.keys().map(|sub| format!("{prefix}{k}.{sub}")));
                }
            }
        }
    }
    // The first cell of each table row: the field(s) it documents.
    let rows: Vec<&str> = readme
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split(" |").next())
        .collect();
    for key in keys.iter().filter(|k| *k != "_comment") {
        let cell = format!("`{key}`");
        assert!(
            rows.iter().any(|r| format!("`{r}").contains(&cell)),
            "README's storyboard fields table has no row for `{key}`"
        );
    }
}

#[tokio::test]
async fn each_request_carries_every_field_of_its_segment() {
    let mock = MockProvider::new("mock").unwrap();
    let (run, tasks) = run_to_end(router(&mock), fast_config(), every_field(), |s| s).await;
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(mock.submits(), 3);

    let r1 = request_of(&mock, &tasks, 1);
    assert_eq!(r1.vendor_model, "mock-video-1");
    assert_eq!((r1.duration_s, r1.is_pro), (8, true));
    assert!(
        r1.prompt.starts_with("@tomas rows towards"),
        "{}",
        r1.prompt
    );
    assert_eq!(r1.aspect_ratio, AspectRatio::R21x9);
    assert_eq!(r1.resolution, Some(Resolution::P1080));
    assert_eq!(
        r1.first_frame.as_ref().map(ImageRef::as_str),
        Some(format!("{CDN}/keyframe-1.png").as_str())
    );
    assert_eq!(
        r1.last_frame.as_ref().map(ImageRef::as_str),
        Some(format!("{CDN}/keyframe-1-end.png").as_str())
    );
    assert_eq!(r1.generate_audio, Some(true));
    assert_eq!(r1.seed, Some(20_260_924));
    assert_eq!(
        r1.negative_prompt.as_deref(),
        Some("text, watermark, extra limbs")
    );
    // The segment's own references (images, videos, audio), then the bible's characters the
    // segment names, in bible order (Mara before Tomas, though the segment lists Tomas first).
    use MediaKind::{Audio, Image, Video};
    use MediaRole::{Character, Reference};
    let expected: Vec<(MediaKind, MediaRole, String)> = [
        (Image, Reference, "style-board.png"),
        (Video, Reference, "camera-move.mp4"),
        (Audio, Reference, "gulls.mp3"),
        (Image, Character, "mara-front.png"),
        (Image, Character, "mara-profile.png"),
        (Image, Character, "tomas.png"),
    ]
    .into_iter()
    .map(|(k, r, f)| (k, r, format!("{CDN}/{f}")))
    .collect();
    assert_eq!(sources(&r1.references), expected);
    // The sidecar says what the shot was made from.
    let t1 = tasks.iter().find(|t| t.segment_index == 1).unwrap();
    let inputs = &cineflow_core::sink::sidecar(t1)["inputs"];
    assert_eq!(inputs["first_frame"], format!("{CDN}/keyframe-1.png"));
    assert_eq!(inputs["last_frame"], format!("{CDN}/keyframe-1-end.png"));
    let listed: Vec<(String, String, String)> = inputs["references"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let field = |k: &str| r[k].as_str().unwrap().to_owned();
            (field("kind"), field("role"), field("source"))
        })
        .collect();
    let want: Vec<(String, String, String)> = expected
        .iter()
        .map(|(k, r, src)| {
            let name = |v: String| v.trim_matches('"').to_owned();
            (
                name(serde_json::to_string(k).unwrap()),
                name(serde_json::to_string(r).unwrap()),
                src.clone(),
            )
        })
        .collect();
    assert_eq!(listed, want);

    let r2 = request_of(&mock, &tasks, 2);
    assert_eq!(r2.duration_s, 5);
    assert_eq!(
        (r2.aspect_ratio, r2.resolution),
        (AspectRatio::R9x16, Some(Resolution::P720))
    );
    assert_eq!(r2.generate_audio, Some(false));
    assert_eq!(
        (r2.first_frame.clone(), r2.last_frame.clone()),
        (None, None)
    );
    assert_eq!((r2.seed, r2.negative_prompt.clone()), (None, None));
    assert!(r2.return_last_frame && !r2.model_chosen_duration);
    assert!(!r1.return_last_frame && !r1.model_chosen_duration);
    let r3 = request_of(&mock, &tasks, 3);
    assert!(r3.model_chosen_duration && !r3.return_last_frame);
    // `continuity.chain`: segment 3 starts on the frame the vendor returned for segment 2
    // (segment 2 itself is a cut: `continue_from_previous: false`).
    let s2 = tasks.iter().find(|t| t.segment_index == 2).unwrap();
    let frame = s2.last_frame.as_ref().unwrap();
    assert_eq!(
        r3.first_frame.as_ref().map(ImageRef::as_str),
        Some(frame.location.as_str())
    );
    assert_eq!(
        sources(&r2.references),
        [
            (Image, Character, format!("{CDN}/mara-front.png")),
            (Image, Character, format!("{CDN}/mara-profile.png")),
        ]
    );
}

#[tokio::test]
async fn character_references_from_the_bible_reach_the_request_in_bible_order() {
    let sb = Storyboard::from_json(
        r#"{"character_bible":[
              {"name":"Ann","reference_images":["refs/ann-1.png","refs/ann-2.png"]},
              {"name":"Ben","id":"@ben","reference_images":["refs/ben.png"]},
              {"name":"Cy","reference_images":["refs/cy.png"]}],
            "segments":[{"segment_index":1,"prompt_text":"Ben and Ann talk.",
              "asset":{"characters":[{"name":"Benjamin","id":"@ben"},"Ann"]}}]}"#,
    )
    .unwrap();
    let mock = MockProvider::new("mock").unwrap();
    let (run, tasks) = run_to_end(router(&mock), fast_config(), sb, |s| s).await;
    assert_eq!(run.status, RunStatus::Completed);
    let refs = request_of(&mock, &tasks, 1).references;
    let got: Vec<(MediaRole, &str)> = refs.iter().map(|r| (r.role(), r.source())).collect();
    assert_eq!(
        got,
        [
            (MediaRole::Character, "refs/ann-1.png"),
            (MediaRole::Character, "refs/ann-2.png"),
            (MediaRole::Character, "refs/ben.png"),
        ],
        "Cy is not in the segment; Ben is matched by id"
    );
}

#[tokio::test]
async fn a_last_frame_sent_to_a_model_without_last_frame_support_is_never_submitted_and_fails_no_provider_naming_the_field()
 {
    let no_last_frame =
        ModelCapabilities::everything(ModelCapabilities::ANY).with_last_frame(false);
    let mock = MockProvider::new("mock")
        .unwrap()
        .with_capabilities(Capabilities::of_models([no_last_frame]));
    let sb = Storyboard::from_json(
        r#"{"segments":[{"segment_index":1,"prompt_text":"A door closes.",
            "image_url":"https://cdn.example.com/open.png",
            "last_frame_url":"https://cdn.example.com/closed.png"}]}"#,
    )
    .unwrap();
    let (run, tasks) = run_to_end(router(&mock), fast_config(), sb, |s| s).await;
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(mock.submits(), 0, "nothing is sent, nothing is paid");
    assert_eq!(tasks.len(), 1);
    assert_eq!(tasks[0].status, TaskStatus::Failed);
    let error = tasks[0].error.as_ref().unwrap();
    assert_eq!(error.code, ErrorCode::NoProvider);
    assert!(
        error
            .message
            .contains("mock/mock-video-1: last_frame not supported"),
        "{}",
        error.message
    );
}

/// The default catalog's router at a day after the Sora sunset, with `vendors`, over a fresh
/// store; the storyboard with every field is added.
async fn catalog_env(
    cfg: RouterConfig,
    vendors: &[&MockProvider],
) -> (
    Orchestrator,
    Arc<MemoryStore>,
    Storyboard,
    tempfile::TempDir,
) {
    let router = common::catalog_router(cfg, date!(2026 - 11 - 23), vendors);
    let (orch, store, dir) = common::orchestrator(router, fast_config());
    let sb = every_field();
    orch.add_storyboard(&sb).await.unwrap();
    (orch, store, sb, dir)
}

fn mid(s: &str) -> ModelId {
    ModelId::new(s).unwrap()
}

#[tokio::test]
async fn a_retired_logical_model_is_refused_at_create_run_for_a_storyboard_with_new_fields() {
    let sora_hk = MockProvider::new("sora_hk").unwrap();
    let jimeng = MockProvider::new("jimeng").unwrap();
    let (orch, _store, sb, _dir) =
        catalog_env(RouterConfig::default_catalog(), &[&sora_hk, &jimeng]).await;
    let err = orch
        .create_run(RunSpec::new(sb.id, mid("sora2")))
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NoProvider { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains("retired on 2026-09-24") && msg.contains("aliases.sora2 = \"seedance-2\""),
        "{msg}"
    );
    assert_eq!((sora_hk.submits(), jimeng.submits()), (0, 0));
}

#[tokio::test]
async fn the_opt_in_alias_runs_a_storyboard_with_new_fields_and_records_the_substitution() {
    let mut cfg = RouterConfig::default_catalog();
    cfg.aliases.insert(mid("sora2"), mid("seedance-2"));
    let jimeng = MockProvider::new("jimeng").unwrap();
    let (orch, store, sb, _dir) = catalog_env(cfg, &[&jimeng]).await;
    let run = orch
        .create_run(RunSpec::new(sb.id, mid("sora2")))
        .await
        .unwrap();
    let run = orch.start(run.id).await.unwrap().wait().await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    let tasks = store
        .list_tasks(&TaskQuery::for_run(run.id))
        .await
        .unwrap()
        .items;
    let alias = ModelAlias {
        from: mid("sora2"),
        to: mid("seedance-2"),
    };
    for task in &tasks {
        assert_eq!(task.model, mid("seedance-2"));
        assert_eq!(task.attempts[0].model_alias.as_ref(), Some(&alias));
    }
    let r1 = request_of(&jimeng, &tasks, 1);
    assert_eq!(r1.vendor_model, "jimeng-video-seedance-2.0");
    assert_eq!(
        (r1.aspect_ratio, r1.seed, r1.references.len()),
        (AspectRatio::R21x9, Some(20_260_924), 6)
    );
}

#[tokio::test]
async fn every_request_carries_the_job_timeout_as_its_time_budget() {
    let mock = MockProvider::new("mock").unwrap();
    let mut config = fast_config();
    config.poll.job_timeout = std::time::Duration::from_secs(2 * 3600);
    let (run, tasks) = run_to_end(router(&mock), config, common::shots(2), |s| s).await;
    assert_eq!(run.status, RunStatus::Completed);
    for index in [1, 2] {
        assert_eq!(
            request_of(&mock, &tasks, index).time_budget_s,
            Some(7200),
            "segment {index}"
        );
    }
}
