//! Serves the web UI: every page rendered on the server by Leptos and hydrated in the browser
//! by the wasm bundle `build.rs` made (embedded here, so the binary is the whole product), the
//! stylesheet, and a strict Content-Security-Policy: scripts only from this origin with the
//! page's nonce (plus `'wasm-unsafe-eval'` to instantiate the bundle), no plugins, no framing.

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use leptos::prelude::*;
use leptos_axum::{LeptosRoutes, ResponseOptions, generate_route_list};
use leptos_meta::MetaTags;

const CLIENT_JS: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pkg/client.js"));
const CLIENT_WASM: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/pkg/client_bg.wasm"));
const CSS: &str = include_str!("../ui/style/crest.css");

/// The CSP of every page, for its nonce. Inline `style` attributes are allowed (charts size
/// bars with them; they cannot run script); inline `<style>` and `<script>` need the nonce.
pub fn csp(nonce: &str) -> String {
    format!(
        "default-src 'self'; script-src 'self' 'nonce-{nonce}' 'wasm-unsafe-eval'; \
         style-src 'self' 'nonce-{nonce}'; style-src-attr 'unsafe-inline'; img-src 'self' data:; \
         connect-src 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'; form-action 'self'"
    )
}

fn shell(options: LeptosOptions) -> impl IntoView {
    if let Some(nonce) = use_nonce()
        && let Ok(v) = HeaderValue::from_str(&csp(&nonce.to_string()))
    {
        expect_context::<ResponseOptions>().insert_header(header::CONTENT_SECURITY_POLICY, v);
    }
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <crest_ui::App/>
            </body>
        </html>
    }
}

fn asset(content_type: &'static str, body: &'static [u8]) -> axum::response::Response {
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
        ],
        body,
    )
        .into_response()
}

/// The UI's routes: the pages, `/pkg/client.js`, `/pkg/client_bg.wasm` and `/ui/crest.css`.
pub fn router(addr: std::net::SocketAddr) -> Router {
    let options = LeptosOptions::builder()
        .output_name("client")
        .site_root("/")
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let routes = generate_route_list(crest_ui::App);
    Router::new()
        .route(
            "/pkg/client.js",
            get(|| async { asset("text/javascript; charset=utf-8", CLIENT_JS) }),
        )
        .route(
            "/pkg/client_bg.wasm",
            get(|| async { asset("application/wasm", CLIENT_WASM) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route(
            "/ui/crest.css",
            get(|| async { asset("text/css; charset=utf-8", CSS.as_bytes()) }),
        )
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .with_state(options)
}
