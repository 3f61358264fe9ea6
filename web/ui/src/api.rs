//! Calls to Crest's HTTP API from the browser, with the signed-in token.
//!
//! Pages load their data after hydration (`LocalResource`), so the server renders the page
//! shell and every figure comes from the same API a script would call.

use serde_json::Value;

/// Where the token lives in the browser (the tab's session storage).
pub const TOKEN_KEY: &str = "crest-token";

/// A failed call: HTTP status (0 when the request did not get through) and message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The server's `message`, or what went wrong.
    pub message: String,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.status == 0 {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{} ({})", self.message, self.status)
        }
    }
}

/// Percent-encodes a query value.
pub fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(feature = "hydrate")]
mod imp {
    use super::{ApiError, TOKEN_KEY};
    use serde_json::Value;

    fn storage() -> Option<web_sys::Storage> {
        web_sys::window()?.session_storage().ok()?
    }

    /// The signed-in token.
    pub fn token() -> Option<String> {
        storage()?.get_item(TOKEN_KEY).ok()?
    }

    /// Stores (or with `None` forgets) the token.
    pub fn set_token(t: Option<&str>) {
        if let Some(s) = storage() {
            let _ = match t {
                Some(t) => s.set_item(TOKEN_KEY, t),
                None => s.remove_item(TOKEN_KEY),
            };
        }
    }

    async fn finish(
        r: Result<gloo_net::http::Response, gloo_net::Error>,
    ) -> Result<gloo_net::http::Response, ApiError> {
        let r = r.map_err(|e| ApiError {
            status: 0,
            message: e.to_string(),
        })?;
        if r.ok() {
            return Ok(r);
        }
        let status = r.status();
        let text = r.text().await.unwrap_or_default();
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_string))
            .unwrap_or(text);
        Err(ApiError { status, message })
    }

    fn with_auth(b: gloo_net::http::RequestBuilder) -> gloo_net::http::RequestBuilder {
        match token() {
            Some(t) => b.header("Authorization", &format!("Bearer {t}")),
            None => b,
        }
    }

    /// GET `path` as JSON.
    pub async fn get(path: &str) -> Result<Value, ApiError> {
        let r = request("GET", path, None).await?;
        r.json::<Value>().await.map_err(|e| ApiError {
            status: 0,
            message: e.to_string(),
        })
    }

    /// Sends `method` to `path` with the token and an optional JSON body; a non-2xx answer is
    /// an error carrying the server's message.
    async fn request(
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<gloo_net::http::Response, ApiError> {
        let b = with_auth(match method {
            "POST" => gloo_net::http::Request::post(path),
            "PUT" => gloo_net::http::Request::put(path),
            "DELETE" => gloo_net::http::Request::delete(path),
            _ => gloo_net::http::Request::get(path),
        });
        let r = match body {
            Some(v) => {
                b.header("Content-Type", "application/json")
                    .body(v.to_string())
                    .map_err(|e| ApiError {
                        status: 0,
                        message: e.to_string(),
                    })?
                    .send()
                    .await
            }
            None => b.send().await,
        };
        finish(r).await
    }

    /// Sends `body` (JSON) with `method`.
    pub async fn send(method: &str, path: &str, body: Option<&Value>) -> Result<Value, ApiError> {
        let r = request(method, path, body).await?;
        let text = r.text().await.unwrap_or_default();
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Runs SQL; rows as JSON objects.
    pub async fn sql(q: &str) -> Result<Vec<Value>, ApiError> {
        let body = serde_json::json!({ "sql": q });
        let r = request("POST", "/api/v1/sql?format=json", Some(&body)).await?;
        r.json::<Vec<Value>>().await.map_err(|e| ApiError {
            status: 0,
            message: e.to_string(),
        })
    }

    /// Fetches `path` (GET, or POST with a JSON body) and saves it as `filename`.
    pub async fn download(path: &str, body: Option<Value>, filename: &str) -> Result<(), ApiError> {
        use wasm_bindgen::JsCast;
        let method = if body.is_some() { "POST" } else { "GET" };
        let r = request(method, path, body.as_ref()).await?;
        let bytes = r.binary().await.map_err(|e| ApiError {
            status: 0,
            message: e.to_string(),
        })?;
        let fail = |what: &str| ApiError {
            status: 0,
            message: format!("cannot save the file: {what}"),
        };
        let array = js_sys::Uint8Array::from(bytes.as_slice());
        let parts = js_sys::Array::of1(&array);
        let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).map_err(|_| fail("blob"))?;
        let url = web_sys::Url::create_object_url_with_blob(&blob).map_err(|_| fail("url"))?;
        let doc = web_sys::window()
            .and_then(|w| w.document())
            .ok_or_else(|| fail("no document"))?;
        let a = doc
            .create_element("a")
            .map_err(|_| fail("anchor"))?
            .dyn_into::<web_sys::HtmlAnchorElement>()
            .map_err(|_| fail("anchor"))?;
        a.set_href(&url);
        a.set_download(filename);
        a.click();
        let _ = web_sys::Url::revoke_object_url(&url);
        Ok(())
    }

    /// A value kept in local storage (query history).
    pub fn local_get(key: &str) -> Option<String> {
        web_sys::window()?
            .local_storage()
            .ok()??
            .get_item(key)
            .ok()?
    }

    /// Stores a value in local storage.
    pub fn local_set(key: &str, v: &str) {
        if let Some(s) = web_sys::window().and_then(|w| w.local_storage().ok().flatten()) {
            let _ = s.set_item(key, v);
        }
    }
}

#[cfg(not(feature = "hydrate"))]
mod imp {
    //! On the server nothing is fetched: resources load after hydration.
    use super::ApiError;
    use serde_json::Value;

    fn server_side() -> ApiError {
        ApiError {
            status: 0,
            message: "loads in the browser".into(),
        }
    }
    pub fn token() -> Option<String> {
        None
    }
    pub fn set_token(_: Option<&str>) {}
    pub async fn get(_: &str) -> Result<Value, ApiError> {
        Err(server_side())
    }
    pub async fn send(_: &str, _: &str, _: Option<&Value>) -> Result<Value, ApiError> {
        Err(server_side())
    }
    pub async fn sql(_: &str) -> Result<Vec<Value>, ApiError> {
        Err(server_side())
    }
    pub async fn download(_: &str, _: Option<Value>, _: &str) -> Result<(), ApiError> {
        Err(server_side())
    }
    pub fn local_get(_: &str) -> Option<String> {
        None
    }
    pub fn local_set(_: &str, _: &str) {}
}

pub use imp::{download, get, local_get, local_set, send, set_token, sql, token};

/// A JSON value as display text (strings without quotes, null as empty).
pub fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => crate::chart::fmt_num(f),
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}
