//! `/.well-known/openid-configuration` and the JWKS.

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use crate::oidc::{OidcState, SUPPORTED_SCOPES};

pub async fn discovery(State(state): State<OidcState>) -> Response {
    // The issuer is `public_url` without a trailing slash: every endpoint hangs off it.
    let issuer = &state.provider.issuer;
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
    cacheable(Json(body).into_response())
}

pub async fn jwks(State(state): State<OidcState>) -> Response {
    cacheable(Json(state.keys.jwks()).into_response())
}

/// Short caching: a staged key is published for `keys.rotation_delay` before it signs, far
/// longer than this.
fn cacheable(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    r
}
