//! The MCP clients agent-vault-mcp is added to: where each keeps its
//! servers, in which format, and the edit that adds or removes our entry
//! while every other byte of the file stays as it was (comments included:
//! VS Code's and Zed's files are JSONC; Codex's is TOML).
//!
//! From each vendor's public documentation:
//! - Claude Code: `~/.claude.json` (user) or `.mcp.json` (project),
//!   `mcpServers.NAME = {type: "stdio", command, args, env}`.
//! - Claude Desktop: `claude_desktop_config.json` in its application
//!   directory, `mcpServers.NAME = {command, args}`; no project scope.
//! - Cursor: `~/.cursor/mcp.json` or `.cursor/mcp.json`, `mcpServers`.
//! - Windsurf: `~/.codeium/windsurf/mcp_config.json`, `mcpServers`; no
//!   project scope.
//! - Codex: `$CODEX_HOME/config.toml` (default `~/.codex`) or, for a
//!   trusted project, `.codex/config.toml`, `[mcp_servers.NAME]`.
//! - VS Code: `mcp.json` in the user profile or `.vscode/mcp.json`,
//!   `servers.NAME = {type: "stdio", command, args}`.
//! - Zed: `~/.config/zed/settings.json` or `.zed/settings.json`,
//!   `context_servers.NAME = {command, args}`.

use std::path::{Path, PathBuf};

use jsonc_parser::cst::{CstInputValue, CstRootNode};

/// The name of our entry in every client's list.
pub const ENTRY: &str = "agent-vault";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Client {
    ClaudeCode,
    ClaudeDesktop,
    Cursor,
    Windsurf,
    Codex,
    Vscode,
    Zed,
}

/// This user's home and configuration directories, where clients keep
/// their user-wide files.
pub struct UserDirs {
    pub home: PathBuf,
    pub config_home: PathBuf,
}

impl UserDirs {
    /// From `HOME` and `XDG_CONFIG_HOME`; `None` without a home.
    pub fn from_env() -> Option<Self> {
        let env = &agent_vault_proto::paths::process_env;
        Some(Self {
            home: env("HOME").map(PathBuf::from)?,
            config_home: agent_vault_proto::paths::config_home_with(env)?,
        })
    }

    pub fn scope(&self) -> Scope<'_> {
        Scope::User {
            home: &self.home,
            config_home: &self.config_home,
        }
    }
}

/// Where a client's file is: the user's, or the project's (relative to
/// the project directory).
pub enum Scope<'a> {
    User {
        home: &'a Path,
        config_home: &'a Path,
    },
    Project(&'a Path),
}

impl Client {
    pub fn name(self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::ClaudeDesktop => "claude-desktop",
            Client::Cursor => "cursor",
            Client::Windsurf => "windsurf",
            Client::Codex => "codex",
            Client::Vscode => "vscode",
            Client::Zed => "zed",
        }
    }

    /// The file this client reads its servers from, or why there is none
    /// for the scope asked.
    pub fn file(self, scope: &Scope<'_>) -> Result<PathBuf, String> {
        let mac = cfg!(target_os = "macos");
        match scope {
            Scope::User { home, config_home } => Ok(match self {
                Client::ClaudeCode => home.join(".claude.json"),
                Client::ClaudeDesktop if mac => {
                    home.join("Library/Application Support/Claude/claude_desktop_config.json")
                }
                Client::ClaudeDesktop => config_home.join("Claude/claude_desktop_config.json"),
                Client::Cursor => home.join(".cursor/mcp.json"),
                Client::Windsurf => home.join(".codeium/windsurf/mcp_config.json"),
                Client::Codex => std::env::var_os("CODEX_HOME")
                    .map_or_else(|| home.join(".codex"), PathBuf::from)
                    .join("config.toml"),
                Client::Vscode if mac => {
                    home.join("Library/Application Support/Code/User/mcp.json")
                }
                Client::Vscode => config_home.join("Code/User/mcp.json"),
                Client::Zed => config_home.join("zed/settings.json"),
            }),
            Scope::Project(dir) => match self {
                Client::ClaudeCode => Ok(dir.join(".mcp.json")),
                Client::Cursor => Ok(dir.join(".cursor/mcp.json")),
                Client::Codex => Ok(dir.join(".codex/config.toml")),
                Client::Vscode => Ok(dir.join(".vscode/mcp.json")),
                Client::Zed => Ok(dir.join(".zed/settings.json")),
                Client::ClaudeDesktop | Client::Windsurf => Err(format!(
                    "{} has no project configuration; leave out --project to add agent-vault for this user",
                    self.name()
                )),
            },
        }
    }

    fn toml(self) -> bool {
        self == Client::Codex
    }

    /// The key under which this client lists its servers.
    fn servers_key(self) -> &'static str {
        match self {
            Client::Codex => "mcp_servers",
            Client::Vscode => "servers",
            Client::Zed => "context_servers",
            _ => "mcpServers",
        }
    }

    /// Our entry, in this client's shape, its fields in the order the
    /// client's documentation writes them.
    pub fn entry(self, command: &str) -> Vec<(&'static str, serde_json::Value)> {
        let mut fields = Vec::new();
        if matches!(self, Client::ClaudeCode | Client::Vscode) {
            fields.push(("type", serde_json::json!("stdio")));
        }
        fields.push(("command", serde_json::json!(command)));
        fields.push(("args", serde_json::json!([])));
        if self == Client::ClaudeCode {
            fields.push(("env", serde_json::json!({})));
        }
        fields
    }

    /// What to paste, for a person who prefers to edit the file.
    pub fn snippet(self, command: &str) -> String {
        if self.toml() {
            let mut doc = toml_edit::DocumentMut::new();
            doc["mcp_servers"][ENTRY]["command"] = toml_edit::value(command);
            doc["mcp_servers"][ENTRY]["args"] = toml_edit::value(toml_edit::Array::new());
            return doc.to_string();
        }
        self.install("", command, &[]).unwrap_or_default()
    }

    /// The names of entries that run the prototype (`npx … agent-vault`).
    pub fn prototype_entries(self, text: &str) -> Result<Vec<String>, String> {
        let servers: Vec<(String, serde_json::Value)> = if self.toml() {
            let doc: toml_edit::DocumentMut = text.parse().map_err(|e| toml_error(&e))?;
            let Some(table) = doc.get("mcp_servers").and_then(|t| t.as_table_like()) else {
                return Ok(Vec::new());
            };
            table
                .iter()
                .map(|(name, item)| {
                    let field = |k: &str| {
                        item.get(k)
                            .map(|v| v.to_string().trim().trim_matches('"').to_string())
                    };
                    (
                        name.to_string(),
                        serde_json::json!({"command": field("command"), "args": field("args")}),
                    )
                })
                .collect()
        } else {
            let v = parse_json(text)?;
            v.get(self.servers_key())
                .and_then(|s| s.as_object())
                .map(|o| o.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
                .unwrap_or_default()
        };
        Ok(servers
            .into_iter()
            .filter(|(_, entry)| {
                let command = entry["command"].to_string();
                let args = entry["args"].to_string();
                command.contains("npx") && args.contains("agent-vault")
                    || command.contains("npx agent-vault")
            })
            .map(|(name, _)| name)
            .collect())
    }

    /// `text` with our entry added (or replaced), and the entries named in
    /// `remove` removed; everything else kept byte for byte.
    pub fn install(self, text: &str, command: &str, remove: &[String]) -> Result<String, String> {
        if self.toml() {
            let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| toml_error(&e))?;
            let servers = doc
                .entry("mcp_servers")
                .or_insert_with(|| {
                    let mut t = toml_edit::Table::new();
                    t.set_implicit(true);
                    toml_edit::Item::Table(t)
                })
                .as_table_like_mut()
                .ok_or("\"mcp_servers\" is not a table; fix the file first")?;
            for name in remove {
                servers.remove(name);
            }
            let mut ours = toml_edit::Table::new();
            ours["command"] = toml_edit::value(command);
            ours["args"] = toml_edit::value(toml_edit::Array::new());
            servers.insert(ENTRY, toml_edit::Item::Table(ours));
            return Ok(doc.to_string());
        }
        let root = parse_cst(text)?;
        let top = root
            .object_value()
            .or_else(|| text.trim().is_empty().then(|| root.object_value_or_set()))
            .ok_or("the file does not hold a JSON object; fix it first")?;
        let servers = top
            .object_value_or_create(self.servers_key())
            .ok_or_else(|| {
                format!(
                    "\"{}\" is not an object; fix the file first",
                    self.servers_key()
                )
            })?;
        for name in remove {
            if let Some(p) = servers.get(name) {
                p.remove();
            }
        }
        let value = CstInputValue::Object(
            self.entry(command)
                .iter()
                .map(|(k, v)| (k.to_string(), input(v)))
                .collect(),
        );
        match servers.get(ENTRY) {
            Some(p) => p.set_value(value),
            None => {
                servers.append(ENTRY, value);
            }
        }
        Ok(root.to_string())
    }

    /// The command our entry runs, if the file has our entry.
    pub fn our_command(self, text: &str) -> Result<Option<String>, String> {
        if self.toml() {
            let doc: toml_edit::DocumentMut = text.parse().map_err(|e| toml_error(&e))?;
            let entry = doc.get("mcp_servers").and_then(|t| t.get(ENTRY));
            return Ok(entry.map(|e| {
                e.get("command")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default()
                    .to_string()
            }));
        }
        let v = parse_json(text)?;
        Ok(v.get(self.servers_key())
            .and_then(|s| s.get(ENTRY))
            .map(|e| {
                e.get("command")
                    .and_then(|c| c.as_str())
                    .unwrap_or_default()
                    .to_string()
            }))
    }

    /// `text` without our entry (the rest byte for byte); `None` when it
    /// has none.
    pub fn uninstall(self, text: &str) -> Result<Option<String>, String> {
        if self.toml() {
            let mut doc: toml_edit::DocumentMut = text.parse().map_err(|e| toml_error(&e))?;
            let removed = doc
                .get_mut("mcp_servers")
                .and_then(|t| t.as_table_like_mut())
                .and_then(|t| t.remove(ENTRY));
            return Ok(removed.map(|_| doc.to_string()));
        }
        let root = parse_cst(text)?;
        let Some(prop) = root
            .object_value()
            .and_then(|o| o.object_value(self.servers_key()))
            .and_then(|s| s.get(ENTRY))
        else {
            return Ok(None);
        };
        prop.remove();
        Ok(Some(root.to_string()))
    }
}

fn toml_error(e: &toml_edit::TomlError) -> String {
    format!("not valid TOML: {}", e.message())
}

fn parse_json(text: &str) -> Result<serde_json::Value, String> {
    if text.trim().is_empty() {
        return Ok(serde_json::json!({}));
    }
    agent_vault_proto::jsonc::parse(text)
}

fn parse_cst(text: &str) -> Result<CstRootNode, String> {
    // The same JSONC the clients write (comments, trailing commas).
    parse_json(text)?;
    CstRootNode::parse(text, &jsonc_parser::ParseOptions::default())
        .map_err(|e| format!("not valid JSON: {e}"))
}

fn input(v: &serde_json::Value) -> CstInputValue {
    match v {
        serde_json::Value::Null => CstInputValue::Null,
        serde_json::Value::Bool(b) => CstInputValue::Bool(*b),
        serde_json::Value::Number(n) => CstInputValue::Number(n.to_string()),
        serde_json::Value::String(s) => CstInputValue::String(s.clone()),
        serde_json::Value::Array(a) => CstInputValue::Array(a.iter().map(input).collect()),
        serde_json::Value::Object(o) => {
            CstInputValue::Object(o.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CMD: &str = "/opt/bin/agent-vault-mcp";

    #[test]
    fn installing_keeps_every_other_byte_and_uninstalling_restores_them() {
        let json = "{\n  // my servers\n  \"theme\": \"dark\",\n  \"mcpServers\": {\n    \"other\": { \"command\": \"x\" }, // keep me\n  },\n  \"zeta\": [1, 2]\n}\n";
        for client in [
            Client::ClaudeCode,
            Client::Cursor,
            Client::ClaudeDesktop,
            Client::Windsurf,
        ] {
            let installed = client.install(json, CMD, &[]).unwrap_or_default();
            assert!(installed.contains("// my servers") && installed.contains("// keep me"));
            assert!(
                installed.contains("\"theme\": \"dark\",")
                    && installed.contains("\"zeta\": [1, 2]")
            );
            let v = agent_vault_proto::jsonc::parse(&installed).unwrap_or_default();
            assert_eq!(
                v["mcpServers"]["agent-vault"]["command"], CMD,
                "{installed}"
            );
            assert_eq!(v["mcpServers"]["other"]["command"], "x");
            // Installing again changes nothing.
            assert_eq!(
                client.install(&installed, CMD, &[]).as_deref(),
                Ok(installed.as_str())
            );
            let removed = client
                .uninstall(&installed)
                .unwrap_or_default()
                .unwrap_or_default();
            let v2 = agent_vault_proto::jsonc::parse(&removed).unwrap_or_default();
            assert_eq!(
                v2,
                agent_vault_proto::jsonc::parse(json).unwrap_or_default()
            );
            assert!(removed.contains("// my servers") && removed.contains("// keep me"));
            assert_eq!(client.uninstall(&removed), Ok(None));
        }
    }

    #[test]
    fn each_client_gets_its_own_shape() {
        let vscode = Client::Vscode.install("", CMD, &[]).unwrap_or_default();
        let v = agent_vault_proto::jsonc::parse(&vscode).unwrap_or_default();
        assert_eq!(v["servers"]["agent-vault"]["type"], "stdio");
        let zed = Client::Zed
            .install("{\"vim_mode\": true}", CMD, &[])
            .unwrap_or_default();
        let v = agent_vault_proto::jsonc::parse(&zed).unwrap_or_default();
        assert_eq!(v["context_servers"]["agent-vault"]["command"], CMD);
        assert_eq!(v["vim_mode"], true);
        let codex = "model = \"o4\" # mine\n\n[mcp_servers.other]\ncommand = \"x\"\n";
        let installed = Client::Codex.install(codex, CMD, &[]).unwrap_or_default();
        assert!(installed.starts_with(codex), "{installed}");
        assert!(
            installed.contains(
                "[mcp_servers.agent-vault]\ncommand = \"/opt/bin/agent-vault-mcp\"\nargs = []"
            ),
            "{installed}"
        );
        assert_eq!(
            Client::Codex.uninstall(&installed),
            Ok(Some(codex.to_string()))
        );
        let fresh = Client::Codex.install("", CMD, &[]).unwrap_or_default();
        assert_eq!(
            fresh,
            "[mcp_servers.agent-vault]\ncommand = \"/opt/bin/agent-vault-mcp\"\nargs = []\n"
        );
    }

    #[test]
    fn the_prototypes_entry_is_found_and_can_be_replaced() {
        let json = r#"{"mcpServers": {"vault": {"command": "npx", "args": ["-y", "agent-vault"], "env": {"AGENT_VAULT_PROVIDER": "env"}}, "other": {"command": "node"}}}"#;
        assert_eq!(
            Client::Cursor.prototype_entries(json),
            Ok(vec!["vault".to_string()])
        );
        let replaced = Client::Cursor
            .install(json, CMD, &["vault".to_string()])
            .unwrap_or_default();
        let v = agent_vault_proto::jsonc::parse(&replaced).unwrap_or_default();
        assert!(v["mcpServers"].get("vault").is_none() && v["mcpServers"].get("other").is_some());
        let toml = "[mcp_servers.vault]\ncommand = \"npx\"\nargs = [\"agent-vault\"]\n";
        assert_eq!(
            Client::Codex.prototype_entries(toml),
            Ok(vec!["vault".to_string()])
        );
    }

    #[test]
    fn a_broken_file_is_refused_not_overwritten() {
        assert!(
            Client::Cursor
                .install("{\"mcpServers\": ", CMD, &[])
                .is_err()
        );
        assert!(Client::Cursor.install("[1]", CMD, &[]).is_err());
        assert!(
            Client::Cursor
                .install("{\"mcpServers\": 3}", CMD, &[])
                .is_err()
        );
        assert!(Client::Codex.install("mcp_servers = 3", CMD, &[]).is_err());
        assert!(Client::Codex.install("[x", CMD, &[]).is_err());
        assert!(
            Client::ClaudeDesktop
                .file(&Scope::Project(Path::new("/p")))
                .is_err()
        );
    }
}
