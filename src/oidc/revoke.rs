//! `POST /oidc/revoke` (RFC 7009). Revoking a refresh token revokes its whole grant; an access
//! token is revoked alone. Unknown tokens, and tokens of other clients, are answered 200 and
//! left alone, so the endpoint tells nobody which tokens exist.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use serde::Deserialize;

use super::token::{audit, authenticate_client};
use crate::store::token_hash;
use crate::web::{AppState, ClientIp, OAuthError};

#[derive(Deserialize, Default)]
pub struct RevokeForm {
    token: Option<String>,
    token_type_hint: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
}

pub async fn revoke(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    form: Result<Form<RevokeForm>, FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return OAuthError::invalid_request("the body must be application/x-www-form-urlencoded")
            .into_response();
    };
    let authorization = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let client = match authenticate_client(
        &state,
        authorization,
        form.client_id.as_deref(),
        form.client_secret.as_deref(),
    ) {
        Ok(c) => c,
        Err(e) => return e.into_response(),
    };
    let Some(token) = form.token.filter(|t| !t.is_empty()) else {
        return OAuthError::invalid_request("token is required").into_response();
    };
    let hash = token_hash(&token);
    let hint = form.token_type_hint.as_deref();
    let result: Result<(), crate::store::StoreError> = async {
        let refresh_first = hint != Some("access_token");
        for kind in if refresh_first {
            ["refresh", "access"]
        } else {
            ["access", "refresh"]
        } {
            if kind == "refresh" {
                if let Some(found) = state.store.oauth().lookup_refresh(&hash).await? {
                    if found.grant.client_id == client.id {
                        state
                            .store
                            .oauth()
                            .revoke_grant(&found.grant.id, "revoked by the client")
                            .await?;
                        audit(
                            &state,
                            "token.revoke",
                            "refresh_token",
                            Some(&found.grant.subject),
                            &client.id,
                            &ip,
                            None,
                        )
                        .await;
                    }
                    return Ok(());
                }
            } else if let Some(crate::store::TokenOwner {
                client_id: owner, ..
            }) = state.store.oauth().access_token_owner(&hash).await?
            {
                if owner == client.id {
                    state.store.oauth().revoke_access_token(&hash).await?;
                    audit(
                        &state,
                        "token.revoke",
                        "access_token",
                        None,
                        &client.id,
                        &ip,
                        None,
                    )
                    .await;
                }
                return Ok(());
            }
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut().insert(
                header::CACHE_CONTROL,
                axum::http::HeaderValue::from_static("no-store"),
            );
            r
        }
        Err(e) => OAuthError::from(e).into_response(),
    }
}
