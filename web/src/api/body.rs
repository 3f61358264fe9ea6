//! Reading request bodies within limits: the declared length is checked before anything is
//! read, the streamed length while reading, the decoded length while decoding.

use crate::error::ApiError;
use crate::server::BodyLimits;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use std::io::Read;

/// Reads the body, refusing (413) anything over `max_body` as sent.
pub async fn read(headers: &HeaderMap, body: Body, limits: BodyLimits) -> Result<Bytes, ApiError> {
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > limits.max_body
    {
        return Err(too_large(len, limits.max_body));
    }
    axum::body::to_bytes(body, limits.max_body)
        .await
        .map_err(|_| {
            ApiError::too_large(format!(
                "request body exceeds the limit of {} bytes",
                limits.max_body
            ))
        })
}

fn too_large(len: usize, max: usize) -> ApiError {
    ApiError::too_large(format!(
        "request body of {len} bytes exceeds the limit of {max} bytes"
    ))
}

/// The Content-Encoding, lowercased; `identity` when absent.
pub fn content_encoding(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase()
}

/// Inflates a gzip body, refusing (413) output beyond `max_decoded` without allocating it.
pub fn gunzip(bytes: &[u8], max_decoded: usize) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::with_capacity(bytes.len().saturating_mul(4).min(max_decoded));
    let limit = u64::try_from(max_decoded)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    flate2::read::MultiGzDecoder::new(bytes)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("body is not valid gzip: {e}")))?;
    if out.len() > max_decoded {
        return Err(ApiError::too_large(format!(
            "decompressed body exceeds the limit of {max_decoded} bytes"
        )));
    }
    Ok(out)
}
