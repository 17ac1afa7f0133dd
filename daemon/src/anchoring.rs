//! Copies the audit chain's head out of the database (`audit.anchor` in
//! agent-vaultd's own config): when the daemon starts, once `everyEvents`
//! entries were added, every `everyMinutes` while entries are added, and
//! when it stops. Each anchor goes to every place configured: appended to
//! a file, posted to an ntfy topic, and queued as an `audit_anchor` event
//! for the own config's webhooks that list it (every other webhook event
//! carries the chain position too). See [`crate::audit::anchor`].
//!
//! At start the log is also compared with the last anchor in the file; a
//! log that no longer matches (cut, rolled back, rewritten) is reported at
//! once, loudly, and recorded as `anchor_mismatch`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::time::Duration;

use crate::alerts;
use crate::audit::Action;
use crate::audit::anchor::{self, Anchor};
use crate::audit::chain::ChainHead;
use crate::clock;
use crate::config::AnchorConfig;
use crate::events;
use crate::state::AppState;

pub async fn run(state: AppState, config: AnchorConfig) {
    let Some(client) = alerts::client() else {
        tracing::error!("audit anchoring disabled: no HTTP client");
        return;
    };
    if let Some(problem) = check_file(&state, &config).await {
        tracing::error!(%problem, "the audit log does not match its last anchor");
        events::record_plain(&state, Action::AnchorMismatch, "", &problem, None);
        alerts::raise(
            &state,
            "audit_anchor",
            "agent-vault audit log changed",
            format!("agent-vault: the audit log does not match its last anchor: {problem}"),
            serde_json::json!({"timestamp": clock::iso(clock::now_ms()), "mismatch": problem}),
        );
    }
    let mut head = state.store.head();
    let every = Duration::from_secs_f64(config.every_minutes * 60.0);
    let mut last = head.borrow_and_update().clone();
    anchor(&state, &config, &client, &last).await;
    let mut due = tokio::time::Instant::now() + every;
    loop {
        tokio::select! {
            () = state.shutdown.cancelled() => break,
            changed = head.changed() => {
                if changed.is_err() {
                    break;
                }
                let now = head.borrow_and_update().clone();
                if now.seq - last.seq >= config.every_events as i64 {
                    anchor(&state, &config, &client, &now).await;
                    last = now;
                    due = tokio::time::Instant::now() + every;
                }
            }
            () = tokio::time::sleep_until(due) => {
                let now = head.borrow().clone();
                if now != last {
                    anchor(&state, &config, &client, &now).await;
                    last = now;
                }
                due = tokio::time::Instant::now() + every;
            }
        }
    }
    // The last entries before a stop, the shutdown's own included.
    if !state.store.flush().await {
        tracing::error!("the last audit entries could not be stored before the final anchor");
    }
    let now = head.borrow().clone();
    if now != last {
        anchor(&state, &config, &client, &now).await;
    }
}

/// Writes one anchor everywhere configured. A place that fails is logged
/// and gets the next anchor (which covers this one).
async fn anchor(
    state: &AppState,
    config: &AnchorConfig,
    client: &reqwest::Client,
    head: &ChainHead,
) {
    let a = Anchor {
        seq: head.seq,
        hash: head.hash.clone(),
        time: clock::iso(clock::now_ms()),
    };
    let line = a.to_line();
    if let Some(path) = config.file.clone() {
        let text = format!("{line}\n");
        let written = tokio::task::spawn_blocking(move || append(&path, &text)).await;
        if let Ok(Err(e)) | Err(e) = written.map_err(std::io::Error::other) {
            tracing::warn!(error = %e, "cannot append the audit anchor to its file; will try again at the next one");
        }
    }
    if let Some(url) = &config.ntfy {
        let token = config.ntfy_token.as_ref();
        alerts::post_ntfy(client, url, token, line, "agent-vault audit anchor", "1").await;
    }
    events::notify_own_webhooks(
        state,
        "audit_anchor",
        serde_json::json!({"timestamp": a.time, "anchor": a.to_value()}),
    );
}

/// Appends and syncs, creating the file (0600) if needed.
fn append(path: &std::path::Path, text: &str) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(text.as_bytes())?;
    f.sync_data()
}

/// Compares the log with the last anchor in the anchor file, if any.
async fn check_file(state: &AppState, config: &AnchorConfig) -> Option<String> {
    let path = config.file.clone()?;
    let reader = state.reader.clone();
    let found = tokio::task::spawn_blocking(move || {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
            Err(e) => {
                tracing::warn!(file = %path.display(), error = %e, "cannot read the audit anchor file to compare the log with it");
                return None;
            }
        };
        let last = Anchor::parse_all(&text).ok()?.into_iter().max_by_key(|a| a.seq)?;
        let (entries, hash) = match reader.hash_at(last.seq.max(1)) {
            Ok(found) => found,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the audit log to compare it with its anchor");
                return None;
            }
        };
        anchor::contradiction(std::slice::from_ref(&last), entries, |_| hash.clone())
    })
    .await;
    found.ok().flatten()
}
