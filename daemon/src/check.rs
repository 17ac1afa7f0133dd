//! `agent-vaultd --check-config`: reads a config as the daemon would (the
//! given file, or the one the search finds from here) and says whether it
//! is valid and every `env:` reference it makes is set, without starting
//! anything. `agent-vault config check` and `agent-vault doctor` run it and
//! word its answer; it prints JSON (camelCase keys) for them.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{self, ProjectFloor};

/// What the check found.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The file read; `None` when the search found none.
    pub file: Option<PathBuf>,
    /// "given" (`--config`), "searched", "stateDir" (none found: the one
    /// the daemon wrote to its state directory), or "none" (the daemon
    /// would write its offline defaults there).
    pub source: &'static str,
    /// Valid, and every reference set.
    pub ok: bool,
    pub problems: Vec<Problem>,
    /// What would stop it being used as a project's config (when
    /// agent-vaultd runs with another file as its own).
    pub as_project: Option<String>,
    pub vaults: Vec<VaultLine>,
    pub webhooks: usize,
    pub port: Option<u16>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    pub what: String,
    pub fix: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct VaultLine {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
}

/// Checks `given`, or the config the search finds from `cwd`.
pub fn run(given: Option<&Path>, cwd: &Path) -> Report {
    let (file, source) = match given {
        Some(p) => (Some(cwd.join(p)), "given"),
        None => match config::find_config(&agent_vault_proto::paths::process_env, cwd) {
            Some(p) => (Some(p), "searched"),
            // The daemon then uses (or first writes) the state directory's.
            None => match agent_vault_proto::paths::state_dir()
                .map(|d| d.join("agent-vault.config.json"))
            {
                Ok(p) if p.exists() => (Some(p), "stateDir"),
                _ => (None, "none"),
            },
        },
    };
    let mut report = Report {
        file: file.clone(),
        source,
        ok: true,
        problems: Vec::new(),
        as_project: None,
        vaults: Vec::new(),
        webhooks: 0,
        port: None,
    };
    let Some(file) = file else {
        return report;
    };
    // Every variable an `env:` reference names and this environment lacks.
    let unset = RefCell::new(Vec::<String>::new());
    let env = |name: &str| {
        let value = std::env::var(name).ok().filter(|v| !v.is_empty());
        if value.is_none() {
            unset.borrow_mut().push(name.to_string());
        }
        value
    };
    match config::load_config(&file, &env) {
        Ok(c) => {
            report.vaults = c
                .vaults
                .values()
                .map(|v| VaultLine {
                    name: v.name.clone(),
                    kind: v.settings.kind(),
                })
                .collect();
            report.webhooks = c.webhooks.len();
            report.port = c.port;
            let mut project = c.clone();
            report.as_project = config::restrict_project(&mut project, &ProjectFloor::default())
                .err()
                .map(|e| e.to_string());
        }
        Err(e) => report.problems.push(Problem {
            what: e.to_string(),
            fix: match e {
                config::ConfigError::Read { .. } => {
                    "check the path and that this user can read it".into()
                }
                config::ConfigError::Invalid { .. } => {
                    "correct that setting (the README's Configuration section lists them)".into()
                }
            },
        }),
    }
    let mut unset = unset.into_inner();
    unset.sort();
    unset.dedup();
    for name in unset {
        report.problems.push(Problem {
            what: format!(
                "{}: refers to env:{name}, which is not set here",
                file.display()
            ),
            fix: format!(
                "set {name} in the environment agent-vaultd starts with (a shell's export, the service's Environment=), or write a file: reference"
            ),
        });
    }
    report.ok = report.problems.is_empty();
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_typo_and_an_unset_reference_are_problems() -> std::io::Result<()> {
        let dir = tempfile::tempdir()?;
        let file = dir.path().join("agent-vault.config.json");
        std::fs::write(
            &file,
            r#"{ // comments are fine
              "vaults": {"dev": {"type": "env", "file": ".env.secrets"}},
              "webhooks": [{"url": "https://example.com/h", "authorization": "env:AGENT_VAULT_CHECK_UNSET_1"}]
            }"#,
        )?;
        let r = run(Some(&file), dir.path());
        assert!(!r.ok);
        assert_eq!(r.vaults.len(), 1);
        assert_eq!(r.webhooks, 1);
        assert_eq!(r.problems.len(), 1);
        assert!(r.problems[0].what.contains("env:AGENT_VAULT_CHECK_UNSET_1"));

        std::fs::write(&file, r#"{"vaults": {"dev": {"type": "env", "tll": 5}}}"#)?;
        let r = run(Some(&file), dir.path());
        assert!(!r.ok);
        assert!(r.problems[0].what.contains("did you mean"), "{r:?}");

        std::fs::write(&file, r#"{"vaults": {"dev": {"type": "env"}}}"#)?;
        let r = run(Some(&file), dir.path());
        assert!(r.ok, "{r:?}");
        assert_eq!(r.source, "given");
        Ok(())
    }
}
