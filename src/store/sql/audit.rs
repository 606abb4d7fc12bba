use std::time::Duration;

use async_trait::async_trait;

use crate::store::audit::{purge_cutoff, MAX_RECENT};
use crate::store::{now, AuditEntry, AuditEvent, AuditLog, StoreError, TimedAuditEvent};

/// Rows deleted per statement, so that a first purge of a large log never holds the write
/// lock for long.
pub(super) const PURGE_BATCH: i64 = 5000;

/// The multi-row INSERT of 2^k rows, k = 0..=6 (seven columns each: 448 parameters at most,
/// well under both drivers' limits).
static INSERTS: std::sync::LazyLock<Vec<String>> = std::sync::LazyLock::new(|| {
    (0..7)
        .map(|k| {
            let rows: Vec<String> = (0..1usize << k)
                .map(|r| {
                    let p: Vec<String> = (1..=7).map(|c| format!("${}", r * 7 + c)).collect();
                    format!("({})", p.join(", "))
                })
                .collect();
            format!(
                "INSERT INTO audit_log (at, event, outcome, subject, client, ip, detail) VALUES {}",
                rows.join(", ")
            )
        })
        .collect()
});

/// `rows` cut into chunks of 64, 32 … 1 rows, largest first.
fn chunked(rows: &[TimedAuditEvent]) -> Vec<&[TimedAuditEvent]> {
    let mut chunks = Vec::new();
    let mut rest = rows;
    while !rest.is_empty() {
        let n = 1usize << rest.len().min(64).ilog2();
        let (chunk, tail) = rest.split_at(n);
        chunks.push(chunk);
        rest = tail;
    }
    chunks
}

#[async_trait]
impl AuditLog for Adapter {
    async fn record(&self, event: AuditEvent<'_>) -> Result<(), StoreError> {
        self.record_batch(vec![TimedAuditEvent::new(now(), event)])
            .await
    }

    async fn record_batch(&self, rows: Vec<TimedAuditEvent>) -> Result<(), StoreError> {
        // Multi-row INSERTs of 64, 32 … 1 rows: a batch is a few statements (each one hand-off
        // to SQLite's writer thread, one round trip to PostgreSQL) rather than one per row, and
        // seven statement texts for the per-connection cache whatever the batch sizes.
        macro_rules! insert {
            ($chunk:expr) => {{
                let chunk: &[TimedAuditEvent] = $chunk;
                let mut query = sqlx::query(&INSERTS[chunk.len().trailing_zeros() as usize]);
                for row in chunk {
                    let e = row.event();
                    query = query
                        .bind(row.at())
                        .bind(&e.event)
                        .bind(&e.outcome)
                        .bind(&e.subject)
                        .bind(&e.client)
                        .bind(&e.ip)
                        .bind(&e.detail);
                }
                query
            }};
        }
        let chunks = chunked(&rows);
        if let [chunk] = chunks.as_slice() {
            // One statement is atomic by itself.
            insert!(chunk).execute(&self.pool).await?;
            return Ok(());
        }
        let mut tx = self.pool.begin().await?;
        for chunk in chunks {
            insert!(chunk).execute(&mut *tx).await?;
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
        .fetch_all(&self.reads)
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
