//! `hashicorp-vault`: a KV version 2 secrets engine of HashiCorp Vault or
//! OpenBao, over its HTTP API.
//!
//! - `list`: every entry under `path` in `mount`, recursively (LIST on
//!   `metadata/`), named by its path below `path`;
//! - `get`: `entry` returns the entry's data as a JSON object;
//!   `entry#key` returns that key's value;
//! - `set`: `entry#key` merges one key into the entry (creating it if
//!   needed); `entry` with a JSON object puts the whole entry.
//!
//! Credentials: `token`, or AppRole (`roleId`, `secretId`): the token it
//! logs in for is renewed while it may be, and logged in for again when it
//! expires or is refused, without a restart. A static token is renewed
//! too when it is renewable. Without either, a vault of agent-vaultd's own
//! config uses the daemon user's own token (`VAULT_TOKEN` or `BAO_TOKEN`,
//! else `~/.vault-token`); a project's config must name its own.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;
use tokio::sync::Mutex;

use super::contract::{FieldError, Listed, ProviderError};
use super::credential::{Credential, EnvLookup};
use crate::secret::SecretString;

pub const FIELDS: &[&str] = &[
    "address",
    "token",
    "roleId",
    "secretId",
    "namespace",
    "mount",
    "path",
    "caCert",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    address: Option<String>,
    token: Option<String>,
    role_id: Option<String>,
    secret_id: Option<String>,
    namespace: Option<String>,
    mount: Option<String>,
    path: Option<String>,
    ca_cert: Option<String>,
}

#[derive(Debug, Clone)]
enum Auth {
    Token(Credential),
    AppRole {
        role_id: Credential,
        secret_id: Credential,
    },
    /// The daemon user's own token (agent-vaultd's own config only).
    Ambient,
}

#[derive(Debug, Clone)]
pub struct Settings {
    address: url::Url,
    auth: Auth,
    namespace: Option<String>,
    mount: String,
    /// The prefix, without slashes at either end ("" for the mount's root).
    path: String,
    ca_cert: Option<PathBuf>,
}

/// One path segment or more, without empty, `.` or `..` segments.
fn clean_path(s: &str) -> Option<String> {
    let trimmed = s.trim_matches('/');
    if trimmed.is_empty() {
        return Some(String::new());
    }
    trimmed
        .split('/')
        .all(|seg| {
            !seg.is_empty() && seg != "." && seg != ".." && !seg.chars().any(char::is_control)
        })
        .then(|| trimmed.to_string())
}

impl Settings {
    pub fn parse(fields: Value, dir: &Path, env: EnvLookup<'_>) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        let address = raw
            .address
            .as_deref()
            .and_then(|a| url::Url::parse(a).ok())
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                (
                    "address".to_string(),
                    "expected the server's URL, such as \"https://vault.example.com:8200\""
                        .to_string(),
                )
            })?;
        let credential = |field: &str, v: &str| {
            Credential::parse(v, dir, env).map_err(|m| (field.to_string(), m))
        };
        let auth = match (&raw.token, &raw.role_id, &raw.secret_id) {
            (Some(t), None, None) => Auth::Token(credential("token", t)?),
            (None, Some(r), Some(s)) => Auth::AppRole {
                role_id: credential("roleId", r)?,
                secret_id: credential("secretId", s)?,
            },
            (None, None, None) => Auth::Ambient,
            (Some(_), _, _) => {
                return Err((
                    "token".into(),
                    "give either token, or roleId and secretId (AppRole), not both".into(),
                ));
            }
            (None, _, _) => {
                return Err((
                    "roleId".into(),
                    "AppRole needs both roleId and secretId".into(),
                ));
            }
        };
        let mount = clean_path(raw.mount.as_deref().unwrap_or("secret"))
            .filter(|m| !m.is_empty())
            .ok_or_else(|| {
                (
                    "mount".to_string(),
                    "expected the KV v2 engine's mount path, such as \"secret\"".to_string(),
                )
            })?;
        let path = clean_path(raw.path.as_deref().unwrap_or("")).ok_or_else(|| {
            (
                "path".to_string(),
                "expected a path prefix such as \"apps/web\"".to_string(),
            )
        })?;
        if let Some(ns) = &raw.namespace
            && clean_path(ns).is_none_or(|n| n.is_empty())
        {
            return Err((
                "namespace".into(),
                "expected a namespace such as \"team-a\"".into(),
            ));
        }
        let ca_cert = match raw.ca_cert.as_deref() {
            Some("") => return Err(("caCert".into(), "expected the path of a PEM file".into())),
            Some(p) => Some(dir.join(p)),
            None => None,
        };
        Ok(Settings {
            address,
            auth,
            namespace: raw.namespace,
            mount,
            path,
            ca_cert,
        })
    }

    pub fn definition(&self) -> String {
        let auth = match &self.auth {
            Auth::Token(t) => format!("token {}", t.reference()),
            Auth::AppRole { role_id, secret_id } => {
                format!("approle {} {}", role_id.reference(), secret_id.reference())
            }
            Auth::Ambient => "ambient".into(),
        };
        format!(
            "{}\0{auth}\0{:?}\0{}\0{}\0{:?}",
            self.address, self.namespace, self.mount, self.path, self.ca_cert
        )
    }

    pub fn project_refusal(&self) -> Option<FieldError> {
        let files = match &self.auth {
            Auth::Ambient => {
                return Some((
                    "token".into(),
                    "a project's hashicorp-vault vault must name its own token (or roleId and secretId), as \"env:NAME\" from the agent's environment; the token of agent-vaultd's user serves only vaults of agent-vaultd's own config".into(),
                ));
            }
            Auth::Token(t) => vec![("token", t)],
            Auth::AppRole { role_id, secret_id } => {
                vec![("roleId", role_id), ("secretId", secret_id)]
            }
        };
        if let Some((field, _)) = files.iter().find(|(_, c)| c.is_file()) {
            return Some((
                field.to_string(),
                "a project's config may not name a file for agent-vaultd to read; use \"env:NAME\""
                    .into(),
            ));
        }
        self.ca_cert.as_ref().map(|_| {
            (
                "caCert".into(),
                "a project's config may not name a file for agent-vaultd to read; set caCert in agent-vaultd's own config".into(),
            )
        })
    }
}

/// The token in use, and when to renew or replace it.
struct Session {
    token: SecretString,
    /// When the token stops working (None: it does not expire).
    expires: Option<Instant>,
    renewable: bool,
    /// Its lifetime when it was issued or last renewed.
    ttl: Duration,
}

pub struct HashicorpVault {
    vault: String,
    settings: Settings,
    client: Result<reqwest::Client, String>,
    session: Mutex<Option<Session>>,
}

impl std::fmt::Debug for HashicorpVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HashicorpVault")
            .field("vault", &self.vault)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

/// A name: the entry, and the key after `#` if any.
fn split_name(name: &str) -> (&str, Option<&str>) {
    match name.split_once('#') {
        Some((entry, key)) => (entry, Some(key)),
        None => (name, None),
    }
}

impl HashicorpVault {
    pub fn new(vault: String, settings: Settings) -> Self {
        let client = Self::client(&settings);
        Self {
            vault,
            settings,
            client,
            session: Mutex::new(None),
        }
    }

    fn client(settings: &Settings) -> Result<reqwest::Client, String> {
        let mut b = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &settings.ca_cert {
            let pem = std::fs::read(path)
                .map_err(|e| format!("cannot read caCert {}: {e}", path.display()))?;
            let cert = reqwest::Certificate::from_pem(&pem)
                .map_err(|e| format!("caCert {} is not a PEM certificate: {e}", path.display()))?;
            b = b.add_root_certificate(cert);
        }
        b.build()
            .map_err(|e| format!("cannot set up an HTTP client: {e}"))
    }

    pub fn check_name(name: &str) -> Result<(), ProviderError> {
        let (entry, key) = split_name(name);
        if clean_path(entry).is_none_or(|e| e.is_empty()) || key.is_some_and(str::is_empty) {
            return Err(ProviderError::InvalidName(format!(
                "\"{name}\" is not an entry: expected a path such as \"db/prod\", or \"db/prod#password\" for one key"
            )));
        }
        Ok(())
    }

    pub fn knows(listed: &[Listed], name: &str) -> bool {
        let (entry, _) = split_name(name);
        let entry = entry.trim_matches('/');
        listed.iter().any(|l| l.name == entry)
    }

    pub fn location(&self) -> String {
        let mut where_ = format!(
            "{} {}/{}",
            self.settings.address, self.settings.mount, self.settings.path
        );
        if let Some(ns) = &self.settings.namespace {
            where_.push_str(&format!(" (namespace {ns})"));
        }
        where_.trim_end_matches('/').to_string()
    }

    pub fn identity(&self) -> String {
        let who = match &self.settings.auth {
            Auth::Token(t) => format!("token:{}", t.digest()),
            Auth::AppRole { role_id, .. } => format!("approle:{}", role_id.digest()),
            Auth::Ambient => "ambient".into(),
        };
        format!("vault:{}:{who}", self.location())
    }

    fn err(
        &self,
        kind: fn(String, String) -> ProviderError,
        why: impl Into<String>,
    ) -> ProviderError {
        kind(self.vault.clone(), why.into())
    }

    fn unavailable(&self, why: impl Into<String>) -> ProviderError {
        self.err(|vault, why| ProviderError::Unavailable { vault, why }, why)
    }

    fn url(&self, api_path: &str) -> Result<url::Url, ProviderError> {
        super::http::api_url(&self.settings.address, api_path).map_err(|e| {
            ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: e,
            }
        })
    }

    fn request(
        &self,
        method: reqwest::Method,
        api_path: &str,
    ) -> Result<reqwest::RequestBuilder, ProviderError> {
        let client = self
            .client
            .as_ref()
            .map_err(|why| ProviderError::NotConfigured {
                vault: self.vault.clone(),
                why: why.clone(),
            })?;
        let mut r = client.request(method, self.url(api_path)?);
        if let Some(ns) = &self.settings.namespace {
            r = r.header("X-Vault-Namespace", ns);
        }
        Ok(r)
    }

    /// Sends a request; returns the status and the JSON body (if any).
    async fn send(&self, r: reqwest::RequestBuilder) -> Result<(u16, Value), ProviderError> {
        super::http::send_json(&self.vault, self.settings.address.as_str(), r).await
    }

    /// The server's own words for an error (its `errors` list).
    fn why(status: u16, body: &Value) -> String {
        let words: Vec<String> = body["errors"]
            .as_array()
            .map(|e| {
                e.iter()
                    .filter_map(Value::as_str)
                    .map(|s| s.chars().filter(|c| !c.is_control()).take(200).collect())
                    .collect()
            })
            .unwrap_or_default();
        if words.is_empty() {
            format!("HTTP {status}")
        } else {
            format!("{} (HTTP {status})", words.join("; "))
        }
    }

    fn status_error(&self, status: u16, body: &Value) -> ProviderError {
        let why = Self::why(status, body);
        match status {
            401 | 403 => ProviderError::Forbidden {
                vault: self.vault.clone(),
                why: format!(
                    "{why}: the token is invalid or expired, or its policy does not allow this path"
                ),
            },
            404 => ProviderError::NotFound {
                vault: self.vault.clone(),
                why,
            },
            400 => ProviderError::Invalid(format!("vault \"{}\": {why}", self.vault)),
            429 => self.unavailable(format!("rate-limited: {why}")),
            _ => self.unavailable(why),
        }
    }

    async fn login(&self) -> Result<Session, ProviderError> {
        let unauthorized = |why: String| ProviderError::Unauthorized {
            vault: self.vault.clone(),
            why,
        };
        match &self.settings.auth {
            Auth::Token(t) => {
                let token = t.read().map_err(|why| {
                    unauthorized(format!(
                        "its token ({}) cannot be used: {why}",
                        t.reference()
                    ))
                })?;
                self.lookup(token).await
            }
            Auth::Ambient => {
                let token = std::env::var("VAULT_TOKEN")
                    .or_else(|_| std::env::var("BAO_TOKEN"))
                    .ok()
                    .filter(|t| !t.is_empty())
                    .or_else(|| {
                        let home = std::env::var_os("HOME")?;
                        let t = std::fs::read_to_string(Path::new(&home).join(".vault-token")).ok()?;
                        Some(t.trim().to_string())
                    })
                    .ok_or_else(|| unauthorized("no token: set token (or roleId and secretId) on the vault, or sign in as agent-vaultd's user (VAULT_TOKEN, or `vault login`)".into()))?;
                self.lookup(SecretString::new(token)).await
            }
            Auth::AppRole { role_id, secret_id } => {
                let role = role_id
                    .read()
                    .map_err(|why| unauthorized(format!("roleId: {why}")))?;
                let secret = secret_id
                    .read()
                    .map_err(|why| unauthorized(format!("secretId: {why}")))?;
                let body =
                    serde_json::json!({"role_id": role.expose(), "secret_id": secret.expose()});
                let (status, res) = self
                    .send(
                        self.request(reqwest::Method::POST, "auth/approle/login")?
                            .json(&body),
                    )
                    .await?;
                if status != 200 {
                    return Err(unauthorized(format!(
                        "AppRole login failed: {}",
                        Self::why(status, &res)
                    )));
                }
                let auth: AuthBlock = serde_json::from_value(res["auth"].clone())
                    .map_err(|_| self.unavailable("the AppRole login answered without a token"))?;
                Ok(Self::session(
                    auth.client_token,
                    auth.lease_duration,
                    auth.renewable,
                ))
            }
        }
    }

    fn session(token: String, ttl_secs: u64, renewable: bool) -> Session {
        let ttl = Duration::from_secs(ttl_secs);
        Session {
            token: SecretString::new(token),
            expires: (ttl_secs > 0).then(|| Instant::now() + ttl),
            renewable,
            ttl,
        }
    }

    /// A static token: how long it lives, and whether it can be renewed.
    async fn lookup(&self, token: SecretString) -> Result<Session, ProviderError> {
        let (status, res) = self
            .send(
                self.request(reqwest::Method::GET, "auth/token/lookup-self")?
                    .header("X-Vault-Token", token.expose()),
            )
            .await?;
        if status != 200 {
            return Err(ProviderError::Unauthorized {
                vault: self.vault.clone(),
                why: format!("the token was refused: {}", Self::why(status, &res)),
            });
        }
        let ttl = res["data"]["ttl"].as_u64().unwrap_or(0);
        let renewable = res["data"]["renewable"].as_bool().unwrap_or(false);
        Ok(Session {
            token,
            expires: (ttl > 0).then(|| Instant::now() + Duration::from_secs(ttl)),
            renewable,
            ttl: Duration::from_secs(ttl),
        })
    }

    /// A token to use now: renewed when past half its life, logged in for
    /// again when it expired.
    async fn token(&self) -> Result<SecretString, ProviderError> {
        let mut guard = self.session.lock().await;
        if let Some(s) = guard.as_mut()
            && let Some(expires) = s.expires
        {
            let left = expires.saturating_duration_since(Instant::now());
            if left.is_zero() {
                *guard = None;
            } else if s.renewable && left < s.ttl / 2 {
                let (status, res) = self
                    .send(
                        self.request(reqwest::Method::POST, "auth/token/renew-self")?
                            .header("X-Vault-Token", s.token.expose()),
                    )
                    .await?;
                match serde_json::from_value::<AuthBlock>(res["auth"].clone()) {
                    Ok(a) if status == 200 => {
                        *s = Self::session(a.client_token, a.lease_duration, a.renewable);
                    }
                    // Not renewable any more (its max TTL): use it while it
                    // lasts, then log in again.
                    _ => s.renewable = false,
                }
            }
        }
        if guard.is_none() {
            *guard = Some(self.login().await?);
        }
        Ok(guard.as_ref().map(|s| s.token.clone()).unwrap_or_default())
    }

    /// Sends an authenticated request; a refused token is replaced once
    /// (it may have been revoked or have expired early).
    async fn call(
        &self,
        build: impl Fn() -> Result<reqwest::RequestBuilder, ProviderError>,
    ) -> Result<(u16, Value), ProviderError> {
        let token = self.token().await?;
        let (status, body) = self
            .send(build()?.header("X-Vault-Token", token.expose()))
            .await?;
        if status != 403 || matches!(self.settings.auth, Auth::Token(_) | Auth::Ambient) {
            return Ok((status, body));
        }
        *self.session.lock().await = None;
        let token = self.token().await?;
        self.send(build()?.header("X-Vault-Token", token.expose()))
            .await
    }

    fn data_path(&self, entry: &str) -> String {
        let full = [self.settings.path.as_str(), entry.trim_matches('/')]
            .iter()
            .filter(|p| !p.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join("/");
        format!("{}/data/{full}", self.settings.mount)
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let list = reqwest::Method::from_bytes(b"LIST").map_err(|_| self.unavailable("LIST"))?;
        let mut out = Vec::new();
        let mut dirs = vec![String::new()];
        while let Some(dir) = dirs.pop() {
            let under = [self.settings.path.as_str(), dir.trim_end_matches('/')]
                .iter()
                .filter(|p| !p.is_empty())
                .copied()
                .collect::<Vec<_>>()
                .join("/");
            let api = format!("{}/metadata/{under}", self.settings.mount);
            let (status, body) = self.call(|| self.request(list.clone(), &api)).await?;
            if status == 404 {
                continue; // an empty prefix
            }
            if status != 200 {
                return Err(self.status_error(status, &body));
            }
            for key in body["data"]["keys"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
            {
                let name = format!("{dir}{key}");
                if key.ends_with('/') {
                    dirs.push(name);
                } else {
                    out.push(Listed {
                        name,
                        ..Listed::default()
                    });
                }
            }
            if out.len() > 100_000 {
                return Err(self
                    .unavailable("more than 100000 entries under the path; set a narrower path"));
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// An entry's data (its newest version).
    async fn read(
        &self,
        entry: &str,
    ) -> Result<Option<serde_json::Map<String, Value>>, ProviderError> {
        let api = self.data_path(entry);
        let (status, body) = self
            .call(|| self.request(reqwest::Method::GET, &api))
            .await?;
        match status {
            200 => Ok(body["data"]["data"].as_object().cloned()),
            404 => Ok(None),
            _ => Err(self.status_error(status, &body)),
        }
    }

    pub async fn get(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, SecretString>, ProviderError> {
        let mut values = HashMap::new();
        let mut unknown = Vec::new();
        let mut entries: HashMap<&str, Option<serde_json::Map<String, Value>>> = HashMap::new();
        for name in names {
            let (entry, key) = split_name(name);
            if !entries.contains_key(entry) {
                entries.insert(entry, self.read(entry).await?);
            }
            let data = entries.get(entry).and_then(Option::as_ref);
            let value = match (data, key) {
                (None, _) => None,
                (Some(d), None) => Some(Value::Object(d.clone()).to_string()),
                (Some(d), Some(k)) => d.get(k).map(|v| match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                }),
            };
            match value {
                Some(v) => {
                    values.insert(name.clone(), SecretString::new(v));
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
        for (name, value) in writes {
            let (entry, key) = split_name(name);
            let api = self.data_path(entry);
            let (status, body) = match key {
                Some(k) => {
                    let patch = serde_json::json!({"data": {k: value.expose()}});
                    let (status, body) = self
                        .call(|| {
                            Ok(self
                                .request(reqwest::Method::PATCH, &api)?
                                .header("Content-Type", "application/merge-patch+json")
                                .body(patch.to_string()))
                        })
                        .await?;
                    if status == 404 {
                        // A new entry: create it with this one key.
                        self.call(|| Ok(self.request(reqwest::Method::POST, &api)?.json(&patch)))
                            .await?
                    } else {
                        (status, body)
                    }
                }
                None => {
                    let data: serde_json::Map<String, Value> = serde_json::from_str(value.expose())
                        .map_err(|_| {
                            ProviderError::Invalid(format!(
                                "vault \"{}\": the value for \"{name}\" must be a JSON object of keys and values (the whole entry); to set one key, write \"{name}#KEY\"",
                                self.vault
                            ))
                        })?;
                    let put = serde_json::json!({"data": data});
                    self.call(|| Ok(self.request(reqwest::Method::POST, &api)?.json(&put)))
                        .await?
                }
            };
            if !(200..300).contains(&status) {
                return Err(self.status_error(status, &body));
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
        let env = |_: &str| None;
        let parse = |v: Value| Settings::parse(v, Path::new("/etc/av"), &env);
        let s = parse(
            serde_json::json!({"address": "http://127.0.0.1:8200", "token": "env:VT", "path": "/apps/web/"}),
        );
        assert!(
            s.as_ref()
                .is_ok_and(|s| s.path == "apps/web" && s.mount == "secret"),
            "{:?}",
            s.err()
        );
        for (bad, field) in [
            (serde_json::json!({"token": "env:T"}), "address"),
            (
                serde_json::json!({"address": "ftp://x", "token": "env:T"}),
                "address",
            ),
            (
                serde_json::json!({"address": "http://x", "token": "env:T", "roleId": "env:R"}),
                "token",
            ),
            (
                serde_json::json!({"address": "http://x", "roleId": "env:R"}),
                "roleId",
            ),
            (
                serde_json::json!({"address": "http://x", "token": "env:T", "path": "a/../b"}),
                "path",
            ),
            (
                serde_json::json!({"address": "http://x", "token": "env:T", "adress": "y"}),
                "adress",
            ),
        ] {
            let e = parse(bad.clone()).err();
            assert!(
                e.as_ref()
                    .is_some_and(|(f, m)| f == field || m.contains(field)),
                "{bad}: {e:?}"
            );
        }
        let ambient = parse(serde_json::json!({"address": "http://x"})).ok();
        assert!(
            ambient
                .and_then(|s| s.project_refusal())
                .is_some_and(|(f, _)| f == "token")
        );
        assert!(HashicorpVault::check_name("db/prod#password").is_ok());
        assert!(HashicorpVault::check_name("db/../x").is_err());
        assert!(HashicorpVault::check_name("db#").is_err());
        let listed = vec![Listed {
            name: "db/prod".into(),
            ..Listed::default()
        }];
        assert!(HashicorpVault::knows(&listed, "db/prod#password"));
        assert!(!HashicorpVault::knows(&listed, "db#password"));
    }
}
