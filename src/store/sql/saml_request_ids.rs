use async_trait::async_trait;

use crate::store::saml_request_ids::check_request_id;
use crate::store::{now, SamlRequestIds, StoreError};

#[async_trait]
impl SamlRequestIds for Adapter {
    async fn claim(&self, sp: &str, request_id: &str, ttl_secs: i64) -> Result<bool, StoreError> {
        check_request_id(sp, request_id)?;
        let done = sqlx::query(
            "INSERT INTO saml_request_ids (sp, request_id, expires_at) VALUES ($1, $2, $3)
             ON CONFLICT DO NOTHING",
        )
        .bind(sp)
        .bind(request_id)
        .bind(now() + ttl_secs)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
