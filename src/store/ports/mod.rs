//! The ports: one trait per need, each with the types that cross it (records, rows, the size
//! limits every backend applies). Nothing here names a database driver; every backend
//! implements all of them and passes the conformance suite (`store/conformance.rs`).

pub mod audit;
pub mod audit_query;
pub mod grant_activity;
pub mod health;
pub mod housekeeping;
pub mod leases;
pub mod login_failures;
pub mod login_requests;
pub mod lucca_budget;
pub mod lucca_links;
pub mod migration_jobs;
pub mod oauth;
pub mod outbox;
pub mod person_revocations;
pub mod saml_request_ids;
pub mod sessions;
pub mod signing_keys;
pub mod sync_state;
pub mod upstream_identities;

pub use audit::{AuditEntry, AuditEvent, AuditLog, CappedAuditEvent, TimedAuditEvent};
pub use audit_query::{AuditFilter, AuditPage, AuditQuery, MAX_AUDIT_PAGE};
pub use grant_activity::{GrantActivity, GrantActivityLog};
pub use health::Health;
pub use housekeeping::Housekeeping;
pub use leases::Leases;
pub use login_failures::{FailureKey, LoginFailures};
pub use login_requests::{LoginRequests, PendingRequest};
pub use lucca_budget::{LuccaBudget, SendRule, SendSlot};
pub use lucca_links::{LuccaLink, LuccaLinks};
pub use migration_jobs::{
    MigrationClassCount, MigrationJobRecord, MigrationJobs, MigrationRowOutcome,
    MigrationRowRecord, NewMigrationRow,
};
pub use oauth::{
    CodeRecord, ConsumedCode, GrantRecord, NewGrant, OAuthStore, PeekedCode, RefreshLookup,
    TokenOwner,
};
pub use outbox::{Outbox, OutboxRow};
pub use person_revocations::{LiveTokens, PersonRevocations};
pub use saml_request_ids::SamlRequestIds;
pub use sessions::{SaveExisting, SessionBackend, Sessions};
pub use signing_keys::{SigningKeys, StoredSigningKey};
pub use sync_state::{SyncState, SyncStateRecord};
pub use upstream_identities::{UpstreamIdentities, UpstreamIdentity};
