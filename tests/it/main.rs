//! Integration tests: each starts the real server on an ephemeral loopback port with its own
//! temporary data directory, and drives it over HTTP. One binary, to keep link time down.

mod common;

mod access;
mod architecture;

mod bridge;
mod claims;
mod cli;
mod console;
mod hostile;
// The admin console in headless Chromium (it runs a migration against the simulator).
#[cfg(feature = "simulator")]
mod browser;
// These drive the in-process Lucca simulator (the default `simulator` feature).
#[cfg(feature = "simulator")]
mod follow;
#[cfg(feature = "simulator")]
mod jit;
#[cfg(feature = "simulator")]
mod migrations;
mod oidc;
mod pages;
mod pg_keys;
mod postgres;
mod revoke;
mod saml;
// Several nodes share one Lucca budget (against the simulator) and one sign-in throttle.
#[cfg(feature = "simulator")]
mod shared_budgets;
mod storage;
// Built-in TLS on loopback, with certificates made at test time.
mod tls;
#[cfg(feature = "simulator")]
mod waiting;
mod web;
