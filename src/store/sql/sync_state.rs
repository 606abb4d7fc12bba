use async_trait::async_trait;

use crate::store::sync_state::MAX_SYNC_ERROR_BYTES;
use crate::store::{now, StoreError, SyncState, SyncStateRecord};

const COLUMNS: &str = "last_started_at, last_finished_at, last_full_at, last_counts, last_error,
    last_error_at, run_started_at, run_since, run_full, cursor, run_counts";

fn capped(text: &Option<String>) -> Option<String> {
    text.as_ref().map(|t| {
        if t.len() <= MAX_SYNC_ERROR_BYTES {
            return t.clone();
        }
        let mut cut = MAX_SYNC_ERROR_BYTES;
        while !t.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}…", &t[..cut])
    })
}

#[async_trait]
impl SyncState for Adapter {
    async fn sync_state(&self, name: &str) -> Result<Option<SyncStateRecord>, StoreError> {
        Ok(sqlx::query_as::<_, SyncStateRecord>(&format!(
            "SELECT {COLUMNS} FROM sync_state WHERE name = $1"
        ))
        .bind(name)
        .fetch_optional(&self.reads)
        .await?)
    }

    async fn save_sync_state(&self, name: &str, s: &SyncStateRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO sync_state (name, last_started_at, last_finished_at, last_full_at,
               last_counts, last_error, last_error_at, run_started_at, run_since, run_full,
               cursor, run_counts)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
             ON CONFLICT (name) DO UPDATE SET last_started_at = excluded.last_started_at,
               last_finished_at = excluded.last_finished_at, last_full_at = excluded.last_full_at,
               last_counts = excluded.last_counts, last_error = excluded.last_error,
               last_error_at = excluded.last_error_at, run_started_at = excluded.run_started_at,
               run_since = excluded.run_since, run_full = excluded.run_full,
               cursor = excluded.cursor, run_counts = excluded.run_counts",
        )
        .bind(name)
        .bind(s.last_started_at)
        .bind(s.last_finished_at)
        .bind(s.last_full_at)
        .bind(&s.last_counts)
        .bind(capped(&s.last_error))
        .bind(s.last_error_at)
        .bind(s.run_started_at)
        .bind(s.run_since)
        .bind(s.run_full)
        .bind(s.cursor)
        .bind(&s.run_counts)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn try_lease(
        &self,
        name: &str,
        holder: &str,
        ttl_seconds: i64,
    ) -> Result<bool, StoreError> {
        let now = now();
        // One statement: the row is taken when free, expired or already ours, else left.
        let taken = sqlx::query(
            "INSERT INTO job_leases (name, holder, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,
               expires_at = excluded.expires_at
             WHERE job_leases.holder = excluded.holder OR job_leases.expires_at <= $4",
        )
        .bind(name)
        .bind(holder)
        .bind(now.saturating_add(ttl_seconds.max(1)))
        .bind(now)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(taken == 1)
    }

    async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM job_leases WHERE name = $1 AND holder = $2")
            .bind(name)
            .bind(holder)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
