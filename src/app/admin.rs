//! The admin API (`/admin/*`) of the composition root: keys, reload and the claims preview
//! (the audit API is the admin room's, sharing the console's query). Authentication is `web::Admin`; the migration endpoints are the provisioning room's.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::AppState;
use crate::web::{Admin, AdminError};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/keys", get(list_keys))
        .route("/admin/keys/rotate", post(rotate_key))
        .route("/admin/reload", post(reload))
        .route("/admin/preview", get(preview))
        .route(
            "/admin/people/{email}/revoke",
            post(super::revoke::http::revoke),
        )
}

async fn list_keys(_: Admin, State(state): State<AppState>) -> impl IntoResponse {
    Json(json!({"keys": state.keys.status()}))
}

async fn rotate_key(
    _: Admin,
    State(state): State<AppState>,
) -> Result<impl IntoResponse, AdminError> {
    // Key generation runs on the blocking pool inside `rotate`.
    let staged = state.keys.rotate().await.map_err(|e| match e {
        crate::keys::KeyError::RotationPending { .. } | crate::keys::KeyError::ConcurrentChange => {
            AdminError(StatusCode::CONFLICT, e.to_string())
        }
        e => AdminError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("rotation failed: {e}"),
        ),
    })?;
    tracing::info!(kid = %staged.kid, signs_from = %staged.signs_from, "signing key rotation staged");
    let _ = state
        .store
        .audit()
        .record(crate::store::AuditEvent {
            event: "keys.rotate",
            outcome: "staged",
            detail: Some(json!({"kid": staged.kid, "signs_from": staged.signs_from})),
            ..Default::default()
        })
        .await;
    Ok((
        StatusCode::CREATED,
        Json(json!({"staged": staged, "keys": state.keys.status()})),
    ))
}

async fn reload(_: Admin, State(state): State<AppState>) -> Result<impl IntoResponse, AdminError> {
    match super::reload(&state).await {
        Ok(done) => Ok(Json(json!({"reloaded": done}))),
        Err(problems) => Err(AdminError(
            StatusCode::UNPROCESSABLE_ENTITY,
            format!(
                "configuration refused, the running one is kept: {}",
                problems.join("; ")
            ),
        )),
    }
}

#[derive(Deserialize)]
struct PreviewQuery {
    user: Option<String>,
    sp: Option<String>,
    client_id: Option<String>,
}

async fn preview(
    _: Admin,
    State(state): State<AppState>,
    Query(q): Query<PreviewQuery>,
) -> Result<impl IntoResponse, AdminError> {
    let user = q
        .user
        .filter(|u| !u.trim().is_empty())
        .ok_or_else(|| AdminError(StatusCode::BAD_REQUEST, "user=EMAIL is required".into()))?;
    let target = super::preview::Target::from_params(q.sp, q.client_id)
        .map_err(|e| AdminError(StatusCode::BAD_REQUEST, e))?;
    match super::preview::preview(&state, &user, &target).await {
        Ok(p) => Ok(Json(p)),
        Err(super::preview::PreviewError::UnknownUser(u)) => Err(AdminError(
            StatusCode::NOT_FOUND,
            format!("no user `{u}` in the directory"),
        )),
        Err(e) => Err(AdminError(StatusCode::NOT_FOUND, e.to_string())),
    }
}
