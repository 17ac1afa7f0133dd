//! The answers every handler shares: an HTML page, a JSON error, the
//! refusals for a missing credential or form token, a cookie.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use maud::Markup;

use super::pages;

pub const NOT_PAIRED: &str = "this browser is not paired (or its pairing expired)";
pub const BAD_TOKEN: &str = "the form token is missing or wrong; reload the page and try again";

pub fn page(status: StatusCode, markup: Markup) -> Response {
    (status, Html(markup.into_string())).into_response()
}

pub fn json_error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

/// No paired device's credential (401).
pub fn unauthorized() -> Response {
    page(StatusCode::UNAUTHORIZED, pages::not_paired(None))
}

/// A missing or wrong form token (403).
pub fn forbidden() -> Response {
    page(
        StatusCode::FORBIDDEN,
        pages::message(
            "Refused",
            "The form token is missing or wrong. Reload the page and try again.",
            "bad",
        ),
    )
}

/// The page for "no such request".
pub fn request_not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        pages::message(
            "Not found",
            "No such request. It may have expired.",
            "muted",
        ),
    )
}

/// `res` with one more `Set-Cookie`.
pub fn with_cookie(mut res: Response, value: String) -> Response {
    if let Ok(v) = HeaderValue::from_str(&value) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res
}
