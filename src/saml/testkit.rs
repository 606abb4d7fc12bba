//! Test helpers: throwaway keys, the external judges (`xmlsec1`, `xmllint`), and an SP that
//! signs its own messages.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, OnceLock};

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::{X509Builder, X509NameBuilder, X509};

use super::dsig::SigningMaterial;
use super::sp::{AcsEndpoint, ServiceProvider, SpSettings};
use super::writer::El;

pub struct Keypair {
    pub pkey: PKey<Private>,
    pub cert: X509,
}

impl Keypair {
    pub fn generate(cn: &str) -> Keypair {
        let rsa = Rsa::generate(2048).unwrap();
        let pkey = PKey::from_rsa(rsa).unwrap();
        let mut name = X509NameBuilder::new().unwrap();
        name.append_entry_by_text("CN", cn).unwrap();
        let name = name.build();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&BigNum::from_u32(1).unwrap().to_asn1_integer().unwrap())
            .unwrap();
        b.set_subject_name(&name).unwrap();
        b.set_issuer_name(&name).unwrap();
        b.set_pubkey(&pkey).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(365).unwrap())
            .unwrap();
        b.sign(&pkey, MessageDigest::sha256()).unwrap();
        Keypair {
            pkey,
            cert: b.build(),
        }
    }

    pub fn material(&self) -> SigningMaterial<'_> {
        SigningMaterial::new(&self.pkey, &self.cert)
    }

    pub fn cert_pem(&self) -> String {
        String::from_utf8(self.cert.to_pem().unwrap()).unwrap()
    }

    pub fn key_pem(&self) -> String {
        String::from_utf8(self.pkey.private_key_to_pem_pkcs8().unwrap()).unwrap()
    }
}

/// RSA key generation is slow; each role gets one key for the whole test run.
pub fn idp() -> &'static Keypair {
    static K: OnceLock<Keypair> = OnceLock::new();
    K.get_or_init(|| Keypair::generate("Passerelle test IdP"))
}

pub fn idp_next() -> &'static Keypair {
    static K: OnceLock<Keypair> = OnceLock::new();
    K.get_or_init(|| Keypair::generate("Passerelle test IdP (next)"))
}

pub fn sp_signing() -> &'static Keypair {
    static K: OnceLock<Keypair> = OnceLock::new();
    K.get_or_init(|| Keypair::generate("Test SP signing"))
}

pub fn sp_encryption() -> &'static Keypair {
    static K: OnceLock<Keypair> = OnceLock::new();
    K.get_or_init(|| Keypair::generate("Test SP encryption"))
}

pub const PUBLIC_URL: &str = "https://sso.acme.test";
pub const SP_ENTITY_ID: &str = "https://login.ilucca.test/sso-v2/saml2/acme";
pub const SP_ACS: &str = "https://login.ilucca.test/sso-v2/signon/callback/acme";
pub const SP_SLO: &str = "https://login.ilucca.test/sso-v2/saml2/slo/acme";

/// The test SP, registered with its signing and encryption certificates.
pub fn service_provider() -> Arc<ServiceProvider> {
    Arc::new(ServiceProvider {
        entity_id: SP_ENTITY_ID.into(),
        acs: vec![
            AcsEndpoint {
                index: 0,
                url: SP_ACS.into(),
                binding: super::ns::BINDING_POST.into(),
                is_default: true,
            },
            AcsEndpoint {
                index: 1,
                url: "https://login.ilucca.test/sso-v2/signon/callback/acme-2".into(),
                binding: super::ns::BINDING_POST.into(),
                is_default: false,
            },
            AcsEndpoint {
                index: 2,
                url: "https://login.ilucca.test/artifact".into(),
                binding: "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Artifact".into(),
                is_default: false,
            },
        ],
        signing_certs: vec![sp_signing().cert.clone()],
        encryption_cert: Some(sp_encryption().cert.clone()),
        slo: vec![super::sp::Endpoint {
            binding: super::ns::BINDING_REDIRECT.into(),
            url: SP_SLO.into(),
            response_url: None,
        }],
        authn_requests_signed: true,
        want_assertions_signed: true,
        name_id_formats: vec![super::ns::NAMEID_EMAIL.into()],
        settings: SpSettings::default(),
    })
}

/// A temporary directory for running `tool`, or `None` (with a note) if it is not installed.
pub fn tool_dir(tool: &str) -> Option<tempfile::TempDir> {
    let found = Command::new(tool).arg("--version").output().is_ok();
    if !found {
        eprintln!("NOTE: `{tool}` is not installed; skipping the external check");
        return None;
    }
    Some(tempfile::tempdir().unwrap())
}

pub fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

pub fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program).args(args).output().unwrap()
}

pub fn xsd_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/saml-xsd")
}

/// `xmllint --schema` against one of the vendored schemas; `Err(message)` when invalid.
/// `Ok(false)` when xmllint is not installed.
pub fn validate_xsd(xml: &str, schema: &str) -> Result<bool, String> {
    let Some(dir) = tool_dir("xmllint") else {
        return Ok(false);
    };
    let file = write(dir.path(), "doc.xml", xml);
    let schema = xsd_dir().join(schema);
    let out = run(
        "xmllint",
        &[
            "--nonet",
            "--noout",
            "--schema",
            schema.to_str().unwrap(),
            file.to_str().unwrap(),
        ],
    );
    if out.status.success() {
        Ok(true)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// `xmlsec1 --verify` with our certificate and the SAML ID attributes; `node` picks which
/// signature (by element) when there are several. `Ok(false)` when xmlsec1 is not installed.
pub fn xmlsec_verify(xml: &str, cert: &X509, node: Option<&str>) -> Result<bool, String> {
    let Some(dir) = tool_dir("xmlsec1") else {
        return Ok(false);
    };
    let file = write(dir.path(), "doc.xml", xml);
    let cert = write(
        dir.path(),
        "cert.pem",
        &String::from_utf8(cert.to_pem().unwrap()).unwrap(),
    );
    let mut args = vec![
        "--verify",
        "--pubkey-cert-pem",
        cert.to_str().unwrap(),
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:protocol:Response",
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor",
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:protocol:LogoutRequest",
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:protocol:LogoutResponse",
        "--id-attr:ID",
        "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
    ];
    if let Some(node) = node {
        args.push("--node-name");
        args.push(node);
    }
    args.push(file.to_str().unwrap());
    let out = run("xmlsec1", &args);
    if out.status.success() {
        Ok(true)
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// Spellings of the XML-DSig namespace that libxml2 reads as `http://www.w3.org/2000/09/xmldsig#`
/// (it expands character references in namespace declarations) while a parser that keeps
/// `xmlns` values raw does not.
pub const DSIG_NS_SPELLINGS: &[&str] = &[
    "http://www.w3.org/2000/09/xmldsig&#35;",
    "http://www.w3.org/2000/09/xmldsig&#x23;",
    "http://www.w3.org/2000/09/xmldsig&#x0023;",
    "http&#x3a;//www.w3.org/2000/09/xmldsig#",
    "&#104;ttp://www.w3.org/2000/09/xmldsig#",
];

/// The signature-wrapping forgery through a namespace differential: `genuine` (a message the SP
/// really signed, canonical, no XML declaration) gets its `xmlns:ds` written as `spelling`
/// (still a valid signature for libxml2/xmlsec), and is hidden in the Extensions of `forged`,
/// which carries a signature of its own made with a key the SP never had, placed after it.
/// A checker that sees only the forged signature and a verifier that finds the genuine one
/// first would accept the forged message.
pub fn namespace_differential_forgery(genuine: &str, spelling: &str, forged: El) -> String {
    let hidden = genuine.replace(
        r#"xmlns:ds="http://www.w3.org/2000/09/xmldsig#""#,
        &format!(r#"xmlns:ds="{spelling}""#),
    );
    assert_ne!(hidden, genuine, "the genuine message declares xmlns:ds");
    let mut forged = forged;
    super::dsig::sign_enveloped(&mut forged, 1, &idp_next().material()).unwrap();
    let forged = forged.to_canonical();
    let at = forged.find("</saml:Issuer>").unwrap() + "</saml:Issuer>".len();
    format!(
        "{}<samlp:Extensions>{hidden}</samlp:Extensions>{}",
        &forged[..at],
        &forged[at..]
    )
}
