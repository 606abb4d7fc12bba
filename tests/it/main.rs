//! Integration tests: each starts the real server on an ephemeral loopback port with its own
//! temporary data directory, and drives it over HTTP. One binary, to keep link time down.

mod common;

mod architecture;

mod bridge;
mod claims;
mod cli;
mod console;
mod hostile;
// These two drive the in-process Lucca simulator (the default `simulator` feature).
// The admin console in headless Chromium (it runs a migration against the simulator).
#[cfg(feature = "simulator")]
mod browser;
#[cfg(feature = "simulator")]
mod follow;
#[cfg(feature = "simulator")]
mod jit;
#[cfg(feature = "simulator")]
mod migrations;
mod oidc;
mod postgres;
mod revoke;
mod saml;
mod storage;
mod web;
