//! SAML 2.0 identity provider: the protocol core, free of HTTP, and its thin HTTP edge (`http/`).
//!
//! What is here, one concern per module:
//! - [`metadata`]: our IdP metadata (`EntityDescriptor`), rendered from an escaped template.
//! - [`sp`]: the registry of service providers, built from SP metadata or from config.
//! - [`xml`]: the strict XML gate every inbound message passes before any parser sees it, and the
//!   small namespace-aware tree the readers below work on.
//! - [`binding`]: HTTP-Redirect (DEFLATE + query signature) and HTTP-POST (base64 + XML signature)
//!   decoding and encoding.
//! - [`request`]: AuthnRequest intake: decode, verify, validate against the registered SP.
//! - [`response`]: Response/Assertion building and signing.
//! - [`encrypt`]: EncryptedAssertion (AES-256-GCM + RSA-OAEP).
//! - [`logout`]: LogoutRequest / LogoutResponse, both directions.
//! - [`sso`]: what an SSO answer says once the pipeline released the person (NameID, context,
//!   attributes, or the status of an error Response), and the request kept while they sign in.
//! - [`slo`]: which session an SP's LogoutRequest names, and the chain of LogoutRequests to the
//!   session's other SPs, one hop at a time.
//!
//! `http/` holds the thin axum handlers (metadata, SSO, SLO) on a narrow [`SamlState`], and
//! [`SingleLogout`], SAML's logout participant registered with `login/` at start-up.
//!
//! Signing does not go through samael or xmlsec: we generate the XML ourselves, already in
//! exclusive-C14N form (`writer`), so the digest is taken over the exact bytes we emit and the
//! RSA key is used straight from memory ([`dsig`]). Inbound XML signatures are verified with
//! xmlsec (samael's `Crypto::verify_signed_xml`), after our own structural checks against
//! signature wrapping.
//!
//! # For the web layer
//! - `GET /saml/metadata`: [`render_metadata`] (certificates: current + next).
//! - `GET /saml/sso`: [`parse_redirect_request`] with the *raw* query string (`uri.query()`, not
//!   re-encoded); `POST /saml/sso`: [`verify_post_request`] with the form fields.
//!   `Ok(accepted)`: claim `accepted.request.id` for replay (`store::claim_saml_request_id`),
//!   honour `force_authn`/`is_passive`, sign the person in, then [`build_response`] with
//!   `accepted.reply` and auto-POST `BuiltResponse::post_form_value()` + RelayState to
//!   `reply.destination`. `Err(rejected)`: if `rejected.reply` is `Some`, auto-POST
//!   [`build_error_response`] with `rejected.error.status()` there; if `None`, show an error page
//!   with `rejected.error.message()` (and log `rejected.error`), posting nothing.
//! - Failures after intake: `Responder/NoPassive` (passive and no session),
//!   `Responder/AuthnFailed`, `Responder/UnknownPrincipal` ([`name_id_value`] gave `None`),
//!   sent with [`build_error_response`] to the accepted request's `reply`.
//! - `GET /saml/idp-init`: [`ServiceProvider::idp_initiated_reply`], then [`build_response`].
//! - `GET|POST /saml/slo`: [`parse_redirect_logout_request`] / [`verify_post_logout_request`]
//!   (or [`read_logout_response`] for an SP's answer to ours), then [`build_logout_response`]
//!   sent per `reply.binding`: Redirect = [`encode_redirect`] with `signing` (XML unsigned), POST =
//!   XML signed + [`encode_post`].
//! - Builders fail only on our side (key/OpenSSL): status `Responder`, a 500 page.
//!
//! May import `config/`, `web/`, `store/`, `keys/`, `identity/`, `login/` and `pipeline`; never
//! `oidc/` nor `app/`.

pub mod binding;
pub mod dsig;
pub mod encrypt;
mod http;
pub mod idp;
pub(crate) mod libxml2;
pub mod logout;
pub mod metadata;
pub mod request;
pub mod response;
pub mod slo;
pub mod sp;
pub mod sso;
pub(crate) mod writer;
pub mod xml;

#[cfg(test)]
mod fuzz_seeds;
#[cfg(test)]
mod testkit;

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};

pub use binding::{encode_post, encode_redirect, Binding, BindingError, MessageKind};
pub use dsig::{SignError, SignatureError, SigningMaterial};
pub use http::{routes, SamlState, SingleLogout};
pub use idp::{SamlIdp, SpProblem};
pub use logout::{
    build_logout_request, build_logout_response, parse_redirect_logout_request,
    read_logout_response, verify_post_logout_request, AcceptedLogoutRequest, BuiltMessage,
    InboundResponse, LogoutRequest, LogoutRequestParams, LogoutResponse, LogoutResponseParams,
};
pub use metadata::{render_metadata, IdpMetadataParams};
pub use request::{
    parse_redirect_request, verify_post_request, AcceptedAuthnRequest, AuthnRequest, IntakePolicy,
    Rejected, RequestError,
};
pub use response::{
    attributes_from_claims, build_error_response, build_response, name_id_value,
    AttributeNameFormat, AuthnContextClass, BuiltResponse, ResponseError, ResponseParams,
    SamlAttribute,
};
pub use sp::{ReplyTo, ServiceProvider, ServiceProviderLookup, SpError, SpRegistry, SpSettings};
pub use sso::name_id_for;
pub use xml::{parse_message, XmlError};

/// Namespace and algorithm identifiers used across the modules.
pub mod ns {
    pub const PROTOCOL: &str = "urn:oasis:names:tc:SAML:2.0:protocol";
    pub const ASSERTION: &str = "urn:oasis:names:tc:SAML:2.0:assertion";
    pub const METADATA: &str = "urn:oasis:names:tc:SAML:2.0:metadata";
    pub const DSIG: &str = "http://www.w3.org/2000/09/xmldsig#";
    pub const XENC: &str = "http://www.w3.org/2001/04/xmlenc#";

    pub const BINDING_REDIRECT: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect";
    pub const BINDING_POST: &str = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST";

    pub const NAMEID_EMAIL: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress";
    pub const NAMEID_PERSISTENT: &str = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent";
    pub const NAMEID_UNSPECIFIED: &str = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified";

    pub const CM_BEARER: &str = "urn:oasis:names:tc:SAML:2.0:cm:bearer";
}

/// The NameID formats we issue (and advertise in metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NameIdFormat {
    #[default]
    EmailAddress,
    Persistent,
    Unspecified,
}

impl NameIdFormat {
    pub const ALL: [NameIdFormat; 3] = [
        NameIdFormat::EmailAddress,
        NameIdFormat::Persistent,
        NameIdFormat::Unspecified,
    ];

    pub fn uri(self) -> &'static str {
        match self {
            NameIdFormat::EmailAddress => ns::NAMEID_EMAIL,
            NameIdFormat::Persistent => ns::NAMEID_PERSISTENT,
            NameIdFormat::Unspecified => ns::NAMEID_UNSPECIFIED,
        }
    }

    /// A format URI from a request or SP metadata; `None` for formats we do not issue.
    pub fn from_uri(uri: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|f| f.uri() == uri.trim())
    }

    /// The short names used in `[[saml.service_providers]] name_id_format`.
    pub fn from_config(name: &str) -> Option<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "email" | "emailaddress" => Some(NameIdFormat::EmailAddress),
            "persistent" => Some(NameIdFormat::Persistent),
            "unspecified" => Some(NameIdFormat::Unspecified),
            other => Self::from_uri(other),
        }
    }
}

/// Top-level SAML StatusCode values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TopStatus {
    Success,
    Requester,
    Responder,
    VersionMismatch,
}

impl TopStatus {
    pub fn uri(self) -> &'static str {
        match self {
            TopStatus::Success => "urn:oasis:names:tc:SAML:2.0:status:Success",
            TopStatus::Requester => "urn:oasis:names:tc:SAML:2.0:status:Requester",
            TopStatus::Responder => "urn:oasis:names:tc:SAML:2.0:status:Responder",
            TopStatus::VersionMismatch => "urn:oasis:names:tc:SAML:2.0:status:VersionMismatch",
        }
    }
}

/// Second-level StatusCode values we emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubStatus {
    AuthnFailed,
    InvalidNameIdPolicy,
    NoPassive,
    NoAuthnContext,
    RequestDenied,
    RequestUnsupported,
    UnsupportedBinding,
    UnknownPrincipal,
    PartialLogout,
}

impl SubStatus {
    pub fn uri(self) -> &'static str {
        match self {
            SubStatus::AuthnFailed => "urn:oasis:names:tc:SAML:2.0:status:AuthnFailed",
            SubStatus::InvalidNameIdPolicy => {
                "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
            }
            SubStatus::NoPassive => "urn:oasis:names:tc:SAML:2.0:status:NoPassive",
            SubStatus::NoAuthnContext => "urn:oasis:names:tc:SAML:2.0:status:NoAuthnContext",
            SubStatus::RequestDenied => "urn:oasis:names:tc:SAML:2.0:status:RequestDenied",
            SubStatus::RequestUnsupported => {
                "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"
            }
            SubStatus::UnsupportedBinding => {
                "urn:oasis:names:tc:SAML:2.0:status:UnsupportedBinding"
            }
            SubStatus::UnknownPrincipal => "urn:oasis:names:tc:SAML:2.0:status:UnknownPrincipal",
            SubStatus::PartialLogout => "urn:oasis:names:tc:SAML:2.0:status:PartialLogout",
        }
    }
}

/// A SAML status: what an error maps to, and what an error Response carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SamlStatus {
    pub top: TopStatus,
    pub sub: Option<SubStatus>,
}

impl SamlStatus {
    pub const SUCCESS: SamlStatus = SamlStatus {
        top: TopStatus::Success,
        sub: None,
    };

    pub const fn requester(sub: SubStatus) -> Self {
        SamlStatus {
            top: TopStatus::Requester,
            sub: Some(sub),
        }
    }

    pub const fn responder(sub: SubStatus) -> Self {
        SamlStatus {
            top: TopStatus::Responder,
            sub: Some(sub),
        }
    }
}

impl fmt::Display for SamlStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.top.uri())?;
        if let Some(sub) = self.sub {
            write!(f, " / {}", sub.uri())?;
        }
        Ok(())
    }
}

/// The URLs we publish, all derived from `server.public_url` (see CONTRACT.md).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdpUrls {
    /// `<public_url>/saml/metadata`: both our entityID and where the metadata is served.
    pub entity_id: String,
    pub sso: String,
    pub slo: String,
}

impl IdpUrls {
    pub fn new(public_url: &str) -> Self {
        // A trailing slash in the config would otherwise give `//saml/...`.
        let base = public_url.trim_end_matches('/');
        IdpUrls {
            entity_id: format!("{base}/saml/metadata"),
            sso: format!("{base}/saml/sso"),
            slo: format!("{base}/saml/slo"),
        }
    }
}

/// A fresh message/assertion ID: `_` + 128 random bits in hex. IDs must be xs:ID (an NCName, so
/// not starting with a digit) and unguessable, since SPs use InResponseTo/ID for replay checks.
pub fn new_id() -> Result<String, openssl::error::ErrorStack> {
    let mut bytes = [0u8; 16];
    openssl::rand::rand_bytes(&mut bytes)?;
    Ok(format!("_{}", hex::encode(bytes)))
}

/// xs:dateTime in UTC with a `Z`, second precision: what every SP parses.
pub(crate) fn saml_time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Parse an xs:dateTime from a message. A value without a zone is taken as UTC (SAML requires
/// UTC; a few SPs omit the `Z`).
pub(crate) fn parse_saml_time(value: &str) -> Option<DateTime<Utc>> {
    let value = value.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return Some(t.with_timezone(&Utc));
    }
    chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|naive| naive.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_from_public_url() {
        let urls = IdpUrls::new("https://sso.acme.test/");
        assert_eq!(urls.entity_id, "https://sso.acme.test/saml/metadata");
        assert_eq!(urls.sso, "https://sso.acme.test/saml/sso");
        assert_eq!(urls.slo, "https://sso.acme.test/saml/slo");
    }

    #[test]
    fn ids_are_ncnames_and_unique() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert!(a.starts_with('_') && a.len() == 33);
        assert_ne!(a, b);
    }

    #[test]
    fn times() {
        let t = parse_saml_time("2024-03-01T10:00:00Z").unwrap();
        assert_eq!(saml_time(t), "2024-03-01T10:00:00Z");
        assert_eq!(
            parse_saml_time("2024-03-01T10:00:00.123"),
            Some(t + chrono::Duration::milliseconds(123))
        );
        assert!(parse_saml_time("yesterday").is_none());
    }

    #[test]
    fn name_id_formats() {
        assert_eq!(
            NameIdFormat::from_config("email"),
            Some(NameIdFormat::EmailAddress)
        );
        assert_eq!(
            NameIdFormat::from_uri(ns::NAMEID_PERSISTENT),
            Some(NameIdFormat::Persistent)
        );
        assert_eq!(
            NameIdFormat::from_uri("urn:oasis:names:tc:SAML:2.0:nameid-format:transient"),
            None
        );
    }
}
