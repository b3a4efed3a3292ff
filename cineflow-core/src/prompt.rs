//! `full_prompt` composition, compatible with CineFlow's `construct_enhanced_prompt`.

use crate::storyboard::Character;

/// Composes the prompt sent to vendors.
pub fn compose_full_prompt(
    prompt_text: &str,
    characters: &[Character],
    scene: Option<&str>,
    props: &[String],
    director_intent: Option<&str>,
) -> String {
    let _ = characters;
    let mut text = prompt_text.trim().to_owned();
    let mut info = Vec::new();
    if let Some(s) = scene.filter(|s| !s.is_empty()) {
        info.push(format!("Scene: {s}"));
    }
    if !props.is_empty() {
        info.push(format!("Props: {}", props.join(", ")));
    }
    if !info.is_empty() {
        text = format!("{text} [{}]", info.join(" | "));
    }
    if let Some(d) = director_intent.filter(|d| !d.is_empty()) {
        text = format!("{text} (Director Note: {d})");
    }
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}
