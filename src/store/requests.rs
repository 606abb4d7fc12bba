//! Pending sign-in requests.

use super::{now, Store, StoreError};

impl Store {
    pub async fn put_login_request(
        &self,
        id: &str,
        protocol: &str,
        payload: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        let now = now();
        sqlx::query("INSERT INTO login_requests (id, protocol, payload, created_at, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)")
            .bind(id)
            .bind(protocol)
            .bind(payload)
            .bind(now)
            .bind(now + ttl_secs)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// `(protocol, payload, created_at)` of a pending request, if it exists and has not expired.
    pub async fn get_login_request(
        &self,
        id: &str,
    ) -> Result<Option<(String, String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT protocol, payload, created_at FROM login_requests WHERE id = ?1 AND expires_at >= ?2",
        )
        .bind(id)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn delete_login_request(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM login_requests WHERE id = ?1")
            .bind(id)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Record that a SAML request ID was answered; false if it already was.
    pub async fn claim_saml_request_id(
        &self,
        sp: &str,
        request_id: &str,
        ttl_secs: i64,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query("INSERT OR IGNORE INTO saml_request_ids (sp, request_id, expires_at) VALUES (?1, ?2, ?3)")
            .bind(sp)
            .bind(request_id)
            .bind(now() + ttl_secs)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
