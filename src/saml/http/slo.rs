//! Single logout: `GET|POST /saml/slo` (an SP's LogoutRequest, or its LogoutResponse to ours),
//! `GET /saml/slo/resume` (a POSTed LogoutRequest after the same-site bounce) and `GET
//! /saml/slo/propagate` (the next hop of a chain). Which session a request names and which SP
//! comes next are the core's ([`crate::saml::slo`]); [`SingleLogout`] is SAML's logout
//! participant, registered with login at start-up.

use axum::extract::{Query, RawQuery, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use chrono::Utc;
use tower_sessions::Session;

use super::{audit, auto_post, bad_logout, urlencode, PostMessage, ResumeQuery, SamlState};
use crate::login::page::signed_out_page;
use crate::login::{BoxFuture, LogoutParticipant, SignedIn};
use crate::saml::slo::{Finish, InboundLogout, SloChain};
use crate::saml::{
    build_logout_request, build_logout_response, encode_post, encode_redirect,
    parse_redirect_logout_request, read_logout_response, verify_post_logout_request,
    AcceptedLogoutRequest, Binding, InboundResponse, LogoutRequestParams, LogoutResponse,
    LogoutResponseParams, MessageKind, Rejected, ReplyTo, SamlStatus, SigningMaterial,
};
use crate::store::{PendingRequest, Store, StoreError};
use crate::web::{ClientIp, PageError};

/// Outgoing logout chains stored for `/saml/slo/propagate`.
const SLO_PROTOCOL: &str = "saml-slo";
/// POSTed LogoutRequests waiting for the same-site bounce to `/saml/slo/resume`.
const SLO_IN_PROTOCOL: &str = "saml-slo-in";
const EVENT: &str = "saml.slo";

/// `GET /saml/slo`: an SP's LogoutRequest, or its LogoutResponse to ours (HTTP-Redirect).
pub async fn slo_redirect(
    State(state): State<SamlState>,
    session: Session,
    ClientIp(ip): ClientIp,
    RawQuery(query): RawQuery,
) -> Response {
    let query = query.unwrap_or_default();
    let registry = state.idp.registry();
    let now = Utc::now();
    let has = |p: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(p))
    };
    if has("SAMLResponse") {
        let read = read_logout_response(
            InboundResponse::Redirect { raw_query: &query },
            &state.idp.policy,
            registry.as_ref(),
            now,
        );
        return logout_response_arrived(&state, &ip, read).await;
    }
    let intake = parse_redirect_logout_request(&query, &state.idp.policy, registry.as_ref(), now);
    match accept_logout(&state, &ip, intake).await {
        Ok(inbound) => logout_request_arrived(&state, &session, &ip, inbound).await,
        Err(response) => response,
    }
}

/// `POST /saml/slo`: the same with the HTTP-POST binding.
pub async fn slo_post(
    State(state): State<SamlState>,
    ClientIp(ip): ClientIp,
    form: Result<Form<PostMessage>, axum::extract::rejection::FormRejection>,
) -> Response {
    let Ok(Form(form)) = form else {
        return bad_logout("saml.logout_unreadable".into()).into_response();
    };
    let registry = state.idp.registry();
    let now = Utc::now();
    if let Some(response) = form.saml_response.as_deref() {
        let read = read_logout_response(
            InboundResponse::Post {
                saml_response: response,
                relay_state: form.relay_state.as_deref(),
            },
            &state.idp.policy,
            registry.as_ref(),
            now,
        );
        return logout_response_arrived(&state, &ip, read).await;
    }
    let Some(request) = form.saml_request.as_deref() else {
        return bad_logout("saml.logout_empty".into()).into_response();
    };
    let intake = verify_post_logout_request(
        request,
        form.relay_state.as_deref(),
        &state.idp.policy,
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
    match state
        .store
        .login_requests()
        .put(&id, SLO_IN_PROTOCOL, &payload, state.login.request_ttl())
        .await
    {
        Ok(()) => Redirect::to(&format!("/saml/slo/resume?req={id}")).into_response(),
        Err(e) => PageError::from(e).into_response(),
    }
}

/// `GET /saml/slo/resume?req=…`: a POSTed LogoutRequest, now with the session cookie.
pub async fn slo_resume(
    State(state): State<SamlState>,
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

// The error is the finished HTTP answer, used once at the edge; boxing it buys nothing.
#[allow(clippy::result_large_err)]
async fn accept_logout(
    state: &SamlState,
    ip: &str,
    intake: Result<AcceptedLogoutRequest, Rejected>,
) -> Result<InboundLogout, Response> {
    match intake {
        Ok(accepted) => Ok(InboundLogout::from_accepted(accepted)),
        Err(rejected) => {
            // Nothing is signed out: the message is answered (an error LogoutResponse to a
            // registered SLO endpoint, when the SP is established) or shown as refused.
            tracing::info!(error = %rejected.error, "SAML LogoutRequest refused");
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
            Err(match rejected.reply {
                Some(reply) => send_logout_response(state, &reply, rejected.error.status()),
                None => bad_logout(rejected.error.message()).into_response(),
            })
        }
    }
}

/// An SP asks to end the session: end it (if it is the one the SP names), tell the other SPs of
/// that session, then answer the SP.
async fn logout_request_arrived(
    state: &SamlState,
    session: &Session,
    ip: &str,
    accepted: InboundLogout,
) -> Response {
    let sp_id = accepted.sp.clone();
    let current = SignedIn::current(session, &state.store, i64::MAX / 2).await;
    let matches = current
        .as_ref()
        .is_some_and(|s| accepted.names_session(&s.sid, &s.saml_participants));
    if matches {
        match state.login.end_session(session, ip).await {
            Ok(Some(ended)) => {
                let subject = Some(ended.identity.subject.as_str());
                audit(state, EVENT, "success", Some(&sp_id), subject, ip, None).await;
                if let Some(chain) =
                    SloChain::after_request(&accepted, &ended.sid, &ended.saml_participants)
                {
                    return start_chain(state, chain).await;
                }
            }
            Ok(None) => {}
            Err(e) => return PageError::internal("session store", e).into_response(),
        }
    } else {
        audit(
            state,
            EVENT,
            "no_matching_session",
            Some(&sp_id),
            None,
            ip,
            None,
        )
        .await;
    }
    match accepted.reply {
        Some(reply) => send_logout_response(state, &reply.into(), SamlStatus::SUCCESS),
        None => signed_out_page(&state.templates, None),
    }
}

/// Our LogoutResponse to `reply`, per its binding: Redirect (query signed) or POST (XML signed).
fn send_logout_response(state: &SamlState, reply: &ReplyTo, status: SamlStatus) -> Response {
    let key = state.keys.signer();
    let signing = SigningMaterial::new(&key.pkey, &key.cert);
    let params = LogoutResponseParams {
        idp_entity_id: &state.idp.urls.entity_id,
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
            let finish = Finish::Page { redirect: then };
            let Some(chain) = SloChain::for_session(&ended.sid, &ended.saml_participants, finish)
            else {
                return Ok(None);
            };
            let id = crate::web::random_token(18);
            store_chain(&self.store, &id, &chain, self.request_ttl.as_secs() as i64).await?;
            Ok(Some(propagate_url(&id)))
        })
    }
}

fn propagate_url(chain_id: &str) -> String {
    format!("/saml/slo/propagate?req={}", urlencode(chain_id))
}

async fn start_chain(state: &SamlState, chain: SloChain) -> Response {
    let id = crate::web::random_token(18);
    match save_chain(state, &id, &chain).await {
        Ok(()) => Redirect::to(&propagate_url(&id)).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn save_chain(state: &SamlState, id: &str, chain: &SloChain) -> Result<(), PageError> {
    Ok(store_chain(&state.store, id, chain, state.login.request_ttl()).await?)
}

async fn store_chain(
    store: &Store,
    id: &str,
    chain: &SloChain,
    ttl_secs: i64,
) -> Result<(), StoreError> {
    let payload = serde_json::to_string(chain).map_err(|e| StoreError::Corrupt(e.to_string()))?;
    // Rewriting the row under the same id: delete first (the store inserts).
    store.login_requests().delete(id).await?;
    store
        .login_requests()
        .put(id, SLO_PROTOCOL, &payload, ttl_secs)
        .await
}

async fn load_chain(state: &SamlState, id: &str) -> Result<Option<SloChain>, PageError> {
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
    State(state): State<SamlState>,
    Query(q): Query<ResumeQuery>,
) -> Response {
    let mut chain = match load_chain(&state, &q.req).await {
        Ok(Some(c)) => c,
        // Expired or finished: the session itself is already gone.
        Ok(None) => return signed_out_page(&state.templates, None),
        Err(e) => return e.into_response(),
    };
    let registry = state.idp.registry();
    while let Some(hop) = chain.next_hop(&registry) {
        let sp = &hop.sp;
        let key = state.keys.signer();
        let signing = SigningMaterial::new(&key.pkey, &key.cert);
        let params = LogoutRequestParams {
            idp_entity_id: &state.idp.urls.entity_id,
            destination: &hop.endpoint.url,
            sp_entity_id: &sp.entity_id,
            name_id: &hop.name_id,
            name_id_format: sp.settings.name_id_format,
            session_index: Some(&chain.sid),
            now: Utc::now(),
            ttl: state.login.settings.request_ttl,
        };
        let post = Binding::from_uri(&hop.endpoint.binding) == Some(Binding::Post);
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
                &hop.endpoint.url,
                sp.display_name(),
                "SAMLRequest",
                &encode_post(&built.xml),
                Some(&q.req),
            )
        } else {
            match encode_redirect(
                &hop.endpoint.url,
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
        Finish::Page {
            redirect: Some(url),
        } => Redirect::to(&url).into_response(),
        Finish::Page { redirect: None } | Finish::Respond(None) => {
            signed_out_page(&state.templates, None)
        }
        Finish::Respond(Some(reply)) => {
            send_logout_response(&state, &reply.into(), SamlStatus::SUCCESS)
        }
    }
}

/// An SP answered our LogoutRequest: on to the next SP of the chain (named by RelayState).
async fn logout_response_arrived(
    state: &SamlState,
    ip: &str,
    read: Result<LogoutResponse, Rejected>,
) -> Response {
    let response = match read {
        Ok(r) => r,
        Err(rejected) => {
            // Without a trustworthy message there is no chain to continue (its RelayState is
            // not believed either); the logout chain stays where it was.
            tracing::warn!(error = %rejected.error, "SAML LogoutResponse refused");
            let reason = rejected.error.to_string();
            audit(state, EVENT, "refused", None, None, ip, Some(&reason)).await;
            return bad_logout(rejected.error.message()).into_response();
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
            if !chain.answered_by(&response.issuer, response.in_response_to.as_deref()) {
                tracing::warn!(sp = %response.issuer, "LogoutResponse does not answer the outstanding LogoutRequest");
            }
            Redirect::to(&propagate_url(&chain_id)).into_response()
        }
        Ok(None) => signed_out_page(&state.templates, None),
        Err(e) => e.into_response(),
    }
}
