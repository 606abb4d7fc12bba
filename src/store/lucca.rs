//! Links between people and their Lucca accounts.

use serde::Serialize;

use super::{now, Store, StoreError};

#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct LuccaLink {
    pub subject: String,
    pub lucca_id: i64,
    pub email: Option<String>,
    /// `active`, `ended` or `not_started`.
    pub status: String,
    /// When Lucca was last asked (unix seconds).
    pub checked_at: i64,
}

impl Store {
    /// Record (or refresh) what we know of a person's Lucca account.
    pub async fn put_lucca_link(
        &self,
        subject: &str,
        lucca_id: i64,
        email: Option<&str>,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lucca_links (subject, lucca_id, email, status, checked_at) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT(subject) DO UPDATE SET lucca_id = excluded.lucca_id, email = excluded.email,
               status = excluded.status, checked_at = excluded.checked_at",
        )
        .bind(subject)
        .bind(lucca_id)
        .bind(email)
        .bind(status)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn lucca_link(&self, subject: &str) -> Result<Option<LuccaLink>, StoreError> {
        Ok(sqlx::query_as::<_, LuccaLink>(
            "SELECT subject, lucca_id, email, status, checked_at FROM lucca_links WHERE subject = ?1",
        )
        .bind(subject)
        .fetch_optional(&self.pool)
        .await?)
    }

    pub async fn lucca_link_by_id(&self, lucca_id: i64) -> Result<Option<LuccaLink>, StoreError> {
        Ok(sqlx::query_as::<_, LuccaLink>(
            "SELECT subject, lucca_id, email, status, checked_at FROM lucca_links WHERE lucca_id = ?1",
        )
        .bind(lucca_id)
        .fetch_optional(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn links_are_upserted() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        store
            .put_lucca_link("alice", 2, Some("alice@acme.test"), "active")
            .await
            .unwrap();
        store
            .put_lucca_link("alice", 2, Some("alice@acme.test"), "ended")
            .await
            .unwrap();
        let link = store.lucca_link("alice").await.unwrap().unwrap();
        assert_eq!((link.lucca_id, link.status.as_str()), (2, "ended"));
        assert_eq!(
            store.lucca_link_by_id(2).await.unwrap().unwrap().subject,
            "alice"
        );
        assert!(store.lucca_link("bob").await.unwrap().is_none());
    }
}
