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
