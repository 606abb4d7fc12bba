//! Key material: RSA key and self-signed certificate generation, RFC 7638 thumbprints, and the
//! accessors the JWKS and SAML metadata need.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::{DateTime, Utc};
use openssl::asn1::{Asn1Time, Asn1TimeRef};
use openssl::bn::{BigNum, MsbOption};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{HasPublic, PKey, PKeyRef};
use openssl::rsa::Rsa;
use openssl::sha::sha256;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509Builder, X509NameBuilder};

use super::{KeyError, SigningKey};

const CERTIFICATE_SUBJECT: &str = "Passerelle signing key";
const RSA_BITS: u32 = 2048;

/// A fresh RSA-2048 key with a self-signed certificate valid from `now` for `validity_days`.
pub(super) fn generate(
    validity_days: u32,
    now: DateTime<Utc>,
    signs_from: DateTime<Utc>,
) -> Result<SigningKey, KeyError> {
    let pkey = PKey::from_rsa(Rsa::generate(RSA_BITS)?)?;

    let mut name = X509NameBuilder::new()?;
    name.append_entry_by_nid(Nid::COMMONNAME, CERTIFICATE_SUBJECT)?;
    let name = name.build();
    // RFC 5280 caps serials at 20 octets and wants them unpredictable.
    let mut serial = BigNum::new()?;
    serial.rand(159, MsbOption::MAYBE_ZERO, false)?;
    let not_after = now.timestamp() + i64::from(validity_days) * 86_400;

    let mut cert = X509Builder::new()?;
    cert.set_version(2)?;
    cert.set_serial_number(&*serial.to_asn1_integer()?)?;
    cert.set_subject_name(&name)?;
    cert.set_issuer_name(&name)?;
    cert.set_pubkey(&pkey)?;
    cert.set_not_before(&*Asn1Time::from_unix(now.timestamp())?)?;
    cert.set_not_after(&*Asn1Time::from_unix(not_after)?)?;
    cert.append_extension(BasicConstraints::new().critical().build()?)?;
    cert.append_extension(KeyUsage::new().critical().digital_signature().build()?)?;
    let ski = SubjectKeyIdentifier::new().build(&cert.x509v3_context(None, None))?;
    cert.append_extension(ski)?;
    cert.sign(&pkey, MessageDigest::sha256())?;

    Ok(SigningKey {
        kid: kid_of(&pkey)?,
        pkey,
        cert: cert.build(),
        created_at: now,
        signs_from,
    })
}

/// The RFC 7638 JWK thumbprint of an RSA public key, used as its `kid`.
pub(super) fn kid_of<T: HasPublic>(pkey: &PKeyRef<T>) -> Result<String, KeyError> {
    let rsa = pkey.rsa()?;
    Ok(thumbprint(&rsa.n().to_vec(), &rsa.e().to_vec()))
}

/// SHA-256 over the canonical JWK members in lexical order, with no whitespace (RFC 7638 §3).
pub(super) fn thumbprint(n: &[u8], e: &[u8]) -> String {
    let canonical = format!(
        r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
        URL_SAFE_NO_PAD.encode(e),
        URL_SAFE_NO_PAD.encode(n)
    );
    URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()))
}

fn asn1_to_utc(time: &Asn1TimeRef) -> Option<DateTime<Utc>> {
    let diff = Asn1Time::from_unix(0).ok()?.diff(time).ok()?;
    DateTime::from_timestamp(i64::from(diff.days) * 86_400 + i64::from(diff.secs), 0)
}

impl SigningKey {
    /// The certificate in DER, as published in `x5c` and SAML metadata.
    pub fn certificate_der(&self) -> Result<Vec<u8>, KeyError> {
        Ok(self.cert.to_der()?)
    }

    /// SHA-256 of the certificate DER as colon-separated uppercase hex (what admins compare
    /// against an SP's configuration).
    pub fn fingerprint_sha256(&self) -> Result<String, KeyError> {
        let digest = sha256(&self.certificate_der()?);
        let pairs: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
        Ok(pairs.join(":"))
    }

    /// The certificate's notBefore and notAfter (`None` if out of chrono's range; loading
    /// refuses such certificates).
    pub fn validity(&self) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
        Some((
            asn1_to_utc(self.cert.not_before())?,
            asn1_to_utc(self.cert.not_after())?,
        ))
    }

    /// Big-endian modulus and public exponent, without leading zeros.
    pub(super) fn rsa_components(&self) -> Result<(Vec<u8>, Vec<u8>), KeyError> {
        let rsa = self.pkey.rsa()?;
        Ok((rsa.n().to_vec(), rsa.e().to_vec()))
    }

    /// The public JWK, as listed in the JWKS.
    pub fn jwk(&self) -> Result<serde_json::Value, KeyError> {
        let (n, e) = self.rsa_components()?;
        let der = self.certificate_der()?;
        Ok(serde_json::json!({
            "kty": "RSA",
            "use": "sig",
            "alg": "RS256",
            "kid": self.kid,
            "n": URL_SAFE_NO_PAD.encode(n),
            "e": URL_SAFE_NO_PAD.encode(e),
            "x5c": [STANDARD.encode(&der)],
            "x5t#S256": URL_SAFE_NO_PAD.encode(sha256(&der)),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thumbprint_matches_rfc7638_example() {
        // RFC 7638 §3.1.
        let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
        let e = "AQAB";
        let n = URL_SAFE_NO_PAD.decode(n).unwrap();
        let e = URL_SAFE_NO_PAD.decode(e).unwrap();
        assert_eq!(
            thumbprint(&n, &e),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
    }

    #[test]
    fn generated_certificate_carries_the_requested_validity() {
        let now = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
        let key = generate(30, now, now).unwrap();
        let (not_before, not_after) = key.validity().unwrap();
        assert_eq!(not_before, now);
        assert_eq!(not_after, now + chrono::Duration::days(30));
        assert_eq!(key.pkey.bits(), 2048);
        let cn = key
            .cert
            .subject_name()
            .entries_by_nid(Nid::COMMONNAME)
            .next();
        assert_eq!(cn.unwrap().data().to_string().unwrap(), CERTIFICATE_SUBJECT);
        let fingerprint = key.fingerprint_sha256().unwrap();
        assert_eq!(fingerprint.len(), 32 * 3 - 1);
        assert!(fingerprint
            .chars()
            .all(|c| c == ':' || c.is_ascii_digit() || c.is_ascii_uppercase()));
        assert!(key.cert.verify(&key.pkey).unwrap(), "self-signed");
    }
}
