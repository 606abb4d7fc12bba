use async_trait::async_trait;

use super::dialect;
use crate::store::outbox::MAX_RECENT;
use crate::store::{now, Outbox, OutboxRow, StoreError};

const COLUMNS: &str = "id, subject, lucca_id, payload, status, version, attempts, \
     next_attempt_at, last_error, created_at, updated_at";

#[async_trait]
impl Outbox for Adapter {
    async fn enqueue(&self, subject: &str, lucca_id: i64, payload: &str) -> Result<(), StoreError> {
        // One statement, on the partial unique index of pending rows: two nodes queueing for
        // one account at once end with one pending row holding the newer payload.
        sqlx::query(
            "INSERT INTO lucca_outbox (subject, lucca_id, payload, status, next_attempt_at,
               created_at, updated_at)
             VALUES ($1, $2, $3, 'pending', $4, $4, $4)
             ON CONFLICT (lucca_id) WHERE status = 'pending' DO UPDATE SET
               subject = excluded.subject, payload = excluded.payload,
               version = lucca_outbox.version + 1, next_attempt_at = excluded.next_attempt_at,
               updated_at = excluded.updated_at",
        )
        .bind(subject)
        .bind(lucca_id)
        .bind(payload)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn due(&self, at: i64, limit: i64) -> Result<Vec<OutboxRow>, StoreError> {
        let now = now();
        let mut rows = sqlx::query_as::<_, OutboxRow>(&format!(
            "{} RETURNING {COLUMNS}",
            dialect::CLAIM_OUTBOX
        ))
        .bind(self.node.id.as_str())
        .bind(now + self.node.lease_secs())
        .bind(at)
        .bind(now)
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?;
        // RETURNING keeps no order.
        rows.sort_by_key(|r| (r.next_attempt_at, r.id));
        Ok(rows)
    }

    async fn next_due_at(&self) -> Result<Option<i64>, StoreError> {
        // A row another node holds is due, for this node, when that lease runs out.
        Ok(sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MIN(CASE WHEN lease_owner IS NOT NULL AND lease_owner <> $1
                               AND lease_until >= $2 THEN lease_until
                             ELSE next_attempt_at END)
             FROM lucca_outbox WHERE status = 'pending'",
        )
        .bind(self.node.id.as_str())
        .bind(now())
        .fetch_one(&self.reads)
        .await?)
    }

    async fn mark_delivered(&self, id: i64, version: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE lucca_outbox SET status = 'done', attempts = attempts + 1, last_error = NULL,
               updated_at = $1, lease_owner = NULL, lease_until = NULL
             WHERE id = $2 AND version = $3 AND status = 'pending'
               AND (lease_owner IS NULL OR lease_owner = $4)",
        )
        .bind(now())
        .bind(id)
        .bind(version)
        .bind(self.node.id.as_str())
        .execute(&self.pool)
        .await?
        .rows_affected();
        self.renew_outbox_leases().await?;
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
               next_attempt_at = CASE WHEN version = $3 THEN $4 ELSE next_attempt_at END,
               lease_owner = NULL, lease_until = NULL
             WHERE id = $5 AND status = 'pending' AND (lease_owner IS NULL OR lease_owner = $6)",
        )
        .bind(error)
        .bind(now())
        .bind(version)
        .bind(next_attempt_at)
        .bind(id)
        .bind(self.node.id.as_str())
        .execute(&self.pool)
        .await?;
        self.renew_outbox_leases().await
    }

    async fn mark_failed(&self, id: i64, version: i64, error: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lucca_outbox SET attempts = attempts + 1, last_error = $1, updated_at = $2,
               status = CASE WHEN version = $3 THEN 'failed' ELSE status END,
               lease_owner = NULL, lease_until = NULL
             WHERE id = $4 AND status = 'pending' AND (lease_owner IS NULL OR lease_owner = $5)",
        )
        .bind(error)
        .bind(now())
        .bind(version)
        .bind(id)
        .bind(self.node.id.as_str())
        .execute(&self.pool)
        .await?;
        self.renew_outbox_leases().await
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
        .fetch_all(&self.reads)
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

impl Adapter {
    /// A node working through a claimed batch renews the rest of it with each row it
    /// finishes: only a node that makes no progress for a whole lease loses its rows.
    async fn renew_outbox_leases(&self) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lucca_outbox SET lease_until = $2 WHERE lease_owner = $1 AND status = 'pending'",
        )
        .bind(self.node.id.as_str())
        .bind(now() + self.node.lease_secs())
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
