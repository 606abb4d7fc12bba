//! The hostile-input corpus: per protocol, the attacks a pentester tries against a running
//! server, each asserting the refusal and that nothing changed.
//!
//! (The SAML part of the corpus lives beside these modules; merge their `mod` lines here.)

mod login;
mod oidc;
mod web_support;
