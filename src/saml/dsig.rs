//! XML-DSig: enveloped signatures we create, and the signatures we accept.
//!
//! Creating: the element to sign is one of our own [`El`] trees, whose serialisation already is
//! its exc-c14n form ([`super::writer`]). So the digest is SHA-256 over `to_canonical()`, the
//! `SignedInfo` is itself written canonically and signed with RSA-SHA256 straight from the
//! in-memory `PKey`: no re-parsing of the key, no XML parse, no xmlsec per signature.
//!
//! Accepting: xmlsec does the cryptography, with the SP certificate we registered (never the one
//! the message carries). A valid signature is worthless if it signs something other than the
//! message we then read (signature wrapping), so [`verify_enveloped`] ties the two together:
//! 1. the tree it is given is libxml2's own tree of the document ([`super::xml::parse_message`]),
//!    i.e. the document xmlsec verifies, not a second parser's idea of it;
//! 2. on that tree, the structure: exactly one `ds:Signature` in the whole document, a child of
//!    the root, one Reference whose URI is `#<root ID>`, that ID an NCName carried by no other
//!    element (under any ID-like attribute), and only the transforms and algorithms SAML uses
//!    (no XPath, no XSLT);
//! 3. xmlsec verifies every signature libxml2 sees in the document (so exactly the one just
//!    inspected) and hands back the octets its one Reference digested;
//! 4. those octets, read back, must be the very message tree minus its signature: what was
//!    signed is what the readers read, whatever a parser may have made of the document.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openssl::hash::{hash, MessageDigest};
use openssl::pkey::{Id, PKey, Private};
use openssl::sign::{Signer, Verifier};
use openssl::x509::X509;
use samael::crypto::{CertificateDer, Crypto, CryptoProvider, ReduceMode};

use super::ns;
use super::writer::{El, Ns};
use super::xml::{first_difference, parse_strict, Element};

pub const ALG_RSA_SHA256: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256";
pub const ALG_RSA_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384";
pub const ALG_RSA_SHA512: &str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512";
pub const ALG_RSA_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#rsa-sha1";
pub const DIGEST_SHA256: &str = "http://www.w3.org/2001/04/xmlenc#sha256";
pub const DIGEST_SHA384: &str = "http://www.w3.org/2001/04/xmldsig-more#sha384";
pub const DIGEST_SHA512: &str = "http://www.w3.org/2001/04/xmlenc#sha512";
pub const DIGEST_SHA1: &str = "http://www.w3.org/2000/09/xmldsig#sha1";
pub const EXC_C14N: &str = "http://www.w3.org/2001/10/xml-exc-c14n#";
const EXC_C14N_COMMENTS: &str = "http://www.w3.org/2001/10/xml-exc-c14n#WithComments";
const C14N: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315";
const C14N_COMMENTS: &str = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments";
const C14N11: &str = "http://www.w3.org/2006/12/xml-c14n11";
pub const ENVELOPED: &str = "http://www.w3.org/2000/09/xmldsig#enveloped-signature";
const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";

/// Our signing key and the certificate published for it (from the keys room). Borrowed: the key
/// is parsed once at load/rotation time and reused for every signature.
#[derive(Clone, Copy)]
pub struct SigningMaterial<'a> {
    pub pkey: &'a PKey<Private>,
    pub cert: &'a X509,
}

impl<'a> SigningMaterial<'a> {
    pub fn new(pkey: &'a PKey<Private>, cert: &'a X509) -> Self {
        SigningMaterial { pkey, cert }
    }
}

/// Failure to produce a signed (or encrypted) document. Never the requester's fault: maps to
/// `Responder` and to a 500-style error page.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error(
        "the signing key is not an RSA key (found {0:?}); SAML signatures here use RSA-SHA256"
    )]
    UnsupportedKey(Id),
    #[error("the element to sign has no ID attribute")]
    NoId,
    #[error("OpenSSL: {0}")]
    Crypto(#[from] openssl::error::ErrorStack),
    #[error("could not DEFLATE the message")]
    Deflate,
}

/// RSA-SHA256 (PKCS#1 v1.5) over `data`: the XML SignatureValue and the Redirect-binding
/// `Signature` parameter.
pub fn rsa_sha256(key: &SigningMaterial, data: &[u8]) -> Result<Vec<u8>, SignError> {
    if key.pkey.id() != Id::RSA {
        return Err(SignError::UnsupportedKey(key.pkey.id()));
    }
    let mut signer = Signer::new(MessageDigest::sha256(), key.pkey)?;
    Ok(signer.sign_oneshot_to_vec(data)?)
}

/// Sign `el` (which must carry an `ID`) with an enveloped signature inserted as its child at
/// `position` (schema order: right after the `Issuer`, i.e. 1, for Response/Assertion/
/// LogoutRequest/LogoutResponse; 0 for metadata).
pub(crate) fn sign_enveloped(
    el: &mut El,
    position: usize,
    key: &SigningMaterial,
) -> Result<(), SignError> {
    let id = el.get_attr("ID").ok_or(SignError::NoId)?.to_string();
    // The enveloped-signature transform removes the Signature, so the digest is over the element
    // as it is now, before insertion.
    let digest = hash(MessageDigest::sha256(), el.to_canonical().as_bytes())?;
    let signed_info = El::new(Ns::Dsig, "SignedInfo")
        .child(El::new(Ns::Dsig, "CanonicalizationMethod").attr("Algorithm", EXC_C14N))
        .child(El::new(Ns::Dsig, "SignatureMethod").attr("Algorithm", ALG_RSA_SHA256))
        .child(
            El::new(Ns::Dsig, "Reference")
                .attr("URI", format!("#{id}"))
                .child(
                    El::new(Ns::Dsig, "Transforms")
                        .child(El::new(Ns::Dsig, "Transform").attr("Algorithm", ENVELOPED))
                        .child(El::new(Ns::Dsig, "Transform").attr("Algorithm", EXC_C14N)),
                )
                .child(El::new(Ns::Dsig, "DigestMethod").attr("Algorithm", DIGEST_SHA256))
                .child(El::new(Ns::Dsig, "DigestValue").text(B64.encode(digest))),
        );
    // SignedInfo is canonicalised as an apex (it then declares xmlns:ds itself), which is
    // exactly what `to_canonical` produces.
    let signature_value = rsa_sha256(key, signed_info.to_canonical().as_bytes())?;
    let signature = El::new(Ns::Dsig, "Signature")
        .child(signed_info)
        .child(El::new(Ns::Dsig, "SignatureValue").text(B64.encode(signature_value)))
        .child(key_info(key.cert)?);
    el.insert(position, signature);
    Ok(())
}

/// `<ds:KeyInfo><ds:X509Data><ds:X509Certificate>…`: tells the SP which of our published
/// certificates signed (useful during rotation).
pub(crate) fn key_info(cert: &X509) -> Result<El, openssl::error::ErrorStack> {
    Ok(El::new(Ns::Dsig, "KeyInfo").child(
        El::new(Ns::Dsig, "X509Data")
            .child(El::new(Ns::Dsig, "X509Certificate").text(B64.encode(cert.to_der()?))),
    ))
}

/// Why an inbound signature was refused. All of them mean the message cannot be trusted, so
/// the web layer shows an error page and posts nothing back.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("the message is not signed, and this service provider must sign its requests")]
    Missing,
    #[error(
        "the logout message is not signed; single logout messages must be signed by the \
         service provider"
    )]
    LogoutUnsigned,
    #[error("the message carries {0} signatures; exactly one, on the message itself, is accepted")]
    Multiple(usize),
    #[error("the signature is not on the message itself (it sits inside <{0}>)")]
    NotOnRoot(String),
    #[error("the signed message has no ID attribute")]
    RootWithoutId,
    #[error("the signature references {found:?}, not the message itself ({expected:?})")]
    ReferenceMismatch { expected: String, found: String },
    #[error("the signature has {0} references; exactly one is accepted")]
    ReferenceCount(usize),
    #[error("the ID {0:?} appears on more than one element")]
    DuplicateId(String),
    #[error("the message ID {0:?} is not a valid XML ID")]
    InvalidId(String),
    #[error("what the signature covers is not the message that was read ({0})")]
    SignedContentMismatch(String),
    #[error("signature algorithm {0:?} is not accepted (RSA-SHA256 is expected)")]
    UnsupportedAlgorithm(String),
    #[error("digest algorithm {0:?} is not accepted (SHA-256 is expected)")]
    UnsupportedDigest(String),
    #[error("signature transform or canonicalisation {0:?} is not accepted")]
    UnsupportedTransform(String),
    #[error("the signature is malformed: {0}")]
    Malformed(&'static str),
    #[error("the service provider has no signing certificate registered, so its signature cannot be checked")]
    NoCertificate,
    #[error("the signature does not verify with the service provider's registered certificate")]
    Invalid,
}

/// Verify the enveloped signature of an inbound message. `root` must be the tree
/// [`super::xml::parse_message`] returned for `xml` (libxml2's tree of that very text).
pub fn verify_enveloped(
    xml: &str,
    root: &Element,
    certs: &[X509],
    allow_rsa_sha1: bool,
) -> Result<(), SignatureError> {
    check_signature_structure(root, allow_rsa_sha1)?;
    if certs.is_empty() {
        return Err(SignatureError::NoCertificate);
    }
    let certs: Vec<CertificateDer> = certs
        .iter()
        .filter_map(|c| c.to_der().ok())
        .map(CertificateDer::from)
        .collect();
    // xmlsec verifies each signature libxml2 finds (the structure check saw exactly one, in the
    // same tree) with each certificate in turn, and returns what its one Reference digested.
    let signed = Crypto::reduce_xml_to_signed(xml, &certs, ReduceMode::PreDigest)
        .map_err(|_| SignatureError::Invalid)?;
    let signed = parse_strict(&signed, xml.len().saturating_mul(2).saturating_add(1024))
        .map_err(|e| SignatureError::SignedContentMismatch(e.to_string()))?;
    let read = root.without_children(&|e| e.is(ns::DSIG, "Signature"));
    match first_difference(&signed, &read) {
        None => Ok(()),
        Some(difference) => Err(SignatureError::SignedContentMismatch(difference)),
    }
}

/// Does the message carry any `ds:Signature` at all (anywhere)?
pub fn has_signature(root: &Element) -> bool {
    let mut found = false;
    root.walk(&mut |e, _| found |= e.is(ns::DSIG, "Signature"));
    found
}

/// The anti-wrapping checks on a message's tree (from [`super::xml::parse_message`]), before
/// any cryptography: `Ok` names nothing about validity, only that the one signature is where it
/// must be and uses what SAML uses. Public for the fuzz targets; [`verify_enveloped`] runs it.
pub fn check_signature_structure(
    root: &Element,
    allow_rsa_sha1: bool,
) -> Result<(), SignatureError> {
    let mut signatures: Vec<(usize, &Element)> = Vec::new();
    // The element holding a signature that is not a child of the root (for the message).
    let mut misplaced_in: Option<String> = None;
    // Every ID-like value: `ID` in any namespace (xmlsec registers attributes by local name),
    // `xml:id` (libxml2 registers it by itself) and the `Id`/`id` other specs use, so that no
    // reference can resolve to anything but the root.
    let mut ids: Vec<&str> = Vec::new();
    walk_with_parent(root, None, 0, &mut |e, parent, depth| {
        if e.is(ns::DSIG, "Signature") {
            signatures.push((depth, e));
            if depth != 1 && misplaced_in.is_none() {
                misplaced_in = Some(parent.map(|p| p.local.clone()).unwrap_or_default());
            }
        }
        for attr in &e.attrs {
            let is_id = match attr.ns.as_deref() {
                Some(XML_NS) => attr.local == "id",
                _ => matches!(attr.local.as_str(), "ID" | "Id" | "id"),
            };
            if is_id {
                ids.push(attr.value.trim());
            }
        }
    });
    let signature = match signatures.as_slice() {
        [] => return Err(SignatureError::Missing),
        [(1, only)] => *only,
        [_] => {
            return Err(SignatureError::NotOnRoot(
                misplaced_in.unwrap_or_else(|| root.local.clone()),
            ))
        }
        more => return Err(SignatureError::Multiple(more.len())),
    };
    let root_id = root.attr("ID").ok_or(SignatureError::RootWithoutId)?;
    if !is_ncname(root_id) {
        return Err(SignatureError::InvalidId(root_id.to_string()));
    }
    if ids.iter().filter(|id| **id == root_id).count() > 1 {
        return Err(SignatureError::DuplicateId(root_id.to_string()));
    }

    if signature.child(ns::DSIG, "Object").is_some() {
        return Err(SignatureError::Malformed(
            "ds:Object is not allowed in a SAML signature",
        ));
    }
    let signed_info = signature
        .child(ns::DSIG, "SignedInfo")
        .ok_or(SignatureError::Malformed("no SignedInfo"))?;
    let c14n = signed_info
        .child(ns::DSIG, "CanonicalizationMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or(SignatureError::Malformed("no CanonicalizationMethod"))?;
    if !is_canonicalization(c14n) {
        return Err(SignatureError::UnsupportedTransform(c14n.to_string()));
    }
    let method = signed_info
        .child(ns::DSIG, "SignatureMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or(SignatureError::Malformed("no SignatureMethod"))?;
    signature_digest(method, allow_rsa_sha1)?;

    let references: Vec<&Element> = signed_info.children_named(ns::DSIG, "Reference").collect();
    let [reference] = references.as_slice() else {
        return Err(SignatureError::ReferenceCount(references.len()));
    };
    let expected = format!("#{root_id}");
    let found = reference.attr("URI").unwrap_or_default();
    if found != expected {
        return Err(SignatureError::ReferenceMismatch {
            expected,
            found: found.to_string(),
        });
    }
    let mut enveloped = false;
    if let Some(transforms) = reference.child(ns::DSIG, "Transforms") {
        for transform in transforms.children_named(ns::DSIG, "Transform") {
            let algorithm = transform.attr("Algorithm").unwrap_or_default();
            if algorithm == ENVELOPED {
                enveloped = true;
            } else if !is_canonicalization(algorithm) {
                return Err(SignatureError::UnsupportedTransform(algorithm.to_string()));
            }
        }
    }
    if !enveloped {
        return Err(SignatureError::Malformed("not an enveloped signature"));
    }
    let digest = reference
        .child(ns::DSIG, "DigestMethod")
        .and_then(|m| m.attr("Algorithm"))
        .ok_or(SignatureError::Malformed("no DigestMethod"))?;
    let digest_ok = matches!(digest, DIGEST_SHA256 | DIGEST_SHA384 | DIGEST_SHA512)
        || (allow_rsa_sha1 && digest == DIGEST_SHA1);
    if !digest_ok {
        return Err(SignatureError::UnsupportedDigest(digest.to_string()));
    }
    Ok(())
}

fn walk_with_parent<'a>(
    e: &'a Element,
    parent: Option<&'a Element>,
    depth: usize,
    visit: &mut dyn FnMut(&'a Element, Option<&'a Element>, usize),
) {
    visit(e, parent, depth);
    for child in e.elements() {
        walk_with_parent(child, Some(e), depth + 1, visit);
    }
}

/// An xs:ID: an NCName (no colon, no whitespace, not starting with a digit, `-` or `.`).
fn is_ncname(value: &str) -> bool {
    let mut chars = value.chars();
    let start_ok = chars.next().is_some_and(|c| c == '_' || c.is_alphabetic());
    start_ok && chars.all(|c| c == '_' || c == '-' || c == '.' || c.is_alphanumeric())
}

fn is_canonicalization(uri: &str) -> bool {
    matches!(
        uri,
        EXC_C14N | EXC_C14N_COMMENTS | C14N | C14N_COMMENTS | C14N11
    )
}

/// The digest of an accepted signature algorithm (shared with the Redirect binding's `SigAlg`).
pub fn signature_digest(
    algorithm: &str,
    allow_rsa_sha1: bool,
) -> Result<MessageDigest, SignatureError> {
    match algorithm {
        ALG_RSA_SHA256 => Ok(MessageDigest::sha256()),
        ALG_RSA_SHA384 => Ok(MessageDigest::sha384()),
        ALG_RSA_SHA512 => Ok(MessageDigest::sha512()),
        ALG_RSA_SHA1 if allow_rsa_sha1 => Ok(MessageDigest::sha1()),
        other => Err(SignatureError::UnsupportedAlgorithm(other.to_string())),
    }
}

/// Verify a detached RSA signature (the Redirect binding) against each registered certificate.
pub fn verify_detached(
    signed: &[u8],
    algorithm: &str,
    signature: &[u8],
    certs: &[X509],
    allow_rsa_sha1: bool,
) -> Result<(), SignatureError> {
    let digest = signature_digest(algorithm, allow_rsa_sha1)?;
    if certs.is_empty() {
        return Err(SignatureError::NoCertificate);
    }
    for cert in certs {
        let verified = (|| -> Result<bool, openssl::error::ErrorStack> {
            let key = cert.public_key()?;
            let mut verifier = Verifier::new(digest, &key)?;
            verifier.update(signed)?;
            verifier.verify(signature)
        })();
        // An OpenSSL error (wrong key type, malformed signature) is a failed verification.
        if verified.unwrap_or(false) {
            return Ok(());
        }
    }
    Err(SignatureError::Invalid)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::testkit;
    use crate::saml::xml::parse_message;

    fn signed_request(id: &str) -> String {
        let idp = testkit::sp_signing();
        let mut el = El::new(Ns::Protocol, "AuthnRequest")
            .attr("ID", id)
            .attr("Version", "2.0")
            .attr("IssueInstant", "2024-01-01T00:00:00Z")
            .child(El::new(Ns::Assertion, "Issuer").text("https://sp.test"));
        sign_enveloped(&mut el, 1, &idp.material()).unwrap();
        el.to_document()
    }

    #[test]
    fn our_signature_verifies_with_xmlsec_and_fails_when_tampered() {
        let xml = signed_request("_abc");
        let root = parse_message(&xml, 1 << 20).unwrap();
        let certs = [testkit::sp_signing().cert.clone()];
        assert_eq!(verify_enveloped(&xml, &root, &certs, false), Ok(()));

        let tampered = xml.replace("https://sp.test", "https://evil.test");
        let root = parse_message(&tampered, 1 << 20).unwrap();
        assert_eq!(
            verify_enveloped(&tampered, &root, &certs, false),
            Err(SignatureError::Invalid)
        );

        let other = [testkit::idp().cert.clone()];
        let root = parse_message(&xml, 1 << 20).unwrap();
        assert_eq!(
            verify_enveloped(&xml, &root, &other, false),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify_enveloped(&xml, &root, &[], false),
            Err(SignatureError::NoCertificate)
        );
    }

    #[test]
    fn structure_refusals() {
        let xml = signed_request("_abc");
        let certs = [testkit::sp_signing().cert.clone()];
        let check = |xml: &str| {
            let root = parse_message(xml, 1 << 20).unwrap();
            verify_enveloped(xml, &root, &certs, false)
        };
        // Reference to something other than the root.
        let moved = xml.replace("URI=\"#_abc\"", "URI=\"#_other\"");
        assert!(matches!(
            check(&moved),
            Err(SignatureError::ReferenceMismatch { .. })
        ));
        // SHA-1 refused unless allowed.
        let sha1 = xml.replace(ALG_RSA_SHA256, ALG_RSA_SHA1);
        assert_eq!(
            check(&sha1),
            Err(SignatureError::UnsupportedAlgorithm(ALG_RSA_SHA1.into()))
        );
        // XSLT / XPath transforms are never run.
        let xslt = xml.replace(EXC_C14N, "http://www.w3.org/TR/1999/REC-xslt-19991116");
        assert!(matches!(
            check(&xslt),
            Err(SignatureError::UnsupportedTransform(_))
        ));
        // The root's ID also carried as xml:id elsewhere (libxml2 would resolve that one).
        let shadow = xml.replace(
            "<saml:Issuer",
            r#"<samlp:Extensions xml:id="_abc"></samlp:Extensions><saml:Issuer"#,
        );
        assert_eq!(
            check(&shadow),
            Err(SignatureError::DuplicateId("_abc".into()))
        );
        // Unsigned.
        let unsigned =
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_a"/>"#;
        assert_eq!(check(unsigned), Err(SignatureError::Missing));
    }

    /// The signature check holds without the gate's namespace rule: handed libxml2's tree of
    /// the namespace-differential forgery, it sees the hidden genuine signature as well.
    #[test]
    fn forgery_is_refused_by_the_signature_check_alone() {
        let mut genuine = El::new(Ns::Protocol, "LogoutRequest")
            .attr("ID", "_genuine")
            .attr("Version", "2.0")
            .attr("IssueInstant", "2024-01-01T00:00:00Z")
            .child(El::new(Ns::Assertion, "Issuer").text("https://sp.test"));
        sign_enveloped(&mut genuine, 1, &testkit::sp_signing().material()).unwrap();
        let forged = El::new(Ns::Protocol, "AuthnRequest")
            .attr("ID", "_forged")
            .attr("Version", "2.0")
            .attr("IssueInstant", "2024-01-01T00:00:00Z")
            .child(El::new(Ns::Assertion, "Issuer").text("https://sp.test"));
        let certs = [testkit::sp_signing().cert.clone()];
        for spelling in testkit::DSIG_NS_SPELLINGS {
            let xml = testkit::namespace_differential_forgery(
                &genuine.to_canonical(),
                spelling,
                forged.clone(),
            );
            let libxml2_tree = crate::saml::libxml2::parse(&xml).unwrap();
            assert_eq!(
                verify_enveloped(&xml, &libxml2_tree, &certs, false),
                Err(SignatureError::Multiple(2)),
                "{spelling}"
            );
        }
    }

    /// What the signature covers must be the tree the readers read: a tree that is not the
    /// signed document's is refused even though the document's signature is valid.
    #[test]
    fn signed_content_must_be_the_tree_that_is_read() {
        let xml = signed_request("_abc");
        let certs = [testkit::sp_signing().cert.clone()];
        let other = signed_request("_abc").replace("https://sp.test", "https://evil.test");
        let other_tree = parse_message(&other, 1 << 20).unwrap();
        assert!(matches!(
            verify_enveloped(&xml, &other_tree, &certs, false),
            Err(SignatureError::SignedContentMismatch(_))
        ));
    }

    #[test]
    fn ids_that_could_resolve_elsewhere_are_refused() {
        let xml = signed_request("_abc");
        let certs = [testkit::sp_signing().cert.clone()];
        let check = |xml: &str| {
            let root = parse_message(xml, 1 << 20).unwrap();
            verify_enveloped(xml, &root, &certs, false)
        };
        // xmlsec registers `ID` attributes by local name, whatever their namespace.
        for shadow in [
            r#"<samlp:Extensions xmlns:x="urn:x" x:ID="_abc"></samlp:Extensions>"#,
            r#"<samlp:Extensions Id="_abc"></samlp:Extensions>"#,
            r#"<samlp:Extensions ID=" _abc "></samlp:Extensions>"#,
        ] {
            let doc = xml.replace("<saml:Issuer", &format!("{shadow}<saml:Issuer"));
            assert_eq!(
                check(&doc),
                Err(SignatureError::DuplicateId("_abc".into())),
                "{shadow}"
            );
        }
        for bad in ["1abc", "a b", "_a:b", ""] {
            let doc = signed_request(bad);
            assert_eq!(
                check(&doc),
                Err(SignatureError::InvalidId(bad.into())),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn detached_signatures() {
        let sp = testkit::sp_signing();
        let data = b"SAMLRequest=abc&SigAlg=x";
        let sig = rsa_sha256(&sp.material(), data).unwrap();
        let certs = [sp.cert.clone()];
        assert_eq!(
            verify_detached(data, ALG_RSA_SHA256, &sig, &certs, false),
            Ok(())
        );
        assert_eq!(
            verify_detached(
                b"SAMLRequest=abd&SigAlg=x",
                ALG_RSA_SHA256,
                &sig,
                &certs,
                false
            ),
            Err(SignatureError::Invalid)
        );
        assert_eq!(
            verify_detached(data, ALG_RSA_SHA256, b"short", &certs, false),
            Err(SignatureError::Invalid)
        );
        assert!(matches!(
            verify_detached(data, ALG_RSA_SHA1, &sig, &certs, false),
            Err(SignatureError::UnsupportedAlgorithm(_))
        ));
    }
}
