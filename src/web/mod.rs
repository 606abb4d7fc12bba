//! The bottom kit for HTTP: error pages and their middleware, templates and their languages,
//! request ids and the access log, CSRF, the client IP
//! behind trusted proxies and `[login] allowed_networks`, security headers (CSP nonce, HSTS),
//! health and metrics handlers, admin bearer-token authentication, prepared responses, random
//! ids, and built-in TLS (the certificate, its reload, the accept loop). It imports no room but `config/`; the router that uses it is assembled in `app/`.

mod admin_auth;
mod cause;
mod csrf;
mod errors;
mod headers;
pub mod health;
pub mod i18n;
mod ip;
mod networks;
mod prepared;
mod requests;
mod templates;
pub mod tls;

use base64::Engine;

pub use admin_auth::{Admin, AdminError, AdminToken};
pub use cause::cause_chain;
pub use csrf::{csrf_token, verify_csrf};
pub use errors::{error_page, not_found, render_error_pages, wants_json, PageError};
pub use headers::{current_nonce, ContentSecurityPolicyLayer, StaticHeadersLayer, HSTS};
pub use i18n::{current_lang, Lang, LanguageLayer, Message};
pub use ip::{client_ip, network_key, ClientAddr, ClientIp, TrustedProxies};
pub use networks::{require_allowed_network, sign_in_allowed, NetworkPolicy};
pub use prepared::Prepared;
pub use requests::{
    current_request_id, new_request_id, HttpMetricsLayer, RequestContextLayer, X_REQUEST_ID,
};
pub use templates::Templates;
pub use tls::{TlsCertificates, TlsError};

/// Random bytes for values drawn on every request and shown in its answer (request ids, CSP
/// nonces), from the OS-seeded generator a few kilobytes at a time per thread: one
/// `rand_bytes` call per request cost more than the rest of the request id, and about a
/// fifteenth of a prepared document's answer. Each byte is handed out once. `None` if the generator fails.
/// Secrets (codes, tokens) come from [`random_token`], one call each.
pub(crate) fn pooled_random<const N: usize>() -> Option<[u8; N]> {
    const BATCH: usize = 4096;
    thread_local! {
        static POOL: std::cell::RefCell<(usize, [u8; BATCH])> =
            const { std::cell::RefCell::new((BATCH, [0; BATCH])) };
    }
    POOL.with_borrow_mut(|(used, pool)| {
        if *used + N > BATCH {
            openssl::rand::rand_bytes(pool).ok()?;
            *used = 0;
        }
        let mut out = [0u8; N];
        out.copy_from_slice(&pool[*used..*used + N]);
        // Handed out once: what is left in the pool is the future only.
        pool[*used..*used + N].fill(0);
        *used += N;
        Some(out)
    })
}

/// `n` random bytes, base64url without padding: codes, tokens, ids.
pub fn random_token(n: usize) -> String {
    // Codes, tokens and nonces are at most 64 bytes: no heap buffer for the random bytes.
    let mut stack = [0u8; 64];
    let mut heap = Vec::new();
    let buf = if n <= stack.len() {
        &mut stack[..n]
    } else {
        heap.resize(n, 0);
        &mut heap[..]
    };
    // rand_bytes only fails if the OS RNG is broken; there is no safe way to continue then.
    openssl::rand::rand_bytes(buf).expect("OS random number generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}
