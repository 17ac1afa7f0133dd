//! Webhook delivery from the durable outbox. Events are queued in the same
//! store transaction as their audit rows, delivered by this task (never on
//! an agent's path), and retried with exponential backoff across restarts
//! until the endpoint answers 2xx.
//!
//! Each delivery adds to the queued payload the event's `id` and the audit
//! chain's head when it was queued (`chain: {seq, hash}`), and, with a
//! `secret`, signs it (see [`signature`]).

pub mod signature;

use std::path::Path;
use std::time::Duration;

use crate::clock;
use crate::config::SigningSecret;
use crate::db::StoreCmd;
use crate::db::outbox::OutboxRow;
use crate::state::AppState;

const BATCH: u32 = 32;
const MAX_ATTEMPTS: i64 = 30;

/// Seconds before the next attempt after `attempts` failures: 2, 4, 8, …
/// capped at one hour.
pub fn backoff_ms(attempts: i64) -> i64 {
    let secs = 1i64 << attempts.clamp(1, 12);
    secs.min(3600) * 1000
}

pub async fn run(state: AppState) {
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("agent-vault/", env!("CARGO_PKG_VERSION")))
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhooks disabled: cannot build an HTTP client");
            return;
        }
    };
    loop {
        let reader = state.reader.clone();
        let now = clock::now_ms();
        let due = tokio::task::spawn_blocking(move || reader.due_webhooks(now, BATCH))
            .await
            .ok()
            .and_then(Result::ok)
            .unwrap_or_default();
        for item in &due {
            deliver(&state, &client, item).await;
        }
        // Let the writer commit our results before looking again.
        if !state.store.flush().await {
            // The writer logged why. Deliveries whose result was not
            // stored are sent again; receivers deduplicate by event id.
            tracing::warn!("webhook results not stored; those events will be sent again");
        }
        if due.len() as u32 == BATCH {
            continue;
        }
        let reader = state.reader.clone();
        let next = tokio::task::spawn_blocking(move || reader.next_webhook_due())
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let wait_ms = next.map_or(60_000, |t| (t - clock::now_ms()).clamp(0, 60_000));
        tokio::select! {
            _ = state.shutdown.cancelled() => return,
            _ = state.webhooks_queued.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64 + 5)) => {}
        }
    }
}

/// The endpoint for logs: scheme and host only, since webhook URLs (Slack's,
/// say) often carry their credential in the path.
fn endpoint(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .map(|u| format!("{}://{}", u.scheme(), u.host_str().unwrap_or("?")))
        .unwrap_or_else(|| "(invalid url)".into())
}

async fn deliver(state: &AppState, client: &reqwest::Client, item: &OutboxRow) {
    let hook = state
        .project_at(Path::new(&item.config_path))
        .and_then(|p| p.config.webhooks.get(item.hook_index as usize).cloned())
        .filter(|h| h.url == item.url);
    // Until the config that queued it is loaded again (a project registers
    // when one of its shims connects), its authorization is unknown: wait
    // rather than send without it.
    let Some(hook) = hook else {
        retry(state, item, "its config is not loaded yet".into());
        return;
    };
    let event_id = if item.event_id.is_empty() {
        format!("evt_outbox_{}", item.id)
    } else {
        item.event_id.clone()
    };
    let body = body(item, &event_id);
    let mut request = client
        .post(&item.url)
        .header("content-type", "application/json")
        .header("webhook-id", &event_id);
    if let Some(auth) = hook.authorization.as_ref() {
        request = request.header("authorization", auth.expose());
    }
    if let Some(secret) = &hook.secret {
        let key = match signing_key(secret) {
            Ok(key) => key,
            Err(why) => {
                // Never send unsigned what the receiver expects signed.
                retry(state, item, why);
                return;
            }
        };
        let timestamp = clock::now_ms() / 1000;
        request = request
            .header("webhook-timestamp", timestamp.to_string())
            .header(
                "webhook-signature",
                signature::sign(&key, &event_id, timestamp, body.as_bytes()),
            );
    }
    let request = request.body(body);
    let result = request.send().await;
    let ok = matches!(&result, Ok(r) if r.status().is_success());
    if ok {
        state.store.send(StoreCmd::WebhookDone(item.id));
        return;
    }
    let why = match result {
        Ok(r) => format!("HTTP {}", r.status()),
        Err(e) => e.without_url().to_string(),
    };
    retry(state, item, why);
}

/// The queued payload with the event's id and chain position added; the
/// prototype's fields are left as they are.
fn body(item: &OutboxRow, event_id: &str) -> String {
    let Ok(serde_json::Value::Object(mut map)) =
        serde_json::from_str::<serde_json::Value>(&item.payload)
    else {
        return item.payload.clone();
    };
    map.insert("id".into(), event_id.into());
    map.insert(
        "chain".into(),
        serde_json::json!({"seq": item.chain_seq, "hash": item.chain_hash}),
    );
    serde_json::Value::Object(map).to_string()
}

/// The key to sign with; a `file:` secret is read now, so a rotated file
/// takes effect at the next delivery.
fn signing_key(secret: &SigningSecret) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    let text = match secret {
        SigningSecret::Value(v) => zeroize::Zeroizing::new(v.expose().to_string()),
        SigningSecret::File(path) => zeroize::Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read the signing secret {}: {e}", path.display()))?,
        ),
    };
    signature::key(&text).map_err(|why| format!("the signing secret is not usable: {why}"))
}

fn retry(state: &AppState, item: &OutboxRow, why: String) {
    let attempts = item.attempts + 1;
    let url = endpoint(&item.url);
    if attempts >= MAX_ATTEMPTS {
        tracing::error!(%url, attempts, error = %why, "webhook dropped after too many failures");
        state.store.send(StoreCmd::WebhookDone(item.id));
        return;
    }
    tracing::warn!(%url, attempts, error = %why, "webhook delivery failed; will retry");
    state.store.send(StoreCmd::WebhookRetry {
        id: item.id,
        attempts,
        next_attempt_ms: clock::now_ms() + backoff_ms(attempts),
    });
}

#[cfg(test)]
mod tests {
    use super::{backoff_ms, endpoint};

    #[test]
    fn logs_name_only_the_endpoint() {
        assert_eq!(
            endpoint("https://hooks.slack.com/services/T00/B00/secretpart"),
            "https://hooks.slack.com"
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert_eq!(backoff_ms(1), 2_000);
        assert_eq!(backoff_ms(2), 4_000);
        assert_eq!(backoff_ms(11), 2_048_000);
        assert_eq!(backoff_ms(40), 3_600_000);
    }
}
