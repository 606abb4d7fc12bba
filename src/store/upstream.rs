//! The last identity seen from each upstream (bridge-mode) person.

use super::{bounded, now, Store, StoreError};

/// An upstream person's claims as kept: names, department, manager and groups (Entra sends at
/// most ~200 group ids before it switches to an overage marker, about 8 KiB).
pub const MAX_UPSTREAM_IDENTITY_BYTES: usize = 64 * 1024;

impl Store {
    pub async fn put_upstream_identity(
        &self,
        subject: &str,
        email: &str,
        upstream: &str,
        identity_json: &str,
        groups_overage: bool,
    ) -> Result<(), StoreError> {
        bounded("an upstream subject", subject, 256)?;
        bounded("an upstream email", email, 320)?;
        bounded("an upstream name", upstream, 256)?;
        bounded(
            "an upstream identity",
            identity_json,
            MAX_UPSTREAM_IDENTITY_BYTES,
        )?;
        sqlx::query(
            "INSERT INTO upstream_identities (subject, email, upstream, identity, groups_overage, seen_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(subject) DO UPDATE SET email = excluded.email, upstream = excluded.upstream,
               identity = excluded.identity, groups_overage = excluded.groups_overage, seen_at = excluded.seen_at",
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

    /// `(identity JSON, groups_overage)` of the person last seen with this email.
    pub async fn upstream_identity_by_email(
        &self,
        email: &str,
    ) -> Result<Option<(String, bool)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT identity, groups_overage FROM upstream_identities WHERE email = ?1 ORDER BY seen_at DESC LIMIT 1",
        )
        .bind(email.trim().to_lowercase())
        .fetch_optional(&self.pool)
        .await?)
    }
}
