//! The approver's credential: the paired-device cookie.

use axum::http::HeaderMap;
use axum::http::header;

use crate::clock;
use crate::db::devices::DeviceRow;
use crate::state::AppState;

/// The value of one cookie from the request headers.
pub fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// The paired device making this request, if any.
pub fn device(state: &AppState, headers: &HeaderMap) -> Option<DeviceRow> {
    let value = cookie(headers, super::DEVICE_COOKIE)?;
    state.devices.authenticate(&value, clock::now_ms())
}

/// A Set-Cookie value; `Secure` when the approval URL is HTTPS.
pub fn set_cookie(state: &AppState, name: &str, value: &str, max_age_s: i64) -> String {
    let secure = if state.approval_base().starts_with("https://") {
        "; Secure"
    } else {
        ""
    };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}")
}
