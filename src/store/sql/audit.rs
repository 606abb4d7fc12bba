use std::time::Duration;

use async_trait::async_trait;

use crate::store::audit::{purge_cutoff, MAX_RECENT};
use crate::store::{now, AuditEntry, AuditEvent, AuditLog, StoreError};

/// Rows deleted per statement, so that a first purge of a large log never holds the write
/// lock for long.
pub(super) const PURGE_BATCH: i64 = 5000;

#[async_trait]
impl AuditLog for Adapter {
    async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError> {
        let e = event.capped();
        sqlx::query(
            "INSERT INTO audit_log (at, event, outcome, subject, client, ip, detail)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(now())
        .bind(e.event)
        .bind(e.outcome)
        .bind(e.subject)
        .bind(e.client)
        .bind(e.ip)
        .bind(e.detail)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn recent(
        &self,
        limit: i64,
        subject: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        Ok(sqlx::query_as::<_, AuditEntry>(
            "SELECT id, at, event, outcome, subject, client, ip, detail FROM audit_log
             WHERE ($1 IS NULL OR subject = $1) ORDER BY id DESC LIMIT $2",
        )
        .bind(subject)
        .bind(limit.clamp(1, MAX_RECENT))
        .fetch_all(&self.pool)
        .await?)
    }

    async fn purge_older_than(&self, older_than: Duration) -> Result<u64, StoreError> {
        let Some(cutoff) = purge_cutoff(now(), older_than) else {
            return Ok(0);
        };
        let mut deleted = 0;
        loop {
            let n = sqlx::query(
                "DELETE FROM audit_log WHERE id IN (SELECT id FROM audit_log WHERE at < $1 LIMIT $2)",
            )
            .bind(cutoff)
            .bind(PURGE_BATCH)
            .execute(&self.pool)
            .await?
            .rows_affected();
            deleted += n;
            if n < PURGE_BATCH as u64 {
                return Ok(deleted);
            }
        }
    }
}
