use async_trait::async_trait;

use crate::store::migration_jobs::MAX_LISTED;
use crate::store::{
    now, MigrationClassCount, MigrationJobRecord, MigrationJobs, MigrationRowOutcome,
    MigrationRowRecord, NewMigrationRow, StoreError,
};

const JOB_COLUMNS: &str =
    "id, dry_run, notify, status, total, created_at, started_at, finished_at, error";
const ROW_COLUMNS: &str =
    "row_no, seq, email, input, class, fields, lucca_id, message, done, write_started_at, notice,
     findings";

#[async_trait]
impl MigrationJobs for Adapter {
    async fn create_job(
        &self,
        id: &str,
        dry_run: bool,
        notify: bool,
        rows: &[NewMigrationRow],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        // created_seq orders jobs created in the same second (the order they were created in).
        sqlx::query(
            "INSERT INTO migration_jobs (id, dry_run, notify, status, total, created_at, created_seq)
             SELECT $1, $2, $3, 'queued', $4, $5, COALESCE(MAX(created_seq), 0) + 1
             FROM migration_jobs",
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
                "INSERT INTO migration_rows (job_id, row_no, seq, email, input, class, message, done)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
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

    async fn job(&self, id: &str) -> Result<Option<MigrationJobRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationJobRecord>(&format!(
            "SELECT {JOB_COLUMNS} FROM migration_jobs WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.reads)
        .await?)
    }

    async fn list_jobs(&self, limit: i64) -> Result<Vec<MigrationJobRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationJobRecord>(&format!(
            "SELECT {JOB_COLUMNS} FROM migration_jobs
             ORDER BY created_at DESC, created_seq DESC LIMIT $1"
        ))
        .bind(limit.clamp(1, MAX_LISTED))
        .fetch_all(&self.reads)
        .await?)
    }

    async fn next_job(&self) -> Result<Option<String>, StoreError> {
        // A job another node holds a live lease on is that node's.
        Ok(sqlx::query_scalar::<_, String>(
            "SELECT id FROM migration_jobs WHERE status IN ('running', 'queued')
               AND (lease_owner IS NULL OR lease_owner = $1 OR lease_until < $2)
             ORDER BY CASE WHEN status = 'running' THEN 0 ELSE 1 END, created_at, created_seq
             LIMIT 1",
        )
        .bind(self.node.id.as_str())
        .bind(now())
        .fetch_optional(&self.pool)
        .await?)
    }

    async fn start_job(&self, id: &str) -> Result<bool, StoreError> {
        // One conditional UPDATE: of two nodes starting one job, one wins the lease.
        let now = now();
        let done = sqlx::query(
            "UPDATE migration_jobs SET status = 'running', started_at = COALESCE(started_at, $2),
               lease_owner = $3, lease_until = $4
             WHERE id = $1 AND status IN ('queued', 'running')
               AND (lease_owner IS NULL OR lease_owner = $3 OR lease_until < $2)",
        )
        .bind(id)
        .bind(now)
        .bind(self.node.id.as_str())
        .bind(now + self.node.lease_secs())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew_job_lease(&self, id: &str) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE migration_jobs SET lease_until = $3
             WHERE id = $1 AND lease_owner = $2 AND status = 'running'",
        )
        .bind(id)
        .bind(self.node.id.as_str())
        .bind(now() + self.node.lease_secs())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn finish_job(
        &self,
        id: &str,
        status: &str,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE migration_jobs SET status = $2, error = $3, finished_at = $4,
               lease_owner = NULL, lease_until = NULL
             WHERE id = $1 AND status IN ('queued', 'running')
               AND (lease_owner IS NULL OR lease_owner = $5)",
        )
        .bind(id)
        .bind(status)
        .bind(error)
        .bind(now())
        .bind(self.node.id.as_str())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn cancel_job(&self, id: &str) -> Result<Option<MigrationJobRecord>, StoreError> {
        sqlx::query(
            "UPDATE migration_jobs SET status = 'cancelled', finished_at = $2
             WHERE id = $1 AND status IN ('queued', 'running')",
        )
        .bind(id)
        .bind(now())
        .execute(&self.pool)
        .await?;
        self.job(id).await
    }

    async fn job_status(&self, id: &str) -> Result<Option<String>, StoreError> {
        Ok(
            sqlx::query_scalar::<_, String>("SELECT status FROM migration_jobs WHERE id = $1")
                .bind(id)
                .fetch_optional(&self.reads)
                .await?,
        )
    }

    async fn rows(
        &self,
        id: &str,
        pending_only: bool,
    ) -> Result<Vec<MigrationRowRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationRowRecord>(&format!(
            "SELECT {ROW_COLUMNS} FROM migration_rows WHERE job_id = $1 AND (NOT $2 OR NOT done)
             ORDER BY seq"
        ))
        .bind(id)
        .bind(pending_only)
        .fetch_all(&self.reads)
        .await?)
    }

    async fn report_rows(&self, id: &str) -> Result<Vec<MigrationRowRecord>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationRowRecord>(&format!(
            "SELECT {ROW_COLUMNS} FROM migration_rows WHERE job_id = $1 ORDER BY row_no"
        ))
        .bind(id)
        .fetch_all(&self.reads)
        .await?)
    }

    async fn counts(&self, id: &str) -> Result<Vec<MigrationClassCount>, StoreError> {
        Ok(sqlx::query_as::<_, MigrationClassCount>(
            "SELECT class, done, COUNT(*) AS count FROM migration_rows WHERE job_id = $1
             GROUP BY class, done",
        )
        .bind(id)
        .fetch_all(&self.reads)
        .await?)
    }

    async fn record_outcomes(
        &self,
        id: &str,
        outcomes: &[MigrationRowOutcome],
    ) -> Result<(), StoreError> {
        if outcomes.is_empty() {
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        // Fenced: only the node holding the job writes its outcomes (and renews its lease
        // while at it). On PostgreSQL this UPDATE also locks the job row until commit, so a
        // node taking the job over waits for these outcomes rather than racing them.
        let held = sqlx::query(
            "UPDATE migration_jobs SET lease_until = CASE WHEN lease_owner IS NULL
                 THEN lease_until ELSE $3 END
             WHERE id = $1 AND (lease_owner IS NULL OR lease_owner = $2)",
        )
        .bind(id)
        .bind(self.node.id.as_str())
        .bind(now() + self.node.lease_secs())
        .execute(&mut *tx)
        .await?;
        if held.rows_affected() != 1 {
            return Err(lease_lost(id));
        }
        for o in outcomes {
            sqlx::query(
                "UPDATE migration_rows SET class = $3, fields = $4, lucca_id = $5, message = $6,
                   done = $7, findings = $8
                 WHERE job_id = $1 AND row_no = $2",
            )
            .bind(id)
            .bind(o.row_no)
            .bind(&o.class)
            .bind(&o.fields)
            .bind(o.lucca_id)
            .bind(&o.message)
            .bind(o.done)
            .bind(&o.findings)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn mark_write_started(&self, id: &str, row_no: i64) -> Result<(), StoreError> {
        // Fenced like the outcomes: a node that lost the job must not go on to write.
        let done = sqlx::query(
            "UPDATE migration_rows SET write_started_at = COALESCE(write_started_at, $3)
             WHERE job_id = $1 AND row_no = $2
               AND EXISTS (SELECT 1 FROM migration_jobs j WHERE j.id = $1
                           AND (j.lease_owner IS NULL OR j.lease_owner = $4))",
        )
        .bind(id)
        .bind(row_no)
        .bind(now())
        .bind(self.node.id.as_str())
        .execute(&self.pool)
        .await?;
        if done.rows_affected() == 0 && self.job_held_by_another(id).await? {
            return Err(lease_lost(id));
        }
        Ok(())
    }

    async fn set_notice(&self, id: &str, row_no: i64, notice: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE migration_rows SET notice = $3 WHERE job_id = $1 AND row_no = $2")
            .bind(id)
            .bind(row_no)
            .bind(notice)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}

impl Adapter {
    async fn job_held_by_another(&self, id: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM migration_jobs
             WHERE id = $1 AND lease_owner IS NOT NULL AND lease_owner <> $2",
        )
        .bind(id)
        .bind(self.node.id.as_str())
        .fetch_one(&self.pool)
        .await?
            > 0)
    }
}

fn lease_lost(id: &str) -> StoreError {
    StoreError::LeaseLost {
        what: format!("migration job {id}"),
    }
}
