//! The OpenID Connect provider.
//!
//! The core takes typed inputs, ports and the clock, and answers `Result<_, OidcError>`; it is
//! tested without HTTP:
//! - [`request`]: the authorization request's checks ([`check_request`]);
//! - [`clients`]: the registry, exact redirect-URI matching, client authentication;
//! - [`grants`]: one file per grant — [`grants::authorization_code`] (the code issued at the end
//!   of a sign-in and its exchange) and [`grants::refresh_token`] (rotation, reuse, grace);
//! - [`mint`]: the ID token and the access/refresh tokens, over a [`Signer`] port;
//! - [`claims`]: what each scope releases ([`scoped_claims`]), the same for the ID token and
//!   userinfo; [`userinfo`], [`revocation`], RP-initiated [`logout`] checks;
//! - [`stored`]: the identity and claims a code and a grant carry from the sign-in, so no
//!   endpoint maps claims again;
//! - [`OidcError`]: one variant per OAuth error code.
//!
//! [`http`] holds the thin axum handlers: they extract `State<OidcState>`, parse, call the core,
//! and map its answer to OAuth JSON, the authorization response, or a page. The person is
//! signed in (and out) by `login/`; what is released comes from the pipeline, as for SAML.
//!
//! May import `config/`, `web/`, `store/`, `keys/`, `identity/`, `login/` and `pipeline`; never
//! `saml/` nor `app/`.

pub mod claims;
mod clients;
mod error;
#[doc(hidden)]
pub mod fuzz;
pub mod grants;
mod http;
pub mod logout;
pub mod mint;
pub mod request;
pub mod revocation;
mod stored;
pub mod userinfo;

use std::sync::Arc;

pub use claims::scoped_claims;
pub use clients::{authenticate_client, Client, ClientAuthError, ClientCredentials, Clients};
pub use error::OidcError;
pub use http::{api_routes, browser_routes, OAuthError};
pub use mint::{Signer, TokenResponse};
pub use request::{check_request, AuthorizeParams, RequestRefusal, ValidRequest};

use crate::config::OidcConfig;
use crate::keys::Keys;
use crate::login::LoginState;
use crate::pipeline::Pipeline;
use crate::store::Store;
use crate::web::Templates;
use grants::GrantContext;

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
    /// The discovery document, rendered once: it depends on the issuer alone.
    discovery: crate::web::Prepared,
    /// The JWKS, rendered again only when the set of published keys changes.
    jwks: http::JwksCache,
}

impl Provider {
    pub fn new(settings: &OidcConfig, issuer: &str) -> Provider {
        Provider {
            clients: Clients::new(&settings.clients),
            settings: settings.clone(),
            issuer: issuer.to_string(),
            discovery: http::discovery_document(issuer),
            jwks: http::JwksCache::default(),
        }
    }
}

/// What the OIDC handlers share: cheap to clone.
#[derive(Clone)]
pub struct OidcState {
    pub provider: Arc<Provider>,
    /// Codes, grants and tokens (the OAuth port), and the audit log.
    pub store: Store,
    pub keys: Arc<Keys>,
    pub pipeline: Arc<Pipeline>,
    /// Sessions, pending sign-ins, signing out.
    pub login: LoginState,
    pub templates: Arc<Templates>,
}

impl OidcState {
    /// The grants' context for one request from `ip`, at the current time.
    pub fn grants<'a>(&'a self, ip: &'a str) -> GrantContext<'a> {
        GrantContext {
            store: &self.store,
            signer: self.keys.as_ref(),
            provider: &self.provider,
            pipeline: &self.pipeline,
            ip,
            now: crate::store::now(),
        }
    }
}
