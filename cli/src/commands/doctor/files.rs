//! What this machine's files say, for `doctor`: the state and socket
//! directories, the configs (read by agent-vaultd's own check), an
//! installed service, and the MCP clients' files.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use agent_vault_proto::pb;
use clap::ValueEnum;

use super::findings::{Findings, Level};
use crate::commands::config::{self, text};
use crate::mcp_clients::{Client, Scope, UserDirs};

/// The state directory and the socket's directory: this user's, and
/// nobody else's to write (or, without a group setup, to enter).
pub(super) fn directories(f: &mut Findings, status: Option<&pb::StatusReply>, socket: &Path) {
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
pub(super) fn configs(f: &mut Findings, status: Option<&pb::StatusReply>) {
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

/// A systemd or launchd unit that keeps agent-vaultd running.
pub(super) fn service(f: &mut Findings) {
    let user = UserDirs::from_env();
    let mut dirs = Vec::new();
    if cfg!(target_os = "macos") {
        dirs.extend(user.map(|u| u.home.join("Library/LaunchAgents")));
        dirs.push(PathBuf::from("/Library/LaunchDaemons"));
    } else {
        dirs.extend(user.map(|u| u.config_home.join("systemd/user")));
        dirs.push(PathBuf::from("/etc/systemd/system"));
    }
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
pub(super) fn clients(f: &mut Findings) {
    let user = UserDirs::from_env();
    let cwd = std::env::current_dir().unwrap_or_default();
    let mut scopes: Vec<Scope<'_>> = user.iter().map(UserDirs::scope).collect();
    scopes.push(Scope::Project(&cwd));
    let mut configured = 0;
    for &client in Client::value_variants() {
        for scope in &scopes {
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
