use async_trait::async_trait;

use crate::store::audit_query::{page_of, AuditFilter, AuditPage, AuditQuery, MAX_AUDIT_PAGE};
use crate::store::{AuditEntry, StoreError};

#[async_trait]
impl AuditQuery for Adapter {
    async fn query(&self, f: &AuditFilter) -> Result<AuditPage, StoreError> {
        let limit = f.limit.clamp(1, MAX_AUDIT_PAGE);
        // Newest first by id (ids grow with time on both backends); one row past the page
        // says whether there is a next one.
        let rows = sqlx::query_as::<_, AuditEntry>(
            "SELECT id, at, event, outcome, subject, client, ip, detail FROM audit_log
             WHERE ($1 IS NULL OR event = $1)
               AND ($2 IS NULL OR outcome = $2)
               AND ($3 IS NULL OR subject = $3)
               AND ($4 IS NULL OR client = $4)
               AND ($5 IS NULL OR at >= $5)
               AND ($6 IS NULL OR at <= $6)
               AND ($7 IS NULL OR id < $7)
             ORDER BY id DESC LIMIT $8",
        )
        .bind(f.event.as_deref())
        .bind(f.outcome.as_deref())
        .bind(f.subject.as_deref())
        .bind(f.client.as_deref())
        .bind(f.since)
        .bind(f.until)
        .bind(f.before)
        .bind(limit + 1)
        .fetch_all(&self.reads)
        .await?;
        Ok(page_of(rows, limit))
    }
}
