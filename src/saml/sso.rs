//! What an SSO answer says, decided without HTTP: the sign-in request kept while the person
//! signs in ([`PendingSso`]), and, once the pipeline has released the person, what the
//! assertion carries ([`plan_assertion`]) or the SAML status of the error Response instead.

use serde::{Deserialize, Serialize};

use super::{
    attributes_from_claims, name_id_value, AcceptedAuthnRequest, AuthnContextClass, Binding,
    NameIdFormat, ReplyTo, SamlAttribute, SamlStatus, ServiceProvider, SubStatus,
};
use crate::config::MatchOn;
use crate::identity::Claims;

/// A validated AuthnRequest (or an IdP-initiated sign-in), as stored while the person signs in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingSso {
    pub sp: String,
    pub acs_url: String,
    pub in_response_to: Option<String>,
    pub relay_state: Option<String>,
    /// NameID format URI to issue.
    pub name_id_format: String,
    pub force_authn: bool,
    pub is_passive: bool,
}

impl PendingSso {
    pub fn from_accepted(a: &AcceptedAuthnRequest) -> PendingSso {
        PendingSso {
            sp: a.sp.entity_id.clone(),
            acs_url: a.reply.destination.clone(),
            in_response_to: a.reply.in_response_to.clone(),
            relay_state: a.reply.relay_state.clone(),
            name_id_format: a.name_id_format.uri().to_string(),
            force_authn: a.request.force_authn,
            is_passive: a.request.is_passive,
        }
    }

    /// An unsolicited sign-in to `sp`, answered at `reply` (its POST ACS).
    pub fn idp_initiated(sp: &ServiceProvider, reply: ReplyTo) -> PendingSso {
        PendingSso {
            sp: sp.entity_id.clone(),
            acs_url: reply.destination,
            in_response_to: None,
            relay_state: reply.relay_state,
            name_id_format: sp.settings.name_id_format.uri().to_string(),
            force_authn: false,
            is_passive: false,
        }
    }

    /// Where the Response goes: always the HTTP-POST ACS the request was accepted for.
    pub fn reply(&self) -> ReplyTo {
        ReplyTo {
            sp_entity_id: self.sp.clone(),
            destination: self.acs_url.clone(),
            binding: Binding::Post,
            in_response_to: self.in_response_to.clone(),
            relay_state: self.relay_state.clone(),
        }
    }
}

/// An error Response instead of an assertion: its status, the message it carries, and the
/// audit outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SsoFailure {
    pub status: SamlStatus,
    pub message: &'static str,
    pub audit_outcome: &'static str,
    pub audit_reason: Option<&'static str>,
}

impl SsoFailure {
    /// `IsPassive` and nobody (fresh enough) is signed in.
    pub fn no_passive() -> SsoFailure {
        SsoFailure {
            status: SamlStatus::responder(SubStatus::NoPassive),
            message: "the user is not signed in (IsPassive)",
            audit_outcome: "no_passive",
            audit_reason: None,
        }
    }
}

/// What the assertion says about the released person.
#[derive(Debug, Clone, PartialEq)]
pub struct AssertionPlan {
    pub name_id: String,
    pub name_id_format: NameIdFormat,
    pub authn_context: AuthnContextClass,
    pub attributes: Vec<SamlAttribute>,
}

/// The assertion for `claims` (what the pipeline released) to `sp`: the NameID in the format
/// the request was accepted for, matched on the SP's identifier (else `default_match_on`), the
/// attributes, and the authentication context of how the person signed in (`amr`).
pub fn plan_assertion(
    pending: &PendingSso,
    sp: &ServiceProvider,
    claims: &Claims,
    amr: &[String],
    default_match_on: MatchOn,
    module_roles_claim: Option<&str>,
) -> Result<AssertionPlan, SsoFailure> {
    let format = NameIdFormat::from_uri(&pending.name_id_format).unwrap_or_default();
    let match_on = sp.settings.identifier.unwrap_or(default_match_on);
    let Some(name_id) = name_id_value(claims, format, match_on) else {
        return Err(SsoFailure {
            status: SamlStatus::responder(SubStatus::UnknownPrincipal),
            message: "the user has no identifier for this service provider",
            audit_outcome: "unknown_principal",
            audit_reason: Some(
                "no value for the NameID (matching on login, and the person has none)",
            ),
        });
    };
    let authn_context = if amr.iter().any(|m| m == "pwd") {
        AuthnContextClass::PasswordProtectedTransport
    } else {
        AuthnContextClass::Unspecified
    };
    Ok(AssertionPlan {
        name_id,
        name_id_format: format,
        authn_context,
        attributes: attributes_from_claims(claims, module_roles_claim),
    })
}

/// The NameID this SP would receive (the preview shows it).
pub fn name_id_for(
    sp: &ServiceProvider,
    claims: &Claims,
    default_match_on: MatchOn,
) -> Option<String> {
    name_id_value(
        claims,
        sp.settings.name_id_format,
        sp.settings.identifier.unwrap_or(default_match_on),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::{ns, testkit, TopStatus};

    fn claims(login: Option<&str>) -> Claims {
        Claims {
            subject: "u-42".into(),
            email: "alice@acme.test".into(),
            email_verified: true,
            login: login.map(str::to_string),
            given_name: Some("Alice".into()),
            family_name: None,
            employee_number: None,
            department: None,
            manager_email: None,
            job_title: None,
            roles: vec!["rh".into()],
            roles_by_module: Default::default(),
            roles_dropped: 0,
        }
    }

    fn pending(format: &str) -> PendingSso {
        PendingSso {
            sp: testkit::SP_ENTITY_ID.into(),
            acs_url: testkit::SP_ACS.into(),
            in_response_to: Some("_req1".into()),
            relay_state: Some("rs".into()),
            name_id_format: format.into(),
            force_authn: false,
            is_passive: false,
        }
    }

    #[test]
    fn the_reply_goes_by_post_to_the_accepted_acs_with_the_request_id() {
        let reply = pending(ns::NAMEID_EMAIL).reply();
        assert_eq!(reply.binding, Binding::Post);
        assert_eq!(reply.destination, testkit::SP_ACS);
        assert_eq!(reply.in_response_to.as_deref(), Some("_req1"));
        assert_eq!(reply.relay_state.as_deref(), Some("rs"));
        let sp = testkit::service_provider();
        let unasked = PendingSso::idp_initiated(&sp, reply);
        assert_eq!(unasked.in_response_to, None);
        assert_eq!(unasked.name_id_format, sp.settings.name_id_format.uri());
    }

    #[test]
    fn the_assertion_names_the_person_as_the_sp_matches_them() {
        let sp = testkit::service_provider();
        let pwd = ["pwd".to_string()];
        let plan = plan_assertion(
            &pending(ns::NAMEID_EMAIL),
            &sp,
            &claims(None),
            &pwd,
            MatchOn::Email,
            None,
        )
        .unwrap();
        assert_eq!(plan.name_id, "alice@acme.test");
        assert_eq!(plan.name_id_format, NameIdFormat::EmailAddress);
        assert_eq!(
            plan.authn_context,
            AuthnContextClass::PasswordProtectedTransport
        );
        assert_eq!(plan.attributes, attributes_from_claims(&claims(None), None));

        let login = plan_assertion(
            &pending(ns::NAMEID_UNSPECIFIED),
            &sp,
            &claims(Some("alice")),
            &["fed".to_string()],
            MatchOn::Login,
            None,
        )
        .unwrap();
        assert_eq!(login.name_id, "alice");
        assert_eq!(login.authn_context, AuthnContextClass::Unspecified);

        // Persistent: the subject, whatever the SP matches on.
        let persistent = plan_assertion(
            &pending(ns::NAMEID_PERSISTENT),
            &sp,
            &claims(None),
            &pwd,
            MatchOn::Login,
            None,
        )
        .unwrap();
        assert_eq!(persistent.name_id, "u-42");
    }

    #[test]
    fn a_person_without_the_identifier_gets_unknown_principal() {
        let sp = testkit::service_provider();
        let failure = plan_assertion(
            &pending(ns::NAMEID_EMAIL),
            &sp,
            &claims(Some("  ")),
            &[],
            MatchOn::Login,
            None,
        )
        .unwrap_err();
        assert_eq!(failure.status.top, TopStatus::Responder);
        assert_eq!(failure.status.sub, Some(SubStatus::UnknownPrincipal));
        assert_eq!(failure.audit_outcome, "unknown_principal");
        assert_eq!(
            SsoFailure::no_passive().status,
            SamlStatus::responder(SubStatus::NoPassive)
        );
        assert_eq!(name_id_for(&sp, &claims(None), MatchOn::Login), None);
        assert_eq!(
            name_id_for(&sp, &claims(None), MatchOn::Email).as_deref(),
            Some("alice@acme.test")
        );
    }
}
