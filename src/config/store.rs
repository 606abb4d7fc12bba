//! `[store]`: where the data lives. Absent, the embedded SQLite file in `server.data_dir`; a
//! `postgres://` URL puts every node's state in one PostgreSQL database. The URL is checked
//! (and connected to, by `passerelle check`) by the store, which owns what it accepts.

use serde::Deserialize;

use super::Secret;

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StoreSettings {
    /// `postgres://USER:PASSWORD@HOST:PORT/DATABASE` (or `PASSERELLE_DATABASE_URL`). A
    /// [`Secret`]: it holds the database password, never printed.
    pub url: Option<Secret>,
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
