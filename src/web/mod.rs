//! The bottom kit for HTTP: error pages and their middleware, templates, CSRF, the client IP
//! behind trusted proxies and `[login] allowed_networks`, security headers (CSP nonce, HSTS),
//! health and metrics handlers, admin bearer-token authentication, prepared responses, random
//! ids. It imports no room but `config/`; the router that uses it is assembled in `app/`.

mod admin_auth;
mod csrf;
mod errors;
mod headers;
pub mod health;
mod ip;
mod networks;
mod prepared;
mod templates;

use base64::Engine;

pub use admin_auth::{Admin, AdminError, AdminToken};
pub use csrf::{csrf_token, verify_csrf};
pub use errors::{render_error_pages, PageError};
pub use headers::{content_security_policy, current_nonce, HSTS};
pub use ip::{client_ip, network_key, ClientAddr, ClientIp, TrustedProxies};
pub use networks::{require_allowed_network, sign_in_allowed, NetworkPolicy};
pub use prepared::Prepared;
pub use templates::Templates;

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
