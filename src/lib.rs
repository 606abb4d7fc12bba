//! Passerelle: a self-hosted SSO identity provider bridge for Lucca.
//!
//! One identity pipeline, two protocol front ends (see `../shared/DESIGN.md` and the README):
//! `oidc/` and `saml/` parse requests, `login/` authenticates, `identity/` maps claims,
//! `provisioning/` makes sure the Lucca account exists, and the front end answers.
//!
//! `app/` composes them (the only room that knows every other; nothing imports it), and
//! `config/`, `web/` and `store/` are the floor the others stand on. `cargo test --test it
//! architecture` checks these floors.

pub mod admin;
pub mod app;
pub mod config;
pub mod cpu;
pub mod demo;
pub mod identity;
pub mod keys;
pub mod login;
pub mod lucca;
pub mod oidc;
pub mod pipeline;
pub mod provisioning;
pub mod saml;
pub mod store;
pub mod web;
