//! Batch SSO migration: move a whole company to SSO, dry run first.
//!
//! Lucca refuses an SSO sign-in when the person has no account, when several accounts share
//! the identifier, or outside the contract's dates. A migration takes the company's list of
//! people (CSV or JSON), compares it with Lucca (read in bulk) and the local directory, says
//! for each person what is in the way ([`Class`]), and — unless it is a dry run — creates and
//! updates the accounts so everyone can sign in.
//!
//! - [`input`]: reading and checking an upload (pure);
//! - [`classify`]: the decision for one person (pure);
//! - [`worker`]: the background job, resumable after a crash, writes re-checked first;
//! - [`report`]: status, ETA and the per-person report (pure);
//! - [`notify`]: the optional email to each migrated person;
//! - [`cli`]: `passerelle migrate FILE`, which drives the HTTP API.

pub mod classify;
pub mod cli;
mod context;
mod http;
pub mod input;
pub mod model;
pub mod notify;
pub mod report;
pub mod worker;

use serde::Serialize;

pub use context::{ContextError, MigrationContext};
pub use http::routes;
pub use model::{Class, FieldChange, JobStatus, PersonRow};
pub use worker::spawn_worker;

use crate::store::StoreError;
use crate::store::{MigrationJobRecord, NewMigrationRow};
use input::{Limits, UploadError};
use report::{JobView, ReportRow};

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error("{0}")]
    Upload(#[from] UploadError),
    #[error("notify=true needs [smtp] host and from in the configuration")]
    NotifyWithoutSmtp,
    #[error("no migration job `{0}`")]
    NotFound(String),
    #[error("the job is already {status}")]
    AlreadyFinished { status: String },
    #[error("the migration store is unavailable: {0}")]
    Store(#[from] StoreError),
}

#[derive(Debug, Clone, Copy, Default)]
pub struct SubmitOptions {
    pub dry_run: bool,
    /// `None`: `migrations.notify_people` decides.
    pub notify: Option<bool>,
}

/// The answer to an accepted upload.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub id: String,
    pub status: JobStatus,
    pub dry_run: bool,
    pub notify: bool,
    pub rows: usize,
    /// Rows refused on their own (bad email, listed twice…): reported as `invalid_row`.
    pub invalid_rows: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ignored_columns: Vec<String>,
    pub status_url: String,
    pub report_url: String,
}

/// Check an upload and queue a job for it.
pub async fn submit(
    ctx: &MigrationContext,
    content_type: Option<&str>,
    body: &[u8],
    options: SubmitOptions,
) -> Result<Accepted, MigrationError> {
    let limits = Limits {
        max_bytes: ctx.settings.max_upload_bytes,
        max_rows: ctx.settings.max_rows,
    };
    let notify = !options.dry_run && options.notify.unwrap_or(ctx.settings.notify_people);
    if notify && (ctx.smtp.host.is_none() || ctx.smtp.from.is_none()) {
        return Err(MigrationError::NotifyWithoutSmtp);
    }
    let upload = input::parse_upload(content_type, body, &limits)?;
    let seq = input::processing_order(&upload.rows);
    let mut invalid = 0;
    let rows: Vec<NewMigrationRow> = upload
        .rows
        .iter()
        .zip(seq)
        .map(|(row, seq)| {
            invalid += usize::from(row.problem.is_some());
            NewMigrationRow {
                row_no: row.row_no as i64,
                seq: seq as i64,
                email: row.person.email.trim().to_string(),
                input: serde_json::to_string(&row.person).unwrap_or_else(|_| "{}".into()),
                class: row
                    .problem
                    .as_ref()
                    .map(|_| Class::InvalidRow.as_str().to_string()),
                message: row.problem.clone(),
                done: row.problem.is_some(),
            }
        })
        .collect();
    let id = job_id();
    ctx.store
        .migration_jobs()
        .create_job(&id, options.dry_run, notify, &rows)
        .await?;
    tracing::info!(job = %id, rows = rows.len(), invalid, dry_run = options.dry_run, "migration job queued");
    ctx.wake();
    Ok(Accepted {
        status_url: format!("/admin/migrations/{id}"),
        report_url: format!("/admin/migrations/{id}/report"),
        id,
        status: JobStatus::Queued,
        dry_run: options.dry_run,
        notify,
        rows: rows.len(),
        invalid_rows: invalid,
        ignored_columns: upload.ignored_columns,
    })
}

async fn job(ctx: &MigrationContext, id: &str) -> Result<MigrationJobRecord, MigrationError> {
    ctx.store
        .migration_jobs()
        .job(id)
        .await?
        .ok_or_else(|| MigrationError::NotFound(id.to_string()))
}

async fn view(ctx: &MigrationContext, job: &MigrationJobRecord) -> Result<JobView, MigrationError> {
    let counts = ctx.store.migration_jobs().counts(&job.id).await?;
    Ok(report::job_view(
        job,
        &counts,
        ctx.lucca_config.requests_per_minute,
        format!("/admin/migrations/{}/report", job.id),
    ))
}

pub async fn status(ctx: &MigrationContext, id: &str) -> Result<JobView, MigrationError> {
    let job = job(ctx, id).await?;
    view(ctx, &job).await
}

pub async fn list(ctx: &MigrationContext, limit: i64) -> Result<Vec<JobView>, MigrationError> {
    let mut views = Vec::new();
    for job in ctx.store.migration_jobs().list_jobs(limit).await? {
        views.push(view(ctx, &job).await?);
    }
    Ok(views)
}

/// Stop a job that has not finished; what is done stays done (and in the report).
pub async fn cancel(ctx: &MigrationContext, id: &str) -> Result<JobView, MigrationError> {
    let before = job(ctx, id).await?;
    if JobStatus::parse(&before.status).is_some_and(JobStatus::is_finished) {
        return Err(MigrationError::AlreadyFinished {
            status: before.status,
        });
    }
    let after = ctx
        .store
        .migration_jobs()
        .cancel_job(id)
        .await?
        .ok_or_else(|| MigrationError::NotFound(id.to_string()))?;
    ctx.wake();
    view(ctx, &after).await
}

pub async fn report(
    ctx: &MigrationContext,
    id: &str,
) -> Result<(MigrationJobRecord, Vec<ReportRow>), MigrationError> {
    let job = job(ctx, id).await?;
    let status = JobStatus::parse(&job.status).unwrap_or(JobStatus::Failed);
    let rows = ctx.store.migration_jobs().report_rows(id).await?;
    Ok((job, report::report_rows(&rows, status)))
}

/// A job id: 12 random bytes, URL-safe, never starting with `-` or `_` — it names files
/// (`migration-<id>.report.csv`) and goes on command lines, where a leading `-` reads as an
/// option.
fn job_id() -> String {
    loop {
        let id = crate::web::random_token(12);
        if id.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return id;
        }
    }
}

#[cfg(test)]
mod job_id_tests {
    #[test]
    fn job_ids_never_start_with_a_dash_or_an_underscore() {
        let ids: std::collections::HashSet<String> = (0..3000).map(|_| super::job_id()).collect();
        assert_eq!(ids.len(), 3000);
        assert!(ids
            .iter()
            .all(|id| id.starts_with(|c: char| c.is_ascii_alphanumeric()) && id.len() == 16));
    }
}
