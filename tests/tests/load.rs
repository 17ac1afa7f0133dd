//! Load: 50 agent sessions × 2,000 auto-approved calls, zero errors and
//! exactly one audit row per call. Loopback only, bounded in size.

use std::time::Instant;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

const SESSIONS: usize = 50;
const CALLS: usize = 2_000;

#[tokio::test(flavor = "multi_thread")]
async fn fifty_sessions_two_thousand_calls_each() -> Result<()> {
    let home = Home::with_config(&config_with_open_vault())?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    // One approval opens the vault for every session.
    open_the_open_vault(&home, &approver).await?;
    let rows_before = audit_actions(&home)?.len();

    let mut agents = Vec::new();
    for _ in 0..SESSIONS {
        agents.push(Agent::start(&home).await?);
    }
    let started = Instant::now();
    let tasks: Vec<_> = agents
        .into_iter()
        .enumerate()
        .map(|(i, agent)| {
            tokio::spawn(async move {
                let mut errors = Vec::new();
                for n in 0..CALLS {
                    let name = if (i + n) % 2 == 0 { "API_KEY" } else { "OTHER" };
                    match agent
                        .call(
                            "get_secret",
                            json!({"vault": "open", "name": name, "reason": "load"}),
                        )
                        .await
                    {
                        Ok(r) if !r.is_error && r.texts.len() == 1 => {}
                        other => errors.push(format!("{other:?}")),
                    }
                }
                agent.stop().await;
                errors
            })
        })
        .collect();
    let mut errors = Vec::new();
    for t in tasks {
        errors.extend(t.await?);
    }
    let elapsed = started.elapsed();
    eprintln!(
        "load: {} calls in {:.1} s = {:.0} calls/s (debug build)",
        SESSIONS * CALLS,
        elapsed.as_secs_f64(),
        (SESSIONS * CALLS) as f64 / elapsed.as_secs_f64()
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        errors.first()
    );

    let rows = audit_actions(&home)?;
    let new_rows = &rows[rows_before..];
    assert_eq!(
        new_rows.len(),
        SESSIONS * CALLS,
        "exactly one audit row per call"
    );
    assert!(new_rows.iter().all(|(a, _)| a == "auto_approved"));
    assert_eq!(home.cli_json(&["audit", "verify"])?["ok"], json!(true));
    Ok(())
}
