//! Making the approval page reachable from a phone: an ngrok HTTPS tunnel
//! opened in-process (forwarding to the local listener), or, without a
//! token or when ngrok fails, the local address alone, said once.

use ngrok::config::ForwarderBuilder;
use ngrok::prelude::EndpointInfo;

use crate::secret::SecretString;

pub struct Tunnel {
    /// The base of every approval and pairing link.
    pub base_url: String,
    /// "ngrok" or "none: <why>", for `agent-vault status`.
    pub description: String,
    /// Keeps the tunnel open for as long as the daemon runs.
    _forwarder: Option<Box<dyn std::any::Any + Send + Sync>>,
}

pub async fn open(token: Option<&SecretString>, local_port: u16) -> Tunnel {
    let local = format!("http://127.0.0.1:{local_port}");
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        tracing::info!(url = %local, "no ngrok token: approval pages are served on localhost only");
        return Tunnel {
            base_url: local,
            description: "none: no ngrok token configured".into(),
            _forwarder: None,
        };
    };
    match connect(token, &local).await {
        Ok((url, fwd)) => {
            tracing::info!(%url, "ngrok tunnel open");
            Tunnel {
                base_url: url,
                description: "ngrok".into(),
                _forwarder: Some(fwd),
            }
        }
        Err(why) => {
            tracing::warn!(error = %why, url = %local, "ngrok failed: approval pages are served on localhost only");
            Tunnel {
                base_url: local,
                description: format!("none: ngrok failed: {why}"),
                _forwarder: None,
            }
        }
    }
}

async fn connect(
    token: &SecretString,
    local: &str,
) -> Result<(String, Box<dyn std::any::Any + Send + Sync>), String> {
    let to = url::Url::parse(local).map_err(|e| e.to_string())?;
    let session = ngrok::Session::builder()
        .authtoken(token.expose())
        .connect()
        .await
        // The error text comes from ngrok and never contains the token.
        .map_err(|e| e.to_string())?;
    let fwd = session
        .http_endpoint()
        .listen_and_forward(to)
        .await
        .map_err(|e| e.to_string())?;
    let url = fwd.url().trim_end_matches('/').to_string();
    Ok((url, Box::new((session, fwd))))
}
