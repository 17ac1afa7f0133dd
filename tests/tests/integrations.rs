//! Webhooks (the prototype's payload, retried from a durable outbox across a
//! restart) and the tunnel's fallback to localhost.

use std::time::Duration;

use agent_vault_e2e::receiver::Receiver;
use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_carry_the_prototype_payload_and_survive_a_restart() -> Result<()> {
    let server = Receiver::start_failing(0, 1).await?;
    let port = server.port;
    let config = TEST_CONFIG.replace(
        "\"port\": 0,",
        &format!(
            "\"port\": 0, \"webhooks\": [{{\"url\": \"http://127.0.0.1:{port}/all\", \"authorization\": \"env:HOOK_TOKEN\"}}, \
             {{\"url\": \"http://127.0.0.1:{port}/denied\", \"events\": [\"denied\"]}}],"
        ),
    );
    let home = Home::with_config(&config)?;
    let with_token = |c: &mut std::process::Command| {
        c.env("HOOK_TOKEN", "Bearer hook-token-1");
    };
    let mut daemon = Daemon::start(&home, with_token)?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secrets",
        json!({"vault": "dev", "names": ["API_KEY", "OTHER"], "reason": "hook test"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "approve", None).await?;
    let (r, agent) = call.finish().await?;
    assert!(!r.is_error);

    // The first delivery gets a 500; the retry (after 2 s) succeeds.
    let got = poll(Duration::from_secs(15), || {
        let e = server.posted();
        (!e.is_empty()).then_some(e)
    })?;
    let body = &got[0].json();
    assert_eq!(got[0].path, "/all");
    assert_eq!(got[0].header("authorization"), "Bearer hook-token-1");
    for (k, v) in [
        ("event", json!("secret_access")),
        ("vault", json!("dev")),
        ("secrets", json!(["API_KEY", "OTHER"])),
        ("reason", json!("hook test")),
        ("action", json!("approved")),
        ("scope", json!("secret")),
        ("ttlExpiresAt", Value::Null),
        ("requestId", json!(id)),
    ] {
        assert_eq!(body[k], v, "field {k} in {body}");
    }
    let ts = body["timestamp"].as_str().unwrap_or_default();
    assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
    );
    assert!(
        body["requester"]["mcpClient"]
            .as_str()
            .unwrap_or("")
            .contains("e2e-agent")
    );
    assert!(!body.to_string().contains("value-of-api-key"));

    // The endpoint goes away; a denial is queued; the daemon restarts.
    server.stop().await;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "OTHER", "reason": "deny me"}),
    );
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "deny", None).await?;
    let (_, agent) = call.finish().await?;
    agent.stop().await;
    assert!(daemon.terminate()?.success());
    let queued: i64 = rusqlite::Connection::open(home.db())?.query_row(
        "SELECT COUNT(*) FROM webhook_outbox",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(queued, 2, "both denial events wait in the outbox");

    let server = Receiver::start(port).await?;
    let _daemon = Daemon::start(&home, with_token)?;
    let got = poll(Duration::from_secs(20), || {
        let e = server.posted();
        (e.len() >= 2).then_some(e)
    })?;
    let mut denied: Vec<&str> = got.iter().map(|p| p.path.as_str()).collect();
    denied.sort();
    assert_eq!(denied, ["/all", "/denied"]);
    assert!(got.iter().all(|p| p.json()["action"] == json!("denied")));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn without_a_working_tunnel_the_daemon_serves_on_localhost() -> Result<()> {
    let home = Home::new()?;
    // This machine has no route to ngrok: the session fails fast and the
    // daemon falls back (an invalid token would fail the same way online).
    let _daemon = Daemon::start(&home, |c| {
        c.env("NGROK_AUTHTOKEN", "not-a-real-token");
    })?;
    let status = home.cli_json(&["status"])?;
    assert!(
        status["approvalUrl"]
            .as_str()
            .unwrap_or("")
            .starts_with("http://localhost:")
    );
    assert!(
        status["tunnel"]
            .as_str()
            .unwrap_or("")
            .starts_with("none: ngrok failed"),
        "{status}"
    );
    Ok(())
}
