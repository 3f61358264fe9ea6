//! OTLP/gRPC receivers on their own listener (`--otlp-grpc-listen`, default 127.0.0.1:4317):
//! the unary `Export` methods of `opentelemetry.proto.collector.metrics.v1.MetricsService` and
//! `opentelemetry.proto.collector.trace.v1.TraceService`.
//!
//! gRPC is HTTP/2 with a small framing of its own, so this is plain axum: the request body is
//! one length-prefixed message (flag byte, 4-byte big-endian length; the flag says whether it
//! is compressed with the `grpc-encoding`, of which `gzip` and `identity` are supported), the
//! response is one length-prefixed `Export*ServiceResponse` followed by the `grpc-status` and
//! `grpc-message` trailers. Errors are trailers-only responses. The decoders, limits, bearer
//! tokens (the `authorization` metadata, `write` scope) and `partial_success` are those of
//! OTLP/HTTP ([`super::otlp`]).

use crate::api::body;
use crate::api::otlp::{Signal, ingest};
use crate::auth::{Denied, Scope};
use crate::error::ApiError;
use crate::ratelimit::Principal;
use crate::server::AppState;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body::Frame;
use ingest::decode::otlp::{Encoding, rpc_code};
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The metrics export method's path.
pub const METRICS_PATH: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
/// The traces export method's path.
pub const TRACES_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// The gRPC listener's routes; any other method is `UNIMPLEMENTED`.
pub fn router(app: AppState) -> Router {
    Router::new()
        .route(METRICS_PATH, post(metrics))
        .route(TRACES_PATH, post(traces))
        .fallback(|| async { trailers_only(rpc_code::UNIMPLEMENTED, "unknown service or method") })
        .with_state(app)
}

async fn metrics(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    export(app, headers, body, Signal::Metrics).await
}

async fn traces(State(app): State<AppState>, headers: HeaderMap, body: Body) -> Response {
    export(app, headers, body, Signal::Traces).await
}

/// A gRPC error: a status code from [`rpc_code`] and a message.
struct GrpcError(i32, String);

impl From<ApiError> for GrpcError {
    fn from(e: ApiError) -> Self {
        let code = match e.status {
            StatusCode::BAD_REQUEST | StatusCode::UNSUPPORTED_MEDIA_TYPE => {
                rpc_code::INVALID_ARGUMENT
            }
            StatusCode::PAYLOAD_TOO_LARGE | StatusCode::TOO_MANY_REQUESTS => {
                rpc_code::RESOURCE_EXHAUSTED
            }
            StatusCode::UNAUTHORIZED => rpc_code::UNAUTHENTICATED,
            StatusCode::FORBIDDEN => rpc_code::PERMISSION_DENIED,
            // Retryable: the store refuses for now (or failed inside); OTLP clients retry.
            _ => rpc_code::UNAVAILABLE,
        };
        GrpcError(code, e.message)
    }
}

async fn export(app: AppState, headers: HeaderMap, body: Body, signal: Signal) -> Response {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !matches!(
        content_type.split(';').next().unwrap_or("").trim(),
        "application/grpc" | "application/grpc+proto"
    ) {
        // The gRPC spec's answer to a request that is not gRPC at all.
        return (
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!("Content-Type {content_type:?} is not gRPC: send application/grpc"),
        )
            .into_response();
    }
    match handle(&app, &headers, body, signal).await {
        Ok(message) => {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", HeaderValue::from(0));
            let body = GrpcBody {
                data: Some(frame(&message)),
                trailers: Some(trailers),
            };
            let mut resp = Response::new(Body::new(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/grpc"),
            );
            resp
        }
        Err(GrpcError(code, message)) => trailers_only(code, &message),
    }
}

async fn handle(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    signal: Signal,
) -> Result<Vec<u8>, GrpcError> {
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok());
    let who = match app.auth.check(auth, Scope::Write) {
        Ok(name) => Principal(name.to_string()),
        Err(Denied::Unauthenticated(why)) => {
            return Err(GrpcError(rpc_code::UNAUTHENTICATED, why.to_string()));
        }
        Err(Denied::Forbidden(s)) => {
            return Err(GrpcError(
                rpc_code::PERMISSION_DENIED,
                format!("this token lacks the {} scope", s.name()),
            ));
        }
    };
    let compression = headers
        .get("grpc-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .to_ascii_lowercase();
    let bytes = body::read(headers, body, app.limits).await?;
    let max_decoded = app.limits.max_decoded;
    let raw = tokio::task::spawn_blocking(move || unframe(&bytes, &compression, max_decoded))
        .await
        .map_err(ApiError::internal)??;
    Ok(ingest(app, Some(&who), raw, signal, Encoding::Protobuf).await?)
}

/// The one message of a unary request, decompressed.
fn unframe(body: &[u8], compression: &str, max_decoded: usize) -> Result<Vec<u8>, GrpcError> {
    let bad = |m: String| GrpcError(rpc_code::INVALID_ARGUMENT, m);
    let Some((head, message)) = body.split_at_checked(5) else {
        return Err(bad(format!(
            "a gRPC message starts with a 5-byte prefix; the body has {} bytes",
            body.len()
        )));
    };
    let len = u32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    if message.len() != len {
        return Err(bad(format!(
            "the message prefix says {len} bytes but {} follow (a unary call carries exactly one message)",
            message.len()
        )));
    }
    match head[0] {
        0 if message.len() > max_decoded => Err(GrpcError(
            rpc_code::RESOURCE_EXHAUSTED,
            format!("message exceeds the decoded-size limit of {max_decoded} bytes"),
        )),
        0 => Ok(message.to_vec()),
        1 => match compression {
            "gzip" => Ok(body::gunzip(message, max_decoded)?),
            "identity" => Err(bad(
                "the message is flagged compressed but grpc-encoding is identity".into(),
            )),
            other => Err(GrpcError(
                rpc_code::UNIMPLEMENTED,
                format!("grpc-encoding {other:?} is not supported: send gzip or identity"),
            )),
        },
        flag => Err(bad(format!("unknown message flag {flag}"))),
    }
}

/// `message` with the gRPC length prefix (uncompressed).
fn frame(message: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(message.len() + 5);
    out.push(0);
    out.extend_from_slice(
        &u32::try_from(message.len())
            .unwrap_or(u32::MAX)
            .to_be_bytes(),
    );
    out.extend_from_slice(message);
    Bytes::from(out)
}

/// An error response without a body: HTTP 200, the status in the headers.
fn trailers_only(code: i32, message: &str) -> Response {
    let mut resp = Response::new(Body::empty());
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    h.insert("grpc-status", HeaderValue::from(code));
    if let Ok(v) = HeaderValue::from_str(&percent_encode(message)) {
        h.insert("grpc-message", v);
    }
    resp
}

/// `grpc-message` encoding: printable ASCII but `%` as is, everything else as `%XX` of its
/// UTF-8 bytes.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A response body of one data frame, then the trailers.
struct GrpcBody {
    data: Option<Bytes>,
    trailers: Option<HeaderMap>,
}

impl http_body::Body for GrpcBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(d) = self.data.take() {
            return Poll::Ready(Some(Ok(Frame::data(d))));
        }
        Poll::Ready(self.trailers.take().map(|t| Ok(Frame::trailers(t))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && self.trailers.is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_frames_are_named() {
        let f = frame(b"hello");
        assert_eq!(&f[..5], &[0, 0, 0, 0, 5]);
        assert_eq!(unframe(&f, "identity", 100).ok(), Some(b"hello".to_vec()));
        let short = unframe(&[0, 0, 0], "identity", 100).err().unwrap();
        assert_eq!(short.0, rpc_code::INVALID_ARGUMENT);
        assert!(short.1.contains("5-byte prefix"), "{}", short.1);
        let lying = unframe(&[0, 0, 0, 0, 9, 1], "identity", 100).err().unwrap();
        assert!(lying.1.contains("says 9 bytes"), "{}", lying.1);
        let big = unframe(&f, "identity", 4).err().unwrap();
        assert_eq!(big.0, rpc_code::RESOURCE_EXHAUSTED);
        let mut compressed = f.to_vec();
        compressed[0] = 1;
        assert_eq!(
            unframe(&compressed, "snappy", 100).err().unwrap().0,
            rpc_code::UNIMPLEMENTED
        );
        assert_eq!(
            unframe(&compressed, "identity", 100).err().unwrap().0,
            rpc_code::INVALID_ARGUMENT
        );
    }

    #[test]
    fn gzip_messages_are_inflated_within_the_limit() {
        use std::io::Write;
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&[7u8; 1000]).unwrap();
        let z = gz.finish().unwrap();
        let mut body = vec![1];
        body.extend_from_slice(&u32::try_from(z.len()).unwrap().to_be_bytes());
        body.extend_from_slice(&z);
        assert_eq!(unframe(&body, "gzip", 2000).ok(), Some(vec![7u8; 1000]));
        assert_eq!(
            unframe(&body, "gzip", 500).err().unwrap().0,
            rpc_code::RESOURCE_EXHAUSTED
        );
    }

    #[test]
    fn messages_are_percent_encoded() {
        assert_eq!(percent_encode("a b%c\né"), "a b%25c%0A%C3%A9");
    }
}
