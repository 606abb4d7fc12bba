//! The Lucca request budget several nodes share: a sliding window of the requests sent to each
//! tenant and the block a 429 sets, both counted on the database's clock so that nodes whose
//! clocks differ still count one window.

use std::time::Duration;

use async_trait::async_trait;

use crate::store::StoreError;

/// A tenant name longer than this is not a URL origin.
pub const MAX_TENANT_BYTES: usize = 512;

/// What one request may take.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendRule {
    /// Requests allowed in any `window`.
    pub budget: u32,
    pub window: Duration,
    /// Slots this request may not take: it is sent only while fewer than
    /// `budget - kept_free` requests are in the window (batch work leaves room for sign-ins).
    pub kept_free: u32,
    /// Also keep to [`SendRule::burst`] (Passerelle's limiter always does).
    pub spread: bool,
}

/// The window is also split in this many parts, each allowed its share of the budget.
const BURST_PARTS: u32 = 6;

impl SendRule {
    /// The most requests in the window after which this one must wait (at least one).
    pub fn limit(&self) -> u32 {
        self.budget.saturating_sub(self.kept_free).max(1)
    }

    /// The budget spread over the window: at most a sixth of it (rounded down, at least one)
    /// in any sixth of the window — 8 requests per 10 s for Lucca's 50 a minute. The budget is
    /// the tenant's, shared with its other integrations, and a tenant may count over shorter
    /// windows than Lucca's minute: a burst of the whole budget would earn 429s and starve
    /// the others. Rounded down so that the clocks of our send and the tenant's arrival may
    /// disagree a little and the tenant still counts fewer than its share.
    /// `None` when the rule does not spread.
    pub fn burst(&self) -> Option<(u32, Duration)> {
        self.spread.then(|| {
            (
                (self.budget / BURST_PARTS).max(1),
                self.window / BURST_PARTS,
            )
        })
    }
}

/// The answer to [`LuccaBudget::take_send`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendSlot {
    /// Counted: send now.
    Taken,
    /// The window is full for this request: ask again after `retry_in` (when the send that
    /// holds the slot leaves the window).
    Full { retry_in: Duration },
    /// A 429 told every node to wait: nothing is sent for `retry_in`.
    Blocked { retry_in: Duration },
}

#[async_trait]
pub trait LuccaBudget: Send + Sync {
    /// Count one request to `tenant` if neither a block nor the window forbids it, in a
    /// transaction that every other node's take for the same tenant waits for (one winner for
    /// the last slot). Sends older than the window are deleted on the way, so the table holds
    /// about one window of sends per tenant.
    async fn take_send(&self, tenant: &str, rule: &SendRule) -> Result<SendSlot, StoreError>;

    /// Lucca answered 429: no node sends to `tenant` for `retry_after` (a longer block already
    /// set stays).
    async fn block_sends(&self, tenant: &str, retry_after: Duration) -> Result<(), StoreError>;
}

/// A duration in whole milliseconds, at most a year (a Retry-After cannot push anything
/// further) so that the database's arithmetic never overflows.
pub(crate) fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis())
        .unwrap_or(i64::MAX)
        .min(366 * 24 * 3600 * 1000)
}

/// Milliseconds from the database back to a duration (nothing negative).
pub(crate) fn from_millis(ms: i64) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}
