//! Sealing private keys for the shared key ring: AES-256-GCM under a key-encryption key (KEK)
//! from `[keys] encryption_key`, a random 96-bit nonce per key, the kid as associated data (a
//! sealed key copied onto another row does not open). The first KEK seals; every configured KEK
//! opens, so the KEK can be rotated: add the new one in front, `passerelle keys rewrap`, then
//! drop the old one.
//!
//! A sealed key is `v1.` then base64 of nonce ‖ ciphertext ‖ tag; beside it the store keeps the
//! KEK's id (a digest of the KEK, which reveals nothing of a 256-bit random key), so that a key
//! sealed under a KEK we do not have is named as such instead of failing as "corrupt".

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};

use super::KeyError;
use crate::config::secrets::{decode_kek, KEK_BYTES};
use crate::config::KeysConfig;

const FORMAT: &str = "v1.";
const NONCE_BYTES: usize = 12;
const TAG_BYTES: usize = 16;

/// One key-encryption key. Its bytes are never printed.
struct Kek {
    id: String,
    key: [u8; KEK_BYTES],
}

impl Drop for Kek {
    fn drop(&mut self) {
        wipe(&mut self.key);
    }
}

/// Overwrite key material before its memory is given back.
pub(super) fn wipe(bytes: &mut [u8]) {
    // A volatile write per byte, so the compiler cannot drop it as a dead store.
    for b in bytes.iter_mut() {
        // SAFETY: `b` is a valid, aligned, exclusive reference to one byte.
        unsafe { std::ptr::write_volatile(b, 0) };
    }
}

/// The configured KEKs, the one that seals first.
pub(super) struct Keks(Vec<Kek>);

impl std::fmt::Debug for Keks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.0.iter().map(|k| k.id.as_str()).collect();
        f.debug_tuple("Keks").field(&ids).finish()
    }
}

/// The public id of a KEK: 16 hex digits of a domain-separated SHA-256.
fn kek_id(key: &[u8; KEK_BYTES]) -> String {
    let mut input = b"passerelle key-encryption key id\0".to_vec();
    input.extend_from_slice(key);
    let digest = openssl::sha::sha256(&input);
    wipe(&mut input);
    hex::encode(&digest[..8])
}

impl Keks {
    /// `[keys] encryption_key` then `previous_encryption_keys`. Refused without an
    /// `encryption_key`, or when one does not decode (the configuration check names it first).
    pub fn from_config(settings: &KeysConfig) -> Result<Keks, KeyError> {
        if !settings.has_encryption_key() {
            return Err(KeyError::NoEncryptionKey);
        }
        let keks = settings
            .kek_slots()
            .into_iter()
            .map(|slot| {
                decode_kek(slot.value)
                    .map(|key| Kek {
                        id: kek_id(&key),
                        key,
                    })
                    .map_err(|message| KeyError::BadEncryptionKey {
                        key: slot.key,
                        message,
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Keks(keks))
    }

    /// The id of the KEK that seals.
    pub fn sealing_id(&self) -> &str {
        // `from_config` refuses a configuration without `encryption_key`, the first slot.
        self.0.first().map(|k| k.id.as_str()).unwrap_or_default()
    }

    /// Seal `secret` (a PKCS#8 DER private key) for key `kid`: (KEK id, sealed text).
    pub fn seal(&self, kid: &str, secret: &[u8]) -> Result<(String, String), KeyError> {
        let kek = self.0.first().ok_or(KeyError::NoEncryptionKey)?;
        let mut nonce = [0u8; NONCE_BYTES];
        openssl::rand::rand_bytes(&mut nonce)?;
        let mut tag = [0u8; TAG_BYTES];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            &kek.key,
            Some(&nonce),
            kid.as_bytes(),
            secret,
            &mut tag,
        )?;
        let mut blob = Vec::with_capacity(NONCE_BYTES + ciphertext.len() + TAG_BYTES);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ciphertext);
        blob.extend_from_slice(&tag);
        Ok((kek.id.clone(), format!("{FORMAT}{}", STANDARD.encode(blob))))
    }

    /// Open key `kid`'s `sealed` text, sealed under the KEK `kek_id`. The caller zeroes the
    /// returned bytes once parsed.
    pub fn open(&self, kid: &str, kek_id: &str, sealed: &str) -> Result<Vec<u8>, KeyError> {
        let kek = self.0.iter().find(|k| k.id == kek_id).ok_or_else(|| {
            KeyError::UnknownEncryptionKey {
                kid: kid.to_string(),
                kek_id: kek_id.to_string(),
                configured: self
                    .0
                    .iter()
                    .map(|k| k.id.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            }
        })?;
        let unsealable = |why: &str| KeyError::Unseal {
            kid: kid.to_string(),
            why: why.to_string(),
        };
        let blob = sealed
            .strip_prefix(FORMAT)
            .and_then(|b64| STANDARD.decode(b64).ok())
            .filter(|b| b.len() > NONCE_BYTES + TAG_BYTES)
            .ok_or_else(|| unsealable("the stored value is not a sealed key"))?;
        let (nonce, rest) = blob.split_at(NONCE_BYTES);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_BYTES);
        decrypt_aead(
            Cipher::aes_256_gcm(),
            &kek.key,
            Some(nonce),
            kid.as_bytes(),
            ciphertext,
            tag,
        )
        .map_err(|_| {
            unsealable("it does not decrypt under its key-encryption key: the row was altered")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn b64(bytes: &[u8]) -> Secret {
        Secret::new(STANDARD.encode(bytes))
    }

    fn settings(current: &[u8], previous: &[&[u8]]) -> KeysConfig {
        KeysConfig {
            encryption_key: Some(b64(current)),
            previous_encryption_keys: previous.iter().map(|p| b64(p)).collect(),
            ..KeysConfig::default()
        }
    }

    #[test]
    fn a_sealed_key_opens_under_its_kek_only_with_its_kid() {
        let keks = Keks::from_config(&settings(&[7; 32], &[])).unwrap();
        let (id, sealed) = keks.seal("kid-1", b"private key bytes").unwrap();
        assert_eq!(id, keks.sealing_id());
        assert!(sealed.starts_with("v1."));
        assert!(!sealed.contains("private"));
        assert_eq!(
            keks.open("kid-1", &id, &sealed).unwrap(),
            b"private key bytes"
        );
        // Two seals of one key differ (a fresh nonce each time).
        assert_ne!(keks.seal("kid-1", b"private key bytes").unwrap().1, sealed);
        let err = keks.open("kid-2", &id, &sealed).unwrap_err().to_string();
        assert!(err.contains("kid-2") && err.contains("altered"), "{err}");

        let mut tampered = STANDARD.decode(&sealed[3..]).unwrap();
        tampered[14] ^= 1;
        let tampered = format!("v1.{}", STANDARD.encode(tampered));
        assert!(matches!(
            keks.open("kid-1", &id, &tampered),
            Err(KeyError::Unseal { .. })
        ));
        assert!(matches!(
            keks.open("kid-1", &id, "v1.AAAA"),
            Err(KeyError::Unseal { .. })
        ));
    }

    #[test]
    fn previous_keks_open_and_the_first_seals() {
        let old = Keks::from_config(&settings(&[1; 32], &[])).unwrap();
        let (old_id, sealed) = old.seal("k", b"secret").unwrap();
        let rotated = Keks::from_config(&settings(&[2; 32], &[&[1; 32]])).unwrap();
        assert_ne!(rotated.sealing_id(), old_id);
        assert_eq!(rotated.open("k", &old_id, &sealed).unwrap(), b"secret");
        let only_new = Keks::from_config(&settings(&[2; 32], &[])).unwrap();
        let err = only_new
            .open("k", &old_id, &sealed)
            .unwrap_err()
            .to_string();
        assert!(err.contains("key k ") && err.contains(&old_id), "{err}");
        assert!(
            !format!("{only_new:?}").contains("AgIC"),
            "no key bytes in Debug"
        );
    }

    #[test]
    fn a_missing_or_malformed_kek_is_refused_by_name() {
        let none = Keks::from_config(&KeysConfig::default()).unwrap_err();
        assert!(matches!(none, KeyError::NoEncryptionKey), "{none}");
        assert!(none.to_string().contains("keys.encryption_key"), "{none}");
        let short = KeysConfig {
            encryption_key: Some(b64(&[3; 16])),
            ..KeysConfig::default()
        };
        let err = Keks::from_config(&short).unwrap_err().to_string();
        assert!(
            err.contains("keys.encryption_key") && err.contains("16 bytes"),
            "{err}"
        );
    }
}
