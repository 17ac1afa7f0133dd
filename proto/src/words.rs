//! Messages in the user's words: serde's wording without Rust type names,
//! "did you mean" for a near miss, and I/O errors without `(os error N)`.

/// The known word closest to `word`, if it is close enough to be a typo
/// (`tll` for `ttl`, `writeable` for `writable`, `prot` for `port`).
pub fn did_you_mean<'a>(word: &str, known: &[&'a str]) -> Option<&'a str> {
    let lower = word.to_ascii_lowercase();
    let close = known
        .iter()
        .map(|k| {
            (
                strsim::damerau_levenshtein(&lower, &k.to_ascii_lowercase()),
                *k,
            )
        })
        .filter(|(d, k)| *d <= 2.max(k.len() / 4) && *d < k.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k);
    // Or a word cut short (`maxOutput` for `maxOutputBytes`).
    close.or_else(|| {
        known
            .iter()
            .find(|k| lower.len() >= 4 && k.to_ascii_lowercase().starts_with(&lower))
            .copied()
    })
}

/// serde's messages, worded for a person editing the file: no Rust type
/// names (`f64`, `u32`, `struct RawVault`), backquotes made quotes, and an
/// unknown key or value with its closest known one.
pub fn plain_words(message: &str) -> String {
    let listed = |rest: &str| -> Vec<String> {
        rest.trim_start_matches("one of ")
            .split(", ")
            .map(|s| s.trim_matches('`').to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    for (prefix, what, plural) in [
        ("unknown field `", "setting", "settings allowed here"),
        ("unknown variant `", "value", "values allowed here"),
    ] {
        if let Some(rest) = message.strip_prefix(prefix)
            && let Some((word, rest)) = rest.split_once('`')
        {
            let known = match rest.strip_prefix(", expected ") {
                Some(list) if list != "there are no fields" => listed(list),
                _ => Vec::new(),
            };
            let refs: Vec<&str> = known.iter().map(String::as_str).collect();
            let mut out = format!("unknown {what} \"{word}\"");
            match did_you_mean(word, &refs) {
                Some(near) => out.push_str(&format!("; did you mean \"{near}\"?")),
                None => out.push('.'),
            }
            if !refs.is_empty() {
                out.push_str(&format!(" The {plural}: {}.", refs.join(", ")));
            }
            return out;
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `")
        && let Some((field, _)) = rest.split_once('`')
    {
        return format!("\"{field}\" is missing; add it");
    }
    if let Some(rest) = message.strip_prefix("invalid length ")
        && let Some((_, expected)) = rest.split_once(", expected ")
    {
        return format!("expected {}", expected_words(expected));
    }
    let mismatch = message
        .strip_prefix("invalid type: ")
        .or_else(|| message.strip_prefix("invalid value: "))
        .and_then(|m| m.split_once(", expected "));
    match mismatch {
        Some((found, expected)) => format!(
            "expected {}, found {}",
            expected_words(expected),
            found_words(found)
        ),
        None => message.replace('`', "\""),
    }
}

/// serde's name of what was expected, in words.
fn expected_words(expected: &str) -> String {
    match expected {
        "f64" | "f32" => "a number".into(),
        "u8" => "a whole number from 0 to 255".into(),
        "u16" => "a whole number from 0 to 65535".into(),
        "u32" | "u64" | "usize" | "i32" | "i64" => "a whole number".into(),
        "a sequence" => "a list [ … ]".into(),
        "a map" => "an object { … }".into(),
        "a borrowed string" => "a string".into(),
        e if e.starts_with("struct ") || e.starts_with("map") => "an object { … }".into(),
        e if e.starts_with("enum ") || e.starts_with("variant identifier") => {
            "one of the allowed values".into()
        }
        e => e.replace('`', "\""),
    }
}

/// serde's description of what was found, in words.
fn found_words(found: &str) -> String {
    let unquoted = |rest: &str| rest.trim_matches('`').to_string();
    if let Some(rest) = found.strip_prefix("string ") {
        format!("the text {rest}")
    } else if let Some(rest) = found
        .strip_prefix("integer ")
        .or_else(|| found.strip_prefix("floating point "))
    {
        format!("the number {}", unquoted(rest))
    } else if let Some(rest) = found.strip_prefix("boolean ") {
        unquoted(rest)
    } else {
        match found {
            "map" => "an object".into(),
            "sequence" => "a list".into(),
            "unit value" | "null" => "null".into(),
            f => f.replace('`', "\""),
        }
    }
}

/// An I/O error in plain words (no `(os error 2)`).
pub fn io_error(e: &std::io::Error) -> String {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::NotFound => "no such file or directory".into(),
        ErrorKind::PermissionDenied => "permission denied".into(),
        ErrorKind::IsADirectory => "it is a directory, not a file".into(),
        ErrorKind::InvalidData => "it is not UTF-8 text".into(),
        _ => {
            let text = e.to_string();
            match text.find(" (os error ") {
                Some(at) => text[..at].to_string(),
                None => text,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn near_misses_are_named() {
        let known = ["ttl", "ttlScope", "writable", "type", "file", "port"];
        assert_eq!(did_you_mean("tll", &known), Some("ttl"));
        assert_eq!(did_you_mean("writeable", &known), Some("writable"));
        assert_eq!(did_you_mean("prot", &known), Some("port"));
        assert_eq!(did_you_mean("TTLScope", &known), Some("ttlScope"));
        assert_eq!(did_you_mean("colour", &known), None);
        assert_eq!(
            did_you_mean("maxOutput", &["maxOutputBytes"]),
            Some("maxOutputBytes")
        );
    }

    #[test]
    fn serde_messages_lose_their_rust() {
        assert_eq!(
            plain_words("unknown field `prot`, expected one of `vaults`, `port`, `webhooks`"),
            "unknown setting \"prot\"; did you mean \"port\"? The settings allowed here: vaults, port, webhooks."
        );
        assert_eq!(
            plain_words("unknown variant `vualt`, expected one of `secret`, `vault`, `session`"),
            "unknown value \"vualt\"; did you mean \"vault\"? The values allowed here: secret, vault, session."
        );
        assert_eq!(
            plain_words("invalid type: string \"5\", expected f64"),
            "expected a number, found the text \"5\""
        );
        assert_eq!(
            plain_words("invalid type: integer `3`, expected struct RawVault"),
            "expected an object { … }, found the number 3"
        );
        assert_eq!(
            plain_words("missing field `url`"),
            "\"url\" is missing; add it"
        );
        for m in [
            "invalid type: boolean `true`, expected u32",
            "invalid type: map, expected a sequence",
            "invalid value: integer `70000`, expected u16",
        ] {
            let plain = plain_words(m);
            assert!(
                !plain.contains('`') && !plain.contains("u32") && !plain.contains("u16"),
                "{plain}"
            );
        }
    }

    #[test]
    fn io_errors_in_words() {
        let e = std::fs::read("/no/such/file").err();
        assert_eq!(
            e.map(|e| io_error(&e)).as_deref(),
            Some("no such file or directory")
        );
    }
}
