//! The admin API's bearer-token check (`/admin/*`, `/metrics` on the main listener): an
//! extractor any room's admin handlers use, reading the expected digest through `FromRef`.

use axum::extract::{FromRef, FromRequestParts};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An admin API error: `{"error": "…"}`.
pub struct AdminError(pub StatusCode, pub String);

impl IntoResponse for AdminError {
    fn into_response(self) -> Response {
        let mut r = (self.0, Json(json!({"error": self.1}))).into_response();
        if self.0 == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        r
    }
}

/// Proof that the request carried the admin bearer token.
pub struct Admin;

/// The SHA-256 the admin bearer token must hash to ([`crate::config::AdminConfig::token_digest`]);
/// `None` disables the admin API. Read by [`Admin`] through `FromRef`.
#[derive(Clone)]
pub struct AdminToken(pub Option<[u8; 32]>);

impl<S> FromRequestParts<S> for Admin
where
    S: Send + Sync,
    AdminToken: FromRef<S>,
{
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Some(expected) = AdminToken::from_ref(state).0 else {
            return Err(AdminError(
                StatusCode::FORBIDDEN,
                "the admin API is disabled: set [admin] token (or PASSERELLE_ADMIN_TOKEN)".into(),
            ));
        };
        let presented = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let Some(presented) = presented else {
            return Err(AdminError(
                StatusCode::UNAUTHORIZED,
                "missing bearer token (Authorization: Bearer <admin token>)".into(),
            ));
        };
        // Compare hashes: constant time, and equal lengths whatever was presented.
        if openssl::memcmp::eq(&openssl::sha::sha256(presented.as_bytes()), &expected) {
            Ok(Admin)
        } else {
            Err(AdminError(
                StatusCode::UNAUTHORIZED,
                "invalid admin token".into(),
            ))
        }
    }
}
