//! Passerelle: a self-hosted SSO identity provider bridge for Lucca.
//!
//! One identity pipeline, two protocol front ends (see `../shared/DESIGN.md` and the README):
//! `oidc/` and `saml/` parse requests, `login/` authenticates, `identity/` maps claims,
//! `provisioning/` makes sure the Lucca account exists, and the front end answers.

pub mod app;
pub mod config;
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
