//! `agent-vault config check [FILE]`: is a config valid, and is every
//! `env:` reference in it set? The check is agent-vaultd's own
//! (`agent-vaultd --check-config`), so it reads the file exactly as the
//! daemon will.

use std::path::{Path, PathBuf};

use anyhow::Context;
use serde_json::Value;

use crate::output::Out;

/// The daemon's report on `file` (or on the config the search finds from
/// this directory). Errors only when agent-vaultd cannot be run.
pub fn check(file: Option<&Path>) -> anyhow::Result<Value> {
    let daemon = agent_vault_proto::paths::sibling_program("agent-vaultd");
    let mut command = std::process::Command::new(&daemon);
    command.arg("--check-config");
    if let Some(f) = file {
        command.arg("--config").arg(f);
    }
    let output = command.output().with_context(|| {
        format!(
            "cannot run {} to check the config; install it beside agent-vault or on PATH",
            daemon.display()
        )
    })?;
    serde_json::from_slice(&output.stdout).with_context(|| {
        format!(
            "{} --check-config answered unexpectedly ({}): {}",
            daemon.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        )
    })
}

/// The config's name and what was found, for a person.
pub fn summary(report: &Value) -> String {
    let vaults: Vec<String> = report["vaults"]
        .as_array()
        .map(|v| {
            v.iter()
                .map(|v| format!("{} ({})", text(&v["name"]), text(&v["type"])))
                .collect()
        })
        .unwrap_or_default();
    let mut parts = vec![if vaults.is_empty() {
        "no vaults".to_string()
    } else {
        format!("vaults {}", vaults.join(", "))
    }];
    if let Some(n) = report["webhooks"].as_u64().filter(|n| *n > 0) {
        parts.push(format!("{n} webhook{}", if n == 1 { "" } else { "s" }));
    }
    if let Some(port) = report["port"].as_u64() {
        parts.push(format!("port {port}"));
    }
    parts.join(", ")
}

pub fn text(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

pub fn run(out: Out, file: Option<PathBuf>) -> anyhow::Result<bool> {
    let report = check(file.as_deref())?;
    let ok = report["ok"].as_bool().unwrap_or(false);
    out.emit(report.clone(), || {
        let name = match report["file"].as_str() {
            Some(f) => f.to_string(),
            None => {
                println!(
                    "No config file found from here: agent-vaultd will write its offline defaults (one env vault, \"local\") to its state directory. `agent-vault init` writes one for this project."
                );
                return;
            }
        };
        if ok {
            println!("{name}: valid; {}", summary(&report));
        }
        for p in report["problems"].as_array().into_iter().flatten() {
            println!("{}", text(&p["what"]));
            println!("  fix: {}", text(&p["fix"]));
        }
        if let Some(why) = report["asProject"].as_str() {
            println!(
                "As a project's config (when agent-vaultd runs with another file as its own) it would be refused: {why}"
            );
        }
    });
    Ok(ok)
}
