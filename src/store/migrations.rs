//! Batch migration jobs and the outcome of each of their rows.

use serde::Serialize;

use super::{now, Store, StoreError};

/// A row to store when a job is created.
#[derive(Debug, Clone)]
pub struct NewMigrationRow {
    pub row_no: i64,
    pub seq: i64,
    pub email: String,
    /// The uploaded row as JSON.
    pub input: String,
    /// Rows refused up front (`invalid_row`) are stored done, with their class and message.
    pub class: Option<String>,
    pub message: Option<String>,
    pub done: bool,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MigrationJobRecord {
    pub id: String,
    pub dry_run: bool,
    pub notify: bool,
    pub status: String,
    pub total: i64,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct MigrationRowRecord {
    pub row_no: i64,
    pub seq: i64,
    pub email: String,
    pub input: String,
    pub class: Option<String>,
    pub fields: Option<String>,
    pub lucca_id: Option<i64>,
    pub message: Option<String>,
    pub done: bool,
    pub write_started_at: Option<i64>,
    pub notice: Option<String>,
}

/// A planned or final outcome for one row.
#[derive(Debug, Clone)]
pub struct MigrationRowOutcome {
    pub row_no: i64,
    pub class: String,
    pub fields: Option<String>,
    pub lucca_id: Option<i64>,
    pub message: Option<String>,
    pub done: bool,
}

/// How many rows have a class, done or still pending.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct MigrationClassCount {
    pub class: Option<String>,
    pub done: bool,
    pub count: i64,
}

const JOB_COLUMNS: &str =
    "id, dry_run, notify, status, total, created_at, started_at, finished_at, error";
const ROW_COLUMNS: &str =
    "row_no, seq, email, input, class, fields, lucca_id, message, done, write_started_at, notice";

impl Store {
    /// Create a queued job with all its rows, atomically.
    pub async fn create_migration_job(
        &self,
        id: &str,
        dry_run: bool,
        notify: bool,
        rows: &[NewMigrationRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO migration_jobs (id, dry_run, notify, status, total, created_at) VALUES (?1, ?2, ?3, 'queued', ?4, ?5)",
        )
        .bind(id)
        .bind(dry_run)
        .bind(notify)
        .bind(rows.len() as i64)
        .bind(now())
        .execute(&mut *tx)
        .await?;
        for row in rows {
            sqlx::query(
                "INSERT INTO migration_rows (job_id, row_no, seq, email, input, class, message, done) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )
            .bind(id)
            .bind(row.row_no)
            .bind(row.seq)
            .bind(&row.email)
            .bind(&row.input)
            .bind(&row.class)
            .bind(&row.message)
            .bind(row.done)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn migration_job(&self, id: &str) -> Result<Option<MigrationJobRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationJobRecord>(&format!(
            "SELECT {JOB_COLUMNS} FROM migration_jobs WHERE id = ?1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?)
    }

    /// Newest first.
    pub async fn migration_jobs(&self, limit: i64) -> Result<Vec<MigrationJobRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationJobRecord>(&format!(
            "SELECT {JOB_COLUMNS} FROM migration_jobs ORDER BY created_at DESC, rowid DESC LIMIT ?1"
        ))
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// The job to work on next: one interrupted while running first, then the oldest queued.
    pub async fn next_migration_job(&self) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT id FROM migration_jobs WHERE status IN ('running', 'queued')
             ORDER BY status = 'running' DESC, created_at, rowid LIMIT 1",
        )
        .fetch_optional(&self.pool)
        .await?)
    }

    /// `queued` → `running` (or `running` again after a restart).
    pub async fn start_migration_job(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE migration_jobs SET status = 'running', started_at = COALESCE(started_at, ?2)
             WHERE id = ?1 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// End a running job (`done` or `failed`); a job cancelled meanwhile stays cancelled.
    pub async fn finish_migration_job(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE migration_jobs SET status = ?2, error = ?3, finished_at = ?4
             WHERE id = ?1 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Cancel a job that has not finished. Returns the job as it is afterwards (`None`: unknown).
    pub async fn cancel_migration_job(
        &self,
        id: &str,
    ) -> Result<Option<MigrationJobRecord>, StoreError> {
        sqlx::query(
            "UPDATE migration_jobs SET status = 'cancelled', finished_at = ?2
             WHERE id = ?1 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.migration_job(id).await
    }

    pub async fn migration_job_status(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT status FROM migration_jobs WHERE id = ?1")
                .bind(id)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Rows by processing order; `pending_only` leaves out the rows already done.
    pub async fn migration_rows(
        &self,
        id: &str,
        pending_only: bool,
    ) -> Result<Vec<MigrationRowRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationRowRecord>(&format!(
            "SELECT {ROW_COLUMNS} FROM migration_rows WHERE job_id = ?1 AND (?2 = 0 OR done = 0) ORDER BY seq"
        ))
        .bind(id)
        .bind(pending_only)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Every row in upload order, for the report.
    pub async fn migration_report(&self, id: &str) -> Result<Vec<MigrationRowRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationRowRecord>(&format!(
            "SELECT {ROW_COLUMNS} FROM migration_rows WHERE job_id = ?1 ORDER BY row_no"
        ))
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    pub async fn migration_counts(&self, id: &str) -> Result<Vec<MigrationClassCount>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationClassCount>(
            "SELECT class, done, COUNT(*) AS count FROM migration_rows WHERE job_id = ?1 GROUP BY class, done",
        )
        .bind(id)
        .fetch_all(&self.pool)
        .await?)
    }

    /// Record outcomes (planned or final) in one transaction.
    pub async fn record_migration_outcomes(
        &self,
        id: &str,
        outcomes: &[MigrationRowOutcome],
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for o in outcomes {
            sqlx::query(
                "UPDATE migration_rows SET class = ?3, fields = ?4, lucca_id = ?5, message = ?6, done = ?7
                 WHERE job_id = ?1 AND row_no = ?2",
            )
            .bind(id)
            .bind(o.row_no)
            .bind(&o.class)
            .bind(&o.fields)
            .bind(o.lucca_id)
            .bind(&o.message)
            .bind(o.done)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Note that a write for this row is about to be sent.
    pub async fn mark_migration_write_started(
        &self,
        id: &str,
        row_no: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE migration_rows SET write_started_at = COALESCE(write_started_at, ?3) WHERE job_id = ?1 AND row_no = ?2",
        )
        .bind(id)
        .bind(row_no)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn set_migration_notice(
        &self,
        id: &str,
        row_no: i64,
        notice: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE migration_rows SET notice = ?3 WHERE job_id = ?1 AND row_no = ?2")
            .bind(id)
            .bind(row_no)
            .bind(notice)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(row_no: i64, seq: i64) -> NewMigrationRow {
        NewMigrationRow {
            row_no,
            seq,
            email: format!("p{row_no}@acme.test"),
            input: "{}".into(),
            class: None,
            message: None,
            done: false,
        }
    }

    #[tokio::test]
    async fn a_job_goes_from_queued_to_done_and_keeps_its_outcomes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store
            .create_migration_job("j1", true, false, &[row(2, 1), row(3, 0)])
            .await
            .unwrap();
        assert_eq!(
            store.next_migration_job().await.unwrap().as_deref(),
            Some("j1")
        );
        assert!(store.start_migration_job("j1").await.unwrap());
        let pending = store.migration_rows("j1", true).await.unwrap();
        assert_eq!(
            pending.iter().map(|r| r.row_no).collect::<Vec<_>>(),
            [3, 2],
            "processing order"
        );
        store
            .record_migration_outcomes(
                "j1",
                &[MigrationRowOutcome {
                    row_no: 3,
                    class: "ready".into(),
                    fields: None,
                    lucca_id: Some(9),
                    message: None,
                    done: true,
                }],
            )
            .await
            .unwrap();
        assert_eq!(store.migration_rows("j1", true).await.unwrap().len(), 1);
        let counts = store.migration_counts("j1").await.unwrap();
        assert!(counts
            .iter()
            .any(|c| c.class.as_deref() == Some("ready") && c.done && c.count == 1));
        store
            .finish_migration_job("j1", "done", None)
            .await
            .unwrap();
        assert_eq!(
            store.migration_job("j1").await.unwrap().unwrap().status,
            "done"
        );
        assert!(store.next_migration_job().await.unwrap().is_none());
        // A finished job cannot be cancelled any more.
        let after = store.cancel_migration_job("j1").await.unwrap().unwrap();
        assert_eq!(after.status, "done");
        assert!(store.cancel_migration_job("nope").await.unwrap().is_none());
    }

    #[tokio::test]
    async fn a_cancelled_job_stays_cancelled() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store
            .create_migration_job("j2", false, false, &[row(2, 0)])
            .await
            .unwrap();
        store.start_migration_job("j2").await.unwrap();
        store.cancel_migration_job("j2").await.unwrap();
        store
            .finish_migration_job("j2", "done", None)
            .await
            .unwrap();
        assert_eq!(
            store.migration_job_status("j2").await.unwrap().as_deref(),
            Some("cancelled")
        );
        assert!(!store.start_migration_job("j2").await.unwrap());
    }
}
