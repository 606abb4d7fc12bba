//! The audit log: sign-ins and token events.

use serde::Serialize;

use super::{now, Store, StoreError};

/// One event to record. `detail` is free-form JSON and must never hold a secret.
#[derive(Debug, Clone, Default)]
pub struct AuditEvent<'a> {
    pub event: &'a str,
    pub outcome: &'a str,
    pub subject: Option<&'a str>,
    pub client: Option<&'a str>,
    pub ip: Option<&'a str>,
    pub detail: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEntry {
    pub id: i64,
    pub at: i64,
    pub event: String,
    pub outcome: String,
    pub subject: Option<String>,
    pub client: Option<String>,
    pub ip: Option<String>,
    pub detail: Option<String>,
}

impl Store {
    pub async fn audit(&self, e: AuditEvent<'_>) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO audit_log (at, event, outcome, subject, client, ip, detail) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
            .bind(now())
            .bind(e.event)
            .bind(e.outcome)
            .bind(e.subject)
            .bind(e.client)
            .bind(e.ip)
            .bind(e.detail.map(|d| d.to_string()))
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Newest first; optionally only one subject's events.
    pub async fn recent_audit(
        &self,
        limit: i64,
        subject: Option<&str>,
    ) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query_as::<_, AuditEntry>(
            "SELECT id, at, event, outcome, subject, client, ip, detail FROM audit_log
             WHERE (?1 IS NULL OR subject = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .bind(subject)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows)
    }
}
