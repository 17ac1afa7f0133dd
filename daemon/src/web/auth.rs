//! The approver's credential: the paired-device cookie, and the
//! [`PairedDevice`] extractor every handler that needs one takes. A form
//! token (CSRF) bound to the device and the action is checked with
//! [`PairedDevice::check_form`].

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::respond::{self, BAD_TOKEN, NOT_PAIRED};
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

/// The paired device behind a request. Without a valid device cookie the
/// handler never runs: the caller gets 401 (a JSON error for a JSON call,
/// the "not paired" page otherwise).
pub struct PairedDevice {
    pub row: DeviceRow,
    /// The call is the page script's (JSON), not a form's.
    json: bool,
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"))
}

impl FromRequestParts<AppState> for PairedDevice {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let json = is_json(&parts.headers);
        match device(state, &parts.headers) {
            Some(row) => Ok(PairedDevice { row, json }),
            None if json => Err(respond::json_error(StatusCode::UNAUTHORIZED, NOT_PAIRED)),
            None => Err(respond::unauthorized()),
        }
    }
}

impl PairedDevice {
    pub fn id(&self) -> &str {
        &self.row.id
    }

    /// The form token for `purpose` (e.g. `approve:<id>`, `dashboard`);
    /// a missing or wrong one is refused (403) and nothing changes.
    pub fn check_form(&self, state: &AppState, purpose: &str, token: &str) -> Result<(), BadToken> {
        if state.devices.check_csrf(&self.row.id, purpose, token) {
            Ok(())
        } else {
            Err(BadToken { json: self.json })
        }
    }
}

/// A missing or wrong form token: 403, as JSON for the page script.
pub struct BadToken {
    json: bool,
}

impl IntoResponse for BadToken {
    fn into_response(self) -> Response {
        if self.json {
            respond::json_error(StatusCode::FORBIDDEN, BAD_TOKEN)
        } else {
            respond::forbidden()
        }
    }
}
