//! The approval path end to end: list, get with a paired-device approval,
//! windows shared across shims, revoke, deny, expiry and joining.

use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn list_then_get_with_paired_device_approval() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;

    let tools = agent.service.list_all_tools().await?;
    let mut names: Vec<String> = tools.iter().map(|t| t.name.to_string()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "get_secret",
            "get_secrets",
            "list_secrets",
            "run_with_secrets",
            "set_secret",
            "set_secrets"
        ]
    );
    assert!(
        tools.iter().all(|t| t.annotations.is_some()),
        "every tool is annotated"
    );

    let list = agent.call("list_secrets", json!({})).await?;
    assert!(!list.is_error);
    let text = list.text();
    assert!(
        text.contains("[dev]\n  - API_KEY\n  - DB_URL\n  - OTHER"),
        "{text}"
    );
    assert!(text.contains("[rw] (writable)"), "{text}");
    assert!(
        !text.contains("value-of-api-key"),
        "list never returns values"
    );

    let reason = "Run migration <script>alert(1)</script> & check \"users\"";
    let call = agent.call_with_progress_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "API_KEY", "reason": reason}),
    );
    let pending = one_pending(&home).await?;
    assert_eq!(pending["names"], json!(["API_KEY"]));
    assert_eq!(pending["reason"], json!(reason));
    assert!(
        pending["requester"]["mcpClient"]
            .as_str()
            .unwrap_or("")
            .contains("e2e-agent 1.2.3")
    );
    assert!(
        pending["requester"]["exe"]
            .as_str()
            .unwrap_or("")
            .ends_with("agent-vault-mcp")
    );
    // Who asks: read from the socket's peer credentials and /proc.
    let who = &pending["requester"];
    let me = std::env::current_exe()?;
    let me = me
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_default();
    assert_eq!(
        who["cwd"],
        json!(home.project.display().to_string()),
        "{who}"
    );
    assert!(
        who["cmdline"]
            .as_str()
            .unwrap_or("")
            .contains("agent-vault-mcp"),
        "{who}"
    );
    assert!(
        who["agent"]
            .as_str()
            .unwrap_or("")
            .starts_with(&format!("{me} (pid {})", std::process::id())),
        "the parent that spawned the shim: {who}"
    );
    let user = nix::unistd::User::from_uid(nix::unistd::geteuid())?
        .map(|u| u.name)
        .unwrap_or_default();
    assert_eq!(who["user"], json!(user));
    let id = pending["id"].as_str().unwrap_or_default().to_string();

    // The card shows the request, escapes the agent's words, and is locked down.
    let res = approver
        .http
        .get(format!("{}/approve/{id}", daemon.base_url))
        .header("cookie", &approver.cookie)
        .send()
        .await?;
    let csp = res.headers()["content-security-policy"]
        .to_str()?
        .to_string();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await?;
    assert!(
        html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "reason is escaped"
    );
    assert!(!html.contains("<script>"));
    assert!(html.contains("Its reason, in its own words"));
    // The question first: who wants what.
    assert!(html.contains("<h1>e2e-agent wants <code>"), "{html}");
    assert!(html.contains(">READ<") && html.contains("e2e-agent 1.2.3"));
    assert!(
        html.contains(&home.project.display().to_string()),
        "the requester's directory"
    );
    assert!(html.contains(">Approve</button>") && html.contains(">Deny</button>"));

    let (status, page) = approver.decide(&id, "approve", None).await?;
    assert_eq!(status, 200, "{page}");
    let (result, agent) = call.finish().await?;
    assert!(!result.is_error, "{result:?}");
    assert_eq!(result.texts, ["value-of-api-key-7f3a"]);
    let progress = agent
        .client
        .progress
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    assert!(
        progress
            .iter()
            .any(|m| m.contains(&format!("/approve/{id}"))),
        "progress carries the approval link: {progress:?}"
    );

    // A decided request cannot be decided again.
    let (status, _) = approver.page(&format!("/approve/{id}")).await?;
    assert_eq!(status, 200);
    let second = approver.decide(&id, "deny", None).await;
    assert!(second.is_err() || second.as_ref().map(|s| s.0).unwrap_or(0) == 409);

    // ttl 0: the next get asks again.
    let again = tokio::time::timeout(
        Duration::from_secs(10),
        agent.call(
            "get_secret",
            json!({"vault": "dev", "name": "API_KEY", "reason": "again"}),
        ),
    )
    .await??;
    assert!(
        !again.is_error && again.text().contains("Still waiting for approval at"),
        "{again:?}"
    );

    // Unknown names fail at once, before anyone is asked.
    let before = home.cli_json(&["pending"])?.as_array().map_or(0, Vec::len);
    let unknown = agent
        .call(
            "get_secret",
            json!({"vault": "dev", "name": "NOPE", "reason": "x"}),
        )
        .await?;
    assert!(
        unknown.is_error && unknown.text().contains("no secret named NOPE"),
        "{unknown:?}"
    );
    let bad_vault = agent
        .call(
            "get_secret",
            json!({"vault": "prod", "name": "API_KEY", "reason": "x"}),
        )
        .await?;
    assert!(bad_vault.is_error, "{bad_vault:?}");
    assert!(
        bad_vault
            .text()
            .contains("available vaults are: dev, rw, shared"),
        "{bad_vault:?}"
    );
    let bad_name = agent
        .call(
            "get_secret",
            json!({"vault": "dev", "name": "../etc/passwd", "reason": "x"}),
        )
        .await?;
    assert!(
        bad_name.is_error && bad_name.text().contains("invalid name"),
        "{bad_name:?}"
    );
    assert_eq!(
        home.cli_json(&["pending"])?.as_array().map_or(0, Vec::len),
        before
    );

    // Audit: the approval is recorded with the requester and the device, never the value.
    let rows = audit_actions(&home)?;
    assert!(
        rows.contains(&("approved".into(), "API_KEY".into())),
        "{rows:?}"
    );
    let (agent_col, cwd_col): (String, String) = rusqlite::Connection::open(home.db())?.query_row(
        "SELECT requester_agent, requester_cwd FROM audit WHERE action = 'approved'",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    assert!(agent_col.starts_with(&me) && cwd_col == home.project.display().to_string());
    let db = std::fs::read(home.db()).unwrap_or_default();
    let wal = std::fs::read(home.state.join("agent-vault.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(!String::from_utf8_lossy(&bytes).contains("value-of-api-key"));
    }
    let log = daemon.log();
    assert!(log.contains("approved"), "the log is real: {log}");
    for value in SECRET_VALUES {
        assert!(!log.contains(value), "{value} in the daemon's log");
    }
    let verify = home.cli_json(&["audit", "verify"])?;
    assert_eq!(verify["ok"], json!(true));
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn deny_expiry_and_joining_a_pending_request() -> Result<()> {
    let home = Home::with_config(
        // Expiry (4.8 s, swept each second) falls after the first call's
        // wait (4 s) and well before the second call's (8 s).
        &TEST_CONFIG
            .replace("\"expireMinutes\": 10", "\"expireMinutes\": 0.08")
            .replace("\"waitSeconds\": 3", "\"waitSeconds\": 4"),
    )?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let args = json!({"vault": "dev", "name": "OTHER", "reason": "join me"});

    // waitSeconds is 4: the first call returns "still waiting", the second joins.
    let first = agent.call("get_secret", args.clone()).await?;
    assert!(
        !first.is_error && first.text().starts_with("Still waiting for approval at"),
        "{first:?}"
    );
    let link = first
        .text()
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_default()
        .trim_end_matches(';')
        .to_string();
    let pending = one_pending(&home).await?;
    assert!(
        link.ends_with(pending["id"].as_str().unwrap_or("?")),
        "{link}"
    );
    // ... and the joined request expires at 4.8 s (expireMinutes 0.08).
    let second = agent.call("get_secret", args.clone()).await?;
    assert!(
        second.is_error && second.text().contains("expired"),
        "{second:?}"
    );
    assert_eq!(
        home.cli_json(&["pending"])?.as_array().map_or(1, Vec::len),
        0
    );
    let rows = audit_actions(&home)?;
    assert!(
        rows.contains(&("expired".into(), "OTHER".into())),
        "{rows:?}"
    );
    // An expired request cannot be approved afterwards.
    let (status, _) = approver
        .page(&format!(
            "/approve/{}",
            pending["id"].as_str().unwrap_or("")
        ))
        .await?;
    assert_eq!(status, 200);

    // Deny.
    let call = agent.call_in_background("get_secret", args);
    let id = one_pending(&home).await?["id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    approver.decide(&id, "deny", None).await?;
    let (r, agent) = call.finish().await?;
    assert!(
        r.is_error && r.text().contains("The user denied read access to OTHER"),
        "{r:?}"
    );
    assert!(audit_actions(&home)?.contains(&("denied".into(), "OTHER".into())));
    agent.stop().await;
    Ok(())
}
