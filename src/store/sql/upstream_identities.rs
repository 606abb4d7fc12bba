use async_trait::async_trait;

use crate::store::upstream_identities::check_identity;
use crate::store::{now, StoreError, UpstreamIdentities, UpstreamIdentity};

#[async_trait]
impl UpstreamIdentities for Adapter {
    async fn put(
        &self,
        subject: &str,
        email: &str,
        upstream: &str,
        identity_json: &str,
        groups_overage: bool,
    ) -> Result<(), StoreError> {
        check_identity(subject, email, upstream, identity_json)?;
        sqlx::query(
            "INSERT INTO upstream_identities (subject, email, upstream, identity, groups_overage, seen_at)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (subject) DO UPDATE SET email = excluded.email, upstream = excluded.upstream,
               identity = excluded.identity, groups_overage = excluded.groups_overage,
               seen_at = excluded.seen_at",
        )
        .bind(subject)
        .bind(email)
        .bind(upstream)
        .bind(identity_json)
        .bind(groups_overage)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn by_email(&self, email: &str) -> Result<Option<UpstreamIdentity>, StoreError> {
        let found: Option<(String, bool)> = sqlx::query_as(
            "SELECT identity, groups_overage FROM upstream_identities WHERE email = $1
             ORDER BY seen_at DESC LIMIT 1",
        )
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.reads)
        .await?;
        Ok(found.map(|(identity, groups_overage)| UpstreamIdentity {
            identity,
            groups_overage,
        }))
    }
}
