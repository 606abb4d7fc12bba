use async_trait::async_trait;
use sqlx::SqlitePool;
use tower_sessions::session_store::ExpiredDeletion;
use tower_sessions_sqlx_store::SqliteStore;

use super::SqliteAdapter;
use crate::store::{SaveExisting, SessionBackend, Sessions, StoreError};

/// tower-sessions' own store, on our pool (its table: `tower_sessions`).
pub(super) fn session_store(pool: &SqlitePool) -> SqliteStore {
    SqliteStore::new(pool.clone())
}

#[async_trait]
impl Sessions for SqliteAdapter {
    fn session_store(&self) -> SessionBackend {
        SessionBackend::new(SaveExisting::new(
            session_store(&self.pool),
            self.pool.clone(),
            "UPDATE tower_sessions SET data = $1, expiry_date = $2 WHERE id = $3",
        ))
    }

    async fn delete_expired(&self) -> Result<(), StoreError> {
        session_store(&self.pool)
            .delete_expired()
            .await
            .map_err(|e| StoreError::Sessions(e.to_string()))
    }
}
