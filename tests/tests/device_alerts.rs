//! What the paired devices are told, with a real Chromium as one of them:
//! a new pairing is announced on every paired device (and on ntfy and the
//! webhooks that ask for `device_paired`), and a device that sees the audit
//! log go backwards (an older copy put back while the daemon was stopped)
//! says so on its next page. ntfy is the local stand-in of
//! tests/src/receiver.rs.

use std::path::PathBuf;
use std::time::Duration;

use agent_vault_e2e::browser::Browser;
use agent_vault_e2e::receiver::Receiver;
use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;
use tokio::task::block_in_place;

#[tokio::test(flavor = "multi_thread")]
async fn devices_are_told_of_new_pairings_and_of_a_log_that_went_backwards() -> Result<()> {
    let receiver = Receiver::start(0).await?;
    // A fixed port: the browser's memory is per origin, port included.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = TEST_CONFIG.replace(
        "\"port\": 0,",
        &format!(
            "\"port\": {port},
  \"audit\": {{\"anchor\": {{\"ntfy\": \"{ntfy}\"}}}},
  \"webhooks\": [{{\"url\": \"{hook}\", \"events\": [\"device_paired\"]}}],",
            ntfy = receiver.url("/alerts"),
            hook = receiver.url("/events"),
        ),
    );
    let home = Home::with_config(&config)?;
    let mut daemon = home.start_daemon()?;
    let base = daemon.base_url.clone();
    let wait = Duration::from_secs(20);

    // The person's first device (B), then this browser (A), which B approves.
    let b = Approver::pair(&home, &base).await?;
    let link = home.cli_json(&["pair"])?["url"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let (mut browser, tab) = block_in_place(|| -> Result<_> {
        let mut browser = Browser::launch()?;
        let tab = browser.tab()?;
        browser.claim_pairing(&tab, &link, "laptop")?;
        browser.wait_for(&tab, "location.pathname === '/pair-wait'", wait)?;
        Ok((browser, tab))
    })?;
    let (_, dash) = b.page("/").await?;
    let at = dash
        .find("action=\"/pairings/")
        .map(|i| i + "action=\"".len());
    let action = at
        .and_then(|i| dash[i..].split('"').next())
        .unwrap_or_default()
        .to_string();
    let csrf = form_value(&dash, "csrf").unwrap_or_default();
    let r = b
        .http
        .post(format!("{base}{action}"))
        .header("cookie", &b.cookie)
        .form(&[("decision", "approve"), ("csrf", csrf.as_str())])
        .send()
        .await?;
    assert!(r.status().is_success() || r.status().is_redirection());
    block_in_place(|| -> Result<()> {
        // The waiting page refreshes itself into the dashboard.
        browser.wait_for(
            &tab,
            "document.body.textContent.includes('Paired devices')",
            wait,
        )?;
        browser.wait_for(
            &tab,
            "localStorage.getItem('av-known-devices') !== null && localStorage.getItem('av-audit-head') !== null",
            wait,
        )?;
        Ok(())
    })?;
    let head_before = block_in_place(|| {
        browser.eval(
            &tab,
            "JSON.parse(localStorage.getItem('av-audit-head')).seq",
        )
    })?;
    let saved = home.dir.path().join("saved");
    std::fs::create_dir(&saved)?;

    // Stop here for a moment and keep a copy of the log as it is now.
    assert!(daemon.terminate()?.success());
    let files = |dir: &std::path::Path| -> Vec<PathBuf> {
        ["agent-vault.db", "agent-vault.db-wal", "agent-vault.db-shm"]
            .iter()
            .map(|f| dir.join(f))
            .collect()
    };
    for f in files(&home.state) {
        if f.exists() {
            std::fs::copy(&f, saved.join(f.file_name().unwrap_or_default()))?;
        }
    }
    daemon = home.start_daemon()?;
    assert_eq!(daemon.base_url, base);

    // Someone pairs a third device, approved on B. The browser was not
    // asked, and is told on its next page; ntfy and the webhook at once.
    let _intruder = Approver::pair_another(&home, &b, "intruder").await?;
    let alert = poll(wait, || {
        receiver
            .posted_to("/alerts")
            .into_iter()
            .find(|p| p.text().contains("intruder"))
    })?;
    assert_eq!(alert.header("priority"), "5");
    let labels = poll(wait, || {
        let events = receiver.posted_to("/events");
        (events.len() >= 3).then_some(events)
    })?
    .iter()
    .map(|p| {
        assert_eq!(p.json()["event"], json!("device_paired"));
        p.json()["device"]["label"].clone()
    })
    .collect::<Vec<_>>();
    assert_eq!(
        labels,
        [json!("test phone"), json!("laptop"), json!("intruder")]
    );
    block_in_place(|| -> Result<()> {
        browser.open(&tab, &format!("{base}/"))?;
        browser.wait_for(
            &tab,
            "(document.getElementById('av-new-devices') || {textContent: ''}).textContent.includes('intruder')",
            wait,
        )?;
        // Acknowledged, it is not shown again.
        browser.eval(
            &tab,
            "document.querySelector('#av-new-devices button').click()",
        )?;
        browser.open(&tab, &format!("{base}/"))?;
        std::thread::sleep(Duration::from_millis(500));
        let again = browser.eval(&tab, "document.getElementById('av-new-devices') === null")?;
        assert_eq!(again, json!(true), "{:?}", browser.console);
        Ok(())
    })?;
    let head_after = block_in_place(|| {
        browser.eval(
            &tab,
            "JSON.parse(localStorage.getItem('av-audit-head')).seq",
        )
    })?;
    assert!(
        head_after.as_i64() > head_before.as_i64(),
        "{head_before} {head_after}"
    );
    assert!(
        block_in_place(|| browser.eval(
            &tab,
            "document.getElementById('av-audit-backwards') === null"
        ))? == json!(true)
    );

    // The agent puts the older copy back (which also forgets the intruder).
    assert!(daemon.terminate()?.success());
    for f in files(&home.state) {
        let _ = std::fs::remove_file(&f);
        let from = saved.join(f.file_name().unwrap_or_default());
        if from.exists() {
            std::fs::copy(from, &f)?;
        }
    }
    let daemon = home.start_daemon()?;
    assert_eq!(daemon.base_url, base);
    block_in_place(|| -> Result<()> {
        browser.open(&tab, &format!("{base}/"))?;
        let text = browser.wait_for(
            &tab,
            "(document.getElementById('av-audit-backwards') || {textContent: ''}).textContent",
            wait,
        )?;
        let text = text.as_str().unwrap_or_default();
        assert!(text.contains("went backwards"), "{text}");
        assert!(text.contains(&format!("last saw {head_after}")), "{text}");
        Ok(())
    })?;
    Ok(())
}
