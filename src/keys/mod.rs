//! Signing keys: generated on first start (RSA-2048 + self-signed X.509, files mode 0600),
//! loaded on later starts, rotated with a publish-before-sign delay. All signing goes through
//! OpenSSL with the parsed key kept in memory.
//!
//! The key directory holds `keyring.json` (kid, file names, `created_at`, `signs_from` per key)
//! and `<kid>.key.pem` (PKCS#8) / `<kid>.crt.pem` per key. The kid is the RFC 7638 thumbprint.
//!
//! May import `config/` only.

mod jwt;
mod material;
mod ring;
mod store;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;
use chrono::{DateTime, SecondsFormat, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Serialize;

use crate::config::KeysConfig;
use ring::{later, KeyState, Ring};
use store::{store_error, KeyringFile, KEYRING};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store {path}: {message}")]
    Store { path: String, message: String },
    #[error("crypto: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error(
        "a rotation is already pending: key {kid} starts signing at {signs_from}; \
         rotate again after that"
    )]
    RotationPending {
        kid: String,
        signs_from: DateTime<Utc>,
    },
    #[error("token claims do not serialise: {0}")]
    Claims(#[from] serde_json::Error),
}

/// One key pair with its certificate.
pub struct SigningKey {
    pub kid: String,
    pub pkey: PKey<Private>,
    pub cert: X509,
    pub created_at: DateTime<Utc>,
    pub signs_from: DateTime<Utc>,
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
pub struct Keys {
    dir: PathBuf,
    settings: KeysConfig,
    /// Swapped whole, so `signer()` (called for every token) never takes a lock.
    ring: ArcSwap<Ring>,
    /// Serialises rotate and reload: a reload must not put back a ring read before a rotation.
    writer: Mutex<()>,
}

impl Keys {
    pub fn load_or_generate(dir: &Path, settings: &KeysConfig) -> Result<Keys, KeyError> {
        store::ensure_dir(dir)?;
        let ring = match store::read_keyring(dir)? {
            Some(file) => load_ring(dir, file, None)?,
            None => {
                store::refuse_orphan_keys(dir)?;
                let now = Utc::now();
                let key = material::generate(settings.certificate_validity_days, now, now)?;
                let file = KeyringFile {
                    keys: vec![store::persist_key(dir, &key)?],
                };
                store::write_keyring(dir, &file)?;
                tracing::info!(kid = %key.kid, dir = %dir.display(), "generated a signing key");
                new_ring(dir, vec![Arc::new(key)], file)?
            }
        };
        Ok(Keys {
            dir: dir.to_path_buf(),
            settings: settings.clone(),
            ring: ArcSwap::from_pointee(ring),
            writer: Mutex::new(()),
        })
    }

    /// The key that signs now.
    pub fn signer(&self) -> Arc<SigningKey> {
        self.signer_at(Utc::now())
    }

    pub fn signer_at(&self, now: DateTime<Utc>) -> Arc<SigningKey> {
        Arc::clone(self.ring.load().signer(now))
    }

    /// The keys relying parties must know now: signing, staged, and recently superseded.
    pub fn published(&self) -> Vec<Arc<SigningKey>> {
        self.published_at(Utc::now())
    }

    pub fn published_at(&self, now: DateTime<Utc>) -> Vec<Arc<SigningKey>> {
        self.ring.load().published(now, self.settings.retire_after)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .published()
            .iter()
            .filter_map(|key| {
                key.jwk()
                    .map_err(
                        |e| tracing::error!(kid = %key.kid, error = %e, "key left out of the JWKS"),
                    )
                    .ok()
            })
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The payload of an RS256 token signed by a published key. Expiry is not checked.
    pub fn verify_jwt(&self, token: &str) -> Result<serde_json::Value, KeyError> {
        jwt::verify_jwt(token, &self.published())
    }

    /// Stages a new key: published at once, signing after `rotation_delay`.
    pub fn rotate(&self) -> Result<KeyStatus, KeyError> {
        self.rotate_at(Utc::now())
    }

    pub fn rotate_at(&self, now: DateTime<Utc>) -> Result<KeyStatus, KeyError> {
        let _writer = self.lock_writer();
        // Start from the disk: the CLI or another server may have rotated since we loaded, and
        // stacking a second staged key would cut the first one's publication short.
        let current = load_ring(&self.dir, self.read_keyring()?, Some(&self.ring.load()))?;
        if let Some(staged) = current.staged(now) {
            return Err(KeyError::RotationPending {
                kid: staged.kid.clone(),
                signs_from: staged.signs_from,
            });
        }
        let signs_from = later(now, self.settings.rotation_delay);
        let key = material::generate(self.settings.certificate_validity_days, now, signs_from)?;
        let kid = key.kid.clone();
        let mut file = current.file.clone();
        file.keys.push(store::persist_key(&self.dir, &key)?);
        store::write_keyring(&self.dir, &file)?;

        let mut keys = current.keys().to_vec();
        keys.push(Arc::new(key));
        let ring = new_ring(&self.dir, keys, file)?;
        let status = self
            .status_of(&ring, now)
            .into_iter()
            .find(|s| s.kid == kid)
            .ok_or_else(|| store_error(&self.dir, "the new key vanished from the ring"))?;
        self.ring.store(Arc::new(ring));
        tracing::info!(%kid, %signs_from, "staged a new signing key");
        Ok(status)
    }

    /// Re-reads `keyring.json`, e.g. after `passerelle keys rotate` ran beside the server. On
    /// error the loaded ring stays in use.
    pub fn reload(&self) -> Result<(), KeyError> {
        let _writer = self.lock_writer();
        let file = self.read_keyring()?;
        let current = self.ring.load();
        if file == current.file {
            return Ok(());
        }
        let ring = load_ring(&self.dir, file, Some(&current))?;
        let kids: Vec<&str> = ring.keys().iter().map(|k| k.kid.as_str()).collect();
        tracing::info!(?kids, "reloaded the key ring");
        self.ring.store(Arc::new(ring));
        Ok(())
    }

    /// Every known key, oldest first, with its state now.
    pub fn status(&self) -> Vec<KeyStatus> {
        self.status_at(Utc::now())
    }

    pub fn status_at(&self, now: DateTime<Utc>) -> Vec<KeyStatus> {
        self.status_of(&self.ring.load(), now)
    }

    fn status_of(&self, ring: &Ring, now: DateTime<Utc>) -> Vec<KeyStatus> {
        ring.keys()
            .iter()
            .enumerate()
            .map(|(i, key)| {
                // Loading refused certificates whose dates do not convert.
                let (not_before, not_after) = key
                    .validity()
                    .unwrap_or((DateTime::UNIX_EPOCH, DateTime::UNIX_EPOCH));
                let state = match ring.state(i, now, self.settings.retire_after) {
                    KeyState::Signing => "signing".to_string(),
                    KeyState::Next => "next".to_string(),
                    KeyState::Retiring { until } => format!(
                        "retiring until {}",
                        until.to_rfc3339_opts(SecondsFormat::Secs, true)
                    ),
                    KeyState::Retired => "retired".to_string(),
                };
                KeyStatus {
                    kid: key.kid.clone(),
                    fingerprint_sha256: key
                        .fingerprint_sha256()
                        .unwrap_or_else(|e| format!("unavailable ({e})")),
                    not_before,
                    not_after,
                    signs_from: key.signs_from,
                    state,
                }
            })
            .collect()
    }

    fn read_keyring(&self) -> Result<KeyringFile, KeyError> {
        store::read_keyring(&self.dir)?
            .ok_or_else(|| store_error(&self.dir.join(KEYRING), "has disappeared"))
    }

    fn lock_writer(&self) -> MutexGuard<'_, ()> {
        // The guarded state is on disk and in the ArcSwap; a panic elsewhere cannot corrupt it.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn new_ring(dir: &Path, keys: Vec<Arc<SigningKey>>, file: KeyringFile) -> Result<Ring, KeyError> {
    Ring::new(keys, file).ok_or_else(|| store_error(&dir.join(KEYRING), "lists no keys"))
}

/// Builds the ring `file` describes, reusing keys already parsed in `current`.
fn load_ring(dir: &Path, file: KeyringFile, current: Option<&Ring>) -> Result<Ring, KeyError> {
    let keys = file
        .keys
        .iter()
        .map(|record| {
            let loaded = current.and_then(|r| r.keys().iter().find(|k| k.kid == record.kid));
            match loaded {
                // Same kid, same key pair: no need to read and parse the files again.
                Some(k)
                    if k.signs_from == record.signs_from && k.created_at == record.created_at =>
                {
                    Ok(Arc::clone(k))
                }
                Some(k) => Ok(Arc::new(SigningKey {
                    kid: k.kid.clone(),
                    pkey: k.pkey.clone(),
                    cert: k.cert.clone(),
                    created_at: record.created_at,
                    signs_from: record.signs_from,
                })),
                None => store::load_key(dir, record).map(Arc::new),
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    new_ring(dir, keys, file)
}

#[cfg(test)]
mod tests;
