//! Sign-in sessions, kept by tower-sessions in the store's database.

use std::sync::Arc;

use async_trait::async_trait;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store;
use tower_sessions::SessionStore;

use crate::store::StoreError;

#[async_trait]
pub trait Sessions: Send + Sync {
    /// The tower-sessions store on this backend's database, for the session layer.
    fn session_store(&self) -> SessionBackend;

    /// Delete the sessions that have expired (tower-sessions never deletes them itself).
    async fn delete_expired(&self) -> Result<(), StoreError>;
}

/// tower-sessions' store for one backend, saving only sessions that still exist: its own save
/// is an upsert, so a request that read a session before a concurrent logout deleted it would
/// write it back, signed in again. tower-sessions creates new sessions (and ids cycled at
/// sign-in) with `create`, which stays the inner store's; `save` is only ever asked for a
/// session that was loaded, so one that is gone now is not written.
#[derive(Debug, Clone)]
pub struct SaveExisting<S, DB: sqlx::Database> {
    inner: S,
    pool: sqlx::Pool<DB>,
    /// `UPDATE … SET data = $1, expiry_date = $2 WHERE id = $3` on the inner store's table.
    update: &'static str,
}

impl<S, DB: sqlx::Database> SaveExisting<S, DB> {
    pub fn new(inner: S, pool: sqlx::Pool<DB>, update: &'static str) -> Self {
        SaveExisting {
            inner,
            pool,
            update,
        }
    }
}

#[async_trait]
impl<S, DB> SessionStore for SaveExisting<S, DB>
where
    S: SessionStore,
    DB: sqlx::Database,
    for<'q> <DB as sqlx::Database>::Arguments<'q>: sqlx::IntoArguments<'q, DB>,
    for<'c> &'c mut <DB as sqlx::Database>::Connection: sqlx::Executor<'c, Database = DB>,
    for<'q> Vec<u8>: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> String: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
    for<'q> tower_sessions::cookie::time::OffsetDateTime: sqlx::Encode<'q, DB> + sqlx::Type<DB>,
{
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.inner.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        // The same encoding as the inner store's (MessagePack of the whole record), which
        // loads it back: the conformance suite round-trips it on both backends.
        let data =
            rmp_serde::to_vec(record).map_err(|e| session_store::Error::Encode(e.to_string()))?;
        sqlx::query(self.update)
            .bind(data)
            .bind(record.expiry_date)
            .bind(record.id.to_string())
            .execute(&self.pool)
            .await
            .map_err(|e| session_store::Error::Backend(e.to_string()))?;
        Ok(())
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.inner.delete(id).await
    }
}

/// Whichever backend's session store, as one concrete type the session layer can hold.
#[derive(Clone, Debug)]
pub struct SessionBackend(Arc<dyn SessionStore>);

impl SessionBackend {
    pub fn new(store: impl SessionStore) -> SessionBackend {
        SessionBackend(Arc::new(store))
    }
}

#[async_trait]
impl SessionStore for SessionBackend {
    // Delegated explicitly: the trait's default `create` would lose the backend's handling of
    // id collisions.
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        self.0.create(record).await
    }

    async fn save(&self, record: &Record) -> session_store::Result<()> {
        self.0.save(record).await
    }

    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        self.0.load(id).await
    }

    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        self.0.delete(id).await
    }
}
