//! The approval web UI (axum): pairing, the approval card, the dashboard.
//!
//! Every page works without JavaScript. Every response carries a strict
//! CSP, `Cache-Control: no-store` and `frame-ancestors 'none'`. Every
//! approval endpoint needs a paired device's cookie and, for POSTs, a CSRF
//! token bound to that device and that action. Agent-supplied strings are
//! rendered only through maud, which escapes them.

mod auth;
mod pages;
mod routes;

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::state::AppState;

pub const DEVICE_COOKIE: &str = "av_device";
pub const CLAIM_COOKIE: &str = "av_claim";

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

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

pub fn router(state: AppState) -> Router {
    routes::routes()
        .with_state(state)
        .layer(axum::extract::DefaultBodyLimit::max(64 * 1024))
        .layer(axum::middleware::from_fn(security_headers))
}
