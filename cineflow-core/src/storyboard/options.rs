//! The 2026 request fields a segment can set ([`VideoOptions`]) and the character bible's
//! reference images ([`BibleCharacter`]).

use serde::{Deserialize, Serialize};

use crate::media::{AspectRatio, ImageRef, MediaKind, MediaRef, MediaRole, Resolution};
use crate::prompt::Character;

/// Most reference images one list may hold (a segment's `reference_images`, a bible
/// character's `reference_images`).
pub const MAX_REFERENCE_IMAGES: usize = 9;
/// Most reference videos a segment's `reference_videos` may hold.
pub const MAX_REFERENCE_VIDEOS: usize = 3;
/// Most reference audio clips a segment's `reference_audio` may hold.
pub const MAX_REFERENCE_AUDIO: usize = 3;

/// The most references of `kind` one storyboard list may hold.
pub const fn max_references(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Image => MAX_REFERENCE_IMAGES,
        MediaKind::Video => MAX_REFERENCE_VIDEOS,
        MediaKind::Audio => MAX_REFERENCE_AUDIO,
    }
}

/// What a shot asks of its video beyond prompt, duration, orientation, pro tier and first frame:
/// the optional 2026 segment fields. Every field left out (`None`, empty) is left to the model.
///
/// A [`Segment`](crate::Segment) holds its own; a [`Task`](crate::Task) holds its segment's
/// plus the character bible's images ([`Storyboard::video_options`](crate::Storyboard::video_options)),
/// and carries them into every request it sends. A model that cannot honour one of them is
/// never sent the request (the router answers `no_provider` naming the field).
///
/// ```
/// use cineflow_core::{AspectRatio, MediaRef, MediaRole, VideoOptions};
///
/// let options = VideoOptions::default()
///     .with_aspect_ratio(AspectRatio::R9x16)
///     .with_references(vec![MediaRef::image("https://cdn.example/style.png", MediaRole::Reference)?])
///     .with_seed(42)
///     .with_return_last_frame(true);
/// assert!(!options.is_empty());
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct VideoOptions {
    /// An explicit aspect ratio (`aspect_ratio`); `None`: 16:9 or 9:16 from the orientation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub aspect_ratio: Option<AspectRatio>,
    /// An explicit resolution (`video_resolution`, or V2 `video_params.resolution` `720p`-like).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resolution: Option<Resolution>,
    /// The last frame (`last_frame_url`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_frame: Option<ImageRef>,
    /// Reference media, in request order: `reference_images`, `reference_videos`,
    /// `reference_audio` (role [`MediaRole::Reference`]), then for a task the bible's character
    /// images (role [`MediaRole::Character`]).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<MediaRef>,
    /// Whether to generate an audio track (`generate_audio`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generate_audio: Option<bool>,
    /// A seed for repeatable output (`seed`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seed: Option<u64>,
    /// What the video must not show (`negative_prompt`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub negative_prompt: Option<String>,
    /// Ask the vendor for the video's last frame too (`return_last_frame`); the task keeps it
    /// as a second artifact ([`Task::last_frame`](crate::Task::last_frame)).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub return_last_frame: bool,
    /// Let the model pick the length (`model_chosen_duration`; Seedance's `duration: -1`):
    /// the segment then gives no `duration_seconds`, and routing prices the shot at the
    /// longest length the chosen model may pick.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub model_chosen_duration: bool,
}

impl VideoOptions {
    crate::setters::with_setters!(
        with_aspect_ratio => aspect_ratio?: AspectRatio,
        with_resolution => resolution?: Resolution,
        with_last_frame => last_frame?: ImageRef,
        with_references => references: Vec<MediaRef>,
        with_generate_audio => generate_audio?: bool,
        with_seed => seed?: u64,
        with_negative_prompt => negative_prompt?: String,
        with_return_last_frame => return_last_frame: bool,
        with_model_chosen_duration => model_chosen_duration: bool,
    );

    /// Whether no field is set.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// The references of `kind`, in order.
    pub fn references_of(&self, kind: MediaKind) -> impl Iterator<Item = &MediaRef> {
        self.references.iter().filter(move |m| m.kind() == kind)
    }
}

/// A `character_bible` entry as far as requests use it: who it is and what it looks like.
/// (CineFlow's `aliases`, `description` and `voice_id` are not read.)
///
/// ```
/// use cineflow_core::{BibleCharacter, Character, ImageRef};
///
/// let alice = BibleCharacter::default()
///     .with_name("Alice".to_owned())
///     .with_id("@alice".to_owned())
///     .with_reference_images(vec![ImageRef::new("https://cdn.example/alice.png")?]);
/// assert!(alice.is_named_by(&Character::new("Alice")));
/// # Ok::<(), cineflow_core::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct BibleCharacter {
    /// Its `name` (`""` reads as absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Its `id`, e.g. `@alice` (`""` reads as absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Images of the character, in order (`reference_images`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reference_images: Vec<ImageRef>,
}

impl BibleCharacter {
    crate::setters::with_setters!(
        with_name => name?: String,
        with_id => id?: String,
        with_reference_images => reference_images: Vec<ImageRef>,
    );

    /// Whether a segment's `asset.characters` entry names this character: the same `id`, or
    /// the same `name` (both trimmed).
    pub fn is_named_by(&self, c: &Character) -> bool {
        let same_id = match (&self.id, &c.id) {
            (Some(a), Some(b)) => a.trim() == b.trim(),
            _ => false,
        };
        same_id
            || self
                .name
                .as_deref()
                .is_some_and(|n| n.trim() == c.name.trim())
    }

    /// Its images as character references.
    pub(crate) fn references(&self) -> impl Iterator<Item = MediaRef> + '_ {
        self.reference_images.iter().map(|i| {
            MediaRef::trusted(
                MediaKind::Image,
                i.as_str().to_owned(),
                MediaRole::Character,
            )
        })
    }
}
