use async_trait::async_trait;
use sqlx::PgPool;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions_sqlx_store::PostgresStore;

use super::PgAdapter;
use crate::store::{SaveExisting, SessionBackend, Sessions, StoreError};

/// tower-sessions' own store, on our pool (its table: `tower_sessions.session`). Every node
/// reads the same sessions: a sign-in on one node is a session on all, a logout ends it on all.
pub(super) fn session_store(pool: &PgPool) -> PostgresStore {
    PostgresStore::new(pool.clone())
}

#[async_trait]
impl Sessions for PgAdapter {
    fn session_store(&self) -> SessionBackend {
        SessionBackend::new(SaveExisting::new(
            session_store(&self.pool),
            self.pool.clone(),
            r#"UPDATE "tower_sessions"."session" SET data = $1, expiry_date = $2 WHERE id = $3"#,
        ))
    }

    async fn delete_expired(&self) -> Result<(), StoreError> {
        session_store(&self.pool)
            .delete_expired()
            .await
            .map_err(|e| StoreError::Sessions(e.to_string()))
    }
}
