//! The hostile-input corpus: per protocol, the attacks a pentester tries against a running
//! server. Every test asserts the refusal *and* that nothing changed (no session created or
//! ended, nothing posted or redirected to the attacker, no single-use value consumed, the audit
//! log saying "refused").
//!
//! One file per protocol.

mod login;
mod oidc;
mod saml;
mod web_support;
