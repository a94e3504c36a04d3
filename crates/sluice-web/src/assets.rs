//! The UI's own script, style sheet and icon, embedded in the binary.

use axum::http::header;
use axum::response::IntoResponse;

const SCRIPT: &str = include_str!("../assets/app.js");
const STYLE: &str = include_str!("../assets/app.css");
const ICON: &str = include_str!("../assets/favicon.svg");

/// Short enough that a new binary's assets are picked up within minutes.
const CACHE: &str = "public, max-age=300";

fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, CACHE),
        ],
        body,
    )
}

pub async fn script() -> impl IntoResponse {
    asset("text/javascript; charset=utf-8", SCRIPT)
}

pub async fn style() -> impl IntoResponse {
    asset("text/css; charset=utf-8", STYLE)
}

/// Every page links it, so browsers never ask for `/favicon.ico`.
pub async fn icon() -> impl IntoResponse {
    asset("image/svg+xml", ICON)
}
