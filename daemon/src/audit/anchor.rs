//! Comparing the log with its anchors (see [`agent_vault_proto::anchor`]).
//! The chain alone shows an edited or deleted row only to someone who
//! cannot recompute it; whoever can write the database can also rewrite the
//! whole chain, cut its tail or put back an older copy. An anchor made
//! before that no longer matches: the entry at its position has another
//! hash, or there are fewer entries than it counted.

pub use agent_vault_proto::anchor::Anchor;

/// Compares anchors with the log: `entries` is how many the chain holds
/// and `hash_at` the hash at a position. Returns the first anchor the log
/// contradicts, in words.
pub fn contradiction(
    anchors: &[Anchor],
    entries: i64,
    hash_at: impl Fn(i64) -> Option<String>,
) -> Option<String> {
    let mut sorted: Vec<&Anchor> = anchors.iter().collect();
    sorted.sort_by_key(|a| a.seq);
    for a in sorted {
        let when = if a.time.is_empty() {
            String::new()
        } else {
            format!(" at {}", a.time)
        };
        if a.seq > entries {
            return Some(format!(
                "the log has {entries} entries, but it had {} when anchored{when}: entries were cut off its end, or the log was replaced (by an older copy or a new one)",
                a.seq
            ));
        }
        if a.seq == 0 {
            continue;
        }
        if hash_at(a.seq).as_deref() != Some(a.hash.as_str()) {
            return Some(format!(
                "entry {} is not the one anchored{when}: since then the log was rewritten, cut back or replaced",
                a.seq
            ));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(seq: i64, hash: &str) -> Anchor {
        Anchor {
            seq,
            hash: hash.into(),
            time: "2026-12-05T10:00:00.000Z".into(),
        }
    }

    #[test]
    fn names_what_the_log_contradicts() {
        let hashes = ["h1", "h2", "h3"];
        let at = |s: i64| hashes.get(s as usize - 1).map(|h| h.to_string());
        assert_eq!(
            contradiction(&[a(0, ""), a(2, "h2"), a(3, "h3")], 3, at),
            None
        );
        let cut = contradiction(&[a(2, "h2"), a(4, "h4")], 3, at).unwrap_or_default();
        assert!(cut.contains("cut off") && cut.contains("had 4"), "{cut}");
        let rewritten = contradiction(&[a(2, "hX")], 3, at).unwrap_or_default();
        assert!(
            rewritten.contains("entry 2") && rewritten.contains("rewritten"),
            "{rewritten}"
        );
    }
}
