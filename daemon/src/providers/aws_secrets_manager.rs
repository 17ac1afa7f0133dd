//! `aws-secrets-manager`: AWS Secrets Manager through the official AWS SDK.
//!
//! - `list`: every secret whose name starts with `prefix`, named without
//!   it (ListSecrets, filtered by name, every page);
//! - `get`: `name` returns the secret's current string as stored (binary
//!   secrets as standard base64); `name#key` returns one field of a JSON
//!   secret. Several names are read concurrently with GetSecretValue, one
//!   round trip's time: BatchGetSecretValue would need an IAM permission
//!   that least-privilege policies seldom grant;
//! - `set`: PutSecretValue, or CreateSecret for a new name; `name#key`
//!   merges one field into a JSON secret (creating `{"key": value}`).
//!
//! Credentials: `accessKeyId` and `secretAccessKey` (and `sessionToken`),
//! references read at each call; without them, a vault of agent-vaultd's
//! own config uses the SDK's standard chain (environment, `profile` or the
//! default profile with SSO and `credential_process`, web identity, ECS
//! and EC2 instance roles). A project's config must name its own keys.
//! `endpoint` points at a LocalStack-style service instead of AWS.

use std::collections::HashMap;
use std::path::Path;

use aws_sdk_secretsmanager::Client;
use aws_sdk_secretsmanager::config::http::HttpResponse;
use aws_sdk_secretsmanager::config::{Credentials, IdentityCache};
use aws_sdk_secretsmanager::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_secretsmanager::types::{Filter, FilterNameStringType};
use base64::Engine;
use serde::Deserialize;
use serde_json::Value;
use tokio::sync::OnceCell;

use super::contract::{FieldError, Listed, ProviderError};
use super::credential::{Credential, EnvLookup};
use super::json_fields;
use crate::secret::SecretString;

pub const FIELDS: &[&str] = &[
    "region",
    "profile",
    "endpoint",
    "prefix",
    "accessKeyId",
    "secretAccessKey",
    "sessionToken",
];

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawSettings {
    region: Option<String>,
    profile: Option<String>,
    endpoint: Option<String>,
    #[serde(default)]
    prefix: String,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
}

#[derive(Debug, Clone)]
struct Keys {
    access_key_id: Credential,
    secret_access_key: Credential,
    session_token: Option<Credential>,
}

#[derive(Debug, Clone)]
pub struct Settings {
    region: Option<String>,
    profile: Option<String>,
    endpoint: Option<url::Url>,
    prefix: String,
    /// None: the SDK's standard credential chain (own config only).
    keys: Option<Keys>,
}

/// The characters AWS allows in a secret's name.
fn name_chars(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c))
}

impl Settings {
    pub fn parse(fields: Value, dir: &Path, env: EnvLookup<'_>) -> Result<Self, FieldError> {
        let raw: RawSettings = serde_path_to_error::deserialize(fields)
            .map_err(|e| (e.path().to_string(), e.inner().to_string()))?;
        if let Some(r) = &raw.region
            && (r.is_empty() || !r.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        {
            return Err((
                "region".into(),
                "expected an AWS region, such as \"eu-west-1\"".into(),
            ));
        }
        if let Some(p) = &raw.profile
            && (p.is_empty() || p.chars().any(|c| c.is_control() || c.is_whitespace()))
        {
            return Err((
                "profile".into(),
                "expected the name of a profile in ~/.aws/config, such as \"prod\"".into(),
            ));
        }
        let endpoint = raw
            .endpoint
            .as_deref()
            .map(|e| {
                url::Url::parse(e)
                    .ok()
                    .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
                    .ok_or_else(|| {
                        (
                            "endpoint".to_string(),
                            "expected the service's URL, such as \"http://localhost:4566\""
                                .to_string(),
                        )
                    })
            })
            .transpose()?;
        if !name_chars(&raw.prefix) {
            return Err((
                "prefix".into(),
                "expected the start of secret names, made of letters, digits and / _ + = . @ -"
                    .into(),
            ));
        }
        let credential = |field: &str, v: &str| {
            Credential::parse(v, dir, env).map_err(|m| (field.to_string(), m))
        };
        let keys = match (&raw.access_key_id, &raw.secret_access_key) {
            (Some(id), Some(secret)) => Some(Keys {
                access_key_id: credential("accessKeyId", id)?,
                secret_access_key: credential("secretAccessKey", secret)?,
                session_token: raw
                    .session_token
                    .as_deref()
                    .map(|t| credential("sessionToken", t))
                    .transpose()?,
            }),
            (None, None) if raw.session_token.is_none() => None,
            (None, _) => {
                return Err((
                    "accessKeyId".into(),
                    "give accessKeyId and secretAccessKey together (sessionToken only with them)"
                        .into(),
                ));
            }
            (Some(_), None) => {
                return Err((
                    "secretAccessKey".into(),
                    "give accessKeyId and secretAccessKey together".into(),
                ));
            }
        };
        if keys.is_some() && raw.profile.is_some() {
            return Err((
                "profile".into(),
                "give either a profile or accessKeyId and secretAccessKey, not both".into(),
            ));
        }
        Ok(Settings {
            region: raw.region,
            profile: raw.profile,
            endpoint,
            prefix: raw.prefix,
            keys,
        })
    }

    pub fn definition(&self) -> String {
        format!(
            "{:?}\0{:?}\0{:?}\0{}\0{:?}",
            self.region,
            self.profile,
            self.endpoint.as_ref().map(url::Url::as_str),
            self.prefix,
            self.keys.as_ref().map(|k| k.access_key_id.reference())
        )
    }

    pub fn project_refusal(&self) -> Option<FieldError> {
        match &self.keys {
            None if self.profile.is_some() => Some((
                "profile".into(),
                "a project's config may not use agent-vaultd's AWS profiles; name the project's own keys: accessKeyId and secretAccessKey as \"env:NAME\"".into(),
            )),
            None => Some((
                "accessKeyId".into(),
                "a project's config must name its own AWS keys (accessKeyId and secretAccessKey as \"env:NAME\"); agent-vaultd's own AWS sign-in serves only its own config".into(),
            )),
            Some(k) => [
                ("accessKeyId", Some(&k.access_key_id)),
                ("secretAccessKey", Some(&k.secret_access_key)),
                ("sessionToken", k.session_token.as_ref()),
            ]
            .into_iter()
            .find(|(_, c)| c.is_some_and(Credential::is_file))
            .map(|(field, _)| {
                (
                    field.into(),
                    "a project's config may not name a file for agent-vaultd to read; use \"env:NAME\"".into(),
                )
            }),
        }
    }
}

/// The vault's keys, read at each call (no caching: a `file:` reference
/// that is rotated takes effect at once).
#[derive(Debug)]
struct KeysProvider(Keys);

impl aws_sdk_secretsmanager::config::ProvideCredentials for KeysProvider {
    fn provide_credentials<'a>(
        &'a self,
    ) -> aws_credential_types::provider::future::ProvideCredentials<'a>
    where
        Self: 'a,
    {
        use aws_credential_types::provider::error::CredentialsError;
        let read = |c: &Credential| {
            c.read().map_err(|why| {
                CredentialsError::provider_error(format!("{}: {why}", c.reference()))
            })
        };
        let keys = &self.0;
        aws_credential_types::provider::future::ProvideCredentials::ready((|| {
            let id = read(&keys.access_key_id)?;
            let secret = read(&keys.secret_access_key)?;
            let token = keys.session_token.as_ref().map(read).transpose()?;
            Ok(Credentials::new(
                id.expose(),
                secret.expose(),
                token.as_ref().map(|t| t.expose().to_string()),
                None,
                "agent-vault",
            ))
        })())
    }
}

pub struct AwsSecretsManager {
    vault: String,
    settings: Settings,
    client: OnceCell<Client>,
}

impl std::fmt::Debug for AwsSecretsManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsSecretsManager")
            .field("vault", &self.vault)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl AwsSecretsManager {
    pub fn new(vault: String, settings: Settings) -> Self {
        Self {
            vault,
            settings,
            client: OnceCell::new(),
        }
    }

    pub fn check_name(name: &str) -> Result<(), ProviderError> {
        let (secret, key) = json_fields::split(name);
        if secret.is_empty()
            || secret.len() > 512
            || !name_chars(secret)
            || !json_fields::key_ok(key)
        {
            return Err(ProviderError::InvalidName(format!(
                "\"{name}\" is not a secret name: expected letters, digits and / _ + = . @ - (such as \"prod/db\"), or \"prod/db#password\" for one field of a JSON secret"
            )));
        }
        Ok(())
    }

    pub fn knows(listed: &[Listed], name: &str) -> bool {
        let (secret, _) = json_fields::split(name);
        listed.iter().any(|l| l.name == secret)
    }

    pub fn location(&self) -> String {
        let mut at = match (&self.settings.endpoint, &self.settings.region) {
            (Some(e), _) => format!("AWS Secrets Manager at {e}"),
            (None, Some(r)) => format!("AWS Secrets Manager in {r}"),
            (None, None) => "AWS Secrets Manager".to_string(),
        };
        if !self.settings.prefix.is_empty() {
            at.push_str(&format!(", names under {}", self.settings.prefix));
        }
        if let Some(p) = &self.settings.profile {
            at.push_str(&format!(" (profile {p})"));
        }
        at
    }

    pub fn identity(&self) -> String {
        let who = match &self.settings.keys {
            Some(k) => k.access_key_id.digest(),
            None => format!("chain:{}", self.settings.profile.as_deref().unwrap_or("")),
        };
        format!(
            "aws:{:?}:{:?}:{}:{who}",
            self.settings.region,
            self.settings.endpoint.as_ref().map(url::Url::as_str),
            self.settings.prefix
        )
    }

    async fn client(&self) -> Result<&Client, ProviderError> {
        self.client
            .get_or_try_init(|| async {
                let s = &self.settings;
                let mut loader =
                    aws_config::defaults(aws_config::BehaviorVersion::latest());
                if let Some(r) = &s.region {
                    loader = loader.region(aws_sdk_secretsmanager::config::Region::new(r.clone()));
                }
                if let Some(p) = &s.profile {
                    loader = loader.profile_name(p);
                }
                if let Some(e) = &s.endpoint {
                    loader = loader.endpoint_url(e.as_str().trim_end_matches('/'));
                }
                if let Some(k) = &s.keys {
                    loader = loader
                        .credentials_provider(KeysProvider(k.clone()))
                        .identity_cache(IdentityCache::no_cache());
                }
                let config = loader.load().await;
                if config.region().is_none() {
                    return Err(ProviderError::NotConfigured {
                        vault: self.vault.clone(),
                        why: "no AWS region: set \"region\" in the vault's config (or AWS_REGION, or a region in the profile)".into(),
                    });
                }
                Ok(Client::new(&config))
            })
            .await
    }

    /// The contract's error for a failed call.
    fn failure<E>(&self, e: &SdkError<E, HttpResponse>) -> ProviderError
    where
        E: ProvideErrorMetadata + std::error::Error + 'static,
    {
        let vault = self.vault.clone();
        let (service, status) = match e {
            SdkError::ServiceError(s) => (s.err(), s.raw().status().as_u16()),
            SdkError::TimeoutError(_) => {
                return ProviderError::Unavailable {
                    vault,
                    why: "AWS did not answer in time".into(),
                };
            }
            SdkError::DispatchFailure(d) => {
                if let Some(why) = credentials_error(e) {
                    return ProviderError::Unauthorized { vault, why };
                }
                let why = if d.is_io() {
                    format!("cannot connect to {}", self.endpoint_name())
                } else if d.is_timeout() {
                    "AWS did not answer in time".to_string()
                } else {
                    format!("the request to {} failed", self.endpoint_name())
                };
                return ProviderError::Unavailable { vault, why };
            }
            other => {
                return ProviderError::Unavailable {
                    vault,
                    why: format!(
                        "the call to {} failed: {}",
                        self.endpoint_name(),
                        aws_sdk_secretsmanager::error::DisplayErrorContext(other)
                    ),
                };
            }
        };
        // An error in the XML shape of AWS's query protocol (which
        // AWS-compatible services such as moto give for IAM refusals) is
        // read from the body; one in neither shape (a proxy's page) is
        // judged by its HTTP status.
        let xml = match e {
            SdkError::ServiceError(s) => xml_error(s.raw().body().bytes().unwrap_or_default()),
            _ => None,
        };
        let (code, message) = match (service.code(), xml) {
            (Some(c), _) => (Some(c.to_string()), service.message().map(str::to_string)),
            (None, Some((c, m))) => (Some(c), m),
            (None, None) => (None, None),
        };
        let why = match (&code, message) {
            (Some(c), Some(m)) => format!("{c}: {m}"),
            (Some(c), None) => c.clone(),
            (None, _) => format!("HTTP status {status}"),
        };
        let code = code.as_deref().unwrap_or(match status {
            401 => "UnrecognizedClientException",
            403 => "AccessDeniedException",
            429 => "ThrottlingException",
            _ => "",
        });
        match code {
            "AccessDeniedException" | "AccessDenied" => ProviderError::Forbidden { vault, why },
            "UnrecognizedClientException"
            | "InvalidClientTokenId"
            | "InvalidSignatureException"
            | "SignatureDoesNotMatch"
            | "IncompleteSignature"
            | "MissingAuthenticationToken"
            | "ExpiredTokenException"
            | "ExpiredToken" => ProviderError::Unauthorized { vault, why },
            "DecryptionFailure" => ProviderError::Forbidden {
                vault,
                why: format!("{why} (the secret's KMS key may not be used)"),
            },
            "ThrottlingException" | "TooManyRequestsException" | "RequestLimitExceeded" => {
                ProviderError::Unavailable {
                    vault,
                    why: format!("AWS is limiting the rate of requests ({why})"),
                }
            }
            "InvalidRequestException" | "InvalidParameterException" | "ValidationException" => {
                ProviderError::Invalid(format!(
                    "vault \"{vault}\": AWS refused the request ({why})"
                ))
            }
            _ => ProviderError::Unavailable { vault, why },
        }
    }

    fn endpoint_name(&self) -> String {
        match &self.settings.endpoint {
            Some(e) => e.to_string(),
            None => "AWS".to_string(),
        }
    }

    pub async fn list(&self) -> Result<Vec<Listed>, ProviderError> {
        let client = self.client().await?;
        let mut request = client.list_secrets().max_results(100);
        if !self.settings.prefix.is_empty() {
            request = request.filters(
                Filter::builder()
                    .key(FilterNameStringType::Name)
                    .values(&self.settings.prefix)
                    .build(),
            );
        }
        let mut pages = request.into_paginator().send();
        let mut out = Vec::new();
        while let Some(page) = pages.next().await {
            let page = page.map_err(|e| self.failure(&e))?;
            for s in page.secret_list() {
                let Some(name) = s
                    .name()
                    .and_then(|n| n.strip_prefix(self.settings.prefix.as_str()))
                    .filter(|n| !n.is_empty())
                else {
                    continue;
                };
                out.push(Listed {
                    name: name.to_string(),
                    id: s.arn().unwrap_or_default().to_string(),
                    ..Listed::default()
                });
            }
            if out.len() > 100_000 {
                return Err(ProviderError::Unavailable {
                    vault: self.vault.clone(),
                    why: "more than 100000 secrets under the prefix; set a narrower prefix".into(),
                });
            }
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A secret's current value as text, or None if there is no such
    /// secret.
    async fn read(
        &self,
        client: &Client,
        secret: &str,
    ) -> Result<Option<SecretString>, ProviderError> {
        let id = format!("{}{secret}", self.settings.prefix);
        match client.get_secret_value().secret_id(id).send().await {
            Ok(out) => {
                if let Some(s) = out.secret_string() {
                    Ok(Some(SecretString::new(s.to_string())))
                } else if let Some(b) = out.secret_binary() {
                    Ok(Some(SecretString::new(
                        base64::engine::general_purpose::STANDARD.encode(b.as_ref()),
                    )))
                } else {
                    Ok(None)
                }
            }
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(self.failure(&e)),
        }
    }

    pub async fn get(
        &self,
        names: &[String],
    ) -> Result<HashMap<String, SecretString>, ProviderError> {
        let client = self.client().await?;
        json_fields::read_all(&self.vault, names, |s| self.read(client, s)).await
    }

    pub async fn set(&self, writes: &[(String, SecretString)]) -> Result<(), ProviderError> {
        let client = self.client().await?;
        for (name, value) in writes {
            let (secret, text) =
                json_fields::to_write(&self.vault, name, value, |s| self.read(client, s)).await?;
            let id = format!("{}{secret}", self.settings.prefix);
            let put = client
                .put_secret_value()
                .secret_id(&id)
                .secret_string(text.expose())
                .send()
                .await;
            match put {
                Ok(_) => {}
                Err(e) if e.code() == Some("ResourceNotFoundException") => {
                    client
                        .create_secret()
                        .name(&id)
                        .secret_string(text.expose())
                        .send()
                        .await
                        .map_err(|e| self.failure(&e))?;
                }
                Err(e) => return Err(self.failure(&e)),
            }
        }
        Ok(())
    }
}

/// The code and message of an error in the query protocol's XML shape
/// (`<Error><Code>..</Code><Message>..</Message></Error>`).
fn xml_error(body: &[u8]) -> Option<(String, Option<String>)> {
    let text = std::str::from_utf8(body).ok()?;
    let element = |tag: &str| {
        let (_, rest) = text.split_once(&format!("<{tag}>"))?;
        let (inner, _) = rest.split_once(&format!("</{tag}>"))?;
        Some(
            inner
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&quot;", "\"")
                .replace("&apos;", "'")
                .replace("&amp;", "&"),
        )
    };
    let code = element("Code").filter(|c| !c.is_empty() && c.len() < 100)?;
    Some((code, element("Message")))
}

/// Why the SDK found no usable credentials, if that is what failed.
fn credentials_error(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use aws_credential_types::provider::error::CredentialsError;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(c) = cause {
        if let Some(ce) = c.downcast_ref::<CredentialsError>() {
            // Its cause says what is wrong (the chain's providers, or our
            // reference); the error itself only "while loading credentials".
            let why =
                std::error::Error::source(ce).map_or_else(|| ce.to_string(), |s| s.to_string());
            return Some(format!("no usable AWS credentials: {why}"));
        }
        cause = c.source();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<Settings, FieldError> {
        let env = |_: &str| Some("x".to_string());
        Settings::parse(v, Path::new("/etc"), &env)
    }

    #[test]
    fn settings_names_and_refusals() {
        let own = parse(serde_json::json!({"region": "eu-west-1", "prefix": "app/"}));
        assert!(own.as_ref().is_ok_and(|s| s.keys.is_none()));
        // The daemon's own chain is refused to a project.
        assert!(own.is_ok_and(|s| s.project_refusal().is_some_and(|(f, _)| f == "accessKeyId")));
        let keys = parse(serde_json::json!({
            "region": "us-east-1",
            "accessKeyId": "env:AWS_ID",
            "secretAccessKey": "env:AWS_SECRET"
        }));
        assert!(keys.is_ok_and(|s| s.project_refusal().is_none()));
        let file = parse(serde_json::json!({
            "accessKeyId": "env:AWS_ID",
            "secretAccessKey": "file:aws.secret"
        }));
        assert!(file.is_ok_and(|s| {
            s.project_refusal()
                .is_some_and(|(f, _)| f == "secretAccessKey")
        }));
        for (bad, field) in [
            (serde_json::json!({"regoin": "x"}), "regoin"),
            (serde_json::json!({"region": "eu west"}), "region"),
            (
                serde_json::json!({"endpoint": "localhost:4566"}),
                "endpoint",
            ),
            (serde_json::json!({"prefix": "a b"}), "prefix"),
            (
                serde_json::json!({"accessKeyId": "env:A"}),
                "secretAccessKey",
            ),
            (
                serde_json::json!({"accessKeyId": "AKIAEXAMPLE", "secretAccessKey": "env:S"}),
                "accessKeyId",
            ),
            (serde_json::json!({"sessionToken": "env:T"}), "accessKeyId"),
        ] {
            let r = parse(bad.clone());
            assert!(
                r.as_ref().is_err_and(|(f, _)| f == field || f.is_empty()),
                "{bad}: {:?}",
                r.map(|_| ())
            );
        }
        assert_eq!(
            xml_error(b"<ErrorResponse><Errors><Error><Code>AccessDenied</Code><Message>User: a is not authorized to perform: x &amp; y</Message></Error></Errors></ErrorResponse>"),
            Some(("AccessDenied".into(), Some("User: a is not authorized to perform: x & y".into())))
        );
        assert_eq!(xml_error(b"{\"message\": \"no\"}"), None);
        assert!(AwsSecretsManager::check_name("prod/db#password").is_ok());
        assert!(AwsSecretsManager::check_name("prod/db").is_ok());
        for bad in ["", "a b", "db#", "x\ny", "#k"] {
            assert!(AwsSecretsManager::check_name(bad).is_err(), "{bad:?}");
        }
    }
}
