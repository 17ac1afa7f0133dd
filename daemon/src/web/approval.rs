//! The approval card: a paired device looks at a request and approves or
//! denies it with the form (an authenticator code where the vault needs
//! one), answered with a redirect to the card; the card's script asks the
//! request's state to follow a decision made elsewhere. Whether that is enough is `decisions::policy`'s call.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::json;

use super::auth::{PairedDevice, device};
use super::pages;
use super::passkey_api::passkey_view;
use super::respond::{page, request_not_found};
use crate::broker::{DecideError, Decided};
use crate::clock;
use crate::decisions::{self, Proof, Refusal};
use crate::state::AppState;

pub(super) async fn approval_page(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(me) = device(&state, &headers) else {
        // Only our own ids are echoed back, as a path (escaped by maud).
        let retry = format!(
            "/approve/{}",
            id.chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .take(64)
                .collect::<String>()
        );
        return page(StatusCode::UNAUTHORIZED, pages::not_paired(Some(&retry)));
    };
    match state.broker.get(&id) {
        Some(req) => {
            let csrf = state.devices.csrf(&me.id, &format!("approve:{}", req.id));
            let passkey = passkey_view(&state, &me.id);
            page(
                StatusCode::OK,
                pages::approval(&req, &csrf, &me.id, clock::now_ms(), &passkey),
            )
        }
        None => request_not_found(),
    }
}

#[derive(Deserialize)]
pub(super) struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    decision: String,
    window: Option<String>,
}

pub(super) async fn approval_decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    me: PairedDevice,
    Form(form): Form<DecideForm>,
) -> Response {
    if let Err(refused) = me.check_form(&state, &format!("approve:{id}"), &form.csrf) {
        return refused.into_response();
    }
    let approve = match form.decision.as_str() {
        "approve" => true,
        "deny" => false,
        _ => {
            return page(
                StatusCode::BAD_REQUEST,
                pages::message("Bad request", "Choose Approve or Deny.", "bad"),
            );
        }
    };
    let window = form
        .window
        .as_deref()
        .and_then(|w| w.parse::<f64>().ok())
        .unwrap_or(f64::INFINITY);
    // No window given means the configured one (clamped in decide).
    let window = if window.is_infinite() {
        f64::MAX
    } else {
        window
    };
    let now = clock::now_ms();
    let proof = Proof::Device {
        device_id: me.id(),
        code: &form.code,
    };
    match decisions::decide(&state, &id, approve, proof, window, now).await {
        // Answered with the request's page, by its address: a reload shows
        // the outcome instead of sending the form again.
        Ok((Decided::Final(req) | Decided::Partial { req, .. }, _)) => {
            Redirect::to(&format!("/approve/{}", req.id)).into_response()
        }
        Err(refusal) => refusal_page(&refusal),
    }
}

/// The request's state and approvals so far, for the page's script: it
/// loads the page again when they change (decided on another device or
/// the terminal, expired, cancelled). A paired device's only.
pub(super) async fn approval_state(
    State(state): State<AppState>,
    Path(id): Path<String>,
    _me: PairedDevice,
) -> Response {
    match state.broker.get(&id) {
        Some(req) => Json(json!({
            "state": req.state().as_str(),
            "approvals": req.approved_by().len(),
        }))
        .into_response(),
        None => request_not_found(),
    }
}

/// The page that says why a decision was refused.
fn refusal_page(refusal: &Refusal) -> Response {
    let (status, title, class) = match refusal {
        Refusal::Request(DecideError::SameDevice) => {
            (StatusCode::CONFLICT, "Another device needed", "muted")
        }
        Refusal::Request(DecideError::NotFound) => return request_not_found(),
        Refusal::Request(DecideError::AlreadyDecided) => {
            return page(
                StatusCode::CONFLICT,
                pages::message(
                    "Already decided",
                    "This request was already decided or has expired.",
                    "muted",
                ),
            );
        }
        Refusal::Locked(_) => (StatusCode::TOO_MANY_REQUESTS, "Locked", "bad"),
        Refusal::Code(_) => (StatusCode::FORBIDDEN, "Code refused", "bad"),
        Refusal::UsePasskey | Refusal::OnDevice(_) | Refusal::NotPasskeyVault => {
            (StatusCode::FORBIDDEN, "Passkey needed", "bad")
        }
        Refusal::TerminalOff { .. } | Refusal::Passkey(_) => {
            (StatusCode::FORBIDDEN, "Refused", "bad")
        }
    };
    page(status, pages::message(title, &refusal.to_string(), class))
}
