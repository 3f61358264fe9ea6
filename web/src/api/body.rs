//! Reading request bodies within limits: the declared length is checked before anything is
//! read, the streamed length while reading, the decoded length while decoding.

use crate::error::ApiError;
use crate::server::BodyLimits;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, header};
use std::io::Read;

/// Reads the body, refusing (413) anything over `max_body` as sent.
pub async fn read(headers: &HeaderMap, body: Body, limits: BodyLimits) -> Result<Bytes, ApiError> {
    read_vec(headers, body, limits).await.map(Bytes::from)
}

/// [`read`] into a vector the caller may keep (the line-protocol decoder makes it the
/// batch's text): one copy out of the connection's buffers, sized by Content-Length. A
/// declared length over `max_body` is refused before anything is read, a streamed one as soon
/// as it passes; a body that breaks off is a 400.
pub async fn read_vec(
    headers: &HeaderMap,
    body: Body,
    limits: BodyLimits,
) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if let Some(len) = declared
        && len > limits.max_body
    {
        return Err(too_large(len, limits.max_body));
    }
    // A finished request's buffer where one fits: already-mapped memory (see `ingest::spare`).
    let mut out = ingest::spare::BYTES.take(declared.unwrap_or(0));
    let mut stream = body.into_data_stream();
    while let Some(chunk) = futures::StreamExt::next(&mut stream).await {
        let chunk = chunk
            .map_err(|e| ApiError::bad_request(format!("could not read the request body: {e}")))?;
        if out.len() + chunk.len() > limits.max_body {
            return Err(ApiError::too_large(format!(
                "request body exceeds the limit of {} bytes",
                limits.max_body
            )));
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
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

/// Inflates a gzip body, refusing (413) output beyond `max_decoded` without allocating it: a
/// trailer that declares more is refused before inflating anything, and otherwise the buffer
/// grows at most to the limit (never doubling past it), whatever the trailer claimed.
pub fn gunzip(bytes: &[u8], max_decoded: usize) -> Result<Vec<u8>, ApiError> {
    let refuse = || {
        ApiError::too_large(format!(
            "decompressed body exceeds the limit of {max_decoded} bytes"
        ))
    };
    // ISIZE: the last member's size mod 2^32. A gzip of zeros says honestly how big it is.
    let declared = (bytes.starts_with(&[0x1f, 0x8b]))
        .then_some(bytes.len())
        .and_then(|n| n.checked_sub(4))
        .and_then(|at| bytes.get(at..))
        .and_then(|t| <[u8; 4]>::try_from(t).ok())
        .map(|t| u32::from_le_bytes(t) as usize);
    if declared.is_some_and(|d| d > max_decoded) {
        return Err(refuse());
    }
    let mut out: Vec<u8> = Vec::with_capacity(declared.unwrap_or(0).min(max_decoded));
    let mut dec = flate2::read::MultiGzDecoder::new(bytes);
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let n = dec
            .read(&mut chunk)
            .map_err(|e| ApiError::bad_request(format!("body is not valid gzip: {e}")))?;
        if n == 0 {
            break;
        }
        if out.len() + n > max_decoded {
            return Err(refuse());
        }
        if out.capacity() - out.len() < n {
            let grow = out.capacity().min(max_decoded - out.len()).max(n);
            out.reserve_exact(grow);
        }
        out.extend_from_slice(&chunk[..n]);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).expect("gzip");
        e.finish().expect("gzip")
    }

    #[test]
    fn gunzip_keeps_to_the_limit_whatever_the_trailer_says() {
        let body = gz(&vec![b'x'; 300_000]);
        assert_eq!(gunzip(&body, 300_000).expect("fits").len(), 300_000);
        assert_eq!(
            gunzip(&body, 299_999).expect_err("over").status.as_u16(),
            413
        );
        // A forged trailer claiming 10 bytes: still refused at the limit.
        let mut forged = body.clone();
        let n = forged.len();
        forged[n - 4..].copy_from_slice(&10u32.to_le_bytes());
        assert_eq!(
            gunzip(&forged, 100_000).expect_err("over").status.as_u16(),
            413
        );
        assert_eq!(
            gunzip(b"not gzip at all", 1000)
                .expect_err("bad")
                .status
                .as_u16(),
            400
        );
        assert!(gunzip(&gz(b""), 10).expect("empty").is_empty());
    }
}
