//! Finding a project's config file, shared by the daemon and the shim.
//!
//! The search order is the prototype's: `AGENT_VAULT_CONFIG`, then
//! `./agent-vault.config.json`, then `~/.agent-vault.config.json`; then
//! `$XDG_CONFIG_HOME/agent-vault/config.json` (default
//! `~/.config/agent-vault/config.json`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::paths::EnvFn;

pub const CONFIG_FILE_NAME: &str = "agent-vault.config.json";

/// A vault's name as a config may give it: 1 to 64 letters, digits, `_`,
/// `-` or `.`.
pub fn valid_vault_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

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
    if let Some(dir) = crate::paths::config_home_with(env) {
        candidates.push(dir.join("agent-vault/config.json"));
    }
    candidates.into_iter().find(|p| p.is_file())
}

/// The project config for a session whose MCP client named `roots` (its
/// workspace folders): `AGENT_VAULT_CONFIG`, then the working directory's
/// file, then the first root holding one, then the user-wide files. A
/// client may start its servers in `/` or the home directory; its roots
/// say where the project is.
pub fn find_config_with_roots(env: EnvFn<'_>, cwd: &Path, roots: &[PathBuf]) -> Option<PathBuf> {
    if env("AGENT_VAULT_CONFIG").is_some() || cwd.join(CONFIG_FILE_NAME).is_file() {
        return find_config(env, cwd);
    }
    roots
        .iter()
        .filter(|r| r.is_absolute())
        .map(|r| r.join(CONFIG_FILE_NAME))
        .find(|p| p.is_file())
        .or_else(|| find_config(env, cwd))
}

/// The prototype's set-up without a config file: `AGENT_VAULT_PROVIDER`
/// (`env` or `1password`) in the MCP server's environment gives the
/// session one vault, "default", with `AGENT_VAULT_ENV_FILE` (default
/// `./.env.secrets`), or `OP_SERVICE_ACCOUNT_TOKEN` and
/// `AGENT_VAULT_1P_VAULTS` (comma-separated vault ids), and
/// `AGENT_VAULT_TTL_MINUTES`. Returns the config's text and the path it
/// is known by (it names its origin; no such file exists), or `None`
/// when `AGENT_VAULT_PROVIDER` is not set.
pub fn config_from_env(env: EnvFn<'_>, cwd: &Path) -> Option<Result<(PathBuf, String), String>> {
    let var = |k: &str| env(k).map(|v| v.to_string_lossy().trim().to_string());
    let provider = var("AGENT_VAULT_PROVIDER").filter(|p| !p.is_empty())?;
    let ttl = match var("AGENT_VAULT_TTL_MINUTES").filter(|t| !t.is_empty()) {
        None => 0.0,
        Some(t) => match t.parse::<f64>() {
            Ok(m) if m.is_finite() && m >= 0.0 => m,
            _ => {
                return Some(Err(format!(
                    "AGENT_VAULT_TTL_MINUTES is \"{t}\"; expected a number of minutes (0 means always ask)"
                )));
            }
        },
    };
    let vault = match provider.as_str() {
        "env" => {
            let file = var("AGENT_VAULT_ENV_FILE")
                .filter(|f| !f.is_empty())
                .unwrap_or_else(|| ".env.secrets".into());
            serde_json::json!({"type": "env", "file": cwd.join(file), "ttl": ttl})
        }
        "1password" => {
            let vault_ids: Vec<String> = var("AGENT_VAULT_1P_VAULTS")
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(String::from)
                .collect();
            serde_json::json!({
                "type": "1password",
                "serviceAccountToken": "env:OP_SERVICE_ACCOUNT_TOKEN",
                "vaultIds": vault_ids,
                "ttl": ttl,
            })
        }
        other => {
            return Some(Err(format!(
                "AGENT_VAULT_PROVIDER is \"{other}\"; expected \"env\" or \"1password\" (or write an agent-vault.config.json)"
            )));
        }
    };
    let text = serde_json::json!({"vaults": {"default": vault}}).to_string();
    let path = cwd.join(format!("(environment: AGENT_VAULT_PROVIDER={provider})"));
    Some(Ok((path, text)))
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
    if let Ok(v) = crate::jsonc::parse(text) {
        walk(&v, &mut out);
    }
    out.sort();
    out
}

/// The project config a client (the shim, `agent-vault run`) registers,
/// read with the caller's own rights (the daemon never opens it): found
/// from `cwd` and the MCP client's `roots` ([`find_config_with_roots`]), its path made absolute with every link resolved, its text,
/// and the values of the env: names it references, from the caller's
/// environment.
pub struct Registration {
    pub path: String,
    pub text: String,
    pub env: HashMap<String, String>,
}

pub fn registration(cwd: &Path, roots: &[PathBuf]) -> Result<Registration, String> {
    let env_of = |text: &str| {
        referenced_env_names(text)
            .into_iter()
            .filter_map(|name| std::env::var(&name).ok().map(|v| (name, v)))
            .collect()
    };
    let process_env = &crate::paths::process_env;
    let Some(found) = find_config_with_roots(process_env, cwd, roots) else {
        // The prototype's set-up by environment variables, if any.
        return match config_from_env(process_env, cwd) {
            None => Ok(Registration {
                path: String::new(),
                text: String::new(),
                env: HashMap::new(),
            }),
            Some(Err(why)) => Err(why),
            Some(Ok((path, text))) => Ok(Registration {
                path: path.display().to_string(),
                env: env_of(&text),
                text,
            }),
        };
    };
    let cannot = |e: std::io::Error| {
        format!(
            "cannot read the project config {}: {e}. Make it readable by this user, or point AGENT_VAULT_CONFIG at another file.",
            found.display()
        )
    };
    let path = std::fs::canonicalize(&found).map_err(cannot)?;
    let text = std::fs::read_to_string(&path).map_err(cannot)?;
    let env = env_of(&text);
    Ok(Registration {
        path: path.display().to_string(),
        text,
        env,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_order_ends_in_the_xdg_config_directory() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("av-find-{}", std::process::id()));
        let (home, cwd) = (dir.join("home"), dir.join("project"));
        std::fs::create_dir_all(home.join(".config/agent-vault"))?;
        std::fs::create_dir_all(&cwd)?;
        let xdg = home.join(".config/agent-vault/config.json");
        std::fs::write(&xdg, "{}")?;
        let home_var = home.clone().into_os_string();
        let env = move |k: &str| (k == "HOME").then(|| home_var.clone());
        assert_eq!(find_config(&env, &cwd), Some(xdg));
        let dotfile = home.join(".agent-vault.config.json");
        std::fs::write(&dotfile, "{}")?;
        assert_eq!(find_config(&env, &cwd), Some(dotfile));
        std::fs::write(cwd.join(CONFIG_FILE_NAME), "{}")?;
        assert_eq!(find_config(&env, &cwd), Some(cwd.join(CONFIG_FILE_NAME)));
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn a_clients_root_comes_after_the_working_directory_and_before_home() -> std::io::Result<()> {
        let dir = std::env::temp_dir().join(format!("av-roots-{}", std::process::id()));
        let (home, root, other) = (dir.join("home"), dir.join("root"), dir.join("other"));
        for d in [&home, &root, &other] {
            std::fs::create_dir_all(d)?;
        }
        let dotfile = home.join(".agent-vault.config.json");
        std::fs::write(&dotfile, "{}")?;
        let home_var = home.clone().into_os_string();
        let env = move |k: &str| (k == "HOME").then(|| home_var.clone());
        let roots = [PathBuf::from("relative"), other.clone(), root.clone()];
        // No root holds one: the user's.
        assert_eq!(find_config_with_roots(&env, &home, &roots), Some(dotfile));
        // The first root that holds one, though started in the home directory.
        std::fs::write(root.join(CONFIG_FILE_NAME), "{}")?;
        assert_eq!(
            find_config_with_roots(&env, &home, &roots),
            Some(root.join(CONFIG_FILE_NAME))
        );
        // The working directory's own comes first.
        std::fs::write(other.join(CONFIG_FILE_NAME), "{}")?;
        assert_eq!(
            find_config_with_roots(&env, &root, &roots),
            Some(root.join(CONFIG_FILE_NAME))
        );
        std::fs::remove_dir_all(&dir)
    }

    #[test]
    fn finds_env_references_anywhere() {
        let text = r#"{"vaults":{"a":{"type":"1password","serviceAccountToken":"env:OP"}},
            "ngrokAuthToken":"env:NGROK_AUTHTOKEN","webhooks":[{"url":"x","authorization":"env:OP"}]}"#;
        assert_eq!(referenced_env_names(text), vec!["NGROK_AUTHTOKEN", "OP"]);
        assert!(referenced_env_names("not json").is_empty());
    }

    #[test]
    fn the_prototypes_environment_set_up_gives_one_vault() {
        let cwd = Path::new("/work/app");
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| std::ffi::OsString::from(v))
            }
        };
        assert!(config_from_env(&vars(&[]), cwd).is_none());
        let env = vars(&[
            ("AGENT_VAULT_PROVIDER", "env"),
            ("AGENT_VAULT_TTL_MINUTES", "5"),
        ]);
        let Some(Ok((path, text))) = config_from_env(&env, cwd) else {
            panic!("no config");
        };
        assert!(path.starts_with(cwd) && path.is_absolute());
        let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
        assert_eq!(v["vaults"]["default"]["file"], "/work/app/.env.secrets");
        assert_eq!(v["vaults"]["default"]["ttl"], 5.0);
        let env = vars(&[
            ("AGENT_VAULT_PROVIDER", "1password"),
            ("AGENT_VAULT_1P_VAULTS", "a1, b2,"),
        ]);
        let Some(Ok((_, text))) = config_from_env(&env, cwd) else {
            panic!("no config");
        };
        assert_eq!(
            referenced_env_names(&text),
            vec!["OP_SERVICE_ACCOUNT_TOKEN"]
        );
        assert!(text.contains(r#""vaultIds":["a1","b2"]"#), "{text}");
        let bad = vars(&[("AGENT_VAULT_PROVIDER", "vault")]);
        assert!(
            matches!(config_from_env(&bad, cwd), Some(Err(e)) if e.contains("expected \"env\" or \"1password\""))
        );
    }
}
