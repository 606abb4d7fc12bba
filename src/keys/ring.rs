//! The key ring on disk: `keyring.json` (when each key signs) plus one PKCS#8 key and one
//! certificate PEM per key, all mode 0600.

use std::fs;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use chrono::{DateTime, Duration, Utc};
use openssl::asn1::Asn1Time;
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use openssl::x509::extension::KeyUsage;
use openssl::x509::{X509NameBuilder, X509};
use serde::{Deserialize, Serialize};

use super::{KeyError, KeyStatus, SigningKey};
use crate::config::KeysConfig;

const RING_FILE: &str = "keyring.json";

#[derive(Serialize, Deserialize)]
struct RingFile {
    keys: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    kid: String,
    created_at: DateTime<Utc>,
    signs_from: DateTime<Utc>,
}

/// Keys in the order they start signing.
pub struct Ring {
    keys: Vec<Arc<SigningKey>>,
}

fn store_err(path: &Path, message: impl std::fmt::Display) -> KeyError {
    KeyError::Store {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

/// RFC 7638 JWK thumbprint of an RSA public key: SHA-256 over `{"e":…,"kty":"RSA","n":…}`.
pub fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let b64 = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
    let canonical = format!(r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#, b64(e), b64(n));
    b64(&openssl::sha::sha256(canonical.as_bytes()))
}

/// Write a file readable by its owner only, atomically (temp file + rename).
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), KeyError> {
    let tmp = path.with_extension("tmp");
    let mut options = fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut f = options.open(&tmp).map_err(|e| store_err(&tmp, e))?;
    f.write_all(bytes)
        .and_then(|_| f.sync_all())
        .map_err(|e| store_err(&tmp, e))?;
    fs::rename(&tmp, path).map_err(|e| store_err(path, e))
}

fn asn1_to_utc(t: &openssl::asn1::Asn1TimeRef) -> DateTime<Utc> {
    let epoch = Asn1Time::from_unix(0).ok();
    match epoch.and_then(|e| e.diff(t).ok()) {
        Some(d) => {
            DateTime::<Utc>::UNIX_EPOCH
                + Duration::days(d.days as i64)
                + Duration::seconds(d.secs as i64)
        }
        None => DateTime::<Utc>::UNIX_EPOCH,
    }
}

fn generate(
    settings: &KeysConfig,
    now: DateTime<Utc>,
    signs_from: DateTime<Utc>,
) -> Result<SigningKey, KeyError> {
    let pkey = PKey::from_rsa(Rsa::generate(2048)?)?;
    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_text("CN", "Passerelle signing key")?;
    let name = name.build();
    let mut serial = BigNum::new()?;
    serial.rand(128, MsbOption::MAYBE_ZERO, false)?;
    let mut builder = X509::builder()?;
    builder.set_version(2)?;
    let serial = serial.to_asn1_integer()?;
    builder.set_serial_number(&serial)?;
    builder.set_subject_name(&name)?;
    builder.set_issuer_name(&name)?;
    builder.set_pubkey(&pkey)?;
    // A little in the past, so a peer whose clock lags does not see a "not yet valid" certificate.
    let not_before = Asn1Time::from_unix(now.timestamp() - 3600)?;
    builder.set_not_before(&not_before)?;
    let days = i64::from(settings.certificate_validity_days.max(1));
    let not_after = Asn1Time::from_unix(now.timestamp() + days * 86_400)?;
    builder.set_not_after(&not_after)?;
    builder.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    builder.sign(&pkey, MessageDigest::sha256())?;
    let cert = builder.build();
    let rsa = pkey.rsa()?;
    let kid = thumbprint(&rsa.n().to_vec(), &rsa.e().to_vec());
    Ok(SigningKey {
        kid,
        pkey,
        cert,
        created_at: now,
        signs_from,
    })
}

impl Ring {
    pub fn load_or_init(
        dir: &Path,
        settings: &KeysConfig,
        now: DateTime<Utc>,
    ) -> Result<Ring, KeyError> {
        if dir.join(RING_FILE).exists() {
            return Self::load_existing(dir);
        }
        fs::create_dir_all(dir).map_err(|e| store_err(dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = fs::set_permissions(dir, fs::Permissions::from_mode(0o700));
        }
        let mut ring = Ring { keys: Vec::new() };
        ring.add_key(dir, settings, now, now)?;
        tracing::info!(kid = %ring.keys[0].kid, dir = %dir.display(), "generated a new signing key");
        Ok(ring)
    }

    pub fn load_existing(dir: &Path) -> Result<Ring, KeyError> {
        let path = dir.join(RING_FILE);
        let text = fs::read_to_string(&path).map_err(|e| store_err(&path, e))?;
        let file: RingFile = serde_json::from_str(&text)
            .map_err(|e| store_err(&path, format!("unreadable: {e}")))?;
        if file.keys.is_empty() {
            return Err(store_err(&path, "lists no key"));
        }
        let mut keys = Vec::with_capacity(file.keys.len());
        for entry in file.keys {
            let key_path = dir.join(format!("{}.key.pem", entry.kid));
            let cert_path = dir.join(format!("{}.crt.pem", entry.kid));
            let pem = fs::read(&key_path).map_err(|e| store_err(&key_path, e))?;
            let pkey = PKey::private_key_from_pem(&pem)
                .map_err(|e| store_err(&key_path, format!("not a PEM private key: {e}")))?;
            let cert_pem = fs::read(&cert_path).map_err(|e| store_err(&cert_path, e))?;
            let cert = X509::from_pem(&cert_pem)
                .map_err(|e| store_err(&cert_path, format!("not a PEM certificate: {e}")))?;
            let rsa = pkey
                .rsa()
                .map_err(|e| store_err(&key_path, format!("not an RSA key: {e}")))?;
            if thumbprint(&rsa.n().to_vec(), &rsa.e().to_vec()) != entry.kid {
                return Err(store_err(&key_path, "does not match its kid"));
            }
            if !cert
                .public_key()
                .map(|p| p.public_eq(&pkey))
                .unwrap_or(false)
            {
                return Err(store_err(&cert_path, "does not belong to the key"));
            }
            keys.push(Arc::new(SigningKey {
                kid: entry.kid,
                pkey,
                cert,
                created_at: entry.created_at,
                signs_from: entry.signs_from,
            }));
        }
        keys.sort_by_key(|k| k.signs_from);
        Ok(Ring { keys })
    }

    fn save(&self, dir: &Path) -> Result<(), KeyError> {
        let file = RingFile {
            keys: self
                .keys
                .iter()
                .map(|k| Entry {
                    kid: k.kid.clone(),
                    created_at: k.created_at,
                    signs_from: k.signs_from,
                })
                .collect(),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| store_err(dir, e))?;
        write_private(&dir.join(RING_FILE), &text)
    }

    pub fn add_key(
        &mut self,
        dir: &Path,
        settings: &KeysConfig,
        now: DateTime<Utc>,
        signs_from: DateTime<Utc>,
    ) -> Result<Arc<SigningKey>, KeyError> {
        let key = generate(settings, now, signs_from)?;
        write_private(
            &dir.join(format!("{}.key.pem", key.kid)),
            &key.pkey.private_key_to_pem_pkcs8()?,
        )?;
        write_private(
            &dir.join(format!("{}.crt.pem", key.kid)),
            &key.cert.to_pem()?,
        )?;
        let key = Arc::new(key);
        self.keys.push(key.clone());
        self.keys.sort_by_key(|k| k.signs_from);
        self.save(dir)?;
        Ok(key)
    }

    pub fn keys(&self) -> &[Arc<SigningKey>] {
        &self.keys
    }

    fn signer_index(&self, now: DateTime<Utc>) -> usize {
        self.keys
            .iter()
            .rposition(|k| k.signs_from <= now)
            .unwrap_or(0)
    }

    pub fn signer_at(&self, now: DateTime<Utc>) -> Arc<SigningKey> {
        self.keys[self.signer_index(now)].clone()
    }

    pub fn pending_at(&self, now: DateTime<Utc>) -> Option<&Arc<SigningKey>> {
        self.keys.iter().find(|k| k.signs_from > now)
    }

    /// When key `i` stopped signing (the next key's start), if it has.
    fn superseded_at(&self, i: usize, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.keys
            .get(i + 1)
            .map(|next| next.signs_from)
            .filter(|t| *t <= now)
    }

    pub fn published_at(&self, now: DateTime<Utc>, settings: &KeysConfig) -> Vec<Arc<SigningKey>> {
        let retire = Duration::from_std(settings.retire_after).unwrap_or(Duration::hours(24));
        let signer = self.signer_index(now);
        let mut out = vec![self.keys[signer].clone()];
        for (i, key) in self.keys.iter().enumerate() {
            if i == signer {
                continue;
            }
            let next = key.signs_from > now;
            let retiring = self.superseded_at(i, now).is_some_and(|t| now < t + retire);
            if next || retiring {
                out.push(key.clone());
            }
        }
        out
    }

    pub fn status_of(
        &self,
        key: &SigningKey,
        now: DateTime<Utc>,
        settings: &KeysConfig,
    ) -> KeyStatus {
        let retire = Duration::from_std(settings.retire_after).unwrap_or(Duration::hours(24));
        let i = self.keys.iter().position(|k| k.kid == key.kid).unwrap_or(0);
        let state = if key.signs_from > now {
            "next".to_string()
        } else if i == self.signer_index(now) {
            "signing".to_string()
        } else {
            match self.superseded_at(i, now) {
                Some(t) if now < t + retire => {
                    format!("retiring until {}", (t + retire).to_rfc3339())
                }
                _ => "retired".to_string(),
            }
        };
        KeyStatus {
            kid: key.kid.clone(),
            fingerprint_sha256: key.fingerprint_sha256(),
            not_before: asn1_to_utc(key.cert.not_before()),
            not_after: asn1_to_utc(key.cert.not_after()),
            signs_from: key.signs_from,
            state,
        }
    }
}
