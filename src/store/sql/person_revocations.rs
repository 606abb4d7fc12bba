use async_trait::async_trait;

use crate::store::person_revocations::{check_person, LiveTokens};
use crate::store::{now, PersonRevocations, StoreError};

#[async_trait]
impl PersonRevocations for Adapter {
    async fn record_sign_in(&self, subject: &str, email: &str, at: i64) -> Result<(), StoreError> {
        check_person(subject, Some(email))?;
        sqlx::query(
            "INSERT INTO person_revocations (subject, email, last_sign_in_at) VALUES ($1, $2, $3)
             ON CONFLICT (subject) DO UPDATE SET email = excluded.email,
               last_sign_in_at = CASE WHEN person_revocations.last_sign_in_at > excluded.last_sign_in_at
                 THEN person_revocations.last_sign_in_at ELSE excluded.last_sign_in_at END",
        )
        .bind(subject)
        .bind(email.to_lowercase())
        .bind(at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn revoke_sessions(&self, subject: &str, at: i64) -> Result<bool, StoreError> {
        check_person(subject, None)?;
        let mut tx = self.pool.begin().await?;
        let before: Option<(Option<i64>, Option<i64>)> = sqlx::query_as(
            "SELECT last_sign_in_at, revoked_at FROM person_revocations WHERE subject = $1",
        )
        .bind(subject)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "INSERT INTO person_revocations (subject, revoked_at) VALUES ($1, $2)
             ON CONFLICT (subject) DO UPDATE SET
               revoked_at = CASE WHEN person_revocations.revoked_at > excluded.revoked_at
                 THEN person_revocations.revoked_at ELSE excluded.revoked_at END",
        )
        .bind(subject)
        .bind(at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(
            matches!(before, Some((Some(signed_in), revoked)) if revoked.is_none_or(|r| signed_in > r)),
        )
    }

    async fn revoked_at(&self, subject: &str) -> Result<Option<i64>, StoreError> {
        let row: Option<(Option<i64>,)> =
            sqlx::query_as("SELECT revoked_at FROM person_revocations WHERE subject = $1")
                .bind(subject)
                .fetch_optional(&self.reads)
                .await?;
        Ok(row.and_then(|(at,)| at))
    }

    async fn subjects_with_email(&self, email: &str) -> Result<Vec<String>, StoreError> {
        check_person("", Some(email))?;
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT subject FROM person_revocations WHERE email = $1 ORDER BY subject",
        )
        .bind(email.to_lowercase())
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    async fn emails_containing(
        &self,
        fragment: &str,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        check_person("", Some(fragment))?;
        // Emails are stored lowercased; the pattern is too, so LIKE's case rules (SQLite folds
        // ASCII, PostgreSQL does not) never matter.
        let mut pattern = String::from("%");
        for c in fragment.to_lowercase().chars() {
            if matches!(c, '%' | '_' | '\\') {
                pattern.push('\\');
            }
            pattern.push(c);
        }
        pattern.push('%');
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT DISTINCT email FROM person_revocations WHERE email LIKE $1 ESCAPE '\\' \
             ORDER BY email LIMIT $2",
        )
        .bind(pattern)
        .bind(i64::from(limit))
        .fetch_all(&self.reads)
        .await?;
        Ok(rows.into_iter().map(|(e,)| e).collect())
    }

    async fn live_tokens(&self, subject: &str) -> Result<LiveTokens, StoreError> {
        let now = now();
        let (access, refresh): (i64, i64) = sqlx::query_as(
            "SELECT
               (SELECT COUNT(*) FROM access_tokens a JOIN grants g ON g.id = a.grant_id
                 WHERE g.subject = $1 AND g.revoked_at IS NULL AND a.revoked_at IS NULL
                   AND a.expires_at > $2),
               (SELECT COUNT(*) FROM refresh_tokens r JOIN grants g ON g.id = r.grant_id
                 WHERE g.subject = $1 AND g.revoked_at IS NULL AND r.rotated_at IS NULL
                   AND r.expires_at > $2)",
        )
        .bind(subject)
        .bind(now)
        .fetch_one(&self.reads)
        .await?;
        Ok(LiveTokens {
            access_tokens: access.max(0) as u64,
            refresh_tokens: refresh.max(0) as u64,
        })
    }
}
