//! Faults: the daemon killed with SIGKILL under load, a writer killed in
//! the middle of an env-file write, and an audit log that cannot be written.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

const SESSIONS: usize = 10;

#[tokio::test(flavor = "multi_thread")]
async fn kill_9_under_load_then_the_shims_bring_the_daemon_back() -> Result<()> {
    let home = Home::with_config(&config_with_open_vault())?;
    // The daemon a shim starts finds this config in $HOME (port 0: any free port).
    std::fs::write(
        home.dir.path().join(".agent-vault.config.json"),
        r#"{"vaults":{},"port":0}"#,
    )?;
    let mut daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    open_the_open_vault(&home, &approver).await?;

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<std::sync::Mutex<Option<Instant>>> = Arc::default();
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        let agent = Agent::start(&home).await?;
        let stop = stop.clone();
        let killed_at = killed_at.clone();
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut first_ok_after_kill) =
                (0usize, Vec::new(), None::<Duration>);
            while !stop.load(Ordering::Relaxed) {
                match agent
                    .call(
                        "get_secret",
                        json!({"vault": "open", "name": "OTHER", "reason": "load"}),
                    )
                    .await
                {
                    Ok(r) if !r.is_error => {
                        ok += 1;
                        let killed = killed_at.lock().ok().and_then(|k| *k);
                        if let (Some(k), None) = (killed, first_ok_after_kill) {
                            first_ok_after_kill = Some(k.elapsed());
                        }
                    }
                    Ok(r) => errors.push(r.text()),
                    Err(e) => errors.push(format!("transport: {e}")),
                }
            }
            agent.stop().await;
            (ok, errors, first_ok_after_kill)
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let old_pid = daemon.pid();
    daemon.child.kill()?;
    let _ = daemon.child.wait();
    if let Ok(mut k) = killed_at.lock() {
        *k = Some(Instant::now());
    }
    tokio::time::sleep(Duration::from_millis(3000)).await;
    stop.store(true, Ordering::Relaxed);

    let mut total_ok = 0;
    for t in tasks {
        let (ok, errors, recovered) = t.await?;
        total_ok += ok;
        for e in &errors {
            assert!(
                e.contains("retryable") || e.contains("call again"),
                "a clear, retryable error: {e}"
            );
        }
        let recovered = recovered.ok_or_else(|| anyhow::anyhow!("a session never recovered"))?;
        assert!(
            recovered < Duration::from_secs(2),
            "reconnected after {recovered:?}"
        );
    }

    // A new daemon (started by a shim) serves now; the window survived.
    let status = home.cli_json(&["status"])?;
    let new_pid = status["pid"].as_i64().unwrap_or(0) as i32;
    assert!(new_pid > 0 && new_pid != old_pid);
    let grants = home.cli_json(&["grants"])?;
    assert_eq!(grants.as_array().map_or(0, Vec::len), 1, "{grants}");
    assert_eq!(home.cli_json(&["audit", "verify"])?["ok"], json!(true));
    let conn = rusqlite::Connection::open(home.db())?;
    let check: String = conn.query_row("PRAGMA integrity_check", [], |r| r.get(0))?;
    assert_eq!(check, "ok");
    // Every value that left the daemon has its audit row (rows are committed
    // before a value is released).
    let rows: i64 = conn.query_row(
        "SELECT COUNT(*) FROM audit WHERE action = 'auto_approved' AND secret_name = 'OTHER'",
        [],
        |r| r.get(0),
    )?;
    assert!(
        rows as usize >= total_ok,
        "{rows} rows for {total_ok} delivered values"
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(new_pid),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    poll(Duration::from_secs(10), || {
        (!home.socket().exists()).then_some(())
    })?;
    Ok(())
}

/// An approval whose audit rows cannot be committed (here a trigger makes
/// the insert fail, as a full disk would) does not take effect: the agent
/// gets a clear error and no value, and once the log works again the next
/// approval goes through with an unbroken chain.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_the_audit_log_cannot_record_releases_nothing() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    rusqlite::Connection::open(home.db())?.execute_batch(
        "CREATE TRIGGER full_disk BEFORE INSERT ON audit WHEN NEW.action = 'approved' \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )?;
    let args = json!({"vault": "dev", "name": "API_KEY", "reason": "deploy"});
    let agent = Agent::start(&home).await?;
    let (r, agent) = call_and_decide(
        &home,
        &approver,
        agent,
        "get_secret",
        args.clone(),
        "approve",
    )
    .await?;
    assert!(r.is_error, "{r:?}");
    assert!(r.text().contains("audit log could not be written"), "{r:?}");
    assert!(!r.text().contains("value-of-api-key-7f3a"));
    // The daemon's terminal is copied into its log by another thread:
    // give the line a moment to arrive.
    let logged = poll(Duration::from_secs(5), || {
        daemon
            .log()
            .contains("store batch failed twice")
            .then_some(())
    });
    assert!(logged.is_ok(), "{}", daemon.log());

    rusqlite::Connection::open(home.db())?.execute_batch("DROP TRIGGER full_disk")?;
    let (r, agent) =
        call_and_decide(&home, &approver, agent, "get_secret", args, "approve").await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    let verify = home.cli(&["audit", "verify"])?;
    assert!(
        verify.status.success(),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    let approved = audit_actions(&home)?
        .iter()
        .filter(|(a, _)| a == "approved")
        .count();
    assert_eq!(
        approved, 1,
        "only the approval that took effect is recorded"
    );
    agent.stop().await;
    Ok(())
}

/// A pairing the database cannot store (a trigger stands in for a full
/// disk) pairs nothing: the browser gets no credential and a clear page, no
/// device is listed, and once the database works a new link pairs.
#[tokio::test(flavor = "multi_thread")]
async fn a_pairing_the_database_cannot_store_pairs_nothing() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    rusqlite::Connection::open(home.db())?.execute_batch(
        "CREATE TRIGGER full_disk BEFORE INSERT ON devices \
         BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
    )?;
    let link = Approver::link(&home)?;
    let res = http()
        .post(&link)
        .form(&[("label", "phone"), ("proof", new_proof().as_str())])
        .send()
        .await?;
    assert_eq!(res.status(), 503);
    assert!(set_cookie(&res, "av_device").is_none());
    assert!(res.text().await?.contains("could not be stored"));
    assert_eq!(
        home.cli_json(&["devices"])?.as_array().map(Vec::len),
        Some(0)
    );

    rusqlite::Connection::open(home.db())?.execute_batch("DROP TRIGGER full_disk")?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let (status, _) = approver.page("/").await?;
    assert_eq!(status, 200);
    assert_eq!(
        home.cli_json(&["devices"])?.as_array().map(Vec::len),
        Some(1)
    );
    Ok(())
}
