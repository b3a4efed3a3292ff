//! Path-aware parsing and validation of CineFlow storyboard JSON.

use serde_json::Value;
use time::OffsetDateTime;

use super::{Orientation, SegmentAsset, Segment, Storyboard, DEFAULT_DURATION_S};
use crate::error::{Error, Result, Violation};
use crate::ids::{SegmentId, StoryboardId};

pub(super) fn storyboard(value: &Value) -> Result<Storyboard> {
    let segs = value
        .get("segments")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::InvalidStoryboard {
            violations: vec![Violation::new("segments", "required array")],
        })?;
    let mut segments = Vec::new();
    for (i, s) in segs.iter().enumerate() {
        segments.push(Segment {
            id: SegmentId::new(),
            index: s.get("segment_index").and_then(Value::as_u64).unwrap_or(0) as u32,
            prompt_text: s.get("prompt_text").and_then(Value::as_str).unwrap_or_default().to_owned(),
            image: None,
            asset: SegmentAsset::default(),
            duration_s: DEFAULT_DURATION_S,
            orientation: Orientation::Horizontal,
            is_pro: false,
            director_intent: None,
        });
        let _ = i;
    }
    Ok(Storyboard {
        id: StoryboardId::new(),
        name: "storyboard".into(),
        source_file: None,
        segments,
        metadata: Value::Null,
        created_at: OffsetDateTime::now_utc(),
    })
}

pub(super) fn validate_segment(segment: &Segment, path: &str) -> Vec<Violation> {
    let mut v = Vec::new();
    if segment.prompt_text.trim().is_empty() {
        v.push(Violation::new(format!("{path}.prompt_text"), "must not be blank"));
    }
    v
}

pub(super) fn check_image(s: &str) -> std::result::Result<(), String> {
    if s.is_empty() {
        return Err("must not be empty".into());
    }
    Ok(())
}
