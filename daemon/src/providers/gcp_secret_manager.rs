//! `gcp-secret-manager`: Google Cloud Secret Manager over its REST API
//! (v1).
//!
//! - `list`: the project's secrets whose ids start with `prefix`, named
//!   without it (every page);
//! - `get`: `name` returns the latest version's payload (text; a payload
//!   that is not UTF-8 as standard base64); `name#key` one field of a JSON
//!   payload. Several names are read concurrently;
//! - `set`: adds a version (`:addVersion`), creating the secret (automatic
//!   replication) when there is none; `name#key` merges one field.
//!
//! Credentials: `credentials`, a reference to a service account's JSON key
//! (its content in `env:NAME`, or `file:PATH`); without it, a vault of
//! agent-vaultd's own config uses the application-default chain (see
//! `gcp_auth`). A project's config must name its own key.

use std::collections::HashMap;
use std::path::Path;

use base64::Engine;
use serde::Deserialize;
use serde_json::Value;

use super::contract::{FieldError, Listed, ProviderError};
use super::credential::{Credential, EnvLookup};
use super::gcp_auth::{self, Source};
use super::http;
use super::json_fields;
use super::oauth;
use crate::secret::SecretString;

pub const FIELDS: &[&str] = &["project", "credentials", "prefix", "endpoint"];

const ENDPOINT: &str = "https://secretmanager.googleapis.com";

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    project: Option<String>,
    credentials: Option<String>,
    #[serde(default)]
    prefix: String,
    endpoint: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    project: String,
    source: Source,
    prefix: String,
    endpoint: url::Url,
}

/// The characters Google allows in a secret's id.
fn id_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl Settings {
    pub fn parse(fields: Value, dir: &Path, env: EnvLookup<'_>) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        let project = raw
            .project
            .filter(|p| {
                !p.is_empty()
                    && p.chars()
                        .all(|c| c.is_ascii_alphanumeric() || "-.:".contains(c))
            })
            .ok_or_else(|| {
                (
                    "project".to_string(),
                    "expected the Google Cloud project's id or number, such as \"my-project\""
                        .to_string(),
                )
            })?;
        let source = match raw.credentials.as_deref() {
            Some(c) => Source::Key(
                Credential::parse(c, dir, env).map_err(|m| ("credentials".to_string(), m))?,
            ),
            None => Source::Ambient,
        };
        if !id_chars(&raw.prefix) {
            return Err((
                "prefix".into(),
                "expected the start of secret ids, made of letters, digits, _ and -".into(),
            ));
        }
        let endpoint = url::Url::parse(raw.endpoint.as_deref().unwrap_or(ENDPOINT))
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                (
                    "endpoint".to_string(),
                    "expected the API's URL, such as \"https://secretmanager.googleapis.com\""
                        .to_string(),
                )
            })?;
        Ok(Settings {
            project,
            source,
            prefix: raw.prefix,
            endpoint,
        })
    }

    pub fn definition(&self) -> String {
        let source = match &self.source {
            Source::Key(c) => c.reference(),
            Source::Ambient => "ambient".into(),
        };
        format!(
            "{}\0{source}\0{}\0{}",
            self.project, self.prefix, self.endpoint
        )
    }

    pub fn project_refusal(&self) -> Option<FieldError> {
        match &self.source {
            Source::Ambient => Some((
                "credentials".into(),
                "a project's config must name its own service account key (\"env:NAME\" with the key's JSON); agent-vaultd's own Google sign-in serves only its own config".into(),
            )),
            Source::Key(c) if c.is_file() => Some((
                "credentials".into(),
                "a project's config may not name a file for agent-vaultd to read; use \"env:NAME\"".into(),
            )),
            Source::Key(_) => None,
        }
    }
}

pub struct GcpSecretManager {
    vault: String,
    settings: Settings,
    client: Result<reqwest::Client, String>,
    token: oauth::TokenCache,
}

impl std::fmt::Debug for GcpSecretManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpSecretManager")
            .field("vault", &self.vault)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl GcpSecretManager {
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
        if secret.is_empty() || secret.len() > 255 || !id_chars(secret) || !json_fields::key_ok(key)
        {
            return Err(ProviderError::InvalidName(format!(
                "\"{name}\" is not a secret id: expected letters, digits, _ and - (such as \"db-password\"), or \"db#password\" for one field of a JSON secret"
            )));
        }
        Ok(())
    }

    pub fn knows(listed: &[Listed], name: &str) -> bool {
        let (secret, _) = json_fields::split(name);
        listed.iter().any(|l| l.name == secret)
    }

    pub fn location(&self) -> String {
        let mut at = format!("Google Secret Manager, project {}", self.settings.project);
        if !self.settings.prefix.is_empty() {
            at.push_str(&format!(", ids starting {}", self.settings.prefix));
        }
        if self.settings.endpoint.as_str().trim_end_matches('/') != ENDPOINT {
            at.push_str(&format!(" (at {})", self.settings.endpoint));
        }
        at
    }

    pub fn identity(&self) -> String {
        let who = match &self.settings.source {
            Source::Key(c) => c.digest(),
            Source::Ambient => "ambient".into(),
        };
        format!(
            "gcp:{}:{}:{}:{who}",
            self.settings.endpoint, self.settings.project, self.settings.prefix
        )
    }

    /// One API call (`segments` after `v1/projects/PROJECT`), with a
    /// token that is fetched again once if the API refuses it.
    async fn call(
        &self,
        method: reqwest::Method,
        segments: &[&str],
        query: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<(u16, Value), ProviderError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: why.clone(),
            })?;
        let path = ["v1", "projects", self.settings.project.as_str()]
            .into_iter()
            .chain(segments.iter().copied());
        let url = http::join(&self.settings.endpoint, path).map_err(|why| {
            ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why,
            }
        })?;
        let server = self.settings.endpoint.origin().ascii_serialization();
        self.token
            .send(
                || gcp_auth::fetch(&self.vault, client, &self.settings.source),
                |token| {
                    let mut r = client
                        .request(method.clone(), url.clone())
                        .query(query)
                        .bearer_auth(token.expose());
                    if let Some(b) = body {
                        r = r.json(b);
                    }
                    http::send_json(&self.vault, &server, r)
                },
            )
            .await
    }

    fn failed(&self, status: u16, body: &Value) -> ProviderError {
        let why = match (
            body["error"]["status"].as_str(),
            body["error"]["message"].as_str(),
        ) {
            (Some(s), Some(m)) => format!("{s}: {}", http::words(m)),
            (None, Some(m)) => http::words(m),
            _ => "no message".into(),
        };
        http::status_error(&self.vault, status, &why)
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let mut out = Vec::new();
        let mut page = String::new();
        loop {
            let mut query = vec![("pageSize", "250")];
            if !page.is_empty() {
                query.push(("pageToken", page.as_str()));
            }
            let (status, body) = self
                .call(reqwest::Method::GET, &["secrets"], &query, None)
                .await?;
            if status != 200 {
                return Err(self.failed(status, &body));
            }
            for s in body["secrets"].as_array().into_iter().flatten() {
                let Some(full) = s["name"].as_str() else {
                    continue;
                };
                let id = full.rsplit('/').next().unwrap_or(full);
                let Some(name) = id
                    .strip_prefix(self.settings.prefix.as_str())
                    .filter(|n| !n.is_empty())
                else {
                    continue;
                };
                out.push(Listed {
                    name: name.to_string(),
                    id: full.to_string(),
                    ..Listed::default()
                });
            }
            if out.len() > 100_000 {
                return Err(ProviderError::Unavailable {
                    vault: self.vault.clone(),
                    why: "more than 100000 secrets; set a prefix".into(),
                });
            }
            match body["nextPageToken"].as_str() {
                Some(t) if !t.is_empty() => page = t.to_string(),
                _ => break,
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A secret's latest payload, or None if the secret does not exist.
    async fn read(&self, secret: &str) -> Result<Option<SecretString>, ProviderError> {
        let id = format!("{}{secret}", self.settings.prefix);
        let (status, body) = self
            .call(
                reqwest::Method::GET,
                &["secrets", &id, "versions", "latest:access"],
                &[],
                None,
            )
            .await?;
        match status {
            200 => {}
            404 => return Ok(None),
            _ => return Err(self.failed(status, &body)),
        }
        let data = body["payload"]["data"].as_str().unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map_err(|_| ProviderError::Unavailable {
                vault: self.vault.clone(),
                why: "the API answered with a payload that is not base64".into(),
            })?;
        Ok(Some(match String::from_utf8(bytes) {
            Ok(text) => SecretString::new(text),
            Err(e) => {
                SecretString::new(base64::engine::general_purpose::STANDARD.encode(e.into_bytes()))
            }
        }))
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
            let id = format!("{}{secret}", self.settings.prefix);
            let add = serde_json::json!({"payload": {
                "data": base64::engine::general_purpose::STANDARD.encode(text.expose())
            }});
            let action = format!("{id}:addVersion");
            let (mut status, mut body) = self
                .call(
                    reqwest::Method::POST,
                    &["secrets", &action],
                    &[],
                    Some(&add),
                )
                .await?;
            if status == 404 {
                let create = serde_json::json!({"replication": {"automatic": {}}});
                let (s, b) = self
                    .call(
                        reqwest::Method::POST,
                        &["secrets"],
                        &[("secretId", id.as_str())],
                        Some(&create),
                    )
                    .await?;
                if !(200..300).contains(&s) {
                    return Err(self.failed(s, &b));
                }
                (status, body) = self
                    .call(
                        reqwest::Method::POST,
                        &["secrets", &action],
                        &[],
                        Some(&add),
                    )
                    .await?;
            }
            if !(200..300).contains(&status) {
                return Err(self.failed(status, &body));
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
        let env = |_: &str| Some("{}".to_string());
        let parse = |v: Value| Settings::parse(v, Path::new("/etc"), &env);
        let own = parse(serde_json::json!({"project": "my-project"}));
        assert!(own.is_ok_and(|s| s.project_refusal().is_some_and(|(f, _)| f == "credentials")));
        let key = parse(serde_json::json!({"project": "p-1", "credentials": "env:GCP_KEY"}));
        assert!(key.is_ok_and(|s| s.project_refusal().is_none()));
        let file = parse(serde_json::json!({"project": "p-1", "credentials": "file:key.json"}));
        assert!(file.is_ok_and(|s| s.project_refusal().is_some()));
        for (bad, field) in [
            (serde_json::json!({}), "project"),
            (serde_json::json!({"project": "a b"}), "project"),
            (
                serde_json::json!({"project": "p", "credentials": "{\"type\":1}"}),
                "credentials",
            ),
            (
                serde_json::json!({"project": "p", "prefix": "a/b"}),
                "prefix",
            ),
            (
                serde_json::json!({"project": "p", "endpoint": "nope"}),
                "endpoint",
            ),
        ] {
            let r = parse(bad.clone());
            assert!(r.as_ref().is_err_and(|(f, _)| f == field), "{bad}");
        }
        assert!(GcpSecretManager::check_name("db-password#user").is_ok());
        for bad in ["", "a/b", "a b", "db#", "x:addVersion"] {
            assert!(GcpSecretManager::check_name(bad).is_err(), "{bad:?}");
        }
    }
}
