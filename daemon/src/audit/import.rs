//! The prototype's audit rows, brought into the chained log: each checked
//! (a known action, a time, text an approver may be shown), kept with its
//! own time, and marked in `detail` as imported from its file and row, so
//! that a second import skips it. They are history only: no window and no
//! webhook event comes from them.

use agent_vault_proto::pb;

use super::{Action, AuditEvent};

/// What marks an imported row, for `source` (its `detail` starts so).
pub fn marker(source: &str) -> String {
    format!("imported from the prototype's {source}, its row ")
}

/// The longest text kept from an imported field.
const MAX_TEXT: usize = 2000;

fn millis(field: &str, text: &str, row: i64) -> Result<i64, String> {
    use time::format_description::well_known::Rfc3339;
    time::OffsetDateTime::parse(text.trim(), &Rfc3339)
        .map(|t| (t.unix_timestamp_nanos() / 1_000_000) as i64)
        .map_err(|_| {
            format!("row {row}: {field} \"{text}\" is not a time such as 2025-01-31T12:00:00.000Z")
        })
}

fn text(field: &str, value: &str, row: i64) -> Result<String, String> {
    if let Some(c) = crate::text::first_unshowable(value) {
        return Err(format!(
            "row {row}: {field} holds a hidden or control character ({c})"
        ));
    }
    Ok(value.chars().take(MAX_TEXT).collect())
}

/// The rows as audit events, or the first reason one cannot be imported
/// (then none is).
pub fn events(source: &str, rows: &[pb::ImportedRow]) -> Result<Vec<AuditEvent>, String> {
    let marker = marker(source);
    rows.iter()
        .map(|r| {
            let id = r.source_id;
            let action = match r.action.as_str() {
                "approved" => Action::Approved,
                "denied" => Action::Denied,
                "auto_approved" => Action::AutoApproved,
                other => {
                    return Err(format!(
                        "row {id}: action \"{other}\" is not one the prototype wrote (approved, denied, auto_approved)"
                    ));
                }
            };
            if r.secret_name.trim().is_empty() {
                return Err(format!("row {id}: it names no secret"));
            }
            let ttl_expires_ms = match r.ttl_expires_at.trim() {
                "" => None,
                t => Some(millis("ttl_expires_at", t, id)?),
            };
            let vault = text("vault", &r.vault, id)?;
            let mut detail = format!("{marker}{id}");
            if !vault.is_empty() {
                detail.push_str(&format!(" (vault {vault})"));
            }
            Ok(AuditEvent {
                secret_name: text("secret_name", &r.secret_name, id)?,
                reason: text("reason", &r.reason, id)?,
                scope: text("scope", &r.scope, id)?,
                ttl_expires_ms,
                operation: "READ".into(),
                detail,
                ..AuditEvent::new(action, millis("timestamp", &r.timestamp, id)?)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: i64, action: &str, timestamp: &str) -> pb::ImportedRow {
        pb::ImportedRow {
            source_id: id,
            timestamp: timestamp.into(),
            secret_name: "API_KEY".into(),
            reason: "deploy".into(),
            action: action.into(),
            ..Default::default()
        }
    }

    #[test]
    fn rows_are_checked_and_marked() {
        let ok = events(
            "/old/agent-vault.db",
            &[
                row(1, "approved", "2025-03-01T10:00:00.000Z"),
                row(2, "auto_approved", "2025-03-01T10:05:00Z"),
            ],
        )
        .unwrap_or_default();
        assert_eq!(ok.len(), 2);
        assert_eq!(
            ok[0].detail,
            "imported from the prototype's /old/agent-vault.db, its row 1"
        );
        assert_eq!(ok[1].timestamp_ms, 1_740_823_500_000);
        let bad = events(
            "x",
            &[
                row(1, "approved", "2025-03-01T10:00:00Z"),
                row(7, "maybe", "2025-03-01T10:00:00Z"),
            ],
        );
        assert!(bad.is_err_and(|e| e.starts_with("row 7: action \"maybe\"")));
        let bad = events("x", &[row(3, "denied", "yesterday")]);
        assert!(bad.is_err_and(|e| e.contains("row 3: timestamp \"yesterday\"")));
        let mut hidden = row(4, "denied", "2025-03-01T10:00:00Z");
        hidden.reason = "ok\u{202E}".into();
        assert!(events("x", &[hidden]).is_err_and(|e| e.contains("U+202E")));
    }
}
