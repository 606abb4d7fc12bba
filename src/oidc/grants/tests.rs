//! The grants without HTTP: a real SQLite store in a temp dir, the pipeline over a small live
//! table, and a signer that writes the ID token's claims as plain JSON so a test can read them.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;

use super::authorization_code::{exchange, issue_code, CodeExchange};
use super::refresh_token::{refresh, RefreshRequest};
use super::GrantContext;
use crate::config::{
    ClaimsConfig, ClientConfig, DirectoryUser, OidcConfig, RefreshPolicy, RoleMappingRow,
};
use crate::keys::KeyError;
use crate::login::Live;
use crate::login::{Directory, SignedIn};
use crate::oidc::mint::{Signer, TokenResponse};
use crate::oidc::{revocation, userinfo, Client, OidcError, Provider, ValidRequest};
use crate::pipeline::{Pipeline, Target};
use crate::store::{now, token_hash, Store};

const REDIRECT: &str = "https://acme.ilucca.test/cb";
/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

/// The ID token is the claims as JSON: what would be signed, readable by the test.
struct PlainSigner;

impl Signer for PlainSigner {
    fn sign_jwt(&self, claims: &Value) -> Result<String, KeyError> {
        Ok(claims.to_string())
    }
}

fn live(role: &str) -> Live {
    let users = [DirectoryUser {
        email: "alice@acme.test".into(),
        groups: vec!["corp-hr".into()],
        ..Default::default()
    }];
    Live {
        directory: Arc::new(Directory::new(&users).unwrap()),
        role_mapping: vec![RoleMappingRow {
            group: "corp-hr".into(),
            role: role.into(),
            module: None,
            ..Default::default()
        }],
        claims: ClaimsConfig::default(),
    }
}

struct World {
    _dir: tempfile::TempDir,
    store: Store,
    provider: Provider,
    live: Arc<ArcSwap<Live>>,
    pipeline: Pipeline,
}

impl World {
    async fn new(grace: Duration) -> World {
        World::with(grace, OidcConfig::default().refresh_token_max_lifetime).await
    }

    async fn with(grace: Duration, max_lifetime: Duration) -> World {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).await.unwrap();
        let client = |id: &str, refresh_tokens| ClientConfig {
            client_id: id.into(),
            redirect_uris: vec![REDIRECT.into()],
            refresh_tokens,
            ..Default::default()
        };
        let settings = OidcConfig {
            refresh_grace: grace,
            refresh_token_max_lifetime: max_lifetime,
            clients: vec![
                client("lucca", RefreshPolicy::Always),
                client("other", RefreshPolicy::Always),
                client("web", RefreshPolicy::Never),
            ],
            ..Default::default()
        };
        let live = Arc::new(ArcSwap::from_pointee(live("administrateur_rh")));
        World {
            _dir: dir,
            store,
            provider: Provider::new(&settings, "https://idp.acme.test"),
            pipeline: Pipeline::new(live.clone(), None),
            live,
        }
    }

    fn client(&self, id: &str) -> &Client {
        self.provider.clients.get(id).unwrap()
    }

    /// The grants' context `offset` seconds from now.
    fn at(&self, offset: i64) -> GrantContext<'_> {
        GrantContext {
            store: &self.store,
            signer: &PlainSigner,
            provider: &self.provider,
            pipeline: &self.pipeline,
            ip: "192.0.2.1",
            now: now() + offset,
        }
    }

    /// Alice signs in for `client` (with PKCE when `pkce`); the code that ends her sign-in.
    async fn sign_in(&self, client: &str, scopes: &[&str], pkce: bool) -> String {
        let alice = self
            .live
            .load()
            .directory
            .by_name("alice@acme.test")
            .unwrap();
        let released = self
            .pipeline
            .release(
                &alice,
                Target::Client(client),
                crate::pipeline::Access::everyone(client),
            )
            .await
            .unwrap();
        let signed_in = SignedIn {
            identity: alice,
            auth_time: now() - 5,
            amr: vec!["pwd".into()],
            sid: "sid-1".into(),
            saml_participants: Vec::new(),
            signed_in_ms: 0,
            touched_at: 0,
        };
        let request = ValidRequest {
            client_id: client.into(),
            redirect_uri: REDIRECT.into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            state: Some("st".into()),
            nonce: Some("n-0S6_WzA2Mj".into()),
            code_challenge: pkce.then(|| CHALLENGE.to_string()),
            max_age: None,
            prompt_none: false,
            form_post: false,
            login_hint: None,
            domain_hint: None,
        };
        issue_code(
            &self.store,
            &self.provider,
            &request,
            &signed_in,
            released,
            now(),
        )
        .await
        .unwrap()
    }

    async fn exchange(&self, client: &str, code: &str) -> Result<TokenResponse, OidcError> {
        exchange(
            &self.at(0),
            self.client(client),
            CodeExchange {
                code: Some(code),
                redirect_uri: Some(REDIRECT),
                code_verifier: Some(VERIFIER),
            },
        )
        .await
    }

    async fn refresh_at(
        &self,
        offset: i64,
        token: &str,
        scope: Option<&str>,
    ) -> Result<TokenResponse, OidcError> {
        refresh(
            &self.at(offset),
            self.client("lucca"),
            RefreshRequest {
                refresh_token: Some(token),
                scope,
            },
        )
        .await
    }

    async fn access_works(&self, access_token: &str) -> bool {
        self.store
            .oauth()
            .grant_for_access_token(&token_hash(access_token))
            .await
            .unwrap()
            .is_some()
    }
}

const ALL: [&str; 4] = ["openid", "profile", "email", "groups"];

fn id_token(response: &TokenResponse) -> Value {
    serde_json::from_str(&response.id_token).unwrap()
}

fn grant_error(result: Result<TokenResponse, OidcError>) -> String {
    match result {
        Err(OidcError::InvalidGrant(description)) => description,
        other => panic!("expected invalid_grant, got {other:?}"),
    }
}

#[tokio::test]
async fn a_code_is_exchanged_once_for_the_claims_released_at_sign_in() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    // A reload between the sign-in and the exchange changes nothing the client receives.
    w.live.store(Arc::new(live("rh")));
    let tokens = w.exchange("lucca", &code).await.unwrap();
    let claims = id_token(&tokens);
    assert_eq!(claims["groups"], serde_json::json!(["administrateur_rh"]));
    assert_eq!(claims["sub"], "alice@acme.test");
    assert_eq!(claims["aud"], "lucca");
    assert_eq!(claims["iss"], "https://idp.acme.test");
    assert_eq!(claims["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(claims["sid"], "sid-1");
    assert_eq!(claims["amr"], serde_json::json!(["pwd"]));
    assert_eq!(
        claims["at_hash"],
        crate::oidc::mint::at_hash(&tokens.access_token)
    );
    assert_eq!(tokens.scope, "openid profile email groups");
    assert!(tokens.refresh_token.is_some(), "refresh_tokens = always");
    assert!(w.access_works(&tokens.access_token).await);

    // userinfo answers the same stored claims, under the running (different) table.
    let info = userinfo::userinfo(
        &w.store,
        &w.provider,
        &w.pipeline,
        Some(&tokens.access_token),
    )
    .await
    .unwrap();
    assert_eq!(info["groups"], serde_json::json!(["administrateur_rh"]));
    assert_eq!(info["sub"], "alice@acme.test");
    assert_eq!(info["email"], "alice@acme.test");
}

#[tokio::test]
async fn a_replayed_code_revokes_what_its_first_exchange_issued() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let first = w.exchange("lucca", &code).await.unwrap();
    let description = grant_error(w.exchange("lucca", &code).await);
    assert!(description.contains("already used"), "{description}");
    assert!(!w.access_works(&first.access_token).await);
    let refreshed = w
        .refresh_at(0, first.refresh_token.as_deref().unwrap(), None)
        .await;
    assert!(grant_error(refreshed).contains("invalid, expired or revoked"));
}

#[tokio::test]
async fn pkce_is_checked_and_a_failed_check_spends_the_code() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let client = w.client("lucca");
    let cx = w.at(0);
    let attempt = |verifier| {
        exchange(
            &cx,
            client,
            CodeExchange {
                code: Some(&code),
                redirect_uri: Some(REDIRECT),
                code_verifier: verifier,
            },
        )
    };
    let wrong = grant_error(attempt(Some("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXx")).await);
    assert_eq!(wrong, "code_verifier does not match the code_challenge");
    // The code is single-use whatever happened: the right verifier now comes too late.
    assert!(grant_error(attempt(Some(VERIFIER)).await).contains("already used"));

    let code = w.sign_in("lucca", &ALL, true).await;
    let missing = exchange(
        &w.at(0),
        client,
        CodeExchange {
            code: Some(&code),
            redirect_uri: Some(REDIRECT),
            code_verifier: None,
        },
    )
    .await;
    assert_eq!(grant_error(missing), "code_verifier is required (PKCE)");

    // No challenge at the authorization request: a verifier at the exchange is a downgrade.
    let code = w.sign_in("lucca", &ALL, false).await;
    let downgrade = grant_error(w.exchange("lucca", &code).await);
    assert!(downgrade.contains("had no code_challenge"), "{downgrade}");
}

#[tokio::test]
async fn a_code_is_bound_to_its_client_and_redirect_uri_and_expires() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    assert_eq!(
        grant_error(w.exchange("other", &code).await),
        "the authorization code was issued to another client"
    );

    let code = w.sign_in("lucca", &ALL, true).await;
    let elsewhere = exchange(
        &w.at(0),
        w.client("lucca"),
        CodeExchange {
            code: Some(&code),
            redirect_uri: Some("https://acme.ilucca.test/cb/"),
            code_verifier: Some(VERIFIER),
        },
    )
    .await;
    assert_eq!(
        grant_error(elsewhere),
        "redirect_uri does not match the authorization request"
    );

    let code = w.sign_in("lucca", &ALL, true).await;
    let ttl = w.provider.settings.code_ttl.as_secs() as i64;
    let late = exchange(
        &w.at(ttl + 1),
        w.client("lucca"),
        CodeExchange {
            code: Some(&code),
            redirect_uri: Some(REDIRECT),
            code_verifier: Some(VERIFIER),
        },
    )
    .await;
    assert_eq!(grant_error(late), "the authorization code has expired");

    assert_eq!(
        grant_error(w.exchange("lucca", "never-issued").await),
        "the authorization code is invalid or has expired"
    );
    let empty = exchange(&w.at(0), w.client("lucca"), CodeExchange::default()).await;
    assert!(
        matches!(empty, Err(OidcError::InvalidRequest(_))),
        "{empty:?}"
    );
}

#[tokio::test]
async fn the_refresh_policy_decides_whether_a_refresh_token_is_issued() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("web", &ALL, true).await;
    assert!(w
        .exchange("web", &code)
        .await
        .unwrap()
        .refresh_token
        .is_none());
}

#[tokio::test]
async fn refresh_rotates_and_keeps_the_claims_of_the_sign_in() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let first = w.exchange("lucca", &code).await.unwrap();
    w.live.store(Arc::new(live("rh")));
    let r1 = first.refresh_token.clone().unwrap();
    let second = w.refresh_at(0, &r1, None).await.unwrap();
    let r2 = second.refresh_token.clone().unwrap();
    assert_ne!(r1, r2, "rotated");
    assert_ne!(first.access_token, second.access_token);
    let claims = id_token(&second);
    assert_eq!(claims["groups"], serde_json::json!(["administrateur_rh"]));
    assert!(claims.get("nonce").is_none(), "no nonce on a refresh");
    assert_eq!(claims["auth_time"], id_token(&first)["auth_time"]);
    assert_eq!(second.scope, first.scope);
    // The new token rotates in turn.
    let third = w.refresh_at(0, &r2, None).await.unwrap();
    assert!(w.access_works(&third.access_token).await);
}

#[tokio::test]
async fn a_retry_within_the_grace_window_gets_the_same_answer() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let r1 = w
        .exchange("lucca", &code)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let answer = w.refresh_at(0, &r1, None).await.unwrap();
    let retry = w.refresh_at(3, &r1, None).await.unwrap();
    assert_eq!(retry, answer);
    // The family is intact: the rotated-to token still works.
    let next = w
        .refresh_at(3, answer.refresh_token.as_deref().unwrap(), None)
        .await;
    assert!(next.is_ok(), "{next:?}");
}

#[tokio::test]
async fn reuse_after_the_grace_window_revokes_the_whole_family() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let first = w.exchange("lucca", &code).await.unwrap();
    let r1 = first.refresh_token.unwrap();
    let second = w.refresh_at(0, &r1, None).await.unwrap();
    let reuse = grant_error(w.refresh_at(11, &r1, None).await);
    assert!(reuse.contains("already used"), "{reuse}");
    assert!(!w.access_works(&second.access_token).await);
    let r2 = second.refresh_token.unwrap();
    assert!(grant_error(w.refresh_at(11, &r2, None).await).contains("invalid, expired or revoked"));
}

#[tokio::test]
async fn without_a_grace_window_any_reuse_revokes() {
    let w = World::new(Duration::ZERO).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let r1 = w
        .exchange("lucca", &code)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let second = w.refresh_at(0, &r1, None).await.unwrap();
    assert!(grant_error(w.refresh_at(0, &r1, None).await).contains("already used"));
    assert!(!w.access_works(&second.access_token).await);
}

#[tokio::test]
async fn refresh_may_narrow_the_scopes_never_widen_them() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &["openid", "email"], true).await;
    let r1 = w
        .exchange("lucca", &code)
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    let wider = w.refresh_at(0, &r1, Some("openid groups")).await;
    assert!(
        matches!(&wider, Err(OidcError::InvalidScope(d)) if d == "scope `groups` was not granted originally"),
        "{wider:?}"
    );
    // A refused request does not spend the token.
    let narrower = w.refresh_at(0, &r1, Some("openid")).await.unwrap();
    assert_eq!(narrower.scope, "openid");
    assert!(id_token(&narrower).get("email").is_none());
}

#[tokio::test]
async fn refresh_is_refused_to_another_client_after_expiry_and_for_a_removed_account() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let first = w.exchange("lucca", &code).await.unwrap();
    let r1 = first.refresh_token.unwrap();
    let stolen = refresh(
        &w.at(0),
        w.client("other"),
        RefreshRequest {
            refresh_token: Some(&r1),
            scope: None,
        },
    )
    .await;
    assert_eq!(
        grant_error(stolen),
        "the refresh token was issued to another client"
    );
    let ttl = w.provider.settings.refresh_token_ttl.as_secs() as i64;
    assert_eq!(
        grant_error(w.refresh_at(ttl + 1, &r1, None).await),
        "the refresh token has expired"
    );

    // Alice leaves the directory: her next refresh is refused and the grant revoked.
    let mut gone = live("administrateur_rh");
    gone.directory = Arc::new(Directory::new(&[]).unwrap());
    w.live.store(Arc::new(gone));
    let refused = grant_error(w.refresh_at(0, &r1, None).await);
    assert!(refused.starts_with("refresh refused: "), "{refused}");
    assert!(!w.access_works(&first.access_token).await);
    let info = userinfo::userinfo(
        &w.store,
        &w.provider,
        &w.pipeline,
        Some(&first.access_token),
    )
    .await;
    assert!(matches!(info, Err(OidcError::InvalidToken(_))), "{info:?}");
}

#[tokio::test]
async fn userinfo_needs_a_live_token() {
    let w = World::new(Duration::from_secs(10)).await;
    let none = userinfo::userinfo(&w.store, &w.provider, &w.pipeline, None).await;
    assert!(matches!(none, Err(OidcError::TokenRequired)), "{none:?}");
    let unknown = userinfo::userinfo(&w.store, &w.provider, &w.pipeline, Some("nope")).await;
    assert!(
        matches!(&unknown, Err(OidcError::InvalidToken(d)) if d.contains("invalid, expired or revoked")),
        "{unknown:?}"
    );
}

#[tokio::test]
async fn revocation_ends_the_grant_of_a_refresh_token_and_ignores_other_clients_tokens() {
    let w = World::new(Duration::from_secs(10)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let tokens = w.exchange("lucca", &code).await.unwrap();
    let refresh_token = tokens.refresh_token.as_deref().unwrap();

    // Another client's revocation is answered the same and changes nothing.
    revocation::revoke(&w.at(0), w.client("other"), Some(refresh_token), None)
        .await
        .unwrap();
    assert!(w.access_works(&tokens.access_token).await);

    // An access token alone, by hint.
    let code = w.sign_in("lucca", &ALL, true).await;
    let other = w.exchange("lucca", &code).await.unwrap();
    revocation::revoke(
        &w.at(0),
        w.client("lucca"),
        Some(&other.access_token),
        Some("access_token"),
    )
    .await
    .unwrap();
    assert!(!w.access_works(&other.access_token).await);
    assert!(w
        .refresh_at(0, other.refresh_token.as_deref().unwrap(), None)
        .await
        .is_ok());

    revocation::revoke(&w.at(0), w.client("lucca"), Some(refresh_token), None)
        .await
        .unwrap();
    assert!(!w.access_works(&tokens.access_token).await);
    assert!(grant_error(w.refresh_at(0, refresh_token, None).await)
        .contains("invalid, expired or revoked"));
    let missing = revocation::revoke(&w.at(0), w.client("lucca"), None, None).await;
    assert!(matches!(missing, Err(OidcError::InvalidRequest(_))));
}

#[tokio::test]
async fn a_refresh_family_ends_at_its_max_lifetime_from_the_sign_in_however_often_it_rotates() {
    // A day of lifetime; each refresh token lives 30 days; the sign-in was 5 s ago.
    let w = World::with(Duration::from_secs(10), Duration::from_secs(24 * 3600)).await;
    let code = w.sign_in("lucca", &ALL, true).await;
    let first = w.exchange("lucca", &code).await.unwrap();
    let auth_time = id_token(&first)["auth_time"].as_i64().unwrap();
    let end = auth_time + 24 * 3600;
    let mut token = first.refresh_token.unwrap();
    // Rotating every 6 hours keeps the family alive until its end, never past it.
    for hours in [6, 12, 18] {
        let next = w.refresh_at(hours * 3600, &token, None).await.unwrap();
        assert_eq!(id_token(&next)["auth_time"].as_i64().unwrap(), auth_time);
        let stored = w
            .store
            .oauth()
            .lookup_refresh(&token_hash(next.refresh_token.as_deref().unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(
            stored.expires_at, end,
            "a rotation never extends the family"
        );
        token = next.refresh_token.unwrap();
    }
    let offset_at_end = end - now();
    let refused = grant_error(w.refresh_at(offset_at_end + 1, &token, None).await);
    assert_eq!(
        refused,
        "the sign-in behind this refresh token is too old: sign in again"
    );
    // Just before the end it still works (a fresh family is unaffected by another's end).
    let code = w.sign_in("lucca", &ALL, true).await;
    let second = w.exchange("lucca", &code).await.unwrap();
    assert!(w
        .refresh_at(20 * 3600, second.refresh_token.as_deref().unwrap(), None)
        .await
        .is_ok());
}

#[tokio::test]
async fn a_code_from_a_session_revoked_after_its_sign_in_starts_no_grant() {
    let w = World::new(Duration::from_secs(10)).await;
    // Alice signed in 5 s ago; her access is revoked now, before the client exchanges the code.
    let code = w.sign_in("lucca", &ALL, true).await;
    crate::login::revoke_sessions(&w.store, "alice@acme.test")
        .await
        .unwrap();
    assert_eq!(
        grant_error(w.exchange("lucca", &code).await),
        "the sign-in behind this authorization code has been revoked"
    );
    assert!(w
        .store
        .oauth()
        .grants_of_subject("alice@acme.test")
        .await
        .unwrap()
        .is_empty());
}
