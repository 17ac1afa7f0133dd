//! The daemon's promises to the operating system: modes, one daemon per
//! socket, peer-uid refusal, SIGTERM, auto-start by the shim, and the
//! tamper-evident audit log.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

#[tokio::test(flavor = "multi_thread")]
async fn modes_single_instance_and_unsafe_directories() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    assert_eq!(std::fs::metadata(&home.state)?.mode() & 0o777, 0o700);
    assert_eq!(std::fs::metadata(home.socket())?.mode() & 0o777, 0o600);
    assert_eq!(std::fs::metadata(home.db())?.mode() & 0o777, 0o600);
    // SQLite's side files hold recent rows too: they are private as well.
    for side in ["-wal", "-shm"] {
        let path = format!("{}{side}", home.db().display());
        assert_eq!(std::fs::metadata(&path)?.mode() & 0o777, 0o600, "{path}");
    }

    // A second daemon on the same socket refuses to start and leaves the first alone.
    let out = home.command(&bin("agent-vaultd")).output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already running"));
    let status = home.cli_json(&["status"])?;
    assert!(status["pid"].as_u64() == Some(daemon.pid() as u64));
    let me = nix::unistd::geteuid().as_raw();
    assert_eq!(
        status["agentUids"],
        json!([me]),
        "agents default to the daemon's user"
    );
    assert_eq!(status["adminUids"], json!([me]));
    let text = String::from_utf8_lossy(&home.cli(&["status"])?.stdout).to_string();
    assert!(
        text.contains("Agents and admins are the same user"),
        "{text}"
    );

    // A state directory open to others is refused, with the path and the fix.
    let open = Home::new()?;
    std::fs::set_permissions(&open.state, std::fs::Permissions::from_mode(0o755))?;
    let out = open.command(&bin("agent-vaultd")).output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&open.state.display().to_string()) && err.contains("chmod 700"),
        "{err}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_cli_says_clearly_when_no_daemon_runs() -> Result<()> {
    let home = Home::new()?;
    let out = home.cli(&["status"])?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("agent-vaultd is not running"), "{err}");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_peer_with_another_uid_is_refused_and_audited() -> Result<()> {
    // The daemon runs as "nobody"; the tests run as root, so the CLI is a
    // peer whose uid is not allowed. Root can reach the socket, so this is
    // the peer-credential check at work, not the directory mode.
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run the daemon as another uid");
        return Ok(());
    }
    let home = Home::new()?;
    let nobody = nix::unistd::Uid::from_raw(65534);
    let nogroup = nix::unistd::Gid::from_raw(65534);
    std::fs::set_permissions(home.dir.path(), std::fs::Permissions::from_mode(0o755))?;
    nix::unistd::chown(&home.state, Some(nobody), Some(nogroup))?;
    let log = log_path("daemon-nobody");
    let mut cmd = home.command(&bin_for_other_users(&home, "agent-vaultd")?);
    cmd.uid(65534)
        .gid(65534)
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let mut daemon = Daemon {
        child: cmd.spawn()?,
        log: log.clone(),
        base_url: String::new(),
    };
    poll(Duration::from_secs(20), || {
        home.socket().exists().then_some(())
    })?;
    let out = poll(Duration::from_secs(10), || {
        let out = home.cli(&["status"]).ok()?;
        String::from_utf8_lossy(&out.stderr)
            .contains("may not use")
            .then_some(out)
    })?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("uid 0 may not use agent-vaultd's"), "{err}");
    let refused = poll(Duration::from_secs(10), || {
        let rows = audit_actions(&home).ok()?;
        rows.iter().any(|(a, _)| a == "refused").then_some(())
    });
    assert!(refused.is_ok(), "the refusal is audited");
    assert!(std::fs::read_to_string(&log)?.contains("refused a peer whose uid is not allowed"));
    // The daemon is not dumpable: its /proc files belong to root, not to
    // the user it runs as, so that user's other processes (an agent) can
    // neither read its memory nor attach a debugger.
    let environ = std::fs::metadata(format!("/proc/{}/environ", daemon.child.id()))?;
    assert_eq!(environ.uid(), 0, "non-dumpable");
    let limits = std::fs::read_to_string(format!("/proc/{}/limits", daemon.child.id()))?;
    let core = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap_or_default();
    assert!(
        core.split_whitespace().nth(4) == Some("0"),
        "no core files: {core}"
    );
    assert!(daemon.terminate()?.success());
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_cancels_pending_requests_and_removes_the_socket() -> Result<()> {
    let home = Home::new()?;
    let mut daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    let call = agent.call_in_background(
        "get_secret",
        json!({"vault": "dev", "name": "API_KEY", "reason": "before shutdown"}),
    );
    one_pending(&home).await?;
    let status = daemon.terminate()?;
    assert!(status.success(), "exit 0 on SIGTERM, got {status:?}");
    assert!(!home.socket().exists(), "the socket is removed");
    let (r, agent) = call.finish().await?;
    assert!(r.is_error, "{r:?}");
    assert!(
        r.text().contains("cancelled") || r.text().contains("shutting down"),
        "{r:?}"
    );
    let rows = audit_actions(&home)?;
    assert!(
        rows.contains(&("cancelled".into(), "API_KEY".into())),
        "flushed before exit: {rows:?}"
    );
    agent.stop().await;
    Ok(())
}

/// Sends SIGTERM to a process when dropped (it may have exited already).
struct StopOnDrop(i32);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.0),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shim_starts_a_daemon_when_none_runs() -> Result<()> {
    let home = Home::new()?;
    // The auto-started daemon finds this config in $HOME (port 0: any free port).
    std::fs::write(
        home.dir.path().join(".agent-vault.config.json"),
        r#"{"vaults":{"home":{"type":"env","file":"home.env"}},"port":0,
            "webhooks":[{"url":"http://127.0.0.1:9/x","authorization":"env:HOOK_AUTH"}]}"#,
    )?;
    // The agent's environment names its project as the config and holds
    // a token of its own: the daemon it starts gets neither, only what its
    // own config references.
    let mut cmd = tokio::process::Command::from(home.command(&bin("agent-vault-mcp")));
    cmd.env("AGENT_VAULT_CONFIG", home.config_path())
        .env("AGENTS_OWN_TOKEN", "agent-token")
        .env("HOOK_AUTH", "Bearer hook");
    let agent = Agent::spawn(cmd).await?;
    let list = agent.call("list_secrets", json!({})).await?;
    assert!(
        !list.is_error && list.text().contains("API_KEY"),
        "{list:?}"
    );
    let status = home.cli_json(&["status"])?;
    let pid = status["pid"].as_i64().unwrap_or(0) as i32;
    assert!(pid > 0);
    // Detached, so no `Daemon` handle stops it: this does, however the
    // test ends (a failed assertion included).
    let stop = StopOnDrop(pid);
    let environ = std::fs::read(format!("/proc/{pid}/environ"))?;
    let environ: Vec<String> = environ
        .split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .collect();
    assert!(
        environ.iter().any(|v| v == "HOOK_AUTH=Bearer hook"),
        "{environ:?}"
    );
    assert!(
        !environ
            .iter()
            .any(|v| v.starts_with("AGENT_VAULT_CONFIG=") || v.starts_with("AGENTS_OWN_TOKEN=")),
        "{environ:?}"
    );
    let own = status["vaults"].as_array().cloned().unwrap_or_default();
    assert!(
        own.iter().any(|v| v["name"] == "home"
            && v["config"]
                .as_str()
                .is_some_and(|c| c.ends_with(".agent-vault.config.json"))),
        "the daemon's own config is its own, not the agent's project: {status}"
    );
    agent.stop().await;
    // Detached: it outlives the shim.
    assert_eq!(
        home.cli_json(&["status"])?["pid"].as_i64(),
        Some(pid as i64)
    );
    // Its log is the state directory's, which `agent-vault logs` shows.
    let logs = home.cli(&["logs", "-n", "50"])?;
    let shown = String::from_utf8_lossy(&logs.stdout);
    assert!(
        logs.status.success() && shown.contains("ready: socket"),
        "{shown}"
    );
    let two = home.cli(&["logs", "-n", "2"])?;
    assert_eq!(String::from_utf8_lossy(&two.stdout).lines().count(), 2);
    // `agent-vault stop` ends it, and returns once it has ended.
    let out = home.cli(&["stop"])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("agent-vaultd (pid {pid}) stopped.")),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(!home.socket().exists());
    let log = std::fs::read_to_string(home.state.join("agent-vaultd.log"))?;
    assert!(log.contains("asked to stop (agent-vault stop)"), "{log}");
    let again = home.cli(&["stop"])?;
    assert!(again.status.success());
    assert!(String::from_utf8_lossy(&again.stdout).contains("agent-vaultd is not running"));
    drop(stop);
    Ok(())
}

#[test]
fn logs_says_where_the_log_is_when_there_is_no_file() -> Result<()> {
    let home = Home::new()?;
    let out = home.cli(&["logs"])?;
    assert_eq!(out.status.code(), Some(1));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("agent-vaultd.log: agent-vaultd writes it only when an agent started it")
            && said.contains("journalctl --user -u agent-vault"),
        "{said}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn audit_verify_detects_a_deleted_row() -> Result<()> {
    let home = Home::new()?;
    let daemon = home.start_daemon()?;
    let approver = Approver::pair(&home, &daemon.base_url).await?;
    let mut agent = Agent::start(&home).await?;
    for i in 0..3 {
        let call = agent.call_in_background(
            "get_secret",
            json!({"vault": "dev", "name": "OTHER", "reason": format!("pass {i}")}),
        );
        let id = one_pending(&home).await?["id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        approver
            .decide(&id, if i == 1 { "deny" } else { "approve" }, None)
            .await?;
        let (_, a) = call.finish().await?;
        agent = a;
    }
    let ok = home.cli_json(&["audit", "verify"])?;
    assert_eq!(ok["ok"], json!(true), "{ok}");
    let rows = ok["rowsChecked"].as_u64().unwrap_or(0);
    assert!(rows >= 4, "pairing and three decisions: {rows}");

    // The prototype's query still works.
    let conn = rusqlite::Connection::open(home.db())?;
    let n: i64 = conn.query_row(
        "SELECT COUNT(*) FROM (SELECT timestamp, secret_name, reason, action, scope, ttl_expires_at FROM audit ORDER BY timestamp DESC LIMIT 20)",
        [],
        |r| r.get(0),
    )?;
    assert!(n >= 4);
    let denied: String = conn.query_row(
        "SELECT action FROM audit WHERE reason = 'pass 1'",
        [],
        |r| r.get(0),
    )?;
    assert_eq!(denied, "denied");
    conn.execute("DELETE FROM audit WHERE reason = 'pass 1'", [])?;
    drop(conn);

    let out = home.cli(&["audit", "verify"])?;
    assert!(!out.status.success(), "verify fails after a deletion");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("TAMPERED") && text.contains("chain is broken"),
        "{text}"
    );
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shim_exits_when_its_client_goes_away() -> Result<()> {
    let home = Home::new()?;
    let mut shim = home
        .command(&bin("agent-vault-mcp"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    drop(shim.stdin.take());
    let status = poll(Duration::from_secs(2), || shim.try_wait().ok().flatten());
    if status.is_err() {
        let _ = shim.kill();
    }
    assert!(status?.success(), "exits cleanly when stdin closes");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_error_reaches_the_agent_with_file_and_field() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    // The agent works in another project whose config is broken.
    let other = home.dir.path().join("other");
    std::fs::create_dir(&other)?;
    let config = other.join("agent-vault.config.json");
    std::fs::write(
        &config,
        r#"{"vaults":{"x":{"type":"env","file":"e","ttlScope":"forever"}}}"#,
    )?;
    let agent = Agent::start_in(&home, &other).await?;
    let r = agent.call("list_secrets", json!({})).await?;
    assert!(r.is_error, "{r:?}");
    let text = r.text();
    assert!(
        text.contains(&config.display().to_string()) && text.contains("vaults.x.ttlScope"),
        "{text}"
    );
    agent.stop().await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stale_socket_is_replaced_after_kill_9_and_the_socket_can_be_moved() -> Result<()> {
    let home = Home::new()?;
    // AGENT_VAULT_SOCKET moves the socket, for all three binaries.
    let run = home.dir.path().join("run");
    std::fs::create_dir(&run)?;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o700))?;
    let socket = run.join("custom.sock");
    let spawn = || {
        home.command(&bin("agent-vaultd"))
            .env("AGENT_VAULT_SOCKET", &socket)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
    };
    let status = || {
        let out = home
            .command(&bin("agent-vault"))
            .env("AGENT_VAULT_SOCKET", &socket)
            .args(["status", "--json"])
            .output()
            .ok()?;
        if !out.status.success() {
            return None;
        }
        serde_json::from_slice::<serde_json::Value>(&out.stdout).ok()
    };
    let mut first = spawn()?;
    let s = poll(Duration::from_secs(20), status)?;
    assert_eq!(s["socket"], json!(socket.display().to_string()));
    assert!(!home.socket().exists(), "nothing at the default path");

    // kill -9 leaves the socket file behind; the next daemon removes it
    // only after finding that nothing answers on it.
    first.kill()?;
    first.wait()?;
    assert!(socket.exists(), "a stale socket remains after SIGKILL");
    let mut second = spawn()?;
    let s = poll(Duration::from_secs(20), || {
        status().filter(|s| s["pid"].as_u64() == Some(u64::from(second.id())))
    });
    second.kill()?;
    second.wait()?;
    assert!(s.is_ok(), "the second daemon took over the stale socket");
    Ok(())
}

#[tokio::test(flavor = "multi_thread")]
async fn a_vanished_shim_has_its_pending_requests_cancelled() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let agent = Agent::start(&home).await?;
    let call = tokio::spawn(async move {
        let r = agent
            .call(
                "get_secret",
                json!({"vault": "dev", "name": "API_KEY", "reason": "then I vanish"}),
            )
            .await;
        (r.is_err(), agent)
    });
    let pending = one_pending(&home).await?;
    let shim = pending["requester"]["pid"].as_i64().unwrap_or(0) as i32;
    assert!(shim > 0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(shim),
        nix::sys::signal::Signal::SIGKILL,
    )?;
    poll(Duration::from_secs(5), || {
        home.cli_json(&["pending"])
            .ok()?
            .as_array()?
            .is_empty()
            .then_some(())
    })?;
    let rows = audit_actions(&home)?;
    assert!(
        rows.contains(&("cancelled".into(), "API_KEY".into())),
        "{rows:?}"
    );
    let (transport_failed, _agent) = call.await?;
    assert!(transport_failed, "the client sees its server gone");
    Ok(())
}

/// A shim on Unix-socket stdio, as Node-based agents spawn it: its client
/// and its process.
async fn shim_on_sockets(home: &Home) -> Result<(Agent, tokio::process::Child)> {
    let mut cmd = tokio::process::Command::from(home.command(&bin("agent-vault-mcp")));
    cmd.current_dir(&home.project);
    Agent::spawn_with_sockets(cmd).await
}

/// Node-based agents (Claude Code among them) give the shim Unix socket
/// pairs, not pipes. They are served like pipes, and the shim still exits
/// as soon as its agent goes away.
#[tokio::test(flavor = "multi_thread")]
async fn a_shim_on_unix_socket_stdio_serves_and_exits_with_its_agent() -> Result<()> {
    let home = Home::new()?;
    let _daemon = home.start_daemon()?;
    let (agent, mut child) = shim_on_sockets(&home).await?;
    for _ in 0..20 {
        let r = agent.call("list_secrets", json!({})).await?;
        assert!(!r.is_error && r.text().contains("API_KEY"), "{r:?}");
    }
    agent.stop().await;
    let status = tokio::time::timeout(Duration::from_secs(1), child.wait()).await??;
    assert!(status.success(), "{status}");
    Ok(())
}

/// A home whose config sets a fixed approval port (the tests' default is 0).
fn home_with_approval_port(port: u16) -> Result<Home> {
    let config = TEST_CONFIG.replace("\"port\": 0", &format!("\"port\": {port}"));
    anyhow::ensure!(
        config != TEST_CONFIG,
        "TEST_CONFIG has no \"port\": 0 to replace"
    );
    Home::with_config(&config)
}

/// Deleting the state directory under a running daemon (a reset) leaves no
/// client able to reach it, while it would still hold the approval port and
/// keep a new daemon from starting there. It notices that its socket is
/// gone and stops cleanly, without removing the newer daemon's socket.
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_whose_socket_is_removed_stops_and_leaves_a_newer_one_alone() -> Result<()> {
    // A fixed approval port, as by default (9999): the second daemon must
    // wait for the first to let go of it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let home = home_with_approval_port(port)?;
    let mut old = home.start_daemon()?;
    std::fs::remove_dir_all(&home.state)?;
    std::fs::create_dir(&home.state)?;
    std::fs::set_permissions(&home.state, std::fs::Permissions::from_mode(0o700))?;
    let new = home.start_daemon()?;
    let exited = poll(Duration::from_secs(10), || {
        old.child.try_wait().ok().flatten()
    })?;
    assert!(exited.success(), "{exited}");
    assert!(
        home.socket().exists(),
        "the newer daemon's socket was removed"
    );
    let status = home.cli_json(&["status"])?;
    assert_eq!(status["pid"].as_u64(), Some(u64::from(new.child.id())));
    assert!(
        status["approvalUrl"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!(":{port}"))),
        "{status}"
    );
    Ok(())
}

/// An approval port that another program holds is waited for a few seconds
/// (a previous daemon may be stopping), then refused with a clear message.
#[tokio::test(flavor = "multi_thread")]
async fn a_busy_approval_port_is_a_clear_error_after_a_short_wait() -> Result<()> {
    let holder = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = holder.local_addr()?.port();
    let home = home_with_approval_port(port)?;
    let started = std::time::Instant::now();
    let err = match home.start_daemon() {
        Ok(_) => anyhow::bail!("a daemon started on a port that is in use"),
        Err(e) => format!("{e:#}"),
    };
    let waited = started.elapsed();
    assert!(
        err.contains(&format!(
            "port {port} (for the approval pages) is in use by another program"
        )) && err.contains("set \"port\" in /"),
        "{err}"
    );
    assert!(
        waited >= Duration::from_secs(3) && waited < Duration::from_secs(15),
        "{waited:?}"
    );
    drop(holder);
    Ok(())
}

/// A daemon whose database file is deleted would go on committing rows to
/// a file no one can open again: it stops instead, and removes its socket.
#[tokio::test(flavor = "multi_thread")]
async fn a_daemon_whose_database_is_removed_stops() -> Result<()> {
    let home = Home::new()?;
    let mut daemon = home.start_daemon()?;
    for name in ["agent-vault.db", "agent-vault.db-wal", "agent-vault.db-shm"] {
        let _ = std::fs::remove_file(home.state.join(name));
    }
    let exited = poll(Duration::from_secs(10), || {
        daemon.child.try_wait().ok().flatten()
    })?;
    assert!(exited.success(), "{exited}");
    assert!(!home.socket().exists(), "its own socket is removed");
    let log = std::fs::read_to_string(&daemon.log)?;
    assert!(
        log.contains("agent-vault.db") && log.contains("removed or replaced"),
        "{log}"
    );
    Ok(())
}

/// An agent that starts the daemon itself under a tracer (to read what it
/// handles) is refused before anything is loaded.
#[tokio::test(flavor = "multi_thread")]
async fn the_daemon_will_not_run_under_a_tracer() -> Result<()> {
    let Ok(strace) = which("strace") else {
        eprintln!("skipped: strace is not installed (.ci/run installs it)");
        return Ok(());
    };
    let home = Home::new()?;
    let out = home
        .command(&strace)
        .args(["-f", "-o", "/dev/null"])
        .arg(bin("agent-vaultd"))
        .output()?;
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is being traced"), "{err}");
    assert!(!home.socket().exists());
    Ok(())
}

fn which(name: &str) -> Result<std::path::PathBuf> {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| anyhow::anyhow!("{name} not found"))
}
