//! What the SAML targets share: the IdP's policy, a clock, and two registered SPs. The names
//! and the certificate are those the seed corpora were written with
//! (`cargo test --lib saml::fuzz_seeds -- --ignored` in the main crate).
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use chrono::{DateTime, Utc};
use passerelle::config::SamlConfig;
use passerelle::saml::sp::Endpoint;
use passerelle::saml::{IntakePolicy, ServiceProvider, SpRegistry};

pub const PUBLIC_URL: &str = "https://sso.fuzz.test";
/// Signs everything with the seed certificate (the default rules).
pub const SP_STRICT: &str = "https://sp.fuzz.test/strict";
/// Sends unsigned AuthnRequests and logout messages (allowed), so mutated messages reach the
/// field readers.
pub const SP_LENIENT: &str = "https://sp.fuzz.test/lenient";
const SEED_CERT: &str = include_str!("../seeds/sp-signing.crt.pem");

/// The seeds' IssueInstant is a few seconds before this.
pub fn now() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2025-06-01T10:00:00Z")
        .expect("fixed instant")
        .with_timezone(&Utc)
}

pub fn policy() -> &'static IntakePolicy {
    static POLICY: OnceLock<IntakePolicy> = OnceLock::new();
    POLICY.get_or_init(|| {
        IntakePolicy::new(
            &passerelle::saml::IdpUrls::new(PUBLIC_URL),
            &SamlConfig::default(),
        )
    })
}

pub fn registry() -> &'static Arc<SpRegistry> {
    static REGISTRY: OnceLock<Arc<SpRegistry>> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let sp = |entity: &str, cert: Option<&str>| {
            let mut sp = ServiceProvider::from_parts(entity, &format!("{entity}/acs"), cert)
                .expect("fixture SP");
            sp.slo = vec![Endpoint {
                binding: passerelle::saml::ns::BINDING_REDIRECT.into(),
                url: format!("{entity}/slo"),
                response_url: None,
            }];
            sp
        };
        let strict = sp(SP_STRICT, Some(SEED_CERT));
        let mut lenient = sp(SP_LENIENT, None);
        lenient.settings.require_signed_requests = Some(false);
        lenient.settings.allow_unsigned_logout = true;
        Arc::new(SpRegistry::new([strict, lenient]).expect("fixture registry"))
    })
}
