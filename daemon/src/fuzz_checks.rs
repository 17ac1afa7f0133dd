//! The properties the fuzz targets (in `fuzz/`) check, kept here so that a
//! regression test can replay the committed corpus on stable Rust in CI.
//! Each function panics when its property is broken.

use std::path::Path;

use crate::config::parse_config;
use crate::providers::dotenv;

const KEYS: [&str; 4] = ["KEY", "A", "_X1", "DATABASE_URL"];

/// Splits fuzz input at the first 0xFF byte.
fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|b| *b == 0xFF) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// The dotenv parser never panics; a write either is refused or reads back
/// exactly, leaving every other key's value as it was.
pub fn dotenv_roundtrip(data: &[u8]) {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let key = KEYS[usize::from(selector) % KEYS.len()];
    let (file, value) = split(rest);
    let file = String::from_utf8_lossy(file);
    let value = String::from_utf8_lossy(value);
    let before = dotenv::effective(&file);
    match dotenv::set(&file, key, &value) {
        Ok(out) => {
            let mut after = dotenv::effective(&out);
            assert_eq!(
                after.remove(key).as_deref(),
                Some(&*value),
                "{key} reads back"
            );
            let mut before = before;
            before.remove(key);
            assert_eq!(before, after, "other keys unchanged");
            // Writing the same value again changes nothing.
            assert_eq!(
                dotenv::set(&out, key, &value).ok().as_deref(),
                Some(out.as_str())
            );
        }
        Err(dotenv::WriteError::NulInValue(_)) => assert!(value.contains('\0')),
        Err(dotenv::WriteError::Unsafe(_)) => {}
        Err(dotenv::WriteError::InvalidKey(k)) => panic!("valid key refused: {k}"),
    }
}

/// The config parser never panics, and an error always names the file.
pub fn config_parse(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("/fuzz/agent-vault.config.json");
    if let Err(e) = parse_config(file, text, &|_| None) {
        assert!(
            e.to_string().starts_with("/fuzz/agent-vault.config.json: "),
            "{e}"
        );
    }
}

/// One fuzzed HTTP request against the approval UI of a daemon that has a
/// pending request and no paired device: whatever arrives, the request
/// stays pending and no device gets paired.
pub struct WebTarget {
    pub state: crate::state::AppState,
    pub router: axum::Router,
    pub pending_id: String,
    _dir: tempfile::TempDir,
}

impl WebTarget {
    pub async fn new() -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        std::fs::write(dir.path().join("s.env"), "API_KEY=fuzz-secret\n")?;
        let (state, _writer) = crate::ephemeral_state(
            dir.path(),
            r#"{"vaults":{"dev":{"type":"env","file":"s.env"}},"port":0}"#,
        )?;
        let requester = crate::session::Requester {
            uid: 0,
            pid: std::process::id(),
            mcp_client: "fuzz".into(),
            ..Default::default()
        };
        let session = crate::access::open_session(&state, requester, "", "", Default::default())?;
        let reply = crate::access::access(
            &state,
            &session,
            agent_vault_proto::pb::AccessRequest {
                vault: "dev".into(),
                names: vec!["API_KEY".into()],
                reason: "fuzz <b>".into(),
                ..Default::default()
            },
            crate::clock::now_ms(),
        )
        .await?;
        let router = crate::web::router_unthrottled(state.clone());
        Ok(Self {
            state,
            router,
            pending_id: reply.request_id,
            _dir: dir,
        })
    }

    /// `data` picks a method and a route, then supplies the id, the cookie
    /// and the form body.
    pub async fn request(&self, data: &[u8]) {
        use tower::ServiceExt;
        let Some((&selector, rest)) = data.split_first() else {
            return;
        };
        let mut parts = rest.split(|b| *b == 0xFF);
        let id = String::from_utf8_lossy(parts.next().unwrap_or_default()).into_owned();
        let cookie = parts.next().unwrap_or_default().to_vec();
        let body = parts.next().unwrap_or_default().to_vec();
        let id = if selector & 0x80 != 0 {
            self.pending_id.clone()
        } else {
            id
        };
        let route = match selector % 7 {
            0 => format!("/approve/{id}"),
            1 => format!("/pair/{id}"),
            2 => format!("/pairings/{id}"),
            3 => "/grants/revoke".to_string(),
            4 => "/pair-wait".to_string(),
            5 => "/".to_string(),
            _ => format!("/{id}"),
        };
        let method = if selector & 0x40 != 0 { "POST" } else { "GET" };
        let mut req = axum::http::Request::builder()
            .method(method)
            .uri(route)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Ok(v) = axum::http::HeaderValue::from_bytes(&cookie) {
            req = req.header("cookie", v);
        }
        let Ok(req) = req.body(axum::body::Body::from(body)) else {
            return;
        };
        let Ok(res) = self.router.clone().oneshot(req).await;
        assert!(
            !res.headers().contains_key("set-cookie"),
            "no credential without a pairing link"
        );
        let pending = self.state.broker.get(&self.pending_id).map(|r| r.state());
        assert_eq!(
            pending,
            Some(crate::broker::State::Pending),
            "nobody approved"
        );
        assert!(!self.state.devices.any_paired());
    }
}

#[cfg(test)]
mod tests {
    /// Replays the corpus committed under fuzz/corpus, so everything the
    /// fuzzers ever found stays fixed.
    #[test]
    fn the_committed_fuzz_corpus_passes() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
        let mut replayed = 0;
        for (target, check) in [
            ("dotenv_roundtrip", super::dotenv_roundtrip as fn(&[u8])),
            ("config_parse", super::config_parse as fn(&[u8])),
        ] {
            let Ok(dir) = std::fs::read_dir(root.join(target)) else {
                continue;
            };
            for entry in dir.flatten() {
                if let Ok(data) = std::fs::read(entry.path()) {
                    check(&data);
                    replayed += 1;
                }
            }
        }
        assert!(replayed > 0, "the corpus is in the repository");
    }

    #[tokio::test(flavor = "multi_thread")]
    async fn the_committed_web_corpus_passes() -> anyhow::Result<()> {
        let target = super::WebTarget::new().await?;
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus/web_inputs");
        let mut replayed = 0;
        for entry in std::fs::read_dir(dir)?.flatten() {
            target.request(&std::fs::read(entry.path())?).await;
            replayed += 1;
        }
        assert!(replayed > 0);
        Ok(())
    }

    use std::path::Path;
}
