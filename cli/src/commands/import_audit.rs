//! `agent-vault import-audit PATH`: the prototype's audit history
//! (`agent-vault.db`, table `audit`) brought into agent-vaultd's chained
//! log. The file is read here, with this user's rights and read only; the
//! daemon checks every row, marks each as imported from this file, skips
//! rows imported before, and grants nothing from them.

use std::path::Path;

use agent_vault_proto::pb;
use anyhow::Context;
use rusqlite::{Connection, OpenFlags};
use serde_json::json;

use super::Admin;
use crate::output::Out;

/// The prototype's rows; the columns it did not have are left empty.
fn read(path: &Path) -> anyhow::Result<Vec<pb::ImportedRow>> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .with_context(|| format!("cannot open {} as a database", path.display()))?;
    let columns: Vec<String> = conn
        .prepare("SELECT name FROM pragma_table_info('audit')")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .with_context(|| format!("{} is not a database agent-vault can read", path.display()))?;
    if columns.is_empty() {
        anyhow::bail!(
            "{} has no audit table: it is not the prototype's agent-vault.db",
            path.display()
        );
    }
    let has = |c: &str| columns.iter().any(|x| x == c);
    for needed in ["timestamp", "secret_name", "action"] {
        if !has(needed) {
            anyhow::bail!(
                "{}: its audit table has no {needed} column: it is not the prototype's",
                path.display()
            );
        }
    }
    let column = |c: &str| {
        if has(c) {
            format!("COALESCE(CAST({c} AS TEXT), '')")
        } else {
            "''".into()
        }
    };
    let sql = format!(
        "SELECT rowid, {}, {}, {}, {}, {}, {}, {} FROM audit ORDER BY rowid",
        column("timestamp"),
        column("secret_name"),
        column("reason"),
        column("action"),
        column("scope"),
        column("ttl_expires_at"),
        column("vault"),
    );
    let mut stmt = conn.prepare(&sql)?;
    let rows = stmt.query_map([], |r| {
        Ok(pb::ImportedRow {
            source_id: r.get(0)?,
            timestamp: r.get(1)?,
            secret_name: r.get(2)?,
            reason: r.get(3)?,
            action: r.get(4)?,
            scope: r.get(5)?,
            ttl_expires_at: r.get(6)?,
            vault: r.get(7)?,
        })
    })?;
    rows.collect::<Result<_, _>>()
        .with_context(|| format!("cannot read the audit rows of {}", path.display()))
}

pub async fn run(admin: &mut Admin, out: Out, path: &Path) -> anyhow::Result<()> {
    let path =
        std::fs::canonicalize(path).with_context(|| format!("cannot find {}", path.display()))?;
    let rows = read(&path)?;
    let total = rows.len();
    let reply = admin
        .import_audit(pb::ImportAuditRequest {
            source: path.display().to_string(),
            rows,
        })
        .await?
        .into_inner();
    out.emit(
        json!({"source": path, "rows": total, "imported": reply.imported, "already": reply.already}),
        || {
            println!(
                "Imported {} of {total} rows from {} into the audit log (marked as imported; `agent-vault audit verify` checks them with the rest).",
                reply.imported,
                path.display()
            );
            if reply.already > 0 {
                println!("{} had been imported before and were skipped.", reply.already);
            }
        },
    );
    Ok(())
}
