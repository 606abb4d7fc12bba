//! `GET`/`POST /oidc/userinfo`: the same claims as the ID token, for a live access token.

use axum::extract::rejection::FormRejection;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::{Form, Json};
use serde::Deserialize;
use serde_json::Value;

use crate::oidc::{userinfo, OidcError, OidcState};

#[derive(Deserialize, Default)]
pub struct UserinfoForm {
    access_token: Option<String>,
}

pub async fn userinfo_get(State(state): State<OidcState>, headers: HeaderMap) -> Response {
    respond(&state, bearer(&headers)).await
}

/// RFC 6750 §2.2 also allows the token in a form body.
pub async fn userinfo_post(
    State(state): State<OidcState>,
    headers: HeaderMap,
    form: Result<Form<UserinfoForm>, FormRejection>,
) -> Response {
    let body_token = form.ok().and_then(|Form(f)| f.access_token);
    match (bearer(&headers), body_token) {
        (Some(_), Some(_)) => {
            OidcError::invalid_request("send the access token once").into_response()
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

async fn respond(state: &OidcState, token: Option<String>) -> Response {
    match userinfo::userinfo(
        &state.store,
        &state.provider,
        &state.pipeline,
        token.as_deref(),
    )
    .await
    {
        Ok(body) => super::no_store(Json(Value::Object(body)).into_response()),
        Err(e) => e.into_response(),
    }
}
