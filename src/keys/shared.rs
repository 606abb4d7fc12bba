//! The key ring in the store, for nodes sharing a PostgreSQL database: each key's certificate
//! and its private key sealed under the KEK (`seal.rs`). Every node reads the same rows, so all
//! publish the same keys and switch signer at the same `signs_from`. The store serialises the
//! nodes that add a first key or stage one at once, so the ring never forks.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use openssl::pkey::{Id, PKey};
use openssl::x509::X509;

use super::material::{self, kid_of};
use super::ring::{later, Ring};
use super::seal::{wipe, Keks};
use super::{store, KeyError, SigningKey};
use crate::config::KeysConfig;
use crate::store::{SigningKeys, StoredSigningKey};

pub(super) struct SharedRing {
    pub store: Arc<dyn SigningKeys>,
    pub keks: Keks,
}

/// Whole seconds, as the store keeps times: the node that writes a key holds exactly what the
/// others read back.
pub(super) fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

fn time_of(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// Generation takes a noticeable fraction of a second: off the async workers.
pub(super) async fn generate(
    settings: &KeysConfig,
    now: DateTime<Utc>,
    signs_from: DateTime<Utc>,
) -> Result<SigningKey, KeyError> {
    let days = settings.certificate_validity_days;
    tokio::task::spawn_blocking(move || material::generate(days, now, signs_from))
        .await
        .map_err(|e| KeyError::Generate(e.to_string()))?
}

impl SharedRing {
    pub fn new(store: Arc<dyn SigningKeys>, settings: &KeysConfig) -> Result<SharedRing, KeyError> {
        Ok(SharedRing {
            store,
            keks: Keks::from_config(settings)?,
        })
    }

    /// The ring in the store; on an empty store, a first key is generated and stored, unless
    /// another node stores its own first (then this one is dropped and the other's read).
    pub async fn load_or_generate(&self, settings: &KeysConfig) -> Result<Ring, KeyError> {
        if self.store.signing_keys().await?.is_empty() {
            let now = whole_seconds(Utc::now());
            let key = generate(settings, now, now).await?;
            let row = self.row_of(&key)?;
            if self.store.add_first_signing_keys(&[row]).await? {
                tracing::info!(kid = %key.kid, "generated the first signing key of the shared key ring");
            } else {
                tracing::info!("another node stored the first signing key first; using it");
            }
        }
        self.read(None).await
    }

    /// Builds the ring the store holds, reusing keys already opened in `current`.
    pub async fn read(&self, current: Option<&Ring>) -> Result<Ring, KeyError> {
        let rows = self.store.signing_keys().await?;
        let keys = rows
            .iter()
            .map(|row| {
                let loaded = current.and_then(|r| r.keys().iter().find(|k| k.kid == row.kid));
                match loaded {
                    Some(k)
                        if k.signs_from.timestamp() == row.signs_from
                            && k.created_at.timestamp() == row.created_at =>
                    {
                        Ok(Arc::clone(k))
                    }
                    _ => self.key_of(row).map(Arc::new),
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ring::new(keys, None).ok_or(KeyError::EmptySharedRing)
    }

    /// Whether the store's rows are the keys `ring` holds (same kids, same times).
    pub async fn unchanged(&self, ring: &Ring) -> Result<bool, KeyError> {
        let rows = self.store.signing_keys().await?;
        Ok(rows.len() == ring.keys().len()
            && rows.iter().all(|row| {
                ring.keys().iter().any(|k| {
                    k.kid == row.kid
                        && k.signs_from.timestamp() == row.signs_from
                        && k.created_at.timestamp() == row.created_at
                })
            }))
    }

    /// Stage a fresh key signing from `now + rotation_delay`, unless one is staged already
    /// (by any node): the new key, or `None`.
    pub async fn stage(
        &self,
        settings: &KeysConfig,
        now: DateTime<Utc>,
    ) -> Result<Option<SigningKey>, KeyError> {
        let now = whole_seconds(now);
        let signs_from = whole_seconds(later(now, settings.rotation_delay));
        let key = generate(settings, now, signs_from).await?;
        let row = self.row_of(&key)?;
        Ok(self
            .store
            .add_staged_signing_key(&row, now.timestamp())
            .await?
            .then_some(key))
    }

    fn row_of(&self, key: &SigningKey) -> Result<StoredSigningKey, KeyError> {
        let mut der = key.pkey.private_key_to_pkcs8()?;
        let sealed = self.keks.seal(&key.kid, &der);
        wipe(&mut der);
        let (kek_id, sealed_key) = sealed?;
        Ok(StoredSigningKey {
            kid: key.kid.clone(),
            certificate: String::from_utf8_lossy(&key.cert.to_pem()?).into_owned(),
            kek_id,
            sealed_key,
            created_at: key.created_at.timestamp(),
            signs_from: key.signs_from.timestamp(),
        })
    }

    /// Opens and cross-checks one stored key, as `store::load_key` does for files: the
    /// certificate holds the same public key, and the key is the one the kid names.
    fn key_of(&self, row: &StoredSigningKey) -> Result<SigningKey, KeyError> {
        let bad = |message: String| KeyError::SharedKey {
            kid: row.kid.clone(),
            message,
        };
        let mut der = self.keks.open(&row.kid, &row.kek_id, &row.sealed_key)?;
        let pkey = PKey::private_key_from_pkcs8(&der);
        wipe(&mut der);
        let pkey = pkey.map_err(|e| bad(format!("not a PKCS#8 private key: {e}")))?;
        if pkey.id() != Id::RSA || pkey.bits() < 2048 {
            return Err(bad("not an RSA key of at least 2048 bits".into()));
        }
        let cert = X509::from_pem(row.certificate.as_bytes())
            .map_err(|e| bad(format!("not a PEM certificate: {e}")))?;
        if !cert.public_key()?.public_eq(&pkey) {
            return Err(bad(
                "the certificate does not certify the private key".into()
            ));
        }
        let kid = kid_of(&pkey)?;
        if kid != row.kid {
            return Err(bad(format!("the private key is key {kid}")));
        }
        let key = SigningKey {
            kid,
            pkey,
            cert,
            created_at: time_of(row.created_at),
            signs_from: time_of(row.signs_from),
        };
        if key.validity().is_none() {
            return Err(bad("certificate validity dates are out of range".into()));
        }
        Ok(key)
    }
}

/// Open every stored key under the configured KEKs, keeping nothing (`passerelle check`): the
/// first key that does not open is the error, named by its kid.
pub fn open_stored(rows: &[StoredSigningKey], settings: &KeysConfig) -> Result<(), KeyError> {
    let keks = Keks::from_config(settings)?;
    for row in rows {
        wipe(&mut keks.open(&row.kid, &row.kek_id, &row.sealed_key)?);
    }
    Ok(())
}

/// What `passerelle keys rewrap` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Rewrapped {
    /// Keys sealed again under the first KEK.
    pub resealed: Vec<String>,
    /// Keys that were sealed under it already.
    pub current: Vec<String>,
}

/// Seal every key of the shared ring under the first configured KEK (`[keys]
/// encryption_key`), opening each with whichever configured KEK sealed it. Afterwards the
/// previous KEKs can be dropped from every node's configuration.
pub async fn rewrap(
    store: Arc<dyn SigningKeys>,
    settings: &KeysConfig,
) -> Result<Rewrapped, KeyError> {
    let shared = SharedRing::new(store, settings)?;
    let mut done = Rewrapped::default();
    for row in shared.store.signing_keys().await? {
        if row.kek_id == shared.keks.sealing_id() {
            done.current.push(row.kid);
            continue;
        }
        let mut der = shared.keks.open(&row.kid, &row.kek_id, &row.sealed_key)?;
        let sealed = shared.keks.seal(&row.kid, &der);
        wipe(&mut der);
        let (kek_id, sealed_key) = sealed?;
        if !shared
            .store
            .reseal_signing_key(&row.kid, &row.sealed_key, &kek_id, &sealed_key)
            .await?
        {
            return Err(KeyError::SharedKey {
                kid: row.kid,
                message: "changed while being rewrapped (another rewrap at once?); run it again"
                    .into(),
            });
        }
        tracing::info!(kid = %row.kid, kek = %kek_id, "signing key sealed under the new key-encryption key");
        done.resealed.push(row.kid);
    }
    Ok(done)
}

/// Copy the key ring of a keys directory (`keyring.json` and its PEM files, as the SQLite mode
/// keeps it) into the store's empty ring, every key sealed under the first KEK, with its
/// `created_at` and `signs_from`: the nodes then publish and sign with the same keys as the
/// single node did. Returns the kids copied.
pub async fn import_dir(
    dir: &Path,
    store: Arc<dyn SigningKeys>,
    settings: &KeysConfig,
) -> Result<Vec<String>, KeyError> {
    let shared = SharedRing::new(store, settings)?;
    let file = store::read_keyring(dir)?
        .ok_or_else(|| store::store_error(&dir.join(store::KEYRING), "not found"))?;
    let rows = file
        .keys
        .iter()
        .map(|record| shared.row_of(&store::load_key(dir, record)?))
        .collect::<Result<Vec<_>, _>>()?;
    if !shared.store.add_first_signing_keys(&rows).await? {
        return Err(KeyError::ImportIntoNonEmpty);
    }
    Ok(rows.into_iter().map(|r| r.kid).collect())
}
