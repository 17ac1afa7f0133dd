//! Reading audit anchors back for `agent-vault audit verify --anchor`: from
//! a file (the daemon's `audit.anchor.file`, or a copy of it) or a URL (an
//! ntfy topic's JSON stream, or any endpoint that serves the lines or the
//! webhook bodies it received).

use agent_vault_proto::anchor::Anchor;
use anyhow::{Context, bail};

/// More than any anchor log needs; a larger answer is refused.
const MAX_BYTES: usize = 64 << 20;

/// Every anchor at `source`, with its source named in every error.
pub async fn read(source: &str) -> anyhow::Result<Vec<Anchor>> {
    let text = if source.starts_with("https://") || source.starts_with("http://") {
        fetch(source).await?
    } else {
        std::fs::read_to_string(source)
            .with_context(|| format!("cannot read the anchor file {source}"))?
    };
    Anchor::parse_all(&text).map_err(|why| {
        let hint = if source.contains("ntfy") && !source.contains("/json") {
            " (for an ntfy topic give its JSON stream: https://ntfy.sh/<topic>/json?poll=1&since=all)"
        } else {
            ""
        };
        anyhow::anyhow!("{source}: {why}{hint}")
    })
}

async fn fetch(url: &str) -> anyhow::Result<String> {
    let client = reqwest::Client::builder()
        .timeout(std::time::Duration::from_secs(30))
        .user_agent(concat!("agent-vault/", env!("CARGO_PKG_VERSION")))
        .build()
        .context("cannot start an HTTP client")?;
    let mut response =
        client.get(url).send().await.map_err(|e| {
            anyhow::anyhow!("cannot fetch the anchors from {url}: {}", e.without_url())
        })?;
    if !response.status().is_success() {
        bail!(
            "cannot fetch the anchors from {url}: the server answered {}",
            response.status()
        );
    }
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| anyhow::anyhow!("cannot fetch the anchors from {url}: {}", e.without_url()))?
    {
        body.extend_from_slice(&chunk);
        if body.len() > MAX_BYTES {
            bail!("{url}: the answer is larger than 64 MiB; that is not an anchor log");
        }
    }
    String::from_utf8(body).map_err(|_| anyhow::anyhow!("{url}: the answer is not text"))
}
