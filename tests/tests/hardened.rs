//! The hardened set-up: the daemon as its own user, agents reaching it only
//! through a group-shared socket directory, and unable to read what the
//! daemon holds. Needs root (to run processes as other uids).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

const DAEMON_UID: u32 = 65534; // nobody
const GROUP: u32 = 65534; // nogroup: the socket group
const AGENT_UID: u32 = 4242; // an agent user in that group, nothing else

#[tokio::test(flavor = "multi_thread")]
async fn agents_reach_the_socket_but_not_the_daemons_files() -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run processes as other uids");
        return Ok(());
    }
    let home = Home::new()?;
    let root = home.dir.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    let (daemon_uid, group) = (
        nix::unistd::Uid::from_raw(DAEMON_UID),
        nix::unistd::Gid::from_raw(GROUP),
    );
    // The daemon's state: its own config and secrets, 0700, its user only.
    let state = &home.state;
    std::fs::write(state.join("secrets.env"), "LOCKED_KEY=locked-value-5e1f\n")?;
    std::fs::write(
        state.join("agent-vault.config.json"),
        format!(
            r#"{{"vaults":{{"locked":{{"type":"env","file":"secrets.env"}}}},"port":0,
               "access":{{"agents":[{AGENT_UID}],"admins":[0],"socketGroup":{GROUP}}}}}"#
        ),
    )?;
    for f in ["secrets.env", "agent-vault.config.json"] {
        nix::unistd::chown(&state.join(f), Some(daemon_uid), Some(group))?;
        std::fs::set_permissions(state.join(f), std::fs::Permissions::from_mode(0o600))?;
    }
    nix::unistd::chown(state, Some(daemon_uid), Some(group))?;
    // The socket's own directory, shared with the group.
    let run = root.join("run");
    std::fs::create_dir(&run)?;
    nix::unistd::chown(&run, Some(daemon_uid), Some(group))?;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o750))?;
    let socket = run.join("agent-vault.sock");
    let agent_home = root.join("agent-home");
    std::fs::create_dir(&agent_home)?;

    let log = log_path("daemon-hardened");
    let mut cmd = home.command(&bin("agent-vaultd"));
    cmd.env("AGENT_VAULT_SOCKET", &socket)
        .arg("--config")
        .arg(state.join("agent-vault.config.json"))
        .uid(DAEMON_UID)
        .gid(GROUP)
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let _daemon = Daemon {
        child: cmd.spawn()?,
        log: log.clone(),
        base_url: String::new(),
    };
    let admin = |args: &[&str]| {
        home.command(&bin("agent-vault"))
            .env("AGENT_VAULT_SOCKET", &socket)
            .args(args)
            .output()
    };
    let status = poll(Duration::from_secs(20), || {
        let out = admin(&["status", "--json"]).ok()?;
        out.status
            .success()
            .then(|| serde_json::from_slice::<serde_json::Value>(&out.stdout).ok())
            .flatten()
    })
    .map_err(|e| anyhow::anyhow!("{e}: {}", std::fs::read_to_string(&log).unwrap_or_default()))?;
    assert_eq!(status["agentUids"], json!([AGENT_UID]));
    assert_eq!(status["adminUids"], json!([0]));
    let text = String::from_utf8_lossy(&admin(&["status"])?.stdout).to_string();
    assert!(
        !text.contains("Agents and admins are the same user"),
        "{text}"
    );
    {
        use std::os::unix::fs::MetadataExt;
        let meta = std::fs::metadata(&socket)?;
        assert_eq!((meta.mode() & 0o777, meta.gid()), (0o660, GROUP));
    }

    // As the agent user: its files are out of reach, and so is the admin side.
    let as_agent = |program: &std::path::Path| {
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &agent_home)
            .env("AGENT_VAULT_SOCKET", &socket)
            .env("AGENT_VAULT_HOME", root.join("agent-state"))
            .current_dir(&agent_home)
            .uid(AGENT_UID)
            // std drops root's supplementary groups when it changes uid, so
            // the socket group (the primary gid here) is the only way in.
            .gid(GROUP);
        c
    };
    for file in ["secrets.env", "agent-vault.db", "agent-vault.config.json"] {
        let out = as_agent(std::path::Path::new("/bin/cat"))
            .arg(state.join(file))
            .output()?;
        assert!(!out.status.success(), "the agent user can read {file}");
    }
    let out = as_agent(&bin("agent-vault")).arg("status").output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "uid {AGENT_UID} may not use agent-vaultd's admin interface"
    )));

    // ... but it can ask, through the group-shared socket.
    let agent = Agent::spawn(tokio::process::Command::from(as_agent(&bin(
        "agent-vault-mcp",
    ))))
    .await?;
    let list = agent.call("list_secrets", json!({})).await?;
    assert!(list.text().contains("[locked]\n  - LOCKED_KEY"), "{list:?}");
    let call = tokio::spawn(async move {
        agent
            .call(
                "get_secret",
                json!({"vault": "locked", "name": "LOCKED_KEY", "reason": "hardened"}),
            )
            .await
            .map(|r| (r, agent))
    });
    let id = poll(Duration::from_secs(10), || {
        let out = admin(&["pending", "--json"]).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.first()?["id"].as_str().map(str::to_string)
    })?;
    // With separate users, the admin may approve from the terminal.
    let out = admin(&["approve", &id])?;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (r, agent) = call.await??;
    assert_eq!(r.texts, ["locked-value-5e1f"], "{r:?}");
    agent.stop().await;
    Ok(())
}
