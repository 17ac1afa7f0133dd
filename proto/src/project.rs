//! Finding a project's config file, shared by the daemon and the shim.
//!
//! The search order is the prototype's: `AGENT_VAULT_CONFIG`, then
//! `./agent-vault.config.json`, then `~/.agent-vault.config.json`.

use std::path::{Path, PathBuf};

use crate::paths::EnvFn;

pub const CONFIG_FILE_NAME: &str = "agent-vault.config.json";

/// The first config file in the search order that exists, made absolute.
pub fn find_config(env: EnvFn<'_>, cwd: &Path) -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Some(p) = env("AGENT_VAULT_CONFIG") {
        let p = PathBuf::from(p);
        // An explicit setting is used even if missing, so the error names it.
        return Some(if p.is_absolute() { p } else { cwd.join(p) });
    }
    candidates.push(cwd.join(CONFIG_FILE_NAME));
    if let Some(home) = env("HOME") {
        candidates.push(PathBuf::from(home).join(".agent-vault.config.json"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The names of every `"env:NAME"` string anywhere in a config's JSON. The
/// shim sends the values of these, from its own environment, to the daemon.
pub fn referenced_env_names(text: &str) -> Vec<String> {
    fn walk(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::String(s) => {
                if let Some(name) = s.strip_prefix("env:")
                    && !name.is_empty()
                    && !out.iter().any(|n| n == name)
                {
                    out.push(name.to_string());
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(o) => o.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::from_str::<serde_json::Value>(text) {
        walk(&v, &mut out);
    }
    out.sort();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_env_references_anywhere() {
        let text = r#"{"vaults":{"a":{"type":"1password","serviceAccountToken":"env:OP"}},
            "ngrokAuthToken":"env:NGROK_AUTHTOKEN","webhooks":[{"url":"x","authorization":"env:OP"}]}"#;
        assert_eq!(referenced_env_names(text), vec!["NGROK_AUTHTOKEN", "OP"]);
        assert!(referenced_env_names("not json").is_empty());
    }
}
