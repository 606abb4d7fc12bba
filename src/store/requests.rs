//! Pending sign-in requests.

use super::{bounded, now, Store, StoreError};

/// A pending request's stored form: the protocol request (OIDC parameters with `state` up to
/// 2 KiB, SAML request fields) and the sign-in context, or a logout chain. Legitimate ones stay
/// under a few KiB.
pub const MAX_PENDING_PAYLOAD_BYTES: usize = 32 * 1024;
/// SAML IDs are `xs:ID` values, in practice 20–50 characters.
pub const MAX_SAML_REQUEST_ID_BYTES: usize = 256;
/// Entity IDs are URIs of at most 1024 characters (SAML core §8.3.6).
const MAX_ENTITY_ID_BYTES: usize = 1024;

impl Store {
    pub async fn put_login_request(
        &self,
        id: &str,
        protocol: &str,
        payload: &str,
        ttl_secs: i64,
    ) -> Result<(), StoreError> {
        bounded("a pending request id", id, 128)?;
        bounded("a pending request's protocol", protocol, 64)?;
        bounded("a pending request", payload, MAX_PENDING_PAYLOAD_BYTES)?;
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
        bounded("a SAML request ID", request_id, MAX_SAML_REQUEST_ID_BYTES)?;
        bounded("a SAML entity ID", sp, MAX_ENTITY_ID_BYTES)?;
        let done = sqlx::query("INSERT OR IGNORE INTO saml_request_ids (sp, request_id, expires_at) VALUES (?1, ?2, ?3)")
            .bind(sp)
            .bind(request_id)
            .bind(now() + ttl_secs)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
