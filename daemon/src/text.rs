//! Text that a person reads before approving (reasons, names, labels,
//! client names) must look like what it is. Control characters, and the
//! format characters that change how text is shown without showing
//! themselves, are refused in reasons and dropped from labels: direction
//! overrides and isolates (which can make `rm -rf /` read as something
//! else), zero-width characters, and the Unicode "tag" characters that can
//! carry hidden ASCII.

/// Whether `c` changes how text is shown without being seen itself.
pub fn is_hidden(c: char) -> bool {
    matches!(c,
        '\u{00AD}'                     // soft hyphen
        | '\u{034F}'                   // combining grapheme joiner
        | '\u{061C}'                   // Arabic letter mark
        | '\u{115F}' | '\u{1160}'      // Hangul fillers
        | '\u{17B4}' | '\u{17B5}'
        | '\u{180E}'                   // Mongolian vowel separator
        | '\u{200B}'..='\u{200F}'      // zero-width space/joiners, LRM, RLM
        | '\u{202A}'..='\u{202E}'      // embeddings and overrides
        | '\u{2060}'..='\u{206F}'      // word joiner, invisible operators, isolates
        | '\u{3164}'                   // Hangul filler
        | '\u{FE00}'..='\u{FE0F}'      // variation selectors
        | '\u{FEFF}'                   // zero-width no-break space
        | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}'      // interlinear annotation
        | '\u{E0000}'..='\u{E007F}'    // tags
        | '\u{E0100}'..='\u{E01EF}'    // variation selectors supplement
    )
}

/// The first character that may not appear in text shown to an approver
/// (`\n` and `\t` are allowed), as `U+XXXX`.
pub fn first_unshowable(s: &str) -> Option<String> {
    s.chars()
        .find(|&c| is_hidden(c) || (c.is_control() && c != '\n' && c != '\t'))
        .map(|c| format!("U+{:04X}", c as u32))
}

/// `s` without control and hidden characters, at most `max` characters.
pub fn shown(s: &str, max: usize) -> String {
    s.chars()
        .filter(|&c| !c.is_control() && !is_hidden(c))
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_control_characters_are_found() {
        assert_eq!(first_unshowable("deploy the app\nnow\t!"), None);
        assert_eq!(first_unshowable("日本語 émoji 👍"), None);
        assert_eq!(
            first_unshowable("run \u{202E}fdsa\u{202C}"),
            Some("U+202E".into())
        );
        assert_eq!(first_unshowable("a\u{200B}b"), Some("U+200B".into()));
        assert_eq!(first_unshowable("x\u{2066}y"), Some("U+2066".into()));
        assert_eq!(first_unshowable("x\u{E0041}"), Some("U+E0041".into()));
        assert_eq!(first_unshowable("x\u{7}"), Some("U+0007".into()));
        assert_eq!(shown("pho\u{200D}ne\u{202E} 1\n", 60), "phone 1");
    }
}
