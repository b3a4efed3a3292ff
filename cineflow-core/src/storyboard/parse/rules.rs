//! The rules a segment's fields obey, shared by the walk and [`Segment::validate`].

use crate::error::Violation;
use crate::storyboard::{DURATION_RANGE_S, MAX_IMAGE_BYTES, MAX_PROMPT_CHARS, Segment};

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

pub(in crate::storyboard) fn check_image(s: &str) -> std::result::Result<(), String> {
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
