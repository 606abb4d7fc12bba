use async_trait::async_trait;

use crate::store::{now, LuccaLink, LuccaLinks, StoreError};

const COLUMNS: &str = "subject, lucca_id, email, status, checked_at";

#[async_trait]
impl LuccaLinks for Adapter {
    async fn put(
        &self,
        subject: &str,
        lucca_id: i64,
        email: Option<&str>,
        status: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO lucca_links (subject, lucca_id, email, status, checked_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (subject) DO UPDATE SET lucca_id = excluded.lucca_id,
               email = excluded.email, status = excluded.status, checked_at = excluded.checked_at",
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

    async fn get(&self, subject: &str) -> Result<Option<LuccaLink>, StoreError> {
        Ok(sqlx::query_as::<_, LuccaLink>(&format!(
            "SELECT {COLUMNS} FROM lucca_links WHERE subject = $1"
        ))
        .bind(subject)
        .fetch_optional(&self.reads)
        .await?)
    }

    async fn by_lucca_id(&self, lucca_id: i64) -> Result<Option<LuccaLink>, StoreError> {
        Ok(sqlx::query_as::<_, LuccaLink>(&format!(
            "SELECT {COLUMNS} FROM lucca_links WHERE lucca_id = $1"
        ))
        .bind(lucca_id)
        .fetch_optional(&self.reads)
        .await?)
    }

    async fn with_lucca_id(&self, lucca_id: i64) -> Result<Vec<LuccaLink>, StoreError> {
        Ok(sqlx::query_as::<_, LuccaLink>(&format!(
            "SELECT {COLUMNS} FROM lucca_links WHERE lucca_id = $1 ORDER BY subject"
        ))
        .bind(lucca_id)
        .fetch_all(&self.reads)
        .await?)
    }

    async fn page(&self, after: Option<&str>, limit: i64) -> Result<Vec<LuccaLink>, StoreError> {
        Ok(sqlx::query_as::<_, LuccaLink>(&format!(
            "SELECT {COLUMNS} FROM lucca_links WHERE subject > $1 ORDER BY subject LIMIT $2"
        ))
        .bind(after.unwrap_or(""))
        .bind(limit.clamp(1, 10_000))
        .fetch_all(&self.reads)
        .await?)
    }
}
