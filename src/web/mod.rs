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
