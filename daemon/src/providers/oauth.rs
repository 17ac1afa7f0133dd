//! OAuth 2 access tokens for the cloud providers (GCP, Azure): asking a
//! token endpoint for one, and keeping it until shortly before it expires.

use std::future::Future;
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::sync::Mutex;

use super::contract::ProviderError;
use super::http;
use crate::secret::SecretString;

/// A token is replaced this long before it expires.
const MARGIN: Duration = Duration::from_secs(60);

/// The access token a vault holds, if any, and until when it is used.
#[derive(Default)]
pub struct TokenCache(Mutex<Option<(SecretString, Instant)>>);

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenCache")
    }
}

impl TokenCache {
    /// The held token while it is fresh, else one from `fetch` (the token
    /// and how long it lives), which is then held.
    pub async fn get<F>(&self, fetch: impl FnOnce() -> F) -> Result<SecretString, ProviderError>
    where
        F: Future<Output = Result<(SecretString, Duration), ProviderError>>,
    {
        let mut held = self.0.lock().await;
        if let Some((token, until)) = &*held
            && Instant::now() < *until
        {
            return Ok(token.clone());
        }
        let (token, lives) = fetch().await?;
        let until = Instant::now() + lives.saturating_sub(MARGIN);
        *held = Some((token.clone(), until));
        Ok(token)
    }

    /// Forgets the held token (the backend refused it).
    pub async fn clear(&self) {
        *self.0.lock().await = None;
    }

    /// Sends a request with the held token (see [`TokenCache::get`]); if
    /// the API refuses it (401: revoked, or expired early), once more with
    /// a fresh one.
    pub async fn send<F, S>(
        &self,
        fetch: impl Fn() -> F,
        send: impl Fn(SecretString) -> S,
    ) -> Result<(u16, Value), ProviderError>
    where
        F: Future<Output = Result<(SecretString, Duration), ProviderError>>,
        S: Future<Output = Result<(u16, Value), ProviderError>>,
    {
        let answer = send(self.get(&fetch).await?).await?;
        if answer.0 != 401 {
            return Ok(answer);
        }
        self.clear().await;
        send(self.get(&fetch).await?).await
    }
}

/// Reads a token endpoint's answer: `{"access_token", "expires_in"}`, or
/// an OAuth error (`{"error", "error_description"}`), which is
/// unauthorized when the endpoint refused the credentials.
pub fn token_answer(
    vault: &str,
    server: &str,
    status: u16,
    body: &Value,
) -> Result<(SecretString, Duration), ProviderError> {
    if (200..300).contains(&status)
        && let Some(token) = body["access_token"].as_str()
    {
        // Seconds, as a number or (Azure's managed identity) a string;
        // some managed identity endpoints give only `expires_on`, the
        // moment it expires (seconds since the epoch).
        let number = |v: &Value| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        };
        let now = u64::try_from(crate::clock::now_ms() / 1000).unwrap_or(0);
        let lives = number(&body["expires_in"])
            .or_else(|| number(&body["expires_on"]).map(|on| on.saturating_sub(now)))
            .unwrap_or(300);
        return Ok((
            SecretString::new(token.to_string()),
            Duration::from_secs(lives),
        ));
    }
    let why = match (body["error"].as_str(), body["error_description"].as_str()) {
        (Some(e), Some(d)) => format!("{server}: {e}: {}", http::words(d)),
        (Some(e), None) => format!("{server}: {e}"),
        _ => format!("{server} gave no token"),
    };
    let vault = vault.to_string();
    Err(match status {
        400 | 401 | 403 => ProviderError::Unauthorized { vault, why },
        429 => ProviderError::Unavailable {
            vault,
            why: format!("rate-limited: {why} (HTTP 429)"),
        },
        _ => ProviderError::Unavailable {
            vault,
            why: format!("{why} (HTTP {status})"),
        },
    })
}
