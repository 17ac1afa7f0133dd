//! `exec`: your own commands, for the password managers that have a
//! command line (`pass`, `gopass`, `rbw`, `secret-tool`, macOS `security`,
//! `keepassxc-cli`).
//!
//! Each of `list`, `get` and `set` is an argument list: the program and
//! its arguments, never a shell. `{name}` in an argument is replaced by the
//! secret's name, and the name stays one argument whatever it contains.
//! `list` prints one name per line; `get` prints the value (one trailing
//! newline is dropped); `set` reads the value on its stdin. A command runs
//! as agent-vaultd's user, in agent-vaultd's environment (so `gpg-agent`,
//! a keyring or `rbw`'s agent answer as they do for you), in a process
//! group of its own that is killed at the vault's time-out.
//!
//! Honoured only in agent-vaultd's own config: a project's config (a file
//! an agent may write) cannot make the daemon run a command.

use std::collections::HashMap;

use serde::Deserialize;
use zeroize::Zeroizing;

use super::contract::{FieldError, Listed, ProviderError};
use super::subprocess::{self, Command, RunError};
use crate::secret::SecretString;

pub const FIELDS: &[&str] = &["list", "get", "set"];

/// Why an `exec` vault without `set` cannot be `writable`.
pub const CANNOT_WRITE: &str = "an exec vault is writable only with a \"set\" command (the value arrives on its stdin); add one, or remove \"writable\"";

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    list: Option<Vec<String>>,
    get: Option<Vec<String>>,
    set: Option<Vec<String>>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    list: Vec<String>,
    get: Vec<String>,
    set: Option<Vec<String>>,
}

const NAME: &str = "{name}";

impl Settings {
    pub fn parse(fields: serde_json::Value) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        let command = |field: &str, v: Option<Vec<String>>, needs_name: bool| match v {
            None => Err((
                field.to_string(),
                format!(
                    "expected the command as a list of arguments, such as [\"pass\", \"show\", \"{NAME}\"]"
                ),
            )),
            Some(v) if v.is_empty() || v[0].is_empty() => Err((
                field.to_string(),
                "expected a program and its arguments, the program first".to_string(),
            )),
            Some(v) if needs_name && !v.iter().any(|a| a.contains(NAME)) => Err((
                field.to_string(),
                format!("expected {NAME} in one of the arguments, where the secret's name goes"),
            )),
            Some(v) => Ok(v),
        };
        Ok(Settings {
            list: command("list", raw.list, false)?,
            get: command("get", raw.get, true)?,
            set: match raw.set {
                None => None,
                some => Some(command("set", some, true)?),
            },
        })
    }

    pub fn definition(&self) -> String {
        format!("{:?}\0{:?}\0{:?}", self.list, self.get, self.set)
    }

    pub fn can_write(&self) -> bool {
        self.set.is_some()
    }

    pub fn project_refusal(&self) -> Option<FieldError> {
        Some((
            "type".into(),
            "an exec vault runs commands as agent-vaultd's user, so only agent-vaultd's own config may define one; move it there".into(),
        ))
    }
}

#[derive(Debug)]
pub struct Exec {
    vault: String,
    settings: Settings,
}

impl Exec {
    pub fn new(vault: String, settings: Settings) -> Self {
        Self { vault, settings }
    }

    pub fn check_name(name: &str) -> Result<(), ProviderError> {
        if name.starts_with('-') || name.is_empty() || name.chars().any(char::is_control) {
            return Err(ProviderError::InvalidName(format!(
                "\"{}\" cannot be a name here: it may not be empty, start with '-' or hold control characters",
                name.chars().filter(|c| !c.is_control()).collect::<String>()
            )));
        }
        Ok(())
    }

    pub fn location(&self) -> String {
        format!("the command `{}`", self.settings.get.join(" "))
    }

    pub fn identity(&self) -> String {
        format!("exec:{}", self.settings.definition())
    }

    /// Runs `argv` with `{name}` replaced; returns stdout.
    async fn run(
        &self,
        argv: &[String],
        name: Option<&str>,
        stdin: Option<Zeroizing<Vec<u8>>>,
    ) -> Result<Zeroizing<Vec<u8>>, ProviderError> {
        let args: Vec<String> = argv[1..]
            .iter()
            .map(|a| match name {
                Some(n) => a.replace(NAME, n),
                None => a.clone(),
            })
            .collect();
        // The value written, to be kept out of a failure's message.
        let written: Option<Zeroizing<String>> = stdin
            .as_ref()
            .and_then(|v| std::str::from_utf8(v).ok())
            .map(|v| Zeroizing::new(v.trim_end_matches('\n').to_string()))
            .filter(|v| !v.is_empty());
        let out = subprocess::run(Command {
            program: &argv[0],
            args,
            // The daemon's own environment: this is the daemon's own config.
            env: std::env::vars().collect(),
            stdin,
        })
        .await;
        match out {
            Ok(o) if o.success => Ok(o.stdout),
            Ok(o) => {
                let mut line = o
                    .stderr
                    .lines()
                    .find(|l| !l.trim().is_empty())
                    .unwrap_or("it printed nothing on stderr")
                    .to_string();
                // A command that echoes what it was given must not carry
                // the value into the error the agent reads.
                if let Some(v) = &written {
                    line = line.replace(v.as_str(), "[the value]");
                }
                let why: String = line.chars().filter(|c| !c.is_control()).take(200).collect();
                Err(ProviderError::Unavailable {
                    vault: self.vault.clone(),
                    why: format!("`{}` failed: {why}", argv[0]),
                })
            }
            Err(RunError::NotFound) => Err(ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: format!("`{}` is not installed on agent-vaultd's PATH", argv[0]),
            }),
            Err(RunError::Io(e)) => Err(ProviderError::Unavailable {
                vault: self.vault.clone(),
                why: format!("running `{}` failed: {e}", argv[0]),
            }),
        }
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let out = self.run(&self.settings.list, None, None).await?;
        let text = String::from_utf8_lossy(&out);
        let mut names: Vec<String> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(String::from)
            .collect();
        names.sort();
        names.dedup();
        Ok(names
            .into_iter()
            .map(|name| Listed {
                name,
                ..Listed::default()
            })
            .collect())
    }

    pub async fn get(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, SecretString>, ProviderError> {
        let mut values = HashMap::new();
        for name in names {
            let out = self.run(&self.settings.get, Some(name), None).await?;
            let text = std::str::from_utf8(&out).map_err(|_| ProviderError::Unavailable {
                vault: self.vault.clone(),
                why: format!(
                    "`{}` printed a value that is not UTF-8",
                    self.settings.get[0]
                ),
            })?;
            let text = text.strip_suffix('\n').unwrap_or(text);
            let text = text.strip_suffix('\r').unwrap_or(text);
            values.insert(name.clone(), SecretString::new(text.to_string()));
        }
        Ok(values)
    }

    pub async fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        let Some(set) = &self.settings.set else {
            return Err(ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: "it has no \"set\" command; add one (the value arrives on its stdin) to allow writes".into(),
            });
        };
        for (name, value) in writes {
            let mut bytes = Zeroizing::new(value.expose().as_bytes().to_vec());
            bytes.push(b'\n');
            self.run(set, Some(name), Some(bytes)).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_need_a_program_and_a_place_for_the_name() {
        let ok = Settings::parse(serde_json::json!({
            "list": ["pass", "ls"], "get": ["pass", "show", "{name}"]
        }));
        assert!(ok.is_ok());
        for (bad, field) in [
            (
                serde_json::json!({"get": ["pass", "show", "{name}"]}),
                "list",
            ),
            (
                serde_json::json!({"list": ["pass"], "get": ["pass", "show"]}),
                "get",
            ),
            (
                serde_json::json!({"list": [], "get": ["x", "{name}"]}),
                "list",
            ),
            (
                serde_json::json!({"list": ["x"], "get": ["x", "{name}"], "shell": "sh"}),
                "shell",
            ),
        ] {
            let e = Settings::parse(bad.clone()).err();
            assert!(
                e.as_ref()
                    .is_some_and(|(f, m)| f == field || m.contains(field)),
                "{bad}: {e:?}"
            );
        }
        assert!(Exec::check_name("--help").is_err());
        assert!(
            Exec::check_name("web/db; rm -rf /").is_ok(),
            "one argument, never a shell"
        );
    }

    #[tokio::test]
    async fn a_failing_command_that_echoes_the_value_does_not_leak_it() {
        let settings = Settings::parse(serde_json::json!({
            "list": ["true"], "get": ["true", "{name}"],
            "set": ["sh", "-c", "echo \"cannot store: $(cat)\" >&2; exit 3", "{name}"]
        }));
        let Ok(settings) = settings else {
            panic!("settings refused");
        };
        let exec = Exec::new("mine".into(), settings);
        let r = exec
            .set(&[("db".into(), SecretString::new("s3cret-echoed-1a".into()))])
            .await;
        let message = r.err().map(|e| e.to_string()).unwrap_or_default();
        assert!(
            message.contains("cannot store: [the value]") && !message.contains("s3cret-echoed-1a"),
            "{message}"
        );
    }
}
