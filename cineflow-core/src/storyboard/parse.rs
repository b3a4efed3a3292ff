//! Path-aware parsing and validation of CineFlow storyboard JSON.
//!
//! The document is walked by hand (not through `serde` derive) so that every violation carries
//! its JSON path, and so that all violations are collected instead of stopping at the first.
//!
//! [`from_str_fast`] comes first for text: it deserializes straight into borrowed typed structs
//! (no `Value` tree, strings borrowed where they have no escapes) and accepts only documents the
//! path-aware walk accepts, with the same result. On anything else — a type error, a value out
//! of range, a duplicate key or index — it gives up and the path-aware walk ([`storyboard`])
//! runs on the text, so every error is still reported by that walk, with its paths.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::{
    Character, DEFAULT_DURATION_S, DURATION_RANGE_S, ImageRef, MAX_IMAGE_BYTES, MAX_PROMPT_CHARS,
    Orientation, Segment, SegmentAsset, Storyboard,
};
use crate::error::{Error, Result, Violation};
use crate::ids::{SegmentId, StoryboardId};

/// Violations found under one object, each tagged with the position of the key it concerns so
/// they can be reported in document order.
#[derive(Debug, Default)]
struct Found(Vec<(usize, Violation)>);

impl Found {
    fn push(&mut self, pos: usize, path: impl Into<String>, message: impl Into<String>) {
        self.0.push((pos, Violation::new(path, message)));
    }

    fn into_sorted(mut self) -> Vec<Violation> {
        self.0.sort_by_key(|(pos, _)| *pos);
        self.0.into_iter().map(|(_, v)| v).collect()
    }
}

/// Position of `key` in `obj` (document order thanks to `preserve_order`); missing keys sort
/// last.
fn key_pos(obj: &Map<String, Value>, key: &str) -> usize {
    obj.keys().position(|k| k == key).unwrap_or(usize::MAX)
}

/// The JSON type of a value, for "expected …, got …" messages.
fn type_name(v: &Value) -> &'static str {
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
fn present<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// Reads an integer, or explains why the value is not one.
fn integer(v: &Value) -> std::result::Result<i128, String> {
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

pub(super) fn storyboard(value: &Value) -> Result<Storyboard> {
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

    let mut segments = Vec::new();
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
                segments.extend(segment);
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
        created_at: OffsetDateTime::now_utc(),
    })
}

// ---------------------------------------------------------------------------------------------
// The fast path: typed, borrowed, all-or-nothing.

/// Parses a valid storyboard without building a `Value` tree; `None` whenever the document is
/// not valid JSON or breaks any rule (the caller then runs the path-aware [`storyboard`] walk,
/// which reports why). When it returns a storyboard, [`storyboard`] would return the same one
/// (ids and `created_at` aside): every check below mirrors one there, and is at least as strict.
pub(super) fn from_str_fast(json: &str) -> Option<Storyboard> {
    let doc: Obj<FastDoc> = serde_json::from_str(json).ok()?;
    let doc = doc.0;
    // `metadata`: absent or null → null; otherwise it must be an object.
    let metadata = match doc.metadata {
        None => Value::Null,
        Some(m @ Value::Object(_)) => m,
        Some(_) => return None,
    };
    let name = project_name(&metadata);
    if doc.segments.0.is_empty() {
        return None;
    }
    Some(Storyboard {
        id: StoryboardId::new(),
        name,
        source_file: None,
        segments: doc.segments.0,
        metadata,
        created_at: OffsetDateTime::now_utc(),
    })
}

/// Fresh random (v4) segment ids for one document, without a system call per id: the first
/// 16 bytes of SHA-256(a random v4 UUID drawn once ‖ a counter), with the version and variant
/// bits set. As unpredictable and as unlikely to collide as `Uuid::new_v4` (the key has 122
/// random bits), without the `getrandom` system call per id that took a fifth of the parse.
#[derive(Debug)]
struct SegmentIds {
    key: [u8; 16],
    next: u64,
}

impl SegmentIds {
    fn new() -> Self {
        Self {
            key: *SegmentId::new().as_uuid().as_bytes(),
            next: 0,
        }
    }

    fn next_id(&mut self) -> SegmentId {
        let digest = Sha256::new()
            .chain_update(self.key)
            .chain_update(self.next.to_le_bytes())
            .finalize();
        self.next += 1;
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        SegmentId::from_uuid(uuid::Builder::from_random_bytes(bytes).into_uuid())
    }
}

/// `segments`, converted one by one as they are read (no intermediate list); an error as soon
/// as one breaks a rule.
#[derive(Debug)]
struct FastSegments(Vec<Segment>);

impl<'de> Deserialize<'de> for FastSegments {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = FastSegments;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of segments")
            }
            fn visit_seq<A: de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> std::result::Result<FastSegments, A::Error> {
                let mut seen = HashSet::new();
                let mut ids = SegmentIds::new();
                let mut out = Vec::new();
                while let Some(Obj(s)) = seq.next_element::<Obj<FastSegment<'de>>>()? {
                    let segment = fast_segment(s, &mut seen, &mut ids)
                        .ok_or_else(|| de::Error::custom("left to the path-aware walk"))?;
                    out.push(segment);
                }
                Ok(FastSegments(out))
            }
        }
        d.deserialize_seq(V)
    }
}

fn fast_segment(
    s: FastSegment<'_>,
    seen: &mut HashSet<u32>,
    ids: &mut SegmentIds,
) -> Option<Segment> {
    // segment_index: required, an integer in 1..=u32::MAX, unique.
    let index = u32::try_from(s.segment_index?).ok().filter(|i| *i >= 1)?;
    if !seen.insert(index) {
        return None;
    }
    // prompt_text: required, not blank, at most MAX_PROMPT_CHARS characters.
    let prompt_text = s.prompt_text?.0;
    if prompt_problem(&prompt_text).is_some() {
        return None;
    }
    // image_url: absent, null or "" → none; otherwise a valid reference.
    let image = match s.image_url.map(|t| t.0) {
        None => None,
        Some(u) if u.is_empty() => None,
        Some(u) => {
            check_image(&u).ok()?;
            Some(ImageRef(u.into_owned()))
        }
    };
    let asset = match s.asset {
        None => SegmentAsset::default(),
        Some(a) => fast_asset(a.0)?,
    };
    let vp = s.video_params.map(|v| v.0);
    // duration_seconds, else video_params.duration, else the default; 1–60.
    let duration_s = match s
        .duration_seconds
        .or_else(|| vp.as_ref().and_then(|v| v.duration))
    {
        None => DEFAULT_DURATION_S,
        Some(d) => u32::try_from(d)
            .ok()
            .filter(|d| DURATION_RANGE_S.contains(d))?,
    };
    // resolution, else video_params.resolution; "horizontal" (default) or "vertical".
    let resolution = match s.resolution {
        Some(r) => Some(r.0),
        None => vp.and_then(|v| v.resolution).map(|r| r.0),
    };
    let orientation = match resolution.as_deref() {
        None => Orientation::Horizontal,
        Some(r) => orientation_named(r)?,
    };
    Some(Segment {
        id: ids.next_id(),
        index,
        prompt_text: prompt_text.into_owned(),
        image,
        asset,
        duration_s,
        orientation,
        is_pro: s.is_pro.unwrap_or(false),
        director_intent: non_empty(s.director_intent),
    })
}

fn fast_asset(a: FastAsset<'_>) -> Option<SegmentAsset> {
    let mut characters = Vec::with_capacity(a.characters.as_ref().map_or(0, Vec::len));
    for c in a.characters.into_iter().flatten() {
        characters.push(match c {
            FastCharacter::Legacy(s) => {
                let c = Character::from_legacy(&s);
                if c.name.trim().is_empty() {
                    return None;
                }
                c
            }
            FastCharacter::Object(o) => {
                let name = o.name?.0;
                if name.trim().is_empty() {
                    return None;
                }
                Character {
                    name: name.into_owned(),
                    id: non_empty(o.id),
                }
            }
        });
    }
    Some(SegmentAsset {
        characters,
        scene: non_empty(a.scene),
        props: a
            .props
            .into_iter()
            .flatten()
            .map(|p| p.0.into_owned())
            .collect(),
    })
}

/// An optional string where `""` means absent.
fn non_empty(t: Option<Text<'_>>) -> Option<String> {
    t.map(|t| t.0)
        .filter(|s| !s.is_empty())
        .map(Cow::into_owned)
}

/// A JSON string, borrowed from the input when it has no escapes.
#[derive(Debug, Deserialize)]
struct Text<'a>(#[serde(borrow)] Cow<'a, str>);

/// A struct read only from a JSON object (derived structs would also take an array).
#[derive(Debug)]
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = Obj<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> std::result::Result<Obj<T>, A::Error> {
                T::deserialize(de::value::MapAccessDeserializer::new(map)).map(Obj)
            }
        }
        d.deserialize_map(V(PhantomData))
    }
}

/// The document. Unknown keys are ignored (as by the walk); a repeated known key is an error.
#[derive(Debug, Deserialize)]
struct FastDoc {
    segments: FastSegments,
    metadata: Option<Value>,
}

#[derive(Debug, Deserialize)]
struct FastSegment<'a> {
    segment_index: Option<u64>,
    #[serde(borrow)]
    prompt_text: Option<Text<'a>>,
    #[serde(borrow)]
    image_url: Option<Text<'a>>,
    #[serde(borrow)]
    asset: Option<Obj<FastAsset<'a>>>,
    #[serde(borrow)]
    video_params: Option<Obj<FastVideoParams<'a>>>,
    duration_seconds: Option<u64>,
    #[serde(borrow)]
    resolution: Option<Text<'a>>,
    is_pro: Option<bool>,
    #[serde(borrow)]
    director_intent: Option<Text<'a>>,
}

/// `video_params`; its fields are read strictly even when V1 fields make them unused (a bad
/// unused value only sends the document down the walk, which accepts it).
#[derive(Debug, Deserialize)]
struct FastVideoParams<'a> {
    duration: Option<u64>,
    #[serde(borrow)]
    resolution: Option<Text<'a>>,
}

#[derive(Debug, Deserialize)]
struct FastAsset<'a> {
    #[serde(borrow)]
    characters: Option<Vec<FastCharacter<'a>>>,
    #[serde(borrow)]
    scene: Option<Text<'a>>,
    #[serde(borrow)]
    props: Option<Vec<Text<'a>>>,
}

/// A character: CineFlow's legacy `"Name(@id)"` string or `{"name", "id"}`.
#[derive(Debug)]
enum FastCharacter<'a> {
    Legacy(Cow<'a, str>),
    Object(FastCharacterObject<'a>),
}

#[derive(Debug, Deserialize)]
struct FastCharacterObject<'a> {
    #[serde(borrow)]
    name: Option<Text<'a>>,
    #[serde(borrow)]
    id: Option<Text<'a>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for FastCharacter<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<'a>(PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = FastCharacter<'a>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an object")
            }
            fn visit_borrowed_str<E: de::Error>(
                self,
                v: &'de str,
            ) -> std::result::Result<Self::Value, E> {
                Ok(FastCharacter::Legacy(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
                Ok(FastCharacter::Legacy(Cow::Owned(v.to_owned())))
            }
            fn visit_string<E: de::Error>(self, v: String) -> std::result::Result<Self::Value, E> {
                Ok(FastCharacter::Legacy(Cow::Owned(v)))
            }
            fn visit_map<A: MapAccess<'de>>(
                self,
                map: A,
            ) -> std::result::Result<Self::Value, A::Error> {
                FastCharacterObject::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(FastCharacter::Object)
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

// ---------------------------------------------------------------------------------------------
// The path-aware walk.

/// The orientation a `resolution` names: `"horizontal"` or `"vertical"`.
fn orientation_named(resolution: &str) -> Option<Orientation> {
    [Orientation::Horizontal, Orientation::Vertical]
        .into_iter()
        .find(|o| o.as_str() == resolution)
}

/// The storyboard's name: `metadata.project_name` trimmed, else `"storyboard"`.
fn project_name(metadata: &Value) -> String {
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
    if let Some((v, pos, p)) = duration {
        match integer(v) {
            Err(e) => found.push(pos, p, e),
            Ok(d) => match u32::try_from(d)
                .ok()
                .filter(|d| DURATION_RANGE_S.contains(d))
            {
                Some(d) => duration_s = d,
                None => found.push(pos, p, duration_problem(d)),
            },
        }
    }

    // resolution, else video_params.resolution
    let resolution = match present(obj, "resolution") {
        Some(v) => Some((v, key_pos(obj, "resolution"), format!("{path}.resolution"))),
        None => video_params
            .and_then(|vp| present(vp, "resolution"))
            .map(|v| (v, vp_pos, format!("{vp_path}.resolution"))),
    };
    let mut orientation = Orientation::Horizontal;
    if let Some((v, pos, p)) = resolution {
        match v {
            Value::String(s) => match orientation_named(s) {
                Some(o) => orientation = o,
                None => found.push(
                    pos,
                    p,
                    format!("expected \"horizontal\" or \"vertical\", got {s:?}"),
                ),
            },
            other => found.push(
                pos,
                p,
                format!(
                    "expected \"horizontal\" or \"vertical\", got {}",
                    type_name(other)
                ),
            ),
        }
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

/// Why a prompt is unacceptable, if it is.
fn prompt_problem(s: &str) -> Option<String> {
    if s.trim().is_empty() {
        return Some("must not be blank".into());
    }
    // A string has at least as many bytes as characters: short ones need no count.
    if s.len() <= MAX_PROMPT_CHARS {
        return None;
    }
    let chars = s.chars().count();
    (chars > MAX_PROMPT_CHARS).then(|| {
        format!("is {chars} characters long, longer than the {MAX_PROMPT_CHARS}-character limit")
    })
}

fn duration_problem(d: impl std::fmt::Display) -> String {
    format!(
        "must be between {} and {} seconds, got {d}",
        DURATION_RANGE_S.start(),
        DURATION_RANGE_S.end()
    )
}

pub(super) fn validate_segment(segment: &Segment, path: &str) -> Vec<Violation> {
    let mut v = Vec::new();
    if segment.index < 1 {
        v.push(Violation::new(
            format!("{path}.segment_index"),
            format!("must be at least 1, got {}", segment.index),
        ));
    }
    if let Some(problem) = prompt_problem(&segment.prompt_text) {
        v.push(Violation::new(format!("{path}.prompt_text"), problem));
    }
    if let Some(image) = &segment.image
        && let Err(e) = check_image(image.as_str())
    {
        v.push(Violation::new(format!("{path}.image_url"), e));
    }
    for (j, c) in segment.asset.characters.iter().enumerate() {
        if c.name.trim().is_empty() {
            v.push(Violation::new(
                format!("{path}.asset.characters[{j}].name"),
                "must not be empty",
            ));
        }
    }
    if !DURATION_RANGE_S.contains(&segment.duration_s) {
        v.push(Violation::new(
            format!("{path}.duration_seconds"),
            duration_problem(segment.duration_s),
        ));
    }
    v
}

/// `^[a-zA-Z][a-zA-Z0-9+.-]*://`: the scheme, if `s` starts like a URL.
fn url_scheme(s: &str) -> Option<&str> {
    let end = s.find("://")?;
    let scheme = &s[..end];
    let mut chars = scheme.chars();
    let first = chars.next()?;
    (first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-')))
    .then_some(scheme)
}

/// Human size in MB (MiB, as the limit is 5 × 1024 × 1024 bytes).
fn megabytes(bytes: usize) -> String {
    let mb = bytes as f64 / (1024.0 * 1024.0);
    format!("{mb:.1} MB")
}

fn check_data_url(s: &str) -> std::result::Result<(), String> {
    let Some(rest) = s.strip_prefix("data:") else {
        return Err("a data URL must start with \"data:\" (lowercase)".into());
    };
    let Some(subtype_and_rest) = rest.strip_prefix("image/") else {
        return Err("a data URL must be an image: data:image/<type>;base64,…".into());
    };
    let Some((subtype, payload)) = subtype_and_rest.split_once(";base64,") else {
        return Err("a data URL must be base64-encoded: data:image/<type>;base64,…".into());
    };
    if subtype.is_empty()
        || !subtype
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    {
        return Err(format!(
            "data URL has an invalid image type {:?}",
            truncate(subtype, 40)
        ));
    }
    if payload.is_empty() {
        return Err("data URL has no image data".into());
    }
    let body = payload.trim_end_matches('=');
    let padding = payload.len() - body.len();
    if padding > 2 {
        return Err("data URL payload is not valid base64 (too much '=' padding)".into());
    }
    if let Some(bad) = body
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '/')))
    {
        return Err(format!(
            "data URL payload is not valid base64 (unexpected character {bad:?})"
        ));
    }
    if payload.len() % 4 == 1 || (padding > 0 && payload.len() % 4 != 0) {
        return Err("data URL payload is not valid base64 (truncated)".into());
    }
    let len = payload.len();
    let size = match len % 4 {
        0 => len / 4 * 3 - padding,
        rem => len / 4 * 3 + (rem - 1),
    };
    if size > MAX_IMAGE_BYTES {
        return Err(format!(
            "image is {} ({size} bytes), larger than the {} MB limit",
            megabytes(size),
            MAX_IMAGE_BYTES / (1024 * 1024)
        ));
    }
    Ok(())
}

/// The first `max` characters of `s`, for messages.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    }
}

pub(super) fn check_image(s: &str) -> std::result::Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
        return check_data_url(s);
    }
    if let Some(scheme) = url_scheme(s) {
        if scheme != "http" && scheme != "https" {
            return Err(
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
                    format!("URL scheme {scheme:?} must be lowercase (http:// or https://)")
                } else {
                    format!(
                        "unsupported URL scheme {:?}: use an http(s) URL, a data:image URL or a local file path",
                        truncate(scheme, 20)
                    )
                },
            );
        }
        let url = url::Url::parse(s).map_err(|e| format!("not a valid URL: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
            return Err("URL has no host".into());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEMO: &str = include_str!("../../fixtures/cineflow_demo.json");
    const V2: &str = include_str!("../../fixtures/cineflow_v2_example.json");

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
            let json =
                format!(r#"{{"segments":[{{"segment_index":{index},"prompt_text":"A."}}]}}"#);
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
    fn mutated(
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
    fn fast_agrees_with_the_walk(text: &str) -> bool {
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
}
