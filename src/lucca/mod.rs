//! Lucca's legacy v3 directory API: a rate-limited client ([`LuccaClient`]) and, with the
//! `simulator` cargo feature (on by default), a simulator of a tenant (`simulator`) for tests,
//! `passerelle demo` and `cargo run --example lucca_simulator`.
//!
//! Every request of every client of one tenant goes through that tenant's [`RateLimiter`]
//! (Lucca allows 50 requests/minute per tenant, shared by all integrations), where a person
//! signing in ([`Priority::SignIn`]) always goes before batch work.
//!
//! May import `config/` only.

mod client;
mod error;
mod limiter;
mod model;
#[cfg(feature = "simulator")]
pub mod simulator;

#[cfg(all(test, feature = "simulator"))]
mod tests;

pub use client::{LuccaClient, DEFAULT_SIGN_IN_MAX_WAIT, MAX_PAGE_SIZE};
pub use error::LuccaError;
pub use limiter::{LimiterStats, Priority, RateLimiter, SlotUnavailable};
pub use model::{
    format_lucca_date, parse_lucca_datetime, ContractStatus, Department, DepartmentRef, LuccaUser,
    ManagerRef, NewUser, UserChanges, UserPage, DEFAULT_USER_FIELDS,
};
