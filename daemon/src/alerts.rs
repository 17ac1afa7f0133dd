//! Telling the person at once what they must know even when they are not
//! looking at an approval page: a new device was paired, or the audit log
//! no longer matches its anchor. An alert goes to the webhooks of
//! agent-vaultd's own config that list its event, and to the ntfy topic of
//! `audit.anchor.ntfy` at the highest priority. (The paired devices show
//! both on their pages too: see `web::watch`.) Push channels of their own
//! (Telegram, Slack) will join here.

use std::time::Duration;

use crate::audit::Action;
use crate::events;
use crate::secret::SecretString;
use crate::state::AppState;

/// One alert: `event` names it for webhooks (`device_paired`,
/// `audit_anchor`), `text` is what a person reads.
pub fn raise(state: &AppState, event: &str, title: &str, text: String, payload: serde_json::Value) {
    events::notify_own_webhooks(state, event, payload);
    let Some(ntfy) = state
        .project(&state.default_project)
        .and_then(|own| own.config.anchor.clone())
        .and_then(|a| Some((a.ntfy?, a.ntfy_token)))
    else {
        return;
    };
    let title = title.to_string();
    tokio::spawn(async move {
        if let Some(client) = client() {
            post_ntfy(&client, &ntfy.0, ntfy.1.as_ref(), text, &title, "5").await;
        }
    });
}

/// A device was paired: audited as `paired` (with `detail`), and
/// announced, so that a pairing nobody expected is seen at once.
pub fn device_paired(state: &AppState, device_id: &str, detail: &str) {
    events::record_plain(state, Action::Paired, device_id, detail, None);
    let label = state
        .devices
        .list()
        .into_iter()
        .find(|d| d.id == device_id)
        .map(|d| d.label)
        .unwrap_or_default();
    let now = crate::clock::now_ms();
    raise(
        state,
        "device_paired",
        "agent-vault: new device paired",
        format!(
            "A new approver device was paired: \"{label}\" ({detail}). If that was not you, revoke it on the dashboard or with: agent-vault devices revoke {device_id}"
        ),
        serde_json::json!({
            "timestamp": crate::clock::iso(now),
            "device": {"id": device_id, "label": label},
            "detail": detail,
        }),
    );
}

/// The HTTP client for ntfy (no redirects: a token is never sent on).
pub fn client() -> Option<reqwest::Client> {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("agent-vault/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| tracing::error!(error = %e, "cannot build an HTTP client for ntfy"))
        .ok()
}

/// Publishes to an ntfy topic (<https://docs.ntfy.sh/publish/>): the body
/// is the message; `Title` and `Priority` (1 min .. 5 max) are headers. A
/// failure is logged; the caller's next message is the retry.
pub async fn post_ntfy(
    client: &reqwest::Client,
    url: &str,
    token: Option<&SecretString>,
    body: String,
    title: &str,
    priority: &str,
) -> bool {
    let mut request = client
        .post(url)
        .header("Title", title)
        .header("Priority", priority)
        .header("Tags", "lock")
        .body(body);
    if let Some(token) = token {
        request = request.bearer_auth(token.expose());
    }
    match request.send().await {
        Ok(r) if r.status().is_success() => true,
        Ok(r) => {
            tracing::warn!(status = %r.status(), "ntfy refused the message");
            false
        }
        Err(e) => {
            tracing::warn!(error = %e.without_url(), "cannot reach ntfy");
            false
        }
    }
}
