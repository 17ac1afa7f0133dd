//! Passkeys: the page that lists a device's passkeys, and the JSON
//! endpoints `/static/passkey.js` drives (registration, and approval
//! ceremonies whose challenge commits to the request).

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

use super::auth::{PairedDevice, device};
use super::pages;
use super::respond::{json_error, page};
use crate::audit::Action;
use crate::broker::{DecideError, Decided};
use crate::clock;
use crate::decisions::{self, Proof, Refusal};
use crate::events;
use crate::passkeys::PasskeyError;
use crate::state::AppState;

/// The passkey situation of a device, for its pages.
pub(super) fn passkey_view(state: &AppState, device_id: &str) -> pages::PasskeyView {
    match state.passkeys.availability() {
        Ok(_) => Ok(state.passkeys.of_device(device_id).len()),
        Err(why) => Err(why.to_string()),
    }
}

fn passkey_error(e: &PasskeyError) -> Response {
    let status = match e {
        PasskeyError::Unavailable(_) | PasskeyError::Unstorable => StatusCode::SERVICE_UNAVAILABLE,
        PasskeyError::NoneRegistered(_) | PasskeyError::TooMany => StatusCode::CONFLICT,
        // A failed or missing ceremony counts as a failed authentication.
        PasskeyError::NoCeremony | PasskeyError::Refused(_) | PasskeyError::NotVerified => {
            StatusCode::FORBIDDEN
        }
    };
    json_error(status, &e.to_string())
}

pub(super) async fn passkeys_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(me) = device(&state, &headers) else {
        return page(
            StatusCode::UNAUTHORIZED,
            pages::not_paired(Some("/passkeys")),
        );
    };
    let csrf = state.devices.csrf(&me.id, "passkeys");
    let keys = state.passkeys.of_device(&me.id);
    page(
        StatusCode::OK,
        pages::passkeys(&keys, &csrf, &passkey_view(&state, &me.id)),
    )
}

#[derive(Deserialize)]
pub(super) struct CsrfBody {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn passkey_register_start(
    State(state): State<AppState>,
    me: PairedDevice,
    Json(body): Json<CsrfBody>,
) -> Response {
    if let Err(refused) = me.check_form(&state, "passkeys", &body.csrf) {
        return refused.into_response();
    }
    match state
        .passkeys
        .start_registration(me.id(), &me.row.label, clock::now_ms())
    {
        Ok(options) => Json(options).into_response(),
        Err(e) => passkey_error(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct RegisterBody {
    #[serde(default)]
    csrf: String,
    credential: RegisterPublicKeyCredential,
}

pub(super) async fn passkey_register_finish(
    State(state): State<AppState>,
    me: PairedDevice,
    Json(body): Json<RegisterBody>,
) -> Response {
    if let Err(refused) = me.check_form(&state, "passkeys", &body.csrf) {
        return refused.into_response();
    }
    match state
        .passkeys
        .finish_registration(me.id(), &body.credential, clock::now_ms())
    {
        Ok(id) => {
            if !state.store.flush().await {
                // Not stored: not usable either.
                state.passkeys.forget(&id);
                return passkey_error(&PasskeyError::Unstorable);
            }
            tracing::info!(device = %me.id(), passkey = %id, "passkey registered");
            events::record_plain(
                &state,
                Action::PasskeyRegistered,
                me.id(),
                &format!("passkey {id}"),
                None,
            );
            Json(serde_json::json!({ "ok": true, "id": id })).into_response()
        }
        Err(e) => {
            tracing::warn!(device = %me.id(), error = %e, "passkey registration refused");
            passkey_error(&e)
        }
    }
}

#[derive(Deserialize)]
pub(super) struct ApproveStartBody {
    #[serde(default)]
    csrf: String,
    /// Minutes; absent means the configured window.
    window: Option<f64>,
}

pub(super) async fn passkey_approve_start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    me: PairedDevice,
    Json(body): Json<ApproveStartBody>,
) -> Response {
    if let Err(refused) = me.check_form(&state, &format!("approve:{id}"), &body.csrf) {
        return refused.into_response();
    }
    let req = match decisions::policy::passkey_request(&state, &id) {
        Ok(req) => req,
        Err(refusal) => return refusal_json(&refusal),
    };
    // The window that will be signed is the one that will be applied.
    let window = match req.operation {
        crate::broker::Operation::Write => 0.0,
        crate::broker::Operation::Read | crate::broker::Operation::Run => {
            decisions::effective_window(req.ttl_minutes, body.window.unwrap_or(f64::MAX))
        }
    };
    match state
        .passkeys
        .start_approval(me.id(), &req, window, clock::now_ms())
    {
        Ok(options) => Json(options).into_response(),
        Err(e) => passkey_error(&e),
    }
}

#[derive(Deserialize)]
pub(super) struct ApproveFinishBody {
    #[serde(default)]
    csrf: String,
    credential: PublicKeyCredential,
}

pub(super) async fn passkey_approve_finish(
    State(state): State<AppState>,
    Path(id): Path<String>,
    me: PairedDevice,
    Json(body): Json<ApproveFinishBody>,
) -> Response {
    if let Err(refused) = me.check_form(&state, &format!("approve:{id}"), &body.csrf) {
        return refused.into_response();
    }
    let proof = Proof::Passkey {
        device_id: me.id(),
        credential: &body.credential,
    };
    // The window is the one the passkey signed for.
    let (decided, admitted) =
        match decisions::decide(&state, &id, true, proof, 0.0, clock::now_ms()).await {
            Ok(x) => x,
            Err(refusal) => return refusal_json(&refusal),
        };
    let digest = admitted.approval_digest;
    match decided {
        Decided::Final(req) => match req.state() {
            crate::broker::State::Cancelled { why } => {
                json_error(StatusCode::SERVICE_UNAVAILABLE, &why)
            }
            _ => {
                Json(serde_json::json!({ "outcome": "approved", "digest": digest })).into_response()
            }
        },
        Decided::Partial { have, req } => Json(serde_json::json!({
            "outcome": "partial",
            "approvals": have,
            "needed": req.approvers_needed,
            "digest": digest,
        }))
        .into_response(),
    }
}

/// The JSON error that says why a passkey approval was refused (or
/// could not start).
fn refusal_json(refusal: &Refusal) -> Response {
    let status = match refusal {
        Refusal::Passkey(e) => return passkey_error(e),
        Refusal::Request(DecideError::NotFound) => StatusCode::NOT_FOUND,
        Refusal::Request(_) => StatusCode::CONFLICT,
        Refusal::NotPasskeyVault => StatusCode::BAD_REQUEST,
        Refusal::Locked(_) => StatusCode::TOO_MANY_REQUESTS,
        Refusal::TerminalOff { .. }
        | Refusal::OnDevice(_)
        | Refusal::UsePasskey
        | Refusal::Code(_) => StatusCode::FORBIDDEN,
    };
    json_error(status, &refusal.to_string())
}
