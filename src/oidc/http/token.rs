//! `POST /oidc/token`: parse the form, authenticate the client, check its network, and hand
//! the request to its grant.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;

use crate::oidc::grants::authorization_code::{self, CodeExchange};
use crate::oidc::grants::refresh_token::{self, RefreshRequest};
use crate::oidc::{authenticate_client, quoted, Client, OidcError, OidcState};
use crate::web::{sign_in_allowed, ClientAddr};

/// The token request's form, as received.
#[derive(Debug, Default, Deserialize)]
pub struct TokenForm {
    pub grant_type: Option<String>,
    pub code: Option<String>,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
    pub refresh_token: Option<String>,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
}

pub async fn token(
    State(state): State<OidcState>,
    addr: ClientAddr,
    headers: HeaderMap,
    form: Result<Form<TokenForm>, FormRejection>,
) -> Response {
    let ip = addr.to_string();
    let Ok(Form(form)) = form else {
        return OidcError::invalid_request("the body must be application/x-www-form-urlencoded")
            .into_response();
    };
    let client = match authenticate_client(
        &state.provider.clients,
        authorization(&headers),
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    if let Err(e) = network_allowed(&state, client, addr) {
        return e.into_response();
    }
    let cx = state.grants(&ip);
    let result = match form.grant_type.as_deref() {
        Some("authorization_code") => {
            let request = CodeExchange {
                code: form.code.as_deref(),
                redirect_uri: form.redirect_uri.as_deref(),
                code_verifier: form.code_verifier.as_deref(),
            };
            authorization_code::exchange(&cx, client, request).await
        }
        Some("refresh_token") => {
            let request = RefreshRequest {
                refresh_token: form.refresh_token.as_deref(),
                scope: form.scope.as_deref(),
            };
            refresh_token::refresh(&cx, client, request).await
        }
        None | Some("") => Err(OidcError::invalid_request("grant_type is required")),
        Some(other) => Err(OidcError::UnsupportedGrantType(format!(
            "grant_type `{}` is not supported",
            quoted(other)
        ))),
    };
    match result {
        Ok(body) => {
            let mut r = super::no_store(Json(body).into_response());
            r.headers_mut()
                .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            r
        }
        Err(e) => e.into_response(),
    }
}

pub(super) fn authorization(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

/// `[login] allowed_networks` at the token endpoint: the client (a mobile app on the person's
/// phone, say) must call from an allowed network unless it is exempt by configuration.
fn network_allowed(state: &OidcState, client: &Client, addr: ClientAddr) -> Result<(), OidcError> {
    let allowed = state.login.settings.allowed_networks.as_deref();
    if client.token_from_any_network || sign_in_allowed(allowed, addr) {
        return Ok(());
    }
    tracing::info!(client_id = %client.id, client = %addr, "token request refused: client outside login.allowed_networks");
    Err(OidcError::AccessDenied(format!(
        "token requests are only accepted from the networks in login.allowed_networks; {addr} is not in them"
    )))
}
