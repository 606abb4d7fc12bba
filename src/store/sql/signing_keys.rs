use async_trait::async_trait;

use crate::store::{SigningKeys, StoreError, StoredSigningKey};

const INSERT: &str = "INSERT INTO signing_keys
    (kid, certificate, kek_id, sealed_key, created_at, signs_from)";

/// Binds `$1`..`$6` of an insert to `key`'s columns (a macro: the query type is the driver's).
macro_rules! bind_key {
    ($query:expr, $key:expr) => {
        $query
            .bind($key.kid.as_str())
            .bind($key.certificate.as_str())
            .bind($key.kek_id.as_str())
            .bind($key.sealed_key.as_str())
            .bind($key.created_at)
            .bind($key.signs_from)
    };
}

#[async_trait]
impl SigningKeys for Adapter {
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError> {
        let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
            "SELECT kid, certificate, kek_id, sealed_key, created_at, signs_from
             FROM signing_keys ORDER BY signs_from, created_at, kid",
        )
        .fetch_all(&self.reads)
        .await?;
        Ok(rows
            .into_iter()
            .map(
                |(kid, certificate, kek_id, sealed_key, created_at, signs_from)| StoredSigningKey {
                    kid,
                    certificate,
                    kek_id,
                    sealed_key,
                    created_at,
                    signs_from,
                },
            )
            .collect())
    }

    async fn add_first_signing_keys(&self, keys: &[StoredSigningKey]) -> Result<bool, StoreError> {
        let Some((first, rest)) = keys.split_first() else {
            return Ok(false);
        };
        let mut tx = self.pool.begin().await?;
        if let Some(lock) = super::dialect::LOCK_SIGNING_KEYS {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        // The check and the first insert are one statement: on SQLite it takes the write lock
        // before it reads, on PostgreSQL the lock above already serialises the nodes.
        let added = bind_key!(
            sqlx::query(&format!(
                "{INSERT} SELECT $1, $2, $3, $4, $5, $6
                 WHERE NOT EXISTS (SELECT 1 FROM signing_keys)"
            )),
            first
        )
        .execute(&mut *tx)
        .await?;
        if added.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for key in rest {
            bind_key!(
                sqlx::query(&format!("{INSERT} VALUES ($1, $2, $3, $4, $5, $6)")),
                key
            )
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn add_staged_signing_key(
        &self,
        key: &StoredSigningKey,
        now: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        if let Some(lock) = super::dialect::LOCK_SIGNING_KEYS {
            sqlx::query(lock).execute(&mut *tx).await?;
        }
        let added = bind_key!(
            sqlx::query(&format!(
                "{INSERT} SELECT $1, $2, $3, $4, $5, $6
                 WHERE NOT EXISTS (SELECT 1 FROM signing_keys WHERE signs_from > $7)"
            )),
            key
        )
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(added.rows_affected() == 1)
    }

    async fn reseal_signing_key(
        &self,
        kid: &str,
        previous: &str,
        kek_id: &str,
        sealed_key: &str,
    ) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "UPDATE signing_keys SET kek_id = $3, sealed_key = $4
             WHERE kid = $1 AND sealed_key = $2",
        )
        .bind(kid)
        .bind(previous)
        .bind(kek_id)
        .bind(sealed_key)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }
}
