use std::time::Duration;

use async_trait::async_trait;

use super::dialect;
use crate::store::error::bounded;
use crate::store::login_failures::MAX_FAILURE_KEY_BYTES;
use crate::store::lucca_budget::{from_millis, millis};
use crate::store::{advisory_key, FailureKey, LoginFailures, StoreError};

/// The advisory lock space of the sign-in throttle ("LG"); the key is the throttle key's hash.
const LOCK_SPACE: i32 = 0x4c47;

#[async_trait]
impl LoginFailures for Adapter {
    async fn reserve_attempt(
        &self,
        keys: &[FailureKey<'_>],
        attempt: &str,
        window: Duration,
    ) -> Result<Result<(), Duration>, StoreError> {
        bounded("sign-in attempt id", attempt, MAX_FAILURE_KEY_BYTES)?;
        for k in keys {
            bounded("sign-in throttle key", k.key, MAX_FAILURE_KEY_BYTES)?;
        }
        let mut tx = self.pool.begin_with(dialect::BEGIN_WRITE).await?;
        if let Some(lock) = dialect::LOCK_XACT {
            // Always in the same order, so two attempts locking the same two keys cannot
            // each hold one and wait for the other.
            let mut locks: Vec<i32> = keys.iter().map(|k| advisory_key(k.key)).collect();
            locks.sort_unstable();
            locks.dedup();
            for key in locks {
                sqlx::query(lock)
                    .bind(LOCK_SPACE)
                    .bind(key)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let now: i64 = sqlx::query_scalar(dialect::NOW_MS)
            .fetch_one(&mut *tx)
            .await?;
        let window = millis(window);
        let mut wait: Option<i64> = None;
        for k in keys {
            sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1 AND at_ms <= $2")
                .bind(k.key)
                .bind(now - window)
                .execute(&mut *tx)
                .await?;
            let held: i64 =
                sqlx::query_scalar("SELECT COUNT(*) FROM login_failures WHERE throttle_key = $1")
                    .bind(k.key)
                    .fetch_one(&mut *tx)
                    .await?;
            let max = i64::from(k.max);
            if held >= max {
                // The attempt whose leaving gives this key room again.
                let oldest: Option<i64> = sqlx::query_scalar(
                    "SELECT at_ms FROM login_failures WHERE throttle_key = $1
                     ORDER BY at_ms LIMIT 1 OFFSET $2",
                )
                .bind(k.key)
                .bind(held - max)
                .fetch_optional(&mut *tx)
                .await?;
                let w = oldest.map_or(window, |at| at + window - now);
                wait = Some(wait.map_or(w, |x| x.max(w)));
            }
        }
        if let Some(w) = wait {
            tx.commit().await?;
            return Ok(Err(from_millis(w)));
        }
        for k in keys {
            sqlx::query(
                "INSERT INTO login_failures (throttle_key, attempt, at_ms) VALUES ($1, $2, $3)
                 ON CONFLICT (throttle_key, attempt) DO NOTHING",
            )
            .bind(k.key)
            .bind(attempt)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(Ok(()))
    }

    async fn release_attempt(&self, attempt: &str, keys: &[&str]) -> Result<(), StoreError> {
        for key in keys {
            sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1 AND attempt = $2")
                .bind(*key)
                .bind(attempt)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    async fn forget_failures(&self, key: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_failures WHERE throttle_key = $1")
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn purge_failures(&self, window: Duration) -> Result<u64, StoreError> {
        let now: i64 = sqlx::query_scalar(dialect::NOW_MS)
            .fetch_one(&self.pool)
            .await?;
        let done = sqlx::query("DELETE FROM login_failures WHERE at_ms <= $1")
            .bind(now - millis(window))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected())
    }
}
