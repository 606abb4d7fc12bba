//! The admin endpoints: thin handlers that read the request, call the room's functions and map
//! [`MigrationError`] to `{"error": …}` answers.

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use tower_http::set_header::SetResponseHeaderLayer;

use std::sync::Arc;

use axum::extract::FromRef;

use super::input::UploadError;
use super::{report, MigrationContext, MigrationError, SubmitOptions};
use crate::web::{Admin, AdminError, AdminToken};

/// The migration endpoints, on the room's [`MigrationContext`] (and the admin token). Merged
/// outside the router's global 1 MiB body limit: uploads are bounded by
/// `migrations.max_upload_bytes` instead, and refused with a JSON 400.
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    Arc<MigrationContext>: FromRef<S>,
    AdminToken: FromRef<S>,
{
    Router::new()
        .route("/admin/migrations", post(submit).get(list))
        .route("/admin/migrations/{id}", get(status).delete(cancel))
        .route("/admin/migrations/{id}/cancel", post(cancel))
        .route("/admin/migrations/{id}/report", get(report_of))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

impl From<MigrationError> for AdminError {
    fn from(e: MigrationError) -> Self {
        let status = match &e {
            MigrationError::Upload(_) | MigrationError::NotifyWithoutSmtp => {
                StatusCode::BAD_REQUEST
            }
            MigrationError::NotFound(_) => StatusCode::NOT_FOUND,
            MigrationError::AlreadyFinished { .. } => StatusCode::CONFLICT,
            MigrationError::Store(err) => {
                tracing::error!(error = %err, "migration store error");
                StatusCode::SERVICE_UNAVAILABLE
            }
        };
        AdminError(status, e.to_string())
    }
}

#[derive(Deserialize)]
struct SubmitQuery {
    dry_run: Option<String>,
    notify: Option<String>,
}

/// `true`/`1`/`yes`/`on` or their opposites; anything else is refused rather than guessed.
fn flag(name: &str, value: Option<&str>) -> Result<Option<bool>, AdminError> {
    match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
        None => Ok(None),
        Some("" | "true" | "1" | "yes" | "on") => Ok(Some(true)),
        Some("false" | "0" | "no" | "off") => Ok(Some(false)),
        Some(other) => Err(AdminError(
            StatusCode::BAD_REQUEST,
            format!("{name}=`{other}`: use true or false"),
        )),
    }
}

async fn submit(
    _: Admin,
    State(ctx): State<Arc<MigrationContext>>,
    Query(q): Query<SubmitQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, AdminError> {
    let options = SubmitOptions {
        dry_run: flag("dry_run", q.dry_run.as_deref())?.unwrap_or(false),
        notify: flag("notify", q.notify.as_deref())?,
    };
    let limit = ctx.settings.max_upload_bytes;
    // Read one byte past the limit, so "too large" is told apart from "exactly the limit".
    let bytes = axum::body::to_bytes(body, limit.saturating_add(1))
        .await
        .map_err(|_| MigrationError::Upload(UploadError::TooLarge { limit }))?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let accepted = super::submit(&ctx, content_type, &bytes, options).await?;
    let location = format!("/admin/migrations/{}", accepted.id);
    let mut response = (StatusCode::ACCEPTED, Json(&accepted)).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

#[derive(Deserialize)]
struct ListQuery {
    limit: Option<i64>,
}

async fn list(
    _: Admin,
    State(ctx): State<Arc<MigrationContext>>,
    Query(q): Query<ListQuery>,
) -> Result<Response, AdminError> {
    let jobs = super::list(&ctx, q.limit.unwrap_or(20)).await?;
    Ok(Json(json!({ "jobs": jobs })).into_response())
}

async fn status(
    _: Admin,
    State(ctx): State<Arc<MigrationContext>>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    Ok(Json(super::status(&ctx, &id).await?).into_response())
}

async fn cancel(
    _: Admin,
    State(ctx): State<Arc<MigrationContext>>,
    Path(id): Path<String>,
) -> Result<Response, AdminError> {
    Ok(Json(super::cancel(&ctx, &id).await?).into_response())
}

fn wants_csv(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| {
            accept
                .split(',')
                .any(|t| t.split(';').next().unwrap_or("").trim() == "text/csv")
        })
}

async fn report_of(
    _: Admin,
    State(ctx): State<Arc<MigrationContext>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, AdminError> {
    let (job, rows) = super::report(&ctx, &id).await?;
    if !wants_csv(&headers) {
        return Ok(Json(json!({
            "id": job.id,
            "status": job.status,
            "dry_run": job.dry_run,
            "rows": rows,
        }))
        .into_response());
    }
    let csv = report::report_csv(&rows).map_err(|e| {
        AdminError(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot write the CSV report: {e}"),
        )
    })?;
    let disposition = format!("attachment; filename=\"migration-{}.report.csv\"", job.id);
    let mut response = ([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], csv).into_response();
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}
