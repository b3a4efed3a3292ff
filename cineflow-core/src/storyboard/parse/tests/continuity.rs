//! Continuity: `continuity.chain` and `continue_from_previous`.

use super::fuzz::{fast_agrees_with_the_walk, mutated};
use super::*;
use crate::storyboard::Chain;

/// Three shots chained on their last frames, the third one opting out with its own first frame.
const CHAINED: &str = r#"{
  "continuity": {"chain": "last_frame"},
  "segments": [
    {"segment_index": 1, "prompt_text": "A door opens.", "image_url": "https://cdn.example/door.png"},
    {"segment_index": 2, "prompt_text": "A hall."},
    {"segment_index": 3, "prompt_text": "Elsewhere.", "continue_from_previous": false,
     "image_url": "refs/elsewhere.png"},
    {"segment_index": 4, "prompt_text": "Back.", "continue_from_previous": null}
  ]
}"#;

#[test]
fn a_chained_storyboard_is_read_alike_by_both_parsers_and_each_segment_knows_if_it_continues() {
    assert!(fast_agrees_with_the_walk(CHAINED));
    let sb = Storyboard::from_json(CHAINED).unwrap();
    assert_eq!(sb.continuity.chain, Chain::LastFrame);
    let continues: Vec<bool> = sb
        .segments
        .iter()
        .map(|s| sb.continues_from_previous(s))
        .collect();
    assert_eq!(continues, [false, true, false, true]);
    assert_eq!(sb.segments[2].continue_from_previous, Some(false));
    assert_eq!(sb.segments[3].continue_from_previous, None);
    // Round trip: the storyboard as stored keeps its continuity.
    let stored = serde_json::to_string(&sb).unwrap();
    let back: Storyboard = serde_json::from_str(&stored).unwrap();
    assert_eq!(back, sb);
}

#[test]
fn a_segment_opts_in_without_a_storyboard_chain_and_the_previous_one_is_by_index() {
    let json = r#"{"segments":[
        {"segment_index":3,"prompt_text":"C.","continue_from_previous":true},
        {"segment_index":1,"prompt_text":"A."},
        {"segment_index":2,"prompt_text":"B."}]}"#;
    assert!(fast_agrees_with_the_walk(json));
    let sb = Storyboard::from_json(json).unwrap();
    assert_eq!(sb.continuity.chain, Chain::None);
    let third = &sb.segments[0];
    assert!(sb.continues_from_previous(third));
    assert_eq!(sb.previous_segment(third).map(|s| s.index), Some(2));
    assert!(!sb.continues_from_previous(&sb.segments[2]));
    assert!(
        serde_json::to_value(&sb)
            .unwrap()
            .get("continuity")
            .is_none()
    );
}

#[test]
fn bad_continuity_values_are_errors_naming_their_json_path() {
    let seg = |extra: &str| {
        format!(
            r#"{{"segments":[{{"segment_index":1,"prompt_text":"A."}},{{"segment_index":2,"prompt_text":"B."{extra}}}]}}"#
        )
    };
    let cases: [(String, &str, &str); 7] = [
        (
            r#"{"continuity":"last_frame","segments":[{"segment_index":1,"prompt_text":"A."}]}"#
                .to_owned(),
            "continuity",
            "object",
        ),
        (
            r#"{"continuity":{"chain":"first_frame"},"segments":[{"segment_index":1,"prompt_text":"A."}]}"#
                .to_owned(),
            "continuity.chain",
            "last_frame",
        ),
        (
            r#"{"continuity":{"chain":1},"segments":[{"segment_index":1,"prompt_text":"A."}]}"#
                .to_owned(),
            "continuity.chain",
            "integer",
        ),
        (
            seg(r#","continue_from_previous":"yes""#),
            "segments[1].continue_from_previous",
            "boolean",
        ),
        (
            seg(r#","continue_from_previous":true,"image_url":"https://cdn.example/b.png""#),
            "segments[1].image_url",
            "continue_from_previous",
        ),
        (
            r#"{"continuity":{"chain":"last_frame"},"segments":[{"segment_index":1,"prompt_text":"A."},{"segment_index":2,"prompt_text":"B.","image_url":"b.png"}]}"#
                .to_owned(),
            "segments[1].image_url",
            "continuity.chain",
        ),
        (
            r#"{"segments":[{"segment_index":2,"prompt_text":"B."},{"segment_index":1,"prompt_text":"A.","continue_from_previous":true}]}"#
                .to_owned(),
            "segments[1].continue_from_previous",
            "first segment",
        ),
    ];
    for (json, path, needle) in &cases {
        let msg = rejected_at(json, path);
        assert!(msg.contains(needle), "{path}: {msg}");
        assert!(from_str_fast(json).is_none(), "the fast path took {json}");
    }
}

#[test]
fn the_fast_path_agrees_with_the_walk_on_mutated_chained_documents() {
    const PIECES: &[&str] = &[
        "\"continuity\"",
        "\"chain\"",
        "\"last_frame\"",
        "\"none\"",
        "\"continue_from_previous\"",
        "\"image_url\"",
        "true",
        "false",
        "null",
        "{",
        "}",
        ",",
    ];
    let mut rng = fastrand::Rng::with_seed(0x21);
    let mut taken = 0;
    for _ in 0..3_000 {
        let bytes = mutated(&mut rng, CHAINED, PIECES, 3, 8);
        if fast_agrees_with_the_walk(&String::from_utf8_lossy(&bytes)) {
            taken += 1;
        }
    }
    assert!(taken > 100, "only {taken} mutated documents were valid");
}
