//! Deleting what has expired.

use async_trait::async_trait;

use crate::store::StoreError;

/// How long a spent or expired authorization code is kept after its expiry, so that a late
/// replay is still recognised as a replay (and revokes what the code issued).
pub const CODE_KEPT_AFTER_EXPIRY_SECS: i64 = 3600;

#[async_trait]
pub trait Housekeeping: Send + Sync {
    /// Delete what has expired: pending sign-ins, answered SAML request ids, access and refresh
    /// tokens, grants with no token left, codes [`CODE_KEPT_AFTER_EXPIRY_SECS`] after expiry,
    /// and sign-in sessions. Returns how many rows went (sessions not counted). Idempotent:
    /// several processes may run it.
    async fn purge_expired(&self) -> Result<u64, StoreError>;
}
