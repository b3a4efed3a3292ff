use serde_json::Value;
use time::OffsetDateTime;

use super::*;
use crate::error::{Error, Violation};
use crate::ids::{SegmentId, StoryboardId};
use crate::storyboard::{
    Character, DEFAULT_DURATION_S, ImageRef, MAX_IMAGE_BYTES, MAX_PROMPT_CHARS, Orientation,
    SegmentAsset, Storyboard,
};

const DEMO: &str = include_str!("../../../fixtures/cineflow_demo.json");
const V2: &str = include_str!("../../../fixtures/cineflow_v2_example.json");

/// Parses `json` expecting failure; returns the violations.
fn violations(json: &str) -> Vec<Violation> {
    match Storyboard::from_json(json) {
        Ok(sb) => panic!("expected a rejection, got {sb:?}"),
        Err(Error::InvalidStoryboard { violations }) => violations,
        Err(other) => panic!("expected InvalidStoryboard, got {other:?}"),
    }
}

/// Asserts `json` is rejected with a violation at exactly `path`, which the error message
/// names too; returns that violation's message.
fn rejected_at(json: &str, path: &str) -> String {
    let err = Storyboard::from_json(json).unwrap_err();
    let text = err.to_string();
    assert!(
        text.contains(&format!("{path}: ")),
        "{text:?} does not name {path}"
    );
    let vs = violations(json);
    let v = vs
        .iter()
        .find(|v| v.path == path)
        .unwrap_or_else(|| panic!("no violation at {path} in {vs:?}"));
    v.message.clone()
}

/// A one-segment storyboard whose segment has the given extra fields.
fn one(fields: &str) -> String {
    let sep = if fields.is_empty() { "" } else { "," };
    format!(r#"{{"segments":[{{"segment_index":1,"prompt_text":"A cat."{sep}{fields}}}]}}"#)
}

#[test]
fn the_cineflow_demo_fixture_parses() {
    let sb = Storyboard::from_json(DEMO).unwrap();
    assert_eq!(sb.name, "storyboard");
    assert_eq!(sb.metadata, Value::Null);
    assert_eq!(sb.segments.len(), 2);
    let s1 = &sb.segments[0];
    assert_eq!(s1.index, 1);
    assert_eq!(s1.duration_s, 10);
    assert_eq!(s1.orientation, Orientation::Horizontal);
    assert!(!s1.is_pro);
    assert_eq!(s1.image, None);
    assert_eq!(s1.asset.scene.as_deref(), Some("Future City"));
    assert_eq!(
        s1.full_prompt(),
        "A futuristic city skyline at night with neon lights reflecting on the river. \
             Cyberpunk style. [Scene: Future City] (Director Note: Establishing shot.)"
    );
    let s2 = &sb.segments[1];
    assert_eq!(s2.index, 2);
    assert_eq!(
        s2.asset.characters,
        vec![Character {
            name: "Alice".into(),
            id: Some("@alice".into())
        }]
    );
    assert_eq!(
        s2.director_intent.as_deref(),
        Some("Character introduction.")
    );
    assert_ne!(s1.id, s2.id);
}

#[test]
fn the_cineflow_v2_fixture_parses_with_video_params() {
    let sb = Storyboard::from_json(V2).unwrap();
    assert_eq!(sb.name, "示例剧本项目");
    assert_eq!(sb.metadata["genre"], "Sci-Fi");
    assert_eq!(sb.segments.len(), 1);
    let s = &sb.segments[0];
    assert_eq!(s.duration_s, 5);
    assert_eq!(s.orientation, Orientation::Horizontal);
    assert_eq!(
        s.asset.characters,
        vec![Character {
            name: "小美".into(),
            id: Some("@xiaomei".into())
        }]
    );
    assert_eq!(s.asset.props, vec!["Books".to_owned(), "Podium".to_owned()]);
    assert_eq!(s.asset.scene.as_deref(), Some("Classroom - Day"));
    assert_eq!(sb.source_file, None);
}

#[test]
fn v1_fields_win_over_video_params() {
    let sb = Storyboard::from_json(&one(
            r#""duration_seconds":12,"resolution":"vertical","video_params":{"duration":5,"resolution":"horizontal"}"#,
        ))
        .unwrap();
    assert_eq!(sb.segments[0].duration_s, 12);
    assert_eq!(sb.segments[0].orientation, Orientation::Vertical);
}

#[test]
fn bad_video_params_duration_is_reported_at_its_own_path() {
    let msg = rejected_at(
        &one(r#""video_params":{"duration":0}"#),
        "segments[0].video_params.duration",
    );
    assert!(msg.contains("between 1 and 60"), "{msg}");
}

#[test]
fn defaults_apply_when_optional_fields_are_absent_or_null() {
    let sb = Storyboard::from_json(&one(
            r#""image_url":"","asset":null,"duration_seconds":null,"is_pro":null,"director_intent":"","resolution":null"#,
        ))
        .unwrap();
    let s = &sb.segments[0];
    assert_eq!(s.duration_s, DEFAULT_DURATION_S);
    assert_eq!(s.orientation, Orientation::Horizontal);
    assert!(!s.is_pro);
    assert_eq!(s.director_intent, None);
    assert_eq!(s.image, None);
    assert_eq!(s.asset, SegmentAsset::default());
}

#[test]
fn unknown_keys_and_comments_are_ignored() {
    let sb = Storyboard::from_json(
            r#"{"_comment":"x","whatever":[1],"segments":[{"segment_index":3,"prompt_text":"A.","camera":"pan","asset":{"mood":1}}]}"#,
        )
        .unwrap();
    assert_eq!(sb.segments[0].index, 3);
}

#[test]
fn not_json_is_rejected_at_the_root() {
    let msg = rejected_at("{\"segments\": [", "$");
    assert!(msg.contains("not valid JSON"), "{msg}");
}

#[test]
fn a_root_that_is_not_an_object_is_rejected() {
    let msg = rejected_at("[1, 2]", "$");
    assert_eq!(msg, "expected an object, got array");
}

#[test]
fn missing_segments_are_rejected() {
    assert_eq!(rejected_at("{}", "segments"), "is required");
}

#[test]
fn segments_that_are_not_an_array_are_rejected() {
    assert_eq!(
        rejected_at(r#"{"segments":{}}"#, "segments"),
        "expected an array, got object"
    );
}

#[test]
fn empty_segments_are_rejected() {
    let msg = rejected_at(r#"{"segments":[]}"#, "segments");
    assert!(msg.contains("at least one"), "{msg}");
}

#[test]
fn a_segment_that_is_not_an_object_is_rejected() {
    let json = format!(
        r#"{{"segments":[{},"oops"]}}"#,
        r#"{"segment_index":1,"prompt_text":"A."}"#
    );
    assert_eq!(
        rejected_at(&json, "segments[1]"),
        "expected an object, got string"
    );
}

#[test]
fn missing_zero_negative_and_fractional_segment_indexes_are_rejected() {
    let missing = r#"{"segments":[{"prompt_text":"A."}]}"#;
    assert_eq!(
        rejected_at(missing, "segments[0].segment_index"),
        "is required"
    );
    for (index, expected) in [
        ("0", "must be at least 1, got 0"),
        ("-3", "must be at least 1, got -3"),
        ("1.5", "expected an integer, got number 1.5"),
        ("\"1\"", "expected an integer, got string"),
        ("4294967296", "must be at most 4294967295, got 4294967296"),
    ] {
        let json = format!(r#"{{"segments":[{{"segment_index":{index},"prompt_text":"A."}}]}}"#);
        assert_eq!(rejected_at(&json, "segments[0].segment_index"), expected);
    }
}

#[test]
fn a_duplicate_segment_index_names_the_first_use() {
    let json = r#"{"segments":[
            {"segment_index":1,"prompt_text":"A."},
            {"segment_index":2,"prompt_text":"B."},
            {"segment_index":1,"prompt_text":"C."}]}"#;
    let msg = rejected_at(json, "segments[2].segment_index");
    assert!(
        msg.contains("duplicate of segments[0].segment_index"),
        "{msg}"
    );
}

#[test]
fn blank_and_missing_prompts_are_rejected() {
    let blank = r#"{"segments":[{"segment_index":1,"prompt_text":" \n\t "}]}"#;
    assert_eq!(
        rejected_at(blank, "segments[0].prompt_text"),
        "must not be blank"
    );
    let missing = r#"{"segments":[{"segment_index":1}]}"#;
    assert_eq!(
        rejected_at(missing, "segments[0].prompt_text"),
        "is required"
    );
    let number = r#"{"segments":[{"segment_index":1,"prompt_text":7}]}"#;
    assert_eq!(
        rejected_at(number, "segments[0].prompt_text"),
        "expected a string, got integer"
    );
}

#[test]
fn a_prompt_over_10000_characters_is_rejected() {
    let prompt = "猫".repeat(MAX_PROMPT_CHARS + 1);
    let json = format!(r#"{{"segments":[{{"segment_index":1,"prompt_text":"{prompt}"}}]}}"#);
    let msg = rejected_at(&json, "segments[0].prompt_text");
    assert!(msg.contains("10001 characters"), "{msg}");
}

#[test]
fn a_unicode_prompt_of_exactly_10000_characters_is_accepted() {
    let prompt = "猫🎬".repeat(MAX_PROMPT_CHARS / 2);
    let json = format!(r#"{{"segments":[{{"segment_index":1,"prompt_text":"{prompt}"}}]}}"#);
    let sb = Storyboard::from_json(&json).unwrap();
    assert_eq!(sb.segments[0].prompt_text.chars().count(), MAX_PROMPT_CHARS);
}

#[test]
fn durations_outside_1_to_60_or_not_integers_are_rejected() {
    let path = "segments[0].duration_seconds";
    assert_eq!(
        rejected_at(&one(r#""duration_seconds":0"#), path),
        "must be between 1 and 60 seconds, got 0"
    );
    assert_eq!(
        rejected_at(&one(r#""duration_seconds":61"#), path),
        "must be between 1 and 60 seconds, got 61"
    );
    assert_eq!(
        rejected_at(&one(r#""duration_seconds":"10""#), path),
        "expected an integer, got string"
    );
    assert_eq!(
        rejected_at(&one(r#""duration_seconds":-5"#), path),
        "must be between 1 and 60 seconds, got -5"
    );
    let sb = Storyboard::from_json(&one(r#""duration_seconds":25"#)).unwrap();
    assert_eq!(sb.segments[0].duration_s, 25);
}

#[test]
fn an_unknown_resolution_is_rejected() {
    let msg = rejected_at(
        &one(r#""resolution":"landscape""#),
        "segments[0].resolution",
    );
    assert_eq!(
        msg,
        r#"expected "horizontal" or "vertical", got "landscape""#
    );
    rejected_at(&one(r#""resolution":1"#), "segments[0].resolution");
}

#[test]
fn is_pro_of_the_wrong_type_is_rejected() {
    let json = format!(
        r#"{{"segments":[{},{{"segment_index":2,"prompt_text":"B.","is_pro":"yes"}}]}}"#,
        r#"{"segment_index":1,"prompt_text":"A."}"#
    );
    let err = Storyboard::from_json(&json).unwrap_err();
    assert!(
        err.to_string()
            .contains("segments[1].is_pro: expected a boolean, got string"),
        "{err}"
    );
}

#[test]
fn image_urls_with_other_schemes_are_rejected() {
    let path = "segments[0].image_url";
    let msg = rejected_at(&one(r#""image_url":"ftp://example.com/a.png""#), path);
    assert!(msg.contains("unsupported URL scheme \"ftp\""), "{msg}");
    rejected_at(&one(r#""image_url":"file:///etc/passwd""#), path);
    rejected_at(&one(r#""image_url":"HTTPS://example.com/a.png""#), path);
    rejected_at(&one(r#""image_url":"http://""#), path);
    rejected_at(&one(r#""image_url":"data:text/plain;base64,QUJD""#), path);
    rejected_at(&one(r#""image_url":"data:image/png;base64,QU*D""#), path);
    rejected_at(&one(r#""image_url":"data:image/png,QUJD""#), path);
    rejected_at(&one(r#""image_url":"a\u0000b""#), path);
    assert_eq!(
        rejected_at(&one(r#""image_url":42"#), path),
        "expected a string or null, got integer"
    );
}

#[test]
fn valid_image_references_are_accepted() {
    for (image, kind) in [
        (
            "https://example.com/a.png?sig=1",
            super::super::ImageKind::Url,
        ),
        ("http://127.0.0.1:8080/a.png", super::super::ImageKind::Url),
        (
            "data:image/png;base64,iVBORw0KGgo=",
            super::super::ImageKind::DataUrl,
        ),
        ("./refs/first frame.png", super::super::ImageKind::Path),
        ("C:\\refs\\a.png", super::super::ImageKind::Path),
        ("/tmp/小美.jpg", super::super::ImageKind::Path),
    ] {
        let sb = Storyboard::from_json(&one(&format!(
            r#""image_url":{}"#,
            serde_json::to_string(image).unwrap()
        )))
        .unwrap();
        let got = sb.segments[0].image.as_ref().unwrap();
        assert_eq!(got.as_str(), image);
        assert_eq!(got.kind(), kind);
    }
}

#[test]
fn an_oversized_data_url_image_is_rejected() {
    let payload = "A".repeat(8_600_000); // 6,450,000 bytes decoded
    let json = one(&format!(r#""image_url":"data:image/png;base64,{payload}""#));
    let msg = rejected_at(&json, "segments[0].image_url");
    assert!(msg.contains("image is 6.2 MB"), "{msg}");
    assert!(msg.contains("larger than the 5 MB limit"), "{msg}");
}

#[test]
fn a_data_url_image_of_exactly_5_mib_is_accepted() {
    // 5 MiB = 5,242,880 bytes = 3 × 1,747,626 + 2: the last quantum is `AAA=` (2 bytes).
    let payload = format!("{}=", "A".repeat(MAX_IMAGE_BYTES / 3 * 4 + 3));
    assert_eq!(
        check_image(&format!("data:image/png;base64,{payload}")),
        Ok(())
    );
    let over = "A".repeat((MAX_IMAGE_BYTES / 3 + 1) * 4);
    assert!(check_image(&format!("data:image/png;base64,{over}")).is_err());
}

#[test]
fn a_character_without_a_name_is_rejected() {
    let path = "segments[0].asset.characters[1].name";
    assert_eq!(
        rejected_at(
            &one(r#""asset":{"characters":[{"name":"A","id":"@a"},{"id":"@x"}]}"#),
            path
        ),
        "is required"
    );
    assert_eq!(
        rejected_at(
            &one(r#""asset":{"characters":["A",{"name":"","id":"@x"}]}"#),
            path
        ),
        "must not be empty"
    );
    let msg = rejected_at(
        &one(r#""asset":{"characters":["(@ghost)"]}"#),
        "segments[0].asset.characters[0]",
    );
    assert!(msg.contains("has no name"), "{msg}");
    rejected_at(
        &one(r#""asset":{"characters":[7]}"#),
        "segments[0].asset.characters[0]",
    );
}

#[test]
fn props_that_are_not_an_array_of_strings_are_rejected() {
    assert_eq!(
        rejected_at(
            &one(r#""asset":{"props":"Books"}"#),
            "segments[0].asset.props"
        ),
        "expected an array of strings or null, got string"
    );
    rejected_at(
        &one(r#""asset":{"props":["Books",1]}"#),
        "segments[0].asset.props[1]",
    );
    rejected_at(&one(r#""asset":{"scene":5}"#), "segments[0].asset.scene");
    rejected_at(&one(r#""asset":[]"#), "segments[0].asset");
}

#[test]
fn non_object_metadata_is_rejected() {
    let json = r#"{"metadata":"x","segments":[{"segment_index":1,"prompt_text":"A."}]}"#;
    assert_eq!(
        rejected_at(json, "metadata"),
        "expected an object or null, got string"
    );
}

#[test]
fn legacy_character_strings_are_read() {
    let sb = Storyboard::from_json(&one(
        r#""asset":{"characters":["Alice (@alice)","[Bob]",{"name":"Carol","id":null}]}"#,
    ))
    .unwrap();
    assert_eq!(
        sb.segments[0].asset.characters,
        vec![
            Character {
                name: "Alice".into(),
                id: Some("@alice".into())
            },
            Character {
                name: "Bob".into(),
                id: None
            },
            Character {
                name: "Carol".into(),
                id: None
            },
        ]
    );
}

#[test]
fn all_violations_are_reported_together_in_document_order() {
    let json = r#"{"metadata":3,"segments":[
            {"segment_index":0,"prompt_text":"","duration_seconds":99},
            {"segment_index":2,"prompt_text":"ok","is_pro":1,"resolution":"square"},
            5,
            {"segment_index":2,"prompt_text":"ok","image_url":"gopher://x"}]}"#;
    let paths: Vec<String> = violations(json).into_iter().map(|v| v.path).collect();
    assert_eq!(
        paths,
        [
            "metadata",
            "segments[0].segment_index",
            "segments[0].prompt_text",
            "segments[0].duration_seconds",
            "segments[1].is_pro",
            "segments[1].resolution",
            "segments[2]",
            "segments[3].segment_index",
            "segments[3].image_url",
        ]
    );
}

#[test]
fn validate_segment_rechecks_a_built_segment() {
    let sb = Storyboard::from_json(DEMO).unwrap();
    let mut s = sb.segments[1].clone();
    assert!(validate_segment(&s, "segment").is_empty());
    s.prompt_text = "  ".into();
    s.duration_s = 0;
    s.index = 0;
    s.asset.characters[0].name = String::new();
    s.image = Some(ImageRef("ftp://x/y".into()));
    let paths: Vec<String> = validate_segment(&s, "segments[1]")
        .into_iter()
        .map(|v| v.path)
        .collect();
    assert_eq!(
        paths,
        [
            "segments[1].segment_index",
            "segments[1].prompt_text",
            "segments[1].image_url",
            "segments[1].asset.characters[0].name",
            "segments[1].duration_seconds",
        ]
    );
}

mod continuity;
mod fuzz;
mod v2026;
