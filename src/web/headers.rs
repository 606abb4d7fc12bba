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
    let mut text = String::with_capacity(POLICY_LEN + 2 * nonce.len());
    for (i, part) in POLICY.iter().enumerate() {
        if i > 0 {
            text.push_str(nonce);
        }
        text.push_str(part);
    }
    text
}

/// The policy around its two nonces.
const POLICY: [&str; 3] = [
    "default-src 'none'; script-src 'nonce-",
    "'; style-src 'nonce-",
    "'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
];
const POLICY_LEN: usize = POLICY[0].len() + POLICY[1].len() + POLICY[2].len();

/// Middleware: a nonce for this request, the matching CSP on its response. Every response
/// gets one, JSON included, so that no HTML answer can go out without a policy; this runs on
/// every request, so it allocates only the nonce and the header.
pub async fn content_security_policy(request: Request, next: Next) -> Response {
    let nonce = super::random_token(18);
    // The header is built (and checked) before the handler runs, so the nonce moves into the
    // task-local without a copy.
    let value = HeaderValue::try_from(policy(&nonce));
    let mut response = NONCE.scope(nonce, next.run(request)).await;
    if let Ok(value) = value {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, value);
    }
    response
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
}
