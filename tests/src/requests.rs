//! Requests as a test sees them: the one pending request, the audit rows,
//! and a call answered on an approver.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use serde_json::Value;

use crate::agent::{Agent, ToolOutcome};
use crate::approver::Approver;
use crate::home::Home;

/// Waits for exactly one pending request and returns its JSON.
pub async fn one_pending(home: &Home) -> Result<Value> {
    let start = Instant::now();
    loop {
        let p = home.cli_json(&["pending"])?;
        if let Some(arr) = p.as_array() {
            if arr.len() == 1 {
                return Ok(arr[0].clone());
            }
            if arr.len() > 1 {
                bail!("expected one pending request, found {}", arr.len());
            }
        }
        if start.elapsed() > Duration::from_secs(15) {
            bail!("no pending request appeared");
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The id of the one pending request (see [`one_pending`]).
pub async fn one_pending_id(home: &Home) -> Result<String> {
    Ok(one_pending(home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string())
}

/// Audit rows as (action, secret_name), oldest first.
pub fn audit_actions(home: &Home) -> Result<Vec<(String, String)>> {
    // The audit RPC flushes the writer first; ignored when no daemon runs.
    let _ = home.cli(&["audit", "--limit", "1"]);
    let conn = rusqlite::Connection::open(home.db())?;
    let mut stmt = conn.prepare("SELECT action, secret_name FROM audit ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(rows)
}

/// Calls `tool` in the background, waits for the one request it opens,
/// answers it on `approver` ("approve" or "deny"), and returns the tool's
/// result with the agent.
pub async fn call_and_decide(
    home: &Home,
    approver: &Approver,
    agent: Agent,
    tool: &str,
    args: Value,
    decision: &str,
) -> Result<(ToolOutcome, Agent)> {
    let call = agent.call_in_background(tool, args);
    let id = one_pending_id(home).await?;
    let (status, _) = approver.decide(&id, decision, None).await?;
    if status != 200 {
        bail!("the approval page answered {status}");
    }
    call.finish().await
}

/// Opens the "open" vault's window with one real approval.
pub async fn open_the_open_vault(home: &Home, approver: &Approver) -> Result<()> {
    let agent = Agent::start(home).await?;
    let args = serde_json::json!({"vault": "open", "name": "API_KEY", "reason": "open the vault"});
    let (r, agent) = call_and_decide(home, approver, agent, "get_secret", args, "approve").await?;
    if r.is_error {
        bail!("{r:?}");
    }
    agent.stop().await;
    Ok(())
}
