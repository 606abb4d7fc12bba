//! `GET`/`POST /oidc/userinfo`: the same claims as the ID token, for a live access token.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::Value;

use crate::identity::Identity;
use crate::store::token_hash;
use crate::web::{AppState, OAuthError};

#[derive(Deserialize, Default)]
pub struct UserinfoForm {
    access_token: Option<String>,
}

pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    respond(&state, bearer(&headers)).await
}

/// RFC 6750 §2.2 also allows the token in a form body.
pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    form: Result<Form<UserinfoForm>, FormRejection>,
) -> Response {
    let body_token = form.ok().and_then(|Form(f)| f.access_token);
    match (bearer(&headers), body_token) {
        (Some(_), Some(_)) => {
            OAuthError::invalid_request("send the access token once").into_response()
        }
        (h, b) => respond(&state, h.or(b)).await,
    }
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(|t| t.trim().to_string())
}

fn invalid_token(description: &str) -> Response {
    let mut e = OAuthError::new(StatusCode::UNAUTHORIZED, "invalid_token", description);
    e.www_authenticate = Some("Bearer error=\"invalid_token\"");
    e.into_response()
}

async fn respond(state: &AppState, token: Option<String>) -> Response {
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        let mut e = OAuthError::new(
            StatusCode::UNAUTHORIZED,
            "invalid_request",
            "an access token is required",
        );
        e.www_authenticate = Some("Bearer");
        return e.into_response();
    };
    let grant = match state
        .store
        .oauth()
        .grant_for_access_token(&token_hash(&token))
        .await
    {
        Ok(Some(g)) => g,
        Ok(None) => return invalid_token("the access token is invalid, expired or revoked"),
        Err(e) => return OAuthError::from(e).into_response(),
    };
    let Some(client) = state.oidc.clients.get(&grant.client_id) else {
        return invalid_token("the client of this token is no longer registered");
    };
    let snapshot: Identity = match serde_json::from_str(&grant.identity) {
        Ok(i) => i,
        Err(e) => {
            return OAuthError::server_error("stored identity is unreadable", e).into_response()
        }
    };
    let identity = match crate::pipeline::current_identity(state, &snapshot) {
        Ok(i) => i,
        Err(_) => return invalid_token("the account behind this token is no longer active"),
    };
    let live = state.live();
    let claims = crate::identity::map_claims(&identity, &live.role_mapping, &live.claims).claims;
    let scopes: Vec<String> = grant.scope.split(' ').map(str::to_string).collect();
    let mut body = super::scoped_claims(
        &claims,
        &scopes,
        client,
        live.claims.module_roles_claim.as_deref(),
    );
    body.insert("sub".into(), Value::String(claims.subject.clone()));
    let mut r = Json(Value::Object(body)).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    r
}
