//! Documents rendered once and served as bytes (discovery, JWKS): a strong `ETag` from their
//! content, `If-None-Match` answered with 304, and the caching policy of the document.
//! Rebuilding JSON on every request made the two smallest answers cost more than the HTTP stack.

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;

/// A rendered JSON document with its validator.
#[derive(Debug, Clone)]
pub struct Prepared {
    body: Bytes,
    etag: HeaderValue,
    cache_control: HeaderValue,
}

impl Prepared {
    /// Serialise `value` once. The ETag is a digest of the bytes, so two nodes serving the same
    /// document give the same validator.
    pub fn json(value: &serde_json::Value, cache_control: &'static str) -> Prepared {
        // A `Value` always serialises; the fallback only keeps this infallible.
        let body = serde_json::to_vec(value).unwrap_or_else(|_| b"{}".to_vec());
        let digest = openssl::sha::sha256(&body);
        let tag = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16]);
        let etag = HeaderValue::from_str(&format!("\"{tag}\""))
            .unwrap_or_else(|_| HeaderValue::from_static("\"0\""));
        Prepared {
            body: Bytes::from(body),
            etag,
            cache_control: HeaderValue::from_static(cache_control),
        }
    }

    pub fn etag(&self) -> &HeaderValue {
        &self.etag
    }

    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The document, or 304 when the request already holds this version.
    pub fn respond(&self, request: &HeaderMap) -> Response {
        let fresh = request
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .any(|v| matches_etag(v.as_bytes(), self.etag.as_bytes()));
        let mut response = if fresh {
            StatusCode::NOT_MODIFIED.into_response()
        } else {
            let mut r = self.body.clone().into_response();
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            r
        };
        let headers = response.headers_mut();
        headers.insert(header::ETAG, self.etag.clone());
        headers.insert(header::CACHE_CONTROL, self.cache_control.clone());
        response
    }
}

/// `If-None-Match` uses the weak comparison (RFC 9110 §13.1.2): `W/` is ignored, `*` matches
/// any current representation, and the header is a comma-separated list.
fn matches_etag(header: &[u8], etag: &[u8]) -> bool {
    let Ok(header) = std::str::from_utf8(header) else {
        return false;
    };
    let Ok(etag) = std::str::from_utf8(etag) else {
        return false;
    };
    header.split(',').map(str::trim).any(|candidate| {
        candidate == "*" || candidate.strip_prefix("W/").unwrap_or(candidate) == etag
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn the_etag_follows_the_content_and_a_match_is_a_304() {
        let a = Prepared::json(&serde_json::json!({"k": 1}), "public, max-age=300");
        let b = Prepared::json(&serde_json::json!({"k": 2}), "public, max-age=300");
        assert_ne!(a.etag(), b.etag());
        assert_eq!(
            a.etag(),
            Prepared::json(&serde_json::json!({"k": 1}), "x").etag()
        );

        let full = a.respond(&HeaderMap::new());
        assert_eq!(full.status(), StatusCode::OK);
        assert_eq!(full.headers()[header::ETAG], a.etag().clone());
        assert_eq!(full.headers()[header::CACHE_CONTROL], "public, max-age=300");
        assert_eq!(full.headers()[header::CONTENT_TYPE], "application/json");

        let tag = a.etag().to_str().unwrap().to_string();
        for held in [
            tag.clone(),
            format!("W/{tag}"),
            format!("\"other\", {tag}"),
            "*".into(),
        ] {
            let r = a.respond(&headers(&held));
            assert_eq!(r.status(), StatusCode::NOT_MODIFIED, "{held}");
            assert_eq!(r.headers()[header::ETAG], a.etag().clone());
        }
        for stale in [
            b.etag().to_str().unwrap(),
            "\"\"",
            "garbage",
            tag.trim_matches('"'),
        ] {
            assert_eq!(
                a.respond(&headers(stale)).status(),
                StatusCode::OK,
                "{stale}"
            );
        }
    }
}
