//! The one error type every port returns, whatever the backend.

/// A backend's own error (a driver or migration error), kept as the source without naming its
/// type, so that nothing above `store/` depends on the driver.
pub type BackendError = Box<dyn std::error::Error + Send + Sync + 'static>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Backend(#[source] BackendError),
    /// The URL is shown redacted: never a password in a message.
    #[error("cannot connect to the database at {url}: {source}")]
    Connect {
        url: String,
        #[source]
        source: BackendError,
    },
    #[error("database migration: {0}")]
    Migrate(#[source] BackendError),
    #[error("cannot create data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    /// A value larger than anything legitimate: refused rather than stored. Intake should have
    /// refused it with a 4xx first; this is the last line.
    #[error("{what} is {len} bytes, more than the {limit} accepted")]
    TooLarge {
        what: &'static str,
        len: usize,
        limit: usize,
    },
    /// The work's lease (an outbox row, a migration job) went to another node: this node
    /// stalled past its deadline and must stop rather than write what the other now owns.
    #[error("{what} is now held by another node (this node's lease expired)")]
    LeaseLost { what: String },
    #[error("session store: {0}")]
    Sessions(String),
}

/// Refuse a value over `limit` bytes. Called by the ports' own checks, before any backend sees
/// the value, so that every backend refuses the same sizes.
pub(crate) fn bounded(what: &'static str, value: &str, limit: usize) -> Result<(), StoreError> {
    if value.len() > limit {
        return Err(StoreError::TooLarge {
            what,
            len: value.len(),
            limit,
        });
    }
    Ok(())
}
