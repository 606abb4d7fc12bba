//! Our IdP metadata (`GET /saml/metadata`), from an escaped template (the [`El`] writer), not
//! samael's metadata writer, which drops `WantAuthnRequestsSigned` and puts `NameIDFormat` after
//! `SingleSignOnService` (invalid against the metadata schema).
//!
//! Element order inside `IDPSSODescriptor` follows the schema: KeyDescriptor*,
//! SingleLogoutService*, NameIDFormat*, SingleSignOnService+.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use openssl::x509::X509;

use super::dsig::{sign_enveloped, SignError, SigningMaterial};
use super::writer::{El, Ns};
use super::{new_id, ns, saml_time, IdpUrls, NameIdFormat};

pub struct IdpMetadataParams<'a> {
    /// `server.public_url`; every published URL derives from it.
    pub public_url: &'a str,
    pub want_authn_requests_signed: bool,
    /// Every certificate an SP should trust: the current one, plus the next one during rotation
    /// (published before it signs, so SPs that cache metadata pick it up in time).
    pub certificates: &'a [X509],
    pub valid_until: DateTime<Utc>,
    pub cache_duration: Duration,
}

/// The metadata document. Signed (enveloped, first child of `EntityDescriptor`) when `signing`
/// is given.
pub fn render_metadata(
    params: &IdpMetadataParams,
    signing: Option<&SigningMaterial>,
) -> Result<String, SignError> {
    let urls = IdpUrls::new(params.public_url);
    let mut descriptor = El::new(Ns::Metadata, "IDPSSODescriptor")
        .attr(
            "WantAuthnRequestsSigned",
            if params.want_authn_requests_signed {
                "true"
            } else {
                "false"
            },
        )
        .attr("protocolSupportEnumeration", ns::PROTOCOL);
    for cert in params.certificates {
        descriptor = descriptor.child(
            El::new(Ns::Metadata, "KeyDescriptor")
                .attr("use", "signing")
                .child(El::new(Ns::Dsig, "KeyInfo").child(
                    El::new(Ns::Dsig, "X509Data").child(
                        El::new(Ns::Dsig, "X509Certificate").text(B64.encode(cert.to_der()?)),
                    ),
                )),
        );
    }
    for binding in [ns::BINDING_REDIRECT, ns::BINDING_POST] {
        descriptor = descriptor.child(
            El::new(Ns::Metadata, "SingleLogoutService")
                .attr("Binding", binding)
                .attr("Location", urls.slo.as_str()),
        );
    }
    for format in NameIdFormat::ALL {
        descriptor = descriptor.child(El::new(Ns::Metadata, "NameIDFormat").text(format.uri()));
    }
    for binding in [ns::BINDING_REDIRECT, ns::BINDING_POST] {
        descriptor = descriptor.child(
            El::new(Ns::Metadata, "SingleSignOnService")
                .attr("Binding", binding)
                .attr("Location", urls.sso.as_str()),
        );
    }
    let mut entity = El::new(Ns::Metadata, "EntityDescriptor")
        .attr("entityID", urls.entity_id.as_str())
        .attr("validUntil", saml_time(params.valid_until))
        .attr("cacheDuration", xs_duration(params.cache_duration))
        .child(descriptor);
    // An ID is only needed as the signature's reference target.
    if signing.is_some() {
        entity.set_attr("ID", new_id()?);
    }
    // People read metadata; the indentation is part of what is signed, which is fine.
    entity.indent(0);
    if let Some(key) = signing {
        sign_enveloped(&mut entity, 0, key)?;
    }
    Ok(entity.to_document())
}

/// An xs:duration such as `P1DT2H`, `PT5M`, `PT0S`.
pub fn xs_duration(d: Duration) -> String {
    let total = d.as_secs();
    let (days, rest) = (total / 86_400, total % 86_400);
    let (hours, rest) = (rest / 3600, rest % 3600);
    let (minutes, seconds) = (rest / 60, rest % 60);
    let mut out = String::from("P");
    if days > 0 {
        out.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 || days == 0 {
        out.push('T');
        if hours > 0 {
            out.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            out.push_str(&format!("{minutes}M"));
        }
        if seconds > 0 || (hours == 0 && minutes == 0) {
            out.push_str(&format!("{seconds}S"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::testkit;
    use crate::saml::xml::parse_strict;

    fn params(certs: &[X509]) -> IdpMetadataParams<'_> {
        IdpMetadataParams {
            public_url: "https://sso.acme.test/",
            want_authn_requests_signed: true,
            certificates: certs,
            valid_until: Utc::now() + chrono::Duration::days(7),
            cache_duration: Duration::from_secs(86_400),
        }
    }

    #[test]
    fn durations() {
        assert_eq!(xs_duration(Duration::from_secs(0)), "PT0S");
        assert_eq!(xs_duration(Duration::from_secs(86_400)), "P1D");
        assert_eq!(xs_duration(Duration::from_secs(7 * 86_400)), "P7D");
        assert_eq!(xs_duration(Duration::from_secs(90_061)), "P1DT1H1M1S");
        assert_eq!(xs_duration(Duration::from_secs(3600)), "PT1H");
        assert_eq!(xs_duration(Duration::from_secs(300)), "PT5M");
    }

    #[test]
    fn content_and_order() {
        let certs = [
            testkit::idp().cert.clone(),
            testkit::idp_next().cert.clone(),
        ];
        let xml = render_metadata(&params(&certs), None).unwrap();
        let root = parse_strict(&xml, 1 << 20).unwrap();
        assert_eq!(
            root.attr("entityID"),
            Some("https://sso.acme.test/saml/metadata")
        );
        assert_eq!(root.attr("cacheDuration"), Some("P1D"));
        assert!(root.attr("ID").is_none());
        let idp = root.child(ns::METADATA, "IDPSSODescriptor").unwrap();
        assert_eq!(idp.attr("WantAuthnRequestsSigned"), Some("true"));
        let order: Vec<&str> = idp.elements().map(|e| e.local.as_str()).collect();
        assert_eq!(
            order,
            [
                "KeyDescriptor",
                "KeyDescriptor",
                "SingleLogoutService",
                "SingleLogoutService",
                "NameIDFormat",
                "NameIDFormat",
                "NameIDFormat",
                "SingleSignOnService",
                "SingleSignOnService"
            ]
        );
        let sso: Vec<&str> = idp
            .children_named(ns::METADATA, "SingleSignOnService")
            .map(|e| e.attr("Location").unwrap())
            .collect();
        assert_eq!(sso, ["https://sso.acme.test/saml/sso"; 2]);
        let slo = idp.child(ns::METADATA, "SingleLogoutService").unwrap();
        assert_eq!(slo.attr("Location"), Some("https://sso.acme.test/saml/slo"));
    }

    #[test]
    fn validates_against_the_metadata_xsd() {
        let certs = [
            testkit::idp().cert.clone(),
            testkit::idp_next().cert.clone(),
        ];
        let xml = render_metadata(&params(&certs), None).unwrap();
        testkit::validate_xsd(&xml, "saml-schema-metadata-2.0.xsd").unwrap();
        let signed = render_metadata(&params(&certs), Some(&testkit::idp().material())).unwrap();
        testkit::validate_xsd(&signed, "saml-schema-metadata-2.0.xsd").unwrap();
    }

    #[test]
    fn signed_metadata_verifies_with_xmlsec1() {
        let certs = [testkit::idp().cert.clone()];
        let signed = render_metadata(&params(&certs), Some(&testkit::idp().material())).unwrap();
        testkit::xmlsec_verify(&signed, &testkit::idp().cert, None).unwrap();
        if testkit::tool_dir("xmlsec1").is_some() {
            let tampered = signed.replace("/saml/sso", "/evil/sso");
            assert!(testkit::xmlsec_verify(&tampered, &testkit::idp().cert, None).is_err());
        }
    }

    #[test]
    fn samael_reads_it() {
        let certs = [testkit::idp().cert.clone()];
        let xml = render_metadata(&params(&certs), None).unwrap();
        let parsed: samael::metadata::EntityDescriptor = xml.parse().unwrap();
        assert_eq!(
            parsed.entity_id.as_deref(),
            Some("https://sso.acme.test/saml/metadata")
        );
    }
}
