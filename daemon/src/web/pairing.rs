//! Pairing a browser: the one-time link's page, claiming it (paired at
//! once, or waiting for a paired device to approve), and the waiting page.
//! The device's credential is set only once its row is stored.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::{cookie, set_cookie};
use super::pages;
use super::respond::{page, unauthorized, with_cookie};
use super::{CLAIM_COOKIE, DEVICE_COOKIE};
use crate::alerts;
use crate::audit::Action;
use crate::clock;
use crate::devices::{PairError, PairOutcome};
use crate::events;
use crate::state::AppState;

const DEVICE_MAX_AGE_S: i64 = 90 * 24 * 3600;

fn clean_label(s: &str) -> String {
    let s = crate::text::shown(s, 60);
    let s = s.trim();
    if s.is_empty() {
        "device".into()
    } else {
        s.into()
    }
}

pub(super) async fn pair_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Response {
    if state.devices.link_valid(&token, clock::now_ms()) {
        page(StatusCode::OK, pages::pair_start(&token))
    } else {
        page(
            StatusCode::GONE,
            pages::message("Link expired", &PairError::BadLink.to_string(), "bad"),
        )
    }
}

#[derive(Deserialize)]
pub(super) struct PairForm {
    #[serde(default)]
    label: String,
    /// The browser's device proof (`/static/device.js`); empty without script.
    #[serde(default)]
    proof: String,
}

/// Whether the approval origin is one that other local programs can also
/// serve (any `http://` origin: cookies ignore ports), so that devices
/// paired on it need a device proof (see `devices`).
fn origin_shared(state: &AppState) -> bool {
    !state.approval_base().starts_with("https://")
}

pub(super) async fn pair_claim(
    State(state): State<AppState>,
    Path(token): Path<String>,
    Form(form): Form<PairForm>,
) -> Response {
    let label = clean_label(&form.label);
    let need_proof = origin_shared(&state);
    match state
        .devices
        .claim(&token, &label, &form.proof, need_proof, clock::now_ms())
    {
        Ok(PairOutcome::Paired { device_id, cookie }) => {
            // Stored before the browser gets its credential.
            if !state.store.flush().await {
                return not_stored(&state, &device_id);
            }
            tracing::info!(device = %device_id, "device paired");
            alerts::device_paired(&state, &device_id, &format!("label {label}"));
            with_cookie(
                Redirect::to("/").into_response(),
                set_cookie(&state, DEVICE_COOKIE, &cookie, DEVICE_MAX_AGE_S),
            )
        }
        Ok(PairOutcome::Waiting { request_id, claim }) => {
            events::record_plain(
                &state,
                Action::PairRequested,
                "",
                &format!("request {request_id}, label {label}"),
                None,
            );
            with_cookie(
                Redirect::to("/pair-wait").into_response(),
                set_cookie(&state, CLAIM_COOKIE, &claim, 600),
            )
        }
        Err(e) => page(
            StatusCode::GONE,
            pages::message("Link expired", &e.to_string(), "bad"),
        ),
    }
}

/// A pairing whose device could not be stored: undone, and said so; the
/// browser gets no credential.
fn not_stored(state: &AppState, device_id: &str) -> Response {
    tracing::error!(device = %device_id, "a new device could not be stored; pairing undone");
    state.devices.revoke(device_id, false);
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        pages::message(
            "Not paired",
            "The pairing could not be stored, so it was undone. See agent-vaultd's log, then pair again with a new link.",
            "bad",
        ),
    )
}

pub(super) async fn pair_wait(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(claim) = cookie(&headers, CLAIM_COOKIE) else {
        return unauthorized();
    };
    match state.devices.poll_claim(&claim, clock::now_ms()) {
        Ok(None) => page(StatusCode::OK, pages::pair_waiting()),
        Ok(Some((device_id, cookie, by))) => {
            if !state.store.flush().await {
                return not_stored(&state, &device_id);
            }
            tracing::info!(device = %device_id, approved_by = %by, "device paired");
            alerts::device_paired(&state, &device_id, &format!("approved by device {by}"));
            let res = with_cookie(
                Redirect::to("/").into_response(),
                set_cookie(&state, DEVICE_COOKIE, &cookie, DEVICE_MAX_AGE_S),
            );
            with_cookie(res, set_cookie(&state, CLAIM_COOKIE, "", 0))
        }
        Err(e) => page(
            StatusCode::FORBIDDEN,
            pages::message("Not paired", &e.to_string(), "bad"),
        ),
    }
}
