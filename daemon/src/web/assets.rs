//! The static files: the stylesheet and the page scripts (the device
//! proof and watch, the passkey ceremonies, the approval page kept live).

use axum::http::header;
use axum::response::IntoResponse;

const CSS: &str = include_str!("app.css");
const DEVICE_JS: &str = include_str!("device.js");
const PASSKEY_JS: &str = include_str!("passkey.js");
const REQUEST_JS: &str = include_str!("request.js");

pub async fn css() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS)
}

pub async fn device_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        DEVICE_JS,
    )
}

pub async fn passkey_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        PASSKEY_JS,
    )
}

pub async fn request_js() -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        REQUEST_JS,
    )
}
