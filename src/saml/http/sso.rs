//! SSO: `GET|POST /saml/sso` (HTTP-Redirect and HTTP-POST AuthnRequests), `GET
//! /saml/sso/resume` (after the POST bounce or the sign-in page) and `GET /saml/idp-init`. Intake
//! is the core's; the session decision is login's; the assertion is planned by
//! [`plan_assertion`] from what the pipeline released, then signed and auto-POSTed to the ACS.

use axum::extract::{Query, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use serde::Deserialize;
use tower_sessions::Session;

use super::{
    audit, auto_post, bad_message, unix_time, unknown_sp, PostMessage, ResumeQuery, SamlState,
};
use crate::login::{decide, Freshness, PendingLogin, SessionDecision, SignedIn};
use crate::pipeline::{refusal_page, waiting_page, Access, Refusal, Target, PREPARING_POLL};
use crate::saml::sso::{plan_assertion, PendingSso, SsoFailure};
use crate::saml::{
    build_error_response, build_response, parse_redirect_request, verify_post_request,
    AcceptedAuthnRequest, Rejected, ReplyTo, ResponseParams, SamlStatus, ServiceProvider,
    SigningMaterial,
};
use crate::web::{ClientIp, PageError};

/// Pending sign-ins stored for `/saml/sso/resume`.
pub const PROTOCOL: &str = "saml";
const EVENT: &str = "saml.sso";

/// `GET /saml/sso`: HTTP-Redirect binding. The session cookie comes with a top-level GET, so the
/// decision is made here.
pub async fn sso_redirect(
    State(state): State<SamlState>,
    session: Session,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
) -> Response {
    let registry = state.idp.registry();
    let intake = parse_redirect_request(
        query.as_deref().unwrap_or(""),
        &state.idp.policy,
        registry.as_ref(),
        Utc::now(),
    );
    let pending = match accept(&state, &ip, intake).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    answer(&state, &session, &ip, pending, None).await
}

/// `POST /saml/sso`: HTTP-POST binding. Validated and stored, then a same-site redirect to
/// `/saml/sso/resume` (the Lax session cookie was not sent with this cross-site POST).
pub async fn sso_post(
    State(state): State<SamlState>,
    ClientIp(ip): ClientIp,
    form: Result<Form<PostMessage>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_message("saml.unreadable".into()).into_response();
    };
    let Some(saml_request) = form.saml_request.as_deref() else {
        return bad_message("saml.no_request".into()).into_response();
    };
    let registry = state.idp.registry();
    let intake = verify_post_request(
        saml_request,
        form.relay_state.as_deref(),
        &state.idp.policy,
        registry.as_ref(),
        Utc::now(),
    );
    let pending = match accept(&state, &ip, intake).await {
        Ok(p) => p,
        Err(response) => return response,
    };
    let Some(sp) = registry.get(&pending.sp) else {
        return unknown_sp().into_response();
    };
    match save_pending(&state, &sp, &pending).await {
        Ok(id) => Redirect::to(&format!("/saml/sso/resume?req={id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

/// `GET /saml/sso/resume?req=…`: after the POST bounce, or back from the sign-in page.
pub async fn sso_resume(
    State(state): State<SamlState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let pending = match state
        .login
        .load_pending::<PendingSso>(&q.req, PROTOCOL)
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => {
            return PageError::bad_request("error.expired.title", "error.expired.message")
                .into_response()
        }
        Err(e) => return PageError::from(e).into_response(),
    };
    answer(
        &state,
        &session,
        &ip,
        pending.request,
        Some((q.req, pending.created_at)),
    )
    .await
}

#[derive(Deserialize)]
pub struct IdpInitQuery {
    sp: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// `GET /saml/idp-init?sp=ENTITY_ID[&RelayState=…]`: sign in to a registered SP unasked.
pub async fn idp_initiated(
    State(state): State<SamlState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Query(q): Query<IdpInitQuery>,
) -> Response {
    let Some(sp) = q.sp.as_deref().and_then(|id| state.idp.registry().get(id)) else {
        return PageError::new(
            StatusCode::NOT_FOUND,
            "saml.unknown_sp.title",
            "saml.unknown_sp.by_id",
        )
        .into_response();
    };
    let relay_state = q
        .relay_state
        .filter(|r| r.len() <= state.idp.policy.max_relay_state);
    let reply = match sp.idp_initiated_reply(relay_state) {
        Ok(r) => r,
        Err(e) => {
            return PageError::internal("IdP-initiated sign-in: SP has no POST ACS", e)
                .into_response()
        }
    };
    let pending = PendingSso::idp_initiated(&sp, reply);
    answer(&state, &session, &ip, pending, None).await
}

/// Intake outcome → a pending sign-in, or the answer to give right away (error page, or an
/// error Response posted to a registered ACS). Claims the request ID: a replay is refused.
async fn accept(
    state: &SamlState,
    ip: &str,
    intake: Result<AcceptedAuthnRequest, Rejected>,
) -> Result<PendingSso, Response> {
    let accepted = match intake {
        Ok(a) => a,
        Err(rejected) => {
            tracing::info!(error = %rejected.error, "SAML AuthnRequest refused");
            let sp = rejected.reply.as_ref().map(|r| r.sp_entity_id.clone());
            let reason = rejected.error.to_string();
            audit(
                state,
                EVENT,
                "refused",
                sp.as_deref(),
                None,
                ip,
                Some(&reason),
            )
            .await;
            return Err(match rejected.reply {
                Some(reply) => error_response(
                    state,
                    &reply,
                    rejected.error.status(),
                    Some(&rejected.error.status_message()),
                ),
                None => bad_message(rejected.error.message()).into_response(),
            });
        }
    };
    // Keep the claim at least as long as a request could still pass the IssueInstant check.
    let ttl =
        (2 * state.idp.policy.clock_skew.as_secs() as i64).max(state.login.request_ttl()) + 60;
    match state
        .store
        .saml_request_ids()
        .claim(&accepted.sp.entity_id, &accepted.request.id, ttl)
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            audit(
                state,
                EVENT,
                "replay",
                Some(&accepted.sp.entity_id),
                None,
                ip,
                Some("request ID already answered"),
            )
            .await;
            return Err(bad_message("saml.already_used".into()).into_response());
        }
        Err(e) => return Err(PageError::from(e).into_response()),
    }
    Ok(PendingSso::from_accepted(&accepted))
}

async fn save_pending(
    state: &SamlState,
    sp: &ServiceProvider,
    pending: &PendingSso,
) -> Result<String, PageError> {
    let login = PendingLogin {
        client_name: sp.display_name().to_string(),
        resume_path: "/saml/sso/resume".into(),
        force: pending.force_authn,
        login_hint: None,
        domain_hint: None,
    };
    Ok(state.login.save_pending(&login, PROTOCOL, pending).await?)
}

/// Answer if the session satisfies the request; otherwise send the person to sign in (or
/// answer `NoPassive`). `resumed` = (stored id, when it was stored): with `ForceAuthn`, only an
/// authentication after that time counts.
async fn answer(
    state: &SamlState,
    session: &Session,
    ip: &str,
    pending: PendingSso,
    resumed: Option<(String, i64)>,
) -> Response {
    let Some(sp) = state.idp.registry().get(&pending.sp) else {
        return unknown_sp().into_response();
    };
    let current = state.login.current(session).await;
    let need = Freshness {
        force: pending.force_authn,
        max_age: None,
        passive: pending.is_passive,
        request_created_at: resumed.as_ref().map(|(_, created_at)| *created_at),
    };
    let signed_in = match decide(current.as_ref(), &need, crate::store::now()) {
        SessionDecision::Reuse(signed_in) => signed_in,
        SessionDecision::Passive => {
            if let Some((id, _)) = &resumed {
                let _ = state.store.login_requests().delete(id).await;
            }
            return failure(
                state,
                ip,
                &sp,
                None,
                &pending.reply(),
                SsoFailure::no_passive(),
            )
            .await;
        }
        SessionDecision::SignIn => {
            if let Some((id, _)) = resumed {
                return Redirect::to(&format!("/login?req={id}")).into_response();
            }
            return match save_pending(state, &sp, &pending).await {
                Ok(id) => Redirect::to(&format!("/login?req={id}")).into_response(),
                Err(e) => e.into_response(),
            };
        }
    };
    issue(state, session, ip, &sp, &pending, resumed, signed_in).await
}

/// Build, sign and auto-POST the Response; remember the SP for single logout.
async fn issue(
    state: &SamlState,
    session: &Session,
    ip: &str,
    sp: &ServiceProvider,
    pending: &PendingSso,
    resumed: Option<(String, i64)>,
    mut signed_in: SignedIn,
) -> Response {
    let reply = pending.reply();
    // IsPassive allows no page: such a request waits for Lucca as long as it takes.
    let wait = (!pending.is_passive).then_some(PREPARING_POLL);
    let outcome = state
        .pipeline
        .release_within(
            &signed_in.identity,
            Target::ServiceProvider(&sp.entity_id),
            Access {
                name: sp.display_name(),
                allowed_groups: &sp.settings.allowed_groups,
            },
            wait,
        )
        .await;
    if let Err(Refusal::StillPreparing) = outcome {
        // The stored request stays for the waiting page's next poll.
        let id = match resumed {
            Some((id, _)) => id,
            None => match save_pending(state, sp, pending).await {
                Ok(id) => id,
                Err(e) => return e.into_response(),
            },
        };
        return waiting_page(
            &state.templates,
            sp.display_name(),
            &format!("/saml/sso/resume?req={id}"),
        );
    }
    if let Some((id, _)) = &resumed {
        // The stored request is single-use.
        if let Err(e) = state.store.login_requests().delete(id).await {
            return PageError::from(e).into_response();
        }
    }
    let released = match outcome {
        Ok(released) => released,
        Err(refusal) => {
            let reason = refusal.to_string();
            let subject = Some(signed_in.identity.subject.as_str());
            audit(
                state,
                EVENT,
                "refused",
                Some(&sp.entity_id),
                subject,
                ip,
                Some(&reason),
            )
            .await;
            return refusal_page(&refusal).into_response();
        }
    };
    let plan = match plan_assertion(
        pending,
        sp,
        &released.claims,
        &signed_in.amr,
        state.match_on,
        state.pipeline.module_roles_claim().as_deref(),
    ) {
        Ok(plan) => plan,
        Err(failure_) => {
            let subject = Some(released.identity.subject.as_str());
            return failure(state, ip, sp, subject, &reply, failure_).await;
        }
    };
    let settings = state.idp.settings();
    let key = state.keys.signer();
    let signing = SigningMaterial::new(&key.pkey, &key.cert);
    let params = ResponseParams {
        idp_entity_id: &state.idp.urls.entity_id,
        reply: &reply,
        name_id: &plan.name_id,
        name_id_format: plan.name_id_format,
        session_index: &signed_in.sid,
        authn_instant: unix_time(signed_in.auth_time),
        session_not_on_or_after: Some(unix_time(
            signed_in.auth_time + state.login.session_max_age(),
        )),
        authn_context: plan.authn_context,
        attributes: &plan.attributes,
        attribute_name_format: sp.settings.attribute_name_format,
        now: Utc::now(),
        assertion_ttl: settings.assertion_ttl,
        not_before_skew: state
            .idp
            .policy
            .clock_skew
            .min(std::time::Duration::from_secs(60)),
        sign_response: sp.settings.sign_response,
        sign_assertion: sp.settings.sign_assertion,
        encrypt_for: if sp.settings.encrypt_assertion {
            sp.encryption_cert.as_ref()
        } else {
            None
        },
    };
    let built = match build_response(&params, &signing) {
        Ok(b) => b,
        Err(e) => return PageError::internal("building the SAML Response", e).into_response(),
    };
    let participant = (sp.entity_id.clone(), plan.name_id.clone());
    if !signed_in.saml_participants.contains(&participant) {
        signed_in.saml_participants.push(participant);
        if let Err(e) = signed_in.save(session).await {
            return PageError::internal("session store", e).into_response();
        }
    }
    let subject = Some(released.identity.subject.as_str());
    audit(
        state,
        EVENT,
        "success",
        Some(&sp.entity_id),
        subject,
        ip,
        None,
    )
    .await;
    metrics::counter!("passerelle_saml_responses_total", "outcome" => "success").increment(1);
    auto_post(
        state,
        &reply.destination,
        sp.display_name(),
        "SAMLResponse",
        &built.post_form_value(),
        reply.relay_state.as_deref(),
    )
}

/// An SSO failure after intake: audited, then told to the SP as an error Response.
async fn failure(
    state: &SamlState,
    ip: &str,
    sp: &ServiceProvider,
    subject: Option<&str>,
    reply: &ReplyTo,
    failure: SsoFailure,
) -> Response {
    audit(
        state,
        EVENT,
        failure.audit_outcome,
        Some(&sp.entity_id),
        subject,
        ip,
        failure.audit_reason,
    )
    .await;
    error_response(state, reply, failure.status, Some(failure.message))
}

/// A (signed) error Response posted to a registered ACS.
fn error_response(
    state: &SamlState,
    reply: &ReplyTo,
    status: SamlStatus,
    message: Option<&str>,
) -> Response {
    let key = state.keys.signer();
    let signing = SigningMaterial::new(&key.pkey, &key.cert);
    match build_error_response(
        &state.idp.urls.entity_id,
        reply,
        status,
        message,
        Utc::now(),
        Some(&signing),
    ) {
        Ok(built) => {
            metrics::counter!("passerelle_saml_responses_total", "outcome" => "error").increment(1);
            let name = state
                .idp
                .registry()
                .get(&reply.sp_entity_id)
                .map(|sp| sp.display_name().to_string())
                .unwrap_or_else(|| "the application".into());
            auto_post(
                state,
                &reply.destination,
                &name,
                "SAMLResponse",
                &built.post_form_value(),
                reply.relay_state.as_deref(),
            )
        }
        Err(e) => PageError::internal("building a SAML error Response", e).into_response(),
    }
}
