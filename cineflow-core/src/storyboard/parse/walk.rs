//! The path-aware walk: every violation with its JSON path, all of them collected.

use std::collections::HashMap;

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::error::{Error, Result, Violation};
use crate::ids::{SegmentId, StoryboardId};
use crate::storyboard::{
    Character, DEFAULT_DURATION_S, DURATION_RANGE_S, ImageRef, Orientation, Segment, SegmentAsset,
    Storyboard,
};

use super::options::{VideoParams, character_bible, continuity, flag, orientation_and_options};
use super::rules::{
    MODEL_CHOSEN_CONFLICT, chain_violations, check_image, duration_problem, prompt_problem,
};

/// Violations found under one object, each tagged with the position of the key it concerns so
/// they can be reported in document order.
#[derive(Debug, Default)]
pub(super) struct Found(Vec<(usize, Violation)>);

impl Found {
    pub(super) fn push(&mut self, pos: usize, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((pos, Violation::new(path, message)));
    }

    fn into_sorted(mut self) -> Vec<Violation> {
        self.0.sort_by_key(|(pos, _)| *pos);
        self.0.into_iter().map(|(_, v)| v).collect()
    }
}

/// Position of `key` in `obj` (document order thanks to `preserve_order`); missing keys sort
/// last.
pub(super) fn key_pos(obj: &Map<String, Value>, key: &str) -> usize {
    obj.keys().position(|k| k == key).unwrap_or(usize::MAX)
}

/// The JSON type of a value, for "expected …, got …" messages.
pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// A field that is absent or `null`.
pub(super) fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Reads an integer, or explains why the value is not one.
pub(super) fn integer(v: &Value) -> std::result::Result<i128, String> {
    match v {
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                Ok(i128::from(i))
            } else if let Some(u) = n.as_u64() {
                Ok(i128::from(u))
            } else {
                Err(format!("expected an integer, got number {n}"))
            }
        }
        other => Err(format!("expected an integer, got {}", type_name(other))),
    }
}

pub(in crate::storyboard) fn storyboard(value: &Value) -> Result<Storyboard> {
    let Some(root) = value.as_object() else {
        return Err(Error::InvalidStoryboard {
            violations: vec![Violation::new(
                "$",
                format!("expected an object, got {}", type_name(value)),
            )],
        });
    };
    let mut found = Found::default();

    let metadata = match root.get("metadata") {
        None | Some(Value::Null) => Value::Null,
        Some(m @ Value::Object(_)) => m.clone(),
        Some(other) => {
            found.push(
                key_pos(root, "metadata"),
                "metadata",
                format!("expected an object or null, got {}", type_name(other)),
            );
            Value::Null
        }
    };
    let name = project_name(&metadata);
    let character_bible = character_bible(root, &mut found);
    let continuity = continuity(root, &mut found);

    let mut segments = Vec::new();
    // Each segment's position in the document's `segments`.
    let mut positions = Vec::new();
    let segments_pos = key_pos(root, "segments");
    match root.get("segments") {
        None => found.push(segments_pos, "segments", "is required"),
        Some(Value::Array(items)) if items.is_empty() => {
            found.push(
                segments_pos,
                "segments",
                "must contain at least one segment",
            );
        }
        Some(Value::Array(items)) => {
            let mut seen: HashMap<u32, usize> = HashMap::new();
            for (i, item) in items.iter().enumerate() {
                let (segment, violations) =
                    parse_segment(item, &format!("segments[{i}]"), i, &mut seen);
                for v in violations {
                    found.0.push((segments_pos, v));
                }
                if let Some(segment) = segment {
                    positions.push(i);
                    segments.push(segment);
                }
            }
            let chained = positions.iter().copied().zip(&segments);
            for v in chain_violations(continuity.chain, chained) {
                found.0.push((segments_pos, v));
            }
        }
        Some(other) => found.push(
            segments_pos,
            "segments",
            format!("expected an array, got {}", type_name(other)),
        ),
    }

    let violations = found.into_sorted();
    if !violations.is_empty() {
        return Err(Error::InvalidStoryboard { violations });
    }
    Ok(Storyboard {
        id: StoryboardId::new(),
        name,
        source_file: None,
        segments,
        metadata,
        character_bible,
        continuity,
        created_at: OffsetDateTime::now_utc(),
    })
}

/// The orientation a `resolution` names: `"horizontal"` or `"vertical"`.
pub(super) fn orientation_named(resolution: &str) -> Option<Orientation> {
    [Orientation::Horizontal, Orientation::Vertical]
        .into_iter()
        .find(|o| o.as_str() == resolution)
}

/// The storyboard's name: `metadata.project_name` trimmed, else `"storyboard"`.
pub(super) fn project_name(metadata: &Value) -> String {
    metadata
        .get("project_name")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .unwrap_or("storyboard")
        .to_owned()
}

/// Parses `segments[position]`; `seen` maps each valid `segment_index` to the position that
/// used it first.
fn parse_segment(
    value: &Value,
    path: &str,
    position: usize,
    seen: &mut HashMap<u32, usize>,
) -> (Option<Segment>, Vec<Violation>) {
    let Some(obj) = value.as_object() else {
        let v = Violation::new(
            path,
            format!("expected an object, got {}", type_name(value)),
        );
        return (None, vec![v]);
    };
    let mut found = Found::default();

    // segment_index
    let index_pos = key_pos(obj, "segment_index");
    let index_path = format!("{path}.segment_index");
    let mut index = 0;
    match present(obj, "segment_index") {
        None => found.push(index_pos, &index_path, "is required"),
        Some(v) => match integer(v) {
            Err(e) => found.push(index_pos, &index_path, e),
            Ok(i) if i < 1 => found.push(
                index_pos,
                &index_path,
                format!("must be at least 1, got {i}"),
            ),
            Ok(i) => match u32::try_from(i) {
                Err(_) => found.push(
                    index_pos,
                    &index_path,
                    format!("must be at most {}, got {i}", u32::MAX),
                ),
                Ok(i) => {
                    index = i;
                    if let Some(first) = seen.get(&i) {
                        found.push(
                            index_pos,
                            &index_path,
                            format!("{i} is a duplicate of segments[{first}].segment_index"),
                        );
                    } else {
                        seen.insert(i, position);
                    }
                }
            },
        },
    }

    // prompt_text
    let prompt_pos = key_pos(obj, "prompt_text");
    let prompt_path = format!("{path}.prompt_text");
    let mut prompt_text = String::new();
    match present(obj, "prompt_text") {
        None => found.push(prompt_pos, &prompt_path, "is required"),
        Some(Value::String(s)) => {
            if let Some(problem) = prompt_problem(s) {
                found.push(prompt_pos, &prompt_path, problem);
            }
            prompt_text.clone_from(s);
        }
        Some(other) => found.push(
            prompt_pos,
            &prompt_path,
            format!("expected a string, got {}", type_name(other)),
        ),
    }

    // image_url
    let image_pos = key_pos(obj, "image_url");
    let image_path = format!("{path}.image_url");
    let mut image = None;
    match present(obj, "image_url") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => match check_image(s) {
            Ok(()) => image = Some(ImageRef(s.clone())),
            Err(e) => found.push(image_pos, &image_path, e),
        },
        Some(other) => found.push(
            image_pos,
            &image_path,
            format!("expected a string or null, got {}", type_name(other)),
        ),
    }

    // asset
    let asset_pos = key_pos(obj, "asset");
    let asset_path = format!("{path}.asset");
    let asset = match present(obj, "asset") {
        None => SegmentAsset::default(),
        Some(Value::Object(a)) => parse_asset(a, &asset_path, asset_pos, &mut found),
        Some(other) => {
            found.push(
                asset_pos,
                &asset_path,
                format!("expected an object or null, got {}", type_name(other)),
            );
            SegmentAsset::default()
        }
    };

    // V2 video_params, the fallback for duration and resolution.
    let vp_pos = key_pos(obj, "video_params");
    let vp_path = format!("{path}.video_params");
    let video_params = match present(obj, "video_params") {
        None => None,
        Some(Value::Object(vp)) => Some(vp),
        Some(other) => {
            found.push(
                vp_pos,
                &vp_path,
                format!("expected an object or null, got {}", type_name(other)),
            );
            None
        }
    };

    // duration_seconds, else video_params.duration
    let duration = match present(obj, "duration_seconds") {
        Some(v) => Some((
            v,
            key_pos(obj, "duration_seconds"),
            format!("{path}.duration_seconds"),
        )),
        None => video_params
            .and_then(|vp| present(vp, "duration"))
            .map(|v| (v, vp_pos, format!("{vp_path}.duration"))),
    };
    let mut duration_s = DEFAULT_DURATION_S;
    if let Some((v, pos, p)) = &duration {
        match integer(v) {
            Err(e) => found.push(*pos, p, e),
            Ok(d) => match u32::try_from(d)
                .ok()
                .filter(|d| DURATION_RANGE_S.contains(d))
            {
                Some(d) => duration_s = d,
                None => found.push(*pos, p, duration_problem(d)),
            },
        }
    }

    // resolution (else video_params.resolution) and the 2026 fields
    let vp = VideoParams {
        obj: video_params,
        pos: vp_pos,
        path: vp_path,
    };
    let (orientation, options) = orientation_and_options(obj, path, &vp, &mut found);
    if options.model_chosen_duration
        && let Some((_, pos, p)) = &duration
    {
        found.push(*pos, p, MODEL_CHOSEN_CONFLICT.to_owned());
    }

    // is_pro
    let mut is_pro = false;
    match present(obj, "is_pro") {
        None => {}
        Some(Value::Bool(b)) => is_pro = *b,
        Some(other) => found.push(
            key_pos(obj, "is_pro"),
            format!("{path}.is_pro"),
            format!("expected a boolean, got {}", type_name(other)),
        ),
    }

    // director_intent
    let mut director_intent = None;
    match present(obj, "director_intent") {
        None => {}
        Some(Value::String(s)) => director_intent = Some(s.clone()).filter(|s| !s.is_empty()),
        Some(other) => found.push(
            key_pos(obj, "director_intent"),
            format!("{path}.director_intent"),
            format!("expected a string or null, got {}", type_name(other)),
        ),
    }

    let continue_from_previous = flag(obj, "continue_from_previous", path, &mut found);

    let segment = Segment {
        id: SegmentId::new(),
        index,
        prompt_text,
        image,
        asset,
        duration_s,
        orientation,
        is_pro,
        director_intent,
        options,
        continue_from_previous,
    };
    (Some(segment), found.into_sorted())
}

/// Parses an `asset` object; violations are filed under the `asset` key's position.
fn parse_asset(a: &Map<String, Value>, path: &str, pos: usize, found: &mut Found) -> SegmentAsset {
    let mut asset = SegmentAsset::default();

    match present(a, "characters") {
        None => {}
        Some(Value::Array(items)) => {
            for (j, item) in items.iter().enumerate() {
                let cpath = format!("{path}.characters[{j}]");
                match item {
                    Value::String(s) => {
                        let c = Character::from_legacy(s);
                        if c.name.trim().is_empty() {
                            found.push(pos, cpath, format!("character {s:?} has no name"));
                        } else {
                            asset.characters.push(c);
                        }
                    }
                    Value::Object(c) => {
                        let name = match present(c, "name") {
                            None => {
                                found.push(pos, format!("{cpath}.name"), "is required");
                                None
                            }
                            Some(Value::String(n)) if n.trim().is_empty() => {
                                found.push(pos, format!("{cpath}.name"), "must not be empty");
                                None
                            }
                            Some(Value::String(n)) => Some(n.clone()),
                            Some(other) => {
                                found.push(
                                    pos,
                                    format!("{cpath}.name"),
                                    format!("expected a string, got {}", type_name(other)),
                                );
                                None
                            }
                        };
                        let id = match present(c, "id") {
                            None => None,
                            Some(Value::String(id)) => Some(id.clone()).filter(|id| !id.is_empty()),
                            Some(other) => {
                                found.push(
                                    pos,
                                    format!("{cpath}.id"),
                                    format!("expected a string or null, got {}", type_name(other)),
                                );
                                None
                            }
                        };
                        if let Some(name) = name {
                            asset.characters.push(Character { name, id });
                        }
                    }
                    other => found.push(
                        pos,
                        cpath,
                        format!(
                            "expected an object {{\"name\", \"id\"}} or a string, got {}",
                            type_name(other)
                        ),
                    ),
                }
            }
        }
        Some(other) => found.push(
            pos,
            format!("{path}.characters"),
            format!("expected an array or null, got {}", type_name(other)),
        ),
    }

    match present(a, "scene") {
        None => {}
        Some(Value::String(s)) => asset.scene = Some(s.clone()).filter(|s| !s.is_empty()),
        Some(other) => found.push(
            pos,
            format!("{path}.scene"),
            format!("expected a string or null, got {}", type_name(other)),
        ),
    }

    match present(a, "props") {
        None => {}
        Some(Value::Array(items)) => {
            for (j, item) in items.iter().enumerate() {
                match item {
                    Value::String(s) => asset.props.push(s.clone()),
                    other => found.push(
                        pos,
                        format!("{path}.props[{j}]"),
                        format!("expected a string, got {}", type_name(other)),
                    ),
                }
            }
        }
        Some(other) => found.push(
            pos,
            format!("{path}.props"),
            format!(
                "expected an array of strings or null, got {}",
                type_name(other)
            ),
        ),
    }

    asset
}
