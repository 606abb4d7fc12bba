//! Liveness, readiness and Prometheus metrics.

use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;

/// What `/readyz` asks of the running server (the composition root answers over the store and
/// the key ring).
#[async_trait::async_trait]
pub trait ReadinessProbe: Send + Sync {
    /// Does the database answer?
    async fn database_answers(&self) -> bool;
    /// The id of the key that signs now (empty: none can).
    fn signing_kid(&self) -> String;
}

/// The readiness handle `/readyz` extracts.
#[derive(Clone)]
pub struct Readiness(pub Arc<dyn ReadinessProbe>);

/// The process's Prometheus recorder, when one could be installed.
#[derive(Clone)]
pub struct Metrics(pub Option<metrics_exporter_prometheus::PrometheusHandle>);

pub async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

/// Ready when the database answers and a key can sign.
pub async fn readyz(State(Readiness(probe)): State<Readiness>) -> impl IntoResponse {
    let db = probe.database_answers().await;
    let kid = probe.signing_kid();
    let key_ok = !kid.is_empty();
    let body = json!({
        "database": if db { "ok" } else { "unavailable" },
        "keys": if key_ok { "ok" } else { "unavailable" },
        "signing_kid": kid,
    });
    let status = if db && key_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body))
}

pub async fn metrics(State(Metrics(handle)): State<Metrics>) -> impl IntoResponse {
    match &handle {
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
pub async fn metrics_for_admin(_: super::Admin, state: State<Metrics>) -> impl IntoResponse {
    metrics(state).await
}
