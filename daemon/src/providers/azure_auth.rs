//! Microsoft Entra ID access tokens for Key Vault, from the sources the
//! Azure SDKs use:
//!
//! - a service principal's client secret (`tenantId`, `clientId`,
//!   `clientSecret`): OAuth 2 client credentials at the authority's v2.0
//!   token endpoint;
//! - for agent-vaultd's own config only, the ambient chain: the
//!   `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` variables,
//!   else a managed identity: App Service, Container Apps and Arc's
//!   `IDENTITY_ENDPOINT` with `IDENTITY_HEADER`, else a VM's instance
//!   metadata service (IMDS).

use std::time::Duration;

use super::contract::ProviderError;
use super::credential::Credential;
use super::http;
use super::oauth;
use crate::secret::SecretString;

const IMDS: &str = "http://169.254.169.254/metadata/identity/oauth2/token";

/// Where a vault's Entra ID credentials come from.
#[derive(Debug, Clone)]
pub enum Source {
    ClientSecret {
        tenant: String,
        client_id: String,
        secret: Credential,
    },
    /// The ambient chain; `client_id` picks a user-assigned identity.
    Ambient { client_id: Option<String> },
}

fn unauthorized(vault: &str, why: impl Into<String>) -> ProviderError {
    ProviderError::Unauthorized {
        vault: vault.to_string(),
        why: why.into(),
    }
}

/// A fresh access token for `resource` (such as `https://vault.azure.net`)
/// and how long it lives.
pub async fn fetch(
    vault: &str,
    client: &reqwest::Client,
    source: &Source,
    authority: &url::Url,
    resource: &str,
) -> Result<(SecretString, Duration), ProviderError> {
    match source {
        Source::ClientSecret {
            tenant,
            client_id,
            secret,
        } => {
            let secret = secret.read().map_err(|why| {
                unauthorized(
                    vault,
                    format!(
                        "its clientSecret ({}) cannot be used: {why}",
                        secret.reference()
                    ),
                )
            })?;
            client_secret(
                vault, client, authority, tenant, client_id, &secret, resource,
            )
            .await
        }
        Source::Ambient { client_id } => {
            let env = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
            if let (Some(tenant), Some(id), Some(secret)) = (
                env("AZURE_TENANT_ID"),
                env("AZURE_CLIENT_ID"),
                env("AZURE_CLIENT_SECRET"),
            ) {
                let secret = SecretString::new(secret);
                return client_secret(vault, client, authority, &tenant, &id, &secret, resource)
                    .await;
            }
            managed_identity(vault, client, client_id.as_deref(), resource).await
        }
    }
}

async fn client_secret(
    vault: &str,
    client: &reqwest::Client,
    authority: &url::Url,
    tenant: &str,
    client_id: &str,
    secret: &SecretString,
    resource: &str,
) -> Result<(SecretString, Duration), ProviderError> {
    let url = http::join(authority, [tenant, "oauth2", "v2.0", "token"]).map_err(|why| {
        ProviderError::NotConfigured {
            vault: vault.to_string(),
            why,
        }
    })?;
    let scope = format!("{resource}/.default");
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret.expose()),
        ("scope", scope.as_str()),
    ];
    let server = authority.origin().ascii_serialization();
    let (status, body) = http::send_json(vault, &server, client.post(url).form(&form)).await?;
    oauth::token_answer(vault, &server, status, &body)
}

async fn managed_identity(
    vault: &str,
    client: &reqwest::Client,
    client_id: Option<&str>,
    resource: &str,
) -> Result<(SecretString, Duration), ProviderError> {
    let mut query = vec![("resource", resource)];
    if let Some(id) = client_id {
        query.push(("client_id", id));
    }
    let request = match (
        std::env::var("IDENTITY_ENDPOINT")
            .ok()
            .filter(|e| !e.is_empty()),
        std::env::var("IDENTITY_HEADER").ok(),
    ) {
        (Some(endpoint), Some(header)) => {
            query.push(("api-version", "2019-08-01"));
            client
                .get(endpoint)
                .query(&query)
                .header("X-IDENTITY-HEADER", header)
        }
        _ => {
            query.push(("api-version", "2018-02-01"));
            client.get(IMDS).query(&query).header("Metadata", "true")
        }
    };
    match http::send_json(vault, "the managed identity endpoint", request).await {
        Ok((status, body)) => {
            oauth::token_answer(vault, "the managed identity endpoint", status, &body)
        }
        Err(ProviderError::Unavailable { .. }) => Err(unauthorized(
            vault,
            "no Azure credentials: AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET are not set and no managed identity answered; or name a service principal in the vault's tenantId, clientId and clientSecret",
        )),
        Err(e) => Err(e),
    }
}
