//! Single logout, both directions.
//!
//! SP → us: a LogoutRequest (either binding) goes through the same intake as an AuthnRequest
//! (strict XML, registered issuer, signature with its registered certificate, anti-wrapping),
//! then we answer with a LogoutResponse at the SP's SLO endpoint.
//! Us → SP (IdP-initiated logout): a LogoutRequest per SP session participant, and the SP's
//! LogoutResponse read back with the same intake.
//!
//! For the HTTP-Redirect binding build the XML unsigned (`signing: None`) and let
//! [`super::encode_redirect`] sign the query; for HTTP-POST sign the XML.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::binding::{self, Binding, Decoded, MessageKind};
use super::dsig::{sign_enveloped, SignError, SigningMaterial};
use super::request::{
    authenticate, check_issue_instant, read_instant, required_attr, Inbound, IntakePolicy,
    Rejected, RequestError,
};
use super::response::status_element;
use super::sp::{ReplyTo, ServiceProvider, ServiceProviderLookup};
use super::writer::{El, Ns};
use super::{new_id, ns, parse_saml_time, saml_time, NameIdFormat, SamlStatus};

/// The fields of an SP's LogoutRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutRequest {
    pub id: String,
    pub issue_instant: DateTime<Utc>,
    pub issuer: String,
    pub destination: Option<String>,
    pub name_id: String,
    pub name_id_format: Option<String>,
    pub session_indexes: Vec<String>,
    pub not_on_or_after: Option<DateTime<Utc>>,
    pub reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct AcceptedLogoutRequest {
    pub request: LogoutRequest,
    pub sp: Arc<ServiceProvider>,
    /// Where the LogoutResponse goes (the SP's SLO endpoint, its binding, the request ID and
    /// RelayState); `None` when the SP registered no SLO endpoint.
    pub reply: Option<ReplyTo>,
    pub binding: Binding,
    pub signed: bool,
}

/// An SP's answer to our LogoutRequest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogoutResponse {
    pub id: String,
    pub issuer: String,
    pub in_response_to: Option<String>,
    /// Top-level StatusCode URI (`…:status:Success` when the SP logged the person out).
    pub status: String,
    pub sub_status: Option<String>,
    pub relay_state: Option<String>,
}

impl LogoutResponse {
    pub fn is_success(&self) -> bool {
        self.status == super::TopStatus::Success.uri()
    }
}

/// HTTP-Redirect binding (`raw_query` exactly as received).
pub fn parse_redirect_logout_request(
    raw_query: &str,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
    now: DateTime<Utc>,
) -> Result<AcceptedLogoutRequest, Rejected> {
    let decoded = binding::decode_redirect(raw_query, MessageKind::Request, &policy.limits())
        .map_err(Rejected::page_only)?;
    accept_logout_request(decoded, policy, sps, now)
}

/// HTTP-POST binding (form fields, form-decoded).
pub fn verify_post_logout_request(
    saml_request: &str,
    relay_state: Option<&str>,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
    now: DateTime<Utc>,
) -> Result<AcceptedLogoutRequest, Rejected> {
    let decoded = binding::decode_post(
        saml_request,
        relay_state,
        MessageKind::Request,
        &policy.limits(),
    )
    .map_err(Rejected::page_only)?;
    accept_logout_request(decoded, policy, sps, now)
}

fn accept_logout_request(
    decoded: Decoded,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
    now: DateTime<Utc>,
) -> Result<AcceptedLogoutRequest, Rejected> {
    let inbound = authenticate(decoded, Inbound::LogoutRequest, policy, sps)?;
    let root = &inbound.root;
    let sp = inbound.sp;
    let id = required_attr(root, "ID")?;
    let reply = sp.slo_endpoint().map(|endpoint| ReplyTo {
        sp_entity_id: sp.entity_id.clone(),
        destination: endpoint
            .response_url
            .clone()
            .unwrap_or_else(|| endpoint.url.clone()),
        binding: Binding::from_uri(&endpoint.binding).unwrap_or(Binding::Redirect),
        in_response_to: Some(id.clone()),
        relay_state: inbound.relay_state.clone(),
    });
    let reject = |error: RequestError| Rejected {
        error,
        reply: reply.clone().map(Box::new),
    };
    let issue_instant = read_instant(root, "IssueInstant").map_err(reject)?;
    check_issue_instant(issue_instant, policy.clock_skew, now).map_err(reject)?;
    let destination = root.attr("Destination").map(str::to_string);
    if let Some(found) = &destination {
        if found != &policy.slo_url {
            return Err(reject(RequestError::WrongDestination {
                expected: policy.slo_url.clone(),
                found: found.clone(),
            }));
        }
    }
    let not_on_or_after = match root.attr("NotOnOrAfter") {
        Some(v) => Some(parse_saml_time(v).ok_or_else(|| {
            reject(RequestError::Invalid {
                field: "NotOnOrAfter",
                value: v.to_string(),
            })
        })?),
        None => None,
    };
    if let Some(limit) = not_on_or_after {
        if now >= limit {
            return Err(reject(RequestError::LogoutExpired(saml_time(limit))));
        }
    }
    let name_id_el = root
        .child(ns::ASSERTION, "NameID")
        .ok_or_else(|| reject(RequestError::Missing("NameID")))?;
    let name_id = name_id_el.text().trim().to_string();
    if name_id.is_empty() {
        return Err(reject(RequestError::Missing("NameID")));
    }
    let request = LogoutRequest {
        id,
        issue_instant,
        issuer: inbound.issuer,
        destination,
        name_id,
        name_id_format: name_id_el.attr("Format").map(str::to_string),
        session_indexes: root
            .children_named(ns::PROTOCOL, "SessionIndex")
            .map(|s| s.text().trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        not_on_or_after,
        reason: root.attr("Reason").map(str::to_string),
    };
    Ok(AcceptedLogoutRequest {
        request,
        sp,
        reply,
        binding: inbound.binding,
        signed: inbound.signed,
    })
}

/// Read an SP's LogoutResponse (answer to our IdP-initiated LogoutRequest). `query` is the raw
/// query for the Redirect binding; for POST pass the form fields via `post`.
pub fn read_logout_response(
    input: InboundResponse<'_>,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
    now: DateTime<Utc>,
) -> Result<LogoutResponse, Rejected> {
    let limits = policy.limits();
    let decoded = match input {
        InboundResponse::Redirect { raw_query } => {
            binding::decode_redirect(raw_query, MessageKind::Response, &limits)
        }
        InboundResponse::Post {
            saml_response,
            relay_state,
        } => binding::decode_post(saml_response, relay_state, MessageKind::Response, &limits),
    }
    .map_err(Rejected::page_only)?;
    let inbound = authenticate(decoded, Inbound::LogoutResponse, policy, sps)?;
    let root = &inbound.root;
    let issue_instant = read_instant(root, "IssueInstant")?;
    check_issue_instant(issue_instant, policy.clock_skew, now)?;
    if let Some(found) = root.attr("Destination") {
        if found != policy.slo_url {
            return Err(Rejected::page_only(RequestError::WrongDestination {
                expected: policy.slo_url.clone(),
                found: found.to_string(),
            }));
        }
    }
    let code = root
        .child(ns::PROTOCOL, "Status")
        .and_then(|s| s.child(ns::PROTOCOL, "StatusCode"))
        .ok_or(RequestError::Missing("Status"))?;
    Ok(LogoutResponse {
        id: required_attr(root, "ID")?,
        issuer: inbound.issuer,
        in_response_to: root.attr("InResponseTo").map(str::to_string),
        status: code.attr("Value").unwrap_or_default().to_string(),
        sub_status: code
            .child(ns::PROTOCOL, "StatusCode")
            .and_then(|c| c.attr("Value"))
            .map(str::to_string),
        relay_state: inbound.relay_state,
    })
}

/// How an SP's LogoutResponse arrived.
#[derive(Debug, Clone, Copy)]
pub enum InboundResponse<'a> {
    Redirect {
        raw_query: &'a str,
    },
    Post {
        saml_response: &'a str,
        relay_state: Option<&'a str>,
    },
}

/// A built outbound protocol message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuiltMessage {
    pub id: String,
    pub xml: String,
}

pub struct LogoutResponseParams<'a> {
    pub idp_entity_id: &'a str,
    /// From [`AcceptedLogoutRequest::reply`] (or a `Rejected::reply`).
    pub reply: &'a ReplyTo,
    /// Success, `Responder/PartialLogout`, or a [`RequestError::status`].
    pub status: SamlStatus,
    pub now: DateTime<Utc>,
}

/// Our LogoutResponse. `signing: Some` for HTTP-POST; `None` for HTTP-Redirect (then sign the
/// query with `encode_redirect`).
pub fn build_logout_response(
    params: &LogoutResponseParams,
    signing: Option<&SigningMaterial>,
) -> Result<BuiltMessage, SignError> {
    let id = new_id()?;
    let mut el = El::new(Ns::Protocol, "LogoutResponse")
        .attr("ID", id.as_str())
        .attr("Version", "2.0")
        .attr("IssueInstant", saml_time(params.now))
        .attr("Destination", params.reply.destination.as_str())
        .attr_opt("InResponseTo", params.reply.in_response_to.as_deref())
        .child(El::new(Ns::Assertion, "Issuer").text(params.idp_entity_id))
        .child(status_element(params.status, None));
    if let Some(key) = signing {
        sign_enveloped(&mut el, 1, key)?;
    }
    Ok(BuiltMessage {
        id,
        xml: el.to_document(),
    })
}

pub struct LogoutRequestParams<'a> {
    pub idp_entity_id: &'a str,
    /// The SP's SLO endpoint (`ServiceProvider::slo_endpoint`).
    pub destination: &'a str,
    pub sp_entity_id: &'a str,
    /// The NameID and format we issued to this SP in the session being ended.
    pub name_id: &'a str,
    pub name_id_format: NameIdFormat,
    /// The SessionIndex we issued in that session's AuthnStatement.
    pub session_index: Option<&'a str>,
    pub now: DateTime<Utc>,
    /// `NotOnOrAfter` = now + this.
    pub ttl: Duration,
}

/// An IdP-initiated LogoutRequest to one SP. Keep `id` to match the SP's LogoutResponse.
pub fn build_logout_request(
    params: &LogoutRequestParams,
    signing: Option<&SigningMaterial>,
) -> Result<BuiltMessage, SignError> {
    let id = new_id()?;
    let ttl = chrono::Duration::from_std(params.ttl).unwrap_or(chrono::Duration::minutes(5));
    let mut name_id = El::new(Ns::Assertion, "NameID").attr("Format", params.name_id_format.uri());
    if params.name_id_format == NameIdFormat::Persistent {
        name_id = name_id
            .attr("NameQualifier", params.idp_entity_id)
            .attr("SPNameQualifier", params.sp_entity_id);
    }
    let mut el = El::new(Ns::Protocol, "LogoutRequest")
        .attr("ID", id.as_str())
        .attr("Version", "2.0")
        .attr("IssueInstant", saml_time(params.now))
        .attr("Destination", params.destination)
        .attr("NotOnOrAfter", saml_time(params.now + ttl))
        .attr("Reason", "urn:oasis:names:tc:SAML:2.0:logout:user")
        .child(El::new(Ns::Assertion, "Issuer").text(params.idp_entity_id))
        .child(name_id.text(params.name_id));
    if let Some(index) = params.session_index {
        el = el.child(El::new(Ns::Protocol, "SessionIndex").text(index));
    }
    if let Some(key) = signing {
        sign_enveloped(&mut el, 1, key)?;
    }
    Ok(BuiltMessage {
        id,
        xml: el.to_document(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::binding::encode_redirect;
    use crate::saml::dsig::SignatureError;
    use crate::saml::request::tests::{now, policy, registry, signed_post};
    use crate::saml::testkit::{self, SP_ENTITY_ID, SP_SLO};
    use crate::saml::xml::{parse_strict, XmlError};
    use crate::saml::SubStatus;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    fn sp_logout_request(id: &str) -> El {
        El::new(Ns::Protocol, "LogoutRequest")
            .attr("ID", id)
            .attr("Version", "2.0")
            .attr("IssueInstant", "2025-06-01T10:00:05Z")
            .attr("Destination", "https://sso.acme.test/saml/slo")
            .attr("NotOnOrAfter", "2025-06-01T10:05:00Z")
            .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID))
            .child(
                El::new(Ns::Assertion, "NameID")
                    .attr("Format", ns::NAMEID_EMAIL)
                    .text("alice@acme.test"),
            )
            .child(El::new(Ns::Protocol, "SessionIndex").text("_sess1"))
    }

    #[test]
    fn redirect_logout_request_round_trip() {
        let url = encode_redirect(
            "https://sso.acme.test/saml/slo",
            MessageKind::Request,
            &sp_logout_request("_lr1").to_canonical(),
            Some("bye"),
            Some(&testkit::sp_signing().material()),
        )
        .unwrap();
        let query = url.split_once('?').unwrap().1;
        let accepted = parse_redirect_logout_request(query, &policy(), &registry(), now()).unwrap();
        assert!(accepted.signed);
        assert_eq!(accepted.request.name_id, "alice@acme.test");
        assert_eq!(accepted.request.session_indexes, ["_sess1"]);
        let reply = accepted.reply.unwrap();
        assert_eq!(reply.destination, SP_SLO);
        assert_eq!(reply.binding, Binding::Redirect);
        assert_eq!(reply.in_response_to.as_deref(), Some("_lr1"));
        assert_eq!(reply.relay_state.as_deref(), Some("bye"));

        // Answer over the Redirect binding: unsigned XML, signed query, that verifies.
        let response = build_logout_response(
            &LogoutResponseParams {
                idp_entity_id: "https://sso.acme.test/saml/metadata",
                reply: &reply,
                status: SamlStatus::SUCCESS,
                now: now(),
            },
            None,
        )
        .unwrap();
        testkit::validate_xsd(&response.xml, "saml-schema-protocol-2.0.xsd").unwrap();
        let url = encode_redirect(
            &reply.destination,
            MessageKind::Response,
            &response.xml,
            reply.relay_state.as_deref(),
            Some(&testkit::idp().material()),
        )
        .unwrap();
        let decoded = binding::decode_redirect(
            url.split_once('?').unwrap().1,
            MessageKind::Response,
            &policy().limits(),
        )
        .unwrap();
        let sig = decoded.query_signature.unwrap();
        crate::saml::dsig::verify_detached(
            sig.signed.as_bytes(),
            &sig.sig_alg,
            &sig.signature,
            &[testkit::idp().cert.clone()],
            false,
        )
        .unwrap();
        assert_eq!(decoded.xml, response.xml);
    }

    #[test]
    fn post_logout_request_and_signed_response() {
        let accepted = verify_post_logout_request(
            &signed_post(sp_logout_request("_lr2")),
            None,
            &policy(),
            &registry(),
            now(),
        )
        .unwrap();
        assert!(accepted.signed);
        assert_eq!(
            accepted.request.not_on_or_after,
            parse_saml_time("2025-06-01T10:05:00Z")
        );
        let response = build_logout_response(
            &LogoutResponseParams {
                idp_entity_id: "https://sso.acme.test/saml/metadata",
                reply: accepted.reply.as_ref().unwrap(),
                status: SamlStatus::responder(SubStatus::PartialLogout),
                now: Utc::now(),
            },
            Some(&testkit::idp().material()),
        )
        .unwrap();
        testkit::validate_xsd(&response.xml, "saml-schema-protocol-2.0.xsd").unwrap();
        testkit::xmlsec_verify(&response.xml, &testkit::idp().cert, None).unwrap();
        assert!(response.xml.contains(r#"InResponseTo="_lr2""#));
    }

    #[test]
    fn logout_refusals() {
        // Unsigned while required.
        let unsigned = B64.encode(sp_logout_request("_u").to_document());
        let err =
            verify_post_logout_request(&unsigned, None, &policy(), &registry(), now()).unwrap_err();
        assert!(matches!(err.error, RequestError::Signature(_)));
        assert!(err.reply.is_none());
        // Expired.
        let mut el = sp_logout_request("_e");
        el.set_attr("NotOnOrAfter", "2025-06-01T09:59:59Z");
        let err = verify_post_logout_request(&signed_post(el), None, &policy(), &registry(), now())
            .unwrap_err();
        assert!(matches!(err.error, RequestError::LogoutExpired(_)));
        assert!(err.reply.is_some());
        // No NameID.
        let el = El::new(Ns::Protocol, "LogoutRequest")
            .attr("ID", "_n")
            .attr("Version", "2.0")
            .attr("IssueInstant", "2025-06-01T10:00:05Z")
            .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID));
        let err = verify_post_logout_request(&signed_post(el), None, &policy(), &registry(), now())
            .unwrap_err();
        assert_eq!(err.error, RequestError::Missing("NameID"));
        // An AuthnRequest is not a LogoutRequest.
        let authn = crate::saml::request::tests::authn_request("_a", |e| e);
        let err =
            verify_post_logout_request(&signed_post(authn), None, &policy(), &registry(), now())
                .unwrap_err();
        assert!(matches!(err.error, RequestError::WrongMessage { .. }));
    }

    #[test]
    fn idp_initiated_logout_request() {
        let params = LogoutRequestParams {
            idp_entity_id: "https://sso.acme.test/saml/metadata",
            destination: SP_SLO,
            sp_entity_id: SP_ENTITY_ID,
            name_id: "u-42",
            name_id_format: NameIdFormat::Persistent,
            session_index: Some("_sess1"),
            now: Utc::now(),
            ttl: Duration::from_secs(300),
        };
        let signed = build_logout_request(&params, Some(&testkit::idp().material())).unwrap();
        testkit::validate_xsd(&signed.xml, "saml-schema-protocol-2.0.xsd").unwrap();
        testkit::xmlsec_verify(&signed.xml, &testkit::idp().cert, None).unwrap();
        let tree = parse_strict(&signed.xml, 1 << 20).unwrap();
        assert_eq!(tree.attr("ID"), Some(signed.id.as_str()));
        let kids: Vec<&str> = tree.elements().map(|e| e.local.as_str()).collect();
        assert_eq!(kids, ["Issuer", "Signature", "NameID", "SessionIndex"]);

        // Redirect: unsigned XML in a signed query.
        let unsigned = build_logout_request(&params, None).unwrap();
        assert!(!unsigned.xml.contains("Signature"));
        let url = encode_redirect(
            SP_SLO,
            MessageKind::Request,
            &unsigned.xml,
            None,
            Some(&testkit::idp().material()),
        )
        .unwrap();
        assert!(url.contains("&SigAlg=") && url.contains("&Signature="));
    }

    fn sp_with(settings: impl FnOnce(&mut ServiceProvider)) -> impl ServiceProviderLookup {
        let mut sp = (*testkit::service_provider()).clone();
        settings(&mut sp);
        let sp = Arc::new(sp);
        move |id: &str| (id == SP_ENTITY_ID).then(|| sp.clone())
    }

    fn sp_logout_response(id: &str) -> El {
        El::new(Ns::Protocol, "LogoutResponse")
            .attr("ID", id)
            .attr("Version", "2.0")
            .attr("IssueInstant", "2025-06-01T10:00:01Z")
            .attr("InResponseTo", "_ours")
            .attr("Destination", "https://sso.acme.test/saml/slo")
            .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID))
            .child(status_element(SamlStatus::SUCCESS, None))
    }

    /// The four ways a logout message arrives (request/response × Redirect/POST), signed with
    /// `key` (or not at all), each read with `sps`.
    fn logout_intakes(
        key: Option<&testkit::Keypair>,
        sps: &impl ServiceProviderLookup,
    ) -> Vec<(&'static str, Result<(), Rejected>)> {
        let redirect = |kind, el: El| {
            let url = encode_redirect(
                "https://sso.acme.test/saml/slo",
                kind,
                &el.to_canonical(),
                Some("rs"),
                key.map(|k| k.material()).as_ref(),
            )
            .unwrap();
            url.split_once('?').unwrap().1.to_string()
        };
        let post = |mut el: El| {
            if let Some(key) = key {
                crate::saml::dsig::sign_enveloped(&mut el, 1, &key.material()).unwrap();
            }
            B64.encode(el.to_document())
        };
        let request_query = redirect(MessageKind::Request, sp_logout_request("_lq"));
        let response_query = redirect(MessageKind::Response, sp_logout_response("_rq"));
        let request_form = post(sp_logout_request("_lp"));
        let response_form = post(sp_logout_response("_rp"));
        vec![
            (
                "LogoutRequest, Redirect",
                parse_redirect_logout_request(&request_query, &policy(), sps, now()).map(|_| ()),
            ),
            (
                "LogoutRequest, POST",
                verify_post_logout_request(&request_form, None, &policy(), sps, now()).map(|_| ()),
            ),
            (
                "LogoutResponse, Redirect",
                read_logout_response(
                    InboundResponse::Redirect {
                        raw_query: &response_query,
                    },
                    &policy(),
                    sps,
                    now(),
                )
                .map(|_| ()),
            ),
            (
                "LogoutResponse, POST",
                read_logout_response(
                    InboundResponse::Post {
                        saml_response: &response_form,
                        relay_state: None,
                    },
                    &policy(),
                    sps,
                    now(),
                )
                .map(|_| ()),
            ),
        ]
    }

    /// Finding 6 of the security review: logout messages must be signed by the SP whatever its
    /// AuthnRequest policy, on either binding, unless the admin allowed unsigned logout.
    #[test]
    fn logout_messages_must_be_signed_whatever_the_request_policy() {
        let lenient = sp_with(|sp| {
            sp.authn_requests_signed = false;
            sp.settings.require_signed_requests = Some(false);
        });
        for (what, outcome) in logout_intakes(None, &lenient) {
            let err = outcome.expect_err(what);
            assert_eq!(
                err.error,
                RequestError::Signature(SignatureError::LogoutUnsigned),
                "{what}"
            );
            assert!(err.reply.is_none(), "{what}: nothing is sent back");
        }
        // Signed by someone else: refused too.
        for (what, outcome) in logout_intakes(Some(testkit::idp_next()), &lenient) {
            let err = outcome.expect_err(what);
            assert_eq!(
                err.error,
                RequestError::Signature(SignatureError::Invalid),
                "{what}"
            );
        }
        // Signed by the SP: accepted.
        for (what, outcome) in logout_intakes(Some(testkit::sp_signing()), &lenient) {
            outcome.unwrap_or_else(|e| panic!("{what}: {e}"));
        }
        // The admin's explicit choice.
        let allowed = sp_with(|sp| sp.settings.allow_unsigned_logout = true);
        for (what, outcome) in logout_intakes(None, &allowed) {
            outcome.unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }

    /// An SP registered without a signing certificate can only do single logout unsigned, and
    /// only when the admin allows it.
    #[test]
    fn sp_without_certificate_needs_allow_unsigned_logout() {
        let no_cert = sp_with(|sp| {
            sp.signing_certs.clear();
            sp.authn_requests_signed = false;
            sp.settings.require_signed_requests = Some(false);
        });
        for (what, outcome) in logout_intakes(None, &no_cert) {
            assert_eq!(
                outcome.expect_err(what).error,
                RequestError::Signature(SignatureError::LogoutUnsigned),
                "{what}"
            );
        }
        for (what, outcome) in logout_intakes(Some(testkit::sp_signing()), &no_cert) {
            assert_eq!(
                outcome.expect_err(what).error,
                RequestError::Signature(SignatureError::NoCertificate),
                "{what}"
            );
        }
        let allowed = sp_with(|sp| {
            sp.signing_certs.clear();
            sp.settings.allow_unsigned_logout = true;
        });
        for (what, outcome) in logout_intakes(None, &allowed) {
            outcome.unwrap_or_else(|e| panic!("{what}: {e}"));
        }
    }

    /// Finding 1 of the security review: from one LogoutRequest the SP really signed, an attacker
    /// must not be able to forge a LogoutRequest (signing someone else out) or a "signed"
    /// AuthnRequest for that SP, whatever spelling of the XML-DSig namespace hides the genuine
    /// signature from one parser.
    #[test]
    fn namespace_differential_forgeries_are_refused() {
        use samael::crypto::{CertificateDer, Crypto, CryptoProvider};
        let mut genuine = sp_logout_request("_genuine");
        crate::saml::dsig::sign_enveloped(&mut genuine, 1, &testkit::sp_signing().material())
            .unwrap();
        let genuine = genuine.to_canonical();
        assert!(verify_post_logout_request(
            &B64.encode(&genuine),
            None,
            &policy(),
            &registry(),
            now()
        )
        .is_ok());
        let sp_cert = CertificateDer::from(testkit::sp_signing().cert.to_der().unwrap());
        for spelling in testkit::DSIG_NS_SPELLINGS {
            let forged_logout = El::new(Ns::Protocol, "LogoutRequest")
                .attr("ID", "_forged")
                .attr("Version", "2.0")
                .attr("IssueInstant", "2025-06-01T10:00:05Z")
                .attr("Destination", "https://sso.acme.test/saml/slo")
                .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID))
                .child(
                    El::new(Ns::Assertion, "NameID")
                        .attr("Format", ns::NAMEID_EMAIL)
                        .text("victim@acme.test"),
                );
            let forged_authn = crate::saml::request::tests::authn_request("_forged_authn", |e| {
                e.attr("ForceAuthn", "false")
            });
            for (forged, what) in [
                (forged_logout, "LogoutRequest"),
                (forged_authn, "AuthnRequest"),
            ] {
                let xml = testkit::namespace_differential_forgery(&genuine, spelling, forged);
                // The forgery is real: xmlsec alone finds and accepts the genuine signature.
                assert!(
                    Crypto::verify_signed_xml(xml.as_bytes(), &sp_cert, Some("ID")).is_ok(),
                    "{spelling}: the hidden signature no longer verifies, the test proves nothing"
                );
                let b64 = B64.encode(&xml);
                let refused = if what == "LogoutRequest" {
                    verify_post_logout_request(&b64, None, &policy(), &registry(), now())
                        .map(|_| ())
                        .unwrap_err()
                } else {
                    crate::saml::request::verify_post_request(
                        &b64,
                        None,
                        &policy(),
                        &registry(),
                        now(),
                    )
                    .map(|_| ())
                    .unwrap_err()
                };
                assert!(refused.reply.is_none(), "{spelling} {what}: {refused}");
                assert!(
                    matches!(
                        refused.error,
                        RequestError::Xml(XmlError::NamespaceReference { .. })
                    ),
                    "{spelling} {what}: {refused}"
                );
            }
        }
    }

    #[test]
    fn sp_logout_response_is_read_back() {
        let el = El::new(Ns::Protocol, "LogoutResponse")
            .attr("ID", "_resp")
            .attr("Version", "2.0")
            .attr("IssueInstant", "2025-06-01T10:00:01Z")
            .attr("InResponseTo", "_ours")
            .attr("Destination", "https://sso.acme.test/saml/slo")
            .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID))
            .child(status_element(SamlStatus::SUCCESS, None));
        let url = encode_redirect(
            "https://sso.acme.test/saml/slo",
            MessageKind::Response,
            &el.to_canonical(),
            None,
            Some(&testkit::sp_signing().material()),
        )
        .unwrap();
        let response = read_logout_response(
            InboundResponse::Redirect {
                raw_query: url.split_once('?').unwrap().1,
            },
            &policy(),
            &registry(),
            now(),
        )
        .unwrap();
        assert!(response.is_success());
        assert_eq!(response.in_response_to.as_deref(), Some("_ours"));

        let posted = read_logout_response(
            InboundResponse::Post {
                saml_response: &signed_post(el),
                relay_state: None,
            },
            &policy(),
            &registry(),
            now(),
        )
        .unwrap();
        assert_eq!(posted.id, "_resp");
    }
}
