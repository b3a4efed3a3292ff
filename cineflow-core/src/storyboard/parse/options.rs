//! The path-aware walk of a segment's orientation and 2026 fields, and of `character_bible`.
//!
//! Two rules tie the new fields to the old ones, and neither silently prefers one of two values:
//! - `aspect_ratio` must agree with the orientation given by `resolution` (or, without it, by
//!   V2 `video_params.resolution`): 16:9 … with `horizontal`, 9:16 and 3:4 with `vertical`
//!   (see [`AspectRatio::orientation`]); without an orientation it sets the orientation.
//! - V2 `video_params.resolution` holds an orientation (`horizontal|vertical`, CineFlow's
//!   values) or a resolution (`480p|720p|1080p|4k`); as a resolution it must equal
//!   `video_resolution` when both are given.

use serde_json::{Map, Value};

use crate::storyboard::{
    AspectRatio, BibleCharacter, Chain, Continuity, ImageRef, MediaKind, MediaRef, MediaRole,
    Orientation, Resolution, VideoOptions,
};

use super::rules::{
    aspect_problem, chain_named, check_image, count_problem, list_key, prompt_problem,
};
use super::walk::{Found, integer, key_pos, orientation_named, present, type_name};

/// A value for "got …": strings quoted, other values by type.
fn got(v: &Value) -> String {
    match v {
        Value::String(s) => format!("{s:?}"),
        other => type_name(other).to_owned(),
    }
}

/// `a, b, c` of wire names.
fn names<T: Copy>(all: &[T], name: fn(T) -> &'static str) -> String {
    all.iter().map(|t| name(*t)).collect::<Vec<_>>().join(", ")
}

/// Where the V2 `video_params` object of a segment is.
#[derive(Debug)]
pub(super) struct VideoParams<'a> {
    /// The object, if present and an object.
    pub(super) obj: Option<&'a Map<String, Value>>,
    /// Its key's position in the segment.
    pub(super) pos: usize,
    /// Its JSON path.
    pub(super) path: String,
}

/// The orientation and 2026 fields of the segment `obj` at `path`.
pub(super) fn orientation_and_options(
    obj: &Map<String, Value>,
    path: &str,
    vp: &VideoParams<'_>,
    found: &mut Found,
) -> (Orientation, VideoOptions) {
    let mut orientation = Orientation::Horizontal;
    // The path of the field the orientation came from, if one gave it.
    let mut orientation_from: Option<String> = None;
    if let Some(v) = present(obj, "resolution") {
        let p = format!("{path}.resolution");
        match v.as_str().and_then(orientation_named) {
            Some(o) => {
                orientation = o;
                orientation_from = Some(p);
            }
            None => found.push(
                key_pos(obj, "resolution"),
                p,
                format!("expected \"horizontal\" or \"vertical\", got {}", got(v)),
            ),
        }
    }
    let mut vp_resolution: Option<(Resolution, String)> = None;
    if let Some(v) = vp.obj.and_then(|o| present(o, "resolution")) {
        let p = format!("{}.resolution", vp.path);
        let s = v.as_str();
        if let Some(o) = s.and_then(orientation_named) {
            // CineFlow's rule: the V1 field, when given, wins.
            if orientation_from.is_none() {
                orientation = o;
                orientation_from = Some(p);
            }
        } else if let Some(r) = s.and_then(|s| s.parse::<Resolution>().ok()) {
            vp_resolution = Some((r, p));
        } else {
            found.push(
                vp.pos,
                p,
                format!(
                    "expected \"horizontal\", \"vertical\" or one of {}, got {}",
                    names(&Resolution::ALL, Resolution::as_str),
                    got(v)
                ),
            );
        }
    }

    let mut options = VideoOptions::default();
    if let Some(v) = present(obj, "aspect_ratio") {
        let (pos, p) = (key_pos(obj, "aspect_ratio"), format!("{path}.aspect_ratio"));
        match v.as_str().and_then(|s| s.parse::<AspectRatio>().ok()) {
            Some(ar) => {
                match &orientation_from {
                    Some(from) => {
                        if let Some(problem) = aspect_problem(ar, orientation, from) {
                            found.push(pos, p, problem);
                        }
                    }
                    None => orientation = ar.orientation(),
                }
                options.aspect_ratio = Some(ar);
            }
            None => found.push(
                pos,
                p,
                format!(
                    "expected one of {}, got {}",
                    names(&AspectRatio::ALL, AspectRatio::as_str),
                    got(v)
                ),
            ),
        }
    }

    if let Some(v) = present(obj, "video_resolution") {
        let (pos, p) = (
            key_pos(obj, "video_resolution"),
            format!("{path}.video_resolution"),
        );
        match v.as_str().and_then(|s| s.parse::<Resolution>().ok()) {
            Some(r) => {
                if let Some((other, from)) = &vp_resolution
                    && *other != r
                {
                    found.push(
                        pos,
                        p,
                        format!(
                            "{r} disagrees with {from} \"{other}\": give only one of them, or make them agree"
                        ),
                    );
                }
                options.resolution = Some(r);
            }
            None => found.push(
                pos,
                p,
                format!(
                    "expected one of {}, got {}",
                    names(&Resolution::ALL, Resolution::as_str),
                    got(v)
                ),
            ),
        }
    }
    options.resolution = options.resolution.or(vp_resolution.map(|(r, _)| r));

    match present(obj, "last_frame_url") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => match check_image(s) {
            Ok(()) => options.last_frame = Some(ImageRef(s.clone())),
            Err(e) => found.push(
                key_pos(obj, "last_frame_url"),
                format!("{path}.last_frame_url"),
                e,
            ),
        },
        Some(other) => found.push(
            key_pos(obj, "last_frame_url"),
            format!("{path}.last_frame_url"),
            format!("expected a string or null, got {}", type_name(other)),
        ),
    }

    for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Audio] {
        let key = list_key(kind);
        if let Some(v) = present(obj, key) {
            let sources = media_list(v, kind, &format!("{path}.{key}"), key_pos(obj, key), found);
            options.references.extend(
                sources
                    .into_iter()
                    .map(|s| MediaRef::trusted(kind, s, MediaRole::Reference)),
            );
        }
    }

    options.generate_audio = flag(obj, "generate_audio", path, found);
    options.return_last_frame = flag(obj, "return_last_frame", path, found).unwrap_or(false);
    options.model_chosen_duration =
        flag(obj, "model_chosen_duration", path, found).unwrap_or(false);

    if let Some(v) = present(obj, "seed") {
        let (pos, p) = (key_pos(obj, "seed"), format!("{path}.seed"));
        match integer(v) {
            Err(e) => found.push(pos, p, e),
            Ok(i) => match u64::try_from(i) {
                Ok(seed) => options.seed = Some(seed),
                Err(_) => found.push(pos, p, format!("must be at least 0, got {i}")),
            },
        }
    }

    match present(obj, "negative_prompt") {
        None => {}
        Some(Value::String(s)) if s.is_empty() => {}
        Some(Value::String(s)) => match prompt_problem(s) {
            None => options.negative_prompt = Some(s.clone()),
            Some(problem) => found.push(
                key_pos(obj, "negative_prompt"),
                format!("{path}.negative_prompt"),
                problem,
            ),
        },
        Some(other) => found.push(
            key_pos(obj, "negative_prompt"),
            format!("{path}.negative_prompt"),
            format!("expected a string or null, got {}", type_name(other)),
        ),
    }

    (orientation, options)
}

/// The boolean `key` of the segment `obj` at `path`: `None` when absent or null (or not a
/// boolean, which is filed).
pub(super) fn flag(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
    found: &mut Found,
) -> Option<bool> {
    match present(obj, key) {
        None => None,
        Some(Value::Bool(b)) => Some(*b),
        Some(other) => {
            found.push(
                key_pos(obj, key),
                format!("{path}.{key}"),
                format!("expected a boolean or null, got {}", type_name(other)),
            );
            None
        }
    }
}

/// A list of `kind` sources at `path` (an array of strings, at most
/// [`max_references`](crate::storyboard::max_references)); the valid sources, in order.
fn media_list(
    v: &Value,
    kind: MediaKind,
    path: &str,
    pos: usize,
    found: &mut Found,
) -> Vec<String> {
    let Value::Array(items) = v else {
        found.push(
            pos,
            path,
            format!("expected an array of strings or null, got {}", type_name(v)),
        );
        return Vec::new();
    };
    if let Some(problem) = count_problem(items.len(), kind) {
        found.push(pos, path, problem);
    }
    let mut out = Vec::with_capacity(items.len());
    for (j, item) in items.iter().enumerate() {
        match item {
            Value::String(s) => match crate::media::check_source(s, kind) {
                Ok(()) => out.push(s.clone()),
                Err(e) => found.push(pos, format!("{path}[{j}]"), e),
            },
            other => found.push(
                pos,
                format!("{path}[{j}]"),
                format!("expected a string, got {}", type_name(other)),
            ),
        }
    }
    out
}

/// The document's `character_bible` (absent or `null`: none).
pub(super) fn character_bible(root: &Map<String, Value>, found: &mut Found) -> Vec<BibleCharacter> {
    let pos = key_pos(root, "character_bible");
    let items = match present(root, "character_bible") {
        None => return Vec::new(),
        Some(Value::Array(items)) => items,
        Some(other) => {
            found.push(
                pos,
                "character_bible",
                format!("expected an array or null, got {}", type_name(other)),
            );
            return Vec::new();
        }
    };
    let mut bible = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("character_bible[{i}]");
        let Value::Object(entry) = item else {
            found.push(
                pos,
                path,
                format!("expected an object, got {}", type_name(item)),
            );
            continue;
        };
        let mut text = |key: &str| match present(entry, key) {
            None => None,
            Some(Value::String(s)) => Some(s.clone()).filter(|s| !s.is_empty()),
            Some(other) => {
                found.push(
                    pos,
                    format!("{path}.{key}"),
                    format!("expected a string or null, got {}", type_name(other)),
                );
                None
            }
        };
        let name = text("name");
        let id = text("id");
        let reference_images: Vec<ImageRef> = present(entry, "reference_images")
            .map(|v| {
                let p = format!("{path}.reference_images");
                media_list(v, MediaKind::Image, &p, pos, found)
            })
            .unwrap_or_default()
            .into_iter()
            .map(ImageRef)
            .collect();
        if !reference_images.is_empty() && name.is_none() && id.is_none() {
            found.push(
                pos,
                path.clone(),
                "has reference_images but no name or id, so no segment can name it",
            );
        }
        bible.push(BibleCharacter {
            name,
            id,
            reference_images,
        });
    }
    bible
}

/// The document's `continuity` (absent or `null`: no chaining).
pub(super) fn continuity(root: &Map<String, Value>, found: &mut Found) -> Continuity {
    let pos = key_pos(root, "continuity");
    let obj = match present(root, "continuity") {
        None => return Continuity::default(),
        Some(Value::Object(obj)) => obj,
        Some(other) => {
            found.push(
                pos,
                "continuity",
                format!("expected an object or null, got {}", type_name(other)),
            );
            return Continuity::default();
        }
    };
    let chain = match present(obj, "chain") {
        None => Chain::None,
        Some(v) => match v.as_str().and_then(chain_named) {
            Some(c) => c,
            None => {
                found.push(
                    pos,
                    "continuity.chain",
                    format!(
                        "expected one of {}, got {}",
                        names(&Chain::ALL, Chain::as_str),
                        got(v)
                    ),
                );
                Chain::None
            }
        },
    };
    Continuity { chain }
}
