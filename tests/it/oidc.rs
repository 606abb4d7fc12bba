//! The OpenID Connect provider driven by the `openidconnect` crate as relying party, plus the
//! refusals, checked over real HTTP.

use base64::Engine;
use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, RefreshToken, Scope, TokenResponse,
};
use serde_json::Value;

use crate::common::*;

type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

async fn relying_party(
    server: &TestServer,
    client_id: &str,
    secret: Option<&str>,
    redirect: &str,
) -> Rp {
    let meta = CoreProviderMetadata::discover_async(
        IssuerUrl::new(server.base.clone()).unwrap(),
        &oidc_http(),
    )
    .await
    .expect("discovery");
    CoreClient::from_provider_metadata(
        meta,
        ClientId::new(client_id.into()),
        secret.map(|s| ClientSecret::new(s.into())),
    )
    .set_redirect_uri(RedirectUrl::new(redirect.into()).unwrap())
}

pub(crate) fn pkce_pair() -> (String, String) {
    let verifier = passerelle::web::random_token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(openssl::sha::sha256(verifier.as_bytes()));
    (verifier, challenge)
}

/// A hand-built authorization URL, for requests the RP library would refuse to send.
pub(crate) fn authorize_url(server: &TestServer, params: &[(&str, &str)]) -> String {
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url.to_string()
}

/// Lucca's silent authorization (`prompt=none`, PKCE): a code if the browser has a session,
/// `login_required` otherwise.
pub(crate) fn silent_authorize_url(server: &TestServer) -> String {
    let (_, challenge) = pkce_pair();
    authorize_url(
        server,
        &[
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", "openid"),
            ("prompt", "none"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    )
}

pub(crate) async fn token_request(
    server: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    assert_eq!(
        r.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store")
    );
    (status, r.json().await.unwrap_or(Value::Null))
}

/// Sign Alice in for the Lucca client with PKCE; return (code, verifier).
pub(crate) async fn lucca_code(
    server: &TestServer,
    browser: &Browser,
    scope: &str,
) -> (String, String) {
    let (verifier, challenge) = pkce_pair();
    let url = authorize_url(
        server,
        &[
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", scope),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let redirect = browser
        .authorize(&server.base, &url, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert!(redirect.starts_with(LUCCA_CALLBACK), "{redirect}");
    (query(&redirect)["code"].clone(), verifier)
}

pub(crate) async fn exchange(server: &TestServer, code: &str, verifier: &str) -> (u16, Value) {
    token_request(
        server,
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", LUCCA_CALLBACK),
            ("code_verifier", verifier),
        ],
        Some(("lucca", LUCCA_SECRET)),
    )
    .await
}

pub(crate) async fn userinfo(server: &TestServer, access_token: &str) -> (u16, Value) {
    let r = reqwest::Client::new()
        .get(server.url("/oidc/userinfo"))
        .bearer_auth(access_token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn confidential_client_code_flow_with_pkce_id_token_and_userinfo() {
    let server = start(|_| {}).await;
    let rp = relying_party(&server, "lucca", Some(LUCCA_SECRET), LUCCA_CALLBACK).await;
    let http = oidc_http();
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (url, csrf, nonce) = rp
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .add_scope(Scope::new("groups".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = Browser::new();
    let redirect = browser
        .authorize(
            &server.base,
            url.as_str(),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await;
    let q = query(&redirect);
    assert_eq!(&q["state"], csrf.secret());
    assert_eq!(q["iss"], server.base, "RFC 9207 iss response parameter");

    let token = rp
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = token.id_token().expect("id token");
    let verifier = rp.id_token_verifier();
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("ID token verifies against the JWKS");
    let expected_hash = AccessTokenHash::from_token(
        token.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert_eq!(claims.subject().as_str(), "alice@acme.test");
    assert!(
        token.refresh_token().is_none(),
        "no offline_access, no refresh token"
    );

    let payload = jwt_payload(&id_token.to_string());
    assert_eq!(payload["email"], "alice@acme.test");
    assert_eq!(payload["email_verified"], true);
    assert_eq!(payload["given_name"], "Alice");
    assert_eq!(payload["family_name"], "Martin");
    assert_eq!(payload["employee_number"], "00042");
    assert_eq!(payload["department"], "Engineering");
    assert_eq!(payload["manager_email"], "bob@acme.test");
    assert_eq!(
        payload["groups"],
        serde_json::json!(["validateur_n1", "collaborateur"]),
        "mapped roles, table order, unmapped dropped"
    );
    assert_eq!(payload["amr"], serde_json::json!(["pwd"]));
    assert!(payload["auth_time"].as_i64().is_some());
    assert!(payload["sid"].as_str().is_some());
    let header: Value = {
        let h = id_token.to_string().split('.').next().unwrap().to_string();
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(h)
                .unwrap(),
        )
        .unwrap()
    };
    assert_eq!(header["alg"], "RS256");
    assert!(header["kid"].as_str().is_some_and(|k| !k.is_empty()));

    let (status, info) = userinfo(&server, token.access_token().secret()).await;
    assert_eq!(status, 200);
    for claim in [
        "sub",
        "email",
        "email_verified",
        "given_name",
        "family_name",
        "employee_number",
        "department",
        "manager_email",
        "groups",
    ] {
        assert_eq!(
            info[claim], payload[claim],
            "userinfo {claim} equals the ID token's"
        );
    }
}

#[tokio::test]
async fn public_mobile_client_with_custom_scheme_and_loopback_redirects() {
    let server = start(|_| {}).await;
    let http = oidc_http();
    for redirect in [MOBILE_CALLBACK, "http://127.0.0.1:53682/cb"] {
        let rp = relying_party(&server, "mobile", None, redirect).await;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, _csrf, nonce) = rp
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                CsrfToken::new_random,
                Nonce::new_random,
            )
            .add_scope(Scope::new("email".into()))
            .set_pkce_challenge(challenge)
            .url();
        let browser = Browser::new();
        let back = browser
            .authorize(
                &server.base,
                url.as_str(),
                "alice@acme.test",
                ALICE_PASSWORD,
            )
            .await;
        assert!(back.starts_with(redirect), "{back}");
        let token = rp
            .exchange_code(AuthorizationCode::new(query(&back)["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("public client exchange");
        token
            .id_token()
            .unwrap()
            .claims(&rp.id_token_verifier(), &nonce)
            .expect("valid ID token");
        let refresh = token
            .refresh_token()
            .expect("mobile clients always get a refresh token");
        let refreshed = rp
            .exchange_refresh_token(refresh)
            .unwrap()
            .request_async(&http)
            .await
            .expect("public refresh");
        assert_ne!(
            refreshed.refresh_token().unwrap().secret(),
            refresh.secret(),
            "rotated"
        );
    }
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let server = start(|c| c.oidc.code_ttl = std::time::Duration::from_secs(1)).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid").await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, body) = exchange(&server, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("expired"));
}

/// The same code exchanged twice at once over HTTP, several times over: each time exactly one
/// exchange gets tokens, the other is refused as a replay, and the replay revokes what the
/// first was issued (its access and refresh tokens stop working); both are in the audit log.
#[tokio::test]
async fn a_code_exchanged_twice_at_once_issues_once_and_the_replay_revokes_it() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    for round in 0..4 {
        let (code, verifier) = lucca_code(&server, &browser, "openid offline_access").await;
        let (x, y) = tokio::join!(
            exchange(&server, &code, &verifier),
            exchange(&server, &code, &verifier)
        );
        let issued: Vec<&Value> = [&x, &y]
            .into_iter()
            .filter(|(status, _)| *status == 200)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(issued.len(), 1, "round {round}: {x:?} {y:?}");
        let refused = if x.0 == 200 { &y } else { &x };
        assert_eq!(
            (refused.0, refused.1["error"].as_str()),
            (400, Some("invalid_grant")),
            "round {round}"
        );
        assert!(
            refused.1["error_description"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "round {round}: {refused:?}"
        );
        let access = issued[0]["access_token"].as_str().unwrap();
        let (status, _) = userinfo(&server, access).await;
        assert_eq!(status, 401, "round {round}: the replay revoked the grant");
        let refresh = issued[0]["refresh_token"].as_str().unwrap();
        let (status, body) = token_request(
            &server,
            &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
            Some(("lucca", LUCCA_SECRET)),
        )
        .await;
        assert_eq!(
            (status, body["error"].as_str()),
            (400, Some("invalid_grant")),
            "round {round}"
        );
    }
    let audit = server
        .state()
        .store
        .audit()
        .recent(200, None)
        .await
        .unwrap();
    let count = |outcome: &str| {
        audit
            .iter()
            .filter(|e| e.event == "token.code" && e.outcome == outcome)
            .count()
    };
    assert_eq!((count("success"), count("replayed")), (4, 4), "{audit:?}");
}

#[tokio::test]
async fn a_concurrent_retry_within_the_grace_window_gets_the_same_answer() {
    let server = start(|c| c.oidc.refresh_grace = std::time::Duration::from_secs(30)).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid offline_access").await;
    let (_, first) = exchange(&server, &code, &verifier).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", r1.as_str()),
    ];
    let (a, b) = tokio::join!(
        token_request(&server, &form, Some(("lucca", LUCCA_SECRET))),
        token_request(&server, &form, Some(("lucca", LUCCA_SECRET)))
    );
    assert_eq!((a.0, b.0), (200, 200));
    assert_eq!(
        a.1["refresh_token"], b.1["refresh_token"],
        "both tabs get the same new refresh token"
    );
    assert_eq!(a.1["access_token"], b.1["access_token"]);
    let (status, later) = token_request(&server, &form, Some(("lucca", LUCCA_SECRET))).await;
    assert_eq!(status, 200, "still within the window");
    assert_eq!(later["refresh_token"], a.1["refresh_token"]);
    // The family is intact: the new token works.
    let next = a.1["refresh_token"].as_str().unwrap();
    let (status, _) = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", next)],
        Some(("lucca", LUCCA_SECRET)),
    )
    .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn refresh_with_the_openidconnect_client_and_another_clients_token_is_refused() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid offline_access").await;
    let (_, first) = exchange(&server, &code, &verifier).await;
    let rp = relying_party(&server, "lucca", Some(LUCCA_SECRET), LUCCA_CALLBACK).await;
    let refreshed = rp
        .exchange_refresh_token(&RefreshToken::new(
            first["refresh_token"].as_str().unwrap().into(),
        ))
        .unwrap()
        .request_async(&oidc_http())
        .await
        .expect("refresh");
    let token = refreshed.refresh_token().unwrap().secret().clone();
    let (status, body) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &token),
            ("client_id", "mobile"),
        ],
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "a token is bound to its client"
    );
}

#[tokio::test]
async fn revoking_a_refresh_token_revokes_its_grant() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid offline_access").await;
    let (_, body) = exchange(&server, &code, &verifier).await;
    let revoke = |token: String, auth: (&'static str, &'static str)| {
        let url = server.url("/oidc/revoke");
        async move {
            reqwest::Client::new()
                .post(url)
                .basic_auth(auth.0, Some(auth.1))
                .form(&[("token", token.as_str())])
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(
        revoke(
            body["refresh_token"].as_str().unwrap().into(),
            ("lucca", "bad")
        )
        .await,
        401
    );
    assert_eq!(
        revoke(
            body["refresh_token"].as_str().unwrap().into(),
            ("lucca", LUCCA_SECRET)
        )
        .await,
        200
    );
    assert_eq!(
        userinfo(&server, body["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
    let (status, _) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", body["refresh_token"].as_str().unwrap()),
        ],
        Some(("lucca", LUCCA_SECRET)),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        revoke("never-issued".into(), ("lucca", LUCCA_SECRET)).await,
        200,
        "unknown tokens: 200, nothing revealed"
    );
}

#[tokio::test]
async fn logout_with_id_token_hint_ends_the_session_and_returns_to_the_client() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid").await;
    let (_, body) = exchange(&server, &code, &verifier).await;
    let id_token = body["id_token"].as_str().unwrap();

    // Without a hint: a confirmation page, session intact.
    let r = browser.get(&server.url("/oidc/logout")).await;
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("Sign out?"));

    // An unregistered post-logout URI is refused.
    let url = format!(
        "{}?id_token_hint={id_token}&post_logout_redirect_uri=https://evil.example/",
        server.url("/oidc/logout")
    );
    assert_eq!(browser.get(&url).await.status(), 400);

    let url = format!(
        "{}?id_token_hint={id_token}&post_logout_redirect_uri=https://acme.ilucca.test/&state=bye",
        server.url("/oidc/logout")
    );
    let r = browser.get(&url).await;
    assert_eq!(
        location(&r).as_deref(),
        Some("https://acme.ilucca.test/?state=bye")
    );

    let r = browser.get(&silent_authorize_url(&server)).await;
    assert_eq!(
        query(&location(&r).unwrap())["error"],
        "login_required",
        "the session is gone"
    );
}

/// `session_idle_timeout` counts from the session's last use, not from the sign-in: a person
/// who keeps signing in to clients keeps their session (until `session_max_age`), one who
/// stops loses it.
#[tokio::test]
async fn the_idle_timeout_counts_from_the_last_use_of_the_session() {
    let server = start(|c| {
        c.login.session_idle_timeout = std::time::Duration::from_secs(4);
    })
    .await;
    let browser = Browser::new();
    let silent = || silent_authorize_url(&server);
    let first = browser
        .authorize(
            &server.base,
            &silent().replace("&prompt=none", ""),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await;
    assert!(query(&first).contains_key("code"), "{first}");
    // Used every 2.5 s: 7.5 s after the sign-in, well past the 4 s idle timeout, still in.
    for _ in 0..3 {
        tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
        let r = browser.get(&silent()).await;
        let to = location(&r).unwrap();
        assert!(query(&to).contains_key("code"), "still signed in: {to}");
    }
    // Then left alone for longer than the idle timeout: gone.
    tokio::time::sleep(std::time::Duration::from_millis(4500)).await;
    let r = browser.get(&silent()).await;
    assert_eq!(
        query(&location(&r).unwrap())["error"],
        "login_required",
        "idle for longer than session_idle_timeout"
    );
}
