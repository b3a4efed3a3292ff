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
//!
//! `walk` holds the path-aware walk (document, segments, assets), `options` its part for the
//! orientation, the 2026 segment fields and `character_bible`, `fast` the typed fast path,
//! `rules` the per-field rules both share (prompts, durations, media references, the aspect
//! ratio's agreement with the orientation) and [`validate_segment`], which re-checks a built
//! segment.

mod fast;
mod options;
mod rules;
#[cfg(test)]
mod tests;
mod walk;

pub(super) use fast::from_str_fast;
#[cfg(test)]
pub(super) use rules::check_image;
pub(super) use rules::validate_segment;
pub(super) use walk::storyboard;
