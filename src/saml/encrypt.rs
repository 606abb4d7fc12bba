//! `EncryptedAssertion` for SPs that ask for it.
//!
//! Algorithms, chosen for interoperability:
//! - content: AES-256-GCM (`http://www.w3.org/2009/xmlenc11#aes256-gcm`). CBC modes are
//!   malleable (the XML Encryption padding-oracle attacks); GCM is what Shibboleth, ADFS,
//!   Entra ID and xmlsec accept today. The CipherValue is IV (12 bytes) ‖ ciphertext ‖ tag (16).
//! - key transport: RSA-OAEP with SHA-1 and MGF1-SHA1
//!   (`http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p`). Its xmlenc11 sibling
//!   (`…/2009/xmlenc11#rsa-oaep`) is not implemented by xmlsec 1.2 nor by several SP stacks;
//!   mgf1p is understood everywhere, and OAEP with SHA-1 remains sound for key transport.
//!
//! The `EncryptedKey` sits inside the `EncryptedData`'s `KeyInfo` (the common SAML layout), and
//! names the SP certificate it was encrypted to, so an SP with several keys picks the right one.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openssl::rsa::Padding;
use openssl::symm::{encrypt_aead, Cipher};
use openssl::x509::X509;

use super::dsig::key_info;
use super::writer::{El, Ns};

pub const AES256_GCM: &str = "http://www.w3.org/2009/xmlenc11#aes256-gcm";
pub const RSA_OAEP_MGF1P: &str = "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p";
const SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
const TYPE_ELEMENT: &str = "http://www.w3.org/2001/04/xmlenc#Element";

#[derive(Debug, thiserror::Error)]
pub enum EncryptError {
    #[error("the SP encryption certificate does not hold an RSA key")]
    NotRsa,
    #[error("OpenSSL: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
}

/// Encrypt a (signed) Assertion to `recipient`, returning the `saml:EncryptedAssertion`.
/// The plaintext is the Assertion's canonical form, which declares its own namespace, so it
/// stands alone once decrypted and its signature still verifies.
pub(crate) fn encrypt_assertion(assertion: &El, recipient: &X509) -> Result<El, EncryptError> {
    let plaintext = assertion.to_canonical();

    let mut key = [0u8; 32];
    let mut iv = [0u8; 12];
    openssl::rand::rand_bytes(&mut key)?;
    openssl::rand::rand_bytes(&mut iv)?;
    let mut tag = [0u8; 16];
    let ciphertext = encrypt_aead(
        Cipher::aes_256_gcm(),
        &key,
        Some(&iv),
        &[],
        plaintext.as_bytes(),
        &mut tag,
    )?;
    let mut cipher_value = Vec::with_capacity(iv.len() + ciphertext.len() + tag.len());
    cipher_value.extend_from_slice(&iv);
    cipher_value.extend_from_slice(&ciphertext);
    cipher_value.extend_from_slice(&tag);

    let rsa = recipient
        .public_key()?
        .rsa()
        .map_err(|_| EncryptError::NotRsa)?;
    let mut wrapped = vec![0u8; rsa.size() as usize];
    // PKCS1_OAEP in OpenSSL is exactly rsa-oaep-mgf1p: SHA-1 digest, MGF1 with SHA-1.
    let len = rsa.public_encrypt(&key, &mut wrapped, Padding::PKCS1_OAEP)?;
    wrapped.truncate(len);

    let encrypted_key = El::new(Ns::Xenc, "EncryptedKey")
        .child(
            El::new(Ns::Xenc, "EncryptionMethod")
                .attr("Algorithm", RSA_OAEP_MGF1P)
                .child(El::new(Ns::Dsig, "DigestMethod").attr("Algorithm", SHA1)),
        )
        .child(key_info(recipient)?)
        .child(
            El::new(Ns::Xenc, "CipherData")
                .child(El::new(Ns::Xenc, "CipherValue").text(B64.encode(&wrapped))),
        );
    Ok(El::new(Ns::Assertion, "EncryptedAssertion").child(
        El::new(Ns::Xenc, "EncryptedData")
            .attr("Type", TYPE_ELEMENT)
            .child(El::new(Ns::Xenc, "EncryptionMethod").attr("Algorithm", AES256_GCM))
            .child(El::new(Ns::Dsig, "KeyInfo").child(encrypted_key))
            .child(
                El::new(Ns::Xenc, "CipherData")
                    .child(El::new(Ns::Xenc, "CipherValue").text(B64.encode(&cipher_value))),
            ),
    ))
}

/// Test-side decryption with the SP's private key (what an SP does), kept next to the
/// encryption so the two stay in step.
#[cfg(test)]
pub(crate) fn decrypt_assertion_for_test(
    encrypted_assertion: &super::xml::Element,
    sp_key: &openssl::pkey::PKey<openssl::pkey::Private>,
) -> String {
    use super::ns;
    let data = encrypted_assertion
        .child(ns::XENC, "EncryptedData")
        .unwrap();
    assert_eq!(
        data.child(ns::XENC, "EncryptionMethod")
            .unwrap()
            .attr("Algorithm"),
        Some(AES256_GCM)
    );
    let ek = data
        .child(ns::DSIG, "KeyInfo")
        .unwrap()
        .child(ns::XENC, "EncryptedKey")
        .unwrap();
    let wrapped = B64
        .decode(
            ek.child(ns::XENC, "CipherData")
                .unwrap()
                .child(ns::XENC, "CipherValue")
                .unwrap()
                .text(),
        )
        .unwrap();
    let rsa = sp_key.rsa().unwrap();
    let mut key = vec![0u8; rsa.size() as usize];
    let n = rsa
        .private_decrypt(&wrapped, &mut key, Padding::PKCS1_OAEP)
        .unwrap();
    key.truncate(n);
    let blob = B64
        .decode(
            data.child(ns::XENC, "CipherData")
                .unwrap()
                .child(ns::XENC, "CipherValue")
                .unwrap()
                .text(),
        )
        .unwrap();
    let (iv, rest) = blob.split_at(12);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let plain =
        openssl::symm::decrypt_aead(Cipher::aes_256_gcm(), &key, Some(iv), &[], ct, tag).unwrap();
    String::from_utf8(plain).unwrap()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::testkit;
    use crate::saml::xml::parse_strict;

    #[test]
    fn round_trip_with_the_sp_key() {
        let assertion = El::new(Ns::Assertion, "Assertion")
            .attr("ID", "_a")
            .child(El::new(Ns::Assertion, "Issuer").text("Élodie & co"));
        let sp = testkit::sp_encryption();
        let encrypted = encrypt_assertion(&assertion, &sp.cert).unwrap();
        let tree = parse_strict(&encrypted.to_canonical(), 1 << 20).unwrap();
        assert_eq!(
            decrypt_assertion_for_test(&tree, &sp.pkey),
            assertion.to_canonical()
        );
        // Fresh key and IV every time.
        assert_ne!(encrypt_assertion(&assertion, &sp.cert).unwrap(), encrypted);
    }
}
