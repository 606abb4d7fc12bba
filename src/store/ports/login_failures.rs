//! Failed password sign-ins counted in the store, so that every node sharing it counts the same
//! attempts: an attacker gains nothing by spreading guesses over nodes.

use std::time::Duration;

use async_trait::async_trait;

use crate::store::StoreError;

/// Keys and attempt ids are hex digests and random tokens; anything longer is refused.
pub const MAX_FAILURE_KEY_BYTES: usize = 128;

/// One budget an attempt counts against: a key (an account's, a client network's) and how many
/// attempts it may have within the window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureKey<'a> {
    pub key: &'a str,
    pub max: u32,
}

#[async_trait]
pub trait LoginFailures: Send + Sync {
    /// Count attempt `attempt` against every key, unless one of them already has its `max`
    /// attempts within `window`: then nothing is counted and the answer is how long until that
    /// key has room again (the longest wait over the spent keys). Atomic across nodes: two
    /// reservations of one key never both take its last slot. Each key's attempts older than
    /// the window are deleted on the way.
    async fn reserve_attempt(
        &self,
        keys: &[FailureKey<'_>],
        attempt: &str,
        window: Duration,
    ) -> Result<Result<(), Duration>, StoreError>;

    /// Take attempt `attempt` back from `keys` (it was no failure).
    async fn release_attempt(&self, attempt: &str, keys: &[&str]) -> Result<(), StoreError>;

    /// Forget every attempt counted against `key` (the account's password was right).
    async fn forget_failures(&self, key: &str) -> Result<(), StoreError>;

    /// Delete the attempts older than `window`, whatever their key; returns how many went.
    /// Idempotent: every node may run it.
    async fn purge_failures(&self, window: Duration) -> Result<u64, StoreError>;
}
