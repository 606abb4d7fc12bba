//! The one session decision both front ends make before answering a request: is the person's
//! session good enough to answer now ([`SessionDecision::Reuse`]), must they sign in
//! ([`SessionDecision::SignIn`]), or is signing in not allowed for this request
//! ([`SessionDecision::Passive`])? Pure: the session, what the request demands, and the clock.

use super::SignedIn;

/// What a request demands of the session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Freshness {
    /// Authenticate again even with a session (`prompt=login`, `prompt=select_account`,
    /// `max_age=0`, `ForceAuthn`): only an authentication after the request was made counts.
    pub force: bool,
    /// OIDC `max_age`: the last authentication is at most this many seconds old. `0` is `force`.
    pub max_age: Option<i64>,
    /// No interaction allowed (`prompt=none`, `IsPassive`): without a usable session the
    /// request fails instead of showing the sign-in page.
    pub passive: bool,
    /// When the request was stored (unix seconds), for a request resumed after the sign-in page:
    /// an authentication since then satisfies `force`. `None` for a request seen for the first
    /// time, which `force` sends to the sign-in page whatever the session.
    pub request_created_at: Option<i64>,
}

// Made once per request and consumed at once: boxing the session buys nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum SessionDecision {
    /// Answer with this session.
    Reuse(SignedIn),
    /// Send the person to the sign-in page.
    SignIn,
    /// The request allows no sign-in page: answer "not signed in" (`login_required`,
    /// `NoPassive`).
    Passive,
}

/// `current` is the session as read (already refused past `[login] session_max_age`).
pub fn decide(current: Option<&SignedIn>, need: &Freshness, now: i64) -> SessionDecision {
    let fresh_enough = |s: &SignedIn| {
        let forced = need.force || need.max_age == Some(0);
        let after_request = need
            .request_created_at
            .is_some_and(|created_at| s.auth_time >= created_at);
        let young_enough = match need.max_age {
            Some(max) if max > 0 => now - s.auth_time <= max,
            _ => true,
        };
        (!forced || after_request) && young_enough
    };
    match current.filter(|s| fresh_enough(s)) {
        Some(s) => SessionDecision::Reuse(s.clone()),
        None if need.passive => SessionDecision::Passive,
        None => SessionDecision::SignIn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::{Identity, Source};

    const NOW: i64 = 1_700_000_000;

    fn session(auth_time: i64) -> SignedIn {
        SignedIn {
            identity: Identity {
                subject: "alice".into(),
                email: "alice@acme.test".into(),
                email_verified: true,
                login: None,
                given_name: None,
                family_name: None,
                employee_number: None,
                department: None,
                manager_email: None,
                job_title: None,
                groups: Vec::new(),
                source: Source::Local,
            },
            auth_time,
            amr: vec!["pwd".into()],
            sid: "sid".into(),
            saml_participants: Vec::new(),
            signed_in_ms: 0,
            touched_at: 0,
        }
    }

    #[derive(Debug, PartialEq)]
    enum Expect {
        Reuse,
        SignIn,
        Passive,
    }

    #[test]
    fn the_decision_table() {
        use Expect::*;
        let need = |force, max_age, passive, created: Option<i64>| Freshness {
            force,
            max_age,
            passive,
            request_created_at: created,
        };
        let hour_ago = Some(NOW - 3600);
        let cases: &[(&str, Option<i64>, Freshness, Expect)] = &[
            ("no session", None, need(false, None, false, None), SignIn),
            (
                "no session, passive",
                None,
                need(false, None, true, None),
                Passive,
            ),
            (
                "any session will do",
                Some(NOW - 86_000),
                need(false, None, false, None),
                Reuse,
            ),
            (
                "passive with a session",
                Some(NOW - 10),
                need(false, None, true, None),
                Reuse,
            ),
            (
                "max_age met",
                Some(NOW - 100),
                need(false, Some(300), false, None),
                Reuse,
            ),
            (
                "max_age met at the limit",
                Some(NOW - 300),
                need(false, Some(300), false, None),
                Reuse,
            ),
            (
                "max_age exceeded",
                Some(NOW - 301),
                need(false, Some(300), false, None),
                SignIn,
            ),
            (
                "max_age exceeded, passive",
                Some(NOW - 301),
                need(false, Some(300), true, None),
                Passive,
            ),
            (
                "force, first visit",
                Some(NOW),
                need(true, None, false, None),
                SignIn,
            ),
            (
                "force, passive",
                Some(NOW),
                need(true, None, true, None),
                Passive,
            ),
            (
                "force, signed in before the request",
                Some(NOW - 7200),
                need(true, None, false, hour_ago),
                SignIn,
            ),
            (
                "force, signed in after the request",
                Some(NOW - 60),
                need(true, None, false, hour_ago),
                Reuse,
            ),
            (
                "force, signed in as the request was stored",
                hour_ago,
                need(true, None, false, hour_ago),
                Reuse,
            ),
            (
                "max_age=0 is force",
                Some(NOW),
                need(false, Some(0), false, None),
                SignIn,
            ),
            (
                "max_age=0 resumed after sign-in",
                Some(NOW - 60),
                need(false, Some(0), false, hour_ago),
                Reuse,
            ),
            (
                "max_age=0 resumed, old session",
                Some(NOW - 7200),
                need(false, Some(0), false, hour_ago),
                SignIn,
            ),
            (
                "force and max_age both hold",
                Some(NOW - 60),
                need(true, Some(120), false, hour_ago),
                Reuse,
            ),
            (
                "force met, max_age not",
                Some(NOW - 600),
                need(true, Some(120), false, hour_ago),
                SignIn,
            ),
        ];
        for (name, auth_time, freshness, expected) in cases {
            let current = auth_time.map(session);
            let got = match decide(current.as_ref(), freshness, NOW) {
                SessionDecision::Reuse(s) => {
                    assert_eq!(Some(s.auth_time), *auth_time, "{name}");
                    Reuse
                }
                SessionDecision::SignIn => SignIn,
                SessionDecision::Passive => Passive,
            };
            assert_eq!(&got, expected, "{name}");
        }
    }
}
