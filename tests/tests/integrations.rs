//! Webhooks (the prototype's payload, retried from a durable outbox across a
//! restart) and the tunnel's fallback to localhost.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

#[derive(Default)]
struct Received {
    /// (path, authorization header, body)
    events: Vec<(String, String, Value)>,
    /// Answer 500 to this many requests first.
    fail: usize,
}

/// A minimal HTTP endpoint on loopback that records what it is sent.
async fn serve_hook(listener: TcpListener, rx: Arc<Mutex<Received>>) {
    while let Ok((mut sock, _)) = listener.accept().await {
        let rx = rx.clone();
        tokio::spawn(async move {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let (head_end, len) = loop {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    return;
                }
                buf.extend_from_slice(&chunk[..n]);
                if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                    let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                    let len = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    break (i + 4, len);
                }
            };
            while buf.len() < head_end + len {
                let Ok(n) = sock.read(&mut chunk).await else {
                    return;
                };
                if n == 0 {
                    break;
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let auth = head
                .lines()
                .find_map(|l| {
                    l.to_lowercase()
                        .starts_with("authorization:")
                        .then(|| l[14..].trim().to_string())
                })
                .unwrap_or_default();
            let body: Value = serde_json::from_slice(&buf[head_end..]).unwrap_or(Value::Null);
            let code = {
                let mut r = rx.lock().unwrap_or_else(|e| e.into_inner());
                if r.fail > 0 {
                    r.fail -= 1;
                    500
                } else {
                    r.events.push((path, auth, body));
                    200
                }
            };
            let _ = sock
                .write_all(
                    format!("HTTP/1.1 {code} X\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                        .as_bytes(),
                )
                .await;
        });
    }
}

fn events(rx: &Arc<Mutex<Received>>) -> Vec<(String, String, Value)> {
    rx.lock().map(|r| r.events.clone()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread")]
async fn webhooks_carry_the_prototype_payload_and_survive_a_restart() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let rx = Arc::new(Mutex::new(Received {
        fail: 1,
        ..Default::default()
    }));
    let server = tokio::spawn(serve_hook(listener, rx.clone()));
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
    let call = tokio::spawn(async move {
        agent
            .call(
                "get_secrets",
                json!({"vault": "dev", "names": ["API_KEY", "OTHER"], "reason": "hook test"}),
            )
            .await
            .map(|r| (r, agent))
    });
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "approve", None).await?;
    let (r, agent) = call.await??;
    assert!(!r.is_error);

    // The first delivery gets a 500; the retry (after 2 s) succeeds.
    let got = poll(Duration::from_secs(15), || {
        let e = events(&rx);
        (!e.is_empty()).then_some(e)
    })?;
    let (path, auth, body) = &got[0];
    assert_eq!(path, "/all");
    assert_eq!(auth, "Bearer hook-token-1");
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
    server.abort();
    let _ = server.await;
    let call = tokio::spawn(async move {
        agent
            .call(
                "get_secret",
                json!({"vault": "dev", "name": "OTHER", "reason": "deny me"}),
            )
            .await
            .map(|r| (r, agent))
    });
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "deny", None).await?;
    let (_, agent) = call.await??;
    agent.stop().await;
    assert!(daemon.terminate()?.success());
    let queued: i64 = rusqlite::Connection::open(home.db())?.query_row(
        "SELECT COUNT(*) FROM webhook_outbox",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(queued, 2, "both denial events wait in the outbox");

    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    let server = tokio::spawn(serve_hook(listener, rx.clone()));
    let _daemon = Daemon::start(&home, with_token)?;
    let got = poll(Duration::from_secs(20), || {
        let e = events(&rx);
        (e.len() >= 3).then_some(e)
    })?;
    let mut denied: Vec<&str> = got[1..].iter().map(|(p, _, _)| p.as_str()).collect();
    denied.sort();
    assert_eq!(denied, ["/all", "/denied"]);
    assert!(
        got[1..]
            .iter()
            .all(|(_, _, b)| b["action"] == json!("denied"))
    );
    server.abort();
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
