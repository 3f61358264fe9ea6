//! OTLP/HTTP receivers: `POST /v1/metrics` and `POST /v1/traces`.
//!
//! Protobuf (`application/x-protobuf`) or JSON (`application/json`), identity or gzip, with or
//! without Content-Length. Every answer is in the request's encoding: an
//! `Export*ServiceResponse` on 200 (with `partial_success` when some data points or spans were
//! rejected), a `google.rpc.Status` otherwise. Status codes follow `RELIABILITY.md`: 400 when
//! the body does not decode or nothing in it could be stored, 413 over the size limits, 415 for
//! another Content-Type or Content-Encoding, 503 with Retry-After when the store refuses for
//! now (never 500: OTLP clients drop data on 500).

use crate::api::body;
use crate::error::ApiError;
use crate::ratelimit::Principal;
use crate::server::AppState;
use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ingest::clock::Clock;
use ingest::decode::otlp::{self, Encoding};
use std::collections::BTreeSet;

/// How many rejection reasons the `error_message` quotes.
const MAX_QUOTED_ERRORS: usize = 5;

/// Which OTLP export service a request is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Signal {
    Metrics,
    Traces,
}

impl Signal {
    fn items(self) -> &'static str {
        match self {
            Signal::Metrics => "data points",
            Signal::Traces => "spans",
        }
    }
}

/// `POST /v1/metrics`: an `ExportMetricsServiceRequest`.
pub async fn metrics(
    State(app): State<AppState>,
    who: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(app, who, headers, body, Signal::Metrics).await
}

/// `POST /v1/traces`: an `ExportTraceServiceRequest`.
pub async fn traces(
    State(app): State<AppState>,
    who: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    export(app, who, headers, body, Signal::Traces).await
}

async fn export(
    app: AppState,
    who: Option<Extension<Principal>>,
    headers: HeaderMap,
    body: Body,
    signal: Signal,
) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let Some(encoding) = Encoding::from_content_type(content_type) else {
        let e = ApiError::unsupported_media(format!(
            "Content-Type {content_type:?} is not supported: OTLP/HTTP sends application/x-protobuf or application/json"
        ));
        return error_response(e, Encoding::Json);
    };
    match handle(app, who, &headers, body, signal, encoding).await {
        Ok(resp) => resp,
        Err(e) => error_response(e, encoding),
    }
}

async fn handle(
    app: AppState,
    who: Option<Extension<Principal>>,
    headers: &HeaderMap,
    body: Body,
    signal: Signal,
    encoding: Encoding,
) -> Result<Response, ApiError> {
    let enc = body::content_encoding(headers);
    if enc != "identity" && enc != "gzip" {
        return Err(ApiError::unsupported_media(format!(
            "Content-Encoding {enc:?} is not supported: send identity or gzip"
        )));
    }
    let bytes = body::read(headers, body, app.limits).await?;
    let max_decoded = app.limits.max_decoded;
    let raw = tokio::task::spawn_blocking(move || {
        if enc == "gzip" {
            body::gunzip(&bytes, max_decoded)
        } else if bytes.len() > max_decoded {
            Err(ApiError::too_large(format!(
                "body exceeds the decoded-size limit of {max_decoded} bytes"
            )))
        } else {
            Ok(bytes.to_vec())
        }
    })
    .await
    .map_err(ApiError::internal)??;
    let bytes = ingest(&app, who.as_deref(), raw, signal, encoding).await?;
    Ok(encoded(StatusCode::OK, bytes, encoding))
}

/// Decodes an uncompressed export request, writes what can be stored and returns the encoded
/// `Export*ServiceResponse` (with `partial_success` when something was rejected). Shared by
/// OTLP/HTTP and OTLP/gRPC ([`super::otlp_grpc`]). A request of which nothing can be stored is
/// a 400.
pub(crate) async fn ingest(
    app: &AppState,
    who: Option<&Principal>,
    raw: Vec<u8>,
    signal: Signal,
    encoding: Encoding,
) -> Result<Vec<u8>, ApiError> {
    let decoded = tokio::task::spawn_blocking(move || {
        let decoded = match signal {
            Signal::Metrics => {
                otlp::decode_metrics(&raw, encoding, ingest::clock::SystemClock.now_ns())
            }
            Signal::Traces => otlp::decode_traces(&raw, encoding),
        };
        decoded.map_err(|e| ApiError::bad_request(e.to_string()))
    })
    .await
    .map_err(ApiError::internal)??;

    let items = decoded.items;
    let mut reasons: Vec<(usize, String)> = decoded.rejected;
    app.admit(who, decoded.points.len())?;
    let outcome = app.db.write(decoded.points).await?;
    reasons.extend(outcome.rejected.into_iter().map(|(i, e)| {
        let what = match signal {
            Signal::Metrics => "data point",
            Signal::Traces => "span",
        };
        (i, format!("{what} {i}: {e}"))
    }));
    reasons.sort_by_key(|(i, _)| *i);
    let rejected: BTreeSet<usize> = reasons.iter().map(|(i, _)| *i).collect();
    let mut message = String::new();
    if !rejected.is_empty() {
        message = format!(
            "{} of {} {} rejected: ",
            rejected.len(),
            items,
            signal.items()
        );
        let quoted: Vec<&str> = reasons
            .iter()
            .take(MAX_QUOTED_ERRORS)
            .map(|(_, m)| m.as_str())
            .collect();
        message.push_str(&quoted.join("; "));
        if reasons.len() > MAX_QUOTED_ERRORS {
            message.push_str(&format!("; and {} more", reasons.len() - MAX_QUOTED_ERRORS));
        }
    }
    if !decoded.warnings.is_empty() {
        if !message.is_empty() {
            message.push_str("; ");
        }
        message.push_str(&decoded.warnings.join("; "));
    }
    if outcome.accepted == 0 && !rejected.is_empty() && rejected.len() == items {
        // Nothing in the request can be stored: a permanent error, not a partial success.
        return Err(ApiError::bad_request(message));
    }
    Ok(match signal {
        Signal::Metrics => otlp::metrics_response(rejected.len(), &message, encoding),
        Signal::Traces => otlp::traces_response(rejected.len(), &message, encoding),
    })
}

fn encoded(status: StatusCode, bytes: Vec<u8>, encoding: Encoding) -> Response {
    let mut resp = (status, bytes).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
}

/// An error as a `google.rpc.Status` in `encoding`, keeping the status and its headers
/// (Retry-After). A 500 becomes a 503: OTLP clients drop data on 500 but retry 503.
fn error_response(e: ApiError, encoding: Encoding) -> Response {
    let e = if e.status == StatusCode::INTERNAL_SERVER_ERROR {
        ApiError::unavailable(e.message)
    } else {
        e
    };
    let code = match e.status {
        StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
            otlp::rpc_code::INVALID_ARGUMENT
        }
        StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
            otlp::rpc_code::RESOURCE_EXHAUSTED
        }
        StatusCode::SERVICE_UNAVAILABLE => otlp::rpc_code::UNAVAILABLE,
        _ => otlp::rpc_code::INTERNAL,
    };
    let bytes = otlp::status_body(code, &e.message, encoding);
    let mut resp = e.into_response();
    *resp.body_mut() = Body::from(bytes);
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(encoding.content_type()),
    );
    resp
}
