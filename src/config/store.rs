//! `[store]`: where the data lives. Absent, the embedded SQLite file in `server.data_dir`; a
//! `postgres://` URL puts every node's state in one PostgreSQL database. The URL is checked
//! (and connected to, by `passerelle check`) by the store, which owns what it accepts.

use std::time::Duration;

use serde::Deserialize;

use super::{Config, Secret, Validator};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `PASSERELLE_DATABASE_URL`). A
    /// [`Secret`]: it holds the database password, never printed.
    pub url: Option<Secret>,
    /// How long a node's claim on background work (an outbox update, a migration job) holds
    /// without renewal: how soon another node takes over the work of one that died.
    #[serde(with = "humantime_serde")]
    pub lease: Duration,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: None,
            lease: Duration::from_secs(60),
        }
    }
}

impl StoreSettings {
    /// The URL when one is set (an empty string is none).
    pub fn url(&self) -> Option<&str> {
        self.url
            .as_ref()
            .map(|u| u.expose().trim())
            .filter(|u| !u.is_empty())
    }
}

impl Config {
    pub(super) fn validate_store(&self, v: &mut Validator) {
        if self.store.lease < Duration::from_secs(2) {
            v.error(
                "store.lease",
                "must be at least 2s: a node renews its claims every third of it",
            );
        }
    }
}
