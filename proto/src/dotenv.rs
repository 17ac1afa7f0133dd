//! The dotenv format as users write it: a parser that remembers where each
//! entry sits, and a single-key writer that keeps every other byte.
//!
//! Accepted: blank lines, `#` comments, `export KEY=...`, spaces around `=`,
//! bare values (an unquoted ` #` starts a comment), `'single'` quotes (taken
//! literally, may span lines), and `"double"` quotes with `\n \r \t \" \\`
//! escapes (may span lines). A line that is none of these is skipped and kept
//! as it is on writes. When a key repeats, the last one wins.

use std::ops::Range;

/// One `KEY=value` entry found in a file.
#[derive(Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub value: String,
    /// Bytes from the start of the key to the end of the value (quotes
    /// included); a write replaces exactly this range.
    pub span: Range<usize>,
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("key", &self.key)
            .field("value", &"[redacted]")
            .field("span", &self.span)
            .finish()
    }
}

/// A valid environment variable name: `[A-Za-z_][A-Za-z0-9_]*`, at most 256 bytes.
pub fn valid_key(key: &str) -> bool {
    let b = key.as_bytes();
    !b.is_empty()
        && b.len() <= 256
        && (b[0].is_ascii_alphabetic() || b[0] == b'_')
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'_')
}

/// Parses `src` into its entries, in file order.
pub fn parse(src: &str) -> Vec<Entry> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < bytes.len() {
        let line_end = find_from(bytes, pos, b'\n').unwrap_or(bytes.len());
        match parse_entry(src, pos, line_end) {
            Some((entry, next)) => {
                out.push(entry);
                pos = next;
            }
            None => pos = line_end + 1,
        }
    }
    out
}

fn find_from(bytes: &[u8], from: usize, needle: u8) -> Option<usize> {
    bytes[from..]
        .iter()
        .position(|b| *b == needle)
        .map(|i| i + from)
}

fn skip_blanks(bytes: &[u8], mut i: usize, end: usize) -> usize {
    while i < end && (bytes[i] == b' ' || bytes[i] == b'\t') {
        i += 1;
    }
    i
}

/// Parses the entry starting on the line at `start`; returns it and the
/// offset just past its last line.
fn parse_entry(src: &str, start: usize, line_end: usize) -> Option<(Entry, usize)> {
    let bytes = src.as_bytes();
    let mut i = skip_blanks(bytes, start, line_end);
    if src[i..line_end].starts_with("export ") || src[i..line_end].starts_with("export\t") {
        i = skip_blanks(bytes, i + 7, line_end);
    }
    let key_start = i;
    while i < line_end && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
        i += 1;
    }
    let key = &src[key_start..i];
    if !valid_key(key) {
        return None;
    }
    i = skip_blanks(bytes, i, line_end);
    if i >= line_end || bytes[i] != b'=' {
        return None;
    }
    i = skip_blanks(bytes, i + 1, line_end);
    let (value, value_end) = match bytes.get(i) {
        Some(b'\'') if i < line_end => {
            let close = find_from(bytes, i + 1, b'\'')?;
            (src[i + 1..close].to_string(), close + 1)
        }
        Some(b'"') if i < line_end => parse_double_quoted(src, i + 1)?,
        _ => {
            let raw = &src[i..line_end];
            let raw = raw.strip_suffix('\r').unwrap_or(raw);
            // An unquoted value ends at " #" (an inline comment).
            let cut = raw
                .find(" #")
                .or_else(|| raw.find("\t#"))
                .unwrap_or(raw.len());
            let value = raw[..cut].trim_end();
            (value.to_string(), i + value.len())
        }
    };
    let next = find_from(bytes, value_end, b'\n').map_or(bytes.len(), |n| n + 1);
    Some((
        Entry {
            key: key.to_string(),
            value,
            span: key_start..value_end,
        },
        next,
    ))
}

/// From just after an opening `"`; returns the unescaped value and the
/// offset just past the closing quote.
fn parse_double_quoted(src: &str, from: usize) -> Option<(String, usize)> {
    let mut out = String::new();
    let mut chars = src[from..].char_indices();
    while let Some((off, c)) = chars.next() {
        match c {
            '"' => return Some((out, from + off + 1)),
            '\\' => match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 'r')) => out.push('\r'),
                Some((_, 't')) => out.push('\t'),
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, other)) => {
                    out.push('\\');
                    out.push(other);
                }
                None => return None,
            },
            c => out.push(c),
        }
    }
    None
}

/// The value as it should be written: bare when that reads back the same,
/// otherwise double-quoted with escapes.
pub fn quote(value: &str) -> String {
    let bare = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-./:@+,%=".contains(&b));
    if bare {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Why a value cannot be stored in a dotenv file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    #[error(
        "invalid name {0:?}: an env vault needs an environment variable name (letters, digits and '_', not starting with a digit)"
    )]
    InvalidKey(String),
    #[error("the value for {0} contains a NUL byte, which an env file cannot hold")]
    NulInValue(String),
    #[error(
        "the file cannot take {0} safely (an unterminated quote in it would swallow the new line); fix the file first"
    )]
    Unsafe(String),
}

/// Every key's effective value (the last definition wins).
pub fn effective(src: &str) -> std::collections::BTreeMap<String, String> {
    parse(src).into_iter().map(|e| (e.key, e.value)).collect()
}

/// Sets `key` to `value` in `src`: replaces the last entry for `key` in
/// place, or appends a line. Every other byte is kept.
pub fn set(src: &str, key: &str, value: &str) -> Result<String, WriteError> {
    if !valid_key(key) {
        return Err(WriteError::InvalidKey(key.to_string()));
    }
    if value.contains('\0') {
        return Err(WriteError::NulInValue(key.to_string()));
    }
    let line = format!("{key}={}", quote(value));
    let entries = parse(src);
    let out = if let Some(e) = entries.iter().rev().find(|e| e.key == key) {
        let mut out = String::with_capacity(src.len() + line.len());
        out.push_str(&src[..e.span.start]);
        out.push_str(&line);
        out.push_str(&src[e.span.end..]);
        out
    } else {
        let mut out = src.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str(&line);
        out.push('\n');
        out
    };
    // Check the result before anyone writes it: the file holds the same
    // entries in the same order, except that the last one for `key` now has
    // the new value (or was appended). A dangling quote elsewhere could
    // otherwise swallow or split lines around the change.
    let mut expected: Vec<(String, String)> =
        entries.into_iter().map(|e| (e.key, e.value)).collect();
    match expected.iter().rposition(|(k, _)| k == key) {
        Some(i) => expected[i].1 = value.to_string(),
        None => expected.push((key.to_string(), value.to_string())),
    }
    let actual: Vec<(String, String)> = parse(&out).into_iter().map(|e| (e.key, e.value)).collect();
    if actual != expected {
        return Err(WriteError::Unsafe(key.to_string()));
    }
    Ok(out)
}

/// The value of `key` (last definition wins).
pub fn get(src: &str, key: &str) -> Option<String> {
    parse(src)
        .into_iter()
        .rev()
        .find(|e| e.key == key)
        .map(|e| e.value)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "# Database\nDATABASE_URL=postgresql://user:pass@localhost:5432/mydb\n\n\
export STRIPE_SECRET_KEY=\"sk_live_...\"\nOPENAI_API_KEY='sk-...'\n  SPACED = value with spaces  # note\n\
EQ=a=b=c\nMULTI=\"line1\\nline2\"\nREAL_MULTI=\"first\nsecond\"\nSINGLE_MULTI='x\ny'\nnot a line\n\
ESC=\"say \\\"hi\\\" \\\\ done\"\nEMPTY=\nCRLF=v\r\nHASH=a#b\n";

    fn value(key: &str) -> Option<String> {
        get(SAMPLE, key)
    }

    #[test]
    fn parses_what_users_write() {
        assert_eq!(
            value("DATABASE_URL").as_deref(),
            Some("postgresql://user:pass@localhost:5432/mydb")
        );
        assert_eq!(value("STRIPE_SECRET_KEY").as_deref(), Some("sk_live_..."));
        assert_eq!(value("OPENAI_API_KEY").as_deref(), Some("sk-..."));
        assert_eq!(value("SPACED").as_deref(), Some("value with spaces"));
        assert_eq!(value("EQ").as_deref(), Some("a=b=c"));
        assert_eq!(value("MULTI").as_deref(), Some("line1\nline2"));
        assert_eq!(value("REAL_MULTI").as_deref(), Some("first\nsecond"));
        assert_eq!(value("SINGLE_MULTI").as_deref(), Some("x\ny"));
        assert_eq!(value("ESC").as_deref(), Some("say \"hi\" \\ done"));
        assert_eq!(value("EMPTY").as_deref(), Some(""));
        assert_eq!(value("CRLF").as_deref(), Some("v"));
        assert_eq!(value("HASH").as_deref(), Some("a#b"));
        let keys: Vec<String> = parse(SAMPLE).into_iter().map(|e| e.key).collect();
        assert_eq!(keys.len(), 12, "{keys:?}");
        assert!(!keys.iter().any(|k| k == "not"));
    }

    #[test]
    fn set_keeps_every_other_byte() {
        let out = set(SAMPLE, "EQ", "new \"quoted\" value").unwrap_or_default();
        assert_eq!(get(&out, "EQ").as_deref(), Some("new \"quoted\" value"));
        let before = SAMPLE.replace("EQ=a=b=c", "");
        let after = out.replace("EQ=\"new \\\"quoted\\\" value\"", "");
        assert_eq!(before, after);
        let out = set(SAMPLE, "STRIPE_SECRET_KEY", "x").unwrap_or_default();
        assert!(out.contains("export STRIPE_SECRET_KEY=x\n"));
        let out = set("A=1", "B", "two words").unwrap_or_default();
        assert_eq!(out, "A=1\nB=\"two words\"\n");
    }

    #[test]
    fn set_refuses_bad_names_and_nul() {
        assert!(matches!(
            set("", "../x", "v"),
            Err(WriteError::InvalidKey(_))
        ));
        assert!(matches!(set("", "1A", "v"), Err(WriteError::InvalidKey(_))));
        assert!(matches!(
            set("", "<script>", "v"),
            Err(WriteError::InvalidKey(_))
        ));
        assert!(matches!(
            set("", "A", "a\0b"),
            Err(WriteError::NulInValue(_))
        ));
    }

    #[test]
    fn a_dangling_quote_is_refused_not_corrupted() {
        let src = "A=\"never closed\nB=1\n";
        assert_eq!(
            set(src, "KEY", "say \"hi\""),
            Err(WriteError::Unsafe("KEY".into()))
        );
        // Plain values after it are fine: nothing else changes.
        let out = set(src, "KEY", "plain").unwrap_or_default();
        assert_eq!(get(&out, "KEY").as_deref(), Some("plain"));
    }

    #[test]
    fn values_round_trip() {
        let tricky = [
            "",
            " ",
            "plain",
            "with space",
            "'single'",
            "\"double\"",
            "back\\slash",
            "\\n literal",
            "line\nbreak",
            "cr\r\nlf",
            "tab\there",
            "#hash",
            "a #comment",
            "trailing ",
            " leading",
            "$HOME ${X}",
            "ünïcödé ✓",
            "=",
            "a'b\"c",
            "\\",
            "\\\"",
            "end\\",
        ];
        let mut seed: u64 = 0x9e3779b97f4a7c15;
        let alphabet: Vec<char> = "ab \"'\\\n\r\t#=$x✓".chars().collect();
        let mut random = Vec::new();
        for _ in 0..500 {
            let mut s = String::new();
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            for k in 0..(seed % 12) {
                s.push(alphabet[((seed >> (k * 4)) as usize) % alphabet.len()]);
            }
            random.push(s);
        }
        let base = "# keep me\nOTHER='x'\n";
        for v in tricky.iter().map(|s| s.to_string()).chain(random) {
            let out = set(base, "KEY", &v).unwrap_or_default();
            assert_eq!(
                get(&out, "KEY").as_deref(),
                Some(v.as_str()),
                "value {v:?} wrote {out:?}"
            );
            assert_eq!(get(&out, "OTHER").as_deref(), Some("x"));
            let again = set(&out, "KEY", &v).unwrap_or_default();
            assert_eq!(again, out, "rewrite is stable for {v:?}");
        }
    }
}
