//! The rules a segment's fields obey, shared by the walk and [`Segment::validate`].

use crate::error::Violation;
pub(in crate::storyboard) use crate::media::check_image;
use crate::storyboard::{
    AspectRatio, Chain, DURATION_RANGE_S, MAX_PROMPT_CHARS, MediaKind, Orientation, Segment,
    max_references,
};

/// The `continuity.chain` value named `s`.
pub(super) fn chain_named(s: &str) -> Option<Chain> {
    Chain::ALL.into_iter().find(|c| c.as_str() == s)
}

/// What chaining forbids, for `segments` (each with its position in the document's
/// `segments`) under the storyboard's `chain`: the first segment cannot continue from a previous
/// one, and a chained segment cannot also give a first frame (`image_url`).
pub(super) fn chain_violations<'a>(
    chain: Chain,
    segments: impl Iterator<Item = (usize, &'a Segment)> + Clone,
) -> Vec<Violation> {
    let first = segments.clone().map(|(_, s)| s.index).min();
    let mut out = Vec::new();
    for (pos, s) in segments {
        let is_first = Some(s.index) == first;
        if is_first && s.continue_from_previous == Some(true) {
            out.push(Violation::new(
                format!("segments[{pos}].continue_from_previous"),
                format!(
                    "segment {} is the first segment: there is no previous segment to continue from",
                    s.index
                ),
            ));
        }
        let (chained, why) = match s.continue_from_previous {
            Some(c) => (c, "continue_from_previous"),
            None => (chain == Chain::LastFrame, "continuity.chain"),
        };
        if chained && !is_first && s.image.is_some() {
            out.push(Violation::new(
                format!("segments[{pos}].image_url"),
                format!(
                    "segment {} starts on the previous segment's last frame ({why}), so it cannot \
                     also give a first frame: remove image_url, or set continue_from_previous to \
                     false",
                    s.index
                ),
            ));
        }
    }
    out
}

/// The segment key of the reference list of `kind`.
pub(super) const fn list_key(kind: MediaKind) -> &'static str {
    match kind {
        MediaKind::Image => "reference_images",
        MediaKind::Video => "reference_videos",
        MediaKind::Audio => "reference_audio",
    }
}

/// Why a list of `n` references of `kind` is too long, if it is.
pub(super) fn count_problem(n: usize, kind: MediaKind) -> Option<String> {
    let max = max_references(kind);
    (n > max).then(|| format!("has {n} {kind} references, more than the {max} allowed"))
}

/// Why the aspect ratio `ar` disagrees with the orientation `o` given at `o_path`, if it does.
pub(super) fn aspect_problem(ar: AspectRatio, o: Orientation, o_path: &str) -> Option<String> {
    (ar.orientation() != o).then(|| {
        format!(
            "{ar} disagrees with {o_path} \"{o}\" ({}): give only one of them, or make them agree",
            AspectRatio::from(o)
        )
    })
}

/// Why a prompt is unacceptable, if it is.
pub(super) fn prompt_problem(s: &str) -> Option<String> {
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

/// Why a segment may not give a length and `model_chosen_duration: true` together.
pub(super) const MODEL_CHOSEN_CONFLICT: &str = "conflicts with model_chosen_duration: true (the model picks the length): give only one of them";

pub(super) fn duration_problem(d: impl std::fmt::Display) -> String {
    format!(
        "must be between {} and {} seconds, got {d}",
        DURATION_RANGE_S.start(),
        DURATION_RANGE_S.end()
    )
}

pub(in crate::storyboard) fn validate_segment(segment: &Segment, path: &str) -> Vec<Violation> {
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
    let o = &segment.options;
    if let Some(ar) = o.aspect_ratio
        && let Some(problem) =
            aspect_problem(ar, segment.orientation, &format!("{path}.resolution"))
    {
        v.push(Violation::new(format!("{path}.aspect_ratio"), problem));
    }
    if let Some(image) = &o.last_frame
        && let Err(e) = check_image(image.as_str())
    {
        v.push(Violation::new(format!("{path}.last_frame_url"), e));
    }
    for kind in [MediaKind::Image, MediaKind::Video, MediaKind::Audio] {
        if let Some(problem) = count_problem(o.references_of(kind).count(), kind) {
            v.push(Violation::new(
                format!("{path}.{}", list_key(kind)),
                problem,
            ));
        }
    }
    if let Some(problem) = o.negative_prompt.as_deref().and_then(prompt_problem) {
        v.push(Violation::new(format!("{path}.negative_prompt"), problem));
    }
    v
}
