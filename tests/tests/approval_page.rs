//! The approval page as a person meets it on a phone: a real headless
//! Chromium at a phone's viewport, in another time zone, paired as the
//! approving device. The question comes first and fits the screen, times
//! are the phone's own, "expires in" counts down, a request decided
//! elsewhere shows so by itself, a single window choice is no selector,
//! and a decision is answered with a redirect. A screenshot is kept in
//! target/e2e-logs/approval-phone.png.

use std::time::Duration;

use agent_vault_e2e::browser::Browser;
use agent_vault_e2e::*;
use anyhow::Result;
use base64::Engine;
use serde_json::json;
use tokio::task::block_in_place;

#[tokio::test(flavor = "multi_thread")]
async fn the_approval_page_on_a_phone() -> Result<()> {
    let config = TEST_CONFIG.replace(
        "\"dev\": { \"type\": \"env\", \"file\": \".env.secrets\", \"ttl\": 0 },",
        "\"dev\": { \"type\": \"env\", \"file\": \".env.secrets\", \"ttl\": 0, \"approval\": { \"allowTerminal\": true } },",
    );
    let home = Home::with_config(&config)?;
    let _daemon = home.start_daemon()?;
    let wait = Duration::from_secs(20);
    let link = Approver::link(&home)?;
    let (mut browser, tab) = block_in_place(|| -> Result<_> {
        let mut browser = Browser::launch()?;
        let tab = browser.tab()?;
        // A phone: 390 × 844 CSS pixels, touch, in Tokyo.
        browser.call(
            Some(&tab.session),
            "Emulation.setDeviceMetricsOverride",
            json!({"width": 390, "height": 844, "deviceScaleFactor": 2, "mobile": true}),
        )?;
        browser.call(
            Some(&tab.session),
            "Emulation.setTimezoneOverride",
            json!({"timezoneId": "Asia/Tokyo"}),
        )?;
        browser.claim_pairing(&tab, &link, "phone")?;
        browser.wait_for(
            &tab,
            "document.body.textContent.includes('Paired devices')",
            wait,
        )?;
        Ok((browser, tab))
    })?;

    // The agent asks; the phone opens the request.
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "API_KEY", "reason": "run the integration tests against staging"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let base = home.cli_json(&["status"])?["approvalUrl"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let seen = block_in_place(|| -> Result<serde_json::Value> {
        browser.open(&tab, &format!("{base}/approve/{id}"))?;
        browser.wait_for(&tab, "!!document.querySelector('time[title]')", wait)?;
        let first = browser.eval(
            &tab,
            "document.querySelector('[data-expires-in]').textContent",
        )?;
        std::thread::sleep(Duration::from_millis(2200));
        browser.eval(
            &tab,
            &format!(
                "(() => {{
                const r = e => e ? e.getBoundingClientRect() : null;
                return {{
                  h1: document.querySelector('h1').textContent,
                  h1Top: r(document.querySelector('h1')).top,
                  reasonTop: r(document.querySelector('.reason')).top,
                  approveBottom: r(document.querySelector('button.approve')).bottom,
                  height: innerHeight,
                  overflow: document.documentElement.scrollWidth - innerWidth,
                  selector: !!document.querySelector('select#window'),
                  window: document.querySelector('input[name=window]').value,
                  detailsOpen: document.querySelector('details').open,
                  asked: document.querySelector('time').textContent,
                  countdownBefore: {first},
                  countdownAfter: document.querySelector('[data-expires-in]').textContent,
                }};
            }})()"
            ),
        )
    })?;
    // The question first, the reason under it, both buttons on the first
    // screen, nothing wider than the phone.
    assert_eq!(seen["h1"], "e2e-agent wants API_KEY", "{seen}");
    let num = |k: &str| seen[k].as_f64().unwrap_or(f64::MAX);
    assert!(num("h1Top") < num("reasonTop"), "{seen}");
    assert!(num("approveBottom") <= num("height"), "{seen}");
    assert!(num("overflow") <= 0.0, "{seen}");
    assert_eq!(seen["detailsOpen"], false, "{seen}");
    // One window choice (ttl 0): no selector.
    assert_eq!(seen["selector"], false, "{seen}");
    assert_eq!(seen["window"], "0", "{seen}");
    // The phone's own time zone.
    let asked = seen["asked"].as_str().unwrap_or_default();
    assert!(asked.contains("GMT+9") && !asked.contains("UTC"), "{seen}");
    // It counts down.
    assert_ne!(seen["countdownBefore"], seen["countdownAfter"], "{seen}");

    let png = block_in_place(|| {
        browser.call(
            Some(&tab.session),
            "Page.captureScreenshot",
            json!({"format": "png"}),
        )
    })?;
    let png = base64::engine::general_purpose::STANDARD
        .decode(png["data"].as_str().unwrap_or_default())?;
    assert!(png.starts_with(b"\x89PNG"), "a screenshot");
    let logs = log_path("approval-phone");
    let shot = logs.with_file_name("approval-phone.png");
    std::fs::write(&shot, &png)?;

    // Approved from the terminal: the page says so by itself.
    let out = home.cli(&["approve", &id])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    block_in_place(|| {
        browser.wait_for(
            &tab,
            "document.querySelector('[data-state]') && document.querySelector('[data-state]').dataset.state !== 'pending' && document.body.textContent.includes('Approved.')",
            Duration::from_secs(10),
        )
    })?;
    let (r, agent) = call.finish().await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"]);

    agent.stop().await;

    // Denied on the phone, for another project's vault: the line above
    // the question says which project; the form's answer is the page at
    // its own address (a GET, so a reload sends nothing again).
    let shop = home.project.join("shop");
    std::fs::create_dir(&shop)?;
    std::fs::write(
        shop.join("agent-vault.config.json"),
        r#"{"vaults": {"dev": {"type": "env", "file": ".env.secrets"}}}"#,
    )?;
    std::fs::copy(home.project.join(".env.secrets"), shop.join(".env.secrets"))?;
    let agent = Agent::start_in(&home, &shop).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "OTHER", "reason": "again"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    block_in_place(|| -> Result<()> {
        browser.open(&tab, &format!("{base}/approve/{id}"))?;
        browser.wait_for(&tab, "!!document.querySelector('button.deny')", wait)?;
        let line = browser.eval(&tab, "document.querySelector('.card p.muted').textContent")?;
        assert_eq!(line, json!("READ from vault dev in …/project/shop"));
        browser.eval(&tab, "document.querySelector('button.deny').click()")?;
        browser.wait_for(&tab, "document.body.textContent.includes('Denied.')", wait)?;
        let nav = browser.eval(
            &tab,
            "[location.pathname, performance.getEntriesByType('navigation')[0].name.endsWith(location.pathname)]",
        )?;
        assert_eq!(nav, json!([format!("/approve/{id}"), true]));
        Ok(())
    })?;
    let (r, agent) = call.finish().await?;
    assert!(r.is_error, "{r:?}");
    agent.stop().await;
    Ok(())
}
