use std::time::Duration;

use async_trait::async_trait;

use crate::store::leases::ttl_secs;
use crate::store::{now, Leases, StoreError};

#[async_trait]
impl Leases for Adapter {
    async fn try_acquire(
        &self,
        name: &str,
        owner: &str,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let now = now();
        // One statement: a free name is inserted, an expired or own lease overwritten, a live
        // lease of another node left alone (no row affected).
        let done = sqlx::query(
            "INSERT INTO leases (name, owner, lease_until) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET owner = excluded.owner,
               lease_until = excluded.lease_until
             WHERE leases.owner = excluded.owner OR leases.lease_until < $4",
        )
        .bind(name)
        .bind(owner)
        .bind(now + ttl_secs(ttl))
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn renew(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE leases SET lease_until = $3 WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .bind(now() + ttl_secs(ttl))
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM leases WHERE name = $1 AND owner = $2")
            .bind(name)
            .bind(owner)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
