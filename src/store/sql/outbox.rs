use async_trait::async_trait;

use crate::store::outbox::MAX_RECENT;
use crate::store::{now, Outbox, OutboxRow, StoreError};

const COLUMNS: &str = "id, subject, lucca_id, payload, status, version, attempts, \
     next_attempt_at, last_error, created_at, updated_at";

#[async_trait]
impl Outbox for Adapter {
    async fn enqueue(&self, subject: &str, lucca_id: i64, payload: &str) -> Result<(), StoreError> {
        let now = now();
        let replaced = sqlx::query(
            "UPDATE lucca_outbox SET subject = $1, payload = $2, version = version + 1,
               next_attempt_at = $3, updated_at = $3
             WHERE lucca_id = $4 AND status = 'pending'",
        )
        .bind(subject)
        .bind(payload)
        .bind(now)
        .bind(lucca_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        if replaced == 0 {
            sqlx::query(
                "INSERT INTO lucca_outbox (subject, lucca_id, payload, status, next_attempt_at,
                   created_at, updated_at)
                 VALUES ($1, $2, $3, 'pending', $4, $4, $4)",
            )
            .bind(subject)
            .bind(lucca_id)
            .bind(payload)
            .bind(now)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    async fn due(&self, at: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutboxRow>(&format!(
            "SELECT {COLUMNS} FROM lucca_outbox WHERE status = 'pending' AND next_attempt_at <= $1
             ORDER BY next_attempt_at, id LIMIT $2"
        ))
        .bind(at)
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(next_attempt_at) FROM lucca_outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?)
    }

    async fn mark_delivered(&self, id: i64, version: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE lucca_outbox SET status = 'done', attempts = attempts + 1, last_error = NULL,
               updated_at = $1
             WHERE id = $2 AND version = $3 AND status = 'pending'",
        )
        .bind(now())
        .bind(id)
        .bind(version)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    async fn schedule_retry(
        &self,
        id: i64,
        version: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lucca_outbox SET attempts = attempts + 1, last_error = $1, updated_at = $2,
               next_attempt_at = CASE WHEN version = $3 THEN $4 ELSE next_attempt_at END
             WHERE id = $5 AND status = 'pending'",
        )
        .bind(error)
        .bind(now())
        .bind(version)
        .bind(next_attempt_at)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn mark_failed(&self, id: i64, version: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lucca_outbox SET attempts = attempts + 1, last_error = $1, updated_at = $2,
               status = CASE WHEN version = $3 THEN 'failed' ELSE status END
             WHERE id = $4 AND status = 'pending'",
        )
        .bind(error)
        .bind(now())
        .bind(version)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recent(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutboxRow>(&format!(
            "SELECT {COLUMNS} FROM lucca_outbox WHERE ($1 IS NULL OR subject = $1)
             ORDER BY id DESC LIMIT $2"
        ))
        .bind(subject)
        .bind(limit.clamp(1, MAX_RECENT))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn purge_finished(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM lucca_outbox WHERE status IN ('done', 'failed') AND updated_at < $1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}
