//! Title-card text: wrapping a prompt into lines and escaping values for ffmpeg filter graphs.

/// Rough display width of a character in "narrow columns": 2 for East Asian wide characters
/// and emoji, 0 for combining marks and zero-width characters, 1 otherwise.
fn char_width(c: char) -> usize {
    let u = c as u32;
    let zero_width = matches!(u, 0x0300..=0x036F | 0x200B..=0x200F | 0xFE00..=0xFE0F | 0xFEFF);
    if zero_width {
        return 0;
    }
    let wide = matches!(
        u,
        0x1100..=0x115F
            | 0x2E80..=0x303E
            | 0x3041..=0x33FF
            | 0x3400..=0x4DBF
            | 0x4E00..=0x9FFF
            | 0xA000..=0xA4CF
            | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF
            | 0xFE30..=0xFE4F
            | 0xFF00..=0xFF60
            | 0xFFE0..=0xFFE6
            | 0x1F300..=0x1F64F
            | 0x1F900..=0x1F9FF
            | 0x20000..=0x3FFFD
    );
    if wide { 2 } else { 1 }
}

fn str_width(s: &str) -> usize {
    s.chars().map(char_width).sum()
}

/// Whether `c` is a CJK ideograph, kana or hangul (for picking a font that has the glyphs).
pub(super) fn is_cjk(c: char) -> bool {
    matches!(
        c as u32,
        0x2E80..=0x303E | 0x3041..=0x33FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xAC00..=0xD7A3
            | 0xF900..=0xFAFF | 0xFF00..=0xFF60 | 0x20000..=0x3FFFD
    )
}

/// Wraps `prompt` into at most `max_lines` lines of at most `cols` columns for the title card.
///
/// Carriage returns become newlines, other control characters (tabs included) become spaces,
/// runs of blank lines collapse to one, words longer than a line (and unspaced CJK text) are
/// broken between characters, and text that does not fit ends with `…`. An empty prompt gives
/// `(no prompt)`. The result never ends with a newline.
pub(super) fn wrap(prompt: &str, cols: usize, max_lines: usize) -> String {
    let cols = cols.max(4);
    let max_lines = max_lines.max(1);
    let normalized: String = prompt
        .replace("\r\n", "\n")
        .chars()
        .map(|c| match c {
            '\r' => '\n',
            '\n' => '\n',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();

    let mut lines: Vec<String> = Vec::new();
    for paragraph in normalized.split('\n') {
        let words: Vec<&str> = paragraph.split_whitespace().collect();
        if words.is_empty() {
            if lines.last().is_some_and(|l| !l.is_empty()) {
                lines.push(String::new());
            }
            continue;
        }
        let mut line = String::new();
        let mut width = 0;
        for word in words {
            let w = str_width(word);
            let sep = usize::from(!line.is_empty());
            if width + sep + w <= cols {
                if sep == 1 {
                    line.push(' ');
                }
                line.push_str(word);
                width += sep + w;
                continue;
            }
            if w <= cols {
                lines.push(std::mem::take(&mut line));
                line.push_str(word);
                width = w;
                continue;
            }
            // A word longer than a line: fill the current line, then break between characters.
            if !line.is_empty() {
                line.push(' ');
                width += 1;
            }
            for c in word.chars() {
                let cw = char_width(c);
                if width + cw > cols {
                    lines.push(std::mem::take(&mut line));
                    width = 0;
                }
                line.push(c);
                width += cw;
            }
        }
        if !line.is_empty() {
            lines.push(line);
        }
    }
    while lines.last().is_some_and(String::is_empty) {
        lines.pop();
    }
    if lines.is_empty() {
        return "(no prompt)".to_owned();
    }
    if lines.len() > max_lines {
        lines.truncate(max_lines);
        if let Some(last) = lines.last_mut() {
            while !last.is_empty() && str_width(last) + 1 > cols {
                last.pop();
            }
            let trimmed = last.trim_end().len();
            last.truncate(trimmed);
            last.push('…');
        }
    }
    lines.join("\n")
}

/// Escapes `value` for use as an option value inside an ffmpeg filter graph passed as one
/// argument (no shell): first for the filter's option parser (`\`, `'`, `:`, `=`), then for the
/// graph parser (`\`, `'`, `[`, `]`, `,`, `;`). See "Notes on filtergraph escaping" in the
/// ffmpeg-filters manual.
pub(super) fn escape_filter_value(value: &str) -> String {
    fn escape(s: &str, special: &[char]) -> String {
        let mut out = String::with_capacity(s.len() + 8);
        for c in s.chars() {
            if special.contains(&c) {
                out.push('\\');
            }
            out.push(c);
        }
        out
    }
    let level1 = escape(value, &['\\', '\'', ':', '=']);
    escape(&level1, &['\\', '\'', '[', ']', ',', ';'])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_prompts_stay_on_one_line() {
        assert_eq!(wrap("A city at night.", 40, 5), "A city at night.");
    }

    #[test]
    fn long_prompts_wrap_at_word_boundaries() {
        let text = wrap("one two three four five six seven eight nine ten", 14, 10);
        for line in text.lines() {
            assert!(line.chars().count() <= 14, "{line:?}");
        }
        assert_eq!(text, "one two three\nfour five six\nseven eight\nnine ten");
    }

    #[test]
    fn cjk_text_counts_double_width_and_breaks_between_characters() {
        let text = wrap(&"小美".repeat(10), 10, 10);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines.iter().all(|l| str_width(l) <= 10));
        assert_eq!(lines[0], "小美小美小");
        assert!(is_cjk('美') && !is_cjk('a'));
    }

    #[test]
    fn control_characters_are_neutralised_and_newlines_kept() {
        let text = wrap("line one\r\n\r\n\r\nline\ttwo\u{7}\rthree\n", 40, 10);
        assert_eq!(text, "line one\n\nline two\nthree");
    }

    #[test]
    fn overlong_text_is_cut_with_an_ellipsis() {
        let text = wrap(&"word ".repeat(100), 12, 3);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert!(lines[2].ends_with('…'), "{text}");
        assert!(str_width(lines[2]) <= 12);
    }

    #[test]
    fn empty_prompts_get_a_placeholder() {
        assert_eq!(wrap(" \n\t ", 40, 5), "(no prompt)");
    }

    #[test]
    fn filter_values_are_escaped_for_both_parser_levels() {
        assert_eq!(
            escape_filter_value("/fonts/it's:a,b"),
            r"/fonts/it\\\'s\\:a\,b"
        );
        assert_eq!(escape_filter_value(r"C:\x"), r"C\\:\\\\x");
        assert_eq!(escape_filter_value("%{pts:hms}"), r"%{pts\\:hms}");
    }
}
