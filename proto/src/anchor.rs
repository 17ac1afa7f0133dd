//! The audit anchor's format, shared by agent-vaultd (which writes anchors)
//! and `agent-vault audit verify --anchor` (which reads them back).
//!
//! An anchor is a copy of the audit chain's head (how many entries, the
//! last hash, when) kept outside the database. One anchor is one JSON line;
//! the same text is appended to the anchor file, posted to an ntfy topic
//! and carried by `audit_anchor` webhook events.

/// What every anchor line says it is.
pub const KIND: &str = "agent-vault-audit-anchor";

/// The chain's head at a moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    /// Entries in the log (the last entry's position, 1-based).
    pub seq: i64,
    /// That entry's chain hash (empty for an empty log).
    pub hash: String,
    /// When the anchor was made (UTC, RFC 3339).
    pub time: String,
}

impl Anchor {
    /// As JSON: `{"type", "seq", "hash", "time"}`.
    pub fn to_value(&self) -> serde_json::Value {
        serde_json::json!({"type": KIND, "seq": self.seq, "hash": self.hash, "time": self.time})
    }

    /// The JSON line (without the newline).
    pub fn to_line(&self) -> String {
        self.to_value().to_string()
    }

    /// Every anchor in a text of JSON lines: anchor lines as written, ntfy
    /// messages whose text is one (`GET <topic>/json?poll=1`), and webhook
    /// bodies carrying one (`audit_anchor`) or a chain position (every
    /// event). Lines that are none of these are skipped; a text with no
    /// anchor at all is an error, so a wrong file or URL does not pass.
    pub fn parse_all(text: &str) -> Result<Vec<Anchor>, String> {
        let mut anchors = Vec::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
            let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            if let Some(a) = Self::from_value(&value) {
                anchors.push(a);
            }
        }
        if anchors.is_empty() {
            return Err(
                "it holds no audit anchors (expected the lines agent-vaultd writes to audit.anchor.file, an ntfy topic's JSON stream, or logged webhook bodies)"
                    .into(),
            );
        }
        Ok(anchors)
    }

    fn from_value(v: &serde_json::Value) -> Option<Anchor> {
        let get = |v: &serde_json::Value| -> Option<Anchor> {
            Some(Anchor {
                seq: v.get("seq")?.as_i64().filter(|s| *s >= 0)?,
                hash: v.get("hash")?.as_str()?.to_string(),
                time: v
                    .get("time")
                    .and_then(|t| t.as_str())
                    .unwrap_or_default()
                    .to_string(),
            })
        };
        if v.get("type").and_then(|t| t.as_str()) == Some(KIND) {
            return get(v);
        }
        // An ntfy message: the anchor line is its text.
        if let Some(message) = v.get("message").and_then(|m| m.as_str()) {
            let inner = serde_json::from_str::<serde_json::Value>(message).ok()?;
            return (inner.get("type").and_then(|t| t.as_str()) == Some(KIND))
                .then(|| get(&inner))
                .flatten();
        }
        // A webhook body: an anchor event, or any event's chain position.
        if let Some(a) = v.get("anchor") {
            return get(a);
        }
        let chain = v.get("chain")?;
        let mut a = get(chain)?;
        a.time = v
            .get("timestamp")
            .and_then(|t| t.as_str())
            .unwrap_or_default()
            .to_string();
        Some(a)
    }
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
    fn reads_its_own_lines_ntfy_messages_and_webhook_bodies() -> Result<(), String> {
        let line = a(3, "abc").to_line();
        let ntfy = serde_json::json!({"id": "x", "event": "message", "topic": "t", "message": a(4, "def").to_line()});
        let anchor_event =
            serde_json::json!({"event": "audit_anchor", "anchor": a(5, "0a").to_value()});
        let access = serde_json::json!({"event": "secret_access", "timestamp": "T", "chain": {"seq": 6, "hash": "0b"}});
        let text = format!(
            "{line}\n\n{{\"event\":\"open\"}}\nnot json\n{ntfy}\n{anchor_event}\n{access}\n"
        );
        let got = Anchor::parse_all(&text)?;
        let seqs: Vec<i64> = got.iter().map(|a| a.seq).collect();
        assert_eq!(seqs, [3, 4, 5, 6]);
        assert_eq!(got[3].time, "T");
        assert_eq!(got[0], a(3, "abc"));
        assert!(Anchor::parse_all("{\"event\":\"open\"}\nhello\n").is_err());
        Ok(())
    }
}
