//! Signing keys: generated on first start (RSA-2048 + self-signed X.509, files mode 0600),
//! loaded on later starts, rotated with a publish-before-sign delay. All signing goes through
//! OpenSSL with the parsed key kept in memory.
//!
//! STUB: the public surface below is the contract; the implementation is being written.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Serialize;

use crate::config::KeysConfig;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store {path}: {message}")]
    Store { path: String, message: String },
    #[error("crypto: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
}

/// One key pair with its certificate.
pub struct SigningKey {
    pub kid: String,
    pub pkey: PKey<Private>,
    pub cert: X509,
    pub created_at: DateTime<Utc>,
    pub signs_from: DateTime<Utc>,
}

impl SigningKey {
    /// A compact JWS (RS256, header `{"alg":"RS256","typ":"JWT","kid":…}`).
    pub fn sign_jwt<T: Serialize>(&self, _claims: &T) -> Result<String, KeyError> {
        todo!()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyStatus {
    pub kid: String,
    pub fingerprint_sha256: String,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    pub signs_from: DateTime<Utc>,
    pub state: String,
}

/// The shared handle on the key ring.
pub struct Keys {}

impl Keys {
    pub fn load_or_generate(_dir: &Path, _settings: &KeysConfig) -> Result<Keys, KeyError> {
        todo!()
    }
    pub fn signer(&self) -> Arc<SigningKey> {
        todo!()
    }
    pub fn published(&self) -> Vec<Arc<SigningKey>> {
        todo!()
    }
    pub fn jwks(&self) -> serde_json::Value {
        todo!()
    }
    pub fn verify_jwt(&self, _token: &str) -> Result<serde_json::Value, KeyError> {
        todo!()
    }
    pub fn rotate(&self) -> Result<KeyStatus, KeyError> {
        todo!()
    }
    pub fn reload(&self) -> Result<(), KeyError> {
        todo!()
    }
    pub fn status(&self) -> Vec<KeyStatus> {
        todo!()
    }
}
