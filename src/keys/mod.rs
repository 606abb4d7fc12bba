//! Signing keys: generated on first start (RSA-2048 + self-signed X.509, files mode 0600),
//! loaded on later starts, rotated with a publish-before-sign delay. All signing goes through
//! OpenSSL with the parsed key kept in memory, so a signature costs one RSA operation.

mod ring;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;
use base64::Engine;
use chrono::{DateTime, Utc};
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use serde::Serialize;
use serde_json::{json, Value};

use crate::config::KeysConfig;
pub use ring::thumbprint;
use ring::Ring;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key store {path}: {message}")]
    Store { path: String, message: String },
    #[error("crypto: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("invalid token: {0}")]
    InvalidToken(&'static str),
    #[error("a rotation is already pending: key {kid} starts signing at {signs_from}")]
    RotationPending {
        kid: String,
        signs_from: DateTime<Utc>,
    },
}

/// One key pair with its certificate.
pub struct SigningKey {
    pub kid: String,
    pub pkey: PKey<Private>,
    pub cert: X509,
    pub created_at: DateTime<Utc>,
    pub signs_from: DateTime<Utc>,
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

impl SigningKey {
    /// A compact JWS (RS256, header `{"alg":"RS256","typ":"JWT","kid":…}`).
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let header = b64url(
            json!({"alg": "RS256", "typ": "JWT", "kid": self.kid})
                .to_string()
                .as_bytes(),
        );
        let payload = b64url(
            &serde_json::to_vec(claims)
                .map_err(|_| KeyError::InvalidToken("claims do not serialise"))?,
        );
        let input = format!("{header}.{payload}");
        let signature = self.sign(input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(&signature)))
    }

    /// RSA PKCS#1 v1.5 with SHA-256 over `data` (RS256, and SAML's rsa-sha256).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.pkey)?;
        Ok(signer.sign_oneshot_to_vec(data)?)
    }

    pub fn certificate_der(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.cert.to_der()?)
    }

    pub fn certificate_pem(&self) -> Result<String, KeyError> {
        Ok(String::from_utf8_lossy(&self.cert.to_pem()?).into_owned())
    }

    /// SHA-256 of the certificate DER, colon-separated upper-case hex (as `openssl x509 -fingerprint`).
    pub fn fingerprint_sha256(&self) -> String {
        let der = self.cert.to_der().unwrap_or_default();
        openssl::sha::sha256(&der)
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect::<Vec<_>>()
            .join(":")
    }

    fn jwk(&self) -> Value {
        let (n, e) = match self.pkey.rsa() {
            Ok(rsa) => (b64url(&rsa.n().to_vec()), b64url(&rsa.e().to_vec())),
            Err(_) => (String::new(), String::new()),
        };
        let der = self.cert.to_der().unwrap_or_default();
        json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": n, "e": e,
            "x5c": [base64::engine::general_purpose::STANDARD.encode(&der)],
            "x5t#S256": b64url(&openssl::sha::sha256(&der)),
        })
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
pub struct Keys {
    dir: PathBuf,
    settings: KeysConfig,
    ring: ArcSwap<Ring>,
}

impl Keys {
    /// Load the ring from `dir`, generating the first key when the folder has none.
    pub fn load_or_generate(dir: &Path, settings: &KeysConfig) -> Result<Keys, KeyError> {
        let ring = Ring::load_or_init(dir, settings, Utc::now())?;
        Ok(Keys {
            dir: dir.to_path_buf(),
            settings: settings.clone(),
            ring: ArcSwap::from_pointee(ring),
        })
    }

    /// The key that signs now.
    pub fn signer(&self) -> Arc<SigningKey> {
        self.signer_at(Utc::now())
    }

    pub fn signer_at(&self, now: DateTime<Utc>) -> Arc<SigningKey> {
        self.ring.load().signer_at(now)
    }

    /// Keys to publish now: the signer first, then a staged next key, then retiring keys.
    pub fn published(&self) -> Vec<Arc<SigningKey>> {
        self.published_at(Utc::now())
    }

    pub fn published_at(&self, now: DateTime<Utc>) -> Vec<Arc<SigningKey>> {
        self.ring.load().published_at(now, &self.settings)
    }

    pub fn jwks(&self) -> Value {
        json!({"keys": self.published().iter().map(|k| k.jwk()).collect::<Vec<_>>()})
    }

    /// Check an RS256 signature against a published key (by `kid`); returns the payload.
    /// Expiry is the caller's business (an expired `id_token_hint` is still a valid hint).
    pub fn verify_jwt(&self, token: &str) -> Result<Value, KeyError> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::InvalidToken("not a compact JWS"));
        };
        let decode = |part: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(part)
                .map_err(|_| KeyError::InvalidToken("bad base64url"))
        };
        let header: Value = serde_json::from_slice(&decode(h)?)
            .map_err(|_| KeyError::InvalidToken("bad header"))?;
        if header.get("alg").and_then(Value::as_str) != Some("RS256") {
            return Err(KeyError::InvalidToken("algorithm is not RS256"));
        }
        let kid = header
            .get("kid")
            .and_then(Value::as_str)
            .ok_or(KeyError::InvalidToken("no kid"))?;
        let key = self
            .published()
            .into_iter()
            .find(|k| k.kid == kid)
            .ok_or(KeyError::InvalidToken("unknown kid"))?;
        let mut verifier = Verifier::new(MessageDigest::sha256(), &key.pkey)?;
        let signed = &token[..h.len() + 1 + p.len()];
        if !verifier.verify_oneshot(&decode(s)?, signed.as_bytes())? {
            return Err(KeyError::InvalidToken("bad signature"));
        }
        serde_json::from_slice(&decode(p)?).map_err(|_| KeyError::InvalidToken("bad payload"))
    }

    /// Stage a next key: published at once, signing after `keys.rotation_delay`.
    pub fn rotate(&self) -> Result<KeyStatus, KeyError> {
        self.rotate_at(Utc::now())
    }

    pub fn rotate_at(&self, now: DateTime<Utc>) -> Result<KeyStatus, KeyError> {
        // Re-read first: a rotation may have been staged by another process.
        let mut ring = Ring::load_or_init(&self.dir, &self.settings, now)?;
        if let Some(pending) = ring.pending_at(now) {
            return Err(KeyError::RotationPending {
                kid: pending.kid.clone(),
                signs_from: pending.signs_from,
            });
        }
        let delay = chrono::Duration::from_std(self.settings.rotation_delay)
            .unwrap_or(chrono::Duration::hours(48));
        let key = ring.add_key(&self.dir, &self.settings, now, now + delay)?;
        let status = ring.status_of(&key, now, &self.settings);
        self.ring.store(Arc::new(ring));
        Ok(status)
    }

    /// Re-read the ring from disk (after `passerelle keys rotate` in another process).
    pub fn reload(&self) -> Result<(), KeyError> {
        let ring = Ring::load_existing(&self.dir)?;
        self.ring.store(Arc::new(ring));
        Ok(())
    }

    pub fn status(&self) -> Vec<KeyStatus> {
        self.status_at(Utc::now())
    }

    pub fn status_at(&self, now: DateTime<Utc>) -> Vec<KeyStatus> {
        let ring = self.ring.load();
        ring.keys()
            .iter()
            .map(|k| ring.status_of(k, now, &self.settings))
            .collect()
    }
}

#[cfg(test)]
mod tests;
