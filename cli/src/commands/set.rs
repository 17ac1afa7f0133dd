//! `agent-vault set VAULT/NAME` and `agent-vault add VAULT/NAME`: put a
//! secret into an env vault from the terminal, the value read from stdin
//! (without echo on a terminal), so nobody has to find the file.
//!
//! The file is written with the caller's own rights, as an editor would:
//! nothing an agent running as the same user could not do to its own file,
//! so no approval is asked. Vaults of other types are written with their
//! own tools (1Password, Vault, ...), which hold their own credentials.

use std::io::{IsTerminal, Read};
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use agent_vault_proto::{dotenv, jsonc, project};

use crate::output::Out;

/// Where a vault's values live, found as the shim and daemon find it.
struct EnvVault {
    config: PathBuf,
    file: PathBuf,
}

/// The vault named `vault` in the project config found from here (as the
/// shim finds it), else in agent-vaultd's default config in its state
/// directory.
fn find_vault(vault: &str) -> anyhow::Result<EnvVault> {
    let cwd = std::env::current_dir().context("the current directory is not readable")?;
    let mut searched = Vec::new();
    let candidates = [
        project::find_config(&agent_vault_proto::paths::process_env, &cwd),
        agent_vault_proto::paths::state_dir()
            .ok()
            .map(|d| d.join(project::CONFIG_FILE_NAME)),
    ];
    for config in candidates.into_iter().flatten() {
        let Some(text) = crate::files::read_if_exists(&config)? else {
            continue;
        };
        let v =
            jsonc::parse(&text).map_err(|why| anyhow::anyhow!("{}: {why}", config.display()))?;
        searched.push(config.display().to_string());
        let Some(entry) = v["vaults"].get(vault) else {
            continue;
        };
        let kind = entry["type"].as_str().unwrap_or_default();
        if kind != "env" {
            bail!(
                "vault \"{vault}\" ({}) is a {kind} vault: add the secret with {kind}'s own tool; agent-vault set writes env vaults",
                config.display()
            );
        }
        let file = entry["file"].as_str().unwrap_or_default();
        if file.is_empty() {
            bail!("{}: vaults.{vault}.file is not set", config.display());
        }
        let dir = config.parent().unwrap_or(Path::new("/"));
        return Ok(EnvVault {
            file: dir.join(file),
            config,
        });
    }
    if searched.is_empty() {
        bail!(
            "no config found (./{}, ~/.agent-vault.config.json, or agent-vaultd's in its state directory); create one with `agent-vault init`",
            project::CONFIG_FILE_NAME
        );
    }
    bail!("no vault \"{vault}\" in {}", searched.join(" or "))
}

/// The value: typed without echo on a terminal, else all of stdin less one
/// final newline.
fn read_value(name: &str) -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let mut value = Zeroizing::new(String::new());
    if stdin.is_terminal() {
        eprint!("Value for {name} (not shown): ");
        let typed = without_echo(|| stdin.read_line(&mut value));
        eprintln!();
        typed.context("could not read the value")?;
    } else {
        stdin
            .lock()
            .read_to_string(&mut value)
            .context("could not read the value from stdin (it must be UTF-8 text)")?;
    }
    let trimmed = value.strip_suffix('\n').unwrap_or(&value);
    let trimmed = trimmed.strip_suffix('\r').unwrap_or(trimmed);
    if trimmed.is_empty() {
        bail!("the value is empty; nothing was written");
    }
    Ok(Zeroizing::new(trimmed.to_string()))
}

/// Runs `read` with the terminal's echo off, and turns it back on.
fn without_echo<T>(read: impl FnOnce() -> T) -> T {
    use nix::sys::termios::{LocalFlags, SetArg, tcgetattr, tcsetattr};
    let stdin = std::io::stdin();
    let saved = tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, &quiet);
    }
    let out = read();
    if let Some(saved) = &saved {
        let _ = tcsetattr(&stdin, SetArg::TCSANOW, saved);
    }
    out
}

/// `set` (create or change) or, with `only_new`, `add` (refused when the
/// name exists).
pub fn run(out: Out, target: &str, only_new: bool) -> anyhow::Result<()> {
    let Some((vault, name)) = target.split_once('/') else {
        bail!("expected VAULT/NAME, such as local/DATABASE_URL");
    };
    if !dotenv::valid_key(name) {
        bail!(
            "\"{name}\" cannot be a name in an env file: use letters, digits and '_', not starting with a digit"
        );
    }
    let found = find_vault(vault)?;
    let old = crate::files::read_if_exists(&found.file)?.map(Zeroizing::new);
    let current = old.as_deref().map_or("", String::as_str);
    let existed = dotenv::get(current, name).is_some();
    if only_new && existed {
        bail!(
            "{vault}/{name} already exists in {}; use `agent-vault set {vault}/{name}` to change it",
            found.file.display()
        );
    }
    let value = read_value(name)?;
    let new = Zeroizing::new(dotenv::set(current, name, &value)?);
    crate::files::write_atomically(&found.file, &new, crate::files::PRIVATE)?;
    let what = if existed { "changed" } else { "added" };
    out.emit(
        serde_json::json!({"vault": vault, "name": name, "result": what,
            "file": found.file, "config": found.config}),
        || {
            println!(
                "{} {vault}/{name} in {}",
                capital(what),
                found.file.display()
            );
            warn_if_readable(&found.file);
        },
    );
    Ok(())
}

fn capital(word: &str) -> String {
    let mut c = word.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

fn warn_if_readable(file: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(m) = std::fs::metadata(file)
        && m.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "Other users can read {} (mode {:04o}): run `chmod 600 {}`",
            file.display(),
            m.permissions().mode() & 0o7777,
            file.display()
        );
    }
}
