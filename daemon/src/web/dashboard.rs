//! The dashboard of a paired device: pending requests, pairing requests
//! to approve, open windows to end, devices, and the authenticator reset.

use axum::Form;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::PairedDevice;
use super::pages;
use super::respond::page;
use crate::audit::Action;
use crate::clock;
use crate::decisions;
use crate::events;
use crate::grants::RevokeTarget;
use crate::state::AppState;

pub(super) async fn dashboard(State(state): State<AppState>, me: PairedDevice) -> Response {
    let now = clock::now_ms();
    let pending = state.broker.pending();
    let pairings = state.devices.waiting_requests(now);
    let grants = state.grants().active(now);
    let devices = state.devices.list();
    let csrf = state.devices.csrf(me.id(), "dashboard");
    page(
        StatusCode::OK,
        pages::dashboard(&pages::Dashboard {
            totp_enrolled: state.devices.totp_enrolled(),
            pending: &pending,
            pairings: &pairings,
            grants: &grants,
            devices: &devices,
            me: me.id(),
            csrf: &csrf,
            now_ms: now,
        }),
    )
}

#[derive(Deserialize)]
pub(super) struct DashboardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    id: String,
}

pub(super) async fn pairing_decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    me: PairedDevice,
    Form(form): Form<DashboardForm>,
) -> Response {
    if let Err(refused) = me.check_form(&state, "dashboard", &form.csrf) {
        return refused.into_response();
    }
    let approve = form.decision == "approve";
    if state
        .devices
        .decide_pairing(&id, approve, me.id(), clock::now_ms())
    {
        let action = if approve {
            Action::PairApproved
        } else {
            Action::PairDenied
        };
        events::record_plain(
            &state,
            action,
            me.id(),
            &format!("pairing request {id}"),
            None,
        );
    }
    Redirect::to("/").into_response()
}

pub(super) async fn grant_revoke(
    State(state): State<AppState>,
    me: PairedDevice,
    Form(form): Form<DashboardForm>,
) -> Response {
    if let Err(refused) = me.check_form(&state, "dashboard", &form.csrf) {
        return refused.into_response();
    }
    decisions::revoke(&state, &RevokeTarget::Id(form.id), me.id());
    // Ended at once in memory; on disk before the page says so.
    if !state.store.flush().await {
        return page(
            StatusCode::INTERNAL_SERVER_ERROR,
            pages::message(
                "Not stored",
                "The window ended now, but that could not be stored, so it may come back when agent-vaultd restarts. See agent-vaultd's log, then revoke it again.",
                "bad",
            ),
        );
    }
    Redirect::to("/").into_response()
}

pub(super) async fn totp_reset(
    State(state): State<AppState>,
    me: PairedDevice,
    Form(form): Form<DashboardForm>,
) -> Response {
    if let Err(refused) = me.check_form(&state, "dashboard", &form.csrf) {
        return refused.into_response();
    }
    if state.devices.reset_totp() {
        events::record_plain(
            &state,
            Action::TotpReset,
            me.id(),
            "authenticator app reset",
            None,
        );
    }
    Redirect::to("/").into_response()
}
