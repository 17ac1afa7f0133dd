//! Google access tokens, from the sources Google's own libraries use:
//!
//! - a JSON key file's content: a service account's key (`"type":
//!   "service_account"`: a JWT signed with its RSA key, traded at its
//!   `token_uri`) or a gcloud user's application-default login
//!   (`"authorized_user"`: its refresh token traded at Google's endpoint);
//! - the application-default chain, for agent-vaultd's own config only:
//!   `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's
//!   `~/.config/gcloud/application_default_credentials.json`, else the
//!   machine's metadata server (GCE, GKE, Cloud Run; `GCE_METADATA_HOST`
//!   moves it, as in Google's libraries).

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use super::contract::ProviderError;
use super::credential::Credential;
use super::http;
use super::oauth;
use crate::secret::SecretString;

const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// Where a vault's Google credentials come from.
#[derive(Debug, Clone)]
pub enum Source {
    /// A reference to a JSON key's content or file.
    Key(Credential),
    /// The application-default chain (agent-vaultd's own config only).
    Ambient,
}

#[derive(Deserialize)]
struct KeyFile {
    #[serde(rename = "type")]
    kind: String,
    client_email: Option<String>,
    private_key: Option<SecretString>,
    private_key_id: Option<String>,
    token_uri: Option<String>,
    client_id: Option<String>,
    client_secret: Option<SecretString>,
    refresh_token: Option<SecretString>,
}

fn unauthorized(vault: &str, why: impl Into<String>) -> ProviderError {
    ProviderError::Unauthorized {
        vault: vault.to_string(),
        why: why.into(),
    }
}

/// A fresh access token and how long it lives.
pub async fn fetch(
    vault: &str,
    client: &reqwest::Client,
    source: &Source,
) -> Result<(SecretString, Duration), ProviderError> {
    match source {
        Source::Key(c) => {
            let text = c.read().map_err(|why| {
                unauthorized(
                    vault,
                    format!("its credentials ({}) cannot be used: {why}", c.reference()),
                )
            })?;
            from_key(vault, client, &text, &c.reference()).await
        }
        Source::Ambient => {
            if let Some(path) = application_default_file() {
                let text = std::fs::read_to_string(&path).map_err(|e| {
                    unauthorized(vault, format!("cannot read {}: {e}", path.display()))
                })?;
                return from_key(
                    vault,
                    client,
                    &SecretString::new(text),
                    &path.display().to_string(),
                )
                .await;
            }
            metadata_server(vault, client).await
        }
    }
}

/// `GOOGLE_APPLICATION_CREDENTIALS`, else gcloud's application-default
/// login if it exists.
fn application_default_file() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("GOOGLE_APPLICATION_CREDENTIALS").filter(|p| !p.is_empty()) {
        return Some(PathBuf::from(p));
    }
    let config = std::env::var_os("CLOUDSDK_CONFIG")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config/gcloud")))?;
    Some(config.join("application_default_credentials.json")).filter(|p| p.is_file())
}

async fn from_key(
    vault: &str,
    client: &reqwest::Client,
    text: &SecretString,
    from: &str,
) -> Result<(SecretString, Duration), ProviderError> {
    let key: KeyFile = serde_json::from_str(text.expose()).map_err(|_| {
        unauthorized(vault, format!("{from} is not a Google JSON key (a service account's key, or gcloud's application-default login)"))
    })?;
    let (token_uri, form): (String, Vec<(&str, String)>) = match key.kind.as_str() {
        "service_account" => {
            let (Some(email), Some(pem)) = (&key.client_email, &key.private_key) else {
                return Err(unauthorized(
                    vault,
                    format!("{from}: a service account's key needs client_email and private_key"),
                ));
            };
            let token_uri = key
                .token_uri
                .clone()
                .unwrap_or_else(|| GOOGLE_TOKEN_URI.into());
            let jwt = signed_jwt(email, key.private_key_id.as_deref(), pem, &token_uri)
                .map_err(|why| unauthorized(vault, format!("{from}: {why}")))?;
            (
                token_uri,
                vec![
                    (
                        "grant_type",
                        "urn:ietf:params:oauth:grant-type:jwt-bearer".into(),
                    ),
                    ("assertion", jwt),
                ],
            )
        }
        "authorized_user" => {
            let (Some(id), Some(secret), Some(refresh)) =
                (&key.client_id, &key.client_secret, &key.refresh_token)
            else {
                return Err(unauthorized(
                    vault,
                    format!(
                        "{from}: an application-default login needs client_id, client_secret and refresh_token"
                    ),
                ));
            };
            (
                key.token_uri
                    .clone()
                    .unwrap_or_else(|| GOOGLE_TOKEN_URI.into()),
                vec![
                    ("grant_type", "refresh_token".into()),
                    ("client_id", id.clone()),
                    ("client_secret", secret.expose().to_string()),
                    ("refresh_token", refresh.expose().to_string()),
                ],
            )
        }
        other => {
            return Err(unauthorized(
                vault,
                format!(
                    "{from}: credentials of type \"{other}\" are not supported; use a service account's JSON key"
                ),
            ));
        }
    };
    let url = url::Url::parse(&token_uri)
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| unauthorized(vault, format!("{from}: token_uri is not a URL")))?;
    let server = url.origin().ascii_serialization();
    let (status, body) = http::send_json(vault, &server, client.post(url).form(&form)).await?;
    oauth::token_answer(vault, &server, status, &body)
}

/// A JWT asking for an access token with the cloud-platform scope, signed
/// with the service account's key (RS256).
fn signed_jwt(
    email: &str,
    key_id: Option<&str>,
    pem: &SecretString,
    audience: &str,
) -> Result<String, String> {
    use aws_lc_rs::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
    use rustls::pki_types::PrivatePkcs8KeyDer;
    use rustls::pki_types::pem::PemObject;
    let der = PrivatePkcs8KeyDer::from_pem_slice(pem.expose().as_bytes())
        .map_err(|_| "private_key is not a PEM private key (PKCS #8)".to_string())?;
    let pair = RsaKeyPair::from_pkcs8(der.secret_pkcs8_der())
        .map_err(|_| "private_key is not an RSA key".to_string())?;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut header = serde_json::json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = key_id {
        header["kid"] = kid.into();
    }
    let now = crate::clock::now_ms() / 1000;
    let claims = serde_json::json!({
        "iss": email,
        "scope": SCOPE,
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
    });
    let message = format!(
        "{}.{}",
        b64.encode(header.to_string()),
        b64.encode(claims.to_string())
    );
    let mut signature = vec![0; pair.public_modulus_len()];
    pair.sign(
        &RSA_PKCS1_SHA256,
        &aws_lc_rs::rand::SystemRandom::new(),
        message.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "cannot sign with private_key".to_string())?;
    Ok(format!("{message}.{}", b64.encode(signature)))
}

/// The metadata server's token for the machine's service account.
async fn metadata_server(
    vault: &str,
    client: &reqwest::Client,
) -> Result<(SecretString, Duration), ProviderError> {
    let host = std::env::var("GCE_METADATA_HOST")
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "metadata.google.internal".into());
    let server = format!("http://{host}");
    let url = format!("{server}/computeMetadata/v1/instance/service-accounts/default/token");
    let sent = http::send_json(
        vault,
        &server,
        client.get(url).header("Metadata-Flavor", "Google"),
    )
    .await;
    match sent {
        Ok((status, body)) => oauth::token_answer(vault, &server, status, &body),
        Err(ProviderError::Unavailable { .. }) => Err(unauthorized(
            vault,
            "no Google credentials: GOOGLE_APPLICATION_CREDENTIALS is not set, there is no gcloud application-default login (`gcloud auth application-default login`), and no metadata server answered; or name a service account's key in the vault's \"credentials\"",
        )),
        Err(e) => Err(e),
    }
}
