use async_trait::async_trait;
use sqlx::{FromRow, Row};

use super::dialect;
use crate::store::{
    now, CodeRecord, ConsumedCode, GrantRecord, NewGrant, OAuthStore, PeekedCode, RefreshLookup,
    StoreError, TokenOwner,
};

const GRANT_COLUMNS: &str = "g.id, g.client_id, g.subject, g.scope, g.identity, g.auth_time, \
     g.amr, g.session_id, g.expires_at, g.revoked_at";

#[async_trait]
impl OAuthStore for Adapter {
    async fn put_code(&self, code_hash: &str, c: &CodeRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO auth_codes (code_hash, client_id, redirect_uri, code_challenge, nonce, scope,
               subject, session_id, auth_time, amr, identity, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(code_hash)
        .bind(&c.client_id)
        .bind(&c.redirect_uri)
        .bind(&c.code_challenge)
        .bind(&c.nonce)
        .bind(&c.scope)
        .bind(&c.subject)
        .bind(&c.session_id)
        .bind(c.auth_time)
        .bind(&c.amr)
        .bind(&c.identity)
        .bind(now())
        .bind(c.expires_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn consume_code(&self, code_hash: &str) -> Result<ConsumedCode, StoreError> {
        let fresh = sqlx::query_as::<_, CodeRecord>(
            "UPDATE auth_codes SET used_at = $2 WHERE code_hash = $1 AND used_at IS NULL
             RETURNING client_id, redirect_uri, code_challenge, nonce, scope, subject, session_id,
                       auth_time, amr, identity, expires_at",
        )
        .bind(code_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        if let Some(record) = fresh {
            return Ok(ConsumedCode::Fresh(record));
        }
        // Record the replay on the code row in the same statement that reads the grant: SQLite
        // orders it against `create_grant`'s transaction, which refuses to store a grant for a
        // replayed code. Either the grant exists now (and is returned, to be revoked) or it
        // never will.
        let spent: Option<(String, Option<String>)> = sqlx::query_as(
            "UPDATE auth_codes SET replayed_at = COALESCE(replayed_at, $2) WHERE code_hash = $1
             RETURNING client_id, grant_id",
        )
        .bind(code_hash)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        Ok(match spent {
            Some((client_id, grant_id)) => ConsumedCode::Replayed {
                client_id,
                grant_id,
            },
            None => ConsumedCode::Unknown,
        })
    }

    async fn create_grant(
        &self,
        g: &NewGrant<'_>,
        from_code: Option<&str>,
        access: (&str, i64),
        refresh: Option<(&str, i64)>,
    ) -> Result<bool, StoreError> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO grants (id, client_id, subject, scope, identity, auth_time, amr, session_id,
               created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(g.id)
        .bind(g.client_id)
        .bind(g.subject)
        .bind(g.scope)
        .bind(g.identity)
        .bind(g.auth_time)
        .bind(g.amr)
        .bind(g.session_id)
        .bind(now)
        .bind(g.expires_at)
        .execute(&mut *tx)
        .await?;
        if let Some(code_hash) = from_code {
            let linked = sqlx::query(
                "UPDATE auth_codes SET grant_id = $2 WHERE code_hash = $1 AND replayed_at IS NULL",
            )
            .bind(code_hash)
            .bind(g.id)
            .execute(&mut *tx)
            .await?;
            if linked.rows_affected() != 1 {
                tx.rollback().await?;
                return Ok(false);
            }
        }
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, grant_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(access.0)
        .bind(g.id)
        .bind(access.1)
        .execute(&mut *tx)
        .await?;
        if let Some((hash, expires_at)) = refresh {
            sqlx::query(
                "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at)
                 VALUES ($1, $2, $3, $4)",
            )
            .bind(hash)
            .bind(g.id)
            .bind(now)
            .bind(expires_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    async fn peek_code(&self, code_hash: &str) -> Result<Option<PeekedCode>, StoreError> {
        let row = sqlx::query(
            "SELECT c.client_id, c.redirect_uri, c.code_challenge, c.nonce, c.scope, c.subject,
                    c.session_id, c.auth_time, c.amr, c.identity, c.expires_at, c.used_at,
                    (SELECT r.revoked_at FROM person_revocations r WHERE r.subject = c.subject)
                      AS subject_revoked_at
             FROM auth_codes c WHERE c.code_hash = $1",
        )
        .bind(code_hash)
        .fetch_optional(&self.reads)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let used_at: Option<i64> = row.try_get("used_at")?;
        Ok(Some(PeekedCode {
            record: CodeRecord::from_row(&row)?,
            used: used_at.is_some(),
            subject_revoked_at: row.try_get("subject_revoked_at")?,
        }))
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        g: &NewGrant<'_>,
        access: (&str, i64),
        refresh: Option<(&str, i64)>,
    ) -> Result<bool, StoreError> {
        let query = sqlx::query(dialect::REDEEM_CODE)
            .bind(code_hash)
            .bind(now())
            .bind(g.id)
            .bind(g.client_id)
            .bind(g.subject)
            .bind(g.scope)
            .bind(g.identity)
            .bind(g.auth_time)
            .bind(g.amr)
            .bind(g.session_id)
            .bind(g.expires_at)
            .bind(access.0)
            .bind(access.1)
            .bind(refresh.map(|r| r.0))
            .bind(refresh.map(|r| r.1));
        let done = if dialect::REDEEM_IN_TRANSACTION {
            let mut tx = self.pool.begin().await?;
            let done = query.execute(&mut *tx).await?;
            tx.commit().await?;
            done
        } else {
            query.execute(&self.pool).await?
        };
        Ok(done.rows_affected() > 0)
    }

    async fn revoke_grant(&self, grant_id: &str, reason: &str) -> Result<bool, StoreError> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE grants SET revoked_at = $2, revoked_reason = $3
             WHERE id = $1 AND revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(now)
        .bind(reason)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE grant_id = $1 AND revoked_at IS NULL",
        )
        .bind(grant_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM refresh_tokens WHERE grant_id = $1")
            .bind(grant_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(done.rows_affected() == 1)
    }

    async fn grant_for_access_token(
        &self,
        token_hash: &str,
    ) -> Result<Option<GrantRecord>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM access_tokens a JOIN grants g ON g.id = a.grant_id
             WHERE a.token_hash = $1 AND a.revoked_at IS NULL AND a.expires_at >= $2
               AND g.revoked_at IS NULL"
        );
        Ok(sqlx::query_as::<_, GrantRecord>(&sql)
            .bind(token_hash)
            .bind(now())
            .fetch_optional(&self.reads)
            .await?)
    }

    async fn access_token_owner(&self, token_hash: &str) -> Result<Option<TokenOwner>, StoreError> {
        let found: Option<(String, String)> = sqlx::query_as(
            "SELECT a.grant_id, g.client_id FROM access_tokens a JOIN grants g ON g.id = a.grant_id
             WHERE a.token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.reads)
        .await?;
        Ok(found.map(|(grant_id, client_id)| TokenOwner {
            grant_id,
            client_id,
        }))
    }

    async fn revoke_access_token(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $2 WHERE token_hash = $1 AND revoked_at IS NULL",
        )
        .bind(token_hash)
        .bind(now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn lookup_refresh(&self, token_hash: &str) -> Result<Option<RefreshLookup>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS}, r.expires_at AS r_expires_at, r.rotated_at, r.grace_response
             FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id WHERE r.token_hash = $1"
        );
        let row = sqlx::query(&sql)
            .bind(token_hash)
            .fetch_optional(&self.reads)
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RefreshLookup {
            grant: GrantRecord::from_row(&row)?,
            expires_at: row.try_get("r_expires_at")?,
            rotated_at: row.try_get("rotated_at")?,
            grace_response: row.try_get("grace_response")?,
        }))
    }

    async fn rotate_refresh(
        &self,
        old_hash: &str,
        grant_id: &str,
        grace_response: &[u8],
        access: (&str, i64),
        refresh: (&str, i64),
    ) -> Result<bool, StoreError> {
        let now = now();
        let mut tx = self.pool.begin().await?;
        let done = sqlx::query(
            "UPDATE refresh_tokens SET rotated_at = $2, grace_response = $3
             WHERE token_hash = $1 AND rotated_at IS NULL",
        )
        .bind(old_hash)
        .bind(now)
        .bind(grace_response)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() != 1 {
            return Ok(false);
        }
        sqlx::query(
            "INSERT INTO access_tokens (token_hash, grant_id, expires_at) VALUES ($1, $2, $3)",
        )
        .bind(access.0)
        .bind(grant_id)
        .bind(access.1)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, grant_id, created_at, expires_at)
             VALUES ($1, $2, $3, $4)",
        )
        .bind(refresh.0)
        .bind(grant_id)
        .bind(now)
        .bind(refresh.1)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn grants_of_subject(&self, subject: &str) -> Result<Vec<GrantRecord>, StoreError> {
        let sql = format!(
            "SELECT {GRANT_COLUMNS} FROM grants g WHERE g.subject = $1 AND g.revoked_at IS NULL"
        );
        Ok(sqlx::query_as::<_, GrantRecord>(&sql)
            .bind(subject)
            .fetch_all(&self.reads)
            .await?)
    }
}
