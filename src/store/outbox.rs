//! The Lucca outbox: account updates decided at sign-in, delivered later by a worker.

use serde::Serialize;

use super::{now, Store, StoreError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, sqlx::FromRow)]
pub struct OutboxRow {
    pub id: i64,
    pub subject: String,
    pub lucca_id: i64,
    /// JSON, never a secret.
    pub payload: String,
    /// `pending`, `done` or `failed`.
    pub status: String,
    pub version: i64,
    pub attempts: i64,
    /// Unix seconds.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLUMNS: &str = "id, subject, lucca_id, payload, status, version, attempts, next_attempt_at, last_error, created_at, updated_at";

impl Store {
    /// Queue an update of Lucca account `lucca_id`, due now. A pending update of the same
    /// account is replaced rather than joined by a second one: the newest sign-in knows best.
    pub async fn enqueue_lucca_update(
        &self,
        subject: &str,
        lucca_id: i64,
        payload: &str,
    ) -> Result<(), StoreError> {
        let now = now();
        let replaced = sqlx::query(
            "UPDATE lucca_outbox SET subject = ?1, payload = ?2, version = version + 1,
               next_attempt_at = ?3, updated_at = ?3
             WHERE lucca_id = ?4 AND status = 'pending'",
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
                "INSERT INTO lucca_outbox (subject, lucca_id, payload, status, next_attempt_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, 'pending', ?4, ?4, ?4)",
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

    /// Pending updates due at `at`, oldest due first.
    pub async fn due_lucca_updates(
        &self,
        at: i64,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutboxRow>(&format!(
            "SELECT {COLUMNS} FROM lucca_outbox WHERE status = 'pending' AND next_attempt_at <= ?1
             ORDER BY next_attempt_at, id LIMIT ?2"
        ))
        .bind(at)
        .bind(limit.max(1))
        .fetch_all(&self.pool)
        .await?)
    }

    /// When the next pending update is due, if any.
    pub async fn next_lucca_update_at(&self) -> Result<Option<i64>, StoreError> {
        let (at,): (Option<i64>,) = sqlx::query_as(
            "SELECT MIN(next_attempt_at) FROM lucca_outbox WHERE status = 'pending'",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(at)
    }

    /// Mark delivered, unless a newer payload arrived meanwhile (then it stays pending and is
    /// sent next). Returns whether the row was marked.
    pub async fn lucca_update_delivered(&self, id: i64, version: i64) -> Result<bool, StoreError> {
        let n = sqlx::query(
            "UPDATE lucca_outbox SET status = 'done', attempts = attempts + 1, last_error = NULL, updated_at = ?1
             WHERE id = ?2 AND version = ?3 AND status = 'pending'",
        )
        .bind(now())
        .bind(id)
        .bind(version)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n > 0)
    }

    /// Count a failed attempt and schedule the next one at `next_attempt_at` (a newer payload
    /// that arrived meanwhile keeps its own, earlier, due time).
    pub async fn lucca_update_retry(
        &self,
        id: i64,
        version: i64,
        next_attempt_at: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lucca_outbox SET attempts = attempts + 1, last_error = ?1, updated_at = ?2,
               next_attempt_at = CASE WHEN version = ?3 THEN ?4 ELSE next_attempt_at END
             WHERE id = ?5 AND status = 'pending'",
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

    /// Give up on this payload (a newer one that arrived meanwhile is still tried).
    pub async fn lucca_update_failed(
        &self,
        id: i64,
        version: i64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE lucca_outbox SET attempts = attempts + 1, last_error = ?1, updated_at = ?2,
               status = CASE WHEN version = ?3 THEN 'failed' ELSE status END
             WHERE id = ?4 AND status = 'pending'",
        )
        .bind(error)
        .bind(now())
        .bind(version)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The most recent outbox rows, newest first; optionally one person's.
    pub async fn recent_lucca_updates(
        &self,
        subject: Option<&str>,
        limit: i64,
    ) -> Result<Vec<OutboxRow>, StoreError> {
        Ok(sqlx::query_as::<_, OutboxRow>(&format!(
            "SELECT {COLUMNS} FROM lucca_outbox WHERE (?1 IS NULL OR subject = ?1)
             ORDER BY id DESC LIMIT ?2"
        ))
        .bind(subject)
        .bind(limit.clamp(1, 1000))
        .fetch_all(&self.pool)
        .await?)
    }

    /// Forget delivered and abandoned rows last touched before `before` (unix seconds).
    pub async fn purge_lucca_outbox(&self, before: i64) -> Result<u64, StoreError> {
        Ok(sqlx::query(
            "DELETE FROM lucca_outbox WHERE status IN ('done', 'failed') AND updated_at < ?1",
        )
        .bind(before)
        .execute(&self.pool)
        .await?
        .rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pending_updates_are_replaced_retried_and_delivered_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store
            .enqueue_lucca_update("alice", 2, r#"{"job_title":"A"}"#)
            .await
            .unwrap();
        let due = store.due_lucca_updates(now(), 10).await.unwrap();
        assert_eq!(due.len(), 1);
        let first = due[0].clone();

        // A newer sign-in replaces the payload while the first one is being delivered.
        store
            .enqueue_lucca_update("alice", 2, r#"{"job_title":"B"}"#)
            .await
            .unwrap();
        assert!(!store
            .lucca_update_delivered(first.id, first.version)
            .await
            .unwrap());
        store
            .lucca_update_retry(first.id, first.version, now() + 3600, "boom")
            .await
            .unwrap();
        let due = store.due_lucca_updates(now(), 10).await.unwrap();
        assert_eq!(due.len(), 1, "the newer payload stays due");
        let second = &due[0];
        assert_eq!(
            (second.id, second.payload.as_str(), second.attempts),
            (first.id, r#"{"job_title":"B"}"#, 1)
        );

        store
            .lucca_update_retry(second.id, second.version, now() + 3600, "boom")
            .await
            .unwrap();
        assert!(store.due_lucca_updates(now(), 10).await.unwrap().is_empty());
        let next = store.next_lucca_update_at().await.unwrap().unwrap();
        assert!(next >= now() + 3599, "backed off: {next}");
        let later = store.due_lucca_updates(now() + 3601, 10).await.unwrap();
        assert!(store
            .lucca_update_delivered(later[0].id, later[0].version)
            .await
            .unwrap());
        assert_eq!(store.next_lucca_update_at().await.unwrap(), None);
        let rows = store.recent_lucca_updates(Some("alice"), 10).await.unwrap();
        assert_eq!((rows[0].status.as_str(), rows[0].attempts), ("done", 3));
        assert_eq!(store.purge_lucca_outbox(now() + 1).await.unwrap(), 1);
    }
}
