//! `run_with_secrets`: the approver sees the exact command and directory,
//! the command gets the values in its environment, and the agent gets the
//! exit code and the output with every value and its encodings redacted.
//! Windows for a run cover only the same command; a time-out or a
//! cancellation stops everything the command started.

use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::{Context, Result, bail};
use base64::Engine;
use serde_json::{Value, json};

/// The output of this script carries API_KEY raw, in base64 and in
/// URL-safe base64, and DB_URL in hex and percent-encoded (as curl would
/// send it), then exits 3.
const LEAKY: &str = r#"echo "key=$API_KEY"
printf %s "$API_KEY" | base64
printf %s "$API_KEY" | base64 | tr '+/' '-_'
printf %s "$DATABASE" | od -An -tx1 | tr -d ' \n'; echo
printf 'db=%s\n' "$DATABASE" | sed 's|:|%3A|g; s|/|%2F|g; s|@|%40|g'
echo "to stderr: $API_KEY" >&2
exit 3"#;

fn assert_no_value(text: &str) {
    for v in SECRET_VALUES {
        let b64 = base64::engine::general_purpose::STANDARD.encode(v);
        let hex: String = v.bytes().map(|b| format!("{b:02x}")).collect();
        assert!(
            !text.contains(v) && !text.contains(&b64) && !text.contains(&hex),
            "a value or an encoding of it reached the agent"
        );
    }
}

fn audit_details(home: &Home) -> Result<Vec<(String, String, String)>> {
    let _ = home.cli(&["audit", "--limit", "1"]);
    let conn = rusqlite::Connection::open(home.db())?;
    let mut stmt = conn.prepare("SELECT action, operation, detail FROM audit ORDER BY id")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

#[tokio::test(flavor = "multi_thread")]
async fn the_approver_sees_the_command_and_the_agent_never_sees_a_value() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let agent = Agent::start(&home).await?;
    let args = json!({
        "vault": "shared",
        "secrets": ["API_KEY", {"name": "DB_URL", "env": "DATABASE"}],
        "command": ["sh", "-c", LEAKY],
        "reason": "run the migration"
    });
    let call = agent.call_in_background("run_with_secrets", args.clone());
    let pending = one_pending(&home).await?;
    let project = std::fs::canonicalize(&home.project)?;
    assert_eq!(pending["operation"], "RUN", "{pending}");
    assert_eq!(pending["names"], json!(["API_KEY", "DB_URL"]));
    assert_eq!(pending["cwd"], json!(project.display().to_string()));
    let shown = pending["command"].as_str().unwrap_or_default().to_string();
    assert!(
        shown.starts_with("sh -c $'echo \"key=$API_KEY\"\\nprintf"),
        "{shown}"
    );
    // The page shows the command and where it runs, beside the names.
    let id = pending["id"].as_str().unwrap_or_default().to_string();
    let (status, page) = approver.page(&format!("/approve/{id}")).await?;
    assert_eq!(status, 200);
    assert!(
        page.contains("RUN")
            && page.contains("printf %s")
            && page.contains(&project.display().to_string()),
        "the page lacks the command: {page}"
    );
    let (status, _) = approver.decide(&id, "approve", None).await?;
    assert_eq!(status, 200);
    let (r, agent) = call.finish_within(Duration::from_secs(30)).await?;

    let text = r.text();
    assert_no_value(&text);
    assert!(r.is_error, "exit code 3 is a failure: {text}");
    assert!(text.starts_with("exit code: 3"), "{text}");
    assert!(text.contains("key=[REDACTED:API_KEY]\n[REDACTED:API_KEY]\n[REDACTED:API_KEY]\n[REDACTED:DB_URL]\ndb=[REDACTED:DB_URL]\n"), "{text}");
    assert!(
        text.contains("--- stderr ---\nto stderr: [REDACTED:API_KEY]"),
        "{text}"
    );

    // The audit rows say it was a run, and of what.
    let rows = audit_details(&home)?;
    let approved: Vec<_> = rows.iter().filter(|(a, _, _)| a == "approved").collect();
    assert_eq!(approved.len(), 2, "{rows:?}");
    for (_, op, detail) in &approved {
        assert_eq!(op, "run");
        assert!(
            detail.starts_with("command: sh -c $'echo")
                && detail.ends_with(&format!("(in {})", project.display())),
            "{detail}"
        );
    }

    // The window ("shared" has 5 minutes) covers the same command again...
    let r = agent.call("run_with_secrets", args.clone()).await?;
    assert!(r.text().starts_with("exit code: 3"), "{r:?}");
    // ...but not another command, nor a read of the value.
    let other =
        json!({"vault": "shared", "secrets": ["API_KEY"], "command": ["env"], "reason": "look"});
    let call = agent.call_in_background("run_with_secrets", other);
    let pending = one_pending(&home).await?;
    assert_eq!(pending["command"], "env");
    approver
        .decide(pending["id"].as_str().unwrap_or_default(), "deny", None)
        .await?;
    let (r, agent) = call.finish_within(Duration::from_secs(30)).await?;
    assert!(r.is_error && r.text().contains("denied"), "{r:?}");
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "shared", "name": "API_KEY", "reason": "see it"}),
    );
    let pending = one_pending(&home).await?;
    assert_eq!(pending["operation"], "READ");
    approver
        .decide(pending["id"].as_str().unwrap_or_default(), "deny", None)
        .await?;
    call.finish_within(Duration::from_secs(30))
        .await?
        .1
        .stop()
        .await;
    Ok(())
}

/// Bad arguments are refused before anyone is asked.
#[tokio::test(flavor = "multi_thread")]
async fn bad_runs_are_refused_before_anyone_is_asked() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    for (args, says) in [
        (
            json!({"vault": "dev", "secrets": ["API_KEY"], "command": []}),
            "the command is empty",
        ),
        (
            json!({"vault": "dev", "secrets": [], "command": ["true"]}),
            "at least one secret",
        ),
        (
            json!({"vault": "dev", "secrets": [{"name": "API_KEY", "env": "1X"}], "command": ["true"]}),
            "not a valid environment variable name",
        ),
        (
            json!({"vault": "dev", "secrets": ["API_KEY"], "command": ["true"], "cwd": "/nonexistent/dir"}),
            "cannot be used",
        ),
        (
            json!({"vault": "dev", "secrets": ["API_KEY"], "command": ["true"], "timeoutSeconds": 0}),
            "timeoutSeconds",
        ),
        (
            json!({"vault": "dev", "secrets": ["NOPE"], "command": ["true"]}),
            "NOPE",
        ),
        (
            json!({"vault": "dev", "secrets": ["API_KEY"], "command": ["echo", "a\u{202e}b"]}),
            "U+202E",
        ),
    ] {
        let r = agent.call("run_with_secrets", args.clone()).await?;
        assert!(r.is_error && r.text().contains(says), "{args}: {r:?}");
    }
    assert_eq!(home.cli_json(&["pending"])?, json!([]));
    Ok(())
}

fn alive(pid: i32) -> bool {
    // A zombie (not yet reaped by whoever adopted it) is not running.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
}

async fn grandchild(pid_file: &std::path::Path) -> Result<i32> {
    for _ in 0..200 {
        if let Ok(s) = std::fs::read_to_string(pid_file)
            && let Ok(pid) = s.trim().parse()
        {
            return Ok(pid);
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    bail!("the command never wrote its grandchild's pid")
}

/// A command that starts a grandchild and sleeps: a time-out, and then a
/// cancellation by the client, stop both.
#[tokio::test(flavor = "multi_thread")]
async fn a_time_out_and_a_cancellation_stop_the_grandchildren_too() -> Result<()> {
    let home = Home::with_config(&config_with_open_vault())?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    open_the_open_vault(&home, &approver).await?;
    let agent = Agent::start(&home).await?;

    let pid_file = home.dir.path().join("grandchild.pid");
    let script = format!(
        "sleep 300 & echo $! > {}; echo started; sleep 300",
        pid_file.display()
    );
    let started = std::time::Instant::now();
    let r = agent
        .call_with_progress(
            "run_with_secrets",
            json!({"vault": "open", "secrets": ["API_KEY"], "command": ["sh", "-c", script], "timeoutSeconds": 5.5}),
        )
        .await?;
    assert!(
        r.is_error && r.text().starts_with("timed out after 5.5 s"),
        "{r:?}"
    );
    assert!(r.text().contains("--- stdout ---\nstarted\n"), "{r:?}");
    assert!(started.elapsed() < Duration::from_secs(15));
    // Past five seconds, progress told the client the command still ran.
    let progress = agent
        .client
        .progress
        .lock()
        .map(|p| p.clone())
        .unwrap_or_default();
    assert!(
        progress.iter().any(|m| m.starts_with("Running sh (5 s)")),
        "{progress:?}"
    );
    let pid = grandchild(&pid_file).await?;
    assert!(!alive(pid), "the grandchild outlived the time-out");

    // Cancelled by the client while it runs.
    std::fs::remove_file(&pid_file)?;
    let params = rmcp::model::CallToolRequestParams::new("run_with_secrets").with_arguments(
        json!({"vault": "open", "secrets": ["API_KEY"], "command": ["sh", "-c", script]})
            .as_object()
            .cloned()
            .context("args")?,
    );
    let handle = agent
        .service
        .peer()
        .send_cancellable_request(
            rmcp::model::ClientRequest::CallToolRequest(rmcp::model::Request::new(params)),
            rmcp::service::PeerRequestOptions::no_options(),
        )
        .await?;
    let pid = grandchild(&pid_file).await?;
    assert!(alive(pid));
    handle.cancel(Some("the user pressed Esc".into())).await?;
    let gone = poll(Duration::from_secs(10), || (!alive(pid)).then_some(()));
    assert!(gone.is_ok(), "the grandchild outlived the cancellation");
    agent.stop().await;
    Ok(())
}

/// The result through the official Python SDK carries no value either.
#[tokio::test(flavor = "multi_thread")]
async fn output_stays_redacted_through_the_official_python_sdk() -> Result<()> {
    let Some(python) = std::env::var_os("AGENT_VAULT_TEST_PYTHON") else {
        assert!(
            std::env::var("CI").is_err(),
            "AGENT_VAULT_TEST_PYTHON is required in CI"
        );
        return Ok(());
    };
    let home = Home::with_config(&config_with_open_vault())?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    open_the_open_vault(&home, &approver).await?;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/run_client.py");
    let out = home
        .command(std::path::Path::new(&python))
        .arg(&script)
        .arg(bin("agent-vault-mcp"))
        .arg(json!({"vault": "open", "secrets": ["API_KEY", {"name": "DB_URL", "env": "DATABASE"}], "command": ["sh", "-c", LEAKY]}).to_string())
        .output()?;
    assert!(
        out.status.success(),
        "the Python client failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let result: Value = serde_json::from_slice(&out.stdout)?;
    let text = result["text"].to_string();
    assert_no_value(&text);
    assert!(text.contains("key=[REDACTED:API_KEY]"), "{text}");
    // The schema every client reads is inline.
    let schema = result["schema"].to_string();
    assert!(
        !schema.contains("$ref") && !schema.contains("$defs"),
        "{schema}"
    );
    Ok(())
}
