use async_trait::async_trait;

use crate::store::login_requests::check_request;
use crate::store::{now, LoginRequests, PendingRequest, StoreError};

#[async_trait]
impl LoginRequests for Adapter {
    async fn put(
        &self,
        id: &str,
        protocol: &str,
        payload: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        check_request(id, protocol, payload)?;
        let now = now();
        sqlx::query(
            "INSERT INTO login_requests (id, protocol, payload, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(protocol)
        .bind(payload)
        .bind(now)
        .bind(now + ttl_secs)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn get(&self, id: &str) -> Result<Option<PendingRequest>, StoreError> {
        let found: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT protocol, payload, created_at FROM login_requests
             WHERE id = $1 AND expires_at >= $2",
        )
        .bind(id)
        .bind(now())
        .fetch_optional(&self.reads)
        .await?;
        Ok(found.map(|(protocol, payload, created_at)| PendingRequest {
            protocol,
            payload,
            created_at,
        }))
    }

    async fn delete(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_requests WHERE id = $1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
