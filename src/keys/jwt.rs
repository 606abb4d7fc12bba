//! Compact JWS: signing with the in-memory OpenSSL key, verification with jsonwebtoken.

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use openssl::hash::MessageDigest;
use openssl::sign::Signer;
use serde::Serialize;

use super::{KeyError, SigningKey};

impl SigningKey {
    /// A compact JWS (RS256, header `{"alg":"RS256","typ":"JWT","kid":…}`).
    pub fn sign_jwt<T: Serialize>(&self, claims: &T) -> Result<String, KeyError> {
        let header = format!(
            r#"{{"alg":"RS256","typ":"JWT","kid":{}}}"#,
            serde_json::to_string(&self.kid)?
        );
        let payload = serde_json::to_vec(claims)?;
        let mut token = String::with_capacity(600 + payload.len() * 4 / 3);
        URL_SAFE_NO_PAD.encode_string(header, &mut token);
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(payload, &mut token);
        let signature = self.sign(token.as_bytes())?;
        token.push('.');
        URL_SAFE_NO_PAD.encode_string(signature, &mut token);
        Ok(token)
    }

    /// A raw RSASSA-PKCS1-v1_5 SHA-256 signature (JWS RS256, SAML `rsa-sha256`).
    pub fn sign(&self, data: &[u8]) -> Result<Vec<u8>, KeyError> {
        // Signing with the already parsed key keeps the cost at one RSA operation; jsonwebtoken's
        // aws-lc backend would re-parse the DER key on every call (crates-notes §5).
        let mut signer = Signer::new(MessageDigest::sha256(), &self.pkey)?;
        Ok(signer.sign_oneshot_to_vec(data)?)
    }
}

/// Checks an RS256 token against the published key its header names. `exp`, `nbf` and `aud`
/// are left to the caller: an expired `id_token_hint`, for one, is still acceptable.
pub(super) fn verify_jwt(
    token: &str,
    published: &[Arc<SigningKey>],
) -> Result<serde_json::Value, KeyError> {
    // An `alg` outside jsonwebtoken's enum (`none` included) fails here already.
    let header = jsonwebtoken::decode_header(token)
        .map_err(|_| KeyError::InvalidToken("malformed token header"))?;
    if header.alg != Algorithm::RS256 {
        return Err(KeyError::InvalidToken("algorithm is not RS256"));
    }
    let kid = header
        .kid
        .ok_or(KeyError::InvalidToken("no kid in the token header"))?;
    let key = published
        .iter()
        .find(|k| k.kid == kid)
        .ok_or(KeyError::InvalidToken(
            "signed by an unknown or retired key",
        ))?;
    let (n, e) = key.rsa_components()?;

    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    jsonwebtoken::decode::<serde_json::Value>(
        token,
        &DecodingKey::from_rsa_raw_components(&n, &e),
        &validation,
    )
    .map(|data| data.claims)
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => KeyError::InvalidToken("signature does not verify"),
        _ => KeyError::InvalidToken("malformed token"),
    })
}
