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
pub use limiter::{
    BudgetScope, ClusterWindow, InProcessWindow, LimiterStats, Priority, RateLimiter, SendWindow,
    Slot, SlotUnavailable, WindowError, CLUSTER_SEND_MARGIN,
};
pub use model::{
    format_lucca_date, parse_lucca_datetime, ContractStatus, Department, DepartmentRef, LegalUnit,
    LuccaUser, ManagerRef, NewUser, UserChanges, UserPage, DEFAULT_USER_FIELDS,
};

/// HELP texts of the metrics this room records (call once the recorder is installed).
pub fn describe_metrics() {
    metrics::describe_counter!(
        "passerelle_lucca_requests_total",
        "Lucca API requests by operation and outcome (ok, rate_limited, not_found, client_error, server_error, refused_key, unavailable, budget_exhausted)"
    );
    metrics::describe_counter!(
        "passerelle_lucca_rate_limited_total",
        "429 answers from Lucca (its per-tenant budget is shared with every integration)"
    );
    metrics::describe_gauge!(
        "passerelle_lucca_queue_depth",
        "Requests waiting for a slot of the Lucca budget, by priority"
    );
    metrics::describe_histogram!(
        "passerelle_lucca_queue_wait_seconds",
        metrics::Unit::Seconds,
        "Time a request waited for a slot of the Lucca budget, by priority"
    );
}
