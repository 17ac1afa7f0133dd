//! What the daemon's terminal shows when it is ready: where agents and
//! browsers reach it, the config it runs on, and how to add a secret, so
//! that a person starting it for the first time knows the next step.

use std::path::Path;

use crate::config::ProjectConfig;
use crate::tunnel::Tunnel;

/// The lines about the config, taken before the config moves into the
/// daemon's state.
pub struct ConfigLines(Vec<String>);

impl ConfigLines {
    pub fn of(config: &ProjectConfig) -> Self {
        let mut lines = vec![format!("config: {}", config.path.display())];
        if config.vaults.is_empty() {
            lines.push("  no vaults yet: add one to the config (README: Configuration)".into());
        }
        for v in config.vaults.values() {
            let kind = v.settings.kind();
            let mut line = match v.settings.file() {
                Some(file) => format!("  vault {} ({kind}: {})", v.name, file.display()),
                None => format!("  vault {} ({kind})", v.name),
            };
            if v.writable && kind == "env" {
                line.push_str(&format!("; add a secret: agent-vault set {}/NAME", v.name));
            }
            lines.push(line);
        }
        Self(lines)
    }
}

/// The ready banner on stderr (the first line's wording is what scripts and
/// the tests look for).
pub fn ready(socket: &Path, tunnel: &Tunnel, config: &ConfigLines) {
    let reach = match tunnel.description.as_str() {
        "ngrok" => String::new(),
        "publicUrl" => format!(" (publicUrl, forwarding to {})", tunnel.local_url),
        _ => " (localhost only)".into(),
    };
    eprintln!(
        "agent-vaultd {} ready: socket {}, approvals at {}{reach}\n{}",
        agent_vault_proto::VERSION,
        socket.display(),
        tunnel.base_url,
        config.0.join("\n")
    );
}
