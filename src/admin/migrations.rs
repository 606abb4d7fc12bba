//! The migrations page: upload a file (dry run or apply), follow a job's progress (server-sent
//! events, or a page that refreshes itself without JavaScript), its counts, its report as a
//! table sorted and filtered on the server, downloads, cancel, and the history.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{audit_action, auth, check_csrf, render, ConsoleAdmin, ConsoleState};
use crate::provisioning::migration::report::{JobView, ReportRow};
use crate::provisioning::migration::{self, Class, MigrationError, SubmitOptions};
use crate::web::{Message, PageError};

/// Jobs shown in the history.
const HISTORY: i64 = 20;
/// Rows of the report shown on one page (the downloads have them all).
const REPORT_PAGE: usize = 200;

fn page_error(e: MigrationError) -> PageError {
    match e {
        MigrationError::NotFound(id) => PageError::new(
            StatusCode::NOT_FOUND,
            "admin.migrations.not_found.title",
            Message::new("admin.migrations.not_found.message").arg("id", format!("{id:.40}")),
        )
        .with_retry("/admin/console/migrations"),
        MigrationError::Store(e) => PageError::internal("migration store", e),
        other => PageError::bad_request("admin.migrations.refused.title", other.to_string())
            .with_retry("/admin/console/migrations"),
    }
}

/// `GET /admin/console/migrations`: the upload form and the history.
pub async fn list(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
) -> Result<Response, PageError> {
    let jobs = migration::list(&st.migrations, HISTORY)
        .await
        .map_err(page_error)?;
    Ok(render(
        &st,
        &admin,
        "admin/migrations.html",
        "migrations",
        minijinja::context! {
            jobs => minijinja::Value::from_serialize(&jobs),
            max_upload_bytes => st.config.migrations.max_upload_bytes,
            error => None::<String>,
        },
    ))
}

/// The format of an uploaded file, from its name; `None` lets the content decide.
fn content_type_of(file_name: &str) -> Option<&'static str> {
    let name = file_name.to_ascii_lowercase();
    if name.ends_with(".json") {
        Some("application/json")
    } else if name.ends_with(".csv") || name.ends_with(".txt") {
        Some("text/csv")
    } else {
        None
    }
}

/// `POST /admin/console/migrations` (multipart: `csrf_token`, `mode`, `file`).
pub async fn upload(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    mut form: Multipart,
) -> Result<Response, Response> {
    let limit = st.config.migrations.max_upload_bytes;
    let mut csrf = String::new();
    let mut mode = String::new();
    let mut file: Option<(Option<&'static str>, Vec<u8>)> = None;
    let too_large = || {
        PageError::bad_request(
            "admin.migrations.too_large.title",
            Message::new("admin.migrations.too_large.message").arg("limit", limit.to_string()),
        )
        .with_retry("/admin/console/migrations")
        .into_response()
    };
    let unreadable = |e: axum::extract::multipart::MultipartError| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large()
        } else {
            PageError::bad_request("admin.migrations.unreadable.title", e.body_text())
                .with_retry("/admin/console/migrations")
                .into_response()
        }
    };
    while let Some(mut field) = form.next_field().await.map_err(unreadable)? {
        let name = field.name().map(str::to_owned);
        match name.as_deref() {
            Some("csrf_token") => csrf = field.text().await.map_err(unreadable)?,
            Some("mode") => mode = field.text().await.map_err(unreadable)?,
            Some("file") => {
                let kind = field.file_name().and_then(content_type_of);
                let mut bytes = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(unreadable)? {
                    if bytes.len() + chunk.len() > limit {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&chunk);
                }
                file = Some((kind, bytes));
            }
            _ => {}
        }
    }
    check_csrf(&admin, &csrf)
        .await
        .map_err(IntoResponse::into_response)?;
    let dry_run = match mode.as_str() {
        "dry_run" => true,
        "apply" => false,
        _ => {
            return Err(PageError::bad_request(
                "admin.migrations.no_mode.title",
                "admin.migrations.no_mode.message",
            )
            .with_retry("/admin/console/migrations")
            .into_response())
        }
    };
    if !dry_run {
        auth::require_fresh(&st, &admin, "/admin/console/migrations").await?;
    }
    let Some((kind, bytes)) = file.filter(|(_, b)| !b.is_empty()) else {
        return Err(PageError::bad_request(
            "admin.migrations.no_file.title",
            "admin.migrations.no_file.message",
        )
        .with_retry("/admin/console/migrations")
        .into_response());
    };
    let accepted = migration::submit(
        &st.migrations,
        kind,
        &bytes,
        SubmitOptions {
            dry_run,
            notify: None,
        },
    )
    .await
    .map_err(|e| page_error(e).into_response())?;
    audit_action(
        &st,
        &admin,
        "migration.submit",
        if dry_run { "dry_run" } else { "apply" },
        json!({"job": accepted.id, "rows": accepted.rows, "invalid_rows": accepted.invalid_rows}),
    )
    .await;
    Ok(Redirect::to(&format!("/admin/console/migrations/{}", accepted.id)).into_response())
}

/// How the report table is shown: `?class=&q=&sort=&dir=`, all optional.
#[derive(Debug, Default, Deserialize, Serialize)]
pub struct ReportQuery {
    #[serde(default)]
    pub class: String,
    /// Part of an email or a message.
    #[serde(default)]
    pub q: String,
    /// `row` (default), `email`, `class` or `message`.
    #[serde(default)]
    pub sort: String,
    /// `asc` (default) or `desc`.
    #[serde(default)]
    pub dir: String,
}

/// The report as the table shows it: filtered, then sorted (stable: ties keep the file's order).
pub fn table(rows: &[ReportRow], q: &ReportQuery) -> Vec<serde_json::Value> {
    let needle = q.q.trim().to_lowercase();
    let mut kept: Vec<&ReportRow> = rows
        .iter()
        .filter(|r| {
            q.class.is_empty()
                || r.class.map_or("pending", Class::as_str) == q.class
                || r.findings.iter().any(|f| f.class.as_str() == q.class)
        })
        .filter(|r| {
            needle.is_empty()
                || r.email.to_lowercase().contains(&needle)
                || r.message
                    .as_deref()
                    .is_some_and(|m| m.to_lowercase().contains(&needle))
        })
        .collect();
    let class = |r: &ReportRow| r.class.map_or("pending", Class::as_str);
    match q.sort.as_str() {
        "email" => kept.sort_by_key(|r| r.email.to_lowercase()),
        "class" => kept.sort_by(|a, b| class(a).cmp(class(b))),
        "message" => kept.sort_by(|a, b| a.message.cmp(&b.message)),
        _ => kept.sort_by_key(|r| r.row),
    }
    if q.dir == "desc" {
        kept.reverse();
    }
    kept.into_iter()
        .map(|r| {
            json!({
                "row": r.row,
                "email": r.email,
                "class": class(r),
                "done": r.done,
                "message": r.message,
                "findings": r.findings.iter().skip(1).map(|f| f.class.as_str()).collect::<Vec<_>>(),
                "changes": r.changes.iter().map(|c| json!({
                    "field": c.field,
                    "from": c.from.clone().unwrap_or_default(),
                    "to": c.to,
                })).collect::<Vec<_>>(),
            })
        })
        .collect()
}

/// A sort link of the table header: same filters, this column, the other direction when it is
/// the current one.
fn sort_links(q: &ReportQuery) -> serde_json::Value {
    let mut links = serde_json::Map::new();
    for column in ["row", "email", "class", "message"] {
        let current = q.sort == column || (q.sort.is_empty() && column == "row");
        let dir = if current && q.dir != "desc" {
            "desc"
        } else {
            "asc"
        };
        let query = serde_urlencoded::to_string(ReportQuery {
            class: q.class.clone(),
            q: q.q.clone(),
            sort: column.into(),
            dir: dir.into(),
        })
        .unwrap_or_default();
        links.insert(column.into(), json!({"url": format!("?{query}#report"), "current": current, "dir": if current { q.dir.as_str() } else { "" }}));
    }
    serde_json::Value::Object(links)
}

fn view_json(view: &JobView) -> serde_json::Value {
    json!({
        "status": view.status.as_str(),
        "finished": view.status.is_finished(),
        "processed": view.progress.processed,
        "total": view.progress.total,
        "percent": view.progress.percent,
        "counts": view.counts,
        "pending": view.pending,
        "eta": view.eta.as_ref().map(|e| e.text.clone()),
    })
}

/// `GET /admin/console/migrations/{id}`: progress, counts and the report.
pub async fn job(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Query(q): Query<ReportQuery>,
) -> Result<Response, PageError> {
    let view = migration::status(&st.migrations, &id)
        .await
        .map_err(page_error)?;
    let (_, rows) = migration::report(&st.migrations, &id)
        .await
        .map_err(page_error)?;
    let mut table = table(&rows, &q);
    let shown_of = table.len();
    table.truncate(REPORT_PAGE);
    let classes: Vec<&str> = Class::ALL.iter().map(|c| c.as_str()).collect();
    Ok(render(
        &st,
        &admin,
        "admin/migration.html",
        "migrations",
        minijinja::context! {
            job => minijinja::Value::from_serialize(&view),
            live => view_json(&view),
            rows => table,
            matching => shown_of,
            total_rows => rows.len(),
            report_page => REPORT_PAGE,
            q => minijinja::Value::from_serialize(&q),
            sort => sort_links(&q),
            classes => classes,
        },
    ))
}

/// `GET /admin/console/migrations/{id}/events`: the job's progress as server-sent events, one
/// `progress` event per change, `done` at the end.
pub async fn events(
    _admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    // Unknown ids are refused before the stream starts.
    migration::status(&st.migrations, &id)
        .await
        .map_err(page_error)?;
    let ctx = st.migrations.clone();
    let stream = futures_util::stream::unfold(
        (ctx, id, None::<serde_json::Value>, false),
        |(ctx, id, last, ended)| async move {
            if ended {
                return None;
            }
            let mut first = last.is_none();
            loop {
                if !first {
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                first = false;
                let view = match migration::status(&ctx, &id).await {
                    Ok(v) => v,
                    Err(_) => return None,
                };
                let now = view_json(&view);
                if last.as_ref() == Some(&now) {
                    continue;
                }
                let finished = view.status.is_finished();
                let event = Event::default()
                    .event(if finished { "done" } else { "progress" })
                    .data(now.to_string());
                return Some((Ok::<_, Infallible>(event), (ctx, id, Some(now), finished)));
            }
        },
    );
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response())
}

async fn report_rows(st: &ConsoleState, id: &str) -> Result<(String, Vec<ReportRow>), PageError> {
    let (job, rows) = migration::report(&st.migrations, id)
        .await
        .map_err(page_error)?;
    Ok((job.id, rows))
}

/// `GET …/report.csv`: the whole report (the API's CSV).
pub async fn report_csv(
    _admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (id, rows) = report_rows(&st, &id).await?;
    let csv = migration::report::report_csv(&rows)
        .map_err(|e| PageError::internal("writing the CSV report", e))?;
    Ok(download(
        &format!("migration-{id}.report.csv"),
        "text/csv; charset=utf-8",
        csv,
    ))
}

/// `GET …/report.json`: the whole report with every finding and before→after value.
pub async fn report_json(
    _admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let (id, rows) = report_rows(&st, &id).await?;
    let body = serde_json::to_vec_pretty(&json!({"id": id, "rows": rows}))
        .map_err(|e| PageError::internal("writing the JSON report", e))?;
    Ok(download(
        &format!("migration-{id}.report.json"),
        "application/json",
        body,
    ))
}

fn download(name: &str, content_type: &'static str, body: Vec<u8>) -> Response {
    // Job ids are base64url: nothing to escape in the file name.
    let disposition = format!("attachment; filename=\"{name}\"");
    let mut response = ([(header::CONTENT_TYPE, content_type)], body).into_response();
    if let Ok(v) = header::HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, v);
    }
    response
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST …/cancel`.
pub async fn cancel(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check_csrf(&admin, &form.csrf_token).await?;
    let page = format!("/admin/console/migrations/{id}");
    match migration::cancel(&st.migrations, &id).await {
        Ok(_) | Err(MigrationError::AlreadyFinished { .. }) => {}
        Err(e) => return Err(page_error(e)),
    }
    audit_action(
        &st,
        &admin,
        "migration.cancel",
        "cancelled",
        json!({"job": id}),
    )
    .await;
    Ok(Redirect::to(&page).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provisioning::migration::model::Finding;

    fn row(n: i64, email: &str, class: Class, message: Option<&str>) -> ReportRow {
        ReportRow {
            row: n,
            email: email.into(),
            class: Some(class),
            done: true,
            fields: vec![],
            changes: vec![],
            lucca_id: None,
            message: message.map(Into::into),
            findings: vec![Finding {
                class,
                message: None,
            }],
            notification: None,
            input: None,
        }
    }

    #[test]
    fn the_table_filters_by_class_and_text_and_sorts_either_way() {
        let rows = [
            row(1, "bob@acme.test", Class::Ready, None),
            row(2, "Alice@acme.test", Class::Leaver, Some("contract ended")),
            row(3, "carol@acme.test", Class::WillCreate, None),
        ];
        let emails = |q: ReportQuery| {
            table(&rows, &q)
                .iter()
                .map(|r| r["email"].as_str().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            emails(ReportQuery::default()),
            ["bob@acme.test", "Alice@acme.test", "carol@acme.test"]
        );
        assert_eq!(
            emails(ReportQuery {
                class: "leaver".into(),
                ..Default::default()
            }),
            ["Alice@acme.test"]
        );
        assert_eq!(
            emails(ReportQuery {
                q: "ENDED".into(),
                ..Default::default()
            }),
            ["Alice@acme.test"]
        );
        assert_eq!(
            emails(ReportQuery {
                sort: "email".into(),
                dir: "desc".into(),
                ..Default::default()
            }),
            ["carol@acme.test", "bob@acme.test", "Alice@acme.test"]
        );
    }

    #[test]
    fn file_names_pick_the_format() {
        assert_eq!(content_type_of("People.JSON"), Some("application/json"));
        assert_eq!(content_type_of("people.csv"), Some("text/csv"));
        assert_eq!(content_type_of("export"), None);
    }
}
