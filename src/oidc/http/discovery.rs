//! `/.well-known/openid-configuration` and the JWKS, served as prepared bytes with a strong
//! ETag (304 on `If-None-Match`): discovery is rendered once per issuer, the JWKS once per set
//! of published keys.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use axum::extract::{Request, State};
use axum::response::Response;
use serde_json::json;

use crate::keys::Keys;
use crate::oidc::{OidcState, SUPPORTED_SCOPES};
use crate::web::Prepared;

/// Short caching: a staged key is published for `keys.rotation_delay` before it signs, far
/// longer than this.
const CACHE_CONTROL: &str = "public, max-age=300";

// The request itself, not a `HeaderMap` (a copy of every header): only `If-None-Match` is read.
pub async fn discovery(State(state): State<OidcState>, request: Request) -> Response {
    state.provider.discovery.respond(request.headers())
}

pub async fn jwks(State(state): State<OidcState>, request: Request) -> Response {
    state
        .provider
        .jwks
        .current(&state.keys)
        .1
        .respond(request.headers())
}

/// The discovery document of `issuer` (`public_url` without a trailing slash: every endpoint
/// hangs off it).
pub fn discovery_document(issuer: &str) -> Prepared {
    let url = |p: &str| format!("{issuer}{p}");
    let body = json!({
        "issuer": issuer,
        "authorization_endpoint": url("/oidc/authorize"),
        "token_endpoint": url("/oidc/token"),
        "userinfo_endpoint": url("/oidc/userinfo"),
        "jwks_uri": url("/oidc/jwks"),
        "end_session_endpoint": url("/oidc/logout"),
        "revocation_endpoint": url("/oidc/revoke"),
        "scopes_supported": SUPPORTED_SCOPES,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query", "form_post"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "revocation_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post", "none"],
        "code_challenge_methods_supported": ["S256"],
        "claims_supported": [
            "iss", "sub", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "amr", "sid", "azp",
            "email", "email_verified", "name", "given_name", "family_name", "preferred_username",
            "employee_number", "department", "manager_email", "job_title", "groups"
        ],
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login", "consent", "select_account"],
        "request_parameter_supported": false,
        "request_uri_parameter_supported": false,
        "claims_parameter_supported": false,
        "frontchannel_logout_supported": false,
        "backchannel_logout_supported": false,
        "authorization_response_iss_parameter_supported": true,
    });
    Prepared::json(&body, CACHE_CONTROL)
}

/// The JWKS as last rendered, with the kids it was rendered for. The published set changes with
/// time (a staged key appears, a retired one leaves) and with a rotation or a reload of the
/// ring, so each request compares the kids published now — a few `Arc` clones, no OpenSSL —
/// and renders again only when they differ.
#[derive(Default)]
pub struct JwksCache {
    rendered: ArcSwapOption<(Vec<String>, Prepared)>,
}

impl JwksCache {
    pub fn current(&self, keys: &Keys) -> Arc<(Vec<String>, Prepared)> {
        let published = keys.published();
        if let Some(rendered) = self.rendered.load_full() {
            let (kids, _) = &*rendered;
            if kids.len() == published.len()
                && kids.iter().zip(&published).all(|(a, b)| *a == b.kid)
            {
                return rendered;
            }
        }
        let kids = published.iter().map(|k| k.kid.clone()).collect();
        // Two requests may render at once after a change; both produce the same bytes.
        let fresh = Arc::new((kids, Prepared::json(&keys.jwks(), CACHE_CONTROL)));
        self.rendered.store(Some(Arc::clone(&fresh)));
        fresh
    }
}
