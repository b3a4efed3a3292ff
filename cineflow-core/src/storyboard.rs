//! Storyboards and their segments, read from CineFlow's JSON formats.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::error::{Error, Result};
use crate::ids::{SegmentId, StoryboardId};
pub use crate::media::{
    AspectRatio, ImageKind, ImageRef, MAX_IMAGE_BYTES, MediaKind, MediaRef, MediaRole, Orientation,
    Resolution,
};
pub use crate::prompt::Character;
pub use options::{
    BibleCharacter, MAX_REFERENCE_AUDIO, MAX_REFERENCE_IMAGES, MAX_REFERENCE_VIDEOS, VideoOptions,
    max_references,
};

mod options;
mod parse;

/// Largest accepted `prompt_text`, in characters.
pub const MAX_PROMPT_CHARS: usize = 10_000;
/// Accepted segment durations, in seconds (inclusive). Vendor-specific sets (e.g. Sora.hk's
/// 10/15/25) are enforced by provider capabilities at routing time, not here.
pub const DURATION_RANGE_S: std::ops::RangeInclusive<u32> = 1..=60;
/// Duration used when a segment gives none (CineFlow's default).
pub const DEFAULT_DURATION_S: u32 = 10;

/// A storyboard: an ordered list of segments, each of which becomes one or more videos.
///
/// Read one with [`from_json`](Self::from_json), or build one with [`new`](Self::new) and the
/// `with_*` setters:
///
/// ```
/// use cineflow_core::{Chain, Continuity, Segment, Storyboard};
///
/// let sb = Storyboard::new("harbour", vec![Segment::new(1, "A boat."), Segment::new(2, "A gull.")])
///     .with_continuity(Continuity::default().with_chain(Chain::LastFrame));
/// assert!(sb.continues_from_previous(&sb.segments[1]));
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Storyboard {
    /// Its id.
    pub id: StoryboardId,
    /// A human name (the file name, or `metadata.project_name`).
    pub name: String,
    /// Where it was read from, recorded in sidecars as `source_file`.
    #[serde(default)]
    pub source_file: Option<String>,
    /// The segments, in document order.
    pub segments: Vec<Segment>,
    /// The document's `metadata` object (`null` when absent).
    #[serde(default)]
    pub metadata: serde_json::Value,
    /// The `character_bible` entries, in document order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub character_bible: Vec<BibleCharacter>,
    /// How the shots continue one another (`continuity`).
    #[serde(default, skip_serializing_if = "Continuity::is_default")]
    pub continuity: Continuity,
    /// When it was created.
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
}

impl Storyboard {
    /// A storyboard named `name` with `segments` (not validated), a fresh id, created now; no
    /// source file, metadata, character bible or continuity.
    pub fn new(name: impl Into<String>, segments: Vec<Segment>) -> Self {
        Self {
            id: StoryboardId::new(),
            name: name.into(),
            source_file: None,
            segments,
            metadata: serde_json::Value::Null,
            character_bible: Vec::new(),
            continuity: Continuity::default(),
            created_at: OffsetDateTime::now_utc(),
        }
    }

    /// Parses and validates a CineFlow storyboard (V1, or V2 with `video_params`).
    ///
    /// Every violation is reported with its JSON path (`segments[3].duration_seconds: …`);
    /// unknown keys are ignored.
    ///
    /// ```
    /// let sb = cineflow_core::Storyboard::from_json(r#"{"segments":[{"segment_index":1,"prompt_text":"A cat."}]}"#)?;
    /// assert_eq!(sb.segments[0].duration_s, 10);
    /// # Ok::<(), cineflow_core::Error>(())
    /// ```
    pub fn from_json(json: &str) -> Result<Self> {
        // Valid documents take the typed fast path; anything else is walked for its violations.
        if let Some(sb) = parse::from_str_fast(json) {
            return Ok(sb);
        }
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| Error::InvalidStoryboard {
                violations: vec![crate::error::Violation::new(
                    "$",
                    format!("not valid JSON: {e}"),
                )],
            })?;
        Self::from_value(&value)
    }

    /// Like [`from_json`](Self::from_json), from an already parsed document.
    pub fn from_value(value: &serde_json::Value) -> Result<Self> {
        parse::storyboard(value)
    }

    /// Sets the name.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Sets the source file recorded in sidecars.
    pub fn with_source_file(mut self, source_file: impl Into<String>) -> Self {
        self.source_file = Some(source_file.into());
        self
    }

    crate::setters::with_setters!(
        with_id => id: StoryboardId,
        with_metadata => metadata: serde_json::Value,
        with_character_bible => character_bible: Vec<BibleCharacter>,
        with_continuity => continuity: Continuity,
        with_created_at => created_at: OffsetDateTime,
    );

    /// The segment with the given 1-based index.
    pub fn segment(&self, index: u32) -> Option<&Segment> {
        self.segments.iter().find(|s| s.index == index)
    }

    /// The segment before `segment` in film order: the one with the highest index below its.
    pub fn previous_segment(&self, segment: &Segment) -> Option<&Segment> {
        self.segments
            .iter()
            .filter(|s| s.index < segment.index)
            .max_by_key(|s| s.index)
    }

    /// Whether `segment` starts on the last frame of the [previous
    /// segment](Self::previous_segment)'s chosen take: its own `continue_from_previous` if given,
    /// else whether the storyboard chains every shot (`continuity.chain`). The first segment
    /// continues nothing.
    pub fn continues_from_previous(&self, segment: &Segment) -> bool {
        self.previous_segment(segment).is_some()
            && segment
                .continue_from_previous
                .unwrap_or(self.continuity.chain == Chain::LastFrame)
    }

    /// The character references `segment` gets from the bible: for each bible character its
    /// `asset.characters` names (by id or name), in bible order, that character's
    /// `reference_images` in their order, with role [`MediaRole::Character`].
    pub fn character_references(&self, segment: &Segment) -> Vec<MediaRef> {
        self.character_bible
            .iter()
            .filter(|b| segment.asset.characters.iter().any(|c| b.is_named_by(c)))
            .flat_map(BibleCharacter::references)
            .collect()
    }

    /// What `segment`'s requests carry: its own [`VideoOptions`], with the
    /// [character references](Self::character_references) appended after its own references
    /// (so the indices of the segment's own `reference_images` do not depend on the bible).
    pub fn video_options(&self, segment: &Segment) -> VideoOptions {
        let mut options = segment.options.clone();
        options
            .references
            .extend(self.character_references(segment));
        options
    }
}

/// One shot of a storyboard.
///
/// ```
/// use cineflow_core::{Orientation, Segment, SegmentAsset};
///
/// let shot = Segment::new(1, "Alice waves.")
///     .with_duration_s(5)
///     .with_orientation(Orientation::Vertical)
///     .with_asset(SegmentAsset::default().with_scene("Harbour".to_owned()));
/// assert_eq!(shot.full_prompt(), "Alice waves. [Scene: Harbour]");
/// shot.validate()?;
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Segment {
    /// Its id.
    pub id: SegmentId,
    /// 1-based, unique within the storyboard (`segment_index`).
    pub index: u32,
    /// The shot description (`prompt_text`).
    pub prompt_text: String,
    /// A reference image (`image_url`).
    #[serde(default)]
    pub image: Option<ImageRef>,
    /// Characters, scene and props (`asset`).
    #[serde(default)]
    pub asset: SegmentAsset,
    /// Length in seconds (`duration_seconds`, or V2 `video_params.duration`).
    pub duration_s: u32,
    /// Landscape or portrait (`resolution`, or V2 `video_params.resolution`).
    pub orientation: Orientation,
    /// Whether the pro/HD tier is wanted (`is_pro`).
    #[serde(default)]
    pub is_pro: bool,
    /// A note for the director (`director_intent`).
    #[serde(default)]
    pub director_intent: Option<String>,
    /// The 2026 fields: aspect ratio, resolution, last frame, references, audio, seed, negative
    /// prompt.
    #[serde(default, skip_serializing_if = "VideoOptions::is_empty")]
    pub options: VideoOptions,
    /// Whether this shot starts on the previous shot's last frame (`continue_from_previous`);
    /// `None` follows the storyboard's `continuity` (see
    /// [`Storyboard::continues_from_previous`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continue_from_previous: Option<bool>,
}

/// A storyboard's `continuity` object.
///
/// ```
/// use cineflow_core::{Chain, Continuity};
///
/// let chained = Continuity::default().with_chain(Chain::LastFrame);
/// assert!(!chained.is_default());
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Continuity {
    /// How each shot continues the previous one (`chain`).
    pub chain: Chain,
}

impl Continuity {
    crate::setters::with_setters!(with_chain => chain: Chain);

    /// Whether nothing is chained.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }
}

/// How a shot continues the previous one (`continuity.chain`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Chain {
    /// Every shot stands alone (`"none"`, the default).
    #[default]
    None,
    /// Every shot after the first starts on the last frame of the previous shot's chosen take
    /// (`"last_frame"`), unless it sets `continue_from_previous: false`.
    LastFrame,
}

impl Chain {
    /// Every value, in wire order.
    pub const ALL: [Chain; 2] = [Chain::None, Chain::LastFrame];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Chain::None => "none",
            Chain::LastFrame => "last_frame",
        }
    }
}

impl Segment {
    /// The shot with 1-based `index` and `prompt_text` (not validated: see
    /// [`validate`](Self::validate)), a fresh id, CineFlow's defaults for the rest: landscape,
    /// [`DEFAULT_DURATION_S`] seconds, no image, asset, pro tier, director note or 2026 field.
    pub fn new(index: u32, prompt_text: impl Into<String>) -> Self {
        Self {
            id: SegmentId::new(),
            index,
            prompt_text: prompt_text.into(),
            image: None,
            asset: SegmentAsset::default(),
            duration_s: DEFAULT_DURATION_S,
            orientation: Orientation::default(),
            is_pro: false,
            director_intent: None,
            options: VideoOptions::default(),
            continue_from_previous: None,
        }
    }

    crate::setters::with_setters!(
        with_id => id: SegmentId,
        with_image => image?: ImageRef,
        with_asset => asset: SegmentAsset,
        with_duration_s => duration_s: u32,
        with_orientation => orientation: Orientation,
        with_pro => is_pro: bool,
        with_director_intent => director_intent?: String,
        with_options => options: VideoOptions,
        with_continue_from_previous => continue_from_previous?: bool,
    );

    /// The aspect ratio asked for: `aspect_ratio` if given, else 16:9 or 9:16 from the
    /// orientation.
    pub fn aspect_ratio(&self) -> AspectRatio {
        self.options
            .aspect_ratio
            .unwrap_or_else(|| self.orientation.into())
    }

    /// The prompt sent to vendors, composed exactly like CineFlow's `construct_enhanced_prompt`
    /// (with three documented fixes: see [`compose_full_prompt`](crate::prompt::compose_full_prompt)).
    pub fn full_prompt(&self) -> String {
        crate::prompt::compose_full_prompt(
            &self.prompt_text,
            &self.asset.characters,
            self.asset.scene.as_deref(),
            &self.asset.props,
            self.director_intent.as_deref(),
        )
    }

    /// Applies a partial update, validating the result; on error the segment is unchanged.
    pub fn apply(&mut self, patch: &SegmentPatch) -> Result<()> {
        let mut next = self.clone();
        if let Some(p) = &patch.prompt_text {
            next.prompt_text = p.clone();
        }
        if let Some(i) = &patch.image {
            next.image = i.clone();
        }
        if let Some(a) = &patch.asset {
            next.asset = a.clone();
        }
        if let Some(d) = patch.duration_s {
            next.duration_s = d;
        }
        if let Some(o) = patch.orientation {
            next.orientation = o;
        }
        if let Some(p) = patch.is_pro {
            next.is_pro = p;
        }
        if let Some(d) = &patch.director_intent {
            next.director_intent = d.clone();
        }
        if let Some(o) = &patch.options {
            next.options = o.clone();
            // A new aspect ratio brings its orientation unless the patch sets one.
            if let (Some(ar), None) = (o.aspect_ratio, patch.orientation) {
                next.orientation = ar.orientation();
            }
        }
        next.validate()?;
        *self = next;
        Ok(())
    }

    /// Checks the invariants [`Storyboard::from_json`] enforces.
    pub fn validate(&self) -> Result<()> {
        let violations = parse::validate_segment(self, "segment");
        if violations.is_empty() {
            Ok(())
        } else {
            Err(Error::InvalidStoryboard { violations })
        }
    }
}

/// A partial update of a [`Segment`] (CineFlow's `PATCH /segments/{id}`). `None` leaves a field
/// as it is; for optional fields, `Some(None)` clears it.
///
/// ```
/// use cineflow_core::{Segment, SegmentPatch};
///
/// let mut shot = Segment::new(1, "Alice waves.").with_director_intent("Slow.".to_owned());
/// let patch = SegmentPatch::default()
///     .with_prompt_text("Alice runs.".to_owned())
///     .with_duration_s(15)
///     .with_director_intent(None);
/// shot.apply(&patch)?;
/// assert_eq!((shot.duration_s, shot.director_intent), (15, None));
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SegmentPatch {
    /// New `prompt_text`.
    pub prompt_text: Option<String>,
    /// New reference image.
    pub image: Option<Option<ImageRef>>,
    /// New asset block.
    pub asset: Option<SegmentAsset>,
    /// New duration.
    pub duration_s: Option<u32>,
    /// New orientation.
    pub orientation: Option<Orientation>,
    /// New pro flag.
    pub is_pro: Option<bool>,
    /// New director note.
    pub director_intent: Option<Option<String>>,
    /// New 2026 fields (replacing all of them).
    pub options: Option<VideoOptions>,
}

impl SegmentPatch {
    crate::setters::with_setters!(
        with_prompt_text => prompt_text?: String,
        with_image => image?: Option<ImageRef>,
        with_asset => asset?: SegmentAsset,
        with_duration_s => duration_s?: u32,
        with_orientation => orientation?: Orientation,
        with_pro => is_pro?: bool,
        with_director_intent => director_intent?: Option<String>,
        with_options => options?: VideoOptions,
    );
}

/// Characters, scene and props of a segment.
///
/// ```
/// use cineflow_core::{Character, SegmentAsset};
///
/// let asset = SegmentAsset::default()
///     .with_characters(vec![Character::new("Alice").with_id("@alice".to_owned())])
///     .with_scene("Harbour".to_owned())
///     .with_props(vec!["lantern".to_owned()]);
/// assert_eq!(asset.characters[0].id.as_deref(), Some("@alice"));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct SegmentAsset {
    /// Characters whose ids are injected into the prompt.
    pub characters: Vec<Character>,
    /// The scene, appended as `[Scene: …]`.
    pub scene: Option<String>,
    /// Props, appended as `Props: a, b`.
    pub props: Vec<String>,
}

impl SegmentAsset {
    crate::setters::with_setters!(
        with_characters => characters: Vec<Character>,
        with_scene => scene?: String,
        with_props => props: Vec<String>,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment() -> Segment {
        let sb = Storyboard::from_json(
            r#"{"segments":[{"segment_index":1,"prompt_text":"Alice waves.",
                "asset":{"characters":[{"name":"Alice","id":"@alice"}],"scene":"Room"}}]}"#,
        )
        .unwrap();
        sb.segments[0].clone()
    }

    #[test]
    fn a_valid_patch_is_applied() {
        let mut s = segment();
        let patch = SegmentPatch {
            prompt_text: Some("Alice runs.".into()),
            duration_s: Some(15),
            orientation: Some(Orientation::Vertical),
            director_intent: Some(Some("Fast.".into())),
            ..SegmentPatch::default()
        };
        s.apply(&patch).unwrap();
        assert_eq!(s.duration_s, 15);
        assert_eq!(s.orientation, Orientation::Vertical);
        assert_eq!(
            s.full_prompt(),
            "@alice runs. [Scene: Room] (Director Note: Fast.)"
        );
    }

    #[test]
    fn an_invalid_patch_is_rejected_and_leaves_the_segment_unchanged() {
        let mut s = segment();
        let before = s.clone();
        let patch = SegmentPatch {
            prompt_text: Some("   ".into()),
            duration_s: Some(0),
            ..SegmentPatch::default()
        };
        let Err(Error::InvalidStoryboard { violations }) = s.apply(&patch) else {
            panic!("expected InvalidStoryboard");
        };
        let paths: Vec<&str> = violations.iter().map(|v| v.path.as_str()).collect();
        assert_eq!(paths, ["segment.prompt_text", "segment.duration_seconds"]);
        assert_eq!(s, before);
    }

    #[test]
    fn image_refs_are_validated_on_creation_and_deserialization() {
        assert!(ImageRef::new("ftp://example.com/a.png").is_err());
        assert!(serde_json::from_str::<ImageRef>(r#""file:///etc/passwd""#).is_err());
        let url = ImageRef::new("https://example.com/a.png?token=secret").unwrap();
        assert_eq!(url.kind(), ImageKind::Url);
        assert!(!format!("{url:?}").contains("secret"));
        assert_eq!(
            ImageRef::new("data:image/png;base64,iVBORw0KGgo=")
                .unwrap()
                .kind(),
            ImageKind::DataUrl
        );
        assert_eq!(ImageRef::new("refs/a.png").unwrap().kind(), ImageKind::Path);
    }

    #[test]
    fn the_segment_with_a_given_index_is_found() {
        let sb = Storyboard::from_json(
            r#"{"segments":[{"segment_index":3,"prompt_text":"A."},{"segment_index":1,"prompt_text":"B."}]}"#,
        )
        .unwrap();
        assert_eq!(sb.segment(1).map(|s| s.prompt_text.as_str()), Some("B."));
        assert_eq!(sb.segments[0].index, 3);
        assert!(sb.segment(2).is_none());
    }
}
