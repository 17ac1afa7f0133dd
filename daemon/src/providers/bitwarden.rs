//! `bitwarden`: Bitwarden Secrets Manager through its CLI, `bws` (its Rust
//! SDK crates are under a proprietary license).
//!
//! - `list`: the secrets the access token can read (in `projectIds`, if
//!   given), by key, with the project's id as the group;
//! - `get`: a key (or a secret's id) returns its value.
//!
//! Writes are refused: `bws` takes a value only as a command-line
//! argument, which any process of agent-vaultd's user can read.
//!
//! `accessToken` is a reference, given to `bws` in its environment
//! (`BWS_ACCESS_TOKEN`), with `serverUrl` (`BWS_SERVER_URL`) for a
//! self-hosted or EU server.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;

use super::contract::{FieldError, Listed, ProviderError};
use super::credential::{Credential, EnvLookup};
use super::subprocess::{self, Command, RunError};
use crate::secret::SecretString;

pub const FIELDS: &[&str] = &["accessToken", "projectIds", "serverUrl"];

/// Why a `bitwarden` vault cannot be `writable`.
pub const CANNOT_WRITE: &str = "a bitwarden vault cannot be writable: `bws` takes a value only as a command-line argument, which other processes of agent-vaultd's user can read; add or change secrets in the Bitwarden web app";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    access_token: Option<String>,
    #[serde(default)]
    project_ids: Vec<String>,
    server_url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    access_token: Credential,
    project_ids: Vec<String>,
    server_url: Option<String>,
}

/// A UUID as Bitwarden writes them.
fn uuid_like(s: &str) -> bool {
    s.len() == 36 && s.chars().all(|c| c.is_ascii_hexdigit() || c == '-')
}

impl Settings {
    pub fn parse(
        fields: serde_json::Value,
        dir: &Path,
        env: EnvLookup<'_>,
    ) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        let access_token = match raw.access_token.as_deref() {
            Some(t) => {
                Credential::parse(t, dir, env).map_err(|m| ("accessToken".to_string(), m))?
            }
            None => {
                return Err((
                    "accessToken".into(),
                    "expected a machine account's access token, as \"env:NAME\" or \"file:PATH\""
                        .into(),
                ));
            }
        };
        if let Some(i) = raw.project_ids.iter().position(|p| !uuid_like(p)) {
            return Err((
                format!("projectIds[{i}]"),
                "expected a project's id (a UUID)".into(),
            ));
        }
        if let Some(u) = &raw.server_url
            && url::Url::parse(u).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
        {
            return Err((
                "serverUrl".into(),
                "expected the server's URL, such as \"https://vault.bitwarden.eu\"".into(),
            ));
        }
        Ok(Settings {
            access_token,
            project_ids: raw.project_ids,
            server_url: raw.server_url,
        })
    }

    pub fn definition(&self) -> String {
        format!(
            "{}\0{:?}\0{:?}",
            self.access_token.reference(),
            self.project_ids,
            self.server_url
        )
    }

    pub fn project_refusal(&self) -> Option<FieldError> {
        self.access_token.is_file().then(|| {
            (
                "accessToken".into(),
                "a project's config may not name a file for agent-vaultd to read; use \"env:NAME\""
                    .into(),
            )
        })
    }
}

/// A secret as `bws secret list` and `bws secret get` print it.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BwsSecret {
    id: String,
    key: String,
    #[serde(default)]
    project_id: Option<String>,
}

/// `bws secret get`: the value too.
#[derive(Deserialize)]
struct BwsValue {
    value: SecretString,
}

#[derive(Debug)]
pub struct Bitwarden {
    vault: String,
    settings: Settings,
}

impl Bitwarden {
    pub fn new(vault: String, settings: Settings) -> Self {
        Self { vault, settings }
    }

    pub fn check_name(name: &str) -> Result<(), ProviderError> {
        if name.starts_with('-') || name.is_empty() {
            return Err(ProviderError::InvalidName(format!(
                "\"{name}\" is not a secret's key or id"
            )));
        }
        Ok(())
    }

    fn find<'a>(listed: &'a [Listed], name: &str) -> Option<&'a Listed> {
        listed
            .iter()
            .find(|l| l.name == name)
            .or_else(|| listed.iter().find(|l| l.id == name))
    }

    pub fn knows(listed: &[Listed], name: &str) -> bool {
        Self::find(listed, name).is_some()
    }

    pub fn location(&self) -> String {
        let scope = if self.settings.project_ids.is_empty() {
            "every project its machine account can read".to_string()
        } else {
            format!("projects {}", self.settings.project_ids.join(", "))
        };
        format!(
            "Bitwarden Secrets Manager{} ({}), {scope}",
            self.settings
                .server_url
                .as_deref()
                .map(|u| format!(" at {u}"))
                .unwrap_or_default(),
            self.settings.access_token.reference()
        )
    }

    pub fn identity(&self) -> String {
        format!(
            "bitwarden:{}:{}:{}",
            self.settings.server_url.as_deref().unwrap_or(""),
            self.settings.access_token.digest(),
            self.settings.project_ids.join(",")
        )
    }

    fn unavailable(&self, why: impl Into<String>) -> ProviderError {
        ProviderError::Unavailable {
            vault: self.vault.clone(),
            why: why.into(),
        }
    }

    async fn bws(&self, args: &[&str]) -> Result<zeroize::Zeroizing<Vec<u8>>, ProviderError> {
        let token =
            self.settings
                .access_token
                .read()
                .map_err(|why| ProviderError::Unauthorized {
                    vault: self.vault.clone(),
                    why: format!(
                        "its accessToken ({}) cannot be used: {why}",
                        self.settings.access_token.reference()
                    ),
                })?;
        let mut env = Vec::new();
        for key in ["PATH", "HOME", "XDG_CONFIG_HOME", "TMPDIR"] {
            if let Some(v) = std::env::var_os(key) {
                env.push((key.to_string(), v.to_string_lossy().into_owned()));
            }
        }
        env.push(("BWS_ACCESS_TOKEN".into(), token.expose().to_string()));
        if let Some(u) = &self.settings.server_url {
            env.push(("BWS_SERVER_URL".into(), u.clone()));
        }
        let mut argv: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        argv.extend([
            "--output".into(),
            "json".into(),
            "--color".into(),
            "no".into(),
        ]);
        let out = subprocess::run(Command {
            program: "bws",
            args: argv,
            env,
            stdin: None,
        })
        .await;
        match out {
            Ok(o) if o.success => Ok(o.stdout),
            Ok(o) => Err(self.classify(&o.stderr)),
            Err(RunError::NotFound) => Err(ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: "the Bitwarden Secrets Manager CLI (`bws`) is not installed on agent-vaultd's PATH; install it (https://bitwarden.com/help/secrets-manager-cli/), then call again".into(),
            }),
            Err(RunError::Io(e)) => Err(self.unavailable(format!("running `bws` failed: {e}"))),
        }
    }

    /// `bws`'s error report into the contract's errors; it never prints
    /// values in them.
    fn classify(&self, stderr: &str) -> ProviderError {
        let why: String = stderr
            .lines()
            .map(|l| l.trim().trim_start_matches("0:").trim())
            .filter(|l| !l.is_empty() && *l != "Error:" && !l.starts_with("Location:"))
            .find(|l| !l.starts_with("Backtrace"))
            .unwrap_or("it printed no error")
            .chars()
            .filter(|c| !c.is_control())
            .take(300)
            .collect();
        let lower = why.to_ascii_lowercase();
        let vault = self.vault.clone();
        if lower.contains("401") || lower.contains("access token") || lower.contains("unauthorized")
        {
            ProviderError::Unauthorized { vault, why }
        } else if lower.contains("403") || lower.contains("forbidden") {
            ProviderError::Forbidden { vault, why }
        } else if lower.contains("404") || lower.contains("not found") {
            ProviderError::NotFound { vault, why }
        } else if lower.contains("429") || lower.contains("too many requests") {
            self.unavailable(format!(
                "Bitwarden is rate-limiting this machine account ({why}); wait a minute"
            ))
        } else {
            self.unavailable(why)
        }
    }

    async fn list_project(&self, project: Option<&str>) -> Result<Vec<Listed>, ProviderError> {
        let mut args = vec!["secret", "list"];
        args.extend(project);
        let out = self.bws(&args).await?;
        let secrets: Vec<BwsSecret> = serde_json::from_slice(&out).map_err(|_| {
            self.unavailable("`bws secret list` printed something other than the JSON expected")
        })?;
        Ok(secrets
            .into_iter()
            .map(|s| Listed {
                name: s.key,
                group: s.project_id.unwrap_or_default(),
                id: s.id,
                group_name: String::new(),
            })
            .collect())
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        if self.settings.project_ids.is_empty() {
            return self.list_project(None).await;
        }
        let lists = futures_util::future::join_all(
            self.settings
                .project_ids
                .iter()
                .map(|p| self.list_project(Some(p))),
        )
        .await;
        let mut all = Vec::new();
        for l in lists {
            all.extend(l?);
        }
        Ok(all)
    }

    pub async fn get(
        &self,
        names: &[String],
        listed: &[Listed],
    ) -> Result<HashMap<String, SecretString>, ProviderError> {
        let unknown: Vec<String> = names
            .iter()
            .filter(|n| Self::find(listed, n).is_none())
            .cloned()
            .collect();
        if !unknown.is_empty() {
            return Err(ProviderError::UnknownSecret {
                vault: self.vault.clone(),
                names: unknown,
            });
        }
        let mut values = HashMap::new();
        for name in names {
            let Some(secret) = Self::find(listed, name) else {
                continue;
            };
            let out = self.bws(&["secret", "get", &secret.id]).await?;
            let got: BwsValue = serde_json::from_slice(&out).map_err(|_| {
                self.unavailable("`bws secret get` printed something other than the JSON expected")
            })?;
            values.insert(name.clone(), got.value);
        }
        Ok(values)
    }

    pub fn set(&self) -> ProviderError {
        ProviderError::NotConfigured {
            vault: self.vault.clone(),
            why: CANNOT_WRITE.into(),
        }
    }
}
