//! The SAML IdP's HTTP front end: metadata, SSO (both bindings), IdP-initiated sign-in, single
//! logout in both directions. Thin handlers over the protocol core ([`super`]); the person is
//! signed in by `login/`, and what is released comes from [`crate::pipeline::release`], exactly
//! as for OIDC.
//!
//! Cross-site POSTs: Lucca's HTTP-POST AuthnRequest arrives cross-site, so the SameSite=Lax
//! session cookie is not sent with it. Every POSTed request is therefore validated, stored, and
//! answered with a 303 to a same-site `GET /saml/sso/resume?req=…`, where the cookie is sent and
//! the decision (existing session, sign-in, passive failure) is made.

use axum::extract::{Query, RawQuery, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use chrono::{DateTime, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tower_sessions::Session;

use super::logout::InboundResponse;
use super::{
    build_error_response, build_logout_request, build_logout_response, build_response, encode_post,
    encode_redirect, name_id_value, parse_redirect_logout_request, parse_redirect_request,
    read_logout_response, render_metadata, verify_post_logout_request, verify_post_request,
    AcceptedAuthnRequest, AuthnContextClass, Binding, IdpMetadataParams, LogoutRequestParams,
    LogoutResponseParams, MessageKind, NameIdFormat, Rejected, ReplyTo, ResponseParams, SamlStatus,
    ServiceProvider, SigningMaterial, SubStatus,
};
use crate::app::AppState;
use crate::login::page::signed_out_page;
use crate::login::{
    decide, BoxFuture, Freshness, LogoutParticipant, PendingLogin, SessionDecision, SignedIn,
};
use crate::store::{AuditEvent, PendingRequest, Store, StoreError};
use crate::web::{ClientIp, PageError};

/// Pending sign-ins stored for `/saml/sso/resume`.
pub const PROTOCOL: &str = "saml";
/// Outgoing logout chains stored for `/saml/slo/propagate`.
const SLO_PROTOCOL: &str = "saml-slo";
/// POSTed LogoutRequests waiting for the same-site bounce to `/saml/slo/resume`.
const SLO_IN_PROTOCOL: &str = "saml-slo-in";
const METADATA_CONTENT_TYPE: &str = "application/samlmetadata+xml";
const METADATA_FILENAME: &str = "attachment; filename=\"passerelle-idp-metadata.xml\"";

/// The browser routes (they need the session layer).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/saml/metadata", get(metadata))
        .route("/saml/metadata.xml", get(metadata_download))
        .route("/saml/sso", get(sso_redirect).post(sso_post))
        .route("/saml/sso/resume", get(sso_resume))
        .route("/saml/idp-init", get(idp_initiated))
        .route("/saml/slo", get(slo_redirect).post(slo_post))
        .route("/saml/slo/resume", get(slo_resume))
        .route("/saml/slo/propagate", get(slo_propagate))
}

// ---------------------------------------------------------------------------------------------
// Metadata

#[derive(Deserialize)]
pub struct MetadataQuery {
    #[serde(default)]
    download: Option<String>,
}

/// `GET /saml/metadata[?download=1]`: our IdP metadata with the current and next certificates.
pub async fn metadata(State(state): State<AppState>, Query(q): Query<MetadataQuery>) -> Response {
    let download = q
        .download
        .as_deref()
        .is_some_and(|d| !matches!(d, "" | "0" | "false"));
    metadata_response(&state, download)
}

/// `GET /saml/metadata.xml`: the same, as a file to upload.
pub async fn metadata_download(State(state): State<AppState>) -> Response {
    metadata_response(&state, true)
}

fn metadata_response(state: &AppState, download: bool) -> Response {
    let saml = &state.config.saml;
    let certificates: Vec<openssl::x509::X509> = state
        .keys
        .published()
        .iter()
        .map(|k| k.cert.clone())
        .collect();
    let signer = state.keys.signer();
    let signing = SigningMaterial::new(&signer.pkey, &signer.cert);
    let params = IdpMetadataParams {
        public_url: &state.base_url,
        want_authn_requests_signed: saml.want_authn_requests_signed,
        certificates: &certificates,
        valid_until: Utc::now() + chrono_duration(saml.metadata_valid_for),
        cache_duration: saml.metadata_cache_duration,
    };
    let xml = match render_metadata(&params, saml.sign_metadata.then_some(&signing)) {
        Ok(xml) => xml,
        Err(e) => return PageError::internal("rendering SAML metadata", e).into_response(),
    };
    let mut response = xml.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METADATA_CONTENT_TYPE),
    );
    // SPs poll it; a short public cache is harmless (it carries no secret) and spares us.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if download {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static(METADATA_FILENAME),
        );
    }
    response
}

// ---------------------------------------------------------------------------------------------
// SSO

/// A validated AuthnRequest (or an IdP-initiated sign-in), as stored while the person signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
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
    fn from_accepted(a: &AcceptedAuthnRequest) -> PendingSso {
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

    fn reply(&self) -> ReplyTo {
        ReplyTo {
            sp_entity_id: self.sp.clone(),
            destination: self.acs_url.clone(),
            binding: Binding::Post,
            in_response_to: self.in_response_to.clone(),
            relay_state: self.relay_state.clone(),
        }
    }
}

#[derive(Deserialize)]
pub struct PostMessage {
    #[serde(rename = "SAMLRequest")]
    saml_request: Option<String>,
    #[serde(rename = "SAMLResponse")]
    saml_response: Option<String>,
    #[serde(rename = "RelayState")]
    relay_state: Option<String>,
}

/// `GET /saml/sso`: HTTP-Redirect binding. The session cookie comes with a top-level GET, so the
/// decision is made here.
pub async fn sso_redirect(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
) -> Response {
    let registry = state.saml.registry();
    let intake = parse_redirect_request(
        query.as_deref().unwrap_or(""),
        &state.saml.policy,
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
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    form: Result<Form<PostMessage>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_message("The sign-in request could not be read.").into_response();
    };
    let Some(saml_request) = form.saml_request.as_deref() else {
        return bad_message("The request carries no SAMLRequest.").into_response();
    };
    let registry = state.saml.registry();
    let intake = verify_post_request(
        saml_request,
        form.relay_state.as_deref(),
        &state.saml.policy,
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

#[derive(Deserialize)]
pub struct ResumeQuery {
    req: String,
}

/// `GET /saml/sso/resume?req=…`: after the POST bounce, or back from the sign-in page.
pub async fn sso_resume(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let pending = match PendingLogin::load::<PendingSso>(&state.store, &q.req, PROTOCOL).await {
        Ok(Some(p)) => p,
        Ok(None) => {
            return PageError::bad_request(
                "This sign-in has expired",
                "The sign-in request is no longer valid (it expired or was already used). Go back to the application and sign in again.",
            )
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
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Query(q): Query<IdpInitQuery>,
) -> Response {
    let Some(sp) = q.sp.as_deref().and_then(|id| state.saml.registry().get(id)) else {
        return PageError::new(
            StatusCode::NOT_FOUND,
            "Unknown application",
            "No SAML application with this identifier is registered with Passerelle.",
        )
        .into_response();
    };
    let relay_state = q
        .relay_state
        .filter(|r| r.len() <= state.saml.policy.max_relay_state);
    let reply = match sp.idp_initiated_reply(relay_state) {
        Ok(r) => r,
        Err(e) => {
            return PageError::internal("IdP-initiated sign-in: SP has no POST ACS", e)
                .into_response()
        }
    };
    let pending = PendingSso {
        sp: sp.entity_id.clone(),
        acs_url: reply.destination,
        in_response_to: None,
        relay_state: reply.relay_state,
        name_id_format: sp.settings.name_id_format.uri().to_string(),
        force_authn: false,
        is_passive: false,
    };
    answer(&state, &session, &ip, pending, None).await
}

/// Intake outcome → a pending sign-in, or the answer to give right away (error page, or an
/// error Response posted to a registered ACS). Claims the request ID: a replay is refused.
async fn accept(
    state: &AppState,
    ip: &str,
    intake: Result<AcceptedAuthnRequest, Rejected>,
) -> Result<PendingSso, Response> {
    let accepted = match intake {
        Ok(a) => a,
        Err(rejected) => {
            tracing::info!(error = %rejected.error, "SAML AuthnRequest refused");
            let sp = rejected.reply.as_ref().map(|r| r.sp_entity_id.clone());
            audit(
                state,
                "refused",
                sp.as_deref(),
                None,
                ip,
                Some(&rejected.error.to_string()),
            )
            .await;
            return Err(match rejected.reply {
                Some(reply) => error_response(
                    state,
                    &reply,
                    rejected.error.status(),
                    Some(&rejected.error.message()),
                ),
                None => bad_message(&rejected.error.message()).into_response(),
            });
        }
    };
    // Keep the claim at least as long as a request could still pass the IssueInstant check.
    let ttl = (2 * state.saml.policy.clock_skew.as_secs() as i64)
        .max(state.config.login.request_ttl.as_secs() as i64)
        + 60;
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
                "replay",
                Some(&accepted.sp.entity_id),
                None,
                ip,
                Some("request ID already answered"),
            )
            .await;
            return Err(bad_message(
                "This sign-in request was already used. Go back to the application and sign in again.",
            )
            .into_response());
        }
        Err(e) => return Err(PageError::from(e).into_response()),
    }
    Ok(PendingSso::from_accepted(&accepted))
}

async fn save_pending(
    state: &AppState,
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
    let ttl = state.config.login.request_ttl.as_secs() as i64;
    Ok(login.save(&state.store, PROTOCOL, pending, ttl).await?)
}

/// Answer if the session satisfies the request; otherwise send the person to sign in (or
/// answer `NoPassive`). `resumed` = (stored id, when it was stored): with `ForceAuthn`, only an
/// authentication after that time counts.
async fn answer(
    state: &AppState,
    session: &Session,
    ip: &str,
    pending: PendingSso,
    resumed: Option<(String, i64)>,
) -> Response {
    let Some(sp) = state.saml.registry().get(&pending.sp) else {
        return unknown_sp().into_response();
    };
    let max_session = state.config.login.session_max_age.as_secs() as i64;
    let current = SignedIn::current(session, max_session).await;
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
            audit(state, "no_passive", Some(&sp.entity_id), None, ip, None).await;
            return error_response(
                state,
                &pending.reply(),
                SamlStatus::responder(SubStatus::NoPassive),
                Some("the user is not signed in (IsPassive)"),
            );
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
    if let Some((id, _)) = &resumed {
        // The stored request is single-use.
        if let Err(e) = state.store.login_requests().delete(id).await {
            return PageError::from(e).into_response();
        }
    }
    issue(state, session, ip, &sp, &pending, signed_in).await
}

/// Build, sign and auto-POST the Response; remember the SP for single logout.
async fn issue(
    state: &AppState,
    session: &Session,
    ip: &str,
    sp: &ServiceProvider,
    pending: &PendingSso,
    mut signed_in: SignedIn,
) -> Response {
    let reply = pending.reply();
    let released = match state
        .pipeline
        .release(
            &signed_in.identity,
            crate::pipeline::Target::ServiceProvider(&sp.entity_id),
        )
        .await
    {
        Ok(released) => released,
        Err(refusal) => {
            audit(
                state,
                "refused",
                Some(&sp.entity_id),
                Some(&signed_in.identity.subject),
                ip,
                Some(&refusal.to_string()),
            )
            .await;
            return crate::pipeline::refusal_page(&refusal).into_response();
        }
    };
    let format = NameIdFormat::from_uri(&pending.name_id_format).unwrap_or_default();
    let match_on = sp
        .settings
        .identifier
        .unwrap_or(state.config.lucca.match_on);
    let Some(name_id) = name_id_value(&released.claims, format, match_on) else {
        audit(
            state,
            "unknown_principal",
            Some(&sp.entity_id),
            Some(&released.identity.subject),
            ip,
            Some("no value for the NameID (matching on login, and the person has none)"),
        )
        .await;
        return error_response(
            state,
            &reply,
            SamlStatus::responder(SubStatus::UnknownPrincipal),
            Some("the user has no identifier for this service provider"),
        );
    };
    let attributes = super::attributes_from_claims(&released.claims);
    let authn_context = if signed_in.amr.iter().any(|m| m == "pwd") {
        AuthnContextClass::PasswordProtectedTransport
    } else {
        AuthnContextClass::Unspecified
    };
    let max_session = state.config.login.session_max_age.as_secs() as i64;
    let key = state.keys.signer();
    let signing = SigningMaterial::new(&key.pkey, &key.cert);
    let params = ResponseParams {
        idp_entity_id: &state.saml.urls.entity_id,
        reply: &reply,
        name_id: &name_id,
        name_id_format: format,
        session_index: &signed_in.sid,
        authn_instant: unix_time(signed_in.auth_time),
        session_not_on_or_after: Some(unix_time(signed_in.auth_time + max_session)),
        authn_context,
        attributes: &attributes,
        attribute_name_format: sp.settings.attribute_name_format,
        now: Utc::now(),
        assertion_ttl: state.config.saml.assertion_ttl,
        not_before_skew: state
            .saml
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
    let participant = (sp.entity_id.clone(), name_id.clone());
    if !signed_in.saml_participants.contains(&participant) {
        signed_in.saml_participants.push(participant);
        if let Err(e) = signed_in.save(session).await {
            return PageError::internal("session store", e).into_response();
        }
    }
    audit(
        state,
        "success",
        Some(&sp.entity_id),
        Some(&released.identity.subject),
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

/// A (signed) error Response posted to a registered ACS.
fn error_response(
    state: &AppState,
    reply: &ReplyTo,
    status: SamlStatus,
    message: Option<&str>,
) -> Response {
    let key = state.keys.signer();
    let signing = SigningMaterial::new(&key.pkey, &key.cert);
    match build_error_response(
        &state.saml.urls.entity_id,
        reply,
        status,
        message,
        Utc::now(),
        Some(&signing),
    ) {
        Ok(built) => {
            metrics::counter!("passerelle_saml_responses_total", "outcome" => "error").increment(1);
            let name = state
                .saml
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

/// The auto-POST page: submits itself with JavaScript, or with a button without it.
fn auto_post(
    state: &AppState,
    action: &str,
    target_name: &str,
    field: &str,
    value: &str,
    relay_state: Option<&str>,
) -> Response {
    let mut fields = vec![minijinja::context! { name => field, value => value }];
    if let Some(relay) = relay_state {
        fields.push(minijinja::context! { name => "RelayState", value => relay });
    }
    Html(state.templates.render(
        "form_post.html",
        minijinja::context! { action => action, fields => fields, target_name => target_name },
    ))
    .into_response()
}

// ---------------------------------------------------------------------------------------------
// Single logout

/// `GET /saml/slo`: an SP's LogoutRequest, or its LogoutResponse to ours (HTTP-Redirect).
pub async fn slo_redirect(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let registry = state.saml.registry();
    let now = Utc::now();
    let has = |p: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(p))
    };
    if has("SAMLResponse") {
        let read = read_logout_response(
            InboundResponse::Redirect { raw_query: &query },
            &state.saml.policy,
            registry.as_ref(),
            now,
        );
        return logout_response_arrived(&state, &ip, read).await;
    }
    let intake = parse_redirect_logout_request(&query, &state.saml.policy, registry.as_ref(), now);
    match accept_logout(&state, &ip, intake).await {
        Ok(inbound) => logout_request_arrived(&state, &session, &ip, inbound).await,
        Err(response) => response,
    }
}

/// `POST /saml/slo`: the same with the HTTP-POST binding.
pub async fn slo_post(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    form: Result<Form<PostMessage>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_logout("The sign-out message could not be read.").into_response();
    };
    let registry = state.saml.registry();
    let now = Utc::now();
    if let Some(response) = form.saml_response.as_deref() {
        let read = read_logout_response(
            InboundResponse::Post {
                saml_response: response,
                relay_state: form.relay_state.as_deref(),
            },
            &state.saml.policy,
            registry.as_ref(),
            now,
        );
        return logout_response_arrived(&state, &ip, read).await;
    }
    let Some(request) = form.saml_request.as_deref() else {
        return bad_logout("The sign-out message carries neither SAMLRequest nor SAMLResponse.")
            .into_response();
    };
    let intake = verify_post_logout_request(
        request,
        form.relay_state.as_deref(),
        &state.saml.policy,
        registry.as_ref(),
        now,
    );
    let inbound = match accept_logout(&state, &ip, intake).await {
        Ok(i) => i,
        Err(response) => return response,
    };
    // Cross-site POST: no session cookie here. Store it and continue same-site, like SSO.
    let id = crate::web::random_token(18);
    let payload = match serde_json::to_string(&inbound) {
        Ok(p) => p,
        Err(e) => return PageError::internal("logout request", e).into_response(),
    };
    let ttl = state.config.login.request_ttl.as_secs() as i64;
    match state
        .store
        .login_requests()
        .put(&id, SLO_IN_PROTOCOL, &payload, ttl)
        .await
    {
        Ok(()) => Redirect::to(&format!("/saml/slo/resume?req={id}")).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// `GET /saml/slo/resume?req=…`: a POSTed LogoutRequest, now with the session cookie.
pub async fn slo_resume(
    State(state): State<AppState>,
    session: Session,
    ClientIp(ip): ClientIp,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let stored = match state.store.login_requests().get(&q.req).await {
        Ok(Some(PendingRequest {
            protocol, payload, ..
        })) if protocol == SLO_IN_PROTOCOL => payload,
        Ok(_) => return signed_out_page(&state.templates, None),
        Err(e) => return PageError::from(e).into_response(),
    };
    let _ = state.store.login_requests().delete(&q.req).await;
    match serde_json::from_str::<InboundLogout>(&stored) {
        Ok(inbound) => logout_request_arrived(&state, &session, &ip, inbound).await,
        Err(e) => PageError::internal("logout request", e).into_response(),
    }
}

/// What we keep of an accepted LogoutRequest.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct InboundLogout {
    sp: String,
    name_id: String,
    session_indexes: Vec<String>,
    reply: Option<StoredReply>,
}

// The error is the finished HTTP answer, used once at the edge; boxing it buys nothing.
#[allow(clippy::result_large_err)]
async fn accept_logout(
    state: &AppState,
    ip: &str,
    intake: Result<super::AcceptedLogoutRequest, Rejected>,
) -> Result<InboundLogout, Response> {
    match intake {
        Ok(a) => Ok(InboundLogout {
            sp: a.sp.entity_id.clone(),
            name_id: a.request.name_id,
            session_indexes: a.request.session_indexes,
            reply: a.reply.map(StoredReply::from),
        }),
        Err(rejected) => {
            // Nothing is signed out: the message is answered (an error LogoutResponse to a
            // registered SLO endpoint, when the SP is established) or shown as refused.
            tracing::info!(error = %rejected.error, "SAML LogoutRequest refused");
            let sp = rejected.reply.as_ref().map(|r| r.sp_entity_id.clone());
            audit_slo(
                state,
                "refused",
                sp.as_deref(),
                None,
                ip,
                Some(&rejected.error.to_string()),
            )
            .await;
            Err(match rejected.reply {
                Some(reply) => send_logout_response(state, &reply, rejected.error.status()),
                None => bad_logout(&rejected.error.message()).into_response(),
            })
        }
    }
}

/// An SP asks to end the session: end it (if it is the one the SP names), tell the other SPs of
/// that session, then answer the SP.
async fn logout_request_arrived(
    state: &AppState,
    session: &Session,
    ip: &str,
    accepted: InboundLogout,
) -> Response {
    let sp_id = accepted.sp.clone();
    let current = SignedIn::current(session, i64::MAX / 2).await;
    // Only the session the SP names is ended: its SessionIndex is our sid, or (without one) the
    // NameID we gave this SP in this session.
    let matches = current.as_ref().is_some_and(|s| {
        accepted.session_indexes.contains(&s.sid)
            || (accepted.session_indexes.is_empty()
                && s.saml_participants
                    .iter()
                    .any(|(sp, name_id)| sp == &sp_id && name_id == &accepted.name_id))
    });
    if matches {
        match state.login.end_session(session, ip).await {
            Ok(Some(ended)) => {
                let others: Vec<(String, String)> = ended
                    .saml_participants
                    .iter()
                    .filter(|(sp, _)| sp != &sp_id)
                    .cloned()
                    .collect();
                audit_slo(
                    state,
                    "success",
                    Some(&sp_id),
                    Some(&ended.identity.subject),
                    ip,
                    None,
                )
                .await;
                if !others.is_empty() {
                    let chain = SloChain {
                        sid: ended.sid.clone(),
                        remaining: others,
                        outstanding: None,
                        finish: Finish::Respond(accepted.reply.clone()),
                    };
                    return start_chain(state, chain).await;
                }
            }
            Ok(None) => {}
            Err(e) => return PageError::internal("session store", e).into_response(),
        }
    } else {
        audit_slo(state, "no_matching_session", Some(&sp_id), None, ip, None).await;
    }
    match accepted.reply {
        Some(reply) => send_logout_response(state, &reply.into(), SamlStatus::SUCCESS),
        None => signed_out_page(&state.templates, None),
    }
}

/// Our LogoutResponse to `reply`, per its binding: Redirect (query signed) or POST (XML signed).
fn send_logout_response(state: &AppState, reply: &ReplyTo, status: SamlStatus) -> Response {
    let key = state.keys.signer();
    let signing = SigningMaterial::new(&key.pkey, &key.cert);
    let params = LogoutResponseParams {
        idp_entity_id: &state.saml.urls.entity_id,
        reply,
        status,
        now: Utc::now(),
    };
    let result = match reply.binding {
        Binding::Redirect => build_logout_response(&params, None).and_then(|m| {
            encode_redirect(
                &reply.destination,
                MessageKind::Response,
                &m.xml,
                reply.relay_state.as_deref(),
                Some(&signing),
            )
            .map(|url| Redirect::to(&url).into_response())
        }),
        Binding::Post => build_logout_response(&params, Some(&signing)).map(|m| {
            auto_post(
                state,
                &reply.destination,
                "the application",
                "SAMLResponse",
                &encode_post(&m.xml),
                reply.relay_state.as_deref(),
            )
        }),
    };
    result.unwrap_or_else(|e| PageError::internal("building a LogoutResponse", e).into_response())
}

/// A logout in progress across the SPs of one ended session, stored between hops.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct SloChain {
    /// The ended session's sid (our SessionIndex).
    sid: String,
    /// (SP entity id, NameID) still to visit.
    remaining: Vec<(String, String)>,
    /// (SP, our LogoutRequest ID) we are waiting on.
    outstanding: Option<(String, String)>,
    finish: Finish,
}

/// Where the person lands when every SP has been visited.
#[derive(Debug, Clone, Serialize, Deserialize)]
enum Finish {
    /// The signed-out page, or a redirect (OIDC `post_logout_redirect_uri`).
    Page { redirect: Option<String> },
    /// Answer the SP whose LogoutRequest started it (if it has an SLO endpoint).
    Respond(Option<StoredReply>),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredReply {
    sp: String,
    destination: String,
    post: bool,
    in_response_to: Option<String>,
    relay_state: Option<String>,
}

impl From<ReplyTo> for StoredReply {
    fn from(r: ReplyTo) -> Self {
        StoredReply {
            sp: r.sp_entity_id,
            destination: r.destination,
            post: r.binding == Binding::Post,
            in_response_to: r.in_response_to,
            relay_state: r.relay_state,
        }
    }
}

impl From<StoredReply> for ReplyTo {
    fn from(r: StoredReply) -> Self {
        ReplyTo {
            sp_entity_id: r.sp,
            destination: r.destination,
            binding: if r.post {
                Binding::Post
            } else {
                Binding::Redirect
            },
            in_response_to: r.in_response_to,
            relay_state: r.relay_state,
        }
    }
}

/// SAML's part when login signs a session out (`POST /logout`, OIDC logout): a LogoutRequest
/// to each SP the session signed in to, one after the other, then on to where login asked.
pub struct SingleLogout {
    store: Store,
    request_ttl: std::time::Duration,
}

impl SingleLogout {
    pub fn new(store: Store, request_ttl: std::time::Duration) -> Self {
        SingleLogout { store, request_ttl }
    }
}

impl LogoutParticipant for SingleLogout {
    fn signed_out<'a>(
        &'a self,
        ended: &'a SignedIn,
        then: Option<String>,
    ) -> BoxFuture<'a, Result<Option<String>, StoreError>> {
        Box::pin(async move {
            if ended.saml_participants.is_empty() {
                return Ok(None);
            }
            let chain = SloChain {
                sid: ended.sid.clone(),
                remaining: ended.saml_participants.clone(),
                outstanding: None,
                finish: Finish::Page { redirect: then },
            };
            let id = crate::web::random_token(18);
            store_chain(&self.store, &id, &chain, self.request_ttl).await?;
            Ok(Some(propagate_url(&id)))
        })
    }
}

fn propagate_url(chain_id: &str) -> String {
    format!("/saml/slo/propagate?req={}", urlencode(chain_id))
}

fn finish_page(state: &AppState, redirect: Option<String>) -> Response {
    match redirect {
        Some(url) => Redirect::to(&url).into_response(),
        None => signed_out_page(&state.templates, None),
    }
}

async fn start_chain(state: &AppState, chain: SloChain) -> Response {
    let id = crate::web::random_token(18);
    match save_chain(state, &id, &chain).await {
        Ok(()) => Redirect::to(&propagate_url(&id)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn save_chain(state: &AppState, id: &str, chain: &SloChain) -> Result<(), PageError> {
    Ok(store_chain(&state.store, id, chain, state.config.login.request_ttl).await?)
}

async fn store_chain(
    store: &Store,
    id: &str,
    chain: &SloChain,
    ttl: std::time::Duration,
) -> Result<(), StoreError> {
    let payload = serde_json::to_string(chain).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // Rewriting the row under the same id: delete first (the store inserts).
    store.login_requests().delete(id).await?;
    store
        .login_requests()
        .put(id, SLO_PROTOCOL, &payload, ttl.as_secs() as i64)
        .await?;
    Ok(())
}

async fn load_chain(state: &AppState, id: &str) -> Result<Option<SloChain>, PageError> {
    match state.store.login_requests().get(id).await? {
        Some(PendingRequest {
            protocol, payload, ..
        }) if protocol == SLO_PROTOCOL => serde_json::from_str(&payload)
            .map(Some)
            .map_err(|e| PageError::internal("logout chain", e)),
        _ => Ok(None),
    }
}

/// `GET /saml/slo/propagate?req=…`: visit the next SP of the chain, or finish.
pub async fn slo_propagate(
    State(state): State<AppState>,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let mut chain = match load_chain(&state, &q.req).await {
        Ok(Some(c)) => c,
        // Expired or finished: the session itself is already gone.
        Ok(None) => return signed_out_page(&state.templates, None),
        Err(e) => return e.into_response(),
    };
    let registry = state.saml.registry();
    while let Some((sp_id, name_id)) = chain.remaining.first().cloned() {
        chain.remaining.remove(0);
        // An SP that is gone or has no SLO endpoint is skipped: nothing to tell it.
        let Some(sp) = registry.get(&sp_id) else {
            continue;
        };
        let Some(endpoint) = sp.slo_endpoint().cloned() else {
            continue;
        };
        let key = state.keys.signer();
        let signing = SigningMaterial::new(&key.pkey, &key.cert);
        let params = LogoutRequestParams {
            idp_entity_id: &state.saml.urls.entity_id,
            destination: &endpoint.url,
            sp_entity_id: &sp.entity_id,
            name_id: &name_id,
            name_id_format: sp.settings.name_id_format,
            session_index: Some(&chain.sid),
            now: Utc::now(),
            ttl: state.config.login.request_ttl,
        };
        let post = Binding::from_uri(&endpoint.binding) == Some(Binding::Post);
        let built = match build_logout_request(&params, post.then_some(&signing)) {
            Ok(b) => b,
            Err(e) => {
                tracing::error!(error = %e, sp = %sp.entity_id, "building a LogoutRequest failed; skipping this SP");
                continue;
            }
        };
        chain.outstanding = Some((sp.entity_id.clone(), built.id.clone()));
        if let Err(e) = save_chain(&state, &q.req, &chain).await {
            return e.into_response();
        }
        tracing::info!(sp = %sp.entity_id, "sending a LogoutRequest");
        // RelayState carries the chain id, so the SP's LogoutResponse brings us back here.
        return if post {
            auto_post(
                &state,
                &endpoint.url,
                sp.display_name(),
                "SAMLRequest",
                &encode_post(&built.xml),
                Some(&q.req),
            )
        } else {
            match encode_redirect(
                &endpoint.url,
                MessageKind::Request,
                &built.xml,
                Some(&q.req),
                Some(&signing),
            ) {
                Ok(url) => Redirect::to(&url).into_response(),
                Err(e) => PageError::internal("encoding a LogoutRequest", e).into_response(),
            }
        };
    }
    let _ = state.store.login_requests().delete(&q.req).await;
    match chain.finish {
        Finish::Page { redirect } => finish_page(&state, redirect),
        Finish::Respond(Some(reply)) => {
            send_logout_response(&state, &reply.into(), SamlStatus::SUCCESS)
        }
        Finish::Respond(None) => signed_out_page(&state.templates, None),
    }
}

/// An SP answered our LogoutRequest: on to the next SP of the chain (named by RelayState).
async fn logout_response_arrived(
    state: &AppState,
    ip: &str,
    read: Result<super::LogoutResponse, Rejected>,
) -> Response {
    let response = match read {
        Ok(r) => r,
        Err(rejected) => {
            // Without a trustworthy message there is no chain to continue (its RelayState is
            // not believed either); the logout chain stays where it was.
            tracing::warn!(error = %rejected.error, "SAML LogoutResponse refused");
            audit_slo(
                state,
                "refused",
                None,
                None,
                ip,
                Some(&rejected.error.to_string()),
            )
            .await;
            return bad_logout(&rejected.error.message()).into_response();
        }
    };
    if !response.is_success() {
        tracing::warn!(sp = %response.issuer, status = %response.status, "an SP did not complete single logout");
    }
    let Some(chain_id) = response.relay_state.clone() else {
        return signed_out_page(&state.templates, None);
    };
    match load_chain(state, &chain_id).await {
        Ok(Some(chain)) => {
            let expected = chain.outstanding.as_ref().is_some_and(|(sp, id)| {
                sp == &response.issuer && response.in_response_to.as_deref() == Some(id)
            });
            if !expected {
                tracing::warn!(sp = %response.issuer, "LogoutResponse does not answer the outstanding LogoutRequest");
            }
            Redirect::to(&format!("/saml/slo/propagate?req={}", urlencode(&chain_id)))
                .into_response()
        }
        Ok(None) => signed_out_page(&state.templates, None),
        Err(e) => e.into_response(),
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn bad_message(message: &str) -> PageError {
    PageError::bad_request("This sign-in request is not valid", message)
}

fn bad_logout(message: &str) -> PageError {
    PageError::bad_request(
        "This sign-out request is not valid",
        format!("{message} Nobody was signed out."),
    )
}

fn unknown_sp() -> PageError {
    PageError::bad_request(
        "Unknown application",
        "The application that sent you here is no longer registered with Passerelle.",
    )
}

fn urlencode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn unix_time(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(secs, 0).single().unwrap_or_else(Utc::now)
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(7))
}

async fn audit(
    state: &AppState,
    outcome: &str,
    sp: Option<&str>,
    subject: Option<&str>,
    ip: &str,
    reason: Option<&str>,
) {
    let detail = reason.map(|r| serde_json::json!({ "reason": r }));
    if let Err(e) = state
        .store
        .audit()
        .record(AuditEvent {
            event: "saml.sso",
            outcome,
            subject,
            client: sp,
            ip: Some(ip),
            detail,
        })
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
}

async fn audit_slo(
    state: &AppState,
    outcome: &str,
    sp: Option<&str>,
    subject: Option<&str>,
    ip: &str,
    reason: Option<&str>,
) {
    if let Err(e) = state
        .store
        .audit()
        .record(AuditEvent {
            event: "saml.slo",
            outcome,
            subject,
            client: sp,
            ip: Some(ip),
            detail: reason.map(|r| serde_json::json!({ "reason": r })),
        })
        .await
    {
        tracing::warn!(error = %e, "audit write failed");
    }
}

/// For tests and the preview: the NameID this SP would receive.
pub fn name_id_for(
    sp: &ServiceProvider,
    claims: &crate::identity::Claims,
    default_match_on: crate::config::MatchOn,
) -> Option<String> {
    name_id_value(
        claims,
        sp.settings.name_id_format,
        sp.settings.identifier.unwrap_or(default_match_on),
    )
}
