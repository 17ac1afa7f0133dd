//! Making the approval page reachable from a phone: the config's
//! `publicUrl` when something else forwards to the local listener
//! (tailscale serve, a reverse proxy); else an ngrok HTTPS tunnel opened
//! in-process; or, without a token or when ngrok fails, the local address
//! alone, said once.
//!
//! The local address is named `localhost` (the listener is on 127.0.0.1):
//! a passkey's relying party must be a domain name, and `localhost` is the
//! one browsers treat as secure without HTTPS.

use ngrok::config::ForwarderBuilder;
use ngrok::prelude::EndpointInfo;

use crate::secret::SecretString;

pub struct Tunnel {
    /// The base of every approval and pairing link.
    pub base_url: String,
    /// The local listener, `http://localhost:PORT`, which a tunnel or
    /// `publicUrl` forwards to.
    pub local_url: String,
    /// `"ngrok"`, `"publicUrl"` or `"none: <why>"`, for `agent-vault status`.
    pub description: String,
    /// Whether `base_url` stays the same across restarts (localhost or a
    /// reserved ngrok domain), as passkeys need.
    pub stable: bool,
    /// Keeps the tunnel open for as long as the daemon runs.
    _forwarder: Option<Box<dyn std::any::Any + Send + Sync>>,
}

pub async fn open(
    public_url: Option<&str>,
    token: Option<&SecretString>,
    domain: Option<&str>,
    local_port: u16,
) -> Tunnel {
    let local = format!("http://localhost:{local_port}");
    if let Some(url) = public_url {
        tracing::info!(%url, %local, "approval pages are opened at publicUrl, which must forward to the local address");
        return Tunnel {
            base_url: url.to_string(),
            local_url: local,
            description: "publicUrl".into(),
            stable: true,
            _forwarder: None,
        };
    }
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        tracing::info!(url = %local, "no ngrok token: approval pages are served on localhost only");
        return Tunnel {
            base_url: local.clone(),
            local_url: local,
            description: "none: no ngrok token configured".into(),
            stable: true,
            _forwarder: None,
        };
    };
    match connect(token, domain, local_port).await {
        Ok((url, fwd)) => {
            tracing::info!(%url, "ngrok tunnel open");
            Tunnel {
                base_url: url,
                local_url: local,
                description: "ngrok".into(),
                stable: domain.is_some(),
                _forwarder: Some(fwd),
            }
        }
        Err(why) => {
            tracing::warn!(error = %why, url = %local, "ngrok failed: approval pages are served on localhost only");
            Tunnel {
                base_url: local.clone(),
                local_url: local,
                description: format!("none: ngrok failed: {why}"),
                stable: true,
                _forwarder: None,
            }
        }
    }
}

async fn connect(
    token: &SecretString,
    domain: Option<&str>,
    local_port: u16,
) -> Result<(String, Box<dyn std::any::Any + Send + Sync>), String> {
    // Forward to the listener's own address, not to "localhost", which
    // may resolve to ::1 first.
    let to =
        url::Url::parse(&format!("http://127.0.0.1:{local_port}")).map_err(|e| e.to_string())?;
    let session = ngrok::Session::builder()
        .authtoken(token.expose())
        .connect()
        .await
        // The error text comes from ngrok and never contains the token.
        .map_err(|e| e.to_string())?;
    let mut endpoint = session.http_endpoint();
    if let Some(domain) = domain {
        endpoint.domain(domain);
    }
    let fwd = endpoint
        .listen_and_forward(to)
        .await
        .map_err(|e| e.to_string())?;
    let url = fwd.url().trim_end_matches('/').to_string();
    Ok((url, Box::new((session, fwd))))
}
