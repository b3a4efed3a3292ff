//! Media a request refers to: images, videos and audio, and the shape of the video asked for.
//!
//! A leaf module: it imports nothing from `storyboard`, `prompt` or `provider`, which all import
//! from here. [`ImageRef`] is a validated image reference (a storyboard's `image_url`, a first or
//! last frame); [`MediaRef`] is a reference medium of any [`MediaKind`] with its [`MediaRole`];
//! [`AspectRatio`], [`Resolution`] and [`Orientation`] describe the video.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest accepted inline (`data:` URL) medium, in decoded bytes.
pub const MAX_INLINE_BYTES: usize = 5 * 1024 * 1024;
/// Largest accepted inline (data URL) reference image, in decoded bytes.
pub const MAX_IMAGE_BYTES: usize = MAX_INLINE_BYTES;

/// Drops the query string and fragment of a URL (signatures live there) for logs and errors.
pub fn redact_url(url: &str) -> String {
    match url.find(['?', '#']) {
        Some(i) => format!("{}?…", &url[..i]),
        None => url.to_owned(),
    }
}

/// Landscape (`horizontal`, 16:9) or portrait (`vertical`, 9:16): CineFlow's `resolution`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Orientation {
    /// 16:9, e.g. 1280x720.
    #[default]
    Horizontal,
    /// 9:16, e.g. 720x1280.
    Vertical,
}

impl Orientation {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Orientation::Horizontal => "horizontal",
            Orientation::Vertical => "vertical",
        }
    }

    /// `(width, height)` at 720p.
    pub const fn size_720p(self) -> (u32, u32) {
        match self {
            Orientation::Horizontal => (1280, 720),
            Orientation::Vertical => (720, 1280),
        }
    }
}

impl fmt::Display for Orientation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Orientation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "horizontal" => Ok(Orientation::Horizontal),
            "vertical" => Ok(Orientation::Vertical),
            other => Err(Error::invalid_input(
                "resolution",
                format!("expected \"horizontal\" or \"vertical\", got {other:?}"),
            )),
        }
    }
}

/// A video's aspect ratio (width:height), serialized as `"16:9"`, `"9:16"`, … or `"adaptive"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[non_exhaustive]
pub enum AspectRatio {
    /// 16:9, landscape.
    #[default]
    #[serde(rename = "16:9")]
    R16x9,
    /// 9:16, portrait.
    #[serde(rename = "9:16")]
    R9x16,
    /// 1:1, square.
    #[serde(rename = "1:1")]
    R1x1,
    /// 4:3, landscape.
    #[serde(rename = "4:3")]
    R4x3,
    /// 3:4, portrait.
    #[serde(rename = "3:4")]
    R3x4,
    /// 21:9, cinema wide.
    #[serde(rename = "21:9")]
    R21x9,
    /// The model picks (usually the first frame's ratio).
    #[serde(rename = "adaptive")]
    Adaptive,
}

impl AspectRatio {
    /// Every ratio, in declaration order.
    pub const ALL: [AspectRatio; 7] = [
        AspectRatio::R16x9,
        AspectRatio::R9x16,
        AspectRatio::R1x1,
        AspectRatio::R4x3,
        AspectRatio::R3x4,
        AspectRatio::R21x9,
        AspectRatio::Adaptive,
    ];

    /// The wire name (`16:9`, …, `adaptive`).
    pub const fn as_str(self) -> &'static str {
        match self {
            AspectRatio::R16x9 => "16:9",
            AspectRatio::R9x16 => "9:16",
            AspectRatio::R1x1 => "1:1",
            AspectRatio::R4x3 => "4:3",
            AspectRatio::R3x4 => "3:4",
            AspectRatio::R21x9 => "21:9",
            AspectRatio::Adaptive => "adaptive",
        }
    }

    /// The orientation of a Sora-era request of this ratio: taller than wide
    /// (9:16, 3:4) is [`Orientation::Vertical`]; everything else, including 1:1 and
    /// `adaptive`, is [`Orientation::Horizontal`]. Adapters that send only an orientation
    /// declare `16:9` and `9:16` alone in their capabilities, so no other ratio reaches them.
    pub const fn orientation(self) -> Orientation {
        match self {
            AspectRatio::R9x16 | AspectRatio::R3x4 => Orientation::Vertical,
            _ => Orientation::Horizontal,
        }
    }
}

impl From<Orientation> for AspectRatio {
    fn from(o: Orientation) -> Self {
        match o {
            Orientation::Horizontal => AspectRatio::R16x9,
            Orientation::Vertical => AspectRatio::R9x16,
        }
    }
}

impl fmt::Display for AspectRatio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AspectRatio {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        AspectRatio::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(
                    "aspect_ratio",
                    format!(
                        "expected one of {}, got {s:?}",
                        AspectRatio::ALL.map(AspectRatio::as_str).join(", ")
                    ),
                )
            })
    }
}

/// A video's resolution class, serialized as `"480p"`, `"720p"`, `"1080p"` or `"4k"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Resolution {
    /// 480p.
    #[serde(rename = "480p")]
    P480,
    /// 720p.
    #[serde(rename = "720p")]
    P720,
    /// 1080p.
    #[serde(rename = "1080p")]
    P1080,
    /// 4k (2160p).
    #[serde(rename = "4k")]
    K4,
}

impl Resolution {
    /// Every resolution, smallest first.
    pub const ALL: [Resolution; 4] = [
        Resolution::P480,
        Resolution::P720,
        Resolution::P1080,
        Resolution::K4,
    ];

    /// The wire name (`480p`, `720p`, `1080p`, `4k`).
    pub const fn as_str(self) -> &'static str {
        match self {
            Resolution::P480 => "480p",
            Resolution::P720 => "720p",
            Resolution::P1080 => "1080p",
            Resolution::K4 => "4k",
        }
    }
}

impl fmt::Display for Resolution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Resolution {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        Resolution::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                Error::invalid_input(
                    "resolution",
                    format!(
                        "expected one of {}, got {s:?}",
                        Resolution::ALL.map(Resolution::as_str).join(", ")
                    ),
                )
            })
    }
}

/// What a [`MediaRef`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaKind {
    /// A still image.
    Image,
    /// A video clip.
    Video,
    /// An audio clip.
    Audio,
}

impl MediaKind {
    /// The wire name (`image`, `video`, `audio`), also the `data:` URL's type.
    pub const fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Video => "video",
            MediaKind::Audio => "audio",
        }
    }
}

impl fmt::Display for MediaKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reference medium is for; vendors' role names map onto these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum MediaRole {
    /// A general reference (Seedance `reference_image|video|audio`).
    #[default]
    Reference,
    /// The look of a character (a character-bible image).
    Character,
    /// The visual style to follow.
    Style,
    /// Audio to lay under the video (music, voice).
    BackgroundAudio,
}

impl MediaRole {
    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            MediaRole::Reference => "reference",
            MediaRole::Character => "character",
            MediaRole::Style => "style",
            MediaRole::BackgroundAudio => "background_audio",
        }
    }
}

impl fmt::Display for MediaRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A validated reference image: an `http(s)` URL, a `data:image/…;base64,` URL of at most
/// [`MAX_IMAGE_BYTES`], or a local file path.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ImageRef(pub(crate) String);

/// What an [`ImageRef`] or a [`MediaRef`]'s source points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageKind {
    /// An `http` or `https` URL.
    Url,
    /// A `data:` URL with the medium inline.
    DataUrl,
    /// A path on the local file system.
    Path,
}

fn source_kind(s: &str) -> ImageKind {
    if s.starts_with("data:") {
        ImageKind::DataUrl
    } else if s.starts_with("http://") || s.starts_with("https://") {
        ImageKind::Url
    } else {
        ImageKind::Path
    }
}

/// A source for `Debug`: data URLs by length, URLs without their query.
fn debug_source(s: &str) -> String {
    match source_kind(s) {
        ImageKind::DataUrl => format!("data URL, {} chars", s.len()),
        _ => format!("{:?}", redact_url(s)),
    }
}

impl ImageRef {
    /// Validates a reference.
    pub fn new(s: impl Into<String>) -> Result<Self> {
        let s = s.into();
        check_image(&s).map_err(|reason| Error::invalid_input("image_url", reason))?;
        Ok(Self(s))
    }

    /// The reference as written.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What it points at.
    pub fn kind(&self) -> ImageKind {
        source_kind(&self.0)
    }
}

impl fmt::Debug for ImageRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ImageRef({})", debug_source(&self.0))
    }
}

impl TryFrom<String> for ImageRef {
    type Error = Error;

    fn try_from(s: String) -> Result<Self> {
        Self::new(s)
    }
}

impl From<ImageRef> for String {
    fn from(i: ImageRef) -> String {
        i.0
    }
}

/// A reference medium of a request: its kind, where it is (validated like an [`ImageRef`]:
/// `http(s)` URL, `data:<kind>/…;base64,` URL of at most [`MAX_INLINE_BYTES`], or local path)
/// and what it is for. `Debug` redacts URL queries and inline data.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MediaRefRepr")]
pub struct MediaRef {
    kind: MediaKind,
    source: String,
    role: MediaRole,
}

#[derive(Deserialize)]
struct MediaRefRepr {
    kind: MediaKind,
    source: String,
    #[serde(default)]
    role: MediaRole,
}

impl TryFrom<MediaRefRepr> for MediaRef {
    type Error = Error;

    fn try_from(r: MediaRefRepr) -> Result<Self> {
        Self::new(r.kind, r.source, r.role)
    }
}

impl MediaRef {
    /// Validates a reference of `kind` at `source`, for `role`.
    pub fn new(kind: MediaKind, source: impl Into<String>, role: MediaRole) -> Result<Self> {
        let source = source.into();
        check_source(&source, kind).map_err(|reason| Error::invalid_input("source", reason))?;
        Ok(Self { kind, source, role })
    }

    /// A reference whose source is already validated for `kind` (an [`ImageRef`] as an image).
    pub(crate) fn trusted(kind: MediaKind, source: String, role: MediaRole) -> Self {
        Self { kind, source, role }
    }

    /// A reference image.
    pub fn image(source: impl Into<String>, role: MediaRole) -> Result<Self> {
        Self::new(MediaKind::Image, source, role)
    }

    /// A reference video.
    pub fn video(source: impl Into<String>, role: MediaRole) -> Result<Self> {
        Self::new(MediaKind::Video, source, role)
    }

    /// A reference audio clip.
    pub fn audio(source: impl Into<String>, role: MediaRole) -> Result<Self> {
        Self::new(MediaKind::Audio, source, role)
    }

    /// What it is.
    pub fn kind(&self) -> MediaKind {
        self.kind
    }

    /// Where it is, as written.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// What the source points at (URL, `data:` URL, path).
    pub fn source_kind(&self) -> ImageKind {
        source_kind(&self.source)
    }

    /// What it is for.
    pub fn role(&self) -> MediaRole {
        self.role
    }
}

impl fmt::Debug for MediaRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MediaRef")
            .field("kind", &self.kind)
            .field("source", &format_args!("{}", debug_source(&self.source)))
            .field("role", &self.role)
            .finish()
    }
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

fn check_data_url(s: &str, kind: MediaKind) -> std::result::Result<(), String> {
    let k = kind.as_str();
    let Some(rest) = s.strip_prefix("data:") else {
        return Err("a data URL must start with \"data:\" (lowercase)".into());
    };
    let Some(subtype_and_rest) = rest.strip_prefix(k).and_then(|r| r.strip_prefix('/')) else {
        return Err(format!(
            "a data URL must be {} {k}: data:{k}/<type>;base64,…",
            if k == "image" { "an" } else { "a" }
        ));
    };
    let Some((subtype, payload)) = subtype_and_rest.split_once(";base64,") else {
        return Err(format!(
            "a data URL must be base64-encoded: data:{k}/<type>;base64,…"
        ));
    };
    if subtype.is_empty()
        || !subtype
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '.' | '-'))
    {
        return Err(format!(
            "data URL has an invalid {k} type {:?}",
            truncate(subtype, 40)
        ));
    }
    if payload.is_empty() {
        return Err(format!("data URL has no {k} data"));
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
    if size > MAX_INLINE_BYTES {
        return Err(format!(
            "{k} is {} ({size} bytes), larger than the {} MB limit",
            megabytes(size),
            MAX_INLINE_BYTES / (1024 * 1024)
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

/// Why `s` is not an acceptable image reference, if it is not.
pub(crate) fn check_image(s: &str) -> std::result::Result<(), String> {
    check_source(s, MediaKind::Image)
}

/// Why `s` is not an acceptable source of `kind` media (an `http(s)` URL, a
/// `data:<kind>/…;base64,` URL of at most [`MAX_INLINE_BYTES`], or a local path), if it is not.
pub(crate) fn check_source(s: &str, kind: MediaKind) -> std::result::Result<(), String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    if s.contains('\0') {
        return Err("must not contain NUL characters".into());
    }
    if s.get(..5).is_some_and(|p| p.eq_ignore_ascii_case("data:")) {
        return check_data_url(s, kind);
    }
    if let Some(scheme) = url_scheme(s) {
        if scheme != "http" && scheme != "https" {
            return Err(
                if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
                    format!("URL scheme {scheme:?} must be lowercase (http:// or https://)")
                } else {
                    format!(
                        "unsupported URL scheme {:?}: use an http(s) URL, a data:{} URL or a local file path",
                        truncate(scheme, 20),
                        kind.as_str()
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

    #[test]
    fn aspect_ratios_and_resolutions_parse_from_their_wire_names() {
        for r in AspectRatio::ALL {
            assert_eq!(r.as_str().parse::<AspectRatio>().unwrap(), r);
            let json = serde_json::to_string(&r).unwrap();
            assert_eq!(json, format!("\"{r}\""));
        }
        for r in Resolution::ALL {
            assert_eq!(r.as_str().parse::<Resolution>().unwrap(), r);
        }
        let err = "16x9".parse::<AspectRatio>().unwrap_err().to_string();
        assert!(
            err.contains("aspect_ratio") && err.contains("16:9"),
            "{err}"
        );
        let err = "2k".parse::<Resolution>().unwrap_err().to_string();
        assert!(err.contains("resolution") && err.contains("1080p"), "{err}");
    }

    #[test]
    fn orientations_map_to_aspect_ratios_and_back() {
        assert_eq!(
            AspectRatio::from(Orientation::Horizontal),
            AspectRatio::R16x9
        );
        assert_eq!(AspectRatio::from(Orientation::Vertical), AspectRatio::R9x16);
        assert_eq!(AspectRatio::R3x4.orientation(), Orientation::Vertical);
        assert_eq!(AspectRatio::R1x1.orientation(), Orientation::Horizontal);
    }

    #[test]
    fn media_refs_are_validated_for_their_kind_and_redacted_in_debug_output() {
        let v =
            MediaRef::video("https://cdn.example/a.mp4?sig=SECRET", MediaRole::Reference).unwrap();
        assert!(!format!("{v:?}").contains("SECRET"));
        assert!(MediaRef::audio("data:audio/mpeg;base64,AAAA", MediaRole::BackgroundAudio).is_ok());
        let err = MediaRef::audio("data:image/png;base64,AAAA", MediaRole::Reference)
            .unwrap_err()
            .to_string();
        assert!(err.contains("data:audio/"), "{err}");
        assert!(MediaRef::image("ftp://example.com/a.png", MediaRole::Style).is_err());
        let bad = r#"{"kind":"video","source":"","role":"reference"}"#;
        assert!(serde_json::from_str::<MediaRef>(bad).is_err());
        let ok: MediaRef =
            serde_json::from_str(r#"{"kind":"image","source":"refs/alice.png"}"#).unwrap();
        assert_eq!(
            (ok.role(), ok.source_kind()),
            (MediaRole::Reference, ImageKind::Path)
        );
    }

    #[test]
    fn media_never_imports_the_modules_that_import_it() {
        // The cycles storyboard <-> provider and prompt <-> storyboard are gone: media is a
        // leaf, storyboard does not use provider, prompt does not use storyboard.
        let uses = |src: &str| -> Vec<String> {
            src.lines()
                .filter(|l| !l.trim_start().starts_with("//"))
                .flat_map(|l| l.split("crate::").skip(1).map(|s| s.to_owned()))
                .map(|s| {
                    s.split(|c: char| !c.is_alphanumeric() && c != '_')
                        .next()
                        .unwrap_or("")
                        .to_owned()
                })
                .collect()
        };
        let media = uses(include_str!("media.rs"));
        let storyboard = uses(include_str!("storyboard.rs"));
        let prompt = uses(include_str!("prompt.rs"));
        for m in ["storyboard", "prompt", "provider"] {
            assert!(!media.iter().any(|u| u == m), "media uses {m}");
        }
        assert!(
            !storyboard.iter().any(|u| u == "provider"),
            "storyboard uses provider"
        );
        assert!(
            !prompt.iter().any(|u| u == "storyboard"),
            "prompt uses storyboard"
        );
    }
}
