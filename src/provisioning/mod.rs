//! Provisioning: make sure the person signing in has a Lucca account that Lucca will accept
//! and that carries the attributes Passerelle owns.
//!
//! - [`decision`]: the one rule set (contract state, duplicates, owned-attribute diff, what a
//!   new account carries, which department and manager), used by JIT and migrations alike;
//! - [`Jit`]: the sign-in step, its records in `lucca_links` and the audit log, the preview;
//! - the outbox worker ([`spawn_outbox_worker`]): deferred, retried attribute updates;
//! - [`migration`]: the batch SSO migration jobs (`/admin/migrations`, `passerelle migrate`);
//! - [`sync`]: the directory sync (`[lucca] sync_interval`, `/admin/sync`), and [`follow`],
//!   what it, webhooks and the refresh re-check do with what Lucca says about an account;
//! - [`revocation`]: the [`AccessRevocation`] port the access side implements.
//!
//! May import `config/`, `web/`, `store/`, `identity/`, `login/` (the directory) and `lucca/`; no
//! protocol room, no `app/`.

#[cfg(all(test, feature = "simulator"))]
mod agreement_tests;
pub mod decision;
pub mod follow;
mod jit;
pub mod migration;
mod outbox;
pub mod revocation;
pub mod roles;
pub mod sync;
pub mod webhooks;

pub use follow::Follower;
pub use jit::{Denied, Granted, Jit};
pub use outbox::{backoff, spawn_outbox_worker};
pub use revocation::{AccessRevocation, PersonRef, RevocationReason, RevokeSummary};

/// HELP texts of the metrics this room records (call once the recorder is installed).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "passerelle_jit_total",
        "Just-in-time decisions at sign-in by event and outcome (unchanged, created, updated_queued, leaver, …)"
    );
    metrics::describe_counter!(
        "passerelle_sync_runs_total",
        "Directory sync runs by outcome (ok, failed)"
    );
    metrics::describe_histogram!(
        "passerelle_sync_run_seconds",
        metrics::Unit::Seconds,
        "How long a directory sync run took"
    );
    metrics::describe_gauge!(
        "passerelle_sync_lag_seconds",
        metrics::Unit::Seconds,
        "Seconds since the start of the last directory sync run that finished"
    );
    metrics::describe_counter!(
        "passerelle_revocations_total",
        "Access revocations asked because Lucca says a person has left, by reason and source (sync, webhook, sign_in, refresh)"
    );
    metrics::describe_counter!(
        "passerelle_revocations_failed_total",
        "Access revocations that failed (retried at the next pass), by source"
    );
    metrics::describe_counter!(
        "passerelle_lucca_webhook_events_total",
        "Lucca webhook deliveries by outcome (queued, duplicate, ignored, unauthenticated, bad_request, busy)"
    );
    metrics::describe_gauge!(
        "passerelle_lucca_webhook_queue_depth",
        "Employees waiting to be re-read after a Lucca webhook"
    );
    metrics::describe_counter!(
        "passerelle_lucca_roles_changed_total",
        "Lucca habilitedRoles written from the role table, by source (sign_in, sync)"
    );
}
