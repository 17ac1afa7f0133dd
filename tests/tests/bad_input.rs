//! The agent as an adversary: oversized, malformed and hostile input gets a
//! clear error and changes nothing.

use std::io::{BufRead, BufReader, Write};
use std::process::Stdio;

use agent_vault_e2e::*;
use agent_vault_proto::pb;
use anyhow::Result;
use serde_json::json;

/// Nothing pending, no new audit rows, the files as they were.
struct Snapshot {
    rows: usize,
    files: Vec<Vec<u8>>,
}

fn snapshot(home: &Home) -> Result<Snapshot> {
    Ok(Snapshot {
        rows: audit_actions(home)?.len(),
        files: [".env.secrets", ".env.rw"]
            .iter()
            .map(|f| std::fs::read(home.project.join(f)).unwrap_or_default())
            .collect(),
    })
}

fn assert_unchanged(home: &Home, before: &Snapshot) -> Result<()> {
    assert_eq!(
        home.cli_json(&["pending"])?.as_array().map_or(1, Vec::len),
        0,
        "nothing pending"
    );
    let after = snapshot(home)?;
    assert_eq!(after.rows, before.rows, "no audit rows");
    assert_eq!(after.files, before.files, "files untouched");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_and_hostile_tool_input_is_refused_clearly() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    let before = snapshot(&home)?;

    let cases = [
        (
            "get_secret",
            json!({"vault": "dev", "name": "API_KEY", "reason": "x".repeat(5000)}),
            "the reason is 5000 bytes; the limit is 4096",
        ),
        (
            "get_secrets",
            json!({"vault": "dev", "names": (0..10_000).map(|i| format!("N{i}")).collect::<Vec<_>>(), "reason": "many"}),
            "10000 names in one call; the limit is 100",
        ),
        (
            "set_secret",
            json!({"vault": "rw", "name": "BIG", "value": "v".repeat(1 << 20), "reason": "big"}),
            "the value for BIG is 1048576 bytes; the limit is 65536",
        ),
        (
            "get_secret",
            json!({"vault": "dev", "name": "A\u{0}B", "reason": "nul"}),
            "a secret name contains U+0000",
        ),
        (
            "get_secret",
            json!({"vault": "dev", "name": "A\u{1b}[31m", "reason": "ansi"}),
            "a secret name contains U+001B",
        ),
        (
            "get_secret",
            json!({"vault": "dev", "name": "../../etc/passwd", "reason": "path"}),
            "invalid name",
        ),
        (
            "get_secret",
            json!({"vault": "dev", "name": "<script>alert(1)</script>", "reason": "html"}),
            "invalid name",
        ),
        (
            "get_secret",
            json!({"vault": "dev", "name": "API_KEY", "reason": "bell\u{7}"}),
            "the reason contains U+0007, a control or invisible character",
        ),
        (
            // A right-to-left override makes "deploy gpj.exe" read otherwise.
            "get_secret",
            json!({"vault": "dev", "name": "API_KEY", "reason": "open photo \u{202E}gpj.exe"}),
            "the reason contains U+202E, a control or invisible character",
        ),
        (
            "get_secret",
            json!({"vault": "dev", "name": "API_KEY", "reason": "harmless\u{200B}\u{E0069}\u{E0067}"}),
            "the reason contains U+200B",
        ),
        (
            "set_secret",
            json!({"vault": "rw", "name": "K", "value": "v", "reason": "isolate \u{2067}x\u{2069}"}),
            "the reason contains U+2067",
        ),
        (
            "get_secret",
            json!({"vault": "dev", "name": "API_KEY", "reason": "   "}),
            "a reason is required",
        ),
        (
            "get_secrets",
            json!({"vault": "dev", "names": [], "reason": "none"}),
            "no secret names were given",
        ),
        (
            "get_secrets",
            json!({"vault": "dev", "names": ["API_KEY", "API_KEY"], "reason": "dup"}),
            "given twice",
        ),
        (
            "set_secret",
            json!({"vault": "rw", "name": "K", "value": "a\u{0}b", "reason": "nul"}),
            "NUL",
        ),
        (
            "set_secret",
            json!({"vault": "<b>x</b>", "name": "K", "value": "v", "reason": "r"}),
            "unknown vault",
        ),
    ];
    for (tool, args, expected) in cases {
        let r = agent.call(tool, args).await?;
        assert!(r.is_error, "{tool} {expected}: {r:?}");
        assert!(
            r.text().contains(expected),
            "{tool}: expected {expected:?}, got {:?}",
            r.text()
        );
        assert!(
            r.text().len() < 600,
            "the error does not echo the input back: {} bytes",
            r.text().len()
        );
    }
    // Missing or mistyped arguments: an error result (the agent can
    // correct itself) naming the tool, the argument and what it takes, in
    // words rather than serde's.
    for (tool, args, expected) in [
        (
            "get_secret",
            json!({"vault": "dev", "reason": "r"}),
            "get_secret: \"name\" is missing: the name or ID of the secret. Its arguments: vault, name, reason.",
        ),
        (
            "get_secret",
            json!({"vault": 1, "name": [], "reason": {}}),
            "get_secret: \"name\": expected a string, found a list. Its arguments: vault, name, reason.",
        ),
        (
            "set_secrets",
            json!({"vault": "rw", "secrets": [{"name": "K"}], "reason": "r"}),
            "set_secrets: \"secrets[0]\": \"value\" is missing; add it. Its arguments: vault, secrets, reason.",
        ),
        (
            // A megabyte in the wrong place is not echoed back whole.
            "get_secrets",
            json!({"vault": "dev", "names": "x".repeat(1 << 20), "reason": "r"}),
            "get_secrets: \"names\": expected a list [ … ], found the text \"xxxx",
        ),
        (
            "run_with_secrets",
            json!({"vault": "dev", "secrets": [7], "command": ["true"]}),
            "run_with_secrets: \"secrets[0]\": expected a secret's name, or {\"name\": ..., \"env\": ...}. Its arguments: vault, secrets, command, cwd (optional)",
        ),
    ] {
        let r = agent.call(tool, args).await?;
        assert!(r.is_error, "{r:?}");
        assert!(r.text().starts_with(expected), "{:?}", r.text());
        assert!(!r.text().contains('`'), "{:?}", r.text());
        assert!(r.text().len() < 600, "{} bytes", r.text().len());
    }
    // An unknown tool is an error and the session goes on.
    match agent.call("delete_everything", json!({})).await {
        Err(_) => {}
        Ok(r) => assert!(
            r.is_error && r.text().contains("delete_everything"),
            "{r:?}"
        ),
    }
    let ok = agent.call("list_secrets", json!({})).await?;
    assert!(!ok.is_error);
    assert_unchanged(&home, &before)?;
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_json_rpc_gets_an_error_and_the_shim_goes_on() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let mut shim = home
        .command(&bin("agent-vault-mcp"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let mut stdin = shim.stdin.take().ok_or_else(|| anyhow::anyhow!("stdin"))?;
    let mut out = BufReader::new(
        shim.stdout
            .take()
            .ok_or_else(|| anyhow::anyhow!("stdout"))?,
    );
    let mut line = String::new();
    stdin.write_all(b"{this is not json\n")?;
    stdin.write_all(
        br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}
"#,
    )?;
    stdin.flush()?;
    // Read replies until the initialize result arrives.
    let mut saw_init = false;
    for _ in 0..4 {
        line.clear();
        if out.read_line(&mut line)? == 0 {
            break;
        }
        let v: serde_json::Value = serde_json::from_str(&line)?;
        if v["id"] == json!(1) && v["result"]["serverInfo"]["name"] == json!("agent-vault") {
            saw_init = true;
            break;
        }
    }
    assert!(saw_init, "the shim still answers after a malformed line");
    assert!(shim.try_wait()?.is_none(), "still running");
    drop(stdin);
    let status = poll(std::time::Duration::from_secs(2), || {
        shim.try_wait().ok().flatten()
    })?;
    assert!(status.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_messages_over_the_size_limit_are_refused() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let before = snapshot(&home)?;
    let channel = agent_vault_proto::client::channel(&home.socket()).await?;
    // A client without the shared client's limits, as a hostile peer would be.
    let mut raw = pb::agent_client::AgentClient::new(channel);
    let r = raw
        .access(pb::AccessRequest {
            session_id: "x".into(),
            vault: "dev".into(),
            reason: "r".repeat(5 << 20),
            names: vec!["API_KEY".into()],
            ..Default::default()
        })
        .await;
    let status = r
        .err()
        .ok_or_else(|| anyhow::anyhow!("a 5 MiB message was accepted"))?;
    assert_eq!(status.code(), tonic::Code::OutOfRange, "{status:?}");
    // The daemon is fine afterwards.
    assert!(home.cli_json(&["status"]).is_ok());
    assert_unchanged(&home, &before)?;
    Ok(())
}

/// An agent that opens session after session over the socket (and never
/// holds their watch open) cannot grow the daemon without bound: a uid
/// holds at most 256 sessions, and the refusal says so.
#[tokio::test(flavor = "multi_thread")]
async fn sessions_are_capped_per_uid() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let conn = agent_vault_proto::client::connect(&home.socket(), "test").await?;
    let mut agent = conn.agent;
    let open = pb::OpenSessionRequest {
        mcp_client_name: "flood".into(),
        ..Default::default()
    };
    for i in 0..256 {
        if let Err(s) = agent.open_session(open.clone()).await {
            anyhow::bail!("session {i}: {s}");
        }
    }
    let refused = agent.open_session(open.clone()).await;
    let status = refused
        .err()
        .ok_or_else(|| anyhow::anyhow!("the 257th session opened"))?;
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(
        status
            .message()
            .contains("already has 256 agent sessions open"),
        "{status}"
    );
    let rss = proc_status(daemon.pid() as u32, "VmRSS:").unwrap_or(0);
    assert!(rss < 64 * 1024, "{rss} KiB");
    Ok(())
}
