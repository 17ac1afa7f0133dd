//! `1password-connect`: a 1Password Connect server (self-hosted, it keeps
//! a copy of the vaults it was given) over its REST API, with the same
//! names and answers as the `1password` type (see `onepassword_items`):
//! item titles, `op://vault/item/field` references, and writes that update
//! an item's concealed field or create an item in `write.vaultId`.
//!
//! `host` is the server's URL and `token` its access token (a reference,
//! sent as `Authorization: Bearer`). There is no ambient sign-in here.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::contract::{FieldError, Listed, ProviderError};
use super::credential::{Credential, EnvLookup};
use super::onepassword_items::{self as items, FullItem, ListedItem, RawWrite, VaultInfo, Write};
use crate::secret::SecretString;

pub const FIELDS: &[&str] = &["host", "token", "vaultIds", "write"];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    host: Option<String>,
    token: Option<String>,
    #[serde(default)]
    vault_ids: Vec<String>,
    write: Option<RawWrite>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    host: url::Url,
    token: Credential,
    vault_ids: Vec<String>,
    write: Option<Write>,
}

impl Settings {
    pub fn parse(fields: Value, dir: &Path, env: EnvLookup<'_>) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        let host = raw
            .host
            .as_deref()
            .and_then(|h| url::Url::parse(h).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                (
                    "host".to_string(),
                    "expected the Connect server's URL, such as \"http://localhost:8080\""
                        .to_string(),
                )
            })?;
        let token = match raw.token.as_deref() {
            Some(t) => Credential::parse(t, dir, env).map_err(|m| ("token".to_string(), m))?,
            None => {
                return Err((
                    "token".into(),
                    "expected the Connect server's access token, as \"env:NAME\" or \"file:PATH\""
                        .into(),
                ));
            }
        };
        items::check_vault_ids(&raw.vault_ids)?;
        let write = raw.write.map(Write::parse).transpose()?;
        Ok(Settings {
            host,
            token,
            vault_ids: raw.vault_ids,
            write,
        })
    }

    pub fn definition(&self) -> String {
        format!(
            "{}\0{}\0{:?}\0{:?}",
            self.host,
            self.token.reference(),
            self.vault_ids,
            self.write.as_ref().map(|w| (&w.vault_id, &w.category))
        )
    }

    pub fn project_refusal(&self) -> Option<FieldError> {
        self.token.is_file().then(|| {
            (
                "token".into(),
                "a project's config may not name a file for agent-vaultd to read; use \"env:NAME\""
                    .into(),
            )
        })
    }
}

pub struct OnePasswordConnect {
    vault: String,
    settings: Settings,
    client: Result<reqwest::Client, String>,
}

impl std::fmt::Debug for OnePasswordConnect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnePasswordConnect")
            .field("vault", &self.vault)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl OnePasswordConnect {
    pub fn new(vault: String, settings: Settings) -> Self {
        Self {
            vault,
            settings,
            client: super::http::client(),
        }
    }

    pub fn location(&self) -> String {
        let vaults = if self.settings.vault_ids.is_empty() {
            "every vault it serves".to_string()
        } else {
            format!("vaults {}", self.settings.vault_ids.join(", "))
        };
        format!("1Password Connect {}, {vaults}", self.settings.host)
    }

    pub fn identity(&self) -> String {
        format!(
            "connect:{}:{}:{}",
            self.settings.host,
            self.settings.token.digest(),
            self.settings.vault_ids.join(",")
        )
    }

    fn unavailable(&self, why: impl Into<String>) -> ProviderError {
        ProviderError::Unavailable {
            vault: self.vault.clone(),
            why: why.into(),
        }
    }

    /// One API call; the JSON answer, or the contract's error.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Value, ProviderError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: why.clone(),
            })?;
        let token = self
            .settings
            .token
            .read()
            .map_err(|why| ProviderError::Unauthorized {
                vault: self.vault.clone(),
                why: format!(
                    "its token ({}) cannot be used: {why}",
                    self.settings.token.reference()
                ),
            })?;
        let url = super::http::api_url(&self.settings.host, path).map_err(|e| {
            ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: e,
            }
        })?;
        let mut r = client.request(method, url).bearer_auth(token.expose());
        if let Some(b) = body {
            r = r.json(b);
        }
        let (status, json) =
            super::http::send_json(&self.vault, self.settings.host.as_str(), r).await?;
        if (200..300).contains(&status) {
            return Ok(json);
        }
        let message: String = json["message"]
            .as_str()
            .unwrap_or("no message")
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect();
        let why = format!("{message} (HTTP {status})");
        let vault = self.vault.clone();
        Err(match status {
            401 => ProviderError::Unauthorized { vault, why },
            403 => ProviderError::Forbidden { vault, why },
            404 => ProviderError::NotFound { vault, why },
            429 => self.unavailable(format!("rate-limited: {why}")),
            _ => self.unavailable(why),
        })
    }

    fn parse<T: for<'de> Deserialize<'de>>(&self, v: Value) -> Result<T, ProviderError> {
        serde_json::from_value(v)
            .map_err(|_| self.unavailable("the server answered with JSON of another shape"))
    }

    /// The vaults to list: those configured (by id or name), or all.
    async fn vaults(&self) -> Result<Vec<VaultInfo>, ProviderError> {
        let all: Vec<VaultInfo> =
            self.parse(self.call(reqwest::Method::GET, "vaults", None).await?)?;
        if self.settings.vault_ids.is_empty() {
            return Ok(all);
        }
        let unseen: Vec<&str> = self
            .settings
            .vault_ids
            .iter()
            .filter(|id| !all.iter().any(|v| v.id == **id || v.name == **id))
            .map(String::as_str)
            .collect();
        if !unseen.is_empty() {
            return Err(ProviderError::Forbidden {
                vault: self.vault.clone(),
                why: format!(
                    "the server has no vault {} that this token may read",
                    unseen.join(", ")
                ),
            });
        }
        Ok(all
            .into_iter()
            .filter(|v| {
                self.settings
                    .vault_ids
                    .iter()
                    .any(|id| *id == v.id || *id == v.name)
            })
            .collect())
    }

    async fn items(&self, vault: &VaultInfo) -> Result<Vec<Listed>, ProviderError> {
        let path = format!("vaults/{}/items", vault.id);
        let listed: Vec<ListedItem> =
            self.parse(self.call(reqwest::Method::GET, &path, None).await?)?;
        Ok(listed
            .into_iter()
            .map(|i| i.into_listed(&vault.name))
            .collect())
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let vaults = self.vaults().await?;
        let lists = futures_util::future::join_all(vaults.iter().map(|v| self.items(v))).await;
        let mut all = Vec::new();
        for l in lists {
            all.extend(l?);
        }
        Ok(all)
    }

    async fn item(&self, item: &Listed) -> Result<Value, ProviderError> {
        let path = format!("vaults/{}/items/{}", item.group, item.id);
        self.call(reqwest::Method::GET, &path, None).await
    }

    pub async fn get(
        &self,
        names: &[String],
        listed: &[Listed],
    ) -> Result<HashMap<String, SecretString>, ProviderError> {
        let mut values = HashMap::new();
        let mut unknown = Vec::new();
        for name in names {
            let Some(item) = items::find(listed, name) else {
                unknown.push(name.clone());
                continue;
            };
            let full: FullItem = self.parse(self.item(item).await?)?;
            let value = match items::parse_reference(name) {
                Some((_, _, rest)) => full.field(rest),
                None => Some(full.fields_json()),
            };
            match value {
                Some(v) => {
                    values.insert(name.clone(), v);
                }
                None => unknown.push(name.clone()),
            }
        }
        if !unknown.is_empty() {
            return Err(ProviderError::UnknownSecret {
                vault: self.vault.clone(),
                names: unknown,
            });
        }
        Ok(values)
    }

    pub async fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        let Some(w) = &self.settings.write else {
            return Err(items::write_not_set(&self.vault));
        };
        let vault = VaultInfo {
            id: w.vault_id.clone(),
            name: String::new(),
        };
        let existing = self.items(&vault).await?;
        for (name, value) in writes {
            match existing.iter().find(|l| &l.name == name) {
                Some(item) => {
                    let mut full = self.item(item).await?;
                    if !items::set_concealed(&mut full, value) {
                        return Err(
                            self.unavailable("the server answered with an item without fields")
                        );
                    }
                    let path = format!("vaults/{}/items/{}", item.group, item.id);
                    self.call(reqwest::Method::PUT, &path, Some(&full)).await?;
                }
                None => {
                    let path = format!("vaults/{}/items", w.vault_id);
                    let body = items::new_item(name, w, value);
                    self.call(reqwest::Method::POST, &path, Some(&body)).await?;
                }
            }
        }
        Ok(())
    }
}
