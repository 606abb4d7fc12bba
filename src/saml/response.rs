//! The Response we POST to the SP's ACS: success (with an Assertion, signed and optionally
//! encrypted) or error (a status, no Assertion).
//!
//! Built as an [`El`] tree, i.e. written directly in canonical form with every value escaped
//! (samael's structs write text unescaped). Signatures go where the schema wants them: right
//! after the `Issuer` of the Assertion, and right after the `Issuer` of the Response. The
//! Assertion is signed first, so the Response signature covers the Assertion's signature too.

use std::time::Duration;

use chrono::{DateTime, Utc};
use openssl::x509::X509;

use super::binding::encode_post;
use super::dsig::{sign_enveloped, SignError, SigningMaterial};
use super::encrypt::{encrypt_assertion, EncryptError};
use super::sp::ReplyTo;
use super::writer::{El, Ns};
use super::{new_id, ns, saml_time, NameIdFormat, SamlStatus};
use crate::config::MatchOn;
use crate::identity::Claims;

/// `NameFormat` of the attributes we release.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttributeNameFormat {
    /// The SAML default; what Entra ID and ADFS send. Accepted by every SP.
    #[default]
    Unspecified,
    Basic,
    Uri,
}

impl AttributeNameFormat {
    pub fn uri(self) -> &'static str {
        match self {
            AttributeNameFormat::Unspecified => {
                "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified"
            }
            AttributeNameFormat::Basic => "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
            AttributeNameFormat::Uri => "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
        }
    }
}

/// `AuthnContextClassRef` of the AuthnStatement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AuthnContextClass {
    /// A password over TLS: our local sign-in form.
    #[default]
    PasswordProtectedTransport,
    /// Authenticated upstream, by means we do not know.
    Unspecified,
}

impl AuthnContextClass {
    pub fn uri(self) -> &'static str {
        match self {
            AuthnContextClass::PasswordProtectedTransport => {
                "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
            }
            AuthnContextClass::Unspecified => "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified",
        }
    }
}

/// One released attribute.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SamlAttribute {
    pub name: String,
    pub friendly_name: Option<String>,
    pub values: Vec<String>,
}

pub const CLAIM_EMAIL: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
pub const CLAIM_GIVEN_NAME: &str =
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname";
pub const CLAIM_SURNAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname";

/// The attributes released for `claims`: short names (`email`, `given_name`, `family_name`,
/// `employee_number`, `department`, `manager_email`, multi-valued `groups` = the roles), then the
/// usual claim URIs for email, given name and surname (Google/Entra-style SPs look for those).
/// With `[claims] module_roles_claim` (say `lucca_roles`), the roles of each Lucca module follow
/// as one multi-valued attribute per module, `lucca_roles.figgo`: SAML has no nested values, and
/// an SP reads one attribute per module as it would read one claim. Empty values are left out.
/// Also what the admin preview shows.
pub fn attributes_from_claims(
    claims: &Claims,
    module_roles_claim: Option<&str>,
) -> Vec<SamlAttribute> {
    let mut out = Vec::new();
    let mut single = |name: &str, friendly: Option<&str>, value: Option<&str>| {
        if let Some(value) = value.filter(|v| !v.is_empty()) {
            out.push(SamlAttribute {
                name: name.to_string(),
                friendly_name: friendly.map(str::to_string),
                values: vec![value.to_string()],
            });
        }
    };
    single("email", None, Some(&claims.email));
    single("given_name", None, claims.given_name.as_deref());
    single("family_name", None, claims.family_name.as_deref());
    single("employee_number", None, claims.employee_number.as_deref());
    single("department", None, claims.department.as_deref());
    single("manager_email", None, claims.manager_email.as_deref());
    single(CLAIM_EMAIL, Some("email"), Some(&claims.email));
    single(
        CLAIM_GIVEN_NAME,
        Some("given_name"),
        claims.given_name.as_deref(),
    );
    single(
        CLAIM_SURNAME,
        Some("family_name"),
        claims.family_name.as_deref(),
    );
    if !claims.roles.is_empty() {
        out.push(SamlAttribute {
            name: "groups".to_string(),
            friendly_name: None,
            values: claims.roles.clone(),
        });
    }
    if let Some(prefix) = module_roles_claim.map(str::trim).filter(|n| !n.is_empty()) {
        for (module, roles) in &claims.roles_by_module {
            if !roles.is_empty() {
                out.push(SamlAttribute {
                    name: format!("{prefix}.{module}"),
                    friendly_name: None,
                    values: roles.clone(),
                });
            }
        }
    }
    out
}

/// The NameID value for `format`: the Lucca matching key (email, or login when the SP matches
/// on login) for email/unspecified, the stable subject for persistent. `None` when the value is
/// missing (matching on login for a person without one): the web layer then answers
/// `Responder/UnknownPrincipal`.
pub fn name_id_value(claims: &Claims, format: NameIdFormat, match_on: MatchOn) -> Option<String> {
    let value = match (format, match_on) {
        (NameIdFormat::Persistent, _) => Some(claims.subject.clone()),
        (_, MatchOn::Email) => Some(claims.email.clone()),
        (_, MatchOn::Login) => claims.login.clone(),
    };
    value.filter(|v| !v.trim().is_empty())
}

/// Everything a success Response says.
#[derive(Debug, Clone)]
pub struct ResponseParams<'a> {
    /// Our entityID (`IdpUrls::entity_id`).
    pub idp_entity_id: &'a str,
    /// From the accepted request (`AcceptedAuthnRequest::reply`) or
    /// `ServiceProvider::idp_initiated_reply`.
    pub reply: &'a ReplyTo,
    pub name_id: &'a str,
    pub name_id_format: NameIdFormat,
    /// Opaque and per session (never the session cookie): SPs echo it in LogoutRequests.
    pub session_index: &'a str,
    pub authn_instant: DateTime<Utc>,
    pub session_not_on_or_after: Option<DateTime<Utc>>,
    pub authn_context: AuthnContextClass,
    pub attributes: &'a [SamlAttribute],
    pub attribute_name_format: AttributeNameFormat,
    pub now: DateTime<Utc>,
    /// How long the Assertion is valid (`saml.assertion_ttl`).
    pub assertion_ttl: Duration,
    /// `NotBefore` is backdated by this much, for SP clocks running behind.
    pub not_before_skew: Duration,
    pub sign_response: bool,
    pub sign_assertion: bool,
    /// Encrypt the Assertion to this certificate (`ServiceProvider::encryption_cert`).
    pub encrypt_for: Option<&'a X509>,
}

/// A built Response, ready for the auto-POST form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltResponse {
    pub xml: String,
    pub response_id: String,
    pub assertion_id: Option<String>,
}

impl BuiltResponse {
    /// The `SAMLResponse` form field value.
    pub fn post_form_value(&self) -> String {
        encode_post(&self.xml)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ResponseError {
    #[error("neither the Response nor the Assertion would be signed; enable sign_response or sign_assertion")]
    Unsigned,
    #[error("signing failed: {0}")]
    Sign(#[from] SignError),
    #[error("encryption failed: {0}")]
    Encrypt(#[from] EncryptError),
}

impl From<openssl::error::ErrorStack> for ResponseError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        ResponseError::Sign(SignError::Crypto(e))
    }
}

/// Build and sign a success Response.
pub fn build_response(
    params: &ResponseParams,
    key: &SigningMaterial,
) -> Result<BuiltResponse, ResponseError> {
    if !params.sign_response && !params.sign_assertion {
        return Err(ResponseError::Unsigned);
    }
    let now = params.now;
    let not_on_or_after = now + chrono_duration(params.assertion_ttl);
    let not_before = now - chrono_duration(params.not_before_skew);
    let reply = params.reply;
    let assertion_id = new_id()?;

    let mut name_id = El::new(Ns::Assertion, "NameID").attr("Format", params.name_id_format.uri());
    if params.name_id_format == NameIdFormat::Persistent {
        // A persistent identifier is scoped to the pair (IdP, SP).
        name_id = name_id
            .attr("NameQualifier", params.idp_entity_id)
            .attr("SPNameQualifier", reply.sp_entity_id.as_str());
    }
    let subject = El::new(Ns::Assertion, "Subject")
        .child(name_id.text(params.name_id))
        .child(
            El::new(Ns::Assertion, "SubjectConfirmation")
                .attr("Method", ns::CM_BEARER)
                .child(
                    El::new(Ns::Assertion, "SubjectConfirmationData")
                        .attr_opt("InResponseTo", reply.in_response_to.as_deref())
                        .attr("NotOnOrAfter", saml_time(not_on_or_after))
                        .attr("Recipient", reply.destination.as_str()),
                ),
        );
    let conditions = El::new(Ns::Assertion, "Conditions")
        .attr("NotBefore", saml_time(not_before))
        .attr("NotOnOrAfter", saml_time(not_on_or_after))
        .child(
            El::new(Ns::Assertion, "AudienceRestriction")
                .child(El::new(Ns::Assertion, "Audience").text(reply.sp_entity_id.as_str())),
        );
    let authn_statement = El::new(Ns::Assertion, "AuthnStatement")
        .attr("AuthnInstant", saml_time(params.authn_instant))
        .attr("SessionIndex", params.session_index)
        .attr_opt(
            "SessionNotOnOrAfter",
            params.session_not_on_or_after.map(saml_time),
        )
        .child(El::new(Ns::Assertion, "AuthnContext").child(
            El::new(Ns::Assertion, "AuthnContextClassRef").text(params.authn_context.uri()),
        ));
    let mut assertion = El::new(Ns::Assertion, "Assertion")
        .attr("ID", assertion_id.as_str())
        .attr("IssueInstant", saml_time(now))
        .attr("Version", "2.0")
        .child(El::new(Ns::Assertion, "Issuer").text(params.idp_entity_id))
        .child(subject)
        .child(conditions)
        .child(authn_statement);
    // The schema wants at least one Attribute in an AttributeStatement: none, no statement.
    if !params.attributes.is_empty() {
        assertion = assertion.child(attribute_statement(
            params.attributes,
            params.attribute_name_format,
        ));
    }
    if params.sign_assertion {
        sign_enveloped(&mut assertion, 1, key)?;
    }
    let assertion = match params.encrypt_for {
        Some(cert) => encrypt_assertion(&assertion, cert)?,
        None => assertion,
    };

    let response_id = new_id()?;
    let mut response = response_shell(&response_id, params.idp_entity_id, reply, now)
        .child(status_element(SamlStatus::SUCCESS, None))
        .child(assertion);
    if params.sign_response {
        sign_enveloped(&mut response, 1, key)?;
    }
    Ok(BuiltResponse {
        xml: response.to_document(),
        response_id,
        assertion_id: Some(assertion_id),
    })
}

/// An error Response (no Assertion) for `reply`, e.g. `Responder/NoPassive`,
/// `Requester/InvalidNameIDPolicy`, or a [`super::RequestError::status`]. Signed when `key` is
/// given (recommended: SPs may refuse unsigned Responses even for errors).
pub fn build_error_response(
    idp_entity_id: &str,
    reply: &ReplyTo,
    status: SamlStatus,
    message: Option<&str>,
    now: DateTime<Utc>,
    key: Option<&SigningMaterial>,
) -> Result<BuiltResponse, ResponseError> {
    let response_id = new_id()?;
    let mut response = response_shell(&response_id, idp_entity_id, reply, now)
        .child(status_element(status, message));
    if let Some(key) = key {
        sign_enveloped(&mut response, 1, key)?;
    }
    Ok(BuiltResponse {
        xml: response.to_document(),
        response_id,
        assertion_id: None,
    })
}

fn response_shell(id: &str, issuer: &str, reply: &ReplyTo, now: DateTime<Utc>) -> El {
    El::new(Ns::Protocol, "Response")
        .attr("ID", id)
        .attr("Version", "2.0")
        .attr("IssueInstant", saml_time(now))
        .attr("Destination", reply.destination.as_str())
        .attr_opt("InResponseTo", reply.in_response_to.as_deref())
        .child(El::new(Ns::Assertion, "Issuer").text(issuer))
}

/// `<samlp:Status>` with the top-level code, the optional nested second-level code and message.
pub(crate) fn status_element(status: SamlStatus, message: Option<&str>) -> El {
    let mut code = El::new(Ns::Protocol, "StatusCode").attr("Value", status.top.uri());
    if let Some(sub) = status.sub {
        code = code.child(El::new(Ns::Protocol, "StatusCode").attr("Value", sub.uri()));
    }
    let mut el = El::new(Ns::Protocol, "Status").child(code);
    if let Some(message) = message {
        el = el.child(El::new(Ns::Protocol, "StatusMessage").text(message));
    }
    el
}

fn attribute_statement(attributes: &[SamlAttribute], format: AttributeNameFormat) -> El {
    El::new(Ns::Assertion, "AttributeStatement").children(attributes.iter().map(|a| {
        El::new(Ns::Assertion, "Attribute")
            .attr("Name", a.name.as_str())
            .attr("NameFormat", format.uri())
            .attr_opt("FriendlyName", a.friendly_name.as_deref())
            // No xsi:type="xs:string": a QName in an attribute value is invisible to exc-c14n
            // (the xs prefix would be dropped from the signed form), and the schema type of
            // AttributeValue is anyType, so plain text is valid.
            .children(
                a.values
                    .iter()
                    .map(|v| El::new(Ns::Assertion, "AttributeValue").text(v.as_str())),
            )
    }))
}

fn chrono_duration(d: Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::zero())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::binding::Binding;
    use crate::saml::testkit::{self, SP_ACS, SP_ENTITY_ID};
    use crate::saml::xml::parse_strict;
    use crate::saml::{parse_saml_time, SubStatus};
    use samael::metadata::EntityDescriptor;

    const IDP: &str = "https://sso.acme.test/saml/metadata";

    fn tricky_claims() -> Claims {
        Claims {
            subject: "u-42".into(),
            email: "elodie.dupont@acme.test".into(),
            given_name: Some("Élodie 🦀".into()),
            family_name: Some("Dupont & <Fils> \"q\" 'a'".into()),
            employee_number: Some("00042".into()),
            department: Some("R&D\r\nParis\tNord".into()),
            manager_email: Some("bob@acme.test".into()),
            roles: vec!["validateur_n1".into(), "collab]]>orateur".into()],
            ..Claims::default()
        }
    }

    fn reply(in_response_to: Option<&str>) -> ReplyTo {
        ReplyTo {
            sp_entity_id: SP_ENTITY_ID.into(),
            destination: SP_ACS.into(),
            binding: Binding::Post,
            in_response_to: in_response_to.map(Into::into),
            relay_state: None,
        }
    }

    fn build(
        claims: &Claims,
        sign_response: bool,
        sign_assertion: bool,
        encrypt: bool,
        now: DateTime<Utc>,
    ) -> BuiltResponse {
        let attrs = attributes_from_claims(claims, None);
        let reply = reply(Some("_req1"));
        let enc = testkit::sp_encryption().cert.clone();
        let params = ResponseParams {
            idp_entity_id: IDP,
            reply: &reply,
            name_id: &claims.email,
            name_id_format: NameIdFormat::EmailAddress,
            session_index: "_sess1",
            authn_instant: now,
            session_not_on_or_after: Some(now + chrono::Duration::hours(8)),
            authn_context: AuthnContextClass::PasswordProtectedTransport,
            attributes: &attrs,
            attribute_name_format: AttributeNameFormat::Unspecified,
            now,
            assertion_ttl: Duration::from_secs(300),
            not_before_skew: Duration::from_secs(60),
            sign_response,
            sign_assertion,
            encrypt_for: encrypt.then_some(&enc),
        };
        build_response(&params, &testkit::idp().material()).unwrap()
    }

    #[test]
    fn both_signatures_verify_with_xmlsec1_and_the_xsd_holds() {
        let r = build(&tricky_claims(), true, true, false, Utc::now());
        let cert = &testkit::idp().cert;
        testkit::validate_xsd(&r.xml, "saml-schema-protocol-2.0.xsd").unwrap();
        testkit::xmlsec_verify(
            &r.xml,
            cert,
            Some("urn:oasis:names:tc:SAML:2.0:protocol:Response"),
        )
        .unwrap();
        testkit::xmlsec_verify(
            &r.xml,
            cert,
            Some("urn:oasis:names:tc:SAML:2.0:assertion:Assertion"),
        )
        .unwrap();
        // Signatures sit right after the Issuers (schema order).
        let tree = parse_strict(&r.xml, 1 << 20).unwrap();
        let kids: Vec<&str> = tree.elements().map(|e| e.local.as_str()).collect();
        assert_eq!(kids, ["Issuer", "Signature", "Status", "Assertion"]);
        let assertion = tree.child(ns::ASSERTION, "Assertion").unwrap();
        let kids: Vec<&str> = assertion.elements().map(|e| e.local.as_str()).collect();
        assert_eq!(
            kids,
            [
                "Issuer",
                "Signature",
                "Subject",
                "Conditions",
                "AuthnStatement",
                "AttributeStatement"
            ]
        );
    }

    #[test]
    fn tricky_values_survive_escaping() {
        let claims = tricky_claims();
        let r = build(&claims, true, true, false, Utc::now());
        let tree = parse_strict(&r.xml, 1 << 20).unwrap();
        let statement = tree
            .child(ns::ASSERTION, "Assertion")
            .unwrap()
            .child(ns::ASSERTION, "AttributeStatement")
            .unwrap();
        let value = |name: &str| -> Vec<String> {
            statement
                .children_named(ns::ASSERTION, "Attribute")
                .find(|a| a.attr("Name") == Some(name))
                .map(|a| {
                    a.children_named(ns::ASSERTION, "AttributeValue")
                        .map(|v| v.text())
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(value("family_name"), ["Dupont & <Fils> \"q\" 'a'"]);
        assert_eq!(value(CLAIM_SURNAME), ["Dupont & <Fils> \"q\" 'a'"]);
        assert_eq!(value("given_name"), ["Élodie 🦀"]);
        assert_eq!(value("department"), ["R&D\r\nParis\tNord"]);
        assert_eq!(value("groups"), ["validateur_n1", "collab]]>orateur"]);
        assert_eq!(value(CLAIM_EMAIL), ["elodie.dupont@acme.test"]);
    }

    #[test]
    fn only_one_signature_each_way() {
        let cert = &testkit::idp().cert;
        let r = build(&tricky_claims(), false, true, false, Utc::now());
        assert_eq!(r.xml.matches("<ds:Signature ").count(), 1);
        testkit::xmlsec_verify(
            &r.xml,
            cert,
            Some("urn:oasis:names:tc:SAML:2.0:assertion:Assertion"),
        )
        .unwrap();
        let r = build(&tricky_claims(), true, false, false, Utc::now());
        assert_eq!(r.xml.matches("<ds:Signature ").count(), 1);
        testkit::xmlsec_verify(
            &r.xml,
            cert,
            Some("urn:oasis:names:tc:SAML:2.0:protocol:Response"),
        )
        .unwrap();
        let reply = reply(None);
        let params = ResponseParams {
            idp_entity_id: IDP,
            reply: &reply,
            name_id: "x",
            name_id_format: NameIdFormat::Unspecified,
            session_index: "s",
            authn_instant: Utc::now(),
            session_not_on_or_after: None,
            authn_context: AuthnContextClass::Unspecified,
            attributes: &[],
            attribute_name_format: AttributeNameFormat::Basic,
            now: Utc::now(),
            assertion_ttl: Duration::from_secs(60),
            not_before_skew: Duration::ZERO,
            sign_response: false,
            sign_assertion: false,
            encrypt_for: None,
        };
        assert!(matches!(
            build_response(&params, &testkit::idp().material()),
            Err(ResponseError::Unsigned)
        ));
        // IdP-initiated, no attributes: no InResponseTo, no AttributeStatement, still valid.
        let params = ResponseParams {
            sign_response: true,
            ..params
        };
        let r = build_response(&params, &testkit::idp().material()).unwrap();
        assert!(!r.xml.contains("InResponseTo"));
        assert!(!r.xml.contains("AttributeStatement"));
        testkit::validate_xsd(&r.xml, "saml-schema-protocol-2.0.xsd").unwrap();
        testkit::xmlsec_verify(&r.xml, cert, None).unwrap();
    }

    #[test]
    fn tampering_is_detected() {
        let cert = &testkit::idp().cert;
        let r = build(&tricky_claims(), true, true, false, Utc::now());
        if testkit::tool_dir("xmlsec1").is_none() {
            return;
        }
        let tampered = r.xml.replace("elodie.dupont@acme.test", "boss@acme.test");
        assert!(testkit::xmlsec_verify(
            &tampered,
            cert,
            Some("urn:oasis:names:tc:SAML:2.0:assertion:Assertion")
        )
        .is_err());
        assert!(testkit::xmlsec_verify(
            &tampered,
            cert,
            Some("urn:oasis:names:tc:SAML:2.0:protocol:Response")
        )
        .is_err());
        // Another key does not verify either.
        assert!(testkit::xmlsec_verify(&r.xml, &testkit::idp_next().cert, None).is_err());
    }

    fn samael_sp(now_metadata: &str) -> samael::service_provider::ServiceProvider {
        let idp_metadata: EntityDescriptor = now_metadata.parse().unwrap();
        samael::service_provider::ServiceProvider {
            entity_id: Some(SP_ENTITY_ID.into()),
            acs_url: Some(SP_ACS.into()),
            idp_metadata,
            allowed_signature_algorithms: Some(vec![
                samael::crypto::AllowedSignatureAlgorithm::RsaSha256,
            ]),
            ..Default::default()
        }
    }

    #[test]
    fn samael_as_test_sp_accepts_our_response_and_rejects_tampering() {
        let certs = [testkit::idp().cert.clone()];
        let metadata = crate::saml::metadata::render_metadata(
            &crate::saml::metadata::IdpMetadataParams {
                public_url: testkit::PUBLIC_URL,
                want_authn_requests_signed: true,
                certificates: &certs,
                valid_until: Utc::now() + chrono::Duration::days(7),
                cache_duration: Duration::from_secs(86400),
            },
            None,
        )
        .unwrap();
        let sp = samael_sp(&metadata);
        let claims = tricky_claims();
        for (sign_response, sign_assertion) in [(true, true), (false, true), (true, false)] {
            let r = build(&claims, sign_response, sign_assertion, false, Utc::now());
            let assertion = sp
                .parse_xml_response(&r.xml, Some(&["_req1"]))
                .unwrap_or_else(|e| panic!("{sign_response}/{sign_assertion}: {e:?}"));
            let subject = assertion.subject.unwrap();
            assert_eq!(subject.name_id.unwrap().value, "elodie.dupont@acme.test");
            let tampered = r.xml.replace("validateur_n1", "administrateur");
            assert!(sp.parse_xml_response(&tampered, Some(&["_req1"])).is_err());
        }
        // The wrong request ID is refused by the SP, so InResponseTo is where it belongs.
        let r = build(&claims, true, true, false, Utc::now());
        assert!(sp.parse_xml_response(&r.xml, Some(&["_other"])).is_err());
    }

    #[test]
    fn validity_window() {
        let now = parse_saml_time("2025-06-01T10:00:00Z").unwrap();
        let r = build(&tricky_claims(), true, true, false, now);
        assert!(r.xml.contains(r#"<saml:Conditions NotBefore="2025-06-01T09:59:00Z" NotOnOrAfter="2025-06-01T10:05:00Z">"#));
        assert!(r.xml.contains(r#"InResponseTo="_req1" NotOnOrAfter="2025-06-01T10:05:00Z" Recipient="https://login.ilucca.test/sso-v2/signon/callback/acme""#));
        assert!(r.xml.contains(r#"AuthnInstant="2025-06-01T10:00:00Z" SessionIndex="_sess1" SessionNotOnOrAfter="2025-06-01T18:00:00Z""#));
        assert!(r
            .xml
            .contains(&format!("<saml:Audience>{SP_ENTITY_ID}</saml:Audience>")));
    }

    #[test]
    fn encrypted_assertion_decrypts_and_its_signature_verifies() {
        let r = build(&tricky_claims(), true, true, true, Utc::now());
        assert!(!r.xml.contains("elodie.dupont"));
        testkit::validate_xsd(&r.xml, "saml-schema-protocol-2.0.xsd").unwrap();
        let idp_cert = &testkit::idp().cert;
        testkit::xmlsec_verify(
            &r.xml,
            idp_cert,
            Some("urn:oasis:names:tc:SAML:2.0:protocol:Response"),
        )
        .unwrap();

        // Our own decryption (what an SP does), then the inner signature.
        let tree = parse_strict(&r.xml, 1 << 20).unwrap();
        let encrypted = tree.child(ns::ASSERTION, "EncryptedAssertion").unwrap();
        let plain = crate::saml::encrypt::decrypt_assertion_for_test(
            encrypted,
            &testkit::sp_encryption().pkey,
        );
        assert!(plain.contains("Dupont &amp; &lt;Fils&gt;"));
        testkit::xmlsec_verify(&plain, idp_cert, None).unwrap();

        // xmlsec1 decrypts it too (it implements AES-GCM and RSA-OAEP-MGF1P).
        let Some(dir) = testkit::tool_dir("xmlsec1") else {
            return;
        };
        let doc = testkit::write(dir.path(), "enc.xml", &r.xml);
        let key = testkit::write(dir.path(), "sp.key", &testkit::sp_encryption().key_pem());
        let out = testkit::run(
            "xmlsec1",
            &[
                "--decrypt",
                "--privkey-pem",
                key.to_str().unwrap(),
                doc.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let decrypted = String::from_utf8(out.stdout).unwrap();
        assert!(decrypted.contains("<saml:Assertion"));
        assert!(decrypted.contains("Élodie 🦀"));
        // After xmlsec1's decryption the Assertion signature still verifies.
        testkit::xmlsec_verify(
            &decrypted,
            idp_cert,
            Some("urn:oasis:names:tc:SAML:2.0:assertion:Assertion"),
        )
        .unwrap();
    }

    #[test]
    fn error_responses() {
        let cert = &testkit::idp().cert;
        let now = Utc::now();
        for (status, message) in [
            (SamlStatus::responder(SubStatus::NoPassive), None),
            (
                SamlStatus::requester(SubStatus::InvalidNameIdPolicy),
                Some("NameID format <x> & \"y\" unsupported"),
            ),
        ] {
            let r = build_error_response(
                IDP,
                &reply(Some("_req9")),
                status,
                message,
                now,
                Some(&testkit::idp().material()),
            )
            .unwrap();
            assert!(r.assertion_id.is_none());
            testkit::validate_xsd(&r.xml, "saml-schema-protocol-2.0.xsd").unwrap();
            testkit::xmlsec_verify(&r.xml, cert, None).unwrap();
            let tree = parse_strict(&r.xml, 1 << 20).unwrap();
            let code = tree
                .child(ns::PROTOCOL, "Status")
                .unwrap()
                .child(ns::PROTOCOL, "StatusCode")
                .unwrap();
            assert_eq!(code.attr("Value"), Some(status.top.uri()));
            assert_eq!(
                code.child(ns::PROTOCOL, "StatusCode")
                    .unwrap()
                    .attr("Value"),
                status.sub.map(|s| s.uri())
            );
            assert_eq!(tree.attr("InResponseTo"), Some("_req9"));
        }
        let unsigned =
            build_error_response(IDP, &reply(None), SamlStatus::SUCCESS, None, now, None).unwrap();
        assert!(!unsigned.xml.contains("Signature"));
    }

    #[test]
    fn name_id_values() {
        let mut claims = tricky_claims();
        assert_eq!(
            name_id_value(&claims, NameIdFormat::EmailAddress, MatchOn::Email).as_deref(),
            Some("elodie.dupont@acme.test")
        );
        assert_eq!(
            name_id_value(&claims, NameIdFormat::Persistent, MatchOn::Login).as_deref(),
            Some("u-42")
        );
        assert_eq!(
            name_id_value(&claims, NameIdFormat::Unspecified, MatchOn::Login),
            None
        );
        claims.login = Some("edupont".into());
        assert_eq!(
            name_id_value(&claims, NameIdFormat::EmailAddress, MatchOn::Login).as_deref(),
            Some("edupont")
        );
    }

    #[test]
    fn attributes_skip_empty_values() {
        let claims = Claims {
            email: "a@b.test".into(),
            ..Claims::default()
        };
        let names: Vec<String> = attributes_from_claims(&claims, None)
            .into_iter()
            .map(|a| a.name)
            .collect();
        assert_eq!(names, ["email", CLAIM_EMAIL]);
        assert!(attributes_from_claims(&Claims::default(), Some("lucca_roles")).is_empty());
    }

    #[test]
    fn module_roles_are_one_attribute_per_module() {
        let mut claims = Claims {
            email: "a@b.test".into(),
            roles: vec!["validateur_n1".into(), "collaborateur".into()],
            ..Claims::default()
        };
        claims.roles_by_module.insert(
            "figgo".into(),
            vec!["validateur_n1".into(), "collaborateur".into()],
        );
        claims
            .roles_by_module
            .insert("pagga".into(), vec!["gestionnaire_paie".into()]);
        let attrs = attributes_from_claims(&claims, Some("lucca_roles"));
        let figgo = attrs
            .iter()
            .find(|a| a.name == "lucca_roles.figgo")
            .unwrap();
        assert_eq!(figgo.values, ["validateur_n1", "collaborateur"]);
        let pagga = attrs
            .iter()
            .find(|a| a.name == "lucca_roles.pagga")
            .unwrap();
        assert_eq!(pagga.values, ["gestionnaire_paie"]);
        // Not configured: no module attribute at all.
        assert!(attributes_from_claims(&claims, None)
            .iter()
            .all(|a| !a.name.starts_with("lucca_roles")));
    }

    /// Throughput of building + signing. Run with
    /// `cargo test --lib saml::response::tests::throughput -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn throughput() {
        let claims = tricky_claims();
        let key = testkit::idp();
        let attrs = attributes_from_claims(&claims, None);
        let reply = reply(Some("_req1"));
        let now = Utc::now();
        let params = |sign_response, sign_assertion| ResponseParams {
            idp_entity_id: IDP,
            reply: &reply,
            name_id: &claims.email,
            name_id_format: NameIdFormat::EmailAddress,
            session_index: "_sess1",
            authn_instant: now,
            session_not_on_or_after: None,
            authn_context: AuthnContextClass::PasswordProtectedTransport,
            attributes: &attrs,
            attribute_name_format: AttributeNameFormat::Unspecified,
            now,
            assertion_ttl: Duration::from_secs(300),
            not_before_skew: Duration::from_secs(60),
            sign_response,
            sign_assertion,
            encrypt_for: None,
        };
        // The machine may be busy: compare with the raw RSA-2048 signing rate measured now.
        let n = 1000;
        let start = std::time::Instant::now();
        for _ in 0..n {
            crate::saml::dsig::rsa_sha256(&key.material(), b"SignedInfo").unwrap();
        }
        let raw = n as f64 / start.elapsed().as_secs_f64();
        eprintln!("raw RSA-2048 signatures: {raw:.0}/s (1 thread)");
        for (label, sr, sa, sigs) in [
            ("assertion only", false, true, 1.0),
            ("both", true, true, 2.0),
        ] {
            let p = params(sr, sa);
            let n = 1000;
            let start = std::time::Instant::now();
            for _ in 0..n {
                build_response(&p, &key.material()).unwrap();
            }
            let rate = n as f64 / start.elapsed().as_secs_f64();
            eprintln!(
                "{label}: {rate:.0} responses/s (1 thread) = {:.0}% of the raw signing rate",
                100.0 * rate * sigs / raw
            );
        }
        let p = params(true, true);
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        build_response(&p, &key.material()).unwrap();
                    }
                });
            }
        });
        let rate = 2000.0 / start.elapsed().as_secs_f64();
        let start = std::time::Instant::now();
        std::thread::scope(|s| {
            for _ in 0..2 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        crate::saml::dsig::rsa_sha256(&key.material(), b"SignedInfo").unwrap();
                    }
                });
            }
        });
        let raw2 = 2000.0 / start.elapsed().as_secs_f64();
        eprintln!(
            "both, 2 threads: {rate:.0} responses/s; raw RSA-2048, 2 threads: {raw2:.0} signatures/s"
        );
    }
}
