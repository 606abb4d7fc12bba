//! Liveness, readiness and Prometheus metrics.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

use super::AppState;

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and a key can sign.
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    let db = state.store.health().ping().await;
    let signer = state.keys.signer();
    let key_ok = !signer.kid.is_empty();
    let body = json!({
        "database": if db.is_ok() { "ok" } else { "unavailable" },
        "keys": if key_ok { "ok" } else { "unavailable" },
        "signing_kid": signer.kid,
    });
    let status = if db.is_ok() && key_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    match &state.metrics {
        Some(handle) => (
            StatusCode::OK,
            [("content-type", "text/plain; version=0.0.4")],
            handle.render(),
        )
            .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            "metrics are not enabled in this process",
        )
            .into_response(),
    }
}

/// `/metrics` on the main listener: the counters tell an outsider too much (sign-in volumes,
/// failures), so it takes the admin bearer token there.
pub async fn metrics_for_admin(
    _: super::admin::Admin,
    state: State<AppState>,
) -> impl IntoResponse {
    metrics(state).await
}
