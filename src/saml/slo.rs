//! Single logout across the SPs of one session, decided without HTTP: which session an SP's
//! LogoutRequest names ([`InboundLogout::names_session`]), and the chain of LogoutRequests we
//! send to the session's other SPs, one hop at a time ([`SloChain`]), stored between hops.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::sp::{Endpoint, SpRegistry};
use super::{AcceptedLogoutRequest, Binding, ReplyTo, ServiceProvider};

/// What we keep of an accepted LogoutRequest (stored across the same-site bounce of a POST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundLogout {
    pub sp: String,
    pub name_id: String,
    pub session_indexes: Vec<String>,
    pub reply: Option<StoredReply>,
}

impl InboundLogout {
    pub fn from_accepted(a: AcceptedLogoutRequest) -> InboundLogout {
        InboundLogout {
            sp: a.sp.entity_id.clone(),
            name_id: a.request.name_id,
            session_indexes: a.request.session_indexes,
            reply: a.reply.map(StoredReply::from),
        }
    }

    /// Does the request name this session (`sid`, and the (SP, NameID) pairs it signed in to)?
    /// Its SessionIndex is our sid, or, without one, the NameID we gave this SP in it.
    pub fn names_session(&self, sid: &str, participants: &[(String, String)]) -> bool {
        self.session_indexes.iter().any(|s| s == sid)
            || (self.session_indexes.is_empty()
                && participants
                    .iter()
                    .any(|(sp, name_id)| sp == &self.sp && name_id == &self.name_id))
    }
}

/// A logout in progress across the SPs of one ended session, stored between hops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SloChain {
    /// The ended session's sid (our SessionIndex).
    pub sid: String,
    /// (SP entity id, NameID) still to visit.
    pub remaining: Vec<(String, String)>,
    /// (SP, our LogoutRequest ID) we are waiting on.
    pub outstanding: Option<(String, String)>,
    pub finish: Finish,
}

/// Where the person lands when every SP has been visited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Finish {
    /// The signed-out page, or a redirect (OIDC `post_logout_redirect_uri`).
    Page { redirect: Option<String> },
    /// Answer the SP whose LogoutRequest started it (if it has an SLO endpoint).
    Respond(Option<StoredReply>),
}

/// The next SP to tell: its registration, the SLO endpoint to use, and the NameID it knows.
#[derive(Debug, Clone)]
pub struct Hop {
    pub sp: Arc<ServiceProvider>,
    pub endpoint: Endpoint,
    pub name_id: String,
}

impl SloChain {
    /// Sign-out started here (login's sign-out): every SP of the session, then `finish`.
    pub fn for_session(
        sid: &str,
        participants: &[(String, String)],
        finish: Finish,
    ) -> Option<SloChain> {
        (!participants.is_empty()).then(|| SloChain {
            sid: sid.to_string(),
            remaining: participants.to_vec(),
            outstanding: None,
            finish,
        })
    }

    /// Sign-out asked by `request`: the session's other SPs, then the answer to the asking SP.
    /// `None` when there is nobody else to tell.
    pub fn after_request(
        request: &InboundLogout,
        sid: &str,
        participants: &[(String, String)],
    ) -> Option<SloChain> {
        let others: Vec<(String, String)> = participants
            .iter()
            .filter(|(sp, _)| sp != &request.sp)
            .cloned()
            .collect();
        SloChain::for_session(sid, &others, Finish::Respond(request.reply.clone()))
    }

    /// Take the next SP that can be told: one that is gone from the registry or has no SLO
    /// endpoint is skipped (there is nothing to tell it). `None` when the chain is done.
    pub fn next_hop(&mut self, registry: &SpRegistry) -> Option<Hop> {
        while !self.remaining.is_empty() {
            let (sp_id, name_id) = self.remaining.remove(0);
            let Some(sp) = registry.get(&sp_id) else {
                continue;
            };
            let Some(endpoint) = sp.slo_endpoint().cloned() else {
                continue;
            };
            return Some(Hop {
                sp,
                endpoint,
                name_id,
            });
        }
        None
    }

    /// Is this LogoutResponse (from `issuer`, answering `in_response_to`) the one we wait on?
    pub fn answered_by(&self, issuer: &str, in_response_to: Option<&str>) -> bool {
        self.outstanding
            .as_ref()
            .is_some_and(|(sp, id)| sp == issuer && in_response_to == Some(id.as_str()))
    }
}

/// A [`ReplyTo`] as stored (JSON) between hops.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredReply {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::testkit;

    fn pair(sp: &str, name_id: &str) -> (String, String) {
        (sp.to_string(), name_id.to_string())
    }

    fn request(session_indexes: &[&str]) -> InboundLogout {
        InboundLogout {
            sp: testkit::SP_ENTITY_ID.into(),
            name_id: "alice@acme.test".into(),
            session_indexes: session_indexes.iter().map(|s| s.to_string()).collect(),
            reply: Some(StoredReply::from(ReplyTo {
                sp_entity_id: testkit::SP_ENTITY_ID.into(),
                destination: testkit::SP_SLO.into(),
                binding: Binding::Redirect,
                in_response_to: Some("_lr1".into()),
                relay_state: None,
            })),
        }
    }

    #[test]
    fn a_logout_request_names_a_session_by_index_or_by_the_name_id_given_there() {
        let participants = [pair(testkit::SP_ENTITY_ID, "alice@acme.test")];
        assert!(request(&["sid-1"]).names_session("sid-1", &[]));
        assert!(!request(&["sid-2"]).names_session("sid-1", &participants));
        assert!(request(&[]).names_session("sid-1", &participants));
        let other = [pair(testkit::SP_ENTITY_ID, "bob@acme.test")];
        assert!(!request(&[]).names_session("sid-1", &other));
        let elsewhere = [pair("https://other.test", "alice@acme.test")];
        assert!(!request(&[]).names_session("sid-1", &elsewhere));
    }

    #[test]
    fn the_chain_visits_each_other_sp_that_can_be_told_then_answers_the_asker() {
        let mut no_slo = (*testkit::service_provider()).clone();
        no_slo.entity_id = "https://no-slo.test".into();
        no_slo.slo.clear();
        let registry = SpRegistry::new([(*testkit::service_provider()).clone(), no_slo]).unwrap();
        let participants = [
            pair("https://asker.test", "a"),
            pair("https://gone.test", "g"),
            pair("https://no-slo.test", "n"),
            pair(testkit::SP_ENTITY_ID, "alice@acme.test"),
        ];
        let mut asker = request(&["sid-1"]);
        asker.sp = "https://asker.test".into();
        let mut chain = SloChain::after_request(&asker, "sid-1", &participants).unwrap();
        assert_eq!(chain.remaining.len(), 3, "the asker is not told again");
        assert_eq!(chain.finish, Finish::Respond(asker.reply.clone()));

        let hop = chain.next_hop(&registry).unwrap();
        assert_eq!(hop.sp.entity_id, testkit::SP_ENTITY_ID);
        assert_eq!(hop.endpoint.url, testkit::SP_SLO);
        assert_eq!(hop.name_id, "alice@acme.test");
        assert!(
            chain.remaining.is_empty(),
            "the gone and SLO-less SPs were skipped"
        );
        assert!(chain.next_hop(&registry).is_none());

        chain.outstanding = Some((hop.sp.entity_id.clone(), "_ours".into()));
        assert!(chain.answered_by(testkit::SP_ENTITY_ID, Some("_ours")));
        assert!(!chain.answered_by(testkit::SP_ENTITY_ID, Some("_other")));
        assert!(!chain.answered_by("https://asker.test", Some("_ours")));
        assert!(!chain.answered_by(testkit::SP_ENTITY_ID, None));

        // Stored between hops as JSON, and read back the same.
        let text = serde_json::to_string(&chain).unwrap();
        assert_eq!(serde_json::from_str::<SloChain>(&text).unwrap(), chain);
    }

    #[test]
    fn nobody_else_to_tell_means_no_chain() {
        let participants = [pair(testkit::SP_ENTITY_ID, "alice@acme.test")];
        assert!(SloChain::after_request(&request(&["sid-1"]), "sid-1", &participants).is_none());
        assert!(SloChain::for_session("sid-1", &[], Finish::Page { redirect: None }).is_none());
        let chain =
            SloChain::for_session("sid-1", &participants, Finish::Page { redirect: None }).unwrap();
        assert_eq!(chain.remaining, participants);
    }

    #[test]
    fn a_stored_reply_keeps_its_binding() {
        for binding in [Binding::Post, Binding::Redirect] {
            let reply = ReplyTo {
                sp_entity_id: "sp".into(),
                destination: "https://sp.test/slo".into(),
                binding,
                in_response_to: Some("_x".into()),
                relay_state: Some("r".into()),
            };
            assert_eq!(ReplyTo::from(StoredReply::from(reply.clone())), reply);
        }
    }
}
