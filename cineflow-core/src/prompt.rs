//! `full_prompt` composition, compatible with CineFlow's `construct_enhanced_prompt`.

use serde::{Deserialize, Serialize};

/// A character: a display name and, optionally, a vendor character id such as `@alice`.
///
/// ```
/// use cineflow_core::Character;
///
/// let alice = Character::new("Alice").with_id("@alice".to_owned());
/// assert_eq!(alice, Character::from_legacy("Alice (@alice)"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Character {
    /// The name as written in prompts.
    pub name: String,
    /// The vendor character id (`@alice`), if any.
    pub id: Option<String>,
}

impl Character {
    /// The character `name`, with no vendor id.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            id: None,
        }
    }

    crate::setters::with_setters!(with_id => id?: String);

    /// Parses CineFlow's legacy character string: `"Alice (@alice)"` → `{Alice, @alice}`,
    /// `"[Bob]"` → `{Bob, None}`.
    pub fn from_legacy(s: &str) -> Self {
        let mut s = s.trim();
        if s.len() >= 2 && s.starts_with('[') && s.ends_with(']') {
            s = s[1..s.len() - 1].trim();
        }
        match s.split_once('@') {
            None => Character {
                name: s.to_owned(),
                id: None,
            },
            Some((left, right)) => Character {
                name: left.trim().trim_end_matches('(').trim().to_owned(),
                id: Some(format!("@{}", right.trim().trim_end_matches(')'))),
            },
        }
    }
}

/// Composes the prompt sent to vendors.
///
/// This is CineFlow's `construct_enhanced_prompt`:
///
/// 1. trim `prompt_text`;
/// 2. inject character ids: characters with an id, longest name (in characters) first. If any
///    `[Name]` of such a character appears in the text ("strict mode"), only `[Name]` occurrences
///    are replaced by `id + " "`; otherwise every occurrence of `Name` is. Text inside ASCII
///    `"…"` or CJK `“…”` quotes is never touched (an unmatched opening quote starts no quote);
/// 3. append ` [Scene: … | Props: a, b]` (each part only when non-empty);
/// 4. append ` (Director Note: …)` when the note is non-empty;
/// 5. pad `@tokens` with one space on each side, collapse all whitespace runs to one space and
///    trim.
///
/// # Deviations from CineFlow
///
/// Three known CineFlow defects are fixed on purpose:
///
/// 1. **An id already written next to the name is not injected again.** CineFlow turns
///    `named Alice(@alice )` into `named @alice ( @alice )`. We skip an occurrence of the name
///    (in strict mode, of `[Name]`) when the character's id already stands immediately after
///    it (after optional whitespace and an optional opening bracket `(`, `（` or `[`) or
///    immediately before it (the id followed by optional whitespace), giving
///    `named Alice( @alice )`. Other occurrences of the name are still injected.
/// 2. **Word boundaries for ASCII names.** CineFlow matches names as plain substrings, so a
///    character `lice` matches inside `Alice` or `@alice`. A name made only of ASCII characters
///    matches here only where the character before it is not `[A-Za-z0-9_@]` and the character
///    after it is not `[A-Za-z0-9_]`. Names containing non-ASCII characters (CJK) keep
///    CineFlow's substring matching, since CJK text has no spaces: `小美走进` with
///    `小美`→`@xiaomei` still gives `@xiaomei 走进`.
/// 3. **Only character ids are padded.** CineFlow pads every `@[A-Za-z0-9_]+`, which mangles
///    e-mail addresses (`a@b.com` → `a @b .com`). We pad a token (`@` followed by the longest run
///    of `[A-Za-z0-9_]`) only when it is exactly the id of one of the given characters
///    (`@alice2` is not `@alice`).
///
/// In addition, characters with an empty name or an empty id take no part in injection
/// (CineFlow would insert an empty-named character's id between every two characters).
/// Whitespace follows Python's `str.split()`/`str.strip()`, which include U+001C..U+001F.
///
/// ```
/// use cineflow_core::{Character, prompt::compose_full_prompt};
/// let alice = Character::new("Alice").with_id("@alice".to_owned());
/// assert_eq!(
///     compose_full_prompt("Alice waves.", &[alice], Some("Room"), &[], None),
///     "@alice waves. [Scene: Room]"
/// );
/// ```
pub fn compose_full_prompt(
    prompt_text: &str,
    characters: &[Character],
    scene: Option<&str>,
    props: &[String],
    director_intent: Option<&str>,
) -> String {
    let mut text = inject_character_ids(prompt_text.trim_matches(is_py_space), characters);
    let mut info = Vec::new();
    if let Some(s) = scene.filter(|s| !s.is_empty()) {
        info.push(format!("Scene: {s}"));
    }
    if !props.is_empty() {
        info.push(format!("Props: {}", props.join(", ")));
    }
    if !info.is_empty() {
        text.push_str(" [");
        text.push_str(&info.join(" | "));
        text.push(']');
    }
    if let Some(d) = director_intent.filter(|d| !d.is_empty()) {
        text.push_str(" (Director Note: ");
        text.push_str(d);
        text.push(')');
    }
    let ids: Vec<&str> = characters
        .iter()
        .filter_map(|c| c.id.as_deref())
        .filter(|id| !id.is_empty())
        .collect();
    let padded = pad_ids(&text, &ids);
    padded
        .split(is_py_space)
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Whitespace as Python's `str.split()` sees it.
fn is_py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// `[A-Za-z0-9_]`.
fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Replaces character names by ids outside quotes.
fn inject_character_ids(text: &str, characters: &[Character]) -> String {
    let mut chars: Vec<(&str, &str)> = characters
        .iter()
        .filter_map(|c| Some((c.name.as_str(), c.id.as_deref()?)))
        .filter(|(name, id)| !name.is_empty() && !id.is_empty())
        .collect();
    if chars.is_empty() {
        return text.to_owned();
    }
    // Stable, like Python's `sorted(..., reverse=True)`.
    chars.sort_by_key(|(name, _)| std::cmp::Reverse(name.chars().count()));
    let strict = chars
        .iter()
        .any(|(name, _)| text.contains(&format!("[{name}]")));

    let mut out = String::with_capacity(text.len() + 32);
    for (quoted, span) in quote_spans(text) {
        if quoted {
            out.push_str(span);
            continue;
        }
        let mut part = span.to_owned();
        for (name, id) in &chars {
            part = if strict {
                replace_occurrences(&part, &format!("[{name}]"), false, id)
            } else {
                replace_occurrences(&part, name, name.is_ascii(), id)
            };
        }
        out.push_str(&part);
    }
    out
}

/// Splits `text` into `(is_quoted, span)` pieces covering it in order. A quote span runs from
/// `"` to the next `"`, or from `“` to the next `”`; an opening quote without its closing quote is
/// ordinary text.
fn quote_spans(text: &str) -> Vec<(bool, &str)> {
    let mut spans = Vec::new();
    let mut plain_start = 0;
    let mut i = 0;
    while i < text.len() {
        let Some(c) = text[i..].chars().next() else {
            break;
        };
        let close = match c {
            '"' => Some('"'),
            '“' => Some('”'),
            _ => None,
        };
        let after_open = i + c.len_utf8();
        if let Some(close) = close
            && let Some(rel) = text[after_open..].find(close)
        {
            let end = after_open + rel + close.len_utf8();
            if plain_start < i {
                spans.push((false, &text[plain_start..i]));
            }
            spans.push((true, &text[i..end]));
            plain_start = end;
            i = end;
            continue;
        }
        i = after_open;
    }
    if plain_start < text.len() {
        spans.push((false, &text[plain_start..]));
    }
    spans
}

/// Replaces each accepted occurrence of `pattern` (non-empty) in `part` by `id + " "`.
///
/// With `word_bounds`, an occurrence must not be preceded by `[A-Za-z0-9_@]` nor followed by
/// `[A-Za-z0-9_]`. An occurrence next to the id (fix 1) is always kept as it is.
fn replace_occurrences(part: &str, pattern: &str, word_bounds: bool, id: &str) -> String {
    if pattern.is_empty() {
        return part.to_owned();
    }
    let mut out = String::with_capacity(part.len() + 16);
    let mut last = 0;
    let mut cursor = 0;
    while let Some(rel) = part[cursor..].find(pattern) {
        let start = cursor + rel;
        let end = start + pattern.len();
        let before = &part[..start];
        let after = &part[end..];
        let bounded = !word_bounds
            || (!before
                .chars()
                .next_back()
                .is_some_and(|c| is_word(c) || c == '@')
                && !after.chars().next().is_some_and(is_word));
        if bounded && !id_follows(after, id) && !id_precedes(before, id) {
            out.push_str(&part[last..start]);
            out.push_str(id);
            out.push(' ');
            last = end;
            cursor = end;
        } else {
            // Like a regex with look-arounds: the next match may start inside this one.
            cursor = start + part[start..].chars().next().map_or(1, char::len_utf8);
        }
    }
    out.push_str(&part[last..]);
    out
}

/// Whether `id` stands at the start of `s`, as a whole token.
fn starts_with_token(s: &str, id: &str) -> bool {
    s.strip_prefix(id).is_some_and(|rest| {
        !(id.chars().next_back().is_some_and(is_word) && rest.chars().next().is_some_and(is_word))
    })
}

/// Whether `id` follows a name, after optional whitespace and an optional opening bracket.
fn id_follows(after: &str, id: &str) -> bool {
    let s = after.trim_start_matches(is_py_space);
    let s = s
        .strip_prefix(['(', '（', '['])
        .map_or(s, |r| r.trim_start_matches(is_py_space));
    starts_with_token(s, id)
}

/// Whether `id` (followed by optional whitespace) stands right before a name.
fn id_precedes(before: &str, id: &str) -> bool {
    let s = before.trim_end_matches(is_py_space);
    s.strip_suffix(id).is_some_and(|head| {
        !(id.starts_with(|c: char| is_word(c) || c == '@')
            && head.chars().next_back().is_some_and(is_word))
    })
}

/// Pads every `@token` that is one of `ids` with a space on each side.
fn pad_ids(text: &str, ids: &[&str]) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(at) = rest.find('@') {
        out.push_str(&rest[..at]);
        let tail = &rest[at + 1..];
        let run = tail.find(|c: char| !is_word(c)).unwrap_or(tail.len());
        let token = &rest[at..at + 1 + run];
        if run > 0 && ids.contains(&token) {
            out.push(' ');
            out.push_str(token);
            out.push(' ');
        } else {
            out.push_str(token);
        }
        rest = &rest[at + 1 + run..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(name: &str, id: &str) -> Character {
        Character {
            name: name.into(),
            id: Some(id.into()),
        }
    }

    fn inject(text: &str, characters: &[Character]) -> String {
        compose_full_prompt(text, characters, None, &[], None)
    }

    #[test]
    fn demo_segment_1_matches_cineflow_byte_for_byte() {
        let got = compose_full_prompt(
            "A futuristic city skyline at night with neon lights reflecting on the river. Cyberpunk style.",
            &[],
            Some("Future City"),
            &[],
            Some("Establishing shot."),
        );
        assert_eq!(
            got,
            "A futuristic city skyline at night with neon lights reflecting on the river. \
             Cyberpunk style. [Scene: Future City] (Director Note: Establishing shot.)"
        );
    }

    #[test]
    fn demo_segment_2_does_not_inject_an_id_already_written_after_the_name() {
        let got = compose_full_prompt(
            "Close up of a character named Alice(@alice ) smiling warmly at the camera.",
            &[ch("Alice", "@alice")],
            Some("Room"),
            &[],
            Some("Character introduction."),
        );
        assert_eq!(
            got,
            "Close up of a character named Alice( @alice ) smiling warmly at the camera. \
             [Scene: Room] (Director Note: Character introduction.)"
        );
    }

    #[test]
    fn an_id_already_written_before_the_name_is_not_injected_again() {
        let alice = [ch("Alice", "@alice")];
        assert_eq!(inject("@alice Alice waves", &alice), "@alice Alice waves");
        assert_eq!(
            inject("Alice [@alice] waves", &alice),
            "Alice [ @alice ] waves"
        );
        assert_eq!(
            inject("Alice （@alice） waves", &alice),
            "Alice （ @alice ） waves"
        );
    }

    #[test]
    fn other_occurrences_of_a_name_with_its_id_nearby_are_still_injected() {
        let alice = [ch("Alice", "@alice")];
        assert_eq!(
            inject("Alice(@alice) meets Bob, then Alice leaves", &alice),
            "Alice( @alice ) meets Bob, then @alice leaves"
        );
        assert_eq!(inject("Alice Alice", &alice), "@alice @alice");
    }

    #[test]
    fn a_longer_id_next_to_the_name_does_not_count_as_its_id() {
        assert_eq!(
            inject("Alice(@alice2)", &[ch("Alice", "@alice")]),
            "@alice (@alice2)"
        );
    }

    #[test]
    fn every_name_is_replaced_by_its_id() {
        assert_eq!(
            inject(
                "Alice meets Bob",
                &[ch("Alice", "@alice"), ch("Bob", "@bob")]
            ),
            "@alice meets @bob"
        );
    }

    #[test]
    fn strict_mode_replaces_only_bracketed_names() {
        assert_eq!(
            inject("[Alice] waves at Alice", &[ch("Alice", "@alice")]),
            "@alice waves at Alice"
        );
    }

    #[test]
    fn strict_mode_is_only_triggered_by_characters_with_an_id() {
        let chars = [
            ch("Alice", "@alice"),
            Character {
                name: "Bob".into(),
                id: None,
            },
        ];
        assert_eq!(inject("[Bob] sees Alice", &chars), "[Bob] sees @alice");
    }

    #[test]
    fn text_inside_quotes_is_never_touched() {
        assert_eq!(
            inject(
                "Alice says \"Alice is here\" and “Alice”",
                &[ch("Alice", "@alice")]
            ),
            "@alice says \"Alice is here\" and “Alice”"
        );
    }

    #[test]
    fn an_unmatched_opening_quote_is_ordinary_text() {
        // The injected id is then padded like any id.
        let alice = [ch("Alice", "@alice")];
        assert_eq!(inject("\"Alice waves", &alice), "\" @alice waves");
        assert_eq!(inject("“Alice waves", &alice), "“ @alice waves");
        assert_eq!(
            inject("\"Alice “Alice” Alice", &alice),
            "\" @alice “Alice” @alice"
        );
    }

    #[test]
    fn ascii_names_match_only_at_word_boundaries() {
        assert_eq!(
            inject("Alice sees lice", &[ch("lice", "@lice")]),
            "Alice sees @lice"
        );
        assert_eq!(
            inject("@alice waves", &[ch("alice", "@alice")]),
            "@alice waves"
        );
        assert_eq!(
            inject("Alicegate and Alice_2 but Alice.", &[ch("Alice", "@alice")]),
            "Alicegate and Alice_2 but @alice ."
        );
    }

    #[test]
    fn cjk_names_match_as_substrings() {
        assert_eq!(
            inject("小美走进教室", &[ch("小美", "@xiaomei")]),
            "@xiaomei 走进教室"
        );
    }

    #[test]
    fn emails_are_not_padded() {
        assert_eq!(
            inject("mail a@b.com to Alice", &[ch("Alice", "@alice")]),
            "mail a@b.com to @alice"
        );
    }

    #[test]
    fn only_exact_character_ids_are_padded() {
        assert_eq!(
            inject("hi @alice2 and @alice.", &[ch("Zed", "@alice")]),
            "hi @alice2 and @alice ."
        );
    }

    #[test]
    fn scene_and_props_are_appended_in_one_bracket() {
        let props = vec!["Books".to_owned(), "Podium".to_owned()];
        let got = compose_full_prompt("A room.", &[], Some("Classroom - Day"), &props, None);
        assert_eq!(
            got,
            "A room. [Scene: Classroom - Day | Props: Books, Podium]"
        );
        let got = compose_full_prompt("A room.", &[], None, &props, None);
        assert_eq!(got, "A room. [Props: Books, Podium]");
    }

    #[test]
    fn empty_scene_and_director_intent_count_as_absent() {
        assert_eq!(
            compose_full_prompt("A room.", &[], Some(""), &[], Some("")),
            "A room."
        );
    }

    #[test]
    fn whitespace_is_collapsed_including_newlines_and_tabs() {
        assert_eq!(
            compose_full_prompt(
                "  A\tcity \n\n at\r\nnight. \u{1f} ",
                &[],
                Some("X"),
                &[],
                Some("  slow\tpan ")
            ),
            "A city at night. [Scene: X] (Director Note: slow pan )"
        );
    }

    #[test]
    fn longer_names_are_injected_first() {
        let chars = [ch("Mary", "@mary"), ch("Mary Jane", "@mj")];
        assert_eq!(inject("Mary Jane and Mary", &chars), "@mj and @mary");
    }

    #[test]
    fn characters_without_id_or_name_are_ignored() {
        let chars = [
            Character {
                name: "Alice".into(),
                id: None,
            },
            ch("", "@ghost"),
            ch("Bob", ""),
        ];
        assert_eq!(inject("Alice and Bob", &chars), "Alice and Bob");
    }

    #[test]
    fn mixed_cjk_and_emoji_input_does_not_panic() {
        let chars = [
            ch("小美", "@xiaomei"),
            ch("🎬", "@clap"),
            ch("é", "@e"),
            ch("Al", "@al"),
        ];
        let texts = [
            "🎬小美🎬“小美”\"🎬\"é Al🎬Al",
            "“",
            "\"",
            "@",
            "@@xiaomei@",
            "[小美]🎬",
            "Al(@al",
            "Al（",
            "é\u{301}小",
            "",
            "   ",
        ];
        for t in texts {
            let _ = compose_full_prompt(t, &chars, Some("场景"), &["道具".into()], Some("🎥"));
        }
        assert_eq!(inject("🎬小美🎬", &chars), "@clap @xiaomei @clap");
    }

    #[test]
    fn random_input_does_not_panic() {
        let alphabet: Vec<char> = "aAl小美🎬 \t\n\"“”@([（.é_1".chars().collect();
        let chars = [ch("Al", "@al"), ch("小美", "@xiaomei"), ch("a", "@a")];
        let mut rng = fastrand::Rng::with_seed(7);
        for _ in 0..2_000 {
            let len = rng.usize(0..24);
            let text: String = (0..len)
                .map(|_| alphabet[rng.usize(0..alphabet.len())])
                .collect();
            let _ = compose_full_prompt(&text, &chars, None, &[], None);
        }
    }
}
