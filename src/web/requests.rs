//! Per request: a short reference id (taken from a trusted proxy's `X-Request-Id`, else made
//! here) that error pages show, every log line of the request carries and the `X-Request-Id`
//! response header repeats; and the access log, one line per request at `info`.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::ip::{canonical, trusted, TrustedProxies};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The reference of the request being answered, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.clone()).ok()
}

/// Crockford's base32: digits and letters a person reads out without confusion (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// 8 characters, 40 random bits: unique enough to find a request in a day of logs.
pub fn new_request_id() -> String {
    let mut buf = [0u8; 5];
    // rand_bytes only fails if the OS RNG is broken; an id is not a secret, so say so instead.
    if openssl::rand::rand_bytes(&mut buf).is_err() {
        return "NORANDOM".into();
    }
    let bits = buf.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
    (0..8)
        .map(|i| char::from(ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize]))
        .collect()
}

/// An incoming id worth keeping: short, and only characters that cannot forge a log line.
fn sane(value: &HeaderValue) -> Option<String> {
    let s = value.to_str().ok()?;
    let ok = (1..=64).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| s.to_string())
}

/// Probes are polled every few seconds: their lines go to `debug` so the access log stays
/// about people and clients.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Paths are logged up to this many characters (a 1 MB path is somebody's mistake or attack).
const MAX_LOGGED_PATH: usize = 200;

/// Middleware: the request id, a `http` span carrying it around the request, the
/// `X-Request-Id` response header, and the access log line.
pub async fn request_context(
    State(proxies): State<TrustedProxies>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let from_proxy = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .is_some_and(|ci| trusted(canonical(ci.0.ip()), &proxies.0));
    let id = from_proxy
        .then(|| request.headers().get(&X_REQUEST_ID).and_then(sane))
        .flatten()
        .unwrap_or_else(new_request_id);
    let method = request.method().clone();
    let path = request.uri().path();
    let path = match path.char_indices().nth(MAX_LOGGED_PATH) {
        Some((cut, _)) => format!("{}…", &path[..cut]),
        None => path.to_string(),
    };
    // The path only: query strings carry codes and state.
    let span = tracing::info_span!("http", method = %method, path = %path, request_id = %id);
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request).instrument(span))
        .await;
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(X_REQUEST_ID.clone(), value);
    }
    let status = response.status().as_u16();
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    let latency_ms = (latency_ms * 10.0).round() / 10.0;
    if is_probe(&path) {
        tracing::debug!(target: "passerelle::access", %method, %path, status, latency_ms, request_id = %id, "request");
    } else {
        tracing::info!(target: "passerelle::access", %method, %path, status, latency_ms, request_id = %id, "request");
    }
    response
}

/// Route middleware (`route_layer`, so the route is known): the latency histogram per method,
/// matched route pattern and status. The pattern, not the path, keeps the label set bounded
/// whatever paths clients invent; unmatched paths are not measured here (the access log has
/// them).
pub async fn http_metrics(
    route: Option<axum::extract::MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = route.map_or_else(|| "unmatched".to_owned(), |r| r.as_str().to_owned());
    let response = next.run(request).await;
    metrics::histogram!(
        "passerelle_http_request_duration_seconds",
        "method" => method,
        "route" => route,
        "status" => response.status().as_u16().to_string(),
    )
    .record(start.elapsed().as_secs_f64());
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_eight_readable_characters() {
        let ids: std::collections::HashSet<String> = (0..200).map(|_| new_request_id()).collect();
        assert!(ids.len() > 195);
        for id in &ids {
            assert_eq!(id.len(), 8, "{id}");
            assert!(
                id.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
                "{id}"
            );
            assert!(!id.contains(['I', 'L', 'O', 'U']), "{id}");
        }
    }

    #[test]
    fn only_a_plain_short_incoming_id_is_kept() {
        let v = |s: &str| HeaderValue::from_str(s).unwrap();
        assert_eq!(sane(&v("abc-123_X.y")).as_deref(), Some("abc-123_X.y"));
        assert_eq!(sane(&v("")), None);
        assert_eq!(sane(&v(&"a".repeat(65))), None);
        assert_eq!(sane(&v("a b")), None);
        assert_eq!(sane(&v("a\"b")), None);
        assert_eq!(sane(&v("id=1 status=200")), None);
    }
}
