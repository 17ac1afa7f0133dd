//! The hardened set-up of SECURITY.md, as the tests run it: the daemon as
//! its own user, agents (other uids) reaching it only through a
//! group-shared socket directory, the admin as root. Needs root.
//!
//! Two variants, as the two system units run it:
//! `agent-vault-hardened.service` (a static user, here `nobody`, whose
//! primary group is the socket group, config and vault in its state
//! directory) and `agent-vault-dynamic.service` (a DynamicUser: a uid with
//! no passwd entry, the socket group as a supplementary group, config and
//! vault as read-only credentials in a directory of their own).

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use anyhow::{Result, anyhow};

use crate::{Agent, Daemon, Home, bin, bin_for_other_users, log_path, poll};

/// nogroup: the socket group.
pub const GROUP: u32 = 65534;
/// An agent user in the socket group, nothing else.
pub const AGENT_UID: u32 = 4242;
/// A second agent user, in the same group.
pub const OTHER_AGENT_UID: u32 = 4243;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// A static system user whose primary group is the socket group.
    StaticUser,
    /// A systemd DynamicUser: uid == gid, no passwd entry, the socket group
    /// supplementary, config and vault as read-only credentials.
    DynamicUser,
}

impl Kind {
    pub fn uid(self) -> u32 {
        match self {
            Kind::StaticUser => 65534,  // nobody
            Kind::DynamicUser => 61234, // in systemd's dynamic range
        }
    }
    pub fn gid(self) -> u32 {
        match self {
            Kind::StaticUser => GROUP,
            Kind::DynamicUser => 61234,
        }
    }
}

/// True when the tests may run processes as other uids.
pub fn can_run() -> bool {
    if nix::unistd::geteuid().is_root() {
        true
    } else {
        eprintln!("skipped: needs root to run processes as other uids");
        false
    }
}

/// A daemon running as in SECURITY.md's hardened recipe.
pub struct Hardened {
    pub home: Home,
    pub kind: Kind,
    /// Where the daemon's config and vault files are.
    pub config_dir: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub shim: PathBuf,
    pub cli: PathBuf,
    daemon: Option<Daemon>,
}

impl Hardened {
    /// Starts the daemon as `kind` with `vaults` (the JSON of its `vaults`
    /// object) and `secrets` as its `secrets.env`; agents are
    /// [`AGENT_UID`] and [`OTHER_AGENT_UID`], the admin is root.
    pub fn start(kind: Kind, vaults: &str, secrets: &str) -> Result<Self> {
        let home = Home::new()?;
        let root = home.dir.path().to_path_buf();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755))?;
        let (daemon_uid, daemon_gid, group) = (
            nix::unistd::Uid::from_raw(kind.uid()),
            nix::unistd::Gid::from_raw(kind.gid()),
            nix::unistd::Gid::from_raw(GROUP),
        );
        if kind == Kind::DynamicUser && nix::unistd::User::from_uid(daemon_uid)?.is_some() {
            return Err(anyhow!(
                "uid {} must have no passwd entry, as a dynamic user has none",
                kind.uid()
            ));
        }
        // The daemon's state, 0700, its user only; its config and secrets
        // there too (static user) or in a read-only credentials directory.
        let state = home.state.clone();
        let config_dir = match kind {
            Kind::StaticUser => state.clone(),
            Kind::DynamicUser => root.join("credentials"),
        };
        std::fs::create_dir_all(&config_dir)?;
        std::fs::write(config_dir.join("secrets.env"), secrets)?;
        std::fs::write(
            config_dir.join("agent-vault.config.json"),
            format!(
                r#"{{"vaults":{vaults},"port":0,
                   "access":{{"agents":[{AGENT_UID},{OTHER_AGENT_UID}],"admins":[0],"socketGroup":{GROUP}}}}}"#
            ),
        )?;
        let file_mode = match kind {
            Kind::StaticUser => 0o600,
            Kind::DynamicUser => 0o400,
        };
        for f in ["secrets.env", "agent-vault.config.json"] {
            nix::unistd::chown(&config_dir.join(f), Some(daemon_uid), Some(daemon_gid))?;
            std::fs::set_permissions(
                config_dir.join(f),
                std::fs::Permissions::from_mode(file_mode),
            )?;
        }
        nix::unistd::chown(&state, Some(daemon_uid), Some(daemon_gid))?;
        if kind == Kind::DynamicUser {
            nix::unistd::chown(&config_dir, Some(daemon_uid), Some(daemon_gid))?;
            std::fs::set_permissions(&config_dir, std::fs::Permissions::from_mode(0o500))?;
        }
        // The socket's own directory, shared with the group.
        let run = root.join("run");
        std::fs::create_dir(&run)?;
        nix::unistd::chown(&run, Some(daemon_uid), Some(group))?;
        std::fs::set_permissions(&run, std::fs::Permissions::from_mode(0o750))?;
        let socket = run.join("agent-vault.sock");

        let daemon_bin = bin_for_other_users(&home, "agent-vaultd")?;
        let cli = bin_for_other_users(&home, "agent-vault")?;
        let shim = bin_for_other_users(&home, "agent-vault-mcp")?;
        let log = log_path("daemon-hardened");
        // setpriv sets the supplementary groups too (std's Command cannot).
        let mut cmd = home.command(Path::new("setpriv"));
        cmd.env("AGENT_VAULT_SOCKET", &socket)
            .arg(format!("--reuid={}", kind.uid()))
            .arg(format!("--regid={}", kind.gid()))
            .arg(match kind {
                Kind::StaticUser => "--clear-groups".to_string(),
                Kind::DynamicUser => format!("--groups={GROUP}"),
            })
            .arg("--")
            .arg(&daemon_bin)
            .arg("--config")
            .arg(config_dir.join("agent-vault.config.json"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?);
        let daemon = Daemon {
            child: cmd.spawn()?,
            log: log.clone(),
            base_url: String::new(),
        };
        let h = Self {
            home,
            kind,
            config_dir,
            socket,
            log,
            shim,
            cli,
            daemon: Some(daemon),
        };
        poll(Duration::from_secs(20), || {
            h.admin(&["status", "--json"])
                .ok()
                .filter(|o| o.status.success())
        })
        .map_err(|e| {
            anyhow!(
                "{e}: {}",
                std::fs::read_to_string(&h.log).unwrap_or_default()
            )
        })?;
        Ok(h)
    }

    pub fn root(&self) -> &Path {
        self.home.dir.path()
    }

    /// The CLI as the admin (root).
    pub fn admin(&self, args: &[&str]) -> std::io::Result<Output> {
        self.home
            .command(&bin("agent-vault"))
            .env("AGENT_VAULT_SOCKET", &self.socket)
            .args(args)
            .output()
    }

    /// The admin's `--json` output, parsed.
    pub fn admin_json(&self, args: &[&str]) -> Result<serde_json::Value> {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.admin(&all)?;
        if !out.status.success() {
            return Err(anyhow!(
                "agent-vault {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        Ok(serde_json::from_slice(&out.stdout)?)
    }

    /// An agent user's home (made on first use, owned by it, 0755).
    pub fn agent_home(&self, uid: u32) -> Result<PathBuf> {
        let dir = self.root().join(format!("agent-{uid}"));
        if !dir.exists() {
            std::fs::create_dir(&dir)?;
            nix::unistd::chown(
                &dir,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(GROUP)),
            )?;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755))?;
        }
        Ok(dir)
    }

    /// `program` as agent user `uid`, in its home, pointed at the socket.
    pub fn as_agent(&self, uid: u32, program: &Path) -> Result<Command> {
        let home = self.agent_home(uid)?;
        let mut c = Command::new(program);
        c.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", &home)
            .env("AGENT_VAULT_SOCKET", &self.socket)
            .env("AGENT_VAULT_HOME", self.root().join(format!("state-{uid}")))
            .current_dir(&home)
            .uid(uid)
            // std drops root's supplementary groups when it changes uid, so
            // the socket group (the primary gid here) is the only way in.
            .gid(GROUP);
        Ok(c)
    }

    /// A shim as agent user `uid`, configured further by `configure`.
    pub async fn agent(&self, uid: u32, configure: impl FnOnce(&mut Command)) -> Result<Agent> {
        let mut cmd = self.as_agent(uid, &self.shim)?;
        configure(&mut cmd);
        Agent::spawn(tokio::process::Command::from(cmd)).await
    }

    /// Writes a file as agent user `uid` would (owned by it, `mode`).
    pub fn write_as(&self, uid: u32, path: &Path, text: &str, mode: u32) -> Result<()> {
        std::fs::write(path, text)?;
        nix::unistd::chown(
            path,
            Some(nix::unistd::Uid::from_raw(uid)),
            Some(nix::unistd::Gid::from_raw(GROUP)),
        )?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
        Ok(())
    }

    /// Waits for exactly one pending request and returns its JSON.
    pub fn one_pending(&self) -> Result<serde_json::Value> {
        poll(Duration::from_secs(15), || {
            let v = self.admin_json(&["pending"]).ok()?;
            v.as_array()?.first().cloned()
        })
    }

    pub fn daemon_log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Hardened {
    fn drop(&mut self) {
        // The daemon first, before its home is deleted.
        self.daemon.take();
    }
}
