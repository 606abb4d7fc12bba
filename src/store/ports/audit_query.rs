//! Reading the audit log back: filters, newest first, paged by id. One query serves the admin
//! API (`GET /admin/audit`) and the console's audit page; a port of its own so the write path
//! (`AuditLog`) can change without touching it.

use async_trait::async_trait;

use crate::store::{AuditEntry, StoreError};

/// The most entries one page holds.
pub const MAX_AUDIT_PAGE: i64 = 1000;

/// What to read. Every filter is optional; `None` matches everything.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Exact event name (`login`, `revoked`, `keys.rotate`…).
    pub event: Option<String>,
    pub outcome: Option<String>,
    /// Exact subject (the person).
    pub subject: Option<String>,
    pub client: Option<String>,
    /// Unix seconds, inclusive.
    pub since: Option<i64>,
    /// Unix seconds, inclusive.
    pub until: Option<i64>,
    /// Only entries with a smaller id: the cursor of the next page.
    pub before: Option<i64>,
    /// Entries per page, clamped to 1..=[`MAX_AUDIT_PAGE`].
    pub limit: i64,
}

/// One page, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditPage {
    pub entries: Vec<AuditEntry>,
    /// The `before` of the next (older) page; `None` on the last page.
    pub next_before: Option<i64>,
}

#[async_trait]
pub trait AuditQuery: Send + Sync {
    async fn query(&self, filter: &AuditFilter) -> Result<AuditPage, StoreError>;
}

/// The page from `limit + 1` rows read (newest first): the extra row only says there is more.
pub fn page_of(mut rows: Vec<AuditEntry>, limit: i64) -> AuditPage {
    let limit = usize::try_from(limit.clamp(1, MAX_AUDIT_PAGE)).unwrap_or(1);
    let more = rows.len() > limit;
    rows.truncate(limit);
    AuditPage {
        next_before: more.then(|| rows.last().map(|e| e.id)).flatten(),
        entries: rows,
    }
}
