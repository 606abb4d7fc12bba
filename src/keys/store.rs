//! The key directory: `keyring.json` plus `<kid>.key.pem` / `<kid>.crt.pem` per key, all written
//! atomically with mode 0600.

use std::fmt::Display;
use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use chrono::{DateTime, Utc};
use openssl::pkey::{Id, PKey};
use openssl::x509::X509;
use serde::{Deserialize, Serialize};

use super::material::kid_of;
use super::{KeyError, SigningKey};

pub(super) const KEYRING: &str = "keyring.json";
const KEY_SUFFIX: &str = ".key.pem";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct KeyringFile {
    pub keys: Vec<KeyRecord>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(super) struct KeyRecord {
    pub kid: String,
    pub key_file: String,
    pub cert_file: String,
    pub created_at: DateTime<Utc>,
    pub signs_from: DateTime<Utc>,
}

pub(super) fn store_error(path: &Path, message: impl Display) -> KeyError {
    KeyError::Store {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

pub(super) fn ensure_dir(dir: &Path) -> Result<(), KeyError> {
    // The mode only applies when we create the directory; an admin's own choice is left alone.
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| store_error(dir, format!("cannot create the key directory: {e}")))
}

/// `None` when there is no keyring yet (first start).
pub(super) fn read_keyring(dir: &Path) -> Result<Option<KeyringFile>, KeyError> {
    let path = dir.join(KEYRING);
    let bytes = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(store_error(&path, format!("cannot read: {e}"))),
    };
    let file: KeyringFile = serde_json::from_slice(&bytes)
        .map_err(|e| store_error(&path, format!("not a valid keyring: {e}")))?;
    if file.keys.is_empty() {
        return Err(store_error(&path, "lists no keys"));
    }
    for (i, record) in file.keys.iter().enumerate() {
        if file.keys[..i].iter().any(|r| r.kid == record.kid) {
            return Err(store_error(
                &path,
                format!("lists key {} twice", record.kid),
            ));
        }
    }
    Ok(Some(file))
}

pub(super) fn write_keyring(dir: &Path, file: &KeyringFile) -> Result<(), KeyError> {
    let path = dir.join(KEYRING);
    let mut json = serde_json::to_vec_pretty(file)
        .map_err(|e| store_error(&path, format!("cannot serialise: {e}")))?;
    json.push(b'\n');
    write_private(&path, &json)
}

/// Refuses a first start over a directory that already holds keys: the keyring was lost or
/// never written, and signing with a fresh key would silently break every relying party.
pub(super) fn refuse_orphan_keys(dir: &Path) -> Result<(), KeyError> {
    let entries = fs::read_dir(dir)
        .map_err(|e| store_error(dir, format!("cannot list the directory: {e}")))?;
    let orphan = entries
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(KEY_SUFFIX));
    match orphan {
        Some(entry) => Err(store_error(
            dir,
            format!(
                "holds {} but no {KEYRING}; restore {KEYRING} or move the key files away to \
                 generate a new key",
                entry.file_name().to_string_lossy()
            ),
        )),
        None => Ok(()),
    }
}

/// Writes the PEM files of a new key and returns the record to add to the keyring.
pub(super) fn persist_key(dir: &Path, key: &SigningKey) -> Result<KeyRecord, KeyError> {
    let record = KeyRecord {
        kid: key.kid.clone(),
        key_file: format!("{}{KEY_SUFFIX}", key.kid),
        cert_file: format!("{}.crt.pem", key.kid),
        created_at: key.created_at,
        signs_from: key.signs_from,
    };
    write_private(
        &dir.join(&record.key_file),
        &key.pkey.private_key_to_pem_pkcs8()?,
    )?;
    write_private(&dir.join(&record.cert_file), &key.cert.to_pem()?)?;
    Ok(record)
}

/// Reads and cross-checks one key: the certificate must hold the same public key, and the key
/// must be the one the keyring names.
pub(super) fn load_key(dir: &Path, record: &KeyRecord) -> Result<SigningKey, KeyError> {
    let key_path = dir.join(plain_file_name(dir, &record.key_file)?);
    let cert_path = dir.join(plain_file_name(dir, &record.cert_file)?);
    let read =
        |path: &Path| fs::read(path).map_err(|e| store_error(path, format!("cannot read: {e}")));

    let pkey = PKey::private_key_from_pem(&read(&key_path)?)
        .map_err(|e| store_error(&key_path, format!("not a PEM private key: {e}")))?;
    if pkey.id() != Id::RSA || pkey.bits() < 2048 {
        return Err(store_error(
            &key_path,
            "not an RSA key of at least 2048 bits",
        ));
    }
    let cert = X509::from_pem(&read(&cert_path)?)
        .map_err(|e| store_error(&cert_path, format!("not a PEM certificate: {e}")))?;
    if !cert.public_key()?.public_eq(&pkey) {
        return Err(store_error(
            &cert_path,
            format!("does not certify the key in {}", record.key_file),
        ));
    }
    let kid = kid_of(&pkey)?;
    if kid != record.kid {
        return Err(store_error(
            &key_path,
            format!("holds key {kid}, but {KEYRING} records {}", record.kid),
        ));
    }
    let key = SigningKey {
        kid,
        pkey,
        cert,
        created_at: record.created_at,
        signs_from: record.signs_from,
    };
    let (_, not_after) = key
        .validity()
        .ok_or_else(|| store_error(&cert_path, "validity dates are out of range"))?;
    if not_after < Utc::now() {
        tracing::warn!(kid = %key.kid, %not_after, file = %cert_path.display(),
            "signing certificate has expired; SAML service providers may reject it, rotate the key");
    }
    Ok(key)
}

/// The keyring is admin-editable, so its file names must not point outside the directory.
fn plain_file_name<'a>(dir: &Path, name: &'a str) -> Result<&'a str, KeyError> {
    if Path::new(name).file_name().and_then(|n| n.to_str()) == Some(name) {
        Ok(name)
    } else {
        Err(store_error(
            &dir.join(KEYRING),
            format!("file name {name:?} is not a plain file name"),
        ))
    }
}

/// Write to a temporary file then rename, so a crash never leaves a half-written key or
/// keyring behind.
fn write_private(path: &Path, contents: &[u8]) -> Result<(), KeyError> {
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = path.with_file_name(format!(".{file_name}.tmp{}", std::process::id()));
    let result = (|| {
        // A stale temp file from a crashed run of the same pid would keep its old mode.
        match fs::remove_file(&temp) {
            Err(e) if e.kind() != ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)?;
        file.write_all(contents)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&temp);
        return Err(store_error(path, format!("cannot write: {e}")));
    }
    // Best effort: make the rename itself durable.
    if let Some(dir) = path.parent() {
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}
