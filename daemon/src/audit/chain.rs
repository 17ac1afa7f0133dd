//! The hash chain: `hash = sha256(prev_hash || canonical row)`.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest, Sha256};

/// Where the chain ends: how many entries it has and the last one's hash
/// (empty for an empty log). This is what an anchor records.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainHead {
    pub seq: i64,
    pub hash: String,
}

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
    pub approval_digest: String,
}

/// Every chained column, length-prefixed so no two rows share an encoding.
pub fn hash(prev_hash: &str, row: &ChainedRow) -> String {
    digest(prev_hash, row, true)
}

/// The first format, which left out the requester's user, agent, working
/// directory and command line. Rows written by it still verify; a row
/// written now matches only [`hash`], so an edit of those columns shows.
pub fn hash_v1(prev_hash: &str, row: &ChainedRow) -> String {
    digest(prev_hash, row, false)
}

fn digest(prev_hash: &str, row: &ChainedRow, v2: bool) -> String {
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
    if v2 {
        h.update(b"v2");
        for s in [
            &row.requester_user,
            &row.requester_agent,
            &row.requester_cwd,
            &row.requester_cmdline,
            &row.approval_digest,
        ] {
            text(&mut h, s);
        }
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
    /// The hash of the entry at each position asked for (1 is the first
    /// entry), as far as the chain held.
    pub hashes_at: BTreeMap<u64, String>,
}

/// Walks rows in id order against the recorded head (last hash and count),
/// noting the hashes at `positions` (to compare with anchors).
pub fn verify(
    rows: impl Iterator<Item = (ChainedRow, String, String)>,
    head: Option<(String, u64)>,
    positions: &BTreeSet<u64>,
) -> Verdict {
    let mut prev = String::new();
    let mut checked = 0u64;
    let mut last_id = 0i64;
    let mut hashes_at = BTreeMap::new();
    for (row, prev_hash, stored_hash) in rows {
        if prev_hash != prev {
            return Verdict {
                rows_checked: checked,
                problem: Some(format!(
                    "row {}: the chain is broken before it (a row was deleted or changed)",
                    row.id
                )),
                hashes_at,
            };
        }
        if hash(&prev_hash, &row) != stored_hash && hash_v1(&prev_hash, &row) != stored_hash {
            return Verdict {
                rows_checked: checked,
                problem: Some(format!("row {}: its contents were changed", row.id)),
                hashes_at,
            };
        }
        prev = stored_hash;
        checked += 1;
        last_id = row.id;
        if positions.contains(&checked) {
            hashes_at.insert(checked, prev.clone());
        }
    }
    let (head_hash, head_count) = head.unwrap_or_default();
    if head_hash != prev || head_count != checked {
        return Verdict {
            rows_checked: checked,
            problem: Some(format!(
                "the log ends at row {last_id} after {checked} rows, but {head_count} were written (rows at the end were deleted)"
            )),
            hashes_at,
        };
    }
    Verdict {
        rows_checked: checked,
        problem: None,
        hashes_at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(row: &ChainedRow, stored: &str) -> Option<String> {
        verify(
            [(row.clone(), String::new(), stored.to_string())].into_iter(),
            Some((stored.to_string(), 1)),
            &BTreeSet::new(),
        )
        .problem
    }

    #[test]
    fn requester_columns_and_the_digest_are_chained_and_old_rows_still_verify() {
        let row = ChainedRow {
            id: 1,
            action: "approved".into(),
            requester_user: "alice".into(),
            approval_digest: "ab12".into(),
            ..Default::default()
        };
        let h = hash("", &row);
        assert_eq!(one(&row, &h), None);
        for edit in [
            |r: &mut ChainedRow| r.requester_user = "mallory".into(),
            |r: &mut ChainedRow| r.requester_cmdline = "x".into(),
            |r: &mut ChainedRow| r.approval_digest = "cd34".into(),
        ] {
            let mut edited = row.clone();
            edit(&mut edited);
            assert!(one(&edited, &h).is_some(), "{edited:?}");
        }
        // A row written before these columns were chained still verifies.
        assert_eq!(one(&row, &hash_v1("", &row)), None);
    }
}
