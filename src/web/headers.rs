//! Security headers: a Content-Security-Policy with a fresh nonce per response (no
//! `unsafe-inline` for scripts or styles), and HSTS when `public_url` is https.
//!
//! The nonce lives in a task-local for the duration of the request, so every template rendered
//! while answering it gets `csp_nonce` without each handler passing it along.

use axum::extract::Request;
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

tokio::task_local! {
    static NONCE: String;
}

/// The nonce of the response being built, if any (templates put it on `<script>`/`<style>`).
pub fn current_nonce() -> Option<String> {
    NONCE.try_with(|n| n.clone()).ok()
}

pub const HSTS: &str = "max-age=31536000; includeSubDomains";

/// The policy for one response. `connect-src 'self'`: the console's progress stream
/// (server-sent events) comes from the same origin. `form-action` stays open: the sign-in page posts to itself,
/// but the OIDC form_post and SAML auto-POST pages post to the client's registered URL.
pub fn policy(nonce: &str) -> String {
    format!(
        "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    )
}

/// Middleware: a nonce for this request, the matching CSP on its response.
pub async fn content_security_policy(request: Request, next: Next) -> Response {
    let nonce = super::random_token(18);
    let mut response = NONCE.scope(nonce.clone(), next.run(request)).await;
    if let Ok(value) = HeaderValue::from_str(&policy(&nonce)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
}
