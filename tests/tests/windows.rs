//! Approval windows: shared across shims of one project, ended by revoke,
//! kept across a daemon restart.

use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

async fn approve_shared_api_key(home: &Home, approver: &Approver, agent: Agent) -> Result<Agent> {
    let args = json!({"vault": "shared", "name": "API_KEY", "reason": "deploy"});
    let (r, agent) = call_and_decide(home, approver, agent, "get_secret", args, "approve").await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    Ok(agent)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_window_is_shared_by_two_shims_and_revoke_ends_it() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let first = approve_shared_api_key(&home, &approver, Agent::start(&home).await?).await?;

    let grants = home.cli_json(&["grants"])?;
    assert_eq!(grants.as_array().map_or(0, Vec::len), 1, "{grants}");
    assert_eq!(grants[0]["name"], json!("API_KEY"));
    assert_eq!(grants[0]["scope"], json!("secret"));
    let left = grants[0]["expiresAtMs"].as_i64().unwrap_or(0)
        - std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis() as i64;
    assert!(
        (4 * 60_000..=5 * 60_000).contains(&left),
        "a 5-minute window, not until midnight: {left} ms"
    );

    // A second agent session in the same project: no approval needed.
    let second = Agent::start(&home).await?;
    let r = second
        .call(
            "get_secret",
            json!({"vault": "shared", "name": "API_KEY", "reason": "read again"}),
        )
        .await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    // get_secrets asks only for what the window does not cover.
    let call = second.call_in_background(
        "get_secrets",
        json!({"vault": "shared", "names": ["API_KEY", "OTHER"], "reason": "both"}),
    );
    let pending = one_pending(&home).await?;
    assert_eq!(pending["names"], json!(["OTHER"]));
    approver
        .decide(
            pending["id"].as_str().unwrap_or_default(),
            "approve",
            Some("0"),
        )
        .await?;
    let (r, second) = call.finish().await?;
    assert_eq!(
        r.texts,
        [
            "[API_KEY]\nvalue-of-api-key-7f3a",
            "[OTHER]\nother-secret-91c2"
        ],
        "{r:?}"
    );
    // "Just this once" opened no window for OTHER.
    assert_eq!(
        home.cli_json(&["grants"])?.as_array().map_or(0, Vec::len),
        1
    );

    // Revoke ends the window at once.
    assert_eq!(
        home.cli_json(&["revoke", "shared/API_KEY"])?["revoked"],
        json!(1)
    );
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        second.call(
            "get_secret",
            json!({"vault": "shared", "name": "API_KEY", "reason": "after revoke"}),
        ),
    )
    .await??;
    assert!(
        !r.is_error && r.text().starts_with("Still waiting for approval at"),
        "{r:?}"
    );
    let rows = audit_actions(&home)?;
    assert!(
        rows.contains(&("auto_approved".into(), "API_KEY".into())),
        "{rows:?}"
    );
    assert!(
        rows.contains(&("revoked".into(), "API_KEY".into())),
        "{rows:?}"
    );
    first.stop().await;
    second.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restart_keeps_windows() -> Result<()> {
    let home = Home::new()?;
    let mut daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = approve_shared_api_key(&home, &approver, Agent::start(&home).await?).await?;
    agent.stop().await;
    assert!(daemon.terminate()?.success());

    let daemon = home.start_daemon()?;
    assert_eq!(
        home.cli_json(&["grants"])?.as_array().map_or(0, Vec::len),
        1
    );
    let agent = Agent::start(&home).await?;
    let r = agent
        .call(
            "get_secret",
            json!({"vault": "shared", "name": "API_KEY", "reason": "after restart"}),
        )
        .await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"], "{r:?}");
    // The paired device survives the restart too.
    let approver = Approver {
        base: daemon.base_url.clone(),
        ..approver
    };
    let (status, _) = approver.page("/").await?;
    assert_eq!(status, 200);
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn vault_and_session_scopes_and_fresh_reads() -> Result<()> {
    let home = Home::with_config(&TEST_CONFIG.replace(
        "\"rw\":",
        "\"wide\": { \"type\": \"env\", \"file\": \".env.secrets\", \"ttl\": 5, \"ttlScope\": \"vault\" },\n    \
         \"mine\": { \"type\": \"env\", \"file\": \".env.secrets\", \"ttl\": 5, \"ttlScope\": \"session\" },\n    \"rw\":",
    ))?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let one = Agent::start(&home).await?;
    let two = Agent::start(&home).await?;

    let ask = |agent: Agent, vault: &'static str, name: &'static str| {
        agent.call_in_background(
            "get_secret",
            json!({"vault": vault, "name": name, "reason": "scope"}),
        )
    };
    let call = ask(one, "wide", "API_KEY");
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "approve", None).await?;
    let (_, one) = call.finish().await?;
    // Scope "vault": every secret of the vault, for every session.
    let r = two
        .call(
            "get_secret",
            json!({"vault": "wide", "name": "OTHER", "reason": "x"}),
        )
        .await?;
    assert_eq!(r.texts, ["other-secret-91c2"]);

    // A covered vault still refuses a name it does not hold.
    let r = two
        .call(
            "get_secret",
            json!({"vault": "wide", "name": "NOPE", "reason": "x"}),
        )
        .await?;
    assert!(
        r.is_error && r.text().contains("no secret named NOPE"),
        "{r:?}"
    );
    assert!(audit_actions(&home)?.contains(&("not_found".into(), "NOPE".into())));

    // The file is read on every request: an edit shows at once.
    let path = home.project.join(".env.secrets");
    let text = std::fs::read_to_string(&path)?.replace("other-secret-91c2", "edited-value");
    std::fs::write(&path, text)?;
    let r = one
        .call(
            "get_secret",
            json!({"vault": "wide", "name": "OTHER", "reason": "x"}),
        )
        .await?;
    assert_eq!(r.texts, ["edited-value"]);

    // Scope "session": only the session that asked.
    let call = ask(one, "mine", "API_KEY");
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "approve", None).await?;
    let (_, one) = call.finish().await?;
    let r = one
        .call(
            "get_secret",
            json!({"vault": "mine", "name": "API_KEY", "reason": "x"}),
        )
        .await?;
    assert_eq!(r.texts, ["value-of-api-key-7f3a"]);
    let r = tokio::time::timeout(
        Duration::from_secs(10),
        two.call(
            "get_secret",
            json!({"vault": "mine", "name": "API_KEY", "reason": "x"}),
        ),
    )
    .await??;
    assert!(
        r.text().starts_with("Still waiting"),
        "another session is not covered: {r:?}"
    );

    // The dashboard lists the windows, each with a working Revoke button.
    let (status, dash) = approver.page("/").await?;
    assert_eq!(status, 200);
    assert!(
        dash.contains("(whole vault)") && dash.contains("this session only"),
        "{dash}"
    );
    let before = home.cli_json(&["grants"])?.as_array().map_or(0, Vec::len);
    let at = dash.find("action=\"/grants/revoke\"").unwrap_or(0);
    let id = form_value(&dash[at..], "id").unwrap_or_default();
    let csrf = form_value(&dash[at..], "csrf").unwrap_or_default();
    let revoke = |csrf: String| {
        approver
            .http
            .post(format!("{}/grants/revoke", daemon.base_url))
            .header("cookie", &approver.cookie)
            .form(&[("id", id.clone()), ("csrf", csrf)])
            .send()
    };
    assert_eq!(revoke("forged".into()).await?.status(), 403);
    assert_eq!(
        home.cli_json(&["grants"])?.as_array().map_or(0, Vec::len),
        before
    );
    assert_eq!(revoke(csrf).await?.status(), 303);
    assert_eq!(
        home.cli_json(&["grants"])?.as_array().map_or(0, Vec::len),
        before - 1
    );
    one.stop().await;
    two.stop().await;
    Ok(())
}
