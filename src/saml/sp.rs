//! Service providers we answer: what their metadata (or the config) says, and the per-SP
//! settings from `[[saml.service_providers]]`.
//!
//! SP metadata is read with our own namespace-aware reader after the strict XML gate, not with
//! samael's serde structs: those ignore namespaces and fail on ordinary metadata (an ISO 8601
//! `cacheDuration` on `SPSSODescriptor` is typed as an integer there).
//!
//! Metadata signatures are not checked: metadata comes from a file the admin placed or an HTTPS
//! URL the admin configured, which is the trust decision.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use openssl::x509::X509;

use super::binding::Binding;
use super::ns;
use super::response::AttributeNameFormat;
use super::xml::{parse_strict, Element, XmlError};
use super::NameIdFormat;
use crate::config::{MatchOn, ServiceProviderConfig};

/// SP metadata larger than this is not one SP's metadata.
pub const MAX_METADATA_BYTES: usize = 1024 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcsEndpoint {
    pub index: u16,
    pub url: String,
    pub binding: String,
    pub is_default: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub binding: String,
    pub url: String,
    pub response_url: Option<String>,
}

/// Admin choices for one SP (`[[saml.service_providers]]`), defaults as in the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpSettings {
    pub name: Option<String>,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub encrypt_assertion: bool,
    /// Overrides `saml.want_authn_requests_signed` for this SP.
    pub require_signed_requests: Option<bool>,
    /// Accept this SP's LogoutRequests/LogoutResponses unsigned (off: they must be signed
    /// whatever `require_signed_requests` says).
    pub allow_unsigned_logout: bool,
    pub name_id_format: NameIdFormat,
    /// Overrides `[lucca] match_on`: what the NameID carries (email or login).
    pub identifier: Option<MatchOn>,
    pub attribute_name_format: AttributeNameFormat,
    /// `allowed_groups`, trimmed: empty = everyone.
    pub allowed_groups: Vec<String>,
}

impl Default for SpSettings {
    fn default() -> Self {
        SpSettings {
            name: None,
            sign_response: true,
            sign_assertion: true,
            encrypt_assertion: false,
            require_signed_requests: None,
            allow_unsigned_logout: false,
            name_id_format: NameIdFormat::EmailAddress,
            identifier: None,
            attribute_name_format: AttributeNameFormat::Unspecified,
            allowed_groups: Vec::new(),
        }
    }
}

/// One registered service provider.
#[derive(Debug, Clone)]
pub struct ServiceProvider {
    pub entity_id: String,
    /// All AssertionConsumerService endpoints from metadata (any binding; we only ever POST).
    pub acs: Vec<AcsEndpoint>,
    /// Certificates its requests may be signed with (several during its key rotation).
    pub signing_certs: Vec<X509>,
    pub encryption_cert: Option<X509>,
    pub slo: Vec<Endpoint>,
    /// `AuthnRequestsSigned` from its metadata: it says it signs, so we insist.
    pub authn_requests_signed: bool,
    pub want_assertions_signed: bool,
    pub name_id_formats: Vec<String>,
    pub settings: SpSettings,
}

#[derive(Debug, thiserror::Error)]
pub enum SpError {
    #[error("SP metadata is not acceptable XML: {0}")]
    Xml(#[from] XmlError),
    #[error("SP metadata must be an EntityDescriptor, found <{0}>")]
    NotMetadata(String),
    #[error("SP metadata has no SPSSODescriptor supporting SAML 2.0")]
    NoSpDescriptor,
    #[error("SP metadata describes {0} service providers; give the metadata of exactly one")]
    SeveralEntities(usize),
    #[error("SP metadata has no entityID")]
    MissingEntityId,
    #[error(
        "no AssertionConsumerService with the HTTP-POST binding (the only binding we answer with)"
    )]
    NoPostAcs,
    #[error("an AssertionConsumerService has no Location")]
    AcsWithoutLocation,
    #[error("{what} is not an absolute URL: {value:?}")]
    BadUrl { what: &'static str, value: String },
    #[error("the {usage} certificate cannot be read: {reason}")]
    BadCertificate { usage: &'static str, reason: String },
    #[error("cannot read {path}: {reason}")]
    ReadFile { path: PathBuf, reason: String },
    #[error(
        "a service provider needs metadata (metadata_file or metadata_url) or entity_id + acs_url"
    )]
    NotEnoughToRegister,
    #[error(
        "metadata_url {0} must be fetched first; pass the document to ServiceProvider::from_config"
    )]
    MetadataNotFetched(String),
    #[error("entity_id {configured:?} does not match the metadata's entityID {metadata:?}")]
    EntityIdMismatch {
        configured: String,
        metadata: String,
    },
    #[error("encrypt_assertion is on for {0} but it has no encryption certificate")]
    NoEncryptionCertificate(String),
    #[error("name_id_format {0:?} is not one of email, persistent, unspecified")]
    BadNameIdFormat(String),
    #[error("identifier {0:?} is not one of email, login")]
    BadIdentifier(String),
    #[error("attribute_name_format {0:?} is not one of unspecified, uri, basic")]
    BadAttributeNameFormat(String),
    #[error("service provider {0} is registered twice")]
    DuplicateEntityId(String),
}

impl ServiceProvider {
    /// Read SP metadata (an `EntityDescriptor`, or an `EntitiesDescriptor` holding exactly one SP).
    pub fn from_metadata_xml(xml: &str) -> Result<ServiceProvider, SpError> {
        let root = parse_strict(xml, MAX_METADATA_BYTES)?;
        let entity = single_sp_entity(&root)?;
        let entity_id = entity
            .attr("entityID")
            .map(str::trim)
            .filter(|id| !id.is_empty())
            .ok_or(SpError::MissingEntityId)?
            .to_string();
        let descriptor = entity
            .children_named(ns::METADATA, "SPSSODescriptor")
            .find(|d| supports_saml2(d))
            .ok_or(SpError::NoSpDescriptor)?;

        let mut signing_certs = Vec::new();
        let mut encryption_cert = None;
        for key in descriptor.children_named(ns::METADATA, "KeyDescriptor") {
            let usage = key.attr("use").unwrap_or_default();
            for cert in key_descriptor_certs(key)? {
                // No `use` means the key serves both purposes.
                if usage != "encryption" {
                    signing_certs.push(cert.clone());
                }
                if usage != "signing" && encryption_cert.is_none() {
                    encryption_cert = Some(cert);
                }
            }
        }

        let mut acs = Vec::new();
        for (position, endpoint) in descriptor
            .children_named(ns::METADATA, "AssertionConsumerService")
            .enumerate()
        {
            let url = endpoint
                .attr("Location")
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .ok_or(SpError::AcsWithoutLocation)?;
            check_url("AssertionConsumerService Location", url)?;
            acs.push(AcsEndpoint {
                // `index` is required by the schema; tolerate its absence with the position.
                index: endpoint
                    .attr("index")
                    .and_then(|i| i.trim().parse().ok())
                    .unwrap_or(position as u16),
                url: url.to_string(),
                binding: endpoint
                    .attr("Binding")
                    .unwrap_or_default()
                    .trim()
                    .to_string(),
                is_default: endpoint.attr("isDefault").is_some_and(xs_true),
            });
        }
        let slo = descriptor
            .children_named(ns::METADATA, "SingleLogoutService")
            .filter_map(|e| {
                Some(Endpoint {
                    binding: e.attr("Binding")?.trim().to_string(),
                    url: e.attr("Location")?.trim().to_string(),
                    response_url: e.attr("ResponseLocation").map(|r| r.trim().to_string()),
                })
            })
            .collect();
        let sp = ServiceProvider {
            entity_id,
            acs,
            signing_certs,
            encryption_cert,
            slo,
            authn_requests_signed: descriptor.attr("AuthnRequestsSigned").is_some_and(xs_true),
            want_assertions_signed: descriptor.attr("WantAssertionsSigned").is_some_and(xs_true),
            name_id_formats: descriptor
                .children_named(ns::METADATA, "NameIDFormat")
                .map(|f| f.text().trim().to_string())
                .collect(),
            settings: SpSettings::default(),
        };
        sp.default_acs().ok_or(SpError::NoPostAcs)?;
        Ok(sp)
    }

    /// An SP registered by hand: entity ID, one HTTP-POST ACS URL and optionally its signing
    /// certificate (PEM text, or the path of a PEM/DER file).
    pub fn from_parts(
        entity_id: &str,
        acs_url: &str,
        certificate: Option<&str>,
    ) -> Result<ServiceProvider, SpError> {
        let entity_id = entity_id.trim();
        if entity_id.is_empty() {
            return Err(SpError::MissingEntityId);
        }
        check_url("acs_url", acs_url.trim())?;
        let signing_certs = match certificate {
            Some(cert) => vec![read_certificate(cert)?],
            None => Vec::new(),
        };
        Ok(ServiceProvider {
            entity_id: entity_id.to_string(),
            acs: vec![AcsEndpoint {
                index: 0,
                url: acs_url.trim().to_string(),
                binding: ns::BINDING_POST.to_string(),
                is_default: true,
            }],
            signing_certs,
            encryption_cert: None,
            slo: Vec::new(),
            authn_requests_signed: false,
            want_assertions_signed: true,
            name_id_formats: Vec::new(),
            settings: SpSettings::default(),
        })
    }

    /// Build from one `[[saml.service_providers]]` entry. `metadata_xml` is the document when the
    /// caller already has it (fetched from `metadata_url`); otherwise `metadata_file` is read,
    /// or `entity_id` + `acs_url` (+ `certificate`) are used.
    pub fn from_config(
        config: &ServiceProviderConfig,
        metadata_xml: Option<&str>,
    ) -> Result<ServiceProvider, SpError> {
        let mut sp = if let Some(xml) = metadata_xml {
            ServiceProvider::from_metadata_xml(xml)?
        } else if let Some(path) = &config.metadata_file {
            ServiceProvider::from_metadata_xml(&read_text(path)?)?
        } else if let Some(url) = &config.metadata_url {
            return Err(SpError::MetadataNotFetched(url.clone()));
        } else {
            match (&config.entity_id, &config.acs_url) {
                (Some(entity_id), Some(acs_url)) => {
                    ServiceProvider::from_parts(entity_id, acs_url, config.certificate.as_deref())?
                }
                _ => return Err(SpError::NotEnoughToRegister),
            }
        };
        let from_metadata = metadata_xml.is_some() || config.metadata_file.is_some();
        if from_metadata {
            if let Some(configured) = &config.entity_id {
                if configured.trim() != sp.entity_id {
                    return Err(SpError::EntityIdMismatch {
                        configured: configured.clone(),
                        metadata: sp.entity_id,
                    });
                }
            }
            // A certificate in the config is trusted in addition to the metadata's.
            if let Some(cert) = &config.certificate {
                sp.signing_certs.push(read_certificate(cert)?);
            }
        }
        if let Some(slo) = &config.slo_url {
            check_url("slo_url", slo)?;
            sp.slo = vec![Endpoint {
                binding: ns::BINDING_REDIRECT.to_string(),
                url: slo.clone(),
                response_url: None,
            }];
        }
        sp.settings = SpSettings {
            name: config.name.clone(),
            sign_response: config.sign_response,
            sign_assertion: config.sign_assertion,
            encrypt_assertion: config.encrypt_assertion,
            require_signed_requests: config.require_signed_requests,
            allow_unsigned_logout: config.allow_unsigned_logout,
            name_id_format: match &config.name_id_format {
                Some(f) => NameIdFormat::from_config(f)
                    .ok_or_else(|| SpError::BadNameIdFormat(f.clone()))?,
                None => NameIdFormat::EmailAddress,
            },
            identifier: match config.identifier.as_deref().map(str::trim) {
                None => None,
                Some("email") => Some(MatchOn::Email),
                Some("login") => Some(MatchOn::Login),
                Some(other) => return Err(SpError::BadIdentifier(other.to_string())),
            },
            attribute_name_format: match config.attribute_name_format.as_deref().map(str::trim) {
                None | Some("unspecified") => AttributeNameFormat::Unspecified,
                Some("uri") => AttributeNameFormat::Uri,
                Some("basic") => AttributeNameFormat::Basic,
                Some(other) => return Err(SpError::BadAttributeNameFormat(other.to_string())),
            },
            allowed_groups: crate::pipeline::clean_groups(&config.allowed_groups),
        };
        if sp.settings.encrypt_assertion && sp.encryption_cert.is_none() {
            return Err(SpError::NoEncryptionCertificate(sp.entity_id));
        }
        Ok(sp)
    }

    /// The ACS a Response goes to when the request names none (or for IdP-initiated sign-in):
    /// among HTTP-POST endpoints, the one marked `isDefault`, else the lowest index.
    pub fn default_acs(&self) -> Option<&AcsEndpoint> {
        let post = || self.acs.iter().filter(|a| a.binding == ns::BINDING_POST);
        post()
            .find(|a| a.is_default)
            .or_else(|| post().min_by_key(|a| a.index))
    }

    pub fn acs_by_url(&self, url: &str) -> Option<&AcsEndpoint> {
        // Exact comparison: any normalisation would let a look-alike URL through.
        self.acs.iter().find(|a| a.url == url)
    }

    pub fn acs_by_index(&self, index: u16) -> Option<&AcsEndpoint> {
        self.acs.iter().find(|a| a.index == index)
    }

    /// Where to send our LogoutRequest/LogoutResponse: HTTP-Redirect preferred, then HTTP-POST.
    pub fn slo_endpoint(&self) -> Option<&Endpoint> {
        self.slo
            .iter()
            .find(|e| e.binding == ns::BINDING_REDIRECT)
            .or_else(|| self.slo.iter().find(|e| e.binding == ns::BINDING_POST))
    }

    /// Must this SP's requests be signed? The per-SP override wins; otherwise the global setting,
    /// or the SP's own metadata saying it signs.
    pub fn requires_signed_requests(&self, global_default: bool) -> bool {
        self.settings
            .require_signed_requests
            .unwrap_or(global_default || self.authn_requests_signed)
    }

    /// The reply target of an IdP-initiated sign-in (no request: no InResponseTo).
    pub fn idp_initiated_reply(&self, relay_state: Option<String>) -> Result<ReplyTo, SpError> {
        let acs = self.default_acs().ok_or(SpError::NoPostAcs)?;
        Ok(ReplyTo {
            sp_entity_id: self.entity_id.clone(),
            destination: acs.url.clone(),
            binding: Binding::Post,
            in_response_to: None,
            relay_state,
        })
    }

    pub fn display_name(&self) -> &str {
        self.settings.name.as_deref().unwrap_or(&self.entity_id)
    }
}

/// Where an answer (Response, LogoutResponse) goes: only ever built from an endpoint the SP
/// registered (an HTTP-POST ACS, or its SLO endpoint).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyTo {
    pub sp_entity_id: String,
    /// The URL, also written as the message's `Destination`.
    pub destination: String,
    pub binding: Binding,
    pub in_response_to: Option<String>,
    pub relay_state: Option<String>,
}

/// How request intake finds the SP named by a message's Issuer.
pub trait ServiceProviderLookup {
    fn find_service_provider(&self, entity_id: &str) -> Option<Arc<ServiceProvider>>;
}

impl<F> ServiceProviderLookup for F
where
    F: Fn(&str) -> Option<Arc<ServiceProvider>>,
{
    fn find_service_provider(&self, entity_id: &str) -> Option<Arc<ServiceProvider>> {
        self(entity_id)
    }
}

/// The registered SPs by entity ID (swap the whole registry on metadata refresh).
#[derive(Debug, Clone, Default)]
pub struct SpRegistry {
    by_entity_id: HashMap<String, Arc<ServiceProvider>>,
}

impl SpRegistry {
    pub fn new(sps: impl IntoIterator<Item = ServiceProvider>) -> Result<SpRegistry, SpError> {
        let mut by_entity_id = HashMap::new();
        for sp in sps {
            let id = sp.entity_id.clone();
            if by_entity_id.insert(id.clone(), Arc::new(sp)).is_some() {
                return Err(SpError::DuplicateEntityId(id));
            }
        }
        Ok(SpRegistry { by_entity_id })
    }

    pub fn get(&self, entity_id: &str) -> Option<Arc<ServiceProvider>> {
        self.by_entity_id.get(entity_id).cloned()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ServiceProvider>> {
        self.by_entity_id.values()
    }
}

impl ServiceProviderLookup for SpRegistry {
    fn find_service_provider(&self, entity_id: &str) -> Option<Arc<ServiceProvider>> {
        self.get(entity_id)
    }
}

fn single_sp_entity(root: &Element) -> Result<&Element, SpError> {
    if root.is(ns::METADATA, "EntityDescriptor") {
        return Ok(root);
    }
    if !root.is(ns::METADATA, "EntitiesDescriptor") {
        return Err(SpError::NotMetadata(root.local.clone()));
    }
    let mut found = Vec::new();
    root.walk(&mut |e, _| {
        if e.is(ns::METADATA, "EntityDescriptor")
            && e.children_named(ns::METADATA, "SPSSODescriptor")
                .any(supports_saml2)
        {
            found.push(e);
        }
    });
    match found.as_slice() {
        [] => Err(SpError::NoSpDescriptor),
        [one] => Ok(one),
        more => Err(SpError::SeveralEntities(more.len())),
    }
}

fn supports_saml2(descriptor: &Element) -> bool {
    descriptor
        .attr("protocolSupportEnumeration")
        .is_some_and(|p| p.split_whitespace().any(|p| p == ns::PROTOCOL))
}

fn xs_true(value: &str) -> bool {
    matches!(value.trim(), "true" | "1")
}

fn key_descriptor_certs(key: &Element) -> Result<Vec<X509>, SpError> {
    let usage = match key.attr("use") {
        Some("encryption") => "encryption",
        _ => "signing",
    };
    let mut certs = Vec::new();
    let Some(info) = key.child(ns::DSIG, "KeyInfo") else {
        return Ok(certs);
    };
    for data in info.children_named(ns::DSIG, "X509Data") {
        for cert in data.children_named(ns::DSIG, "X509Certificate") {
            let b64: String = cert.text().split_whitespace().collect();
            let der = B64.decode(b64).map_err(|e| SpError::BadCertificate {
                usage,
                reason: format!("not base64: {e}"),
            })?;
            certs.push(X509::from_der(&der).map_err(|e| SpError::BadCertificate {
                usage,
                reason: e.to_string(),
            })?);
        }
    }
    Ok(certs)
}

fn check_url(what: &'static str, value: &str) -> Result<(), SpError> {
    match url::Url::parse(value) {
        Ok(u) if matches!(u.scheme(), "https" | "http") => Ok(()),
        _ => Err(SpError::BadUrl {
            what,
            value: value.to_string(),
        }),
    }
}

/// A certificate given as PEM text, or as the path of a PEM or DER file.
pub fn read_certificate(input: &str) -> Result<X509, SpError> {
    let bad = |reason: String| SpError::BadCertificate {
        usage: "signing",
        reason,
    };
    if input.contains("-----BEGIN") {
        return X509::from_pem(input.trim().as_bytes()).map_err(|e| bad(e.to_string()));
    }
    let path = Path::new(input.trim());
    let bytes = std::fs::read(path).map_err(|e| SpError::ReadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    X509::from_pem(&bytes)
        .or_else(|_| X509::from_der(&bytes))
        .map_err(|e| bad(format!("{}: {e}", path.display())))
}

fn read_text(path: &Path) -> Result<String, SpError> {
    std::fs::read_to_string(path).map_err(|e| SpError::ReadFile {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::testkit;

    const LUCCA: &str = include_str!("testdata/lucca-sp-metadata.xml");
    const LUCCA_ID: &str =
        "https://login.ilucca.net/sso-v2/saml2/3f9c2a7e-5b1d-4c8e-9a61-0d2e7b4f8c13";

    #[test]
    fn reads_lucca_like_metadata() {
        let sp = ServiceProvider::from_metadata_xml(LUCCA).unwrap();
        assert_eq!(sp.entity_id, LUCCA_ID);
        assert_eq!(sp.acs.len(), 2);
        let acs = sp.default_acs().unwrap();
        assert_eq!(
            acs.url,
            "https://login.ilucca.net/sso-v2/signon/callback/3f9c2a7e-5b1d-4c8e-9a61-0d2e7b4f8c13"
        );
        assert_eq!(acs.index, 0);
        assert_eq!(sp.signing_certs.len(), 1);
        assert!(sp.encryption_cert.is_some());
        assert_ne!(
            sp.signing_certs[0].to_der().unwrap(),
            sp.encryption_cert.as_ref().unwrap().to_der().unwrap()
        );
        assert_eq!(sp.slo_endpoint().unwrap().binding, ns::BINDING_REDIRECT);
        assert!(sp.authn_requests_signed);
        assert!(sp.requires_signed_requests(false));
        assert_eq!(sp.name_id_formats[0], ns::NAMEID_EMAIL);
    }

    #[test]
    fn the_example_file_matches_the_fixture() {
        let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/lucca-sp-metadata.xml");
        if let Ok(text) = std::fs::read_to_string(example) {
            let sp = ServiceProvider::from_metadata_xml(&text).unwrap();
            assert!(sp.default_acs().is_some());
        }
    }

    #[test]
    fn metadata_errors_say_what_is_missing() {
        let no_post = LUCCA.replace(
            "bindings:HTTP-POST\"\n                                     Location=\"https://login.ilucca.net/sso-v2/signon/callback",
            "bindings:PAOS\"\n                                     Location=\"https://login.ilucca.net/sso-v2/signon/callback",
        );
        let err = ServiceProvider::from_metadata_xml(&no_post).unwrap_err();
        assert_eq!(
            err.to_string(),
            "no AssertionConsumerService with the HTTP-POST binding (the only binding we answer with)"
        );
        let no_id = LUCCA.replace(&format!("entityID=\"{LUCCA_ID}\""), "");
        assert!(matches!(
            ServiceProvider::from_metadata_xml(&no_id),
            Err(SpError::MissingEntityId)
        ));
        let dtd = format!(
            "<!DOCTYPE x [<!ENTITY e \"x\">]>{}",
            &LUCCA[LUCCA.find("<md:").unwrap()..]
        );
        assert!(matches!(
            ServiceProvider::from_metadata_xml(&dtd),
            Err(SpError::Xml(XmlError::Dtd))
        ));
        let idp_only = r#"<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></md:EntityDescriptor>"#;
        assert!(matches!(
            ServiceProvider::from_metadata_xml(idp_only),
            Err(SpError::NoSpDescriptor)
        ));
        let bad_cert = LUCCA.replacen("MII", "MIX", 1);
        assert!(matches!(
            ServiceProvider::from_metadata_xml(&bad_cert),
            Err(SpError::BadCertificate {
                usage: "signing",
                ..
            })
        ));
    }

    #[test]
    fn default_namespace_and_entities_descriptor() {
        let cert = testkit::sp_signing().cert_pem();
        let body: String = cert.lines().filter(|l| !l.contains("-----")).collect();
        let xml = format!(
            r#"<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata">
  <EntityDescriptor entityID="https://sp.test">
    <SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:1.1:protocol urn:oasis:names:tc:SAML:2.0:protocol">
      <KeyDescriptor><KeyInfo xmlns="http://www.w3.org/2000/09/xmldsig#"><X509Data><X509Certificate>{body}</X509Certificate></X509Data></KeyInfo></KeyDescriptor>
      <AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.test/acs2" index="2"/>
      <AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://sp.test/acs1" index="1"/>
    </SPSSODescriptor>
  </EntityDescriptor>
</EntitiesDescriptor>"#
        );
        let sp = ServiceProvider::from_metadata_xml(&xml).unwrap();
        assert_eq!(sp.entity_id, "https://sp.test");
        // No isDefault: the lowest index.
        assert_eq!(sp.default_acs().unwrap().url, "https://sp.test/acs1");
        // A KeyDescriptor without `use` serves both.
        assert_eq!(sp.signing_certs.len(), 1);
        assert!(sp.encryption_cert.is_some());
    }

    #[test]
    fn from_config_variants() {
        let dir = tempfile::tempdir().unwrap();
        let pem_path = testkit::write(dir.path(), "sp.pem", &testkit::sp_signing().cert_pem());
        let config = ServiceProviderConfig {
            entity_id: Some("https://sp.test".into()),
            acs_url: Some("https://sp.test/acs".into()),
            certificate: Some(pem_path.display().to_string()),
            name_id_format: Some("persistent".into()),
            identifier: Some("login".into()),
            ..ServiceProviderConfig::default()
        };
        let sp = ServiceProvider::from_config(&config, None).unwrap();
        assert_eq!(sp.signing_certs.len(), 1);
        assert_eq!(sp.settings.name_id_format, NameIdFormat::Persistent);
        assert_eq!(sp.settings.identifier, Some(MatchOn::Login));
        assert!(sp.requires_signed_requests(true));
        assert!(!sp.requires_signed_requests(false));

        let inline = ServiceProviderConfig {
            certificate: Some(testkit::sp_signing().cert_pem()),
            ..config.clone()
        };
        assert!(ServiceProvider::from_config(&inline, None).is_ok());

        let encrypt_without_cert = ServiceProviderConfig {
            encrypt_assertion: true,
            ..config.clone()
        };
        assert!(matches!(
            ServiceProvider::from_config(&encrypt_without_cert, None),
            Err(SpError::NoEncryptionCertificate(_))
        ));

        let metadata_path = testkit::write(dir.path(), "md.xml", LUCCA);
        let from_file = ServiceProviderConfig {
            metadata_file: Some(metadata_path),
            encrypt_assertion: true,
            ..ServiceProviderConfig::default()
        };
        let sp = ServiceProvider::from_config(&from_file, None).unwrap();
        assert_eq!(sp.entity_id, LUCCA_ID);

        let mismatch = ServiceProviderConfig {
            entity_id: Some("https://other.test".into()),
            ..from_file.clone()
        };
        assert!(matches!(
            ServiceProvider::from_config(&mismatch, None),
            Err(SpError::EntityIdMismatch { .. })
        ));
        let url_only = ServiceProviderConfig {
            metadata_url: Some("https://lucca.test/md".into()),
            ..ServiceProviderConfig::default()
        };
        assert!(matches!(
            ServiceProvider::from_config(&url_only, None),
            Err(SpError::MetadataNotFetched(_))
        ));
        assert!(ServiceProvider::from_config(&url_only, Some(LUCCA)).is_ok());
        assert!(matches!(
            ServiceProvider::from_config(&ServiceProviderConfig::default(), None),
            Err(SpError::NotEnoughToRegister)
        ));
        let bad_format = ServiceProviderConfig {
            name_id_format: Some("transient".into()),
            ..config
        };
        assert!(matches!(
            ServiceProvider::from_config(&bad_format, None),
            Err(SpError::BadNameIdFormat(_))
        ));
    }

    #[test]
    fn registry_refuses_duplicates() {
        let a =
            ServiceProvider::from_parts("https://sp.test", "https://sp.test/acs", None).unwrap();
        let registry = SpRegistry::new([a.clone()]).unwrap();
        assert!(registry.find_service_provider("https://sp.test").is_some());
        assert!(registry
            .find_service_provider("https://other.test")
            .is_none());
        assert!(matches!(
            SpRegistry::new([a.clone(), a]),
            Err(SpError::DuplicateEntityId(_))
        ));
    }
}
