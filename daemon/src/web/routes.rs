//! Handlers. Unauthenticated callers get 401, a bad CSRF token 403; both
//! change nothing.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Json};
use maud::Markup;
use serde::Deserialize;

use super::auth::{cookie, device, set_cookie};
use super::pages;
use super::{CLAIM_COOKIE, DEVICE_COOKIE};
use crate::alerts;
use crate::audit::Action;
use crate::broker::{DecideError, Decided};
use crate::clock;
use crate::decisions::{self, Proof, Refusal};
use crate::devices::{PairError, PairOutcome};
use crate::events;
use crate::grants::RevokeTarget;
use crate::passkeys::PasskeyError;
use crate::state::AppState;
use webauthn_rs::prelude::{PublicKeyCredential, RegisterPublicKeyCredential};

const CSS: &str = include_str!("app.css");
const PASSKEY_JS: &str = include_str!("passkey.js");
const DEVICE_MAX_AGE_S: i64 = 90 * 24 * 3600;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/static/app.css", get(css))
        .route("/approve/{id}", get(approval_page).post(approval_decide))
        .route("/pair/{token}", get(pair_page).post(pair_claim))
        .route("/pair-wait", get(pair_wait))
        .route("/pairings/{id}", post(pairing_decide))
        .route("/grants/revoke", post(grant_revoke))
        .route("/totp/reset", post(totp_reset))
        .route("/static/passkey.js", get(passkey_js))
        .route("/static/device.js", get(device_js))
        .route("/watch", get(super::watch::watch))
        .route("/passkeys", get(passkeys_page))
        .route("/passkeys/register/start", post(passkey_register_start))
        .route("/passkeys/register/finish", post(passkey_register_finish))
        .route("/approve/{id}/passkey/start", post(passkey_approve_start))
        .route("/approve/{id}/passkey/finish", post(passkey_approve_finish))
}

fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

fn unauthorized() -> Response {
    page(StatusCode::UNAUTHORIZED, pages::not_paired(None))
}

fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::message(
            "Refused",
            "The form token is missing or wrong. Reload the page and try again.",
            "bad",
        ),
    )
}

fn with_cookie(mut res: Response, value: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}

fn clean_label(s: &str) -> String {
    let s = crate::text::shown(s, 60);
    let s = s.trim();
    if s.is_empty() {
        "device".into()
    } else {
        s.into()
    }
}

async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

const DEVICE_JS: &str = include_str!("device.js");

async fn device_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        DEVICE_JS,
    )
}

async fn passkey_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PASSKEY_JS,
    )
}

/// The passkey situation of a device, for its pages.
fn passkey_view(state: &AppState, device_id: &str) -> pages::PasskeyView {
    match state.passkeys.availability() {
        Ok(_) => Ok(state.passkeys.of_device(device_id).len()),
        Err(why) => Err(why.to_string()),
    }
}

async fn dashboard(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let Some(me) = device(&state, &headers) else {
        return unauthorized();
    };
    let now = clock::now_ms();
    let pending = state.broker.pending();
    let pairings = state.devices.waiting_requests(now);
    let grants = state.grants().active(now);
    let devices = state.devices.list();
    let csrf = state.devices.csrf(&me.id, "dashboard");
    page(
        StatusCode::OK,
        pages::dashboard(&pages::Dashboard {
            totp_enrolled: state.devices.totp_enrolled(),
            pending: &pending,
            pairings: &pairings,
            grants: &grants,
            devices: &devices,
            me: &me.id,
            csrf: &csrf,
            now_ms: now,
        }),
    )
}

async fn approval_page(
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
        None => page(
            StatusCode::NOT_FOUND,
            pages::message(
                "Not found",
                "No such request. It may have expired.",
                "muted",
            ),
        ),
    }
}

#[derive(Deserialize)]
struct DecideForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    #[serde(default)]
    decision: String,
    window: Option<String>,
}

async fn approval_decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DecideForm>,
) -> Response {
    let Some(me) = device(&state, &headers) else {
        return unauthorized();
    };
    if !state
        .devices
        .check_csrf(&me.id, &format!("approve:{id}"), &form.csrf)
    {
        return forbidden();
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
        device_id: &me.id,
        code: &form.code,
    };
    match decisions::decide(&state, &id, approve, proof, window, now).await {
        Ok((Decided::Final(req) | Decided::Partial { req, .. }, _)) => {
            let csrf = state.devices.csrf(&me.id, &format!("approve:{}", req.id));
            let passkey = passkey_view(&state, &me.id);
            page(
                StatusCode::OK,
                pages::approval(&req, &csrf, &me.id, now, &passkey),
            )
        }
        Err(refusal) => refusal_page(&refusal),
    }
}

/// The page that says why a decision was refused.
fn refusal_page(refusal: &Refusal) -> Response {
    let (status, title, class) = match refusal {
        Refusal::Request(DecideError::SameDevice) => {
            (StatusCode::CONFLICT, "Another device needed", "muted")
        }
        Refusal::Request(DecideError::NotFound) => {
            return page(
                StatusCode::NOT_FOUND,
                pages::message(
                    "Not found",
                    "No such request. It may have expired.",
                    "muted",
                ),
            );
        }
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

async fn pair_page(State(state): State<AppState>, Path(token): Path<String>) -> Response {
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
struct PairForm {
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

async fn pair_claim(
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

async fn pair_wait(State(state): State<AppState>, headers: HeaderMap) -> Response {
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

#[derive(Deserialize)]
struct DashboardForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    decision: String,
    #[serde(default)]
    id: String,
}

/// The device behind a dashboard form, with its form token checked.
fn dashboard_device(
    state: &AppState,
    headers: &HeaderMap,
    form: &DashboardForm,
) -> Result<crate::db::devices::DeviceRow, fn() -> Response> {
    let me = device(state, headers).ok_or(unauthorized as fn() -> Response)?;
    if !state.devices.check_csrf(&me.id, "dashboard", &form.csrf) {
        return Err(forbidden);
    }
    Ok(me)
}

async fn pairing_decide(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Form(form): Form<DashboardForm>,
) -> Response {
    let me = match dashboard_device(&state, &headers, &form) {
        Ok(me) => me,
        Err(refuse) => return refuse(),
    };
    let approve = form.decision == "approve";
    if state
        .devices
        .decide_pairing(&id, approve, &me.id, clock::now_ms())
    {
        let action = if approve {
            Action::PairApproved
        } else {
            Action::PairDenied
        };
        events::record_plain(
            &state,
            action,
            &me.id,
            &format!("pairing request {id}"),
            None,
        );
    }
    Redirect::to("/").into_response()
}

async fn grant_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DashboardForm>,
) -> Response {
    let me = match dashboard_device(&state, &headers, &form) {
        Ok(me) => me,
        Err(refuse) => return refuse(),
    };
    decisions::revoke(&state, &RevokeTarget::Id(form.id), &me.id);
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

async fn totp_reset(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<DashboardForm>,
) -> Response {
    let me = match dashboard_device(&state, &headers, &form) {
        Ok(me) => me,
        Err(refuse) => return refuse(),
    };
    if state.devices.reset_totp() {
        events::record_plain(
            &state,
            Action::TotpReset,
            &me.id,
            "authenticator app reset",
            None,
        );
    }
    Redirect::to("/").into_response()
}

// ---- Passkeys: JSON endpoints driven by /static/passkey.js ----

fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

const NOT_PAIRED: &str = "this browser is not paired (or its pairing expired)";
const BAD_TOKEN: &str = "the form token is missing or wrong; reload the page and try again";

/// The paired device behind a JSON call, with its form token for
/// `purpose` checked, or why not.
fn json_device(
    state: &AppState,
    headers: &HeaderMap,
    purpose: &str,
    csrf: &str,
) -> Result<crate::db::devices::DeviceRow, (StatusCode, &'static str)> {
    let me = device(state, headers).ok_or((StatusCode::UNAUTHORIZED, NOT_PAIRED))?;
    if !state.devices.check_csrf(&me.id, purpose, csrf) {
        return Err((StatusCode::FORBIDDEN, BAD_TOKEN));
    }
    Ok(me)
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

async fn passkeys_page(State(state): State<AppState>, headers: HeaderMap) -> Response {
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
struct CsrfBody {
    #[serde(default)]
    csrf: String,
}

async fn passkey_register_start(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<CsrfBody>,
) -> Response {
    let me = match json_device(&state, &headers, "passkeys", &body.csrf) {
        Ok(me) => me,
        Err((status, why)) => return json_error(status, why),
    };
    match state
        .passkeys
        .start_registration(&me.id, &me.label, clock::now_ms())
    {
        Ok(options) => Json(options).into_response(),
        Err(e) => passkey_error(&e),
    }
}

#[derive(Deserialize)]
struct RegisterBody {
    #[serde(default)]
    csrf: String,
    credential: RegisterPublicKeyCredential,
}

async fn passkey_register_finish(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<RegisterBody>,
) -> Response {
    let me = match json_device(&state, &headers, "passkeys", &body.csrf) {
        Ok(me) => me,
        Err((status, why)) => return json_error(status, why),
    };
    match state
        .passkeys
        .finish_registration(&me.id, &body.credential, clock::now_ms())
    {
        Ok(id) => {
            if !state.store.flush().await {
                // Not stored: not usable either.
                state.passkeys.forget(&id);
                return passkey_error(&PasskeyError::Unstorable);
            }
            tracing::info!(device = %me.id, passkey = %id, "passkey registered");
            events::record_plain(
                &state,
                Action::PasskeyRegistered,
                &me.id,
                &format!("passkey {id}"),
                None,
            );
            Json(serde_json::json!({ "ok": true, "id": id })).into_response()
        }
        Err(e) => {
            tracing::warn!(device = %me.id, error = %e, "passkey registration refused");
            passkey_error(&e)
        }
    }
}

#[derive(Deserialize)]
struct ApproveStartBody {
    #[serde(default)]
    csrf: String,
    /// Minutes; absent means the configured window.
    window: Option<f64>,
}

async fn passkey_approve_start(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ApproveStartBody>,
) -> Response {
    let me = match json_device(&state, &headers, &format!("approve:{id}"), &body.csrf) {
        Ok(me) => me,
        Err((status, why)) => return json_error(status, why),
    };
    let req = match decisions::policy::passkey_request(&state, &id) {
        Ok(req) => req,
        Err(refusal) => return refusal_json(&refusal),
    };
    // The window that will be signed is the one that will be applied.
    let window = match req.operation {
        crate::broker::Operation::Write => 0.0,
        crate::broker::Operation::Read => {
            decisions::effective_window(req.ttl_minutes, body.window.unwrap_or(f64::MAX))
        }
    };
    match state
        .passkeys
        .start_approval(&me.id, &req, window, clock::now_ms())
    {
        Ok(options) => Json(options).into_response(),
        Err(e) => passkey_error(&e),
    }
}

#[derive(Deserialize)]
struct ApproveFinishBody {
    #[serde(default)]
    csrf: String,
    credential: PublicKeyCredential,
}

async fn passkey_approve_finish(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
    Json(body): Json<ApproveFinishBody>,
) -> Response {
    let me = match json_device(&state, &headers, &format!("approve:{id}"), &body.csrf) {
        Ok(me) => me,
        Err((status, why)) => return json_error(status, why),
    };
    let proof = Proof::Passkey {
        device_id: &me.id,
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
