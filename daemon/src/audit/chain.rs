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
    pub requester_user: String,
    pub requester_agent: String,
    pub requester_cwd: String,
    pub requester_cmdline: String,
    pub client_name: String,
    pub device_id: String,
    pub detail: String,
}

/// Every chained column, length-prefixed so no two rows share an encoding.
pub fn hash(prev_hash: &str, row: &ChainedRow) -> String {
    fn text(h: &mut Sha256, s: &str) {
        h.update((s.len() as u64).to_le_bytes());
        h.update(s.as_bytes());
    }
    fn num(h: &mut Sha256, n: Option<i64>) {
        match n {
            Some(n) => {
                h.update([1]);
                h.update(n.to_le_bytes());
            }
            None => h.update([0]),
        }
    }
    let mut h = Sha256::new();
    text(&mut h, prev_hash);
    num(&mut h, Some(row.id));
    for s in [
        &row.timestamp,
        &row.secret_name,
        &row.reason,
        &row.action,
        &row.scope,
        &row.ttl_expires_at,
        &row.operation,
        &row.vault,
        &row.config_path,
        &row.request_id,
    ] {
        text(&mut h, s);
    }
    num(&mut h, row.requester_uid);
    num(&mut h, row.requester_pid);
    for s in [
        &row.requester_exe,
        &row.client_name,
        &row.device_id,
        &row.detail,
    ] {
        text(&mut h, s);
    }
    let digest = h.finalize();
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
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
