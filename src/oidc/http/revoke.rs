//! `POST /oidc/revoke` (RFC 7009): authenticate the client, revoke, answer 200 whatever the
//! token was.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use crate::oidc::{authenticate_client, revocation, OidcError, OidcState};
use crate::web::ClientIp;

#[derive(Deserialize, Default)]
pub struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub async fn revoke(
    State(state): State<OidcState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return OidcError::invalid_request("the body must be application/x-www-form-urlencoded")
            .into_response();
    };
    let client = match authenticate_client(
        &state.provider.clients,
        super::token::authorization(&headers),
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let cx = state.grants(&ip);
    match revocation::revoke(
        &cx,
        client,
        form.token.as_deref(),
        form.token_type_hint.as_deref(),
    )
    .await
    {
        Ok(()) => super::no_store(StatusCode::OK.into_response()),
        Err(e) => e.into_response(),
    }
}
