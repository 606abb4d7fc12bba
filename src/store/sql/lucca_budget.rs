use std::time::Duration;

use async_trait::async_trait;

use super::dialect;
use crate::store::error::bounded;
use crate::store::lucca_budget::{from_millis, millis, MAX_TENANT_BYTES};
use crate::store::{advisory_key, random_id, LuccaBudget, SendRule, SendSlot, StoreError};

/// The advisory lock space of the Lucca budget ("LU"); the key is the tenant's hash.
const LOCK_SPACE: i32 = 0x4c55;

#[async_trait]
impl LuccaBudget for Adapter {
    async fn take_send(&self, tenant: &str, rule: &SendRule) -> Result<SendSlot, StoreError> {
        bounded("Lucca tenant", tenant, MAX_TENANT_BYTES)?;
        let id = random_id()?;
        // Every take of one tenant runs alone: PostgreSQL by the tenant's transaction lock
        // (released at commit), SQLite by its one writer (`BEGIN IMMEDIATE`). Counting and
        // inserting in one statement would not do on PostgreSQL: two transactions would both
        // count 49 and both insert the 50th.
        let mut tx = self.pool.begin_with(dialect::BEGIN_WRITE).await?;
        if let Some(lock) = dialect::LOCK_XACT {
            sqlx::query(lock)
                .bind(LOCK_SPACE)
                .bind(advisory_key(tenant))
                .execute(&mut *tx)
                .await?;
        }
        // Read after the lock: a time taken before it could be older than the sends of the
        // transaction this one waited for.
        let now: i64 = sqlx::query_scalar(dialect::NOW_MS)
            .fetch_one(&mut *tx)
            .await?;
        let blocked: Option<i64> = sqlx::query_scalar(
            "SELECT until_ms FROM lucca_blocks WHERE tenant = $1 AND until_ms > $2",
        )
        .bind(tenant)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(until) = blocked {
            tx.commit().await?;
            return Ok(SendSlot::Blocked {
                retry_in: from_millis(until - now),
            });
        }
        let window = millis(rule.window);
        sqlx::query("DELETE FROM lucca_sends WHERE tenant = $1 AND sent_ms <= $2")
            .bind(tenant)
            .bind(now - window)
            .execute(&mut *tx)
            .await?;
        let in_window: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM lucca_sends WHERE tenant = $1")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?;
        let limit = i64::from(rule.limit());
        // The budget spread over the window (SendRule::burst): the newest sends.
        if let (Some((burst, burst_window)), true) = (rule.burst(), in_window < limit) {
            let burst_window = millis(burst_window);
            let holder: Option<i64> = sqlx::query_scalar(
                "SELECT sent_ms FROM lucca_sends WHERE tenant = $1 AND sent_ms > $2
                 ORDER BY sent_ms DESC LIMIT 1 OFFSET $3",
            )
            .bind(tenant)
            .bind(now - burst_window)
            .bind(i64::from(burst) - 1)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(sent) = holder {
                tx.commit().await?;
                return Ok(SendSlot::Full {
                    retry_in: from_millis((sent + burst_window - now).max(1)),
                });
            }
        }
        if in_window < limit {
            sqlx::query("INSERT INTO lucca_sends (id, tenant, sent_ms) VALUES ($1, $2, $3)")
                .bind(&id)
                .bind(tenant)
                .bind(now)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(SendSlot::Taken);
        }
        // The send whose leaving brings the window under this request's limit.
        let holder: Option<i64> = sqlx::query_scalar(
            "SELECT sent_ms FROM lucca_sends WHERE tenant = $1 ORDER BY sent_ms LIMIT 1 OFFSET $2",
        )
        .bind(tenant)
        .bind(in_window - limit)
        .fetch_optional(&mut *tx)
        .await?;
        tx.commit().await?;
        let retry_in = holder.map_or(window, |sent| sent + window - now).max(1);
        Ok(SendSlot::Full {
            retry_in: from_millis(retry_in),
        })
    }

    async fn block_sends(&self, tenant: &str, retry_after: Duration) -> Result<(), StoreError> {
        bounded("Lucca tenant", tenant, MAX_TENANT_BYTES)?;
        let now: i64 = sqlx::query_scalar(dialect::NOW_MS)
            .fetch_one(&self.pool)
            .await?;
        sqlx::query(
            "INSERT INTO lucca_blocks (tenant, until_ms) VALUES ($1, $2)
             ON CONFLICT (tenant) DO UPDATE SET until_ms = CASE
               WHEN excluded.until_ms > lucca_blocks.until_ms THEN excluded.until_ms
               ELSE lucca_blocks.until_ms END",
        )
        .bind(tenant)
        .bind(now + millis(retry_after))
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
