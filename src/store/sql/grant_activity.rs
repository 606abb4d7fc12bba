use async_trait::async_trait;

use crate::store::grant_activity::{GrantActivity, GrantActivityLog};
use crate::store::{now, StoreError};

#[async_trait]
impl GrantActivityLog for Adapter {
    async fn grant_activity(&self, subject: &str) -> Result<Vec<GrantActivity>, StoreError> {
        // Every refresh makes a new refresh token: the newest one's creation is the grant's
        // last use (a grant without refresh tokens was last used when it was made).
        let rows: Vec<(String, String, String, i64, i64, i64)> = sqlx::query_as(
            "SELECT g.id, g.client_id, g.scope, g.created_at, g.expires_at,
                    COALESCE((SELECT MAX(r.created_at) FROM refresh_tokens r WHERE r.grant_id = g.id),
                             g.created_at) AS last_used_at
             FROM grants g
             WHERE g.subject = $1 AND g.revoked_at IS NULL AND g.expires_at > $2
             ORDER BY last_used_at DESC, g.id",
        )
        .bind(subject)
        .bind(now())
        .fetch_all(&self.reads)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(grant_id, client_id, scope, created_at, expires_at, last_used_at)| {
                    GrantActivity {
                        grant_id,
                        client_id,
                        scope,
                        created_at,
                        expires_at,
                        last_used_at,
                    }
                },
            )
            .collect())
    }
}
