//! Per request: a short reference id (taken from a trusted proxy's `X-Request-Id`, else made
//! here) that error pages show, every log line of the request carries and the `X-Request-Id`
//! response header repeats; and the access log, one line per request at `info`.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::{ConnectInfo, MatchedPath, Request};
use axum::http::{HeaderName, HeaderValue, Method, Uri};
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};
use tracing::instrument::Instrumented;
use tracing::Instrument;

use super::ip::{canonical, trusted, TrustedProxies};

pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

tokio::task_local! {
    static REQUEST_ID: RequestId;
}

/// The reference of the request being answered, if any.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(|id| id.as_str().to_owned()).ok()
}

/// A request id held inline (copied, never allocated): made here, or a proxy's that passed
/// [`sane`], so at most [`MAX_ID`] bytes of `[A-Za-z0-9._-]`.
#[derive(Clone, Copy)]
struct RequestId {
    len: u8,
    bytes: [u8; MAX_ID],
}

const MAX_ID: usize = 64;

impl RequestId {
    fn as_str(&self) -> &str {
        // Only ASCII is ever stored (`new_request_id`, `sane`).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or("")
    }
}

impl std::fmt::Display for RequestId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Crockford's base32: digits and letters a person reads out without confusion (no I, L, O, U).
const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// 8 characters, 40 random bits: unique enough to find a request in a day of logs.
pub fn new_request_id() -> String {
    fresh_id().as_str().to_owned()
}

fn fresh_id() -> RequestId {
    let mut id = RequestId {
        len: 8,
        bytes: [0; MAX_ID],
    };
    let Some(bits) = random_40_bits() else {
        // An id is not a secret: say the RNG is broken instead of failing the request.
        id.bytes[..8].copy_from_slice(b"NORANDOM");
        return id;
    };
    for (i, b) in id.bytes[..8].iter_mut().enumerate() {
        *b = ALPHABET[((bits >> (35 - 5 * i)) & 31) as usize];
    }
    id
}

/// 40 bits from the per-thread pool of random bytes.
fn random_40_bits() -> Option<u64> {
    let bytes = super::pooled_random::<5>()?;
    Some(bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
}

/// An incoming id worth keeping: short, and only characters that cannot forge a log line.
fn sane(value: &HeaderValue) -> Option<RequestId> {
    let s = value.as_bytes();
    let ok = (1..=MAX_ID).contains(&s.len())
        && s.iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    ok.then(|| {
        let mut id = RequestId {
            len: s.len() as u8,
            bytes: [0; MAX_ID],
        };
        id.bytes[..s.len()].copy_from_slice(s);
        id
    })
}

/// Probes are polled every few seconds: their lines go to `debug` so the access log stays
/// about people and clients.
fn is_probe(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz")
}

/// Paths are logged up to this many characters (a 1 MB path is somebody's mistake or attack).
const MAX_LOGGED_PATH: usize = 200;

/// A path as logged: cut at [`MAX_LOGGED_PATH`] characters. Formatted only if a line or a span
/// is actually written.
struct LoggedPath<'a>(&'a str);

impl std::fmt::Display for LoggedPath<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.0.char_indices().nth(MAX_LOGGED_PATH) {
            Some((cut, _)) => write!(f, "{}…", &self.0[..cut]),
            None => f.write_str(self.0),
        }
    }
}

/// Layer: the request id, a `http` span carrying it around the request, the `X-Request-Id`
/// response header, and the access log line. A tower layer rather than a `from_fn`
/// middleware: it runs on every request, and boxes nothing.
#[derive(Clone)]
pub struct RequestContextLayer {
    proxies: TrustedProxies,
}

impl RequestContextLayer {
    pub fn new(proxies: TrustedProxies) -> RequestContextLayer {
        RequestContextLayer { proxies }
    }
}

impl<S> Layer<S> for RequestContextLayer {
    type Service = RequestContext<S>;
    fn layer(&self, inner: S) -> RequestContext<S> {
        RequestContext {
            inner,
            proxies: self.proxies.clone(),
        }
    }
}

#[derive(Clone)]
pub struct RequestContext<S> {
    inner: S,
    proxies: TrustedProxies,
}

impl<S> Service<Request> for RequestContext<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestContextFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let start = Instant::now();
        let from_proxy = request
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_some_and(|ci| trusted(canonical(ci.0.ip()), &self.proxies.0));
        let id = from_proxy
            .then(|| request.headers().get(&X_REQUEST_ID).and_then(sane))
            .flatten()
            .unwrap_or_else(fresh_id);
        let method = request.method().clone();
        // The path only: query strings carry codes and state. (A `Uri` clone shares its bytes.)
        let uri = request.uri().clone();
        let span = tracing::info_span!("http", method = %method, path = %LoggedPath(uri.path()), request_id = %id);
        let inner = span.in_scope(|| self.inner.call(request));
        RequestContextFuture {
            inner: REQUEST_ID.scope(id, inner).instrument(span),
            id,
            start,
            method,
            uri,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct RequestContextFuture<F> {
        #[pin]
        inner: Instrumented<TaskLocalFuture<RequestId, F>>,
        id: RequestId,
        start: Instant,
        method: Method,
        uri: Uri,
    }
}

impl<F, E> Future for RequestContextFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let id = *this.id;
        if let Ok(value) = HeaderValue::from_str(id.as_str()) {
            response.headers_mut().insert(X_REQUEST_ID.clone(), value);
        }
        let status = response.status().as_u16();
        let latency_ms = this.start.elapsed().as_secs_f64() * 1000.0;
        let latency_ms = (latency_ms * 10.0).round() / 10.0;
        let method = &*this.method;
        let path = LoggedPath(this.uri.path());
        if is_probe(this.uri.path()) {
            tracing::debug!(target: "passerelle::access", %method, %path, status, latency_ms, request_id = %id, "request");
        } else {
            tracing::info!(target: "passerelle::access", %method, %path, status, latency_ms, request_id = %id, "request");
        }
        Poll::Ready(Ok(response))
    }
}

const LATENCY: &str = "passerelle_http_request_duration_seconds";

/// Route layer (`route_layer`, so the route is known): the latency histogram per method,
/// matched route pattern and status. The pattern, not the path, keeps the label set bounded
/// whatever paths clients invent; unmatched paths are not measured here (the access log has
/// them).
///
/// The histogram of each (route, method, status) is looked up in the recorder once, then kept
/// here: no label is formatted or hashed again. Axum calls [`Layer::layer`] for each route and
/// method, so each cache sees one route's few statuses.
#[derive(Clone, Default)]
pub struct HttpMetricsLayer;

impl<S> Layer<S> for HttpMetricsLayer {
    type Service = HttpMetrics<S>;
    fn layer(&self, inner: S) -> HttpMetrics<S> {
        HttpMetrics {
            inner,
            cache: Arc::default(),
        }
    }
}

#[derive(Clone)]
pub struct HttpMetrics<S> {
    inner: S,
    cache: Arc<HistogramCache>,
}

/// The histograms one route's requests were recorded in. Bounded: past [`MAX_CACHED`]
/// label sets (a layer shared by many routes), the recorder is asked every time.
#[derive(Default)]
struct HistogramCache(RwLock<Vec<Cached>>);

struct Cached {
    route: MatchedPath,
    method: Method,
    status: u16,
    histogram: metrics::Histogram,
}

const MAX_CACHED: usize = 64;

impl HistogramCache {
    fn histogram(&self, route: &MatchedPath, method: &Method, status: u16) -> metrics::Histogram {
        let find = |entries: &[Cached]| {
            entries
                .iter()
                .find(|c| {
                    c.status == status && c.method == method && c.route.as_str() == route.as_str()
                })
                .map(|c| c.histogram.clone())
        };
        // A poisoned lock only means another request panicked while holding it: the entries
        // are still whole (each is pushed complete).
        let entries = self.0.read().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = find(&entries) {
            return h;
        }
        drop(entries);
        let histogram = metrics::histogram!(
            LATENCY,
            "method" => method.as_str().to_owned(),
            "route" => route.as_str().to_owned(),
            "status" => status.to_string(),
        );
        let mut entries = self.0.write().unwrap_or_else(|e| e.into_inner());
        if entries.len() < MAX_CACHED && find(&entries).is_none() {
            entries.push(Cached {
                route: route.clone(),
                method: method.clone(),
                status,
                histogram: histogram.clone(),
            });
        }
        histogram
    }
}

impl<S> Service<Request> for HttpMetrics<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = HttpMetricsFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let start = Instant::now();
        let method = request.method().clone();
        let route = request.extensions().get::<MatchedPath>().cloned();
        HttpMetricsFuture {
            inner: self.inner.call(request),
            start,
            method,
            route,
            cache: self.cache.clone(),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct HttpMetricsFuture<F> {
        #[pin]
        inner: F,
        start: Instant,
        method: Method,
        route: Option<MatchedPath>,
        cache: Arc<HistogramCache>,
    }
}

impl<F, E> Future for HttpMetricsFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.inner.poll(cx))?;
        let status = response.status().as_u16();
        let histogram = match this.route {
            Some(route) => this.cache.histogram(route, this.method, status),
            None => metrics::histogram!(
                LATENCY,
                "method" => this.method.as_str().to_owned(),
                "route" => "unmatched",
                "status" => status.to_string(),
            ),
        };
        histogram.record(this.start.elapsed().as_secs_f64());
        Poll::Ready(Ok(response))
    }
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
        let kept = |s: &str| sane(&v(s)).map(|id| id.as_str().to_owned());
        assert_eq!(kept("abc-123_X.y").as_deref(), Some("abc-123_X.y"));
        assert_eq!(kept(&"a".repeat(64)), Some("a".repeat(64)));
        assert_eq!(kept(""), None);
        assert_eq!(kept(&"a".repeat(65)), None);
        assert_eq!(kept("a b"), None);
        assert_eq!(kept("a\"b"), None);
        assert_eq!(kept("id=1 status=200"), None);
    }
}
