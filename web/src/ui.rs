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

/// A static asset: its bytes, a strong ETag, and its gzip form (made on first request).
struct Asset {
    content_type: &'static str,
    body: &'static [u8],
    etag: std::sync::OnceLock<HeaderValue>,
    gzip: std::sync::OnceLock<Vec<u8>>,
}

impl Asset {
    const fn new(content_type: &'static str, body: &'static [u8]) -> Self {
        Self {
            content_type,
            body,
            etag: std::sync::OnceLock::new(),
            gzip: std::sync::OnceLock::new(),
        }
    }

    fn etag(&self) -> &HeaderValue {
        self.etag.get_or_init(|| {
            use sha2::Digest;
            let digest = sha2::Sha256::digest(self.body);
            let hex: String = digest[..12].iter().map(|b| format!("{b:02x}")).collect();
            HeaderValue::from_str(&format!("\"{hex}\""))
                .unwrap_or(HeaderValue::from_static("\"0\""))
        })
    }

    fn gzip(&self) -> &[u8] {
        self.gzip.get_or_init(|| {
            use std::io::Write;
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
            // Writing to a Vec cannot fail.
            let _ = enc.write_all(self.body);
            enc.finish().unwrap_or_default()
        })
    }

    /// The asset for a request: 304 when the browser's copy is current (every load revalidates,
    /// `no-cache`, so a new binary's bundle is never mixed with an old page), gzip when accepted.
    fn respond(&'static self, req: &axum::http::HeaderMap) -> axum::response::Response {
        let etag = self.etag().clone();
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        headers.insert(header::ETAG, etag.clone());
        headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        headers.insert(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        );
        let matches = req
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == etag);
        if matches {
            return (axum::http::StatusCode::NOT_MODIFIED, headers).into_response();
        }
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(self.content_type),
        );
        let gzip_ok = req
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|c| {
                let mut parts = c.split(';');
                let name = parts.next().unwrap_or("").trim();
                let q0 = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.parse::<f64>().ok())
                        == Some(0.0)
                });
                name.eq_ignore_ascii_case("gzip") && !q0
            });
        if gzip_ok {
            headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            (headers, self.gzip()).into_response()
        } else {
            (headers, self.body).into_response()
        }
    }
}

static CLIENT_JS_ASSET: Asset = Asset::new("text/javascript; charset=utf-8", CLIENT_JS);
static CLIENT_WASM_ASSET: Asset = Asset::new("application/wasm", CLIENT_WASM);
static CSS_ASSET: Asset = Asset::new("text/css; charset=utf-8", CSS.as_bytes());

/// The UI's routes: the pages, `/pkg/client.js`, `/pkg/client_bg.wasm` and `/ui/crest.css`.
pub fn router(addr: std::net::SocketAddr) -> Router {
    let options = LeptosOptions::builder()
        .output_name("client")
        .site_root("/")
        .site_pkg_dir("pkg")
        .site_addr(addr)
        .build();
    let routes = generate_route_list(crest_ui::App);
    // Compress the bundle off the request path, so the first page load does not wait for it.
    std::thread::spawn(|| {
        for a in [&CLIENT_WASM_ASSET, &CLIENT_JS_ASSET, &CSS_ASSET] {
            a.gzip();
        }
    });
    Router::new()
        .route(
            "/pkg/client.js",
            get(|h: axum::http::HeaderMap| async move { CLIENT_JS_ASSET.respond(&h) }),
        )
        .route(
            "/pkg/client_bg.wasm",
            get(|h: axum::http::HeaderMap| async move { CLIENT_WASM_ASSET.respond(&h) }),
        )
        .route(
            "/favicon.ico",
            get(|| async { axum::http::StatusCode::NO_CONTENT }),
        )
        .route(
            "/ui/crest.css",
            get(|h: axum::http::HeaderMap| async move { CSS_ASSET.respond(&h) }),
        )
        .leptos_routes(&options, routes, {
            let options = options.clone();
            move || shell(options.clone())
        })
        .with_state(options)
}
