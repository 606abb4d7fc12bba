//! Provisioning: make sure the person signing in has a Lucca account that Lucca will accept
//! and that carries the attributes Passerelle owns.
//!
//! - [`decision`]: the one rule set (contract state, duplicates, owned-attribute diff, what a
//!   new account carries, which department and manager), used by JIT and migrations alike;
//! - [`Jit`]: the sign-in step, its records in `lucca_links` and the audit log, the preview;
//! - the outbox worker ([`spawn_outbox_worker`]): deferred, retried attribute updates;
//! - [`migration`]: the batch SSO migration jobs (`/admin/migrations`, `passerelle migrate`).
//!
//! May import `config/`, `web/`, `store/`, `identity/`, `login/` (the directory) and `lucca/`; no
//! protocol room, no `app/`.

#[cfg(all(test, feature = "simulator"))]
mod agreement_tests;
pub mod decision;
mod jit;
pub mod migration;
mod outbox;

pub use jit::{Denied, Granted, Jit};
pub use outbox::{backoff, spawn_outbox_worker};
