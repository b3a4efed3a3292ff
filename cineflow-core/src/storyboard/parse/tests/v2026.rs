//! The 2026 segment fields and the character bible's reference images.

use super::fuzz::{fast_agrees_with_the_walk, mutated};
use super::*;
use crate::storyboard::{
    AspectRatio, MAX_REFERENCE_IMAGES, MediaKind, MediaRef, MediaRole, Resolution, SegmentPatch,
    VideoOptions,
};

/// A storyboard with every new field, a bible with reference images, and a V2 segment.
const EVERY: &str = r#"{
  "character_bible": [
    {"id": "@bob", "name": "Bob", "reference_images": ["https://cdn.example/bob.png"]},
    {"name": "Alice", "aliases": ["Al"], "reference_images": ["refs/alice-1.png", "refs/alice-2.png"]},
    {"id": "@carol", "name": "Carol", "description": "no images"}
  ],
  "segments": [
    {"segment_index": 1, "prompt_text": "Alice meets Bob.",
     "asset": {"characters": [{"name": "Alice"}, {"name": "Bobby", "id": "@bob"}]},
     "image_url": "https://cdn.example/first.png",
     "aspect_ratio": "21:9", "video_resolution": "1080p",
     "last_frame_url": "https://cdn.example/last.png",
     "reference_images": ["https://cdn.example/style.png"],
     "reference_videos": ["https://cdn.example/move.mp4"],
     "reference_audio": ["data:audio/mpeg;base64,AAAA"],
     "generate_audio": true, "seed": 18446744073709551615, "negative_prompt": "blur, text",
     "return_last_frame": true, "model_chosen_duration": true},
    {"segment_index": 2, "prompt_text": "Carol alone.", "asset": {"characters": ["Carol(@carol)"]},
     "video_params": {"duration": 5, "resolution": "720p"}, "aspect_ratio": "9:16"}
  ]
}"#;

#[test]
fn every_new_field_is_read_and_the_fast_path_builds_what_the_walk_builds() {
    assert!(fast_agrees_with_the_walk(EVERY));
    let sb = Storyboard::from_json(EVERY).unwrap();
    let s = &sb.segments[0];
    assert_eq!(s.orientation, Orientation::Horizontal);
    assert_eq!(s.aspect_ratio(), AspectRatio::R21x9);
    let o = &s.options;
    assert_eq!(o.resolution, Some(Resolution::P1080));
    assert_eq!(
        o.last_frame.as_ref().map(ImageRef::as_str),
        Some("https://cdn.example/last.png")
    );
    let kinds: Vec<MediaKind> = o.references.iter().map(MediaRef::kind).collect();
    assert_eq!(
        kinds,
        [MediaKind::Image, MediaKind::Video, MediaKind::Audio]
    );
    assert!(
        o.references
            .iter()
            .all(|r| r.role() == MediaRole::Reference)
    );
    assert_eq!(
        (o.generate_audio, o.seed, o.negative_prompt.as_deref()),
        (Some(true), Some(u64::MAX), Some("blur, text"))
    );
    assert!(o.return_last_frame && o.model_chosen_duration);
    let v2 = &sb.segments[1];
    assert!(!v2.options.return_last_frame && !v2.options.model_chosen_duration);
    assert_eq!(
        (v2.duration_s, v2.orientation, v2.options.resolution),
        (5, Orientation::Vertical, Some(Resolution::P720))
    );
    assert_eq!(sb.character_bible.len(), 3);
    assert_eq!(sb.character_bible[1].id, None);
}

#[test]
fn bible_images_follow_the_segments_own_references_in_bible_order() {
    let sb = Storyboard::from_json(EVERY).unwrap();
    // Segment 1 names Alice (by name) and Bob (by id, under another name); the bible lists
    // Bob first.
    let refs = sb.character_references(&sb.segments[0]);
    let sources: Vec<&str> = refs.iter().map(MediaRef::source).collect();
    assert_eq!(
        sources,
        [
            "https://cdn.example/bob.png",
            "refs/alice-1.png",
            "refs/alice-2.png"
        ]
    );
    assert!(refs.iter().all(|r| r.role() == MediaRole::Character));
    let all = sb.video_options(&sb.segments[0]).references;
    assert_eq!(all.len(), 6);
    assert_eq!(all[0].source(), "https://cdn.example/style.png");
    assert_eq!(all[3..], refs[..]);
    // Carol is in the bible without images; a segment naming nobody gets nothing.
    assert!(sb.character_references(&sb.segments[1]).is_empty());
}

#[test]
fn an_aspect_ratio_that_disagrees_with_the_orientation_is_an_error_naming_both_paths() {
    let msg = rejected_at(
        &one(r#""resolution":"vertical","aspect_ratio":"16:9""#),
        "segments[0].aspect_ratio",
    );
    assert!(msg.contains("segments[0].resolution"), "{msg}");
    let msg = rejected_at(
        &one(r#""video_params":{"resolution":"horizontal"},"aspect_ratio":"3:4""#),
        "segments[0].aspect_ratio",
    );
    assert!(msg.contains("segments[0].video_params.resolution"), "{msg}");
    // Agreeing values are fine; an aspect ratio alone sets the orientation.
    let sb = Storyboard::from_json(&one(r#""resolution":"vertical","aspect_ratio":"9:16""#));
    assert_eq!(sb.unwrap().segments[0].orientation, Orientation::Vertical);
    let sb = Storyboard::from_json(&one(r#""aspect_ratio":"3:4""#)).unwrap();
    assert_eq!(sb.segments[0].orientation, Orientation::Vertical);
}

#[test]
fn a_video_resolution_that_disagrees_with_video_params_is_an_error_naming_both_paths() {
    let msg = rejected_at(
        &one(r#""video_params":{"resolution":"720p"},"video_resolution":"1080p""#),
        "segments[0].video_resolution",
    );
    assert!(msg.contains("segments[0].video_params.resolution"), "{msg}");
    let same = one(r#""video_params":{"resolution":"720p"},"video_resolution":"720p""#);
    assert!(fast_agrees_with_the_walk(&same));
    let msg = rejected_at(
        &one(r#""video_params":{"resolution":"1280x720"}"#),
        "segments[0].video_params.resolution",
    );
    assert!(msg.contains("720p") && msg.contains("horizontal"), "{msg}");
}

#[test]
fn every_bad_new_value_is_an_error_naming_its_json_path() {
    let eleven: Vec<String> = (0..=MAX_REFERENCE_IMAGES)
        .map(|i| format!("\"refs/{i}.png\""))
        .collect();
    let too_many = format!(r#""reference_images":[{}]"#, eleven.join(","));
    let cases: [(String, &str, &str); 18] = [
        (one(r#""seed":-1"#), "segments[0].seed", "at least 0"),
        (one(r#""seed":1.5"#), "segments[0].seed", "integer"),
        (one(r#""seed":"7""#), "segments[0].seed", "integer"),
        (one(r#""aspect_ratio":"16x9""#), "segments[0].aspect_ratio", "21:9"),
        (one(r#""video_resolution":"2k""#), "segments[0].video_resolution", "1080p"),
        (one(r#""last_frame_url":"ftp://x/y""#), "segments[0].last_frame_url", "ftp"),
        (one(&too_many), "segments[0].reference_images", "more than the 9"),
        (
            one(r#""reference_videos":["a.mp4","data:image/png;base64,AAAA"]"#),
            "segments[0].reference_videos[1]",
            "data:video/",
        ),
        (one(r#""reference_audio":"a.mp3""#), "segments[0].reference_audio", "array"),
        (one(r#""generate_audio":"yes""#), "segments[0].generate_audio", "boolean"),
        (one(r#""return_last_frame":1"#), "segments[0].return_last_frame", "boolean"),
        (one(r#""model_chosen_duration":"auto""#), "segments[0].model_chosen_duration", "boolean"),
        (
            one(r#""model_chosen_duration":true,"duration_seconds":5"#),
            "segments[0].duration_seconds",
            "give only one",
        ),
        (
            one(r#""model_chosen_duration":true,"video_params":{"duration":5}"#),
            "segments[0].video_params.duration",
            "model_chosen_duration",
        ),
        (one(r#""negative_prompt":"  ""#), "segments[0].negative_prompt", "blank"),
        (
            r#"{"character_bible":[{"name":"A","reference_images":[""]}],"segments":[{"segment_index":1,"prompt_text":"A."}]}"#.to_owned(),
            "character_bible[0].reference_images[0]",
            "empty",
        ),
        (
            r#"{"character_bible":[{"description":"x","reference_images":["a.png"]}],"segments":[{"segment_index":1,"prompt_text":"A."}]}"#.to_owned(),
            "character_bible[0]",
            "no name or id",
        ),
        (
            r#"{"character_bible":{"A":1},"segments":[{"segment_index":1,"prompt_text":"A."}]}"#.to_owned(),
            "character_bible",
            "array",
        ),
    ];
    for (json, path, needle) in &cases {
        let msg = rejected_at(json, path);
        assert!(msg.contains(needle), "{path}: {msg}");
        assert!(from_str_fast(json).is_none(), "the fast path took {json}");
    }
}

#[test]
fn absent_null_and_empty_new_fields_leave_everything_to_the_model() {
    let json = one(
        r#""aspect_ratio":null,"video_resolution":null,"last_frame_url":"","reference_images":[],
           "reference_videos":null,"generate_audio":null,"seed":null,"negative_prompt":"",
           "return_last_frame":null,"model_chosen_duration":false"#,
    );
    assert!(fast_agrees_with_the_walk(&json));
    let sb = Storyboard::from_json(&json).unwrap();
    assert_eq!(sb.segments[0].options, VideoOptions::default());
    assert_eq!(sb.segments[0].aspect_ratio(), AspectRatio::R16x9);
    // Stored before the fields existed: a segment without `options` still deserializes.
    let mut stored = serde_json::to_value(&sb).unwrap();
    assert!(stored["segments"][0].get("options").is_none());
    stored["segments"][0]
        .as_object_mut()
        .unwrap()
        .remove("options");
    let back: Storyboard = serde_json::from_value(stored).unwrap();
    assert_eq!(back, sb);
}

#[test]
fn a_patch_of_the_new_fields_is_validated_and_its_aspect_ratio_brings_its_orientation() {
    let sb = Storyboard::from_json(&one("")).unwrap();
    let mut s = sb.segments[0].clone();
    let options = VideoOptions {
        aspect_ratio: Some(AspectRatio::R9x16),
        seed: Some(3),
        ..VideoOptions::default()
    };
    s.apply(&SegmentPatch {
        options: Some(options.clone()),
        ..SegmentPatch::default()
    })
    .unwrap();
    assert_eq!(
        (s.orientation, s.options.seed),
        (Orientation::Vertical, Some(3))
    );
    let image = MediaRef::image("refs/a.png", MediaRole::Reference).unwrap();
    let crowded = VideoOptions {
        references: vec![image; MAX_REFERENCE_IMAGES + 1],
        ..options
    };
    let before = s.clone();
    let Err(Error::InvalidStoryboard { violations }) = s.apply(&SegmentPatch {
        options: Some(crowded),
        orientation: Some(Orientation::Horizontal),
        ..SegmentPatch::default()
    }) else {
        panic!("expected InvalidStoryboard");
    };
    let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
    assert_eq!(paths, ["segment.aspect_ratio", "segment.reference_images"]);
    assert_eq!(s, before);
}

#[test]
fn the_fast_path_agrees_with_the_walk_on_mutated_documents_with_new_fields() {
    const PIECES: &[&str] = &[
        "\"aspect_ratio\"",
        "\"video_resolution\"",
        "\"720p\"",
        "\"9:16\"",
        "\"seed\"",
        "-1",
        "1.5",
        "\"reference_images\"",
        "\"character_bible\"",
        "\"name\"",
        "\"id\"",
        "null",
        "\"\"",
        "[",
        "]",
        ",",
        "\"ftp://x\"",
    ];
    let mut rng = fastrand::Rng::with_seed(0x2026);
    let mut taken = 0;
    for _ in 0..3_000 {
        let bytes = mutated(&mut rng, EVERY, PIECES, 3, 8);
        if fast_agrees_with_the_walk(&String::from_utf8_lossy(&bytes)) {
            taken += 1;
        }
    }
    assert!(taken > 150, "only {taken} mutated documents were valid");
}
