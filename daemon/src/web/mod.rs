//! The approval web UI (axum): pairing, the approval card, the dashboard.
//!
//! Every page works without JavaScript, except the passkey ceremonies
//! (WebAuthn is a browser API), served as one static script. Every response carries a strict
//! CSP, `Cache-Control: no-store` and `frame-ancestors 'none'`. Every
//! approval endpoint needs a paired device's cookie and, for POSTs, a CSRF
//! token bound to that device and that action. Agent-supplied strings are
//! rendered only through maud, which escapes them.

mod approval;
mod assets;
mod auth;
mod dashboard;
mod pages;
mod pairing;
mod passkey_api;
pub mod ratelimit;
mod respond;
mod watch;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use crate::state::AppState;

pub const DEVICE_COOKIE: &str = "av_device";
pub const CLAIM_COOKIE: &str = "av_claim";

/// Every page and endpoint. Unauthenticated callers get 401, a bad form
/// token 403; both change nothing.
fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard::dashboard))
        .route("/static/app.css", get(assets::css))
        .route("/static/passkey.js", get(assets::passkey_js))
        .route("/static/device.js", get(assets::device_js))
        .route("/static/request.js", get(assets::request_js))
        .route("/.well-known/agent-vaultd", get(instance))
        .route(
            "/approve/{id}",
            get(approval::approval_page).post(approval::approval_decide),
        )
        .route("/approve/{id}/state", get(approval::approval_state))
        .route(
            "/pair/{token}",
            get(pairing::pair_page).post(pairing::pair_claim),
        )
        .route("/pair-wait", get(pairing::pair_wait))
        .route("/pairings/{id}", post(dashboard::pairing_decide))
        .route("/grants/revoke", post(dashboard::grant_revoke))
        .route("/totp/reset", post(dashboard::totp_reset))
        .route("/watch", get(watch::watch))
        .route("/passkeys", get(passkey_api::passkeys_page))
        .route(
            "/passkeys/register/start",
            post(passkey_api::passkey_register_start),
        )
        .route(
            "/passkeys/register/finish",
            post(passkey_api::passkey_register_finish),
        )
        .route(
            "/approve/{id}/passkey/start",
            post(passkey_api::passkey_approve_start),
        )
        .route(
            "/approve/{id}/passkey/finish",
            post(passkey_api::passkey_approve_finish),
        )
}

/// This run's random id (no secret): lets `agent-vault doctor` check that
/// an address, such as the config's `publicUrl`, leads to this daemon.
async fn instance(State(state): State<AppState>) -> String {
    state.instance.clone()
}

/// Scripts only from this origin's one file (the passkey ceremonies), which
/// talks only to this origin.
const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; script-src 'self'; \
                   connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    res
}

/// Refuses throttled sources, and counts every authentication failure. A
/// request that carries a paired device's valid credential is never
/// throttled: a flood of bad requests must not lock the person out (every
/// local browser and the tunnel arrive from the same loopback address).
/// Its own failed second factors are limited per device
/// (`crate::attempts`).
async fn throttle(
    state: AppState,
    limiter: std::sync::Arc<ratelimit::FailureLimiter>,
    req: Request,
    next: Next,
) -> Response {
    let source = req
        .extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    if limiter.blocked(source, crate::clock::now_ms())
        && auth::device(&state, req.headers()).is_none()
    {
        tracing::warn!(?source, "approval UI: too many failed authentications");
        let page = pages::message(
            "Too many attempts",
            "Too many failed attempts. Wait a minute and try again.",
            "bad",
        );
        return (
            axum::http::StatusCode::TOO_MANY_REQUESTS,
            axum::response::Html(page.into_string()),
        )
            .into_response();
    }
    let res = next.run(req).await;
    if matches!(res.status().as_u16(), 401 | 403 | 410) {
        limiter.failed(source, crate::clock::now_ms());
    }
    res
}

/// The handlers and security headers without the throttle, so that a
/// fuzzer keeps reaching the handlers after many failures.
pub fn router_unthrottled(state: AppState) -> Router {
    routes()
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(security_headers))
}

pub fn router(state: AppState) -> Router {
    let limiter = std::sync::Arc::new(ratelimit::FailureLimiter::default());
    let throttled = state.clone();
    routes()
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(move |req, next| {
            throttle(throttled.clone(), limiter.clone(), req, next)
        }))
        .layer(axum::middleware::from_fn(security_headers))
}
