//! Typed configuration: the TOML file, `PASSERELLE_*` environment overrides, secrets read from
//! `*_file` keys, defaults, and validation whose every message names the offending key.
//!
//! `types.rs` holds the schema, `load.rs` reading it, `validate.rs` (with `secrets.rs` and
//! `hardening.rs`) checking it. This room imports no other room of ours: everything else
//! imports it. `examples/passerelle.toml` documents every key; keep the two in step.

mod culture;
mod hardening;
mod load;
pub mod secrets;
pub mod store;
mod types;
mod validate;

pub use load::{ConfigError, Position, ENV_OVERRIDES};
pub use store::StoreSettings;
pub use types::*;
use validate::Validator;
pub use validate::{check_password_hash, looks_like_email, Problem, Severity, KNOWN_MODULES};

#[cfg(test)]
mod tests;
