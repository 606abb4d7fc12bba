//! Certificates made at test time with openssl: a CA, and server certificates it signs for
//! 127.0.0.1 and localhost, written as the PEM files `[server] tls_cert` and `tls_key` name.

use std::path::{Path, PathBuf};

use openssl::asn1::{Asn1Integer, Asn1Time};
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectAlternativeName};
use openssl::x509::{X509Builder, X509NameBuilder, X509};

/// The private key formats `tls_key` accepts.
#[derive(Clone, Copy, Debug)]
pub enum KeyFormat {
    /// `BEGIN PRIVATE KEY` (an EC P-256 key).
    Pkcs8Ec,
    /// `BEGIN RSA PRIVATE KEY`.
    Pkcs1Rsa,
    /// `BEGIN EC PRIVATE KEY`.
    Sec1Ec,
}

pub struct TestCa {
    key: PKey<Private>,
    pub cert: X509,
}

/// A server certificate and its key, as files.
pub struct Issued {
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    /// The DER of the server certificate, to compare with what a client was shown.
    pub der: Vec<u8>,
    pub key: PKey<Private>,
}

fn name(cn: &str) -> openssl::x509::X509Name {
    let mut n = X509NameBuilder::new().unwrap();
    n.append_entry_by_nid(Nid::COMMONNAME, cn).unwrap();
    n.build()
}

fn serial() -> Asn1Integer {
    let mut bn = BigNum::new().unwrap();
    bn.rand(64, openssl::bn::MsbOption::MAYBE_ZERO, false)
        .unwrap();
    bn.to_asn1_integer().unwrap()
}

fn ec_key() -> PKey<Private> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).unwrap();
    PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap()
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

impl TestCa {
    pub fn new() -> TestCa {
        let key = ec_key();
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&name("Passerelle test CA")).unwrap();
        b.set_issuer_name(&name("Passerelle test CA")).unwrap();
        b.set_pubkey(&key).unwrap();
        b.set_not_before(&Asn1Time::days_from_now(0).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::days_from_now(30).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().critical().ca().build().unwrap())
            .unwrap();
        b.append_extension(
            KeyUsage::new()
                .critical()
                .key_cert_sign()
                .crl_sign()
                .build()
                .unwrap(),
        )
        .unwrap();
        b.sign(&key, MessageDigest::sha256()).unwrap();
        TestCa {
            key,
            cert: b.build(),
        }
    }

    pub fn pem(&self) -> Vec<u8> {
        self.cert.to_pem().unwrap()
    }

    /// A server certificate for 127.0.0.1 and localhost valid from yesterday for `days` more
    /// days (negative: it expired), its key in `format`, written to `dir/NAME.crt.pem` (with
    /// the CA after it, as a full chain) and `dir/NAME.key.pem` (mode 0600).
    pub fn issue(&self, dir: &Path, file: &str, days: i64, format: KeyFormat) -> Issued {
        let (key, key_pem) = match format {
            KeyFormat::Pkcs8Ec => {
                let key = ec_key();
                let pem = key.private_key_to_pem_pkcs8().unwrap();
                (key, pem)
            }
            KeyFormat::Sec1Ec => {
                let key = ec_key();
                let pem = key.ec_key().unwrap().private_key_to_pem().unwrap();
                (key, pem)
            }
            KeyFormat::Pkcs1Rsa => {
                let rsa = Rsa::generate(2048).unwrap();
                let pem = rsa.private_key_to_pem().unwrap();
                (PKey::from_rsa(rsa).unwrap(), pem)
            }
        };
        let mut b = X509Builder::new().unwrap();
        b.set_version(2).unwrap();
        b.set_serial_number(&serial()).unwrap();
        b.set_subject_name(&name(&format!("{file}.passerelle.test")))
            .unwrap();
        b.set_issuer_name(self.cert.subject_name()).unwrap();
        b.set_pubkey(&key).unwrap();
        let now = unix_now();
        b.set_not_before(&Asn1Time::from_unix(now - 2 * 86_400).unwrap())
            .unwrap();
        b.set_not_after(&Asn1Time::from_unix(now + days * 86_400).unwrap())
            .unwrap();
        b.append_extension(BasicConstraints::new().build().unwrap())
            .unwrap();
        let san = SubjectAlternativeName::new()
            .dns("localhost")
            .ip("127.0.0.1")
            .build(&b.x509v3_context(Some(&self.cert), None))
            .unwrap();
        b.append_extension(san).unwrap();
        b.sign(&self.key, MessageDigest::sha256()).unwrap();
        let cert = b.build();
        let cert_path = dir.join(format!("{file}.crt.pem"));
        let key_path = dir.join(format!("{file}.key.pem"));
        let mut chain = cert.to_pem().unwrap();
        chain.extend(self.pem());
        std::fs::write(&cert_path, chain).unwrap();
        write_private(&key_path, &key_pem);
        Issued {
            cert_path,
            key_path,
            der: cert.to_der().unwrap(),
            key,
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}

/// Write a key file readable by this user only.
pub fn write_private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
}

/// An HTTPS client that trusts `ca` only and shows the server's certificate
/// (`reqwest::tls::TlsInfo` on each response). A new one per connection wanted: no pool.
pub fn client(ca: &TestCa, http2: bool) -> reqwest::Client {
    let builder = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(&ca.pem()).unwrap()])
        .tls_info(true)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(std::time::Duration::from_secs(20));
    let builder = if http2 { builder } else { builder.http1_only() };
    builder.build().unwrap()
}

/// The DER of the certificate the server presented for `response`.
pub fn peer_certificate(response: &reqwest::Response) -> Vec<u8> {
    response
        .extensions()
        .get::<reqwest::tls::TlsInfo>()
        .and_then(|info| info.peer_certificate())
        .expect("a TLS response shows the peer certificate")
        .to_vec()
}
