//! The fast path: typed, borrowed, all-or-nothing.

use std::borrow::Cow;
use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::ids::{SegmentId, StoryboardId};
use crate::media::check_source;
use crate::storyboard::{
    AspectRatio, BibleCharacter, Chain, Character, Continuity, DEFAULT_DURATION_S,
    DURATION_RANGE_S, ImageRef, MediaKind, MediaRef, MediaRole, Orientation, Resolution, Segment,
    SegmentAsset, Storyboard, VideoOptions,
};

use super::rules::{chain_named, chain_violations, check_image, count_problem, prompt_problem};
use super::walk::{orientation_named, project_name};

/// Parses a valid storyboard without building a `Value` tree; `None` whenever the document is
/// not valid JSON or breaks any rule (the caller then runs the path-aware
/// [`storyboard`](super::storyboard) walk, which reports why). When it returns a storyboard,
/// [`storyboard`](super::storyboard) would return the same one (ids and `created_at` aside):
/// every check below mirrors one there, and is at least as strict.
pub(in crate::storyboard) fn from_str_fast(json: &str) -> Option<Storyboard> {
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
    let continuity = Continuity {
        chain: match doc.continuity.and_then(|c| c.0.chain) {
            None => Chain::None,
            Some(t) => chain_named(&t)?,
        },
    };
    let chained = doc.segments.0.iter().enumerate();
    if !chain_violations(continuity.chain, chained).is_empty() {
        return None;
    }
    let character_bible = match doc.character_bible {
        None => Vec::new(),
        Some(entries) => entries
            .into_iter()
            .map(|e| fast_bible_entry(e.0))
            .collect::<Option<_>>()?,
    };
    Some(Storyboard {
        id: StoryboardId::new(),
        name,
        source_file: None,
        segments: doc.segments.0,
        metadata,
        character_bible,
        continuity,
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
    mut s: FastSegment<'_>,
    seen: &mut HashSet<u32>,
    ids: &mut SegmentIds,
) -> Option<Segment> {
    // segment_index: required, an integer in 1..=u32::MAX, unique.
    let index = u32::try_from(s.segment_index?).ok().filter(|i| *i >= 1)?;
    if !seen.insert(index) {
        return None;
    }
    let (vp_duration, vp_resolution) = s
        .video_params
        .take()
        .map(|v| (v.0.duration, v.0.resolution))
        .unwrap_or_default();
    // resolution, else video_params.resolution ("horizontal" by default); the 2026 fields.
    let (orientation, options) = fast_options(&mut s, vp_resolution)?;
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
    // duration_seconds, else video_params.duration, else the default; 1–60; none of them
    // with model_chosen_duration.
    let given = s.duration_seconds.or(vp_duration);
    if options.model_chosen_duration && given.is_some() {
        return None;
    }
    let duration_s = match given {
        None => DEFAULT_DURATION_S,
        Some(d) => u32::try_from(d)
            .ok()
            .filter(|d| DURATION_RANGE_S.contains(d))?,
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
        options,
        continue_from_previous: s.continue_from_previous,
    })
}

/// The orientation and 2026 fields, under the rules of the walk (`options.rs`).
fn fast_options(
    f: &mut FastSegment<'_>,
    vp_resolution: Option<Text<'_>>,
) -> Option<(Orientation, VideoOptions)> {
    let mut orientation = Orientation::Horizontal;
    let mut oriented = false;
    if let Some(r) = f.resolution.take() {
        orientation = orientation_named(&r.0)?;
        oriented = true;
    }
    let mut vp_class = None;
    if let Some(r) = vp_resolution {
        match orientation_named(&r.0) {
            Some(o) if !oriented => {
                orientation = o;
                oriented = true;
            }
            Some(_) => {}
            None => vp_class = Some(r.0.parse::<Resolution>().ok()?),
        }
    }
    let mut options = VideoOptions::default();
    if let Some(t) = f.aspect_ratio.take() {
        let ar = t.0.parse::<AspectRatio>().ok()?;
        if !oriented {
            orientation = ar.orientation();
        } else if ar.orientation() != orientation {
            return None;
        }
        options.aspect_ratio = Some(ar);
    }
    if let Some(t) = f.video_resolution.take() {
        let r = t.0.parse::<Resolution>().ok()?;
        if vp_class.is_some_and(|c| c != r) {
            return None;
        }
        options.resolution = Some(r);
    }
    options.resolution = options.resolution.or(vp_class);
    options.last_frame = match f.last_frame_url.take().map(|t| t.0) {
        None => None,
        Some(u) if u.is_empty() => None,
        Some(u) => {
            check_image(&u).ok()?;
            Some(ImageRef(u.into_owned()))
        }
    };
    for (kind, list) in [
        (MediaKind::Image, f.reference_images.take()),
        (MediaKind::Video, f.reference_videos.take()),
        (MediaKind::Audio, f.reference_audio.take()),
    ] {
        let list = list.unwrap_or_default();
        if count_problem(list.len(), kind).is_some() {
            return None;
        }
        for t in list {
            check_source(&t.0, kind).ok()?;
            options.references.push(MediaRef::trusted(
                kind,
                t.0.into_owned(),
                MediaRole::Reference,
            ));
        }
    }
    options.generate_audio = f.generate_audio;
    options.return_last_frame = f.return_last_frame.unwrap_or(false);
    options.model_chosen_duration = f.model_chosen_duration.unwrap_or(false);
    options.seed = f.seed;
    options.negative_prompt = match f.negative_prompt.take().map(|t| t.0) {
        None => None,
        Some(n) if n.is_empty() => None,
        Some(n) => {
            if prompt_problem(&n).is_some() {
                return None;
            }
            Some(n.into_owned())
        }
    };
    Some((orientation, options))
}

/// A `character_bible` entry, under the rules of the walk (`options.rs`).
fn fast_bible_entry(e: FastBible) -> Option<BibleCharacter> {
    let images = e.reference_images.unwrap_or_default();
    if count_problem(images.len(), MediaKind::Image).is_some() {
        return None;
    }
    let mut reference_images = Vec::with_capacity(images.len());
    for i in images {
        check_image(&i).ok()?;
        reference_images.push(ImageRef(i));
    }
    let name = e.name.filter(|n| !n.is_empty());
    let id = e.id.filter(|i| !i.is_empty());
    if !reference_images.is_empty() && name.is_none() && id.is_none() {
        return None;
    }
    Some(BibleCharacter {
        name,
        id,
        reference_images,
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
    character_bible: Option<Vec<Obj<FastBible>>>,
    continuity: Option<Obj<FastContinuity>>,
}

/// `continuity`; its other keys are ignored.
#[derive(Debug, Deserialize)]
struct FastContinuity {
    chain: Option<String>,
}

/// A `character_bible` entry; its other keys (`aliases`, `description`, …) are ignored.
#[derive(Debug, Deserialize)]
struct FastBible {
    name: Option<String>,
    id: Option<String>,
    reference_images: Option<Vec<String>>,
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
    // The 2026 fields.
    #[serde(borrow)]
    aspect_ratio: Option<Text<'a>>,
    #[serde(borrow)]
    video_resolution: Option<Text<'a>>,
    #[serde(borrow)]
    last_frame_url: Option<Text<'a>>,
    #[serde(borrow)]
    reference_images: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    reference_videos: Option<Vec<Text<'a>>>,
    #[serde(borrow)]
    reference_audio: Option<Vec<Text<'a>>>,
    generate_audio: Option<bool>,
    return_last_frame: Option<bool>,
    model_chosen_duration: Option<bool>,
    continue_from_previous: Option<bool>,
    seed: Option<u64>,
    #[serde(borrow)]
    negative_prompt: Option<Text<'a>>,
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
