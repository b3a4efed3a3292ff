//! Mutated and random documents: no panic, and the fast path agrees with the walk.

use std::collections::HashSet;

use super::*;

/// What the mutation tests insert: JSON punctuation, keys and values of the format, and
/// awkward text.
const PIECES: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    "\"",
    "null",
    "0",
    "-1",
    "1e400",
    "99999999999999999999",
    "\"segments\"",
    "\"segment_index\"",
    "\"asset\"",
    "\"characters\"",
    "true",
    "\"@\"",
    "\"小美\"",
    "\"data:image/png;base64,\"",
    "\"http://\"",
    "\\u0000",
    "🎬",
    "1.5",
    "61",
    "\"\"",
    "\" \"",
    "\"prompt_text\"",
    "\"video_params\"",
    "\"duration\"",
    "\"resolution\"",
    "\"vertical\"",
    "\"\\u00e9\"",
    "\\n",
];

/// `base` after 1 to `max_edits - 1` random edits: a cut of up to `max_cut - 1` bytes, one of
/// `pieces` inserted, or a byte overwritten.
pub(super) fn mutated(
    rng: &mut fastrand::Rng,
    base: &str,
    pieces: &[&str],
    max_edits: usize,
    max_cut: usize,
) -> Vec<u8> {
    let mut bytes = base.as_bytes().to_vec();
    for _ in 0..rng.usize(1..max_edits) {
        let at = rng.usize(0..=bytes.len());
        match rng.u8(0..3) {
            0 if at < bytes.len() => {
                let end = (at + rng.usize(1..max_cut)).min(bytes.len());
                bytes.drain(at..end);
            }
            1 => {
                let piece = pieces[rng.usize(0..pieces.len())].as_bytes();
                bytes.splice(at..at, piece.iter().copied());
            }
            _ if at < bytes.len() => bytes[at] = rng.u8(..),
            _ => {}
        }
    }
    bytes
}

#[test]
fn truncated_and_mutated_documents_never_panic() {
    for text in [DEMO, V2] {
        for (i, _) in text.char_indices() {
            let _ = Storyboard::from_json(&text[..i]);
        }
    }
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for round in 0..3_000 {
        let base = if round % 2 == 0 { DEMO } else { V2 };
        let bytes = mutated(&mut rng, base, PIECES, 6, 16);
        let text = String::from_utf8_lossy(&bytes);
        if let Ok(sb) = Storyboard::from_json(&text) {
            for s in &sb.segments {
                let _ = s.full_prompt();
                let _ = s.validate();
            }
        }
    }
}

#[test]
fn structurally_mutated_values_never_panic() {
    fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        match rng.u8(0..8) {
            0 => Value::Null,
            1 => Value::Bool(rng.bool()),
            2 => serde_json::json!(rng.i64(..)),
            3 => serde_json::json!(rng.f64() * 100.0),
            4 => Value::String(
                ["", " ", "小美", "@a", "x".repeat(3).as_str()][rng.usize(0..5)].into(),
            ),
            5 if depth < 3 => Value::Array(
                (0..rng.usize(0..3))
                    .map(|_| random_value(rng, depth + 1))
                    .collect(),
            ),
            6 if depth < 3 => {
                let keys = [
                    "name",
                    "id",
                    "duration",
                    "segment_index",
                    "prompt_text",
                    "scene",
                ];
                Value::Object(
                    (0..rng.usize(0..3))
                        .map(|_| {
                            (
                                keys[rng.usize(0..keys.len())].to_owned(),
                                random_value(rng, depth + 1),
                            )
                        })
                        .collect(),
                )
            }
            _ => serde_json::json!(rng.u32(0..70)),
        }
    }
    fn mutate(v: &mut Value, rng: &mut fastrand::Rng) {
        match v {
            Value::Object(m) if !m.is_empty() && rng.bool() => {
                let keys: Vec<String> = m.keys().cloned().collect();
                let key = &keys[rng.usize(0..keys.len())];
                if let Some(child) = m.get_mut(key) {
                    mutate(child, rng);
                }
            }
            Value::Array(a) if !a.is_empty() && rng.bool() => {
                let i = rng.usize(0..a.len());
                mutate(&mut a[i], rng);
            }
            _ => *v = random_value(rng, 0),
        }
    }
    let base: Value = serde_json::from_str(V2).unwrap();
    let demo: Value = serde_json::from_str(DEMO).unwrap();
    let mut rng = fastrand::Rng::with_seed(42);
    for round in 0..3_000 {
        let mut v = if round % 2 == 0 {
            base.clone()
        } else {
            demo.clone()
        };
        for _ in 0..rng.usize(1..4) {
            mutate(&mut v, &mut rng);
        }
        if let Ok(sb) = Storyboard::from_value(&v) {
            for s in &sb.segments {
                let _ = s.full_prompt();
            }
        }
        // The same document as text: the fast path agrees with the walk.
        fast_agrees_with_the_walk(&v.to_string());
    }
}

/// The storyboard with its random parts (ids, creation time) zeroed.
fn normalized(mut sb: Storyboard) -> Storyboard {
    sb.id = StoryboardId::from_uuid(uuid::Uuid::nil());
    sb.created_at = OffsetDateTime::UNIX_EPOCH;
    for s in &mut sb.segments {
        s.id = SegmentId::from_uuid(uuid::Uuid::nil());
    }
    sb
}

/// If the fast path accepts `text`, the path-aware walk accepts it too, with the same
/// storyboard. Returns whether the fast path accepted it.
pub(super) fn fast_agrees_with_the_walk(text: &str) -> bool {
    let Some(fast) = from_str_fast(text) else {
        return false;
    };
    let value: Value = serde_json::from_str(text)
        .unwrap_or_else(|e| panic!("the fast path accepted invalid JSON {text:?}: {e}"));
    let slow = storyboard(&value)
        .unwrap_or_else(|e| panic!("the fast path accepted {text:?}; the walk says {e}"));
    assert_eq!(normalized(fast), normalized(slow), "{text}");
    true
}

#[test]
fn the_fast_path_takes_valid_documents_and_builds_what_the_walk_builds() {
    let escaped = r#"{"metadata":{"project_name":"  Q\"uote  "},"segments":[
            {"segment_index":2,"prompt_text":"Line\nbreak \u5c0f\u7f8e \"q\"","image_url":"https://x.test/a.png",
             "asset":{"characters":["[Alice(@alice)]",{"name":"B\u00f6b","id":""},{"name":"C","id":"@c","extra":1}],
                      "scene":"","props":["a",""]},
             "duration_seconds":null,"video_params":{"duration":25,"resolution":"vertical","fps":24},
             "is_pro":true,"director_intent":""},
            {"segment_index":1,"prompt_text":"B.","image_url":"","asset":null,"resolution":null,
             "video_params":null,"is_pro":null,"director_intent":null,"camera":{"x":[1,2,{"y":null}]}}]}"#;
    for text in [
        DEMO,
        V2,
        escaped,
        &one(""),
        &one(r#""duration_seconds":60"#),
    ] {
        assert!(fast_agrees_with_the_walk(text), "not taken: {text}");
    }
    let sb = Storyboard::from_json(escaped).unwrap();
    let ids: HashSet<SegmentId> = sb.segments.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 2, "segment ids are distinct");
    assert!(ids.iter().all(|id| id.as_uuid().get_version_num() == 4));
    assert_ne!(
        Storyboard::from_json(DEMO).unwrap().segments[0].id,
        Storyboard::from_json(DEMO).unwrap().segments[0].id,
        "every parse draws new ids"
    );
    assert_eq!(sb.name, "Q\"uote");
    assert_eq!(sb.segments[0].prompt_text, "Line\nbreak 小美 \"q\"");
    assert_eq!(sb.segments[0].duration_s, 25);
    assert_eq!(sb.segments[0].orientation, Orientation::Vertical);
    assert_eq!(sb.segments[0].asset.characters[1].id, None);
    assert_eq!(sb.segments[1].duration_s, DEFAULT_DURATION_S);
}

#[test]
fn the_fast_path_leaves_every_rule_breaker_to_the_walk() {
    let cases = [
            r#"[{"segments":[{"segment_index":1,"prompt_text":"A."}]}]"#.to_owned(),
            r#"{"segments":[[1,"A."]]}"#.to_owned(),
            r#"{"segments":[]}"#.to_owned(),
            r#"{"segments":null}"#.to_owned(),
            r#"{"metadata":[],"segments":[{"segment_index":1,"prompt_text":"A."}]}"#.to_owned(),
            r#"{"segments":[{"segment_index":1,"prompt_text":"A.","prompt_text":"B."}]}"#.to_owned(),
            r#"{"segments":[{"segment_index":1,"prompt_text":"A."}],"segments":[]}"#.to_owned(),
            r#"{"segments":[{"segment_index":1,"prompt_text":"A."},{"segment_index":1,"prompt_text":"B."}]}"#.to_owned(),
            one(r#""asset":[]"#),
            one(r#""asset":{"characters":[["Alice"]]}"#),
            one(r#""asset":{"characters":[{"id":"@a"}]}"#),
            one(r#""asset":{"characters":["  "]}"#),
            one(r#""asset":{"characters":[" (@x)"]}"#),
            one(r#""asset":{"props":[1]}"#),
            one(r#""video_params":[]"#),
            one(r#""video_params":{"duration":0}"#),
            one(r#""video_params":{"duration":"10"}"#),
            one(r#""duration_seconds":10.0"#),
            one(r#""duration_seconds":-0"#),
            one(r#""duration_seconds":61"#),
            one(r#""resolution":"Horizontal""#),
            one(r#""is_pro":"yes""#),
            one(r#""image_url":"ftp://x/y""#),
            one(r#""image_url":" ""#),
            r#"{"segments":[{"segment_index":0,"prompt_text":"A."}]}"#.to_owned(),
            r#"{"segments":[{"segment_index":4294967296,"prompt_text":"A."}]}"#.to_owned(),
            r#"{"segments":[{"segment_index":1,"prompt_text":"  "}]}"#.to_owned(),
            r#"{"segments":[{"prompt_text":"A."}]}"#.to_owned(),
            format!(
                r#"{{"segments":[{{"segment_index":1,"prompt_text":"{}"}}]}}"#,
                "x".repeat(MAX_PROMPT_CHARS + 1)
            ),
        ];
    for text in &cases {
        assert!(from_str_fast(text).is_none(), "the fast path took {text}");
    }
    // A bad value the walk never looks at: the fast path gives up, the walk accepts.
    let unused = one(r#""duration_seconds":10,"video_params":{"duration":"x"}"#);
    assert!(from_str_fast(&unused).is_none());
    assert_eq!(
        Storyboard::from_json(&unused).unwrap().segments[0].duration_s,
        10
    );
}

#[test]
fn the_fast_path_agrees_with_the_walk_on_mutated_documents() {
    let mut rng = fastrand::Rng::with_seed(0xfa57);
    let mut taken = 0;
    for round in 0..6_000 {
        let base = if round % 2 == 0 { DEMO } else { V2 };
        let bytes = mutated(&mut rng, base, PIECES, 4, 8);
        if fast_agrees_with_the_walk(&String::from_utf8_lossy(&bytes)) {
            taken += 1;
        }
    }
    // Enough mutations keep the document valid for the comparison to mean something.
    assert!(taken > 300, "only {taken} mutated documents were valid");
}
