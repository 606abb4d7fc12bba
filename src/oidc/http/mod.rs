//! The OIDC provider's HTTP edge: thin handlers that parse the request, call the core and map
//! its answer — OAuth JSON for clients ([`OAuthError`]), the authorization response (redirect
//! or form_post), or a page for the person.

mod authorize;
mod discovery;
pub(crate) use discovery::{discovery_document, JwksCache};
mod logout;
mod revoke;
pub(crate) mod token;
mod userinfo;

use axum::extract::FromRef;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Serialize;

use super::{OidcError, OidcState};
use crate::web::TrustedProxies;

/// Routes a person's browser visits (they get the session layer and HTML error pages).
pub fn browser_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    OidcState: FromRef<S>,
    TrustedProxies: FromRef<S>,
{
    Router::new()
        .route(
            "/oidc/authorize",
            get(authorize::authorize_get).post(authorize::authorize_post),
        )
        .route("/oidc/authorize/resume", get(authorize::resume))
        .route(
            "/oidc/logout",
            get(logout::logout_get).post(logout::logout_post),
        )
}

/// Routes clients call directly (JSON in, JSON out).
pub fn api_routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    OidcState: FromRef<S>,
    TrustedProxies: FromRef<S>,
{
    let cors = tower_http::cors::CorsLayer::new()
        .allow_origin(tower_http::cors::Any)
        .allow_methods([axum::http::Method::GET, axum::http::Method::POST])
        .allow_headers([
            axum::http::header::AUTHORIZATION,
            axum::http::header::CONTENT_TYPE,
        ]);
    Router::new()
        .route(
            "/.well-known/openid-configuration",
            get(discovery::discovery),
        )
        .route("/oidc/jwks", get(discovery::jwks))
        .route("/oidc/token", post(token::token))
        .route(
            "/oidc/userinfo",
            get(userinfo::userinfo_get).post(userinfo::userinfo_post),
        )
        .route("/oidc/revoke", post(revoke::revoke))
        .layer(cors)
}

/// An OAuth 2.0 error response (RFC 6749 §5.2): JSON, never cached.
#[derive(Debug, Clone, Serialize)]
pub struct OAuthError {
    #[serde(skip)]
    pub status: StatusCode,
    pub error: &'static str,
    pub error_description: String,
    /// Send `WWW-Authenticate` (client authentication failed with HTTP Basic, or a bad bearer
    /// token).
    #[serde(skip)]
    pub www_authenticate: Option<&'static str>,
}

impl From<OidcError> for OAuthError {
    fn from(err: OidcError) -> Self {
        if err.is_internal() {
            tracing::error!(error = %err, "OIDC request failed on our side");
        }
        let (status, www_authenticate) = match &err {
            OidcError::InvalidClient { basic } => (
                StatusCode::UNAUTHORIZED,
                basic.then_some("Basic realm=\"passerelle\""),
            ),
            OidcError::InvalidToken(_) => (
                StatusCode::UNAUTHORIZED,
                Some("Bearer error=\"invalid_token\""),
            ),
            OidcError::TokenRequired => (StatusCode::UNAUTHORIZED, Some("Bearer")),
            OidcError::AccessDenied(_) => (StatusCode::FORBIDDEN, None),
            OidcError::Internal { .. } | OidcError::Storage(_) => {
                (StatusCode::SERVICE_UNAVAILABLE, None)
            }
            OidcError::InvalidRequest(_)
            | OidcError::InvalidGrant(_)
            | OidcError::InvalidScope(_)
            | OidcError::UnsupportedGrantType(_) => (StatusCode::BAD_REQUEST, None),
        };
        OAuthError {
            status,
            error: err.code(),
            error_description: err.description(),
            www_authenticate,
        }
    }
}

impl IntoResponse for OAuthError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(&self)).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        if let Some(challenge) = self.www_authenticate {
            headers.insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(challenge),
            );
        }
        response
    }
}

impl IntoResponse for OidcError {
    fn into_response(self) -> Response {
        OAuthError::from(self).into_response()
    }
}

/// Token and userinfo answers are never cached (RFC 6749 §5.1).
fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_the_statuses_clients_expect() {
        let cases = [
            (OidcError::invalid_request("x"), 400, None),
            (OidcError::InvalidClient { basic: false }, 401, None),
            (
                OidcError::InvalidClient { basic: true },
                401,
                Some("Basic realm=\"passerelle\""),
            ),
            (OidcError::invalid_grant("x"), 400, None),
            (OidcError::InvalidScope("x".into()), 400, None),
            (OidcError::UnsupportedGrantType("x".into()), 400, None),
            (OidcError::AccessDenied("x".into()), 403, None),
            (
                OidcError::InvalidToken("x".into()),
                401,
                Some("Bearer error=\"invalid_token\""),
            ),
            (OidcError::TokenRequired, 401, Some("Bearer")),
            (OidcError::internal("x", "y"), 503, None),
        ];
        for (err, status, challenge) in cases {
            let code = err.code();
            let e = OAuthError::from(err);
            assert_eq!(e.status.as_u16(), status, "{code}");
            assert_eq!(e.www_authenticate, challenge, "{code}");
            assert_eq!(e.error, code);
        }
    }
}
