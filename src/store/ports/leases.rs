//! Named leases: work that must run on one node at a time when several nodes share the store
//! (the directory sync), held by a node until a deadline it renews, taken over by another once
//! the holder stops renewing (it died, or stalled past the deadline).

use std::time::Duration;

use async_trait::async_trait;

use crate::store::StoreError;

#[async_trait]
pub trait Leases: Send + Sync {
    /// Take lease `name` for `owner` until `ttl` from now: true when it was free, expired, or
    /// already `owner`'s (then it is extended). One winner among nodes trying at once.
    async fn try_acquire(&self, name: &str, owner: &str, ttl: Duration)
        -> Result<bool, StoreError>;

    /// Extend `owner`'s lease to `ttl` from now; false when it is no longer `owner`'s (it
    /// expired and another node took it): the work must stop.
    async fn renew(&self, name: &str, owner: &str, ttl: Duration) -> Result<bool, StoreError>;

    /// Give the lease up (only `owner`'s own), so another node need not wait for it to expire.
    async fn release(&self, name: &str, owner: &str) -> Result<(), StoreError>;
}

/// A lease length in whole seconds, at least one.
pub(crate) fn ttl_secs(ttl: Duration) -> i64 {
    i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 4).max(1)
}
