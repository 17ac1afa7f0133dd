//! The shim against a second MCP implementation: the official Python SDK
//! (`mcp` on PyPI), spawning it over pipes as a Python agent does. The
//! Rust tests drive it with rmcp, the same SDK the shim is built on; this
//! one checks the wire format against code that shares nothing with it,
//! including a progress token carried in a call's `_meta`.
//!
//! The interpreter is `AGENT_VAULT_TEST_PYTHON` (.ci/run makes a venv with
//! `mcp` in it); without one the test is skipped, except in CI.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

fn python() -> Option<PathBuf> {
    let found = std::env::var_os("AGENT_VAULT_TEST_PYTHON").map(PathBuf::from);
    assert!(
        found.is_some() || std::env::var("CI").is_err(),
        "AGENT_VAULT_TEST_PYTHON (a python with the mcp package) is required in CI"
    );
    if found.is_none() {
        eprintln!("skipped: set AGENT_VAULT_TEST_PYTHON to a python with the `mcp` package");
    }
    found
}

#[tokio::test]
async fn the_official_python_sdk_lists_gets_with_progress_and_is_refused_bad_arguments()
-> Result<()> {
    let Some(python) = python() else {
        return Ok(());
    };
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("py/official_client.py");
    let mut cmd = tokio::process::Command::from(home.command(&python));
    cmd.arg(&script)
        .arg(bin("agent-vault-mcp"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    let mut child = cmd.spawn().context("starting the Python client")?;
    let stdout = child.stdout.take().context("no stdout")?;
    let mut lines = BufReader::new(stdout).lines();

    let first = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??;
    let first: Value = serde_json::from_str(&first.unwrap_or_default())?;
    if first["waiting"] != true {
        bail!("the client did not reach the get: {first}");
    }
    let id = one_pending_id(&home).await?;
    let (status, _) = approver.decide(&id, "approve", None).await?;
    assert_eq!(status, 200);

    let last = tokio::time::timeout(Duration::from_secs(60), lines.next_line()).await??;
    let out: Value = serde_json::from_str(&last.unwrap_or_default())?;
    let exit = tokio::time::timeout(Duration::from_secs(20), child.wait()).await??;
    assert!(exit.success(), "the Python client failed: {exit}");

    assert_eq!(out["server"], "agent-vault");
    assert_eq!(out["schemas_with_refs"], serde_json::json!([]), "{out}");
    assert_eq!(
        out["tools"],
        serde_json::json!([
            "get_secret",
            "get_secrets",
            "list_secrets",
            "run_with_secrets",
            "set_secret",
            "set_secrets"
        ])
    );
    assert_eq!(out["list"]["error"], false);
    let listed = out["list"]["text"].to_string();
    assert!(
        listed.contains("[shared]") && listed.contains("API_KEY"),
        "{listed}"
    );
    // Values are compared, never printed (the suite greps its output).
    let value = |v: &Value| v["text"][0].as_str().unwrap_or_default().to_string();
    assert_eq!(out["get"]["error"], false);
    assert!(
        value(&out["get"]) == "value-of-api-key-7f3a",
        "the approved get returned another text"
    );
    // The window the approval opened serves the second get at once.
    assert_eq!(out["again"]["error"], false);
    assert!(
        value(&out["again"]) == "value-of-api-key-7f3a",
        "the second get returned another text"
    );
    // The progress token in the call's _meta reached the handler: the
    // client was told where to approve while it waited.
    let progress = out["progress"].to_string();
    assert!(
        progress.contains("Waiting for approval") && progress.contains(&format!("/approve/{id}")),
        "{progress}"
    );
    // Missing arguments are an error the agent can read, not a crash.
    assert_eq!(out["bad"]["error"], true, "{}", out["bad"]);
    assert!(
        out["bad"]["text"].to_string().contains("name"),
        "{}",
        out["bad"]
    );
    Ok(())
}
