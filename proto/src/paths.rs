//! Where the state directory and the socket live.
//!
//! Resolution order, documented in the README:
//! - state directory: `AGENT_VAULT_HOME`; else `$XDG_STATE_HOME/agent-vault`
//!   or `~/.local/state/agent-vault` on Linux, `~/Library/Application
//!   Support/agent-vault` on macOS.
//! - socket: `AGENT_VAULT_SOCKET`; else `$AGENT_VAULT_HOME/agent-vault.sock`
//!   when `AGENT_VAULT_HOME` is set; else `$XDG_RUNTIME_DIR/agent-vault/
//!   agent-vault.sock`; else `agent-vault.sock` in the state directory.
//!
//! Every lookup goes through an `env` function so tests can replace it.

use std::ffi::OsString;
use std::path::PathBuf;

/// The environment as a function, so tests can substitute their own.
pub type EnvFn<'a> = &'a dyn Fn(&str) -> Option<OsString>;

/// The process environment, ignoring empty values.
pub fn process_env(name: &str) -> Option<OsString> {
    std::env::var_os(name).filter(|v| !v.is_empty())
}

#[derive(Debug, thiserror::Error)]
pub enum PathError {
    #[error("cannot find a home directory: set HOME or AGENT_VAULT_HOME")]
    NoHome,
}

fn home(env: EnvFn<'_>) -> Result<PathBuf, PathError> {
    env("HOME").map(PathBuf::from).ok_or(PathError::NoHome)
}

/// The directory holding the audit database, device hashes, keys and the lock.
pub fn state_dir_with(env: EnvFn<'_>) -> Result<PathBuf, PathError> {
    if let Some(dir) = env("AGENT_VAULT_HOME") {
        return Ok(PathBuf::from(dir));
    }
    if cfg!(target_os = "macos") {
        return Ok(home(env)?.join("Library/Application Support/agent-vault"));
    }
    if let Some(xdg) = env("XDG_STATE_HOME") {
        return Ok(PathBuf::from(xdg).join("agent-vault"));
    }
    Ok(home(env)?.join(".local/state/agent-vault"))
}

/// The daemon's Unix socket.
pub fn socket_path_with(env: EnvFn<'_>) -> Result<PathBuf, PathError> {
    if let Some(sock) = env("AGENT_VAULT_SOCKET") {
        return Ok(PathBuf::from(sock));
    }
    if let Some(dir) = env("AGENT_VAULT_HOME") {
        return Ok(PathBuf::from(dir).join("agent-vault.sock"));
    }
    if let Some(run) = env("XDG_RUNTIME_DIR") {
        return Ok(PathBuf::from(run).join("agent-vault/agent-vault.sock"));
    }
    Ok(state_dir_with(env)?.join("agent-vault.sock"))
}

/// The user's configuration directory: `$XDG_CONFIG_HOME` when it is
/// absolute (the XDG rule), else `~/.config`.
pub fn config_home_with(env: EnvFn<'_>) -> Option<PathBuf> {
    env("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| env("HOME").map(|h| PathBuf::from(h).join(".config")))
}

/// One of Agent Vault's programs (`agent-vaultd`, `agent-vault-mcp`): the
/// one installed beside the running program, as an absolute path, else
/// the bare name for a PATH search.
pub fn sibling_program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join(name)))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}

pub fn state_dir() -> Result<PathBuf, PathError> {
    state_dir_with(&process_env)
}

pub fn socket_path() -> Result<PathBuf, PathError> {
    socket_path_with(&process_env)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).map(OsString::from)
    }

    #[test]
    fn explicit_overrides_win() {
        let env = env_of(&[
            ("AGENT_VAULT_HOME", "/s"),
            ("AGENT_VAULT_SOCKET", "/x.sock"),
            ("XDG_RUNTIME_DIR", "/run/user/1"),
            ("HOME", "/h"),
        ]);
        assert_eq!(state_dir_with(&env).ok(), Some(PathBuf::from("/s")));
        assert_eq!(socket_path_with(&env).ok(), Some(PathBuf::from("/x.sock")));
    }

    #[test]
    fn home_puts_the_socket_beside_the_state() {
        let env = env_of(&[("AGENT_VAULT_HOME", "/s"), ("XDG_RUNTIME_DIR", "/run")]);
        assert_eq!(
            socket_path_with(&env).ok(),
            Some(PathBuf::from("/s/agent-vault.sock"))
        );
    }

    #[test]
    fn runtime_dir_then_state_dir() {
        let env = env_of(&[("XDG_RUNTIME_DIR", "/run/user/7"), ("HOME", "/h")]);
        assert_eq!(
            socket_path_with(&env).ok(),
            Some(PathBuf::from("/run/user/7/agent-vault/agent-vault.sock"))
        );
        let env = env_of(&[("HOME", "/h")]);
        if !cfg!(target_os = "macos") {
            assert_eq!(
                socket_path_with(&env).ok(),
                Some(PathBuf::from(
                    "/h/.local/state/agent-vault/agent-vault.sock"
                ))
            );
        }
        assert!(state_dir_with(&env_of(&[])).is_err());
    }
}
