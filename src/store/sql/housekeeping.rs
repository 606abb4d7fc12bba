use async_trait::async_trait;

use crate::store::housekeeping::CODE_KEPT_AFTER_EXPIRY_SECS;
use crate::store::{now, Housekeeping, Sessions, StoreError};

#[async_trait]
impl Housekeeping for Adapter {
    async fn purge_expired(&self) -> Result<u64, StoreError> {
        self.delete_expired().await?;
        let now = now();
        let mut n = 0;
        for (sql, cutoff) in [
            ("DELETE FROM login_requests WHERE expires_at < $1", now),
            (
                "DELETE FROM auth_codes WHERE expires_at < $1",
                now - CODE_KEPT_AFTER_EXPIRY_SECS,
            ),
            ("DELETE FROM saml_request_ids WHERE expires_at < $1", now),
            ("DELETE FROM access_tokens WHERE expires_at < $1", now),
            ("DELETE FROM refresh_tokens WHERE expires_at < $1", now),
            (
                "DELETE FROM grants WHERE expires_at < $1
                   AND NOT EXISTS (SELECT 1 FROM access_tokens a WHERE a.grant_id = grants.id)
                   AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)",
                now,
            ),
        ] {
            n += sqlx::query(sql)
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected();
        }
        Ok(n)
    }
}
