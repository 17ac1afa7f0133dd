//! `agent-vault doctor`: is everything in place for an agent's first
//! request to reach a phone and come back? The daemon and its version, the
//! state and socket directories, the config and its references, every
//! vault's backend (listed now, within its time-out), how a phone reaches
//! the approval page, paired devices and passkeys, channels, the service,
//! and the MCP clients that run agent-vault-mcp. Each problem with its fix;
//! exit status 1 when any check fails.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use agent_vault_proto::client::{self, Connection};
use agent_vault_proto::pb;
use clap::ValueEnum;
use serde_json::json;

use super::config::{self, text};
use crate::mcp_clients::{Client, Scope};
use crate::output::{Out, ago, left, now_ms};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Level {
    Ok,
    /// Worth knowing; nothing to fix.
    Note,
    /// Works, but not as well as it could.
    Warn,
    /// Stops requests from working: exit status 1.
    Fail,
}

impl Level {
    fn word(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Note => "note",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        }
    }
}

#[derive(Debug)]
struct Finding {
    area: &'static str,
    level: Level,
    what: String,
    fix: Option<String>,
}

#[derive(Default)]
struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, area: &'static str, level: Level, what: impl Into<String>) {
        self.0.push(Finding {
            area,
            level,
            what: what.into(),
            fix: None,
        });
    }

    fn problem(
        &mut self,
        area: &'static str,
        level: Level,
        what: impl Into<String>,
        fix: impl Into<String>,
    ) {
        self.0.push(Finding {
            area,
            level,
            what: what.into(),
            fix: Some(fix.into()),
        });
    }
}

/// How long the daemon has to answer at all.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// Every backend is listed at once, each within its own time-out; this
/// bounds the whole.
const BACKENDS_TIMEOUT: Duration = Duration::from_secs(40);

pub async fn run(out: Out) -> anyhow::Result<bool> {
    let mut f = Findings::default();
    let socket = agent_vault_proto::paths::socket_path()?;
    let mut connection = daemon(&mut f, &socket).await;
    let status = match &mut connection {
        Some(c) => match c.admin.status(pb::StatusRequest {}).await {
            Ok(s) => Some(s.into_inner()),
            Err(e) => {
                f.problem(
                    "daemon",
                    Level::Fail,
                    format!(
                        "agent-vaultd does not answer this user's questions: {}",
                        e.message()
                    ),
                    "run agent-vault as a user in the daemon's access.admins (SECURITY.md)",
                );
                None
            }
        },
        None => None,
    };
    if let Some(s) = &status {
        f.add(
            "daemon",
            Level::Ok,
            format!(
                "agent-vaultd {} answers on {} (pid {}, up {})",
                s.version,
                s.socket_path,
                s.pid,
                left(now_ms() + s.uptime_ms as i64)
            ),
        );
        if s.version != agent_vault_proto::VERSION {
            f.problem(
                "daemon",
                Level::Warn,
                format!(
                    "agent-vaultd is version {}, this agent-vault is {}",
                    s.version,
                    agent_vault_proto::VERSION
                ),
                "restart the daemon after an upgrade: `agent-vault stop`; the next agent (or `agent-vaultd`) starts the new one",
            );
        }
    }
    directories(&mut f, status.as_ref(), &socket);
    configs(&mut f, status.as_ref());
    if let (Some(c), Some(_)) = (&mut connection, &status) {
        backends(&mut f, c).await;
    } else {
        f.add(
            "backends",
            Level::Note,
            "not checked: only the running daemon can list its vaults",
        );
    }
    if let Some(s) = &status {
        approvals(&mut f, s);
    }
    service(&mut f);
    clients(&mut f);

    let failed = f.0.iter().filter(|x| x.level == Level::Fail).count();
    let value = json!({
        "ok": failed == 0,
        "checks": f.0.iter().map(|x| json!({
            "area": x.area, "level": x.level.word().to_lowercase(), "what": x.what, "fix": x.fix,
        })).collect::<Vec<_>>(),
    });
    out.emit(value, || {
        for x in &f.0 {
            println!("{:<5} {:<9} {}", x.level.word(), x.area, x.what);
            if let Some(fix) = &x.fix {
                println!("{:16}fix: {fix}", "");
            }
        }
        let warned = f.0.iter().filter(|x| x.level == Level::Warn).count();
        match (failed, warned) {
            (0, 0) => println!("\nNo problems found."),
            (0, 1) => println!("\nNothing stops requests from working; 1 warning above."),
            (0, n) => println!("\nNothing stops requests from working; {n} warnings above."),
            (1, _) => println!("\n1 problem stops requests from working: see FAIL above."),
            (n, _) => println!("\n{n} problems stop requests from working: see FAIL above."),
        }
    });
    Ok(failed == 0)
}

async fn daemon(f: &mut Findings, socket: &Path) -> Option<Connection> {
    match tokio::time::timeout(CONNECT_TIMEOUT, client::connect(socket, "cli")).await {
        Ok(Ok(c)) => Some(c),
        Ok(Err(client::ConnectError::NotRunning { path })) => {
            f.problem(
                "daemon",
                Level::Fail,
                format!("agent-vaultd is not running (nothing answers on {})", path.display()),
                "start it with `agent-vaultd` (or as a service: README), or start your agent: agent-vault-mcp starts it",
            );
            None
        }
        Ok(Err(e)) => {
            f.problem(
                "daemon",
                Level::Fail,
                e.to_string(),
                "see the message; `agent-vault logs` shows the daemon's own account",
            );
            None
        }
        Err(_) => {
            f.problem(
                "daemon",
                Level::Fail,
                format!(
                    "agent-vaultd did not answer on {} within {} s",
                    socket.display(),
                    CONNECT_TIMEOUT.as_secs()
                ),
                "it may be stuck: `agent-vault logs` shows why; `agent-vault stop` ends it",
            );
            None
        }
    }
}

/// The state directory and the socket's directory: this user's, and
/// nobody else's to write (or, without a group setup, to enter).
fn directories(f: &mut Findings, status: Option<&pb::StatusReply>, socket: &Path) {
    let state = match status {
        Some(s) => Some(PathBuf::from(&s.state_dir)),
        None => agent_vault_proto::paths::state_dir().ok(),
    };
    let mut dirs: Vec<PathBuf> = state.into_iter().collect();
    if let Some(d) = socket.parent()
        && !dirs.iter().any(|x| x == d)
    {
        dirs.push(d.to_path_buf());
    }
    let me = nix::unistd::geteuid().as_raw();
    for dir in dirs {
        let Ok(meta) = std::fs::symlink_metadata(&dir) else {
            f.add(
                "files",
                Level::Note,
                format!(
                    "{} does not exist yet (agent-vaultd creates it)",
                    dir.display()
                ),
            );
            continue;
        };
        let mode = meta.mode() & 0o777;
        let shown = format!("{} (mode {mode:03o}, uid {})", dir.display(), meta.uid());
        if meta.file_type().is_symlink() || !meta.is_dir() {
            f.problem(
                "files",
                Level::Fail,
                format!("{shown} is not a plain directory"),
                "remove it; agent-vaultd creates the directory itself",
            );
        } else if mode & 0o022 != 0 {
            f.problem(
                "files",
                Level::Fail,
                format!("{shown}: others can write into it"),
                format!("chmod 700 {}", dir.display()),
            );
        } else if mode & 0o007 != 0 {
            f.problem(
                "files",
                Level::Warn,
                format!("{shown}: every user of this machine can look inside"),
                format!("chmod 700 {}", dir.display()),
            );
        } else if meta.uid() != me {
            f.add(
                "files",
                Level::Note,
                format!("{shown} belongs to another user (the daemon's own, SECURITY.md)"),
            );
        } else {
            f.add("files", Level::Ok, shown);
        }
    }
}

/// The config found from this directory (what a daemon or agent started
/// here uses), and the running daemon's own if that is another file.
fn configs(f: &mut Findings, status: Option<&pb::StatusReply>) {
    let mut one = |file: Option<&Path>, role: &str| match config::check(file) {
        Err(e) => f.problem(
            "config",
            Level::Fail,
            format!("{e:#}"),
            "reinstall: the three programs belong in one directory",
        ),
        Ok(report) => {
            let Some(name) = report["file"].as_str() else {
                f.add(
                    "config",
                    Level::Note,
                    "no config file found from here: agent-vaultd uses its offline defaults (an env vault \"local\" in its state directory); `agent-vault init` writes one for this project",
                );
                return;
            };
            if report["ok"].as_bool().unwrap_or(false) {
                f.add(
                    "config",
                    Level::Ok,
                    format!("{name}{role}: valid; {}", config::summary(&report)),
                );
            }
            for p in report["problems"].as_array().into_iter().flatten() {
                f.problem("config", Level::Fail, text(&p["what"]), text(&p["fix"]));
            }
        }
    };
    let own = status
        .map(|s| s.config_path.as_str())
        .filter(|p| !p.is_empty());
    let here = std::env::current_dir().ok().and_then(|cwd| {
        agent_vault_proto::project::find_config(&agent_vault_proto::paths::process_env, &cwd)
    });
    match (own, &here) {
        (Some(own), Some(here)) if Path::new(own) != here.as_path() => {
            one(None, " (this project's, used by agents started here)");
            if Path::new(own).exists() {
                one(Some(Path::new(own)), " (agent-vaultd's own)");
            }
        }
        (Some(own), None) if Path::new(own).exists() => {
            one(Some(Path::new(own)), " (agent-vaultd's own)")
        }
        _ => one(None, ""),
    }
}

/// Every vault the daemon has loaded, listed now.
async fn backends(f: &mut Findings, c: &mut Connection) {
    let reply = tokio::time::timeout(
        BACKENDS_TIMEOUT,
        c.admin.check_vaults(pb::CheckVaultsRequest {}),
    )
    .await;
    let vaults = match reply {
        Ok(Ok(r)) => r.into_inner().vaults,
        Ok(Err(e)) => {
            f.add(
                "backends",
                Level::Warn,
                format!("not checked: {}", e.message()),
            );
            return;
        }
        Err(_) => {
            f.add(
                "backends",
                Level::Fail,
                format!(
                    "not checked: the backends did not answer within {} s",
                    BACKENDS_TIMEOUT.as_secs()
                ),
            );
            return;
        }
    };
    for v in vaults {
        let place = if v.location.is_empty() {
            v.kind.clone()
        } else {
            format!("{}, {}", v.kind, v.location)
        };
        if v.ok {
            f.add(
                "backends",
                Level::Ok,
                format!(
                    "{} ({place}): {} name{} in {} ms",
                    v.name,
                    v.names,
                    if v.names == 1 { "" } else { "s" },
                    v.elapsed_ms
                ),
            );
        } else {
            f.problem(
                "backends",
                Level::Fail,
                format!("{} ({place}) from {}: {}", v.name, v.config_path, v.error),
                backend_fix(&v.kind),
            );
        }
        if !v.notice.is_empty() {
            f.problem(
                "backends",
                Level::Warn,
                format!("{}: {}", v.name, v.notice),
                "see the message",
            );
        }
    }
}

/// What a failing backend of this type usually needs.
fn backend_fix(kind: &str) -> String {
    match kind {
        "1password" => "install the 1Password CLI (`op`) and sign in (`op signin`), or give agent-vaultd OP_SERVICE_ACCOUNT_TOKEN; then `agent-vault doctor` again".into(),
        "bitwarden" => "install the Bitwarden Secrets Manager CLI (`bws`) and give agent-vaultd BWS_ACCESS_TOKEN".into(),
        "env" => "check that the file exists and that agent-vaultd's user can read it".into(),
        _ => format!("check the vault's address and credentials (the README's section on \"{kind}\" vaults lists them)"),
    }
}

/// How approvals reach a person: the page's address, devices, factors,
/// channels.
fn approvals(f: &mut Findings, s: &pb::StatusReply) {
    let local =
        s.approval_base_url.contains("://localhost") || s.approval_base_url.contains("://127.");
    if let Some(why) = s.tunnel.strip_prefix("none: ngrok failed: ") {
        f.problem(
            "phone",
            Level::Fail,
            format!("the ngrok tunnel did not open: {why}"),
            "check the token (NGROK_AUTHTOKEN or ngrokAuthToken) and ngrokDomain, then restart agent-vaultd (`agent-vault stop`)",
        );
    } else if local {
        f.problem(
            "phone",
            Level::Warn,
            format!("approval pages are at {}: only this machine can open them", s.approval_base_url),
            "for a phone: set NGROK_AUTHTOKEN (or ngrokAuthToken) and restart agent-vaultd; or reach this port through Tailscale or `ssh -L` (README: Pair a phone)",
        );
    } else {
        f.add(
            "phone",
            Level::Ok,
            format!("approval pages at {} ({})", s.approval_base_url, s.tunnel),
        );
    }
    if s.devices.is_empty() {
        f.problem(
            "devices",
            Level::Warn,
            "no device is paired: requests wait until one approves them",
            "`agent-vault pair` prints a link and QR code to open on your phone",
        );
    }
    for d in &s.devices {
        let seen = if d.last_seen_ms > 0 {
            format!("last seen {} ago", ago(d.last_seen_ms))
        } else {
            "not seen since pairing".into()
        };
        f.add("devices", Level::Ok, format!("{} paired, {seen}", d.label));
    }
    let passkey_vaults: Vec<&str> = s
        .vaults
        .iter()
        .filter(|v| v.require == "passkey")
        .map(|v| v.name.as_str())
        .collect();
    if let (Some(why), false) = (
        s.passkeys.strip_prefix("unavailable: "),
        passkey_vaults.is_empty(),
    ) {
        f.problem(
            "devices",
            Level::Fail,
            format!("{} need a passkey, and passkeys cannot work here: {why}", passkey_vaults.join(", ")),
            "use a stable address (localhost, or ngrokDomain for a reserved domain), or approval.require \"totp\"",
        );
    }
    f.add(
        "channels",
        Level::Note,
        match s.webhooks {
            0 => {
                "no webhooks: requests are announced on the approval page and the daemon's terminal"
                    .to_string()
            }
            n => format!(
                "{n} webhook{} in agent-vaultd's config",
                if n == 1 { "" } else { "s" }
            ),
        },
    );
}

/// A systemd or launchd unit that keeps agent-vaultd running.
fn service(f: &mut Findings) {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    let dirs = if cfg!(target_os = "macos") {
        vec![
            home.join("Library/LaunchAgents"),
            PathBuf::from("/Library/LaunchDaemons"),
        ]
    } else {
        vec![
            config_home.join("systemd/user"),
            PathBuf::from("/etc/systemd/system"),
        ]
    };
    let units: Vec<PathBuf> = dirs
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("agent-vault") || n.starts_with("dev.agent-vault"))
        })
        .collect();
    if units.is_empty() {
        f.add(
            "service",
            Level::Note,
            "none installed: agent-vaultd starts with the first agent session (README: Run it as a service)",
        );
    }
    for u in units {
        f.add("service", Level::Ok, format!("installed: {}", u.display()));
    }
}

/// Every MCP client whose file (this user's, or this project's) runs
/// agent-vault-mcp, or still the prototype.
fn clients(f: &mut Findings) {
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_default();
    let config_home = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| home.join(".config"));
    let cwd = std::env::current_dir().unwrap_or_default();
    let user = Scope::User {
        home: &home,
        config_home: &config_home,
    };
    let project = Scope::Project(&cwd);
    let mut configured = 0;
    for &client in Client::value_variants() {
        for scope in [&user, &project] {
            let Ok(file) = client.file(scope) else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(&file) else {
                continue;
            };
            let name = client.name();
            match client.our_command(&text) {
                Err(why) => f.problem(
                    "clients",
                    Level::Warn,
                    format!("{name}: {} cannot be read: {why}", file.display()),
                    "fix the file; the client cannot read it either",
                ),
                Ok(Some(command)) if runnable(&command) => {
                    configured += 1;
                    f.add(
                        "clients",
                        Level::Ok,
                        format!("{name} runs {command} ({})", file.display()),
                    );
                }
                Ok(Some(command)) => f.problem(
                    "clients",
                    Level::Fail,
                    format!(
                        "{name} runs {command:?} ({}), which is not there",
                        file.display()
                    ),
                    format!("`agent-vault mcp-config {name} --install` writes the right path"),
                ),
                Ok(None) => {}
            }
            if let Ok(old) = client.prototype_entries(&text)
                && !old.is_empty()
            {
                f.problem(
                    "clients",
                    Level::Warn,
                    format!(
                        "{name} still runs the prototype (npx agent-vault) as {} ({})",
                        old.join(", "),
                        file.display()
                    ),
                    format!("`agent-vault mcp-config {name} --install --replace-prototype`"),
                );
            }
        }
    }
    if configured == 0 {
        f.problem(
            "clients",
            Level::Warn,
            "no MCP client runs agent-vault-mcp yet",
            "`agent-vault mcp-config claude-code --install` (or cursor, codex, vscode, zed, windsurf, claude-desktop)",
        );
    }
}

/// Whether `command` names a program that exists: a path, or a name on
/// PATH.
fn runnable(command: &str) -> bool {
    use std::os::unix::fs::PermissionsExt;
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        return executable(Path::new(command));
    }
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| executable(&d.join(command))))
}
