//! The web page at `/`: one HTML page, its scripts (the jobs; the account
//! and, for admins, the users), style sheet and icon,
//! and the tus client it uploads with (tus-js-client's own build, from its
//! npm package, MIT licensed; a test checks it is that file), compiled
//! into the binary. Nothing is loaded from elsewhere, and the
//! Content-Security-Policy says so to the browser.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;

const INDEX: &str = include_str!("web/index.html");
const SCRIPT: &str = include_str!("web/app.js");
const ACCOUNT: &str = include_str!("web/account.js");
const STYLE: &str = include_str!("web/app.css");
const ICON: &str = include_str!("web/favicon.svg");
const TUS: &str = include_str!("web/tus.min.js");

const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    connect-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; \
    form-action 'self'; \
    base-uri 'none'; frame-ancestors 'none'";

pub fn router<S: Clone + Send + Sync + 'static>() -> Router<S> {
    Router::new()
        .route("/", get(|| asset("text/html; charset=utf-8", INDEX)))
        .route(
            "/app.js",
            get(|| asset("text/javascript; charset=utf-8", SCRIPT)),
        )
        .route(
            "/account.js",
            get(|| asset("text/javascript; charset=utf-8", ACCOUNT)),
        )
        .route("/app.css", get(|| asset("text/css; charset=utf-8", STYLE)))
        .route(
            "/tus.min.js",
            get(|| asset("text/javascript; charset=utf-8", TUS)),
        )
        .route("/favicon.svg", get(|| asset("image/svg+xml", ICON)))
}

async fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, POLICY),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Small and embedded: always revalidate, so an upgrade shows at once.
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
}
