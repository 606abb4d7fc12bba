//! OpenID Connect: open redirects on every redirecting endpoint, PKCE downgrade, code and
//! refresh replay (also two at once), client authentication that tells nothing apart,
//! oversized parameters, tampered and expired tokens, `prompt=none` without a session, and the
//! token endpoint outside `[login] allowed_networks`.

use passerelle::config::UpstreamConfig;
use serde_json::Value;

use super::web_support::*;
use crate::common::*;
use crate::oidc::{authorize_url, exchange, lucca_code, pkce_pair, token_request, userinfo};

/// `redirect_uri`s that are not the registered ones, though they look it (the registered ones
/// are `LUCCA_CALLBACK` for `lucca`, and `com.example.app:/callback` and `http://127.0.0.1/cb`
/// with any port for `mobile`).
const LOOK_ALIKE_REDIRECTS: [(&str, &str); 24] = [
    ("nobody", LUCCA_CALLBACK),
    ("lucca", "https://evil.example/callback"),
    (
        "lucca",
        "https://acme.ilucca.test/identity/oidc/callback/extra",
    ),
    ("lucca", "https://acme.ilucca.test/identity/oidc/callbackx"),
    ("lucca", "https://acme.ilucca.test/identity/oidc/callbac"),
    (
        "lucca",
        "https://acme.ilucca.test/identity/oidc/callback?next=https://evil.example",
    ),
    (
        "lucca",
        "https://acme.ilucca.test/identity/oidc/callback#frag",
    ),
    (
        "lucca",
        "https://acme.ilucca.test/identity/oidc/callback/../../evil",
    ),
    ("lucca", "https://acme.ilucca.test/identity/oidc%2Fcallback"),
    (
        "lucca",
        "https://acme.ilucca.test%2Fidentity%2Foidc%2Fcallback",
    ),
    (
        "lucca",
        "https://acme.ilucca.test@evil.example/identity/oidc/callback",
    ),
    (
        "lucca",
        "https://evil.example@acme.ilucca.test/identity/oidc/callback",
    ),
    (
        "lucca",
        "https://acme.ilucca.test.evil.example/identity/oidc/callback",
    ),
    ("lucca", "https://acme.ilucca.test./identity/oidc/callback"),
    ("lucca", "http://acme.ilucca.test/identity/oidc/callback"),
    (
        "lucca",
        "https://acme.ilucca.test:8443/identity/oidc/callback",
    ),
    (
        "lucca",
        "https://acme.ilucca.test:443/identity/oidc/callback",
    ),
    ("lucca", "HTTPS://ACME.ILUCCA.TEST/identity/oidc/callback"),
    (
        "lucca",
        "javascript:alert(1)//acme.ilucca.test/identity/oidc/callback",
    ),
    ("mobile", "com.example.app:/callback/../evil"),
    ("mobile", "com.example.evil:/callback"),
    ("mobile", "http://127.0.0.1:5555@evil.example/cb"),
    ("mobile", "http://localhost:5555/cb"),
    ("mobile", "https://127.0.0.1:5555/cb"),
];

#[tokio::test]
async fn public_client_without_pkce_is_refused_and_plain_pkce_too() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let base = [
        ("response_type", "code"),
        ("client_id", "mobile"),
        ("redirect_uri", MOBILE_CALLBACK),
        ("scope", "openid"),
        ("state", "s1"),
    ];
    let r = browser
        .follow(&server.base, &authorize_url(&server, &base))
        .await;
    let q = query(&location(&r).unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("PKCE"));
    assert_eq!(q["state"], "s1");
    assert_eq!(q["iss"], server.base);

    let mut plain = base.to_vec();
    plain.push((
        "code_challenge",
        "abcdefghijabcdefghijabcdefghijabcdefghijabc",
    ));
    plain.push(("code_challenge_method", "plain"));
    let r = browser
        .follow(&server.base, &authorize_url(&server, &plain))
        .await;
    let q = query(&location(&r).unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("plain"), "{q:?}");
}

#[tokio::test]
async fn unknown_client_and_unregistered_redirect_are_shown_not_redirected() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let before = rows(&server, "login_requests").await;
    for (client, redirect) in LOOK_ALIKE_REDIRECTS {
        let url = authorize_url(
            &server,
            &[
                ("response_type", "code"),
                ("client_id", client),
                ("redirect_uri", redirect),
                ("scope", "openid"),
            ],
        );
        let r = browser.get(&url).await;
        assert_eq!(r.status(), 400, "{client} {redirect}");
        assert!(
            location(&r).is_none(),
            "must never redirect to an unverified URI"
        );
        let body = r.text().await.unwrap();
        assert!(body.contains("not valid"), "an error page: {body}");
    }
    assert_eq!(
        rows(&server, "login_requests").await,
        before,
        "nothing stored"
    );
}

#[tokio::test]
async fn wrong_secret_wrong_verifier_wrong_redirect_and_missing_verifier_are_refused() {
    let server = start(|_| {}).await;
    let browser = Browser::new();

    let (code, verifier) = lucca_code(&server, &browser, "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", LUCCA_CALLBACK),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body) = token_request(&server, &form, Some(("lucca", "wrong-secret"))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (401, Some("invalid_client"))
    );

    let (code, _) = lucca_code(&server, &browser, "openid").await;
    let (status, body) = exchange(&server, &code, &pkce_pair().0).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "wrong verifier"
    );

    let (code, verifier) = lucca_code(&server, &browser, "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", "https://acme.ilucca.test/other"),
        ("code_verifier", verifier.as_str()),
    ];
    let (status, body) = token_request(&server, &form, Some(("lucca", LUCCA_SECRET))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "redirect_uri differs"
    );

    let (code, _) = lucca_code(&server, &browser, "openid").await;
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", LUCCA_CALLBACK),
    ];
    let (status, body) = token_request(&server, &form, Some(("lucca", LUCCA_SECRET))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "missing verifier"
    );

    let (status, body) = token_request(
        &server,
        &[("grant_type", "password")],
        Some(("lucca", LUCCA_SECRET)),
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("unsupported_grant_type"))
    );
}

#[tokio::test]
async fn a_replayed_code_fails_and_revokes_what_it_issued() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid email offline_access").await;
    let (status, first) = exchange(&server, &code, &verifier).await;
    assert_eq!(status, 200);
    let access = first["access_token"].as_str().unwrap();
    assert_eq!(userinfo(&server, access).await.0, 200);

    let (status, replay) = exchange(&server, &code, &verifier).await;
    assert_eq!(
        (status, replay["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert_eq!(
        userinfo(&server, access).await.0,
        401,
        "the access token from the first exchange is revoked"
    );
    let refresh = first["refresh_token"].as_str().unwrap();
    let (status, _) = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
        Some(("lucca", LUCCA_SECRET)),
    )
    .await;
    assert_eq!(status, 400, "and so is its refresh token");
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let server = start(|c| c.oidc.refresh_grace = std::time::Duration::from_secs(0)).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid email offline_access").await;
    let (_, first) = exchange(&server, &code, &verifier).await;
    let r1 = first["refresh_token"]
        .as_str()
        .expect("offline_access gives a refresh token")
        .to_string();

    let refresh = |token: String| {
        let server = &server;
        async move {
            token_request(
                server,
                &[("grant_type", "refresh_token"), ("refresh_token", &token)],
                Some(("lucca", LUCCA_SECRET)),
            )
            .await
        }
    };
    let (status, second) = refresh(r1.clone()).await;
    assert_eq!(status, 200);
    let r2 = second["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(r1, r2);
    assert_eq!(
        jwt_payload(second["id_token"].as_str().unwrap())["sub"],
        "alice@acme.test"
    );

    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, reuse) = refresh(r1.clone()).await;
    assert_eq!(
        (status, reuse["error"].as_str()),
        (400, Some("invalid_grant")),
        "old token reused"
    );
    let (status, _) = refresh(r2).await;
    assert_eq!(
        status, 400,
        "reuse revoked the whole family, including the newest token"
    );
    assert_eq!(
        userinfo(&server, second["access_token"].as_str().unwrap())
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn tampered_and_unknown_tokens_are_refused_at_userinfo() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid email").await;
    let (_, body) = exchange(&server, &code, &verifier).await;
    let access = body["access_token"].as_str().unwrap().to_string();
    let mut tampered = access.clone().into_bytes();
    tampered[5] = if tampered[5] == b'A' { b'B' } else { b'A' };
    for bad in [
        String::from_utf8(tampered).unwrap(),
        body["id_token"].as_str().unwrap().to_string(),
        "x".into(),
    ] {
        let r = reqwest::Client::new()
            .get(server.url("/oidc/userinfo"))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401);
        assert!(r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("invalid_token"));
    }
    let r = reqwest::Client::new()
        .get(server.url("/oidc/userinfo"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "no token at all");
    assert_eq!(userinfo(&server, &access).await.0, 200);
}

#[tokio::test]
async fn prompt_none_and_prompt_login() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let params = |prompt: &'static str| {
        vec![
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", "openid"),
            ("state", "p"),
            ("prompt", prompt),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
    };
    let r = browser.get(&authorize_url(&server, &params("none"))).await;
    assert_eq!(query(&location(&r).unwrap())["error"], "login_required");

    lucca_code(&server, &browser, "openid").await;
    let r = browser.get(&authorize_url(&server, &params("none"))).await;
    assert!(
        query(&location(&r).unwrap()).contains_key("code"),
        "signed in: prompt=none answers at once"
    );

    let r = browser
        .follow(&server.base, &authorize_url(&server, &params("login")))
        .await;
    assert_eq!(
        r.url().path(),
        "/login",
        "prompt=login shows the sign-in form despite the session"
    );
    let posted = browser
        .submit_login(&server.base, r, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let back = browser
        .follow(
            &server.base,
            &absolute(&server.base, &location(&posted).unwrap()),
        )
        .await;
    assert!(query(&location(&back).unwrap()).contains_key("code"));
}

#[tokio::test]
async fn logout_never_redirects_to_an_unregistered_address() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid").await;
    let (_, body) = exchange(&server, &code, &verifier).await;
    let id_token = body["id_token"].as_str().unwrap().to_string();
    // Registered: https://acme.ilucca.test/
    for uri in [
        "https://evil.example/",
        "https://acme.ilucca.test/extra",
        "https://acme.ilucca.test",
        "https://acme.ilucca.test/?next=https://evil.example",
        "https://acme.ilucca.test@evil.example/",
        "https://acme.ilucca.test.evil.example/",
        "http://acme.ilucca.test/",
        "https://acme.ilucca.test:8443/",
        "https://acme.ilucca.test/#x",
        "//evil.example/",
        "/\\evil.example",
    ] {
        for hint in [Some(id_token.as_str()), None] {
            let mut url = url::Url::parse(&server.url("/oidc/logout")).unwrap();
            {
                let mut q = url.query_pairs_mut();
                q.append_pair("post_logout_redirect_uri", uri);
                match hint {
                    Some(h) => q.append_pair("id_token_hint", h),
                    None => q.append_pair("client_id", "lucca"),
                };
            }
            let r = browser.get(url.as_str()).await;
            assert_eq!(r.status(), 400, "{uri}");
            assert!(location(&r).is_none(), "{uri}");
        }
    }
    // Without naming the client, no address is trusted at all.
    let r = browser
        .get(&server.url("/oidc/logout?post_logout_redirect_uri=https%3A%2F%2Facme.ilucca.test%2F"))
        .await;
    assert_eq!(r.status(), 400);
    // A forged hint is refused too.
    let forged = format!("{}x", &id_token[..id_token.len() - 1]);
    let r = browser
        .get(&format!(
            "{}?id_token_hint={forged}&post_logout_redirect_uri=https%3A%2F%2Facme.ilucca.test%2F",
            server.url("/oidc/logout")
        ))
        .await;
    assert_eq!(r.status(), 400);
    assert!(location(&r).is_none());
}

#[tokio::test]
async fn sign_in_parameters_are_never_redirect_targets() {
    let server = start(|c| {
        // An upstream that is never reached: every request below is refused before.
        c.upstreams = vec![UpstreamConfig {
            name: "corp".into(),
            issuer: "http://127.0.0.1:9".into(),
            client_id: "bridge".into(),
            ..Default::default()
        }];
    })
    .await;
    let browser = Browser::new();
    for path in [
        "/login?req=https://evil.example/",
        "/login?req=//evil.example",
        "/login/upstream/corp?req=https://evil.example/",
        "/login/upstream/corp/callback?state=forged&code=abc",
        "/login/upstream/corp/callback?error=access_denied&state=forged",
        "/oidc/authorize/resume?req=https://evil.example/",
    ] {
        let r = browser.get(&server.url(path)).await;
        assert!(r.status().is_client_error(), "{path}: {}", r.status());
        assert!(location(&r).is_none(), "{path}");
    }
    // The sign-in form's `req` field cannot send a signed-in person elsewhere either.
    let page = browser.get(&server.url("/login")).await;
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token").unwrap();
    let r = browser
        .http
        .post(server.url("/login"))
        .form(&[
            ("username", "alice@acme.test"),
            ("password", ALICE_PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("req", "https://evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(location(&r).is_none());
    // After a sign-in without a pending request, the person lands at home, nowhere else.
    let page = browser.get(&server.url("/login")).await;
    let r = browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(location(&r).as_deref(), Some("/"));
}

/// An authorization request for `lucca` with these extra parameters; where it ends up.
async fn authorize_lucca(server: &TestServer, browser: &Browser, extra: &[(&str, &str)]) -> String {
    let mut params = vec![
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid"),
        ("state", "st"),
    ];
    params.extend_from_slice(extra);
    let r = browser
        .follow(&server.base, &authorize_url(server, &params))
        .await;
    location(&r).unwrap_or_default()
}

#[tokio::test]
async fn pkce_cannot_be_downgraded() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (verifier, challenge) = pkce_pair();
    // Any method but exactly `S256`, or a challenge without a method (RFC 7636 says `plain`).
    for method in [
        Some("s256"),
        Some("S256 "),
        Some("sha256"),
        Some("PLAIN"),
        None,
    ] {
        let mut extra = vec![("code_challenge", challenge.as_str())];
        if let Some(m) = method {
            extra.push(("code_challenge_method", m));
        }
        let back = authorize_lucca(&server, &browser, &extra).await;
        let q = query(&back);
        assert!(back.starts_with(LUCCA_CALLBACK), "{back}");
        assert_eq!(q["error"], "invalid_request", "{method:?}");
        assert!(!q.contains_key("code"));
    }
    // A method without a challenge.
    let back = authorize_lucca(&server, &browser, &[("code_challenge_method", "S256")]).await;
    assert_eq!(query(&back)["error"], "invalid_request");

    // A code obtained without PKCE cannot be redeemed with a verifier (a downgrade that would
    // let a verifier "prove" a code it never protected), nor one with PKCE without it.
    let page = browser.get(&server.url("/login")).await;
    browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let back = authorize_lucca(&server, &browser, &[]).await;
    let code = query(&back)["code"].clone();
    let (status, body) = exchange(&server, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("no code_challenge"));
}

#[tokio::test]
async fn two_exchanges_of_one_code_at_once_leave_no_live_token() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    for round in 0..6 {
        let (code, verifier) = lucca_code(&server, &browser, "openid offline_access").await;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", LUCCA_CALLBACK),
            ("code_verifier", verifier.as_str()),
        ];
        let auth = Some(("lucca", LUCCA_SECRET));
        let (a, b, c) = tokio::join!(
            token_request(&server, &form, auth),
            token_request(&server, &form, auth),
            token_request(&server, &form, auth),
        );
        let answers = [a, b, c];
        let won: Vec<&Value> = answers
            .iter()
            .filter(|(s, _)| *s == 200)
            .map(|(_, v)| v)
            .collect();
        assert!(
            won.len() <= 1,
            "round {round}: one code, one answer at most"
        );
        for (status, body) in &answers {
            if *status != 200 {
                assert_eq!(
                    (*status, body["error"].as_str()),
                    (400, Some("invalid_grant"))
                );
            }
        }
        // Whatever the interleaving, the replay revoked what the winner got (or stopped it).
        for body in won {
            let access = body["access_token"].as_str().unwrap();
            assert_eq!(userinfo(&server, access).await.0, 401, "round {round}");
            let (status, _) = token_request(
                &server,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", body["refresh_token"].as_str().unwrap()),
                ],
                auth,
            )
            .await;
            assert_eq!(status, 400, "round {round}: the refresh token is dead too");
        }
    }
}

#[tokio::test]
async fn two_refreshes_of_one_token_at_once_revoke_the_family_without_a_grace_window() {
    let server = start(|c| c.oidc.refresh_grace = std::time::Duration::ZERO).await;
    let browser = Browser::new();
    let auth = Some(("lucca", LUCCA_SECRET));
    for round in 0..4 {
        let (code, verifier) = lucca_code(&server, &browser, "openid offline_access").await;
        let (_, first) = exchange(&server, &code, &verifier).await;
        let r1 = first["refresh_token"].as_str().unwrap().to_string();
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", r1.as_str()),
        ];
        let (a, b) = tokio::join!(
            token_request(&server, &form, auth),
            token_request(&server, &form, auth)
        );
        let statuses = [a.0, b.0];
        assert!(
            statuses.iter().filter(|s| **s == 200).count() <= 1,
            "round {round}: {statuses:?}"
        );
        // The reuse revoked the family: every token of it is dead, the first one's too.
        for answer in [&a.1, &b.1, &first] {
            if let Some(access) = answer["access_token"].as_str() {
                assert_eq!(userinfo(&server, access).await.0, 401, "round {round}");
            }
            if let Some(refresh) = answer["refresh_token"].as_str() {
                let (status, _) = token_request(
                    &server,
                    &[("grant_type", "refresh_token"), ("refresh_token", refresh)],
                    auth,
                )
                .await;
                assert_eq!(status, 400, "round {round}");
            }
        }
    }
}

/// A token endpoint answer with the headers that vary per response (date, the CSP nonce) left out.
async fn raw_token_answer(
    server: &TestServer,
    form: &[(&str, &str)],
    basic: Option<(&str, &str)>,
) -> (u16, Vec<(String, String)>, String) {
    let mut req = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .form(form);
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let r = req.send().await.unwrap();
    let status = r.status().as_u16();
    let mut headers: Vec<(String, String)> = r
        .headers()
        .iter()
        .filter(|(k, _)| !["date", "content-security-policy", "x-request-id"].contains(&k.as_str()))
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    headers.sort();
    (status, headers, r.text().await.unwrap())
}

#[tokio::test]
async fn an_unknown_client_and_a_wrong_secret_get_the_same_answer() {
    let server = start(|_| {}).await;
    let grant = ("grant_type", "authorization_code");
    let code = ("code", "whatever");
    // HTTP Basic: unknown client, wrong secret, a secret for a public client.
    let basic: Vec<_> = [
        ("nobody", LUCCA_SECRET),
        ("lucca", "wrong-secret"),
        ("lucca", ""),
        ("mobile", "a-secret"),
    ]
    .into_iter()
    .map(|(id, secret)| {
        let server = &server;
        async move { raw_token_answer(server, &[grant, code], Some((id, secret))).await }
    })
    .collect();
    let mut answers = Vec::new();
    for f in basic {
        answers.push(f.await);
    }
    let first = &answers[0];
    assert_eq!(first.0, 401);
    assert!(first
        .1
        .iter()
        .any(|(k, v)| k == "www-authenticate" && v.starts_with("Basic")));
    for a in &answers {
        assert_eq!(a, first, "identical status, headers and body");
    }
    let body: Value = serde_json::from_str(&first.2).unwrap();
    assert_eq!(body["error"], "invalid_client");

    // In the body: the same again (and no WWW-Authenticate: nothing was sent in that header).
    let mut answers = Vec::new();
    for (id, secret) in [
        ("nobody", Some(LUCCA_SECRET)),
        ("lucca", Some("wrong-secret")),
        ("lucca", None),
        ("nobody", None),
    ] {
        let mut form = vec![grant, code, ("client_id", id)];
        if let Some(s) = secret {
            form.push(("client_secret", s));
        }
        answers.push(raw_token_answer(&server, &form, None).await);
    }
    for a in &answers {
        assert_eq!(a, &answers[0]);
    }
    assert!(!answers[0].1.iter().any(|(k, _)| k == "www-authenticate"));
    // The revocation endpoint authenticates clients the same way.
    let r = reqwest::Client::new()
        .post(server.url("/oidc/revoke"))
        .basic_auth("nobody", Some("x"))
        .form(&[("token", "t")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.json::<Value>().await.unwrap()["error_description"],
        body["error_description"]
    );
}

/// The status of a GET written by hand on a socket (`None` if none came).
async fn raw_get_status(server: &TestServer, path_and_query: &str) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = server.base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let request =
        format!("GET {path_and_query} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    // The server may answer and close before reading it all.
    let _ = stream.write_all(request.as_bytes()).await;
    let mut head = vec![0u8; 64];
    let n = stream.read(&mut head).await.unwrap_or(0);
    let text = String::from_utf8_lossy(&head[..n]).to_string();
    text.split(' ').nth(1).and_then(|s| s.parse().ok())
}

#[tokio::test]
async fn oversized_parameters_are_refused_and_nothing_of_their_size_is_stored() {
    let server = start(|_| {}).await;
    let big = "x".repeat(100_000);
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let base = |field: &'static str, value: &str| {
        let mut p: Vec<(String, String)> = [
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", "openid"),
            ("state", "st"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ]
        .iter()
        .filter(|(k, _)| *k != field)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        p.push((field.to_string(), value.to_string()));
        p
    };
    for field in [
        "client_id",
        "redirect_uri",
        "state",
        "nonce",
        "login_hint",
        "scope",
        "prompt",
    ] {
        let value = match field {
            // Still a valid request: openid plus 100 KB of scopes nobody knows.
            "scope" => format!("openid {big}"),
            _ => big.clone(),
        };
        let params = base(field, &value);
        // By POST (a GET this long is cut short by the HTTP layer with a 4xx on its own).
        let r = browser
            .http
            .post(server.url("/oidc/authorize"))
            .form(&params)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let to = location(&r).unwrap_or_default();
        match field {
            // Who asks, and where to: an error page, never a redirect.
            "client_id" | "redirect_uri" => {
                assert_eq!(status, 400, "{field}");
                assert!(to.is_empty());
            }
            // The rest is told to the client (RFC 6749 §4.1.2.1), without echoing the value.
            "state" | "nonce" | "prompt" => {
                assert!(to.starts_with(LUCCA_CALLBACK), "{field}: {status} {to}");
                assert_eq!(query(&to)["error"], "invalid_request", "{field}");
                assert!(to.len() < 1000, "{field}: not echoed");
            }
            // Dropped (an over-long hint) or filtered to known scopes: the request goes on to
            // the sign-in page, storing the request without the value.
            _ => assert!(status.is_redirection(), "{field}: {status}"),
        }
        // By GET: the HTTP layer itself refuses a request line this long (HTTP clients will
        // not even build the URL, so it is written by hand).
        let url = authorize_url(
            &server,
            &params
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect::<Vec<_>>(),
        );
        let status = raw_get_status(&server, &url[server.base.len()..]).await;
        assert_eq!(status, Some(414), "GET {field}: URI Too Long");
    }
    // The token endpoint: client_id, code, redirect_uri, code_verifier.
    for field in ["client_id", "code", "redirect_uri", "code_verifier"] {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", "c"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("code_verifier", "v"),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, big.as_str()));
        let auth = (field != "client_id").then_some(("lucca", LUCCA_SECRET));
        let (status, body) = token_request(&server, &form, auth).await;
        assert!((400..500).contains(&status), "{field}: {status}");
        assert!(body["error"].is_string(), "{field}: OAuth JSON");
        assert!(body.to_string().len() < 1000, "{field}: not echoed");
    }
    assert!(
        largest_stored(&server).await < 10_000,
        "nothing attacker-sized in the database"
    );
}

#[tokio::test]
async fn expired_and_foreign_tokens_are_refused_at_userinfo_and_revoke_touches_nothing() {
    let server = start(|c| c.oidc.access_token_ttl = std::time::Duration::from_secs(1)).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&server, &browser, "openid offline_access").await;
    let (_, body) = exchange(&server, &code, &verifier).await;
    let access = body["access_token"].as_str().unwrap().to_string();
    let refresh = body["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(userinfo(&server, &access).await.0, 200);

    // Revocation with a tampered token, or by another client: 200, and nothing is revoked.
    let mut tampered = refresh.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    for (token, form_client) in [
        (tampered.as_str(), None),
        (refresh.as_str(), Some("mobile")),
        (access.as_str(), Some("mobile")),
    ] {
        let mut req = reqwest::Client::new().post(server.url("/oidc/revoke"));
        req = match form_client {
            Some(id) => req.form(&[("token", token), ("client_id", id)]),
            None => req
                .basic_auth("lucca", Some(LUCCA_SECRET))
                .form(&[("token", token)]),
        };
        assert_eq!(req.send().await.unwrap().status(), 200);
    }
    assert_eq!(userinfo(&server, &access).await.0, 200, "still live");

    // Expired: refused (the refresh token, of its own lifetime, still works).
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) = userinfo(&server, &access).await;
    assert_eq!(status, 401, "an expired access token");
    let (status, _) = token_request(
        &server,
        &[("grant_type", "refresh_token"), ("refresh_token", &refresh)],
        Some(("lucca", LUCCA_SECRET)),
    )
    .await;
    assert_eq!(
        status, 200,
        "nothing was revoked by the foreign revocations"
    );
}

#[tokio::test]
async fn prompt_none_without_a_session_stores_nothing() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let (_, challenge) = pkce_pair();
    let before = rows(&server, "login_requests").await;
    let back = authorize_lucca(
        &server,
        &browser,
        &[
            ("prompt", "none"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .await;
    let q = query(&back);
    assert_eq!(q["error"], "login_required");
    assert_eq!(q["state"], "st");
    assert!(!q.contains_key("code"));
    assert_eq!(rows(&server, "login_requests").await, before);
    assert_eq!(rows(&server, "auth_codes").await, 0);
}

/// A browser whose every request arrives through the proxy at 127.0.0.1 from `client`.
fn browser_from(client: &str) -> Browser {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-forwarded-for", client.parse().unwrap());
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

#[tokio::test]
async fn the_token_endpoint_answers_only_allowed_networks_unless_the_client_is_exempt() {
    let server = start(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.login.allowed_networks = Some(vec!["192.0.2.0/24".parse().unwrap()]);
        c.oidc.clients[0].token_from_any_network = true; // lucca: its servers redeem codes
    })
    .await;
    let inside = browser_from("192.0.2.5");
    let (verifier, challenge) = pkce_pair();
    let url = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", "mobile"),
            ("redirect_uri", MOBILE_CALLBACK),
            ("scope", "openid"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = inside
        .authorize(&server.base, &url, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let code = query(&back)["code"].clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", MOBILE_CALLBACK),
        ("code_verifier", verifier.as_str()),
        ("client_id", "mobile"),
    ];
    let post = |from: &'static str| {
        let url = server.url("/oidc/token");
        async move {
            let r = reqwest::Client::new()
                .post(url)
                .header("x-forwarded-for", from)
                .form(&form)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = post("198.51.100.7").await;
    assert_eq!(
        (status, body["error"].as_str()),
        (403, Some("access_denied"))
    );
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .contains("allowed_networks"));
    let (status, body) = post("192.0.2.5").await;
    assert_eq!(status, 200, "the refusal spent nothing: {body}");

    // The exempt confidential client redeems from its own servers, outside.
    let (lucca_verifier, lucca_challenge) = pkce_pair();
    let url = authorize_url(
        &server,
        &[
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", "openid"),
            ("code_challenge", &lucca_challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let back = inside.follow(&server.base, &url).await;
    let code = query(&location(&back).unwrap())["code"].clone();
    let r = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .header("x-forwarded-for", "203.0.113.50")
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", LUCCA_CALLBACK),
            ("code_verifier", lucca_verifier.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // And the person's own sign-in from outside is refused before anything happens.
    let outside = browser_from("198.51.100.7");
    assert_eq!(outside.get(&url).await.status(), 403);
}
