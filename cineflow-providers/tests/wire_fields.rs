#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Every request field an HTTP adapter declares supported reaches the vendor's wire body.
//!
//! One test per HTTP adapter (and per model family where they differ): a request setting every
//! field the model's capabilities declare supported to a non-default value is accepted by the
//! capabilities, [`covers_every_declared_field`] checks that no declared field was left out, and
//! wiremock matches each field's wire form (`body_partial_json`, or the multipart text parts)
//! exactly once. The other half of the check, every unsupported field refused before
//! any HTTP call, is the conformance test `unsupported_fields_are_refused_before_any_call`,
//! run for every HTTP adapter by its own test file.

#![cfg(all(
    feature = "openai_compat",
    feature = "runway",
    feature = "jimeng",
    feature = "sorahk",
    feature = "conformance"
))]

use cineflow_core::{
    AspectRatio, GenerationRequest, ImageRef, ModelCapabilities, Resolution, TaskId, VideoProvider,
};
use cineflow_providers::conformance::TEST_KEY;
use cineflow_providers::jimeng::{JimengOfficial, JimengProxy};
use cineflow_providers::openai_compat::{OpenAiCompatBuilder, Preset};
use cineflow_providers::runway::Runway;
use cineflow_providers::sorahk::SoraHk;
use cineflow_providers::{ApiKeyBuilder, HttpBuilder};
use serde_json::json;
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const PROMPT: &str = "A lighthouse at dusk, waves breaking.";
const FIRST: &str = "https://img.example/first.png";
const LAST: &str = "https://img.example/last.png";
/// A 1x1 PNG, inline (the OpenAI protocol uploads the first frame as a file).
const PNG: &str = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

fn image(s: &str) -> ImageRef {
    ImageRef::new(s).unwrap()
}

/// Fails when `caps` declares a field `req` does not set (so the wire test would not show it),
/// or when the model cannot serve `req` at all.
fn covers_every_declared_field(p: &dyn VideoProvider, req: &GenerationRequest) {
    let model = p.capabilities().model(&req.vendor_model).unwrap();
    assert_eq!(p.capabilities().rejects(req), None, "{}", model.id);
    let declared: &ModelCapabilities = model;
    let missing = [
        ("pro", declared.pro && !req.is_pro),
        (
            "aspect_ratio",
            declared.aspect_ratios.len() > 1 && req.aspect_ratio == AspectRatio::default(),
        ),
        (
            "resolution",
            !declared.resolutions.is_empty() && req.resolution.is_none(),
        ),
        (
            "first_frame",
            declared.first_frame && req.first_frame.is_none(),
        ),
        (
            "last_frame",
            declared.last_frame && req.last_frame.is_none(),
        ),
        ("seed", declared.seed && req.seed.is_none()),
        (
            "generate_audio",
            declared.audio && req.generate_audio.is_none(),
        ),
        (
            "negative_prompt",
            declared.negative_prompt && req.negative_prompt.is_none(),
        ),
        ("watermark", declared.watermark && req.watermark.is_none()),
        (
            "return_last_frame",
            declared.return_last_frame && !req.return_last_frame,
        ),
        (
            "references",
            declared.max_reference_images
                + declared.max_reference_videos
                + declared.max_reference_audio
                > 0
                && req.references.is_empty(),
        ),
    ];
    for (field, left_out) in missing {
        assert!(
            !left_out,
            "{}: declares {field} but the test does not set it",
            model.id
        );
    }
}

async fn submits_once(p: &dyn VideoProvider, server: &MockServer, req: &GenerationRequest) {
    covers_every_declared_field(p, req);
    p.submit(req).await.unwrap();
    server.verify().await;
}

#[tokio::test]
async fn the_openai_protocol_sends_size_and_the_first_frame_for_every_declared_field() {
    let server = MockServer::start().await;
    let p = OpenAiCompatBuilder::preset(Preset::AiHubMix)
        .with_api_key(TEST_KEY)
        .with_base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap();
    // 9:16 at 1080p (pro): the vertical pro size; the first frame as the `input_reference` file.
    let req = GenerationRequest::new(TaskId::new(), "sora-2-pro", PROMPT, 8)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_resolution(Resolution::P1080)
        .with_pro(true)
        .with_first_frame(image(PNG));
    let mut mock = Mock::given(method("POST")).and(path("/v1/videos"));
    for part in [
        "name=\"size\"\r\n\r\n1024x1792\r\n",
        "name=\"seconds\"\r\n\r\n8\r\n",
        "name=\"model\"\r\n\r\nsora-2-pro\r\n",
        "name=\"input_reference\"; filename=\"reference.png\"",
    ] {
        // Lossy: the body holds the image's binary bytes.
        mock = mock.and(move |r: &Request| String::from_utf8_lossy(&r.body).contains(part));
    }
    mock.respond_with(
        ResponseTemplate::new(200).set_body_json(json!({"id": "video_1", "status": "queued"})),
    )
    .expect(1)
    .mount(&server)
    .await;
    submits_once(&p, &server, &req).await;
}

#[tokio::test]
async fn the_openai_protocol_sends_the_720p_size_for_a_720p_request() {
    let server = MockServer::start().await;
    let p = OpenAiCompatBuilder::preset(Preset::ApiYi)
        .with_api_key(TEST_KEY)
        .with_base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap();
    let req = GenerationRequest::new(TaskId::new(), "sora-2", PROMPT, 4)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_resolution(Resolution::P720);
    Mock::given(method("POST"))
        .and(path("/v1/videos"))
        .and(body_partial_json(
            json!({"size": "720x1280", "seconds": "4"}),
        ))
        .respond_with(
            ResponseTemplate::new(200).set_body_json(json!({"id": "video_2", "status": "queued"})),
        )
        .expect(1)
        .mount(&server)
        .await;
    p.submit(&req).await.unwrap();
    server.verify().await;
}

fn runway(server: &MockServer) -> Runway {
    Runway::builder()
        .with_base_url(server.uri())
        .with_api_key(TEST_KEY)
        .build()
        .unwrap()
}

async fn mount_runway(server: &MockServer, endpoint: &str, body: serde_json::Value) {
    Mock::given(method("POST"))
        .and(path(endpoint))
        .and(body_partial_json(body))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "task-1"})))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn runway_gen4_sends_ratio_seed_and_the_first_frame_for_every_declared_field() {
    for (model, ratio, width_height) in [
        ("gen4.5", AspectRatio::R21x9, "1584:672"),
        ("gen4_turbo", AspectRatio::R4x3, "1104:832"),
        ("gen4_turbo", AspectRatio::R3x4, "832:1104"),
        ("gen4.5", AspectRatio::R1x1, "960:960"),
    ] {
        let server = MockServer::start().await;
        let p = runway(&server);
        let req = GenerationRequest::new(TaskId::new(), model, PROMPT, 10)
            .with_aspect_ratio(ratio)
            .with_resolution(Resolution::P720)
            .with_first_frame(image(FIRST))
            .with_seed(4_294_967_295);
        mount_runway(
            &server,
            "/v1/image_to_video",
            json!({"model": model, "ratio": width_height, "seed": 4_294_967_295_u64,
                   "promptImage": FIRST, "duration": 10}),
        )
        .await;
        submits_once(&p, &server, &req).await;
    }
}

#[tokio::test]
async fn runway_veo_sends_the_1080p_ratio_both_frames_audio_and_negative_prompt() {
    let server = MockServer::start().await;
    let p = runway(&server);
    let req = GenerationRequest::new(TaskId::new(), "veo3.1", PROMPT, 6)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_resolution(Resolution::P1080)
        .with_pro(true)
        .with_first_frame(image(FIRST))
        .with_last_frame(image(LAST))
        .with_generate_audio(false)
        .with_negative_prompt("text overlays");
    mount_runway(
        &server,
        "/v1/image_to_video",
        json!({"model": "veo3.1", "ratio": "1080:1920", "audio": false,
               "negativePrompt": "text overlays", "duration": 6,
               "promptImage": [{"uri": FIRST, "position": "first"},
                               {"uri": LAST, "position": "last"}]}),
    )
    .await;
    submits_once(&p, &server, &req).await;

    // veo3: no last frame, no audio; a text request at 1080p without the pro flag.
    let server = MockServer::start().await;
    let p = runway(&server);
    let req = GenerationRequest::new(TaskId::new(), "veo3", PROMPT, 8)
        .with_resolution(Resolution::P1080)
        .with_negative_prompt("rain");
    mount_runway(
        &server,
        "/v1/text_to_video",
        json!({"model": "veo3", "ratio": "1920:1080", "negativePrompt": "rain"}),
    )
    .await;
    p.submit(&req).await.unwrap();
    server.verify().await;
}

#[tokio::test]
async fn runway_refuses_what_a_mode_or_tier_has_no_ratio_for_before_any_call() {
    let server = MockServer::start().await;
    let p = runway(&server);
    let text = |model: &str| GenerationRequest::new(TaskId::new(), model, PROMPT, 8);
    for (req, field) in [
        // gen4.5 text requests take 16:9 and 9:16 only.
        (
            text("gen4.5").with_aspect_ratio(AspectRatio::R1x1),
            "aspect_ratio",
        ),
        (
            text("veo3.1")
                .with_pro(true)
                .with_resolution(Resolution::P720),
            "resolution 720p contradicts is_pro",
        ),
        (
            text("gen4.5")
                .with_first_frame(image(FIRST))
                .with_seed(u64::from(u32::MAX) + 1),
            "seed",
        ),
    ] {
        let e = p.submit(&req).await.unwrap_err();
        assert!(e.message().contains(field), "{field}: {e:?}");
        assert_eq!(e.submit_state(), cineflow_core::SubmitState::NotSent);
    }
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn the_jimeng_proxy_sends_ratio_resolution_and_both_frames_for_every_declared_field() {
    for (ratio, wire_ratio) in [(AspectRatio::R21x9, "21:9"), (AspectRatio::R3x4, "3:4")] {
        let server = MockServer::start().await;
        let p = JimengProxy::builder()
            .with_base_url(server.uri())
            .with_api_key(TEST_KEY)
            .build()
            .unwrap();
        let req = GenerationRequest::new(TaskId::new(), "jimeng-video-3.5-pro", PROMPT, 10)
            .with_aspect_ratio(ratio)
            .with_resolution(Resolution::P1080)
            .with_pro(true)
            .with_first_frame(image(FIRST))
            .with_last_frame(image(LAST));
        Mock::given(method("POST"))
            .and(path("/v1/videos/generations"))
            .and(body_partial_json(json!({
                "model": "jimeng-video-3.5-pro", "ratio": wire_ratio, "resolution": "1080p",
                "duration": 10, "file_paths": [FIRST, LAST]
            })))
            .respond_with(
                ResponseTemplate::new(200)
                    .set_body_json(json!({"created": 1, "task_id": "t-1", "status": "pending"})),
            )
            .expect(1)
            .mount(&server)
            .await;
        submits_once(&p, &server, &req).await;
    }
}

#[tokio::test]
async fn the_official_jimeng_api_sends_the_first_and_last_frame_req_key_seed_and_ratio() {
    let server = MockServer::start().await;
    let p = JimengOfficial::builder()
        .with_base_url(server.uri())
        .with_credentials("AKTEST", TEST_KEY)
        .build()
        .unwrap();
    let req = GenerationRequest::new(TaskId::new(), "", PROMPT, 10)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_resolution(Resolution::P1080)
        .with_pro(true)
        .with_first_frame(image(FIRST))
        .with_last_frame(image(LAST))
        .with_seed(2_147_483_647);
    Mock::given(method("POST"))
        .and(body_partial_json(json!({
            "req_key": "jimeng_i2v_first_tail_v30_1080", "aspect_ratio": "9:16",
            "seed": 2_147_483_647, "frames": 241, "image_urls": [FIRST, LAST]
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": 10000, "data": {"task_id": "7392616336519610409"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    submits_once(&p, &server, &req).await;

    // 720p with one frame: the 720p first-frame key; no seed: -1 (random).
    let server = MockServer::start().await;
    let p = JimengOfficial::builder()
        .with_base_url(server.uri())
        .with_credentials("AKTEST", TEST_KEY)
        .build()
        .unwrap();
    let req = GenerationRequest::new(TaskId::new(), "", PROMPT, 5)
        .with_resolution(Resolution::P720)
        .with_first_frame(image(FIRST));
    Mock::given(method("POST"))
        .and(body_partial_json(json!({
            "req_key": "jimeng_i2v_first_v30", "aspect_ratio": "16:9", "seed": -1, "frames": 121
        })))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(json!({"code": 10000, "data": {"task_id": "1"}})),
        )
        .expect(1)
        .mount(&server)
        .await;
    p.submit(&req).await.unwrap();
    server.verify().await;
}

#[tokio::test]
async fn sora_hk_sends_orientation_pro_and_the_first_frame_for_every_declared_field() {
    let server = MockServer::start().await;
    let p = SoraHk::builder()
        .with_api_key(TEST_KEY)
        .with_base_url(format!("{}/v1", server.uri()))
        .build()
        .unwrap();
    let req = GenerationRequest::new(TaskId::new(), "sora2", PROMPT, 25)
        .with_aspect_ratio(AspectRatio::R9x16)
        .with_pro(true)
        .with_first_frame(image(FIRST));
    Mock::given(method("POST"))
        .and(path("/v1/create"))
        .and(body_partial_json(json!({
            "resolution": "vertical", "is_pro": true, "duration": 25, "image_url": FIRST
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": 200, "message": "ok", "data": {"task_id": "t-1", "status": "pending"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    submits_once(&p, &server, &req).await;
    let declared = p.capabilities().model("sora2").unwrap();
    assert_eq!(
        declared.aspect_ratios,
        [AspectRatio::R16x9, AspectRatio::R9x16],
        "only horizontal and vertical exist"
    );
    assert!(declared.resolutions.is_empty() && !declared.last_frame && !declared.seed);
}
