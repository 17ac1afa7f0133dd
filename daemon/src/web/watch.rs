//! What a paired device keeps an eye on, for `/static/device.js`: the audit
//! chain's head and the paired devices. The script remembers both in the
//! browser (per origin) and warns on the page when the head went backwards
//! (a log cut short, rolled back or replaced since this device last
//! looked) or when a device it has not seen before was paired. It is a
//! second pair of eyes, kept where the agent cannot write: the anchors
//! (`crate::anchoring`) are the first.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::auth::PairedDevice;
use crate::state::AppState;

pub async fn watch(State(state): State<AppState>, me: PairedDevice) -> Response {
    let head = state.store.head().borrow().clone();
    let devices: Vec<_> = state
        .devices
        .list()
        .into_iter()
        .map(|d| json!({"id": d.id, "label": d.label, "pairedAt": crate::clock::iso(d.paired_at_ms)}))
        .collect();
    Json(json!({
        "me": me.id(),
        "audit": {"seq": head.seq, "hash": head.hash},
        "devices": devices,
    }))
    .into_response()
}
