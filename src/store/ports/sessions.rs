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
