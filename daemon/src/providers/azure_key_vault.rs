//! `azure-key-vault`: Azure Key Vault secrets over its REST API
//! (api-version 7.4).
//!
//! - `list`: the vault's enabled secrets whose names start with `prefix`,
//!   named without it (following `nextLink`, on the vault's own host only);
//! - `get`: `name` returns the current version's value; `name#key` one
//!   field of a JSON value. Several names are read concurrently;
//! - `set`: a new version (`PUT`), which creates the secret when there is
//!   none; `name#key` merges one field.
//!
//! Credentials: a service principal (`tenantId`, `clientId`,
//! `clientSecret`); without a secret, a vault of agent-vaultd's own config
//! uses the ambient chain (see `azure_auth`). A project's config must name
//! its own service principal.

use std::collections::HashMap;
use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::azure_auth::{self, Source};
use super::contract::{FieldError, Listed, ProviderError};
use super::credential::{Credential, EnvLookup};
use super::http;
use super::json_fields;
use super::oauth;
use crate::secret::SecretString;

pub const FIELDS: &[&str] = &[
    "vaultUrl",
    "tenantId",
    "clientId",
    "clientSecret",
    "authorityHost",
    "prefix",
];

const API_VERSION: &str = "7.4";
const AUTHORITY: &str = "https://login.microsoftonline.com";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    vault_url: Option<String>,
    tenant_id: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    authority_host: Option<String>,
    #[serde(default)]
    prefix: String,
}

#[derive(Debug, Clone)]
pub struct Settings {
    vault_url: url::Url,
    source: Source,
    authority: url::Url,
    prefix: String,
}

/// The characters Key Vault allows in a secret's name.
fn name_chars(s: &str) -> bool {
    s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

fn http_url(text: &str) -> Option<url::Url> {
    url::Url::parse(text)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
}

impl Settings {
    pub fn parse(fields: Value, dir: &Path, env: EnvLookup<'_>) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        let vault_url = raw.vault_url.as_deref().and_then(http_url).ok_or_else(|| {
            (
                "vaultUrl".to_string(),
                "expected the key vault's URL, such as \"https://my-vault.vault.azure.net\""
                    .to_string(),
            )
        })?;
        let authority = http_url(raw.authority_host.as_deref().unwrap_or(AUTHORITY))
            .ok_or_else(|| {
                (
                    "authorityHost".to_string(),
                    "expected the Entra ID authority's URL, such as \"https://login.microsoftonline.com\"".to_string(),
                )
            })?;
        let plain = |field: &str, v: &Option<String>| -> Result<Option<String>, FieldError> {
            match v {
                Some(t) if t.is_empty() || !t.chars().all(|c| c.is_ascii_alphanumeric() || "-.".contains(c)) => Err((
                    field.to_string(),
                    "expected an id such as \"00000000-0000-0000-0000-000000000000\" (the id itself: it is not a secret)".to_string(),
                )),
                other => Ok(other.clone()),
            }
        };
        let tenant = plain("tenantId", &raw.tenant_id)?;
        let client_id = plain("clientId", &raw.client_id)?;
        let source = match (tenant, client_id, &raw.client_secret) {
            (Some(tenant), Some(client_id), Some(secret)) => Source::ClientSecret {
                tenant,
                client_id,
                secret: Credential::parse(secret, dir, env)
                    .map_err(|m| ("clientSecret".to_string(), m))?,
            },
            (None, client_id, None) => Source::Ambient { client_id },
            (_, _, Some(_)) => {
                return Err((
                    "tenantId".into(),
                    "a clientSecret needs its tenantId and clientId".into(),
                ));
            }
            (Some(_), _, None) => {
                return Err((
                    "clientSecret".into(),
                    "a tenantId needs a clientId and clientSecret (a service principal); without them the ambient credentials are used".into(),
                ));
            }
        };
        if !name_chars(&raw.prefix) {
            return Err((
                "prefix".into(),
                "expected the start of secret names, made of letters, digits and -".into(),
            ));
        }
        Ok(Settings {
            vault_url,
            source,
            authority,
            prefix: raw.prefix,
        })
    }

    pub fn definition(&self) -> String {
        let source = match &self.source {
            Source::ClientSecret {
                tenant,
                client_id,
                secret,
            } => format!("{tenant}:{client_id}:{}", secret.reference()),
            Source::Ambient { client_id } => format!("ambient:{client_id:?}"),
        };
        format!(
            "{}\0{source}\0{}\0{}",
            self.vault_url, self.authority, self.prefix
        )
    }

    pub fn project_refusal(&self) -> Option<FieldError> {
        match &self.source {
            Source::Ambient { .. } => Some((
                "clientSecret".into(),
                "a project's config must name its own service principal (tenantId, clientId, and clientSecret as \"env:NAME\"); agent-vaultd's own Azure identity serves only its own config".into(),
            )),
            Source::ClientSecret { secret, .. } if secret.is_file() => Some((
                "clientSecret".into(),
                "a project's config may not name a file for agent-vaultd to read; use \"env:NAME\"".into(),
            )),
            Source::ClientSecret { .. } => None,
        }
    }

    /// The resource a token is asked for: the vault's cloud (`https://vault.azure.net`,
    /// `https://vault.azure.cn`, …), from the vault's host name.
    fn resource(&self) -> String {
        let host = self.vault_url.host_str().unwrap_or_default();
        match host.split_once('.') {
            Some((_, cloud)) if cloud.starts_with("vault.") => format!("https://{cloud}"),
            _ => "https://vault.azure.net".into(),
        }
    }
}

pub struct AzureKeyVault {
    vault: String,
    settings: Settings,
    client: Result<reqwest::Client, String>,
    token: oauth::TokenCache,
}

impl std::fmt::Debug for AzureKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVault")
            .field("vault", &self.vault)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AzureKeyVault {
    pub fn new(vault: String, settings: Settings) -> Self {
        Self {
            vault,
            settings,
            client: http::client(),
            token: oauth::TokenCache::default(),
        }
    }

    pub fn check_name(name: &str) -> Result<(), ProviderError> {
        let (secret, key) = json_fields::split(name);
        if secret.is_empty()
            || secret.len() > 127
            || !name_chars(secret)
            || !json_fields::key_ok(key)
        {
            return Err(ProviderError::InvalidName(format!(
                "\"{name}\" is not a Key Vault secret name: expected letters, digits and - (such as \"db-password\"), or \"db#password\" for one field of a JSON secret"
            )));
        }
        Ok(())
    }

    pub fn knows(listed: &[Listed], name: &str) -> bool {
        let (secret, _) = json_fields::split(name);
        listed.iter().any(|l| l.name.eq_ignore_ascii_case(secret))
    }

    pub fn location(&self) -> String {
        let mut at = format!("Azure Key Vault {}", self.settings.vault_url);
        if !self.settings.prefix.is_empty() {
            at.push_str(&format!(", names starting {}", self.settings.prefix));
        }
        at
    }

    pub fn identity(&self) -> String {
        let who = match &self.settings.source {
            Source::ClientSecret {
                tenant,
                client_id,
                secret,
            } => format!("{tenant}:{client_id}:{}", secret.digest()),
            Source::Ambient { client_id } => format!("ambient:{client_id:?}"),
        };
        format!(
            "azure:{}:{}:{who}",
            self.settings.vault_url, self.settings.prefix
        )
    }

    /// One API call to `url` (on the vault's host), with a token that is
    /// fetched again once if the vault refuses it.
    async fn call(
        &self,
        method: reqwest::Method,
        url: url::Url,
        body: Option<&Value>,
    ) -> Result<(u16, Value), ProviderError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: why.clone(),
            })?;
        let server = self.settings.vault_url.origin().ascii_serialization();
        if url.origin().ascii_serialization() != server {
            // A token for this vault never goes to another host.
            return Err(ProviderError::Unavailable {
                vault: self.vault.clone(),
                why: format!(
                    "the vault pointed to another host ({})",
                    url.origin().ascii_serialization()
                ),
            });
        }
        let resource = self.settings.resource();
        self.token
            .send(
                || {
                    azure_auth::fetch(
                        &self.vault,
                        client,
                        &self.settings.source,
                        &self.settings.authority,
                        &resource,
                    )
                },
                |token| {
                    let mut r = client
                        .request(method.clone(), url.clone())
                        .bearer_auth(token.expose());
                    if let Some(b) = body {
                        r = r.json(b);
                    }
                    http::send_json(&self.vault, &server, r)
                },
            )
            .await
    }

    fn secret_url(&self, name: &str) -> Result<url::Url, ProviderError> {
        let mut url = http::join(&self.settings.vault_url, ["secrets", name]).map_err(|why| {
            ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why,
            }
        })?;
        url.query_pairs_mut()
            .append_pair("api-version", API_VERSION);
        Ok(url)
    }

    fn failed(&self, status: u16, body: &Value) -> ProviderError {
        let why = match (
            body["error"]["code"].as_str(),
            body["error"]["message"].as_str(),
        ) {
            (Some(c), Some(m)) => format!("{c}: {}", http::words(m)),
            (None, Some(m)) => http::words(m),
            _ => "no message".into(),
        };
        http::status_error(&self.vault, status, &why)
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let mut next = Some(self.secret_url("")?);
        if let Some(u) = next.as_mut() {
            // `secrets/` is the collection itself.
            u.path_segments_mut()
                .map_err(|()| ProviderError::NotConfigured {
                    vault: self.vault.clone(),
                    why: "vaultUrl cannot have a path".into(),
                })?
                .pop_if_empty();
            u.query_pairs_mut().append_pair("maxresults", "25");
        }
        let mut out = Vec::new();
        while let Some(url) = next.take() {
            let (status, body) = self.call(reqwest::Method::GET, url, None).await?;
            if status != 200 {
                return Err(self.failed(status, &body));
            }
            for s in body["value"].as_array().into_iter().flatten() {
                if s["attributes"]["enabled"] == Value::Bool(false) {
                    continue;
                }
                let Some(id) = s["id"].as_str() else { continue };
                let full = id.rsplit('/').next().unwrap_or(id);
                let Some(name) = full
                    .strip_prefix(self.settings.prefix.as_str())
                    .filter(|n| !n.is_empty())
                else {
                    continue;
                };
                out.push(Listed {
                    name: name.to_string(),
                    id: id.to_string(),
                    ..Listed::default()
                });
            }
            if out.len() > 100_000 {
                return Err(ProviderError::Unavailable {
                    vault: self.vault.clone(),
                    why: "more than 100000 secrets; set a prefix".into(),
                });
            }
            next =
                match body["nextLink"].as_str() {
                    Some(link) if !link.is_empty() => Some(url::Url::parse(link).map_err(
                        |_| ProviderError::Unavailable {
                            vault: self.vault.clone(),
                            why: "the vault answered with a nextLink that is not a URL".into(),
                        },
                    )?),
                    _ => None,
                };
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A secret's current value, or None if there is no such secret.
    async fn read(&self, secret: &str) -> Result<Option<SecretString>, ProviderError> {
        let url = self.secret_url(&format!("{}{secret}", self.settings.prefix))?;
        let (status, body) = self.call(reqwest::Method::GET, url, None).await?;
        match status {
            200 => Ok(body["value"]
                .as_str()
                .map(|v| SecretString::new(v.to_string()))),
            404 => Ok(None),
            _ => Err(self.failed(status, &body)),
        }
    }

    pub async fn get(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, SecretString>, ProviderError> {
        json_fields::read_all(&self.vault, names, |s| self.read(s)).await
    }

    pub async fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        for (name, value) in writes {
            let (secret, text) =
                json_fields::to_write(&self.vault, name, value, |s| self.read(s)).await?;
            let url = self.secret_url(&format!("{}{secret}", self.settings.prefix))?;
            let body = serde_json::json!({"value": text.expose()});
            let (status, answer) = self.call(reqwest::Method::PUT, url, Some(&body)).await?;
            if !(200..300).contains(&status) {
                return Err(self.failed(status, &answer));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_names_and_refusals() {
        let env = |_: &str| Some("x".to_string());
        let parse = |v: Value| Settings::parse(v, Path::new("/etc"), &env);
        let url = "https://my-vault.vault.azure.cn";
        let own = parse(serde_json::json!({"vaultUrl": url}));
        assert!(
            own.as_ref()
                .is_ok_and(|s| s.resource() == "https://vault.azure.cn")
        );
        assert!(own.is_ok_and(|s| {
            s.project_refusal()
                .is_some_and(|(f, _)| f == "clientSecret")
        }));
        let sp = parse(
            serde_json::json!({"vaultUrl": url, "tenantId": "t-1", "clientId": "c-1", "clientSecret": "env:S"}),
        );
        assert!(sp.is_ok_and(|s| s.project_refusal().is_none()));
        for (bad, field) in [
            (serde_json::json!({}), "vaultUrl"),
            (
                serde_json::json!({"vaultUrl": url, "clientSecret": "env:S"}),
                "tenantId",
            ),
            (
                serde_json::json!({"vaultUrl": url, "tenantId": "t"}),
                "clientSecret",
            ),
            (
                serde_json::json!({"vaultUrl": url, "tenantId": "t", "clientId": "c", "clientSecret": "literal-secret"}),
                "clientSecret",
            ),
            (
                serde_json::json!({"vaultUrl": url, "prefix": "a_b"}),
                "prefix",
            ),
            (serde_json::json!({"vaultUrl": url, "vaultURL": url}), ""),
        ] {
            let r = parse(bad.clone());
            assert!(
                r.as_ref()
                    .is_err_and(|(f, _)| f == field || field.is_empty()),
                "{bad}"
            );
        }
        assert!(AzureKeyVault::check_name("db-password#user").is_ok());
        for bad in ["", "a_b", "a/b", "a b", "db#"] {
            assert!(AzureKeyVault::check_name(bad).is_err(), "{bad:?}");
        }
    }
}
