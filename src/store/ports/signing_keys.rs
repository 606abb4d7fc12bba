//! The signing key ring kept in the store, for nodes that share one (PostgreSQL): every node
//! reads the same keys, with the same `signs_from`, so all switch signer at the same moment.
//! The store holds private keys only sealed (the `keys/` room seals and opens them); it never
//! sees a key-encryption key.

use async_trait::async_trait;

use crate::store::StoreError;

/// One key as stored: its certificate, its private key sealed, and when it signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSigningKey {
    pub kid: String,
    /// The X.509 certificate, PEM.
    pub certificate: String,
    /// Which key-encryption key sealed `sealed_key` (a digest of it, never the key).
    pub kek_id: String,
    /// The sealed private key, as the `keys/` room wrote it.
    pub sealed_key: String,
    /// Unix seconds.
    pub created_at: i64,
    pub signs_from: i64,
}

#[async_trait]
pub trait SigningKeys: Send + Sync {
    /// Every key, by ascending `signs_from` (then `created_at`, `kid`).
    async fn signing_keys(&self) -> Result<Vec<StoredSigningKey>, StoreError>;

    /// Store `keys` if the ring is empty: true when they were stored, false when the ring
    /// already held a key (another node stored its first key first; nothing is written). Nodes
    /// trying at once are serialised, so an empty ring gets one set of keys.
    async fn add_first_signing_keys(&self, keys: &[StoredSigningKey]) -> Result<bool, StoreError>;

    /// Store `key` unless a key is already staged (one whose `signs_from` is after `now`): true
    /// when stored. Serialised across nodes like [`SigningKeys::add_first_signing_keys`], so
    /// two rotations at once stage one key.
    async fn add_staged_signing_key(
        &self,
        key: &StoredSigningKey,
        now: i64,
    ) -> Result<bool, StoreError>;

    /// Replace key `kid`'s sealed private key, if it is still `previous` (a compare-and-set:
    /// two rewraps at once cannot lose a key). True when replaced.
    async fn reseal_signing_key(
        &self,
        kid: &str,
        previous: &str,
        kek_id: &str,
        sealed_key: &str,
    ) -> Result<bool, StoreError>;
}
