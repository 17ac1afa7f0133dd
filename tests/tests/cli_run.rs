//! `agent-vault run` and `agent-vault get` from a terminal or a script:
//! the same approval as an agent's, output masked unless asked not to,
//! stdin passed through, signals forwarded, exit codes passed on.

use std::io::Write;
use std::process::{Child, Output, Stdio};
use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::{Context, Result};
use serde_json::json;

fn cli(home: &Home, args: &[&str]) -> Result<Child> {
    Ok(home
        .command(&bin("agent-vault"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?)
}

/// Approves the one pending request and returns the CLI's output.
async fn approved(
    home: &Home,
    approver: &Approver,
    mut child: Child,
    stdin: &[u8],
) -> Result<(Output, serde_json::Value)> {
    if let Some(mut i) = child.stdin.take() {
        i.write_all(stdin)?;
    }
    let pending = one_pending(home).await?;
    approver
        .decide(pending["id"].as_str().unwrap_or_default(), "approve", None)
        .await?;
    Ok((child.wait_with_output()?, pending))
}

#[tokio::test(flavor = "multi_thread")]
async fn run_masks_passes_stdin_and_the_exit_code() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let script = "echo \"key=$API_KEY\"; printf %s \"$DATABASE\" | base64; cat; echo \"to stderr $API_KEY\" >&2; exit 7";
    let child = cli(
        &home,
        &[
            "run",
            "--vault",
            "dev",
            "--secret",
            "API_KEY",
            "--secret",
            "DB_URL=DATABASE",
            "--reason",
            "migrate",
            "--",
            "sh",
            "-c",
            script,
        ],
    )?;
    let (out, pending) = approved(&home, &approver, child, b"from stdin\n").await?;
    assert_eq!(pending["operation"], "RUN");
    assert_eq!(pending["names"], json!(["API_KEY", "DB_URL"]));
    assert!(
        pending["command"]
            .as_str()
            .unwrap_or_default()
            .starts_with("sh -c 'echo"),
        "{pending}"
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(7));
    assert_eq!(
        stdout,
        "key=[REDACTED:API_KEY]\n[REDACTED:DB_URL]\nfrom stdin\n"
    );
    assert!(
        stderr.contains("waiting for approval of API_KEY, DB_URL in vault \"dev\" at http"),
        "{stderr}"
    );
    assert!(stderr.contains("to stderr [REDACTED:API_KEY]"), "{stderr}");
    for v in SECRET_VALUES {
        assert!(
            !stdout.contains(v) && !stderr.contains(v),
            "a value was printed"
        );
    }

    // --no-masking: the values as they are.
    let child = cli(
        &home,
        &[
            "run",
            "--no-masking",
            "--vault",
            "dev",
            "--secret",
            "API_KEY",
            "--",
            "sh",
            "-c",
            "echo \"$API_KEY\"",
        ],
    )?;
    let (out, _) = approved(&home, &approver, child, b"").await?;
    assert!(out.status.success());
    assert!(out.stdout == b"value-of-api-key-7f3a\n", "the value itself");

    // A denial: nothing runs, the exit code says so.
    let mut child = cli(
        &home,
        &[
            "run", "--vault", "dev", "--secret", "API_KEY", "--", "touch", "ran",
        ],
    )?;
    drop(child.stdin.take());
    let id = one_pending_id(&home).await?;
    approver.decide(&id, "deny", None).await?;
    let out = child.wait_with_output()?;
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("denied"));
    assert!(!home.project.join("ran").exists());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn an_env_file_template_is_resolved_with_one_approval() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let tpl = home.project.join(".env.tpl");
    std::fs::write(
        &tpl,
        "# template\nKEY=vault://dev/API_KEY\nexport OTHER_ONE=\"vault://dev/OTHER\"\nLOG_LEVEL=debug\n",
    )?;
    let child = cli(
        &home,
        &[
            "run",
            "--env-file",
            ".env.tpl",
            "--",
            "sh",
            "-c",
            "echo \"$KEY $OTHER_ONE $LOG_LEVEL\"",
        ],
    )?;
    let (out, pending) = approved(&home, &approver, child, b"").await?;
    assert_eq!(pending["names"], json!(["API_KEY", "OTHER"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "[REDACTED:API_KEY] [REDACTED:OTHER] debug\n"
    );
    // Mistakes are named before anyone is asked.
    std::fs::write(&tpl, "KEY=vault://dev\n")?;
    let out = home.cli(&["run", "--env-file", ".env.tpl", "--", "true"])?;
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains(".env.tpl: line 1: expected vault://VAULT/NAME")
    );
    assert_eq!(home.cli_json(&["pending"])?, json!([]));
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn get_prints_the_value_for_scripts() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let child = cli(&home, &["get", "dev/API_KEY"])?;
    let (out, pending) = approved(&home, &approver, child, b"").await?;
    assert_eq!(pending["operation"], "READ");
    assert!(
        out.status.success() && out.stdout == b"value-of-api-key-7f3a\n",
        "the value and a newline"
    );
    let out = home.cli(&["get", "dev"])?;
    assert!(
        !out.status.success()
            && String::from_utf8_lossy(&out.stderr).contains("expected VAULT/NAME")
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn signals_reach_the_command() -> Result<()> {
    let home = Home::with_config(&config_with_open_vault())?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    open_the_open_vault(&home, &approver).await?;
    let script = "trap 'echo got-term; exit 42' TERM; echo ready; sleep 30 & wait";
    let mut child = cli(
        &home,
        &[
            "run", "--vault", "open", "--secret", "API_KEY", "--", "sh", "-c", script,
        ],
    )?;
    let mut stdout = child.stdout.take().context("stdout")?;
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first)?;
    assert_eq!(&first, b"ready\n");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )?;
    let status = poll(Duration::from_secs(10), || child.try_wait().ok().flatten())?;
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest)?;
    assert_eq!(rest, "got-term\n");
    assert_eq!(status.code(), Some(42));
    Ok(())
}
