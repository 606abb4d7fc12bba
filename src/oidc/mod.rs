//! The OpenID Connect provider: discovery, JWKS, authorize, token (one file per grant),
//! userinfo, RP-initiated logout and revocation, over the client registry.

mod authorization_code;
mod authorize;
mod clients;
mod discovery;
#[doc(hidden)]
pub mod fuzz;
mod id_token;
mod logout;
mod refresh_token;
mod revoke;
mod token;
mod userinfo;

use axum::routing::{get, post};
use axum::Router;

pub use clients::{Client, ClientAuthError, Clients};
pub use id_token::scoped_claims;

use crate::config::OidcConfig;
use crate::web::AppState;

/// Scopes we understand: the names of [`crate::config::Scope`], the one list.
pub const SUPPORTED_SCOPES: [&str; 5] = crate::config::Scope::NAMES;

/// A client-sent value quoted in an error description: cut short, so an error never echoes an
/// attacker-sized parameter back (into a redirect, a log line or a JSON body).
pub(crate) fn quoted(value: &str) -> String {
    const MAX: usize = 40;
    match value.char_indices().nth(MAX) {
        None => value.to_string(),
        Some((cut, _)) => format!("{}…", &value[..cut]),
    }
}

/// The provider's configuration, built once at start.
pub struct Provider {
    pub clients: Clients,
    pub settings: OidcConfig,
    /// `public_url`: the `iss` of every token and the `iss` authorization response parameter.
    pub issuer: String,
}

impl Provider {
    pub fn new(settings: &OidcConfig, issuer: &str) -> Provider {
        Provider {
            clients: Clients::new(&settings.clients),
            settings: settings.clone(),
            issuer: issuer.to_string(),
        }
    }
}

/// Routes a person's browser visits (they get the session layer and HTML error pages).
pub fn browser_routes() -> Router<AppState> {
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
pub fn api_routes() -> Router<AppState> {
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
