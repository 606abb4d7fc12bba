//! Signing keys: generated on first start (RSA-2048 + self-signed X.509), loaded on later
//! starts, rotated with a publish-before-sign delay. All signing goes through OpenSSL with the
//! parsed key kept in memory.
//!
//! Two homes for the ring, one behaviour:
//! - **files** (the SQLite mode): the key directory holds `keyring.json` (kid, file names,
//!   `created_at`, `signs_from` per key) and `<kid>.key.pem` (PKCS#8) / `<kid>.crt.pem` per key,
//!   mode 0600 (`store.rs`);
//! - **the store** (PostgreSQL, several nodes): one row per key, the private key sealed under
//!   `[keys] encryption_key` (`seal.rs`, `shared.rs`); every node re-reads the ring every
//!   `[keys] reload_interval`, so a key staged on one is published by all.
//!
//! The kid is the RFC 7638 thumbprint. May import `config/` and `store/` (its port) only.

mod jwt;
mod material;
mod ring;
mod seal;
mod shared;
mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use chrono::{DateTime, SecondsFormat, Utc};
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;
use serde::Serialize;

use crate::config::{Config, KeysConfig};
use crate::store::{SigningKeys, StoreError};
use ring::{later, KeyState, Ring};
pub use shared::{import_dir, open_stored, rewrap, Rewrapped};
use shared::{whole_seconds, SharedRing};
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
    #[error("key generation failed: {0}")]
    Generate(String),
    #[error(
        "keys.encryption_key is not set: with [store] url (PostgreSQL) the private signing keys \
         are kept in the database, encrypted under it; generate one with \
         `openssl rand -base64 32` and give every node the same"
    )]
    NoEncryptionKey,
    #[error("{key}: {message}")]
    BadEncryptionKey { key: String, message: String },
    #[error(
        "signing key {kid} in the database is sealed under key-encryption key {kek_id}, which is \
         not configured here (this node has {configured}): set [keys] encryption_key (or \
         previous_encryption_keys) to the key the other nodes use"
    )]
    UnknownEncryptionKey {
        kid: String,
        kek_id: String,
        configured: String,
    },
    #[error("signing key {kid} in the database cannot be opened: {why}")]
    Unseal { kid: String, why: String },
    #[error("signing key {kid} in the database: {message}")]
    SharedKey { kid: String, message: String },
    #[error("the key ring in the database: {0}")]
    Database(#[from] StoreError),
    #[error("the key ring in the database holds no keys")]
    EmptySharedRing,
    #[error("another node changed the key ring at the same moment; try again")]
    ConcurrentChange,
    #[error(
        "the database already holds signing keys: `passerelle keys import` only fills an empty \
         key ring"
    )]
    ImportIntoNonEmpty,
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

/// Where the ring lives.
enum Home {
    Files(PathBuf),
    Shared(SharedRing),
}

/// The shared handle on the key ring.
pub struct Keys {
    home: Home,
    settings: KeysConfig,
    /// Swapped whole, so `signer()` (called for every token) never takes a lock.
    ring: ArcSwap<Ring>,
    /// Serialises rotate and reload: a reload must not put back a ring read before a rotation.
    writer: tokio::sync::Mutex<()>,
}

impl Keys {
    /// The ring this configuration names: in the store when several nodes share it (`[store]
    /// url`), refused without `[keys] encryption_key`; else the files of `server.keys_dir`.
    pub async fn open(config: &Config, store: &crate::store::Store) -> Result<Keys, KeyError> {
        if config.store.url().is_some() {
            Keys::open_shared(store.signing_keys().clone(), &config.keys).await
        } else {
            Keys::load_or_generate(&config.server.keys_dir, &config.keys)
        }
    }

    /// The ring kept in `store`: loaded, or generated once on an empty store (nodes starting
    /// together end with one key). Every key must open under the configured KEKs.
    pub async fn open_shared(
        store: Arc<dyn SigningKeys>,
        settings: &KeysConfig,
    ) -> Result<Keys, KeyError> {
        let shared = SharedRing::new(store, settings)?;
        let ring = shared.load_or_generate(settings).await?;
        Ok(Keys {
            home: Home::Shared(shared),
            settings: settings.clone(),
            ring: ArcSwap::from_pointee(ring),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// The ring in the files of `dir`, generated there on first start.
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
            home: Home::Files(dir.to_path_buf()),
            settings: settings.clone(),
            ring: ArcSwap::from_pointee(ring),
            writer: tokio::sync::Mutex::new(()),
        })
    }

    /// Whether the ring is the one several nodes share in the store.
    pub fn is_shared(&self) -> bool {
        matches!(self.home, Home::Shared(_))
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

    /// Stages a new key: published at once, signing after `rotation_delay`. With the shared
    /// ring, on every node within `reload_interval`; a key staged by any node refuses a second.
    pub async fn rotate(&self) -> Result<KeyStatus, KeyError> {
        self.rotate_at(Utc::now()).await
    }

    pub async fn rotate_at(&self, now: DateTime<Utc>) -> Result<KeyStatus, KeyError> {
        let _writer = self.writer.lock().await;
        let (kid, ring) = match &self.home {
            Home::Files(dir) => {
                // Start from the disk: the CLI or another server may have rotated since we
                // loaded, and stacking a second staged key would cut the first one's
                // publication short.
                let current = load_ring(dir, self.read_keyring(dir)?, Some(&self.ring.load()))?;
                refuse_pending(&current, now)?;
                let signs_from = later(now, self.settings.rotation_delay);
                let key = shared::generate(&self.settings, now, signs_from).await?;
                let kid = key.kid.clone();
                let mut file = current.file.clone().unwrap_or(KeyringFile { keys: vec![] });
                file.keys.push(store::persist_key(dir, &key)?);
                store::write_keyring(dir, &file)?;
                let mut keys = current.keys().to_vec();
                keys.push(Arc::new(key));
                (kid, new_ring(dir, keys, file)?)
            }
            Home::Shared(shared) => {
                let now = whole_seconds(now);
                let current = shared.read(Some(&self.ring.load())).await?;
                refuse_pending(&current, now)?;
                match shared.stage(&self.settings, now).await? {
                    Some(key) => (key.kid, shared.read(Some(&current)).await?),
                    None => {
                        // Another node staged one since we read the ring: report its key.
                        let ring = shared.read(Some(&current)).await?;
                        refuse_pending(&ring, now)?;
                        self.ring.store(Arc::new(ring));
                        return Err(KeyError::ConcurrentChange);
                    }
                }
            }
        };
        let status = self
            .status_of(&ring, now)
            .into_iter()
            .find(|s| s.kid == kid)
            .ok_or_else(|| KeyError::Generate("the new key vanished from the ring".into()))?;
        self.ring.store(Arc::new(ring));
        tracing::info!(%kid, signs_from = %status.signs_from, "staged a new signing key");
        Ok(status)
    }

    /// Re-reads the ring: `keyring.json` (e.g. after `passerelle keys rotate` ran beside the
    /// server), or the store (a key staged by another node). On error the loaded ring stays in
    /// use.
    pub async fn reload(&self) -> Result<(), KeyError> {
        let _writer = self.writer.lock().await;
        let current = self.ring.load_full();
        let ring = match &self.home {
            Home::Files(dir) => {
                let file = self.read_keyring(dir)?;
                if current.file.as_ref() == Some(&file) {
                    return Ok(());
                }
                load_ring(dir, file, Some(&current))?
            }
            Home::Shared(shared) => {
                if shared.unchanged(&current).await? {
                    return Ok(());
                }
                shared.read(Some(&current)).await?
            }
        };
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

    fn read_keyring(&self, dir: &Path) -> Result<KeyringFile, KeyError> {
        store::read_keyring(dir)?.ok_or_else(|| store_error(&dir.join(KEYRING), "has disappeared"))
    }
}

/// A staged key (published, not yet signing) refuses a second rotation until it signs.
fn refuse_pending(ring: &Ring, now: DateTime<Utc>) -> Result<(), KeyError> {
    match ring.staged(now) {
        Some(staged) => Err(KeyError::RotationPending {
            kid: staged.kid.clone(),
            signs_from: staged.signs_from,
        }),
        None => Ok(()),
    }
}

fn new_ring(dir: &Path, keys: Vec<Arc<SigningKey>>, file: KeyringFile) -> Result<Ring, KeyError> {
    Ring::new(keys, Some(file)).ok_or_else(|| store_error(&dir.join(KEYRING), "lists no keys"))
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
