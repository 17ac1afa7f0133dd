//! The hardened set-up: the daemon as its own user, agents reaching it only
//! through a group-shared socket directory, and unable to read what the
//! daemon holds. Needs root (to run processes as other uids).
//!
//! Two variants, as the two system units run it:
//! `agent-vault-hardened.service` (a static user, here `nobody`, whose
//! primary group is the socket group, config and vault in its state
//! directory) and `agent-vault-dynamic.service` (a DynamicUser: a uid with
//! no passwd entry, the socket group as a supplementary group, config and
//! vault as read-only credentials in a directory of their own).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::Duration;

use agent_vault_e2e::*;
use anyhow::Result;
use serde_json::json;

const GROUP: u32 = 65534; // nogroup: the socket group
const AGENT_UID: u32 = 4242; // an agent user in that group, nothing else

#[derive(Clone, Copy, PartialEq)]
enum Daemon {
    /// A static system user whose primary group is the socket group.
    StaticUser,
    /// A systemd DynamicUser: uid == gid, no passwd entry, the socket group
    /// supplementary, config and vault as read-only credentials.
    DynamicUser,
}

impl Daemon {
    fn uid(self) -> u32 {
        match self {
            Daemon::StaticUser => 65534,  // nobody
            Daemon::DynamicUser => 61234, // in systemd's dynamic range
        }
    }
    fn gid(self) -> u32 {
        match self {
            Daemon::StaticUser => GROUP,
            Daemon::DynamicUser => 61234,
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn agents_reach_the_socket_but_not_the_daemons_files() -> Result<()> {
    hardened(Daemon::StaticUser).await
}

#[tokio::test(flavor = "multi_thread")]
async fn the_same_holds_for_a_dynamic_user_with_credentials() -> Result<()> {
    hardened(Daemon::DynamicUser).await
}

async fn hardened(kind: Daemon) -> Result<()> {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: needs root to run processes as other uids");
        return Ok(());
    }
    let home = Home::new()?;
    let root = home.dir.path();
    std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755))?;
    let (daemon_uid, daemon_gid, group) = (
        nix::unistd::Uid::from_raw(kind.uid()),
        nix::unistd::Gid::from_raw(kind.gid()),
        nix::unistd::Gid::from_raw(GROUP),
    );
    if kind == Daemon::DynamicUser {
        assert!(
            nix::unistd::User::from_uid(daemon_uid)?.is_none(),
            "uid {} must have no passwd entry, as a dynamic user has none",
            kind.uid()
        );
    }
    // The daemon's state, 0700, its user only; its config and secrets there
    // too (static user) or in a read-only credentials directory (dynamic).
    let state = &home.state;
    let config_dir = match kind {
        Daemon::StaticUser => state.clone(),
        Daemon::DynamicUser => root.join("credentials"),
    };
    std::fs::create_dir_all(&config_dir)?;
    std::fs::write(
        config_dir.join("secrets.env"),
        "LOCKED_KEY=locked-value-5e1f\n",
    )?;
    std::fs::write(
        config_dir.join("agent-vault.config.json"),
        format!(
            r#"{{"vaults":{{"locked":{{"type":"env","file":"secrets.env"}}}},"port":0,
               "access":{{"agents":[{AGENT_UID}],"admins":[0],"socketGroup":{GROUP}}}}}"#
        ),
    )?;
    let file_mode = match kind {
        Daemon::StaticUser => 0o600,
        Daemon::DynamicUser => 0o400,
    };
    for f in ["secrets.env", "agent-vault.config.json"] {
        nix::unistd::chown(&config_dir.join(f), Some(daemon_uid), Some(daemon_gid))?;
        std::fs::set_permissions(
            config_dir.join(f),
            std::fs::Permissions::from_mode(file_mode),
        )?;
    }
    nix::unistd::chown(state, Some(daemon_uid), Some(daemon_gid))?;
    if kind == Daemon::DynamicUser {
        nix::unistd::chown(&config_dir, Some(daemon_uid), Some(daemon_gid))?;
        std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o500))?;
    }
    // The socket's own directory, shared with the group.
    let run = root.join("run");
    std::fs::create_dir(&run)?;
    nix::unistd::chown(&run, Some(daemon_uid), Some(group))?;
    std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o750))?;
    let socket = run.join("agent-vault.sock");
    let agent_home = root.join("agent-home");
    std::fs::create_dir(&agent_home)?;

    let (daemon_bin, cli_bin, shim_bin) = (
        bin_for_other_users(&home, "agent-vaultd")?,
        bin_for_other_users(&home, "agent-vault")?,
        bin_for_other_users(&home, "agent-vault-mcp")?,
    );
    let log = log_path("daemon-hardened");
    // setpriv sets the supplementary groups too (std's Command cannot).
    let mut cmd = home.command(std::path::Path::new("setpriv"));
    cmd.env("AGENT_VAULT_SOCKET", &socket)
        .arg(format!("--reuid={}", kind.uid()))
        .arg(format!("--regid={}", kind.gid()))
        .arg(match kind {
            Daemon::StaticUser => "--clear-groups".to_string(),
            Daemon::DynamicUser => format!("--groups={GROUP}"),
        })
        .arg("--")
        .arg(&daemon_bin)
        .arg("--config")
        .arg(config_dir.join("agent-vault.config.json"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?);
    let _daemon = agent_vault_e2e::Daemon {
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
    for file in [
        config_dir.join("secrets.env"),
        state.join("agent-vault.db"),
        config_dir.join("agent-vault.config.json"),
    ] {
        let out = as_agent(std::path::Path::new("/bin/cat"))
            .arg(&file)
            .output()?;
        assert!(!out.status.success(), "the agent user can read {file:?}");
    }
    let out = as_agent(&cli_bin).arg("status").output()?;
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains(&format!(
        "uid {AGENT_UID} may not use agent-vaultd's admin interface"
    )));

    // ... but it can ask, through the group-shared socket.
    let agent = Agent::spawn(tokio::process::Command::from(as_agent(&shim_bin))).await?;
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
    let pending = poll(Duration::from_secs(10), || {
        let out = admin(&["pending", "--json"]).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
        v.as_array()?.first().cloned()
    })?;
    let id = pending["id"].as_str().unwrap_or_default().to_string();
    // Who asks, as far as another user may see: the uid, the command line
    // and the parent chain; the exe link is the kernel's to refuse, so the
    // card says argv[0] and that it is unverified.
    let who = &pending["requester"];
    assert_eq!(who["uid"], json!(AGENT_UID), "{pending}");
    assert!(
        who["cmdline"]
            .as_str()
            .unwrap_or("")
            .contains("agent-vault-mcp"),
        "{pending}"
    );
    assert!(
        who["exe"]
            .as_str()
            .unwrap_or("")
            .ends_with("agent-vault-mcp (unverified: argv[0])"),
        "{pending}"
    );
    assert!(!who["agent"].as_str().unwrap_or("").is_empty(), "{pending}");
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
