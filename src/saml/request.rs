//! AuthnRequest intake: decode (either binding), strict XML, find the SP by Issuer, verify the
//! signature with the SP's registered certificate, read the fields, and validate them against
//! what the SP registered.
//!
//! The outcome for the web layer is either an [`AcceptedAuthnRequest`] (go sign the person in,
//! then answer its [`ReplyTo`]) or a [`Rejected`]: when `reply` is `Some`, POST an error Response
//! with `error.status()` there (the request was authentic enough and the ACS is registered);
//! when `None`, show an error page and post nothing anywhere.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::binding::{self, Binding, BindingError, BindingLimits, Decoded, MessageKind};
use super::dsig::{has_signature, verify_detached, verify_enveloped, SignatureError};
use super::sp::{ReplyTo, ServiceProvider, ServiceProviderLookup};
use super::xml::{parse_message, Element, XmlError};
use super::{ns, parse_saml_time, IdpUrls, NameIdFormat, SamlStatus, SubStatus, TopStatus};
use crate::config::SamlConfig;
use crate::web::Message;

/// What intake checks against; built once from the config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntakePolicy {
    /// Our SSO endpoint: an AuthnRequest's Destination, if present, must equal it.
    pub sso_url: String,
    /// Our SLO endpoint: a LogoutRequest's Destination, if present, must equal it.
    pub slo_url: String,
    /// Refuse unsigned requests unless the SP's `require_signed_requests` says otherwise.
    pub want_authn_requests_signed: bool,
    /// How far IssueInstant may be from our clock, either way.
    pub clock_skew: Duration,
    pub max_xml_bytes: usize,
    pub max_relay_state: usize,
    /// RSA-SHA1 signatures (and SHA-1 digests) are refused unless this is set.
    pub allow_rsa_sha1: bool,
}

impl IntakePolicy {
    /// Inflated requests larger than this are not AuthnRequests.
    pub const DEFAULT_MAX_XML_BYTES: usize = 128 * 1024;
    /// The bindings spec says 80 bytes; real SPs (and Lucca's return URLs) need more.
    pub const DEFAULT_MAX_RELAY_STATE: usize = 1024;

    pub fn new(urls: &IdpUrls, config: &SamlConfig) -> Self {
        IntakePolicy {
            sso_url: urls.sso.clone(),
            slo_url: urls.slo.clone(),
            want_authn_requests_signed: config.want_authn_requests_signed,
            clock_skew: config.clock_skew,
            max_xml_bytes: Self::DEFAULT_MAX_XML_BYTES,
            max_relay_state: Self::DEFAULT_MAX_RELAY_STATE,
            allow_rsa_sha1: false,
        }
    }

    pub(crate) fn limits(&self) -> BindingLimits {
        BindingLimits {
            max_xml_bytes: self.max_xml_bytes,
            max_relay_state: self.max_relay_state,
        }
    }
}

/// The fields of an AuthnRequest, as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthnRequest {
    pub id: String,
    pub issue_instant: DateTime<Utc>,
    pub issuer: String,
    pub destination: Option<String>,
    pub acs_url: Option<String>,
    pub acs_index: Option<u16>,
    pub protocol_binding: Option<String>,
    pub force_authn: bool,
    pub is_passive: bool,
    pub name_id_policy: Option<NameIdPolicy>,
    /// `RequestedAuthnContext/AuthnContextClassRef` values, if any (the web layer may refuse
    /// with `NoAuthnContext` when it cannot satisfy them).
    pub requested_authn_contexts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NameIdPolicy {
    pub format: Option<String>,
    pub allow_create: Option<bool>,
    pub sp_name_qualifier: Option<String>,
}

/// A request that passed every check.
#[derive(Debug, Clone)]
pub struct AcceptedAuthnRequest {
    pub request: AuthnRequest,
    pub sp: Arc<ServiceProvider>,
    /// Where the Response goes: a registered HTTP-POST ACS, the request's ID, the RelayState.
    pub reply: ReplyTo,
    pub binding: Binding,
    /// Whether a signature was present and verified (it may be optional for this SP).
    pub signed: bool,
    /// The NameID format to issue: the requested one, or the SP's configured one when the
    /// request leaves it open.
    pub name_id_format: NameIdFormat,
}

/// Why an inbound message (AuthnRequest or logout message) was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RequestError {
    #[error("{0}")]
    Binding(#[from] BindingError),
    #[error("the message is not acceptable XML: {0}")]
    Xml(#[from] XmlError),
    #[error("{0}")]
    Signature(#[from] SignatureError),
    #[error("expected a {expected} message, received <{found}>")]
    WrongMessage {
        expected: &'static str,
        found: String,
    },
    #[error("unsupported SAML version {0:?} (2.0 is expected)")]
    UnsupportedVersion(String),
    #[error("the message has no {0}")]
    Missing(&'static str),
    #[error("the message's {field} is invalid: {value:?}")]
    Invalid { field: &'static str, value: String },
    #[error("unknown service provider {0:?}: it is not registered with this identity provider")]
    UnknownServiceProvider(String),
    #[error("the AssertionConsumerServiceURL {0:?} is not registered for this service provider")]
    UnregisteredAcsUrl(String),
    #[error("the AssertionConsumerServiceIndex {0} is not registered for this service provider")]
    UnregisteredAcsIndex(u16),
    #[error(
        "the request gives both AssertionConsumerServiceURL and AssertionConsumerServiceIndex"
    )]
    AmbiguousAcs,
    #[error("responses can only be sent with the HTTP-POST binding, not {0:?}")]
    UnsupportedProtocolBinding(String),
    #[error("the service provider has no AssertionConsumerService with the HTTP-POST binding")]
    NoPostAcs,
    #[error(
        "the request was issued at {issued}, outside the allowed clock skew of {skew_seconds}s"
    )]
    StaleOrFuture { issued: String, skew_seconds: u64 },
    #[error("the request is addressed to {found:?}, not to this endpoint ({expected:?})")]
    WrongDestination { expected: String, found: String },
    #[error("NameID format {0:?} is not supported (emailAddress, persistent, unspecified are)")]
    UnsupportedNameIdFormat(String),
    #[error("the logout request expired at {0}")]
    LogoutExpired(String),
}

impl RequestError {
    /// The SAML status this error maps to (for an error Response or LogoutResponse).
    pub fn status(&self) -> SamlStatus {
        use RequestError::*;
        match self {
            UnsupportedVersion(_) => SamlStatus {
                top: TopStatus::VersionMismatch,
                sub: None,
            },
            UnsupportedNameIdFormat(_) => SamlStatus::requester(SubStatus::InvalidNameIdPolicy),
            UnsupportedProtocolBinding(_) | NoPostAcs => {
                SamlStatus::requester(SubStatus::UnsupportedBinding)
            }
            Signature(_)
            | UnknownServiceProvider(_)
            | UnregisteredAcsUrl(_)
            | UnregisteredAcsIndex(_)
            | StaleOrFuture { .. }
            | WrongDestination { .. }
            | LogoutExpired(_) => SamlStatus::requester(SubStatus::RequestDenied),
            Binding(_)
            | Xml(_)
            | WrongMessage { .. }
            | Missing(_)
            | Invalid { .. }
            | AmbiguousAcs => SamlStatus::requester(SubStatus::RequestUnsupported),
        }
    }

    /// A message for the person in front of the browser (the error page), without internals;
    /// the technical detail stays as it is, for whoever they tell.
    pub fn message(&self) -> Message {
        use RequestError::*;
        let detail = || self.to_string();
        match self {
            UnknownServiceProvider(_) | UnregisteredAcsUrl(_) | UnregisteredAcsIndex(_) => {
                Message::new("saml.not_set_up").arg("detail", detail())
            }
            Signature(_) => Message::new("saml.not_verified").arg("detail", detail()),
            StaleOrFuture { .. } | LogoutExpired(_) => Message::new("saml.stale"),
            _ => Message::new("saml.invalid").arg("detail", detail()),
        }
    }

    /// The same in English, for the StatusMessage of an error Response (read by the SP's
    /// administrators, not the person).
    pub fn status_message(&self) -> String {
        crate::web::i18n::Catalogues::builtin().render(crate::web::Lang::En, &self.message())
    }
}

/// A refused message, and where (if anywhere) an error Response may be sent.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{error}")]
pub struct Rejected {
    pub error: RequestError,
    /// `Some` only once the SP and a registered reply endpoint are established: then the web
    /// layer POSTs an error Response (status `error.status()`) there. `None`: error page only.
    /// (Boxed to keep `Result<_, Rejected>` small.)
    pub reply: Option<Box<ReplyTo>>,
}

impl Rejected {
    pub fn page_only(error: impl Into<RequestError>) -> Self {
        Rejected {
            error: error.into(),
            reply: None,
        }
    }
}

impl From<RequestError> for Rejected {
    fn from(error: RequestError) -> Self {
        Rejected::page_only(error)
    }
}

/// HTTP-Redirect binding: `raw_query` is the query string exactly as received (not re-encoded).
pub fn parse_redirect_request(
    raw_query: &str,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
    now: DateTime<Utc>,
) -> Result<AcceptedAuthnRequest, Rejected> {
    let decoded = binding::decode_redirect(raw_query, MessageKind::Request, &policy.limits())
        .map_err(Rejected::page_only)?;
    accept_authn_request(decoded, policy, sps, now)
}

/// HTTP-POST binding: `saml_request` and `relay_state` are the form fields (form-decoded).
pub fn verify_post_request(
    saml_request: &str,
    relay_state: Option<&str>,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
    now: DateTime<Utc>,
) -> Result<AcceptedAuthnRequest, Rejected> {
    let decoded = binding::decode_post(
        saml_request,
        relay_state,
        MessageKind::Request,
        &policy.limits(),
    )
    .map_err(Rejected::page_only)?;
    accept_authn_request(decoded, policy, sps, now)
}

fn accept_authn_request(
    decoded: Decoded,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
    now: DateTime<Utc>,
) -> Result<AcceptedAuthnRequest, Rejected> {
    let inbound = authenticate(decoded, Inbound::AuthnRequest, policy, sps)?;
    let root = &inbound.root;
    let request = read_authn_request(root, inbound.issuer.clone())?;
    let sp = inbound.sp;

    // Until the ACS is known to be registered, nothing may be sent anywhere.
    let acs_url = resolve_acs(&sp, &request)?;
    let reply = ReplyTo {
        sp_entity_id: sp.entity_id.clone(),
        destination: acs_url,
        binding: Binding::Post,
        in_response_to: Some(request.id.clone()),
        relay_state: inbound.relay_state,
    };
    let reject = |error: RequestError| Rejected {
        error,
        reply: Some(Box::new(reply.clone())),
    };

    check_issue_instant(request.issue_instant, policy.clock_skew, now).map_err(reject)?;
    if let Some(destination) = &request.destination {
        if destination != &policy.sso_url {
            return Err(reject(RequestError::WrongDestination {
                expected: policy.sso_url.clone(),
                found: destination.clone(),
            }));
        }
    }
    let requested_format = request
        .name_id_policy
        .as_ref()
        .and_then(|p| p.format.as_deref());
    let name_id_format = match requested_format {
        None | Some(ns::NAMEID_UNSPECIFIED) => sp.settings.name_id_format,
        Some(format) => NameIdFormat::from_uri(format)
            .ok_or_else(|| reject(RequestError::UnsupportedNameIdFormat(format.to_string())))?,
    };
    Ok(AcceptedAuthnRequest {
        request,
        sp,
        reply,
        binding: inbound.binding,
        signed: inbound.signed,
        name_id_format,
    })
}

/// The messages an SP sends us, each with its signature rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Inbound {
    AuthnRequest,
    LogoutRequest,
    LogoutResponse,
}

impl Inbound {
    fn root(self) -> &'static str {
        match self {
            Inbound::AuthnRequest => "AuthnRequest",
            Inbound::LogoutRequest => "LogoutRequest",
            Inbound::LogoutResponse => "LogoutResponse",
        }
    }

    /// AuthnRequests follow the SP's request policy. Logout messages are always signed (SAML
    /// Profiles §4.4.4: the front-channel bindings have no other way to authenticate the
    /// requester; an unsigned one is a link anybody can make a victim follow), unless the admin
    /// chose `allow_unsigned_logout` for this SP.
    fn must_be_signed(self, sp: &ServiceProvider, policy: &IntakePolicy) -> bool {
        match self {
            Inbound::AuthnRequest => sp.requires_signed_requests(policy.want_authn_requests_signed),
            Inbound::LogoutRequest | Inbound::LogoutResponse => !sp.settings.allow_unsigned_logout,
        }
    }

    fn unsigned_error(self) -> SignatureError {
        match self {
            Inbound::AuthnRequest => SignatureError::Missing,
            Inbound::LogoutRequest | Inbound::LogoutResponse => SignatureError::LogoutUnsigned,
        }
    }
}

/// An inbound message whose issuer is a registered SP and whose signature (if any, and if
/// required) verified. `root` is libxml2's tree of the message, the one any XML signature was
/// verified in.
pub(crate) struct Authenticated {
    pub root: Element,
    pub issuer: String,
    pub sp: Arc<ServiceProvider>,
    pub signed: bool,
    pub binding: Binding,
    pub relay_state: Option<String>,
}

/// The part of intake shared by every SP→IdP message.
pub(crate) fn authenticate(
    decoded: Decoded,
    expected: Inbound,
    policy: &IntakePolicy,
    sps: &impl ServiceProviderLookup,
) -> Result<Authenticated, Rejected> {
    let root = parse_message(&decoded.xml, policy.max_xml_bytes).map_err(Rejected::page_only)?;
    if !root.is(ns::PROTOCOL, expected.root()) {
        return Err(Rejected::page_only(RequestError::WrongMessage {
            expected: expected.root(),
            found: root.local.clone(),
        }));
    }
    match root.attr("Version") {
        Some("2.0") => {}
        other => {
            return Err(Rejected::page_only(RequestError::UnsupportedVersion(
                other.unwrap_or_default().to_string(),
            )))
        }
    }
    let issuer = root
        .child(ns::ASSERTION, "Issuer")
        .map(|i| i.text().trim().to_string())
        .filter(|i| !i.is_empty())
        .ok_or(Rejected::page_only(RequestError::Missing("Issuer")))?;
    let sp = sps
        .find_service_provider(&issuer)
        .ok_or_else(|| Rejected::page_only(RequestError::UnknownServiceProvider(issuer.clone())))?;

    let signed = match (&decoded.binding, &decoded.query_signature) {
        (Binding::Redirect, Some(sig)) => {
            verify_detached(
                sig.signed.as_bytes(),
                &sig.sig_alg,
                &sig.signature,
                &sp.signing_certs,
                policy.allow_rsa_sha1,
            )
            .map_err(Rejected::page_only)?;
            true
        }
        // The Redirect binding carries its signature in the query; an XML signature left in the
        // deflated message is not what the binding signs, so it is not trusted either.
        (Binding::Redirect, None) => false,
        (Binding::Post, _) => {
            if has_signature(&root) {
                verify_enveloped(
                    &decoded.xml,
                    &root,
                    &sp.signing_certs,
                    policy.allow_rsa_sha1,
                )
                .map_err(Rejected::page_only)?;
                true
            } else {
                false
            }
        }
    };
    if !signed && expected.must_be_signed(&sp, policy) {
        return Err(Rejected::page_only(expected.unsigned_error()));
    }
    Ok(Authenticated {
        root,
        issuer,
        sp,
        signed,
        binding: decoded.binding,
        relay_state: decoded.relay_state,
    })
}

fn read_authn_request(root: &Element, issuer: String) -> Result<AuthnRequest, Rejected> {
    let id = required_attr(root, "ID")?;
    let issue_instant = read_instant(root, "IssueInstant")?;
    let acs_index = match root.attr("AssertionConsumerServiceIndex") {
        Some(v) => Some(v.trim().parse().map_err(|_| RequestError::Invalid {
            field: "AssertionConsumerServiceIndex",
            value: v.to_string(),
        })?),
        None => None,
    };
    let name_id_policy = root
        .child(ns::PROTOCOL, "NameIDPolicy")
        .map(|p| NameIdPolicy {
            format: p.attr("Format").map(|f| f.trim().to_string()),
            allow_create: p.attr("AllowCreate").map(xs_bool),
            sp_name_qualifier: p.attr("SPNameQualifier").map(str::to_string),
        });
    let requested_authn_contexts = root
        .child(ns::PROTOCOL, "RequestedAuthnContext")
        .map(|r| {
            r.children_named(ns::ASSERTION, "AuthnContextClassRef")
                .map(|c| c.text().trim().to_string())
                .collect()
        })
        .unwrap_or_default();
    Ok(AuthnRequest {
        id,
        issue_instant,
        issuer,
        destination: root.attr("Destination").map(str::to_string),
        acs_url: root
            .attr("AssertionConsumerServiceURL")
            .map(|u| u.trim().to_string()),
        acs_index,
        protocol_binding: root.attr("ProtocolBinding").map(|b| b.trim().to_string()),
        force_authn: root.attr("ForceAuthn").is_some_and(xs_bool),
        is_passive: root.attr("IsPassive").is_some_and(xs_bool),
        name_id_policy,
        requested_authn_contexts,
    })
}

/// Pick the ACS the Response goes to, only ever among the SP's registered HTTP-POST endpoints.
fn resolve_acs(sp: &ServiceProvider, request: &AuthnRequest) -> Result<String, RequestError> {
    if let Some(binding) = &request.protocol_binding {
        if binding != ns::BINDING_POST {
            return Err(RequestError::UnsupportedProtocolBinding(binding.clone()));
        }
    }
    let endpoint = match (&request.acs_url, request.acs_index) {
        (Some(_), Some(_)) => return Err(RequestError::AmbiguousAcs),
        (Some(url), None) => sp
            .acs_by_url(url)
            .ok_or_else(|| RequestError::UnregisteredAcsUrl(url.clone()))?,
        (None, Some(index)) => sp
            .acs_by_index(index)
            .ok_or(RequestError::UnregisteredAcsIndex(index))?,
        (None, None) => sp.default_acs().ok_or(RequestError::NoPostAcs)?,
    };
    if endpoint.binding != ns::BINDING_POST {
        return Err(RequestError::UnsupportedProtocolBinding(
            endpoint.binding.clone(),
        ));
    }
    Ok(endpoint.url.clone())
}

pub(crate) fn check_issue_instant(
    issued: DateTime<Utc>,
    skew: Duration,
    now: DateTime<Utc>,
) -> Result<(), RequestError> {
    let skew_chrono = chrono::Duration::from_std(skew).unwrap_or(chrono::Duration::MAX);
    let too_old = now.signed_duration_since(issued) > skew_chrono;
    let too_new = issued.signed_duration_since(now) > skew_chrono;
    if too_old || too_new {
        return Err(RequestError::StaleOrFuture {
            issued: super::saml_time(issued),
            skew_seconds: skew.as_secs(),
        });
    }
    Ok(())
}

pub(crate) fn required_attr(root: &Element, name: &'static str) -> Result<String, RequestError> {
    root.attr(name)
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .ok_or(RequestError::Missing(name))
}

pub(crate) fn read_instant(
    root: &Element,
    name: &'static str,
) -> Result<DateTime<Utc>, RequestError> {
    let value = required_attr(root, name)?;
    parse_saml_time(&value).ok_or(RequestError::Invalid { field: name, value })
}

fn xs_bool(value: &str) -> bool {
    matches!(value.trim(), "true" | "1")
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::saml::binding::encode_redirect;
    use crate::saml::dsig::sign_enveloped;
    use crate::saml::testkit::{self, SP_ACS, SP_ENTITY_ID};
    use crate::saml::writer::{El, Ns};
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    pub fn policy() -> IntakePolicy {
        IntakePolicy::new(&IdpUrls::new(testkit::PUBLIC_URL), &SamlConfig::default())
    }

    pub fn now() -> DateTime<Utc> {
        parse_saml_time("2025-06-01T10:00:00Z").unwrap()
    }

    pub fn registry() -> impl ServiceProviderLookup {
        let sp = testkit::service_provider();
        move |id: &str| (id == SP_ENTITY_ID).then(|| sp.clone())
    }

    /// An AuthnRequest as a typical SP writes it.
    pub fn authn_request(id: &str, extra: impl FnOnce(El) -> El) -> El {
        let el = El::new(Ns::Protocol, "AuthnRequest")
            .attr("ID", id)
            .attr("Version", "2.0")
            .attr("IssueInstant", "2025-06-01T09:59:30Z")
            .attr("Destination", "https://sso.acme.test/saml/sso")
            .attr("AssertionConsumerServiceURL", SP_ACS)
            .attr("ProtocolBinding", ns::BINDING_POST)
            .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID));
        extra(el)
    }

    fn name_id_policy(format: &str) -> El {
        El::new(Ns::Protocol, "NameIDPolicy")
            .attr("Format", format)
            .attr("AllowCreate", "true")
    }

    pub fn signed_post(el: El) -> String {
        let mut el = el;
        sign_enveloped(&mut el, 1, &testkit::sp_signing().material()).unwrap();
        B64.encode(el.to_document())
    }

    fn redirect_query(el: &El, relay: Option<&str>, signed: bool) -> String {
        let sp = testkit::sp_signing();
        let url = encode_redirect(
            "https://sso.acme.test/saml/sso",
            MessageKind::Request,
            &el.to_canonical(),
            relay,
            signed.then(|| sp.material()).as_ref(),
        )
        .unwrap();
        url.split_once('?').unwrap().1.to_string()
    }

    #[test]
    fn signed_redirect_request_is_accepted() {
        let el = authn_request("_r1", |e| {
            e.attr("ForceAuthn", "true")
                .child(name_id_policy(ns::NAMEID_EMAIL))
        });
        let query = redirect_query(&el, Some("/home?x=1"), true);
        let accepted = parse_redirect_request(&query, &policy(), &registry(), now()).unwrap();
        assert_eq!(accepted.request.id, "_r1");
        assert_eq!(accepted.request.issuer, SP_ENTITY_ID);
        assert!(accepted.request.force_authn);
        assert!(!accepted.request.is_passive);
        assert!(accepted.signed);
        assert_eq!(accepted.binding, Binding::Redirect);
        assert_eq!(accepted.name_id_format, NameIdFormat::EmailAddress);
        assert_eq!(
            accepted.reply,
            ReplyTo {
                sp_entity_id: SP_ENTITY_ID.into(),
                destination: SP_ACS.into(),
                binding: Binding::Post,
                in_response_to: Some("_r1".into()),
                relay_state: Some("/home?x=1".into()),
            }
        );
    }

    #[test]
    fn lowercase_escapes_in_a_signed_query_still_verify() {
        // An SP that percent-encodes with lowercase hex signs *its* text; we must verify that
        // text, not a re-encoding of it.
        let el = authn_request("_r2", |e| e);
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut deflater, el.to_canonical().as_bytes()).unwrap();
        let b64 = B64.encode(deflater.finish().unwrap());
        let lower = |s: &str| {
            s.replace('+', "%2b")
                .replace('/', "%2f")
                .replace('=', "%3d")
                .replace(':', "%3a")
                .replace('#', "%23")
        };
        let signed = format!(
            "SAMLRequest={}&RelayState={}&SigAlg={}",
            lower(&b64),
            lower("a/b"),
            lower(crate::saml::dsig::ALG_RSA_SHA256)
        );
        let sig =
            crate::saml::dsig::rsa_sha256(&testkit::sp_signing().material(), signed.as_bytes())
                .unwrap();
        let query = format!("{signed}&Signature={}", lower(&B64.encode(sig)));
        assert!(query.contains("%2f") || query.contains("%2b"));
        let accepted = parse_redirect_request(&query, &policy(), &registry(), now()).unwrap();
        assert!(accepted.signed);
        assert_eq!(accepted.reply.relay_state.as_deref(), Some("a/b"));

        // The same query with one escape re-cased is no longer what was signed.
        let recased = query.replacen("%2f", "%2F", 1);
        let err = parse_redirect_request(&recased, &policy(), &registry(), now()).unwrap_err();
        assert_eq!(err.error, RequestError::Signature(SignatureError::Invalid));
    }

    #[test]
    fn signed_post_request_is_accepted() {
        let el = authn_request("_p1", |e| e.attr("IsPassive", "1"));
        let accepted =
            verify_post_request(&signed_post(el), Some("rs"), &policy(), &registry(), now())
                .unwrap();
        assert!(accepted.signed);
        assert!(accepted.request.is_passive);
        assert_eq!(accepted.binding, Binding::Post);
        assert_eq!(accepted.reply.relay_state.as_deref(), Some("rs"));
    }

    #[test]
    fn post_request_signed_by_xmlsec1_with_another_layout_is_accepted() {
        // Interop: a request signed by another implementation (default namespace, whitespace,
        // signature template written by hand) verifies too.
        let Some(dir) = testkit::tool_dir("xmlsec1") else {
            return;
        };
        let template = format!(
            r##"<?xml version="1.0"?>
<AuthnRequest xmlns="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x1" Version="2.0" IssueInstant="2025-06-01T10:00:10Z" AssertionConsumerServiceIndex="0">
  <Issuer xmlns="urn:oasis:names:tc:SAML:2.0:assertion">{SP_ENTITY_ID}</Issuer>
  <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">
    <SignedInfo>
      <CanonicalizationMethod Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
      <SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>
      <Reference URI="#_x1">
        <Transforms>
          <Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>
          <Transform Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"/>
        </Transforms>
        <DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>
        <DigestValue/>
      </Reference>
    </SignedInfo>
    <SignatureValue/>
  </Signature>
  <NameIDPolicy Format="urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"/>
</AuthnRequest>
"##
        );
        let tpl = testkit::write(dir.path(), "tpl.xml", &template);
        let key = testkit::write(dir.path(), "key.pem", &testkit::sp_signing().key_pem());
        let out = testkit::run(
            "xmlsec1",
            &[
                "--sign",
                "--privkey-pem",
                key.to_str().unwrap(),
                "--id-attr:ID",
                "urn:oasis:names:tc:SAML:2.0:protocol:AuthnRequest",
                tpl.to_str().unwrap(),
            ],
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let signed = B64.encode(&out.stdout);
        let accepted = verify_post_request(&signed, None, &policy(), &registry(), now()).unwrap();
        assert!(accepted.signed);
        // Sent with Windows line ends, it is the same document to every XML parser.
        let crlf = String::from_utf8(out.stdout.clone())
            .unwrap()
            .replace('\n', "\r\n");
        let accepted =
            verify_post_request(&B64.encode(crlf), None, &policy(), &registry(), now()).unwrap();
        assert!(accepted.signed);
        assert_eq!(accepted.reply.destination, SP_ACS);
        assert_eq!(accepted.name_id_format, NameIdFormat::Persistent);
    }

    fn rejected_post(el: El) -> Rejected {
        verify_post_request(&signed_post(el), None, &policy(), &registry(), now()).unwrap_err()
    }

    #[test]
    fn page_only_refusals() {
        // Unknown SP.
        let el = El::new(Ns::Protocol, "AuthnRequest")
            .attr("ID", "_u")
            .attr("Version", "2.0")
            .attr("IssueInstant", "2025-06-01T10:00:00Z")
            .child(El::new(Ns::Assertion, "Issuer").text("https://stranger.test"));
        let err = rejected_post(el);
        assert_eq!(
            err.error,
            RequestError::UnknownServiceProvider("https://stranger.test".into())
        );
        assert_eq!(err.reply, None);
        assert!(err.error.status_message().contains("not set up"));

        // Foreign ACS URL: never post anything there.
        let el = authn_request("_a", |e| e).attr("AssertionConsumerServiceIndex", "7");
        assert_eq!(rejected_post(el).error, RequestError::AmbiguousAcs);
        let mut el = authn_request("_a", |e| e);
        el = rewrite_attr(el, "AssertionConsumerServiceURL", "https://evil.test/acs");
        let err = rejected_post(el);
        assert_eq!(
            err.error,
            RequestError::UnregisteredAcsUrl("https://evil.test/acs".into())
        );
        assert_eq!(err.reply, None);
        assert_eq!(
            err.error.status(),
            SamlStatus::requester(SubStatus::RequestDenied)
        );

        // Index of an Artifact endpoint.
        let el = El::new(Ns::Protocol, "AuthnRequest")
            .attr("ID", "_i")
            .attr("Version", "2.0")
            .attr("IssueInstant", "2025-06-01T10:00:00Z")
            .attr("AssertionConsumerServiceIndex", "2")
            .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID));
        assert!(matches!(
            rejected_post(el).error,
            RequestError::UnsupportedProtocolBinding(_)
        ));

        // Wrong message.
        let el = El::new(Ns::Protocol, "LogoutRequest")
            .attr("ID", "_l")
            .attr("Version", "2.0")
            .child(El::new(Ns::Assertion, "Issuer").text(SP_ENTITY_ID));
        assert!(matches!(
            rejected_post(el).error,
            RequestError::WrongMessage { .. }
        ));
    }

    fn rewrite_attr(mut el: El, name: &'static str, value: &str) -> El {
        el.set_attr(name, value);
        el
    }

    #[test]
    fn refusals_that_are_answered_with_an_error_response() {
        // Stale IssueInstant.
        let el = rewrite_attr(
            authn_request("_s", |e| e),
            "IssueInstant",
            "2025-06-01T09:00:00Z",
        );
        let err = rejected_post(el);
        assert!(matches!(err.error, RequestError::StaleOrFuture { .. }));
        assert_eq!(err.reply.as_ref().unwrap().destination, SP_ACS);
        assert_eq!(
            err.reply.as_ref().unwrap().in_response_to.as_deref(),
            Some("_s")
        );
        // From the future.
        let el = rewrite_attr(
            authn_request("_f", |e| e),
            "IssueInstant",
            "2025-06-01T10:30:00Z",
        );
        assert!(matches!(
            rejected_post(el).error,
            RequestError::StaleOrFuture { .. }
        ));
        // Destination elsewhere.
        let el = rewrite_attr(
            authn_request("_d", |e| e),
            "Destination",
            "https://other-idp.test/sso",
        );
        let err = rejected_post(el);
        assert!(matches!(err.error, RequestError::WrongDestination { .. }));
        assert!(err.reply.is_some());
        // Unsupported NameID format → InvalidNameIDPolicy.
        let el = authn_request("_n", |e| {
            e.child(name_id_policy(
                "urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
            ))
        });
        let err = rejected_post(el);
        assert_eq!(
            err.error.status(),
            SamlStatus::requester(SubStatus::InvalidNameIdPolicy)
        );
        assert!(err.reply.is_some());
    }

    #[test]
    fn signature_required_and_bad_signatures() {
        // Unsigned POST while the SP must sign.
        let unsigned = B64.encode(authn_request("_u1", |e| e).to_document());
        let err = verify_post_request(&unsigned, None, &policy(), &registry(), now()).unwrap_err();
        assert_eq!(err.error, RequestError::Signature(SignatureError::Missing));
        assert_eq!(err.reply, None);
        // Unsigned redirect while the SP must sign.
        let query = redirect_query(&authn_request("_u2", |e| e), None, false);
        let err = parse_redirect_request(&query, &policy(), &registry(), now()).unwrap_err();
        assert_eq!(err.error, RequestError::Signature(SignatureError::Missing));
        // Unsigned accepted when neither the config nor the SP asks for signatures.
        let mut sp = (*testkit::service_provider()).clone();
        sp.authn_requests_signed = false;
        sp.settings.require_signed_requests = Some(false);
        let sp = Arc::new(sp);
        let lenient = move |_: &str| Some(sp.clone());
        let accepted = parse_redirect_request(&query, &policy(), &lenient, now()).unwrap();
        assert!(!accepted.signed);

        // Tampered signed POST.
        let tampered =
            String::from_utf8(B64.decode(signed_post(authn_request("_t", |e| e))).unwrap())
                .unwrap()
                .replace("ID=\"_t\"", "ID=\"_t\" ForceAuthn=\"false\"");
        let err = verify_post_request(&B64.encode(tampered), None, &policy(), &registry(), now())
            .unwrap_err();
        assert_eq!(err.error, RequestError::Signature(SignatureError::Invalid));

        // Tampered redirect query (message swapped under the same signature).
        let q1 = redirect_query(&authn_request("_q1", |e| e), None, true);
        let q2 = redirect_query(&authn_request("_q2", |e| e), None, true);
        let forged = format!(
            "{}&{}",
            q2.split('&').next().unwrap(),
            q1.split_once('&').unwrap().1
        );
        let err = parse_redirect_request(&forged, &policy(), &registry(), now()).unwrap_err();
        assert_eq!(err.error, RequestError::Signature(SignatureError::Invalid));

        // SHA-1 refused by default, accepted with the flag.
        let el = authn_request("_sha1", |e| e);
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut deflater, el.to_canonical().as_bytes()).unwrap();
        let msg: String =
            url::form_urlencoded::byte_serialize(B64.encode(deflater.finish().unwrap()).as_bytes())
                .collect();
        let alg: String =
            url::form_urlencoded::byte_serialize(crate::saml::dsig::ALG_RSA_SHA1.as_bytes())
                .collect();
        let signed = format!("SAMLRequest={msg}&SigAlg={alg}");
        let mut signer = openssl::sign::Signer::new(
            openssl::hash::MessageDigest::sha1(),
            &testkit::sp_signing().pkey,
        )
        .unwrap();
        let sig = signer.sign_oneshot_to_vec(signed.as_bytes()).unwrap();
        let sig: String =
            url::form_urlencoded::byte_serialize(B64.encode(sig).as_bytes()).collect();
        let query = format!("{signed}&Signature={sig}");
        let err = parse_redirect_request(&query, &policy(), &registry(), now()).unwrap_err();
        assert!(matches!(
            err.error,
            RequestError::Signature(SignatureError::UnsupportedAlgorithm(_))
        ));
        let sha1_ok = IntakePolicy {
            allow_rsa_sha1: true,
            ..policy()
        };
        assert!(parse_redirect_request(&query, &sha1_ok, &registry(), now()).is_ok());

        // A SigAlg without Signature does not panic; it is refused.
        let err = parse_redirect_request(
            &format!("SAMLRequest={msg}&SigAlg={alg}"),
            &policy(),
            &registry(),
            now(),
        )
        .unwrap_err();
        assert_eq!(
            err.error,
            RequestError::Binding(BindingError::SigAlgWithoutSignature)
        );
    }

    #[test]
    fn dtd_and_xxe_are_refused_before_any_parser() {
        let xml = format!(
            r#"<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0" IssueInstant="2025-06-01T10:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">&xxe;{SP_ENTITY_ID}</saml:Issuer></samlp:AuthnRequest>"#
        );
        let err = verify_post_request(&B64.encode(&xml), None, &policy(), &registry(), now())
            .unwrap_err();
        assert_eq!(err.error, RequestError::Xml(XmlError::Dtd));
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        std::io::Write::write_all(&mut deflater, xml.as_bytes()).unwrap();
        let msg: String =
            url::form_urlencoded::byte_serialize(B64.encode(deflater.finish().unwrap()).as_bytes())
                .collect();
        let err =
            parse_redirect_request(&format!("SAMLRequest={msg}"), &policy(), &registry(), now())
                .unwrap_err();
        assert_eq!(err.error, RequestError::Xml(XmlError::Dtd));
    }

    #[test]
    fn deflate_bomb_request_is_refused() {
        let mut deflater =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        std::io::Write::write_all(&mut deflater, b"<samlp:AuthnRequest ").unwrap();
        std::io::Write::write_all(&mut deflater, &vec![b' '; 20 * 1024 * 1024]).unwrap();
        let msg: String =
            url::form_urlencoded::byte_serialize(B64.encode(deflater.finish().unwrap()).as_bytes())
                .collect();
        let err =
            parse_redirect_request(&format!("SAMLRequest={msg}"), &policy(), &registry(), now())
                .unwrap_err();
        assert!(matches!(
            err.error,
            RequestError::Binding(BindingError::InflatedTooLarge { .. })
        ));
    }

    /// Signature wrapping on the POST binding: the signature must sign the very root we read.
    #[test]
    fn signature_wrapping_is_refused() {
        let genuine = String::from_utf8(
            B64.decode(signed_post(authn_request("_good", |e| e)))
                .unwrap(),
        )
        .unwrap();
        let genuine_el = genuine
            .strip_prefix(r#"<?xml version="1.0" encoding="UTF-8"?>"#)
            .unwrap()
            .trim();
        let post = |xml: &str| {
            verify_post_request(&B64.encode(xml), None, &policy(), &registry(), now())
                .unwrap_err()
                .error
        };

        // 1. An evil unsigned request wrapping the signed one (inside Extensions).
        let wrapped = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_evil" Version="2.0" IssueInstant="2025-06-01T10:00:00Z" AssertionConsumerServiceURL="https://evil.test/acs"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{SP_ENTITY_ID}</saml:Issuer><samlp:Extensions>{genuine_el}</samlp:Extensions></samlp:AuthnRequest>"#
        );
        assert!(matches!(
            post(&wrapped),
            RequestError::Signature(SignatureError::NotOnRoot(_))
        ));

        // 2. The evil request reuses the signed ID and moves the signature to its own root,
        //    with the original (signed) request next to it.
        let signature = &genuine_el[genuine_el.find("<ds:Signature").unwrap()
            ..genuine_el.find("</ds:Signature>").unwrap() + "</ds:Signature>".len()];
        let original_without_sig = genuine_el.replace(signature, "");
        let sibling = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_good" Version="2.0" IssueInstant="2025-06-01T10:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{SP_ENTITY_ID}</saml:Issuer>{signature}<samlp:Extensions>{original_without_sig}</samlp:Extensions></samlp:AuthnRequest>"#
        );
        assert_eq!(
            post(&sibling),
            RequestError::Signature(SignatureError::DuplicateId("_good".into()))
        );

        // 3. A second, unsigned AuthnRequest next to the signed one: not one document.
        let two_roots = format!("{genuine_el}{}", authn_request("_b", |e| e).to_canonical());
        assert!(matches!(
            post(&two_roots),
            RequestError::Xml(XmlError::TrailingContent)
        ));

        // 4. Only a (signed) Extensions element, not the root.
        let mut ext = El::new(Ns::Protocol, "Extensions").attr("ID", "_ext");
        sign_enveloped(&mut ext, 0, &testkit::sp_signing().material()).unwrap();
        let ext_xml = ext.to_canonical();
        let signed_extensions = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_root" Version="2.0" IssueInstant="2025-06-01T10:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{SP_ENTITY_ID}</saml:Issuer>{ext_xml}</samlp:AuthnRequest>"#
        );
        assert!(matches!(
            post(&signed_extensions),
            RequestError::Signature(SignatureError::NotOnRoot(_))
        ));

        // 5. The Extensions signature moved up to the root: it references the wrong element.
        let sig_of_ext = &ext_xml[ext_xml.find("<ds:Signature").unwrap()
            ..ext_xml.find("</ds:Signature>").unwrap() + "</ds:Signature>".len()];
        let moved = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_root" Version="2.0" IssueInstant="2025-06-01T10:00:00Z"><saml:Issuer xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion">{SP_ENTITY_ID}</saml:Issuer>{sig_of_ext}<samlp:Extensions ID="_ext"></samlp:Extensions></samlp:AuthnRequest>"#
        );
        assert_eq!(
            post(&moved),
            RequestError::Signature(SignatureError::ReferenceMismatch {
                expected: "#_root".into(),
                found: "#_ext".into()
            })
        );

        // 6. Two signatures.
        let doubled = genuine_el.replace(
            "</samlp:AuthnRequest>",
            &format!("{signature}</samlp:AuthnRequest>"),
        );
        assert_eq!(
            post(&doubled),
            RequestError::Signature(SignatureError::Multiple(2))
        );
    }
}
