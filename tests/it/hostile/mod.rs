//! The hostile-input corpus: per protocol, the attacks a pentester tries against a running
//! server. Every test asserts the refusal *and* that nothing changed (no session created or
//! ended, nothing posted or redirected to the attacker, no single-use value consumed, the audit
//! log saying "refused").
//!
//! One file per protocol; the other protocols' files (`oidc.rs`, `login.rs`, …) join this
//! module next to `saml.rs`.

mod saml;
