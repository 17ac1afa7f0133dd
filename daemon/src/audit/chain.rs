//! The hash chain: `hash = sha256(prev_hash || canonical row)`.

use sha2::{Digest, Sha256};

/// The columns that are chained, in a fixed order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChainedRow {
    pub id: i64,
    pub timestamp: String,
    pub secret_name: String,
    pub reason: String,
    pub action: String,
    pub scope: String,
    pub ttl_expires_at: String,
    pub operation: String,
    pub vault: String,
    pub config_path: String,
    pub request_id: String,
    pub requester_uid: Option<i64>,
    pub requester_pid: Option<i64>,
    pub requester_exe: String,
    pub client_name: String,
    pub device_id: String,
    pub detail: String,
}

pub fn hash(prev_hash: &str, row: &ChainedRow) -> String {
    let canonical = serde_json::json!([
        row.id,
        row.timestamp,
        row.secret_name,
        row.reason,
        row.action,
        row.scope,
        row.ttl_expires_at,
        row.operation,
        row.vault,
        row.config_path,
        row.request_id,
        row.requester_uid,
        row.requester_pid,
        row.requester_exe,
        row.client_name,
        row.device_id,
        row.detail,
    ]);
    let mut h = Sha256::new();
    h.update(prev_hash.as_bytes());
    h.update(b"\n");
    h.update(canonical.to_string().as_bytes());
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// The outcome of walking the chain.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub rows_checked: u64,
    /// The first problem found.
    pub problem: Option<String>,
}

/// Walks rows in id order against the recorded head (last hash and count).
pub fn verify(
    rows: impl Iterator<Item = (ChainedRow, String, String)>,
    head: Option<(String, u64)>,
) -> Verdict {
    let mut prev = String::new();
    let mut checked = 0u64;
    let mut last_id = 0i64;
    for (row, prev_hash, stored_hash) in rows {
        if prev_hash != prev {
            return Verdict {
                rows_checked: checked,
                problem: Some(format!(
                    "row {}: the chain is broken before it (a row was deleted or changed)",
                    row.id
                )),
            };
        }
        if hash(&prev_hash, &row) != stored_hash {
            return Verdict {
                rows_checked: checked,
                problem: Some(format!("row {}: its contents were changed", row.id)),
            };
        }
        prev = stored_hash;
        checked += 1;
        last_id = row.id;
    }
    let (head_hash, head_count) = head.unwrap_or_default();
    if head_hash != prev || head_count != checked {
        return Verdict {
            rows_checked: checked,
            problem: Some(format!(
                "the log ends at row {last_id} after {checked} rows, but {head_count} were written (rows at the end were deleted)"
            )),
        };
    }
    Verdict {
        rows_checked: checked,
        problem: None,
    }
}
