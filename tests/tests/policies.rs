//! Secret classification: each `policies` rule alone (`reveal: false`,
//! `autoApprove`, `hidden`, `maxTtl`, `approvers`, `require`), combined,
//! what `list_secrets` says of them, and a project config that may only
//! tighten them.

use std::time::Duration;

use agent_vault_e2e::receiver::Receiver;
use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};

const Q_SECRETS: &str = "CAPPED=capped-value-1a2b\nQUORUM=quorum-value-3c4d\nAUTO_USE=auto-use-5e6f\nAUTO_HIDDEN=auto-hidden-7a8b\nTOTP_X=totp-x-9c0d\nPLAIN=plain-value-1e2f\n";

/// The daemon's own config (so that every rule is honoured), with a
/// webhook for `auto_approved` events.
fn own_config(hook: &str) -> String {
    format!(
        r#"{{
  "vaults": {{
    "p": {{ "type": "env", "file": ".env.secrets", "ttl": 0, "policies": [
      {{"match": "API_KEY", "reveal": false}},
      {{"match": "OTHER", "autoApprove": true}},
      {{"match": "DB_*", "hidden": true}}
    ]}},
    "q": {{ "type": "env", "file": ".env.q", "ttl": 60, "ttlScope": "vault", "policies": [
      {{"match": "CAPPED", "maxTtl": 2}},
      {{"match": "QUORUM", "approvers": 2}},
      {{"match": "AUTO_USE", "autoApprove": true, "reveal": false}},
      {{"match": "AUTO_HIDDEN", "autoApprove": true, "hidden": true}},
      {{"match": "TOTP_*", "require": "totp"}}
    ]}}
  }},
  "port": 0,
  "approval": {{ "waitSeconds": 3 }},
  "webhooks": [{{ "url": "{hook}", "events": ["auto_approved"] }}]
}}"#
    )
}

struct Setup {
    home: Home,
    _daemon: Daemon,
    approver: Approver,
    hooks: Receiver,
}

async fn setup() -> Result<Setup> {
    let hooks = Receiver::start(0).await?;
    let home = Home::with_config(&own_config(&hooks.url("/events")))?;
    std::fs::write(home.project.join(".env.q"), Q_SECRETS)?;
    // The project's file is the daemon's own config.
    let config = home.config_path();
    let daemon = Daemon::start(&home, |c| {
        c.arg("--config").arg(&config);
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    Ok(Setup {
        home,
        _daemon: daemon,
        approver,
        hooks,
    })
}

fn get(vault: &str, name: &str) -> Value {
    json!({"vault": vault, "name": name, "reason": "policy test"})
}

fn run(vault: &str, names: &[&str], script: &str) -> Value {
    json!({"vault": vault, "secrets": names, "command": ["sh", "-c", script], "reason": "policy test"})
}

fn no_pending(home: &Home) -> Result<()> {
    assert_eq!(home.cli_json(&["pending"])?, json!([]), "nobody is asked");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn list_secrets_says_each_policy_and_leaves_hidden_names_out() -> Result<()> {
    let s = setup().await?;
    let agent = Agent::start(&s.home).await?;
    let listed = agent.call("list_secrets", json!({})).await?.text();
    for line in [
        "  - API_KEY (use-only: run_with_secrets)\n",
        "  - OTHER (auto-approved)\n",
        "  - CAPPED\n",
        "  - QUORUM (needs 2 approvers)\n",
        "  - AUTO_USE (use-only: run_with_secrets, auto-approved)\n",
        "  - TOTP_X (needs an authenticator code)\n",
        "  - PLAIN\n",
    ] {
        assert!(listed.contains(line), "{line:?} in {listed}");
    }
    assert!(
        !listed.contains("DB_URL") && !listed.contains("AUTO_HIDDEN"),
        "{listed}"
    );
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn use_only_secrets_are_refused_to_get_and_served_to_run() -> Result<()> {
    let s = setup().await?;
    let agent = Agent::start(&s.home).await?;
    // reveal: false alone: refused at once, pointing at run_with_secrets.
    for (tool, args) in [
        ("get_secret", get("p", "API_KEY")),
        (
            "get_secrets",
            json!({"vault": "p", "names": ["OTHER", "API_KEY"], "reason": "both"}),
        ),
        ("get_secret", get("q", "AUTO_USE")),
    ] {
        let r = agent.call(tool, args).await?;
        assert!(
            r.is_error && r.text().contains("use-only") && r.text().contains("run_with_secrets"),
            "{r:?}"
        );
        assert!(!r.text().contains("value-of-api-key-7f3a") && !r.text().contains("auto-use-5e6f"));
    }
    no_pending(&s.home)?;
    // ...and served to a command after approval.
    let call = agent.call_in_background(
        "run_with_secrets",
        run("p", &["API_KEY"], "echo \"got $API_KEY\""),
    );
    let id = one_pending_id(&s.home).await?;
    s.approver.decide(&id, "approve", None).await?;
    let (r, agent) = call.finish_within(Duration::from_secs(30)).await?;
    assert_eq!(
        r.text().lines().nth(2),
        Some("got [REDACTED:API_KEY]"),
        "{r:?}"
    );
    // With autoApprove too: a run goes through without asking.
    let r = agent
        .call(
            "run_with_secrets",
            run("q", &["AUTO_USE"], "echo \"got $AUTO_USE\""),
        )
        .await?;
    assert!(
        !r.is_error && r.text().contains("got [REDACTED:AUTO_USE]"),
        "{r:?}"
    );
    no_pending(&s.home)?;
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn auto_approved_secrets_are_released_audited_and_announced() -> Result<()> {
    let s = setup().await?;
    let agent = Agent::start(&s.home).await?;
    let r = agent.call("get_secret", get("p", "OTHER")).await?;
    assert!(
        r.texts == ["other-secret-91c2"],
        "the value came back at once"
    );
    no_pending(&s.home)?;
    let conn = rusqlite::Connection::open(s.home.db())?;
    let _ = s.home.cli(&["audit", "--limit", "1"]);
    let (action, detail): (String, String) = conn.query_row(
        "SELECT action, detail FROM audit WHERE secret_name = 'OTHER' ORDER BY id DESC LIMIT 1",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert_eq!(
        (action.as_str(), detail.as_str()),
        ("auto_approved", "released by an autoApprove policy")
    );
    let event = poll(Duration::from_secs(15), || {
        s.hooks.posted().into_iter().next()
    })?
    .json();
    assert_eq!(event["action"], "auto_approved");
    assert_eq!(event["secrets"], json!(["OTHER"]));
    // Mixed with a name that needs approval: only that one is asked.
    let call = agent.call_in_background(
        "get_secrets",
        json!({"vault": "q", "names": ["PLAIN", "CAPPED"], "reason": "two"}),
    );
    let pending = one_pending(&s.home).await?;
    assert_eq!(pending["names"], json!(["PLAIN", "CAPPED"]));
    s.approver
        .decide(pending["id"].as_str().unwrap_or_default(), "deny", None)
        .await?;
    call.finish_within(Duration::from_secs(30))
        .await?
        .1
        .stop()
        .await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn hidden_secrets_look_like_names_that_do_not_exist() -> Result<()> {
    let s = setup().await?;
    let agent = Agent::start(&s.home).await?;
    let unknown = |text: String, name: &str| text.replace(name, "NAME");
    let absent = agent.call("get_secret", get("p", "NO_SUCH")).await?;
    assert!(absent.is_error);
    for (vault, name) in [("p", "DB_URL"), ("q", "AUTO_HIDDEN")] {
        let r = agent.call("get_secret", get(vault, name)).await?;
        let want = absent
            .text()
            .replace("vault \"p\"", &format!("vault \"{vault}\""));
        assert_eq!(unknown(r.text(), name), unknown(want, "NO_SUCH"), "{name}");
        let r = agent
            .call("run_with_secrets", run(vault, &[name], "true"))
            .await?;
        assert!(
            r.is_error && r.text().contains(&format!("no secret named {name}")),
            "{r:?}"
        );
        let r = agent
            .call(
                "set_secret",
                json!({"vault": vault, "name": name, "value": "x", "reason": "write"}),
            )
            .await?;
        assert!(r.is_error, "{r:?}");
    }
    no_pending(&s.home)?;
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn max_ttl_quorum_and_factor_apply_per_name() -> Result<()> {
    let s = setup().await?;
    let agent = Agent::start(&s.home).await?;
    // maxTtl: the approver's 60 minutes become 2.
    let call = agent.call_in_background("get_secret", get("q", "CAPPED"));
    let id = one_pending_id(&s.home).await?;
    s.approver.decide(&id, "approve", Some("60")).await?;
    let (r, agent) = call.finish_within(Duration::from_secs(30)).await?;
    assert!(r.texts == ["capped-value-1a2b"]);
    let grants = s.home.cli_json(&["grants"])?;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_millis() as i64;
    let left = grants[0]["expiresAtMs"].as_i64().unwrap_or(0) - now;
    assert!(left > 0 && left <= 2 * 60_000, "{grants}");

    // A window for the whole vault (PLAIN's) does not cover a name under a
    // policy of its own.
    let call = agent.call_in_background("get_secret", get("q", "PLAIN"));
    let id = one_pending_id(&s.home).await?;
    s.approver.decide(&id, "approve", Some("60")).await?;
    let (r, agent) = call.finish_within(Duration::from_secs(30)).await?;
    assert!(r.texts == ["plain-value-1e2f"]);
    let r = agent.call("get_secret", get("q", "PLAIN")).await?;
    assert!(r.texts == ["plain-value-1e2f"], "the window covers PLAIN");

    // approvers: 2 for QUORUM alone: one device is not enough.
    let call = agent.call_in_background("get_secret", get("q", "QUORUM"));
    let id = one_pending_id(&s.home).await?;
    let (_, page) = s.approver.page(&format!("/approve/{id}")).await?;
    assert!(page.contains("0 of 2 devices"), "the page asks for two");
    s.approver.decide(&id, "approve", None).await?;
    let (r, agent) = call.finish_within(Duration::from_secs(30)).await?;
    assert!(r.text().starts_with("Still waiting"), "{r:?}");
    assert_eq!(one_pending_id(&s.home).await?, id);
    s.home.cli(&["revoke", "--all"])?;

    // require: totp for TOTP_*: the form without a code does not approve.
    let second = agent.call_in_background("get_secret", get("q", "TOTP_X"));
    let pending = poll(Duration::from_secs(15), || {
        let p = s.home.cli_json(&["pending"]).ok()?;
        p.as_array()?
            .iter()
            .find(|r| r["names"] == json!(["TOTP_X"]))
            .cloned()
    })?;
    let totp_id = pending["id"].as_str().unwrap_or_default().to_string();
    let (_, page) = s.approver.page(&format!("/approve/{totp_id}")).await?;
    assert!(
        page.contains("Code from your authenticator app"),
        "the page asks for a code"
    );
    let (status, _) = s.approver.decide(&totp_id, "approve", None).await?;
    assert_ne!(status, 200);
    let (r, agent) = second.finish_within(Duration::from_secs(30)).await?;
    assert!(r.text().starts_with("Still waiting"), "{r:?}");
    agent.stop().await;
    Ok(())
}

/// A project config (which an agent may write) cannot relax: no
/// `autoApprove`, and no fewer approvers than its vault has.
#[tokio::test(flavor = "multi_thread")]
async fn a_project_config_may_only_tighten_policies() -> Result<()> {
    let home = Home::with_config(
        r#"{"vaults": {"v": {"type": "env", "file": ".env.secrets", "policies": [{"match": "OTHER", "autoApprove": true}]}}}"#,
    )?;
    // The daemon's own config, apart from the project.
    let own = home.state.join("daemon.config.json");
    std::fs::write(
        &own,
        r#"{"vaults":{},"port":0,"approval":{"waitSeconds":3}}"#,
    )?;
    let daemon = Daemon::start(&home, |c| {
        c.arg("--config").arg(&own);
    })?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let r = agent.call("get_secret", get("v", "OTHER")).await?;
    assert!(
        r.is_error
            && r.text().contains("policies[0].autoApprove")
            && r.text().contains("only agent-vaultd's own config"),
        "{r:?}"
    );
    assert!(!r.text().contains("other-secret-91c2"));
    agent.stop().await;

    std::fs::write(
        home.config_path(),
        r#"{"vaults": {"v": {"type": "env", "file": ".env.secrets", "approval": {"approvers": 2},
            "policies": [{"match": "OTHER", "approvers": 1}, {"match": "API_KEY", "reveal": false}, {"match": "DB_URL", "hidden": true}]}}}"#,
    )?;
    let agent = Agent::start(&home).await?;
    let listed = agent.call("list_secrets", json!({})).await?.text();
    assert!(
        listed.contains("API_KEY (use-only: run_with_secrets, needs 2 approvers)")
            && !listed.contains("DB_URL"),
        "{listed}"
    );
    let call = agent.call_in_background("get_secret", get("v", "OTHER"));
    let id = one_pending_id(&home).await?;
    let (_, page) = approver.page(&format!("/approve/{id}")).await?;
    assert!(
        page.contains("0 of 2 devices"),
        "a project cannot lower the quorum"
    );
    approver.decide(&id, "deny", None).await?;
    call.finish_within(Duration::from_secs(30))
        .await?
        .1
        .stop()
        .await;
    Ok(())
}
