//! The contract between `agent-vaultd` and its clients.
//!
//! This crate owns everything the three binaries must agree on: the generated
//! gRPC types ([`pb`]), the protocol version, where the socket and the state
//! directory live ([`paths`]), and the connect-and-handshake client
//! ([`client`]) that the shim and the CLI share.

pub mod anchor;
pub mod client;
pub mod dotenv;
pub mod jsonc;
pub mod paths;
pub mod project;
pub mod words;

/// A QR code of `text` drawn with Unicode half blocks, for a terminal.
#[cfg(feature = "qr")]
pub fn qr_text(text: &str) -> Option<String> {
    let code = qrcode::QrCode::new(text.as_bytes()).ok()?;
    Some(
        code.render::<qrcode::render::unicode::Dense1x2>()
            .dark_color(qrcode::render::unicode::Dense1x2::Light)
            .light_color(qrcode::render::unicode::Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

/// Whether a link opens only on this machine (the approval pages on
/// localhost or a loopback address), so that a phone cannot open it.
pub fn opens_only_here(url: &str) -> bool {
    let rest = url
        .strip_prefix("http://")
        .or_else(|| url.strip_prefix("https://"))
        .unwrap_or(url);
    let host = match rest.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => rest.split([':', '/']).next().unwrap_or_default(),
    };
    host.eq_ignore_ascii_case("localhost") || host.starts_with("127.") || host == "::1"
}

/// How to open a pairing link, for a terminal: with its QR code where a
/// phone can open it, and without one (saying what would make it
/// reachable) where the approval pages are on this machine only.
#[cfg(feature = "qr")]
pub fn pairing_link_text(url: &str) -> String {
    if opens_only_here(url) {
        format!(
            "Open this link in a browser on this machine (valid 5 minutes, once):\n{url}\n\
             A phone cannot open a localhost address. To approve from your phone, give agent-vaultd an ngrok token \
             (NGROK_AUTHTOKEN) or a publicUrl (tailscale serve, a reverse proxy) and restart it, or forward the port \
             with `ssh -L`: the README's \"Pair a phone\" says how."
        )
    } else {
        let qr = qr_text(url).unwrap_or_default();
        format!(
            "Open this link on your phone, or the device that will approve (valid 5 minutes, once):\n{url}\n{qr}"
        )
    }
}

/// Generated gRPC messages and services.
#[allow(clippy::all, clippy::unwrap_used, clippy::expect_used)]
pub mod pb {
    tonic::include_proto!("agentvault.v1");
}

/// Bumped on every incompatible change to `agent_vault.proto`. The daemon and
/// its clients refuse to talk across a mismatch.
pub const PROTOCOL_VERSION: u32 = 1;

/// The crate version shared by the three binaries.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest gRPC message either side accepts (values are small; this bounds
/// what an adversarial agent can make the daemon buffer).
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

const REDACTED: &str = "[redacted]";

impl std::fmt::Debug for pb::SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretValue")
            .field("name", &self.name)
            .field("value", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for pb::SecretWrite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretWrite")
            .field("name", &self.name)
            .field("value", &REDACTED)
            .finish()
    }
}

impl std::fmt::Debug for pb::OpenSessionRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&String> = self.env.keys().collect();
        f.debug_struct("OpenSessionRequest")
            .field("mcp_client_name", &self.mcp_client_name)
            .field("mcp_client_version", &self.mcp_client_version)
            .field("config_path", &self.config_path)
            .field("env_names", &names)
            // A config may hold a literal credential.
            .field("config_text_bytes", &self.config_text.len())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::pb;

    #[test]
    fn links_that_open_only_here() {
        for here in [
            "http://localhost:9999/pair/x",
            "http://127.0.0.1:5/approve/y",
            "http://[::1]:9999",
            "https://LOCALHOST",
        ] {
            assert!(super::opens_only_here(here), "{here}");
        }
        for there in [
            "https://laptop.tail1234.ts.net/pair/x",
            "https://abc.ngrok.app",
            "http://localhost.example.com:9999",
            "http://10.0.0.2:9999",
        ] {
            assert!(!super::opens_only_here(there), "{there}");
        }
    }

    #[test]
    fn debug_never_prints_values() {
        let reply = pb::AccessReply {
            values: vec![pb::SecretValue {
                name: "API_KEY".into(),
                value: "hunter2-value".into(),
            }],
            ..Default::default()
        };
        let req = pb::AccessRequest {
            writes: vec![pb::SecretWrite {
                name: "TOKEN".into(),
                value: "hunter2-write".into(),
            }],
            ..Default::default()
        };
        let open = pb::OpenSessionRequest {
            env: [("OP_TOKEN".to_string(), "hunter2-env".to_string())].into(),
            config_text: r#"{"ngrokAuthToken":"hunter2-literal"}"#.into(),
            ..Default::default()
        };
        let printed = format!("{reply:?} {req:?} {open:?}");
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(printed.contains("API_KEY") && printed.contains("OP_TOKEN"));
    }
}
