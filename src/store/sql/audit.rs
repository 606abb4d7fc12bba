use std::time::Duration;

use async_trait::async_trait;

use crate::store::audit::{purge_cutoff, MAX_RECENT};
use crate::store::{now, AuditEntry, AuditEvent, AuditLog, StoreError, TimedAuditEvent};

/// Rows deleted per statement, so that a first purge of a large log never holds the write
/// lock for long.
pub(super) const PURGE_BATCH: i64 = 5000;

#[async_trait]
impl AuditLog for Adapter {
    async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError> {
        self.record_batch(vec![TimedAuditEvent::new(now(), event)])
            .await
    }

    async fn record_batch(&self, rows: Vec<TimedAuditEvent>) -> Result<(), StoreError> {
        // One statement text, cached once per connection, for a single row and for a batch.
        macro_rules! insert {
            ($row:expr) => {{
                let e = $row.event();
                sqlx::query(
                    "INSERT INTO audit_log (at, event, outcome, subject, client, ip, detail)
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind($row.at())
                .bind(&e.event)
                .bind(&e.outcome)
                .bind(&e.subject)
                .bind(&e.client)
                .bind(&e.ip)
                .bind(&e.detail)
            }};
        }
        if let [row] = rows.as_slice() {
            insert!(row).execute(&self.pool).await?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for row in &rows {
            insert!(row).execute(&mut *tx).await?;
        }
        tx.commit().await?;
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
