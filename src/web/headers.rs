//! Security headers: a Content-Security-Policy with a fresh nonce per response (no
//! `unsafe-inline` for scripts or styles), and HSTS when `public_url` is https.
//!
//! The nonce lives in a task-local for the duration of the request, so every template rendered
//! while answering it gets `csp_nonce` without each handler passing it along. It is drawn when
//! the first template asks for it, or when the answer is complete if none did: every answer
//! carries a fresh one, and the nonce never outlives its response.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use axum::extract::Request;
use axum::http::{header, HeaderName, HeaderValue};
use axum::response::Response;
use tokio::task::futures::TaskLocalFuture;
use tower::{Layer, Service};

tokio::task_local! {
    /// Drawn on first use, or when the response is complete.
    static NONCE: OnceCell<String>;
}

/// The nonce of the response being built, if any (templates put it on `<script>`/`<style>`).
pub fn current_nonce() -> Option<String> {
    NONCE.try_with(|n| n.get_or_init(fresh_nonce).clone()).ok()
}

/// 144 random bits, base64url: a nonce is public once sent and needs only to be unguessable
/// before, so it comes from the per-thread pool (a generator that fails gives a one-call
/// draw, which panics as [`super::random_token`] does).
fn fresh_nonce() -> String {
    use base64::Engine as _;
    match super::pooled_random::<18>() {
        Some(bytes) => base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        None => super::random_token(18),
    }
}

pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The policy for one response, whose scripts and styles may come from its nonce only
/// (`'nonce-…'`). `connect-src 'self'`: the console's progress stream (server-sent events)
/// comes from the same origin.
/// `form-action` stays open: the sign-in page posts to itself, but the OIDC form_post and SAML
/// auto-POST pages post to the client's registered URL.
pub fn policy(nonce: &str) -> String {
    let source = format!("'nonce-{nonce}'");
    let mut text = String::with_capacity(POLICY_LEN + 2 * source.len());
    for (i, part) in POLICY.iter().enumerate() {
        if i > 0 {
            text.push_str(&source);
        }
        text.push_str(part);
    }
    text
}

/// The policy around its two script and style sources.
const POLICY: [&str; 3] = [
    "default-src 'none'; script-src ",
    "; style-src ",
    "; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
];
const POLICY_LEN: usize = POLICY[0].len() + POLICY[1].len() + POLICY[2].len();

/// Layer: a Content-Security-Policy on every response, JSON included, so that no HTML answer
/// can go out without a policy. The nonce is drawn when the first template asks for it
/// ([`current_nonce`]), or here for a response that rendered none.
#[derive(Clone, Copy, Default)]
pub struct ContentSecurityPolicyLayer;

impl<S> Layer<S> for ContentSecurityPolicyLayer {
    type Service = ContentSecurityPolicy<S>;
    fn layer(&self, inner: S) -> ContentSecurityPolicy<S> {
        ContentSecurityPolicy { inner }
    }
}

#[derive(Clone)]
pub struct ContentSecurityPolicy<S> {
    inner: S,
}

impl<S> Service<Request> for ContentSecurityPolicy<S>
where
    S: Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = PolicyFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        PolicyFuture {
            inner: NONCE.scope(OnceCell::new(), self.inner.call(request)),
        }
    }
}

pin_project_lite::pin_project! {
    pub struct PolicyFuture<F> {
        #[pin]
        inner: TaskLocalFuture<OnceCell<String>, F>,
    }
}

impl<F, E> Future for PolicyFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut inner = self.project().inner;
        let mut response = ready!(inner.as_mut().poll(cx))?;
        let nonce = inner
            .take_value()
            .and_then(|cell| cell.into_inner())
            .unwrap_or_else(fresh_nonce);
        if let Ok(value) = HeaderValue::try_from(policy(&nonce)) {
            response
                .headers_mut()
                .insert(header::CONTENT_SECURITY_POLICY, value);
        }
        Poll::Ready(Ok(response))
    }
}

/// Layer: headers whose value never changes, set on every response (replacing a handler's),
/// in one pass.
#[derive(Clone, Copy)]
pub struct StaticHeadersLayer {
    headers: &'static [(HeaderName, HeaderValue)],
}

impl StaticHeadersLayer {
    pub const fn new(headers: &'static [(HeaderName, HeaderValue)]) -> StaticHeadersLayer {
        StaticHeadersLayer { headers }
    }
}

impl<S> Layer<S> for StaticHeadersLayer {
    type Service = StaticHeaders<S>;
    fn layer(&self, inner: S) -> StaticHeaders<S> {
        StaticHeaders {
            inner,
            headers: self.headers,
        }
    }
}

#[derive(Clone)]
pub struct StaticHeaders<S> {
    inner: S,
    headers: &'static [(HeaderName, HeaderValue)],
}

// Generic over the bodies: it may sit inside a layer that wraps them (the body limit).
impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for StaticHeaders<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = StaticHeadersFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        StaticHeadersFuture {
            inner: self.inner.call(request),
            headers: self.headers,
        }
    }
}

pin_project_lite::pin_project! {
    pub struct StaticHeadersFuture<F> {
        #[pin]
        inner: F,
        headers: &'static [(HeaderName, HeaderValue)],
    }
}

impl<F, B, E> Future for StaticHeadersFuture<F>
where
    F: Future<Output = Result<http::Response<B>, E>>,
{
    type Output = Result<http::Response<B>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let mut response = ready!(this.inner.poll(cx))?;
        let headers = response.headers_mut();
        for (name, value) in *this.headers {
            headers.insert(name.clone(), value.clone());
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_policy_allows_only_its_nonce_for_scripts_and_styles() {
        assert_eq!(
            super::policy("abc"),
            "default-src 'none'; script-src 'nonce-abc'; style-src 'nonce-abc'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
        );
    }

    /// Drawn from the per-thread pool across several refills: 144 bits each, never twice.
    #[test]
    fn nonces_are_fresh_across_refills_of_the_pool() {
        let nonces: std::collections::HashSet<String> =
            (0..2000).map(|_| super::fresh_nonce()).collect();
        assert_eq!(nonces.len(), 2000);
        assert!(nonces.iter().all(|n| n.len() == 24), "18 bytes, base64url");
        assert!(!nonces.contains("AAAAAAAAAAAAAAAAAAAAAAAA"));
    }
}
