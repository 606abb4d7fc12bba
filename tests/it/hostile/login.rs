//! Sign-in: throttle bursts (concurrent, across names, across an account's names), forged
//! `X-Forwarded-For`, network filtering, CSRF on every form, session fixation, oversized fields.
//!
//! The HTML forms the router serves, and so the POSTs a browser can be tricked into sending:
//! `POST /login` (sign-in), `POST /logout` and `POST /oidc/logout` (sign-out confirmation). The
//! other POST routes are protocol or API endpoints with their own proof of origin: SAML
//! messages (`/saml/sso`, `/saml/slo`, signatures), the token, revocation and userinfo
//! endpoints (client authentication, bearer tokens), `/admin/*` (bearer token) and
//! `/lucca/webhooks` (HMAC); `POST /oidc/authorize` is an authorization request like its GET.

use std::collections::HashMap;

use reqwest::StatusCode;
use tokio::task::JoinSet;

use super::web_support::*;
use crate::common::*;

/// Send every attempt at once; count the answers by status.
async fn burst(
    server: &TestServer,
    attempts: Vec<(String, String)>,
    xff: Option<String>,
) -> HashMap<u16, usize> {
    // Each attempt gets its own browser session, prepared before the burst starts.
    let mut forms = Vec::new();
    for (username, password) in attempts {
        let (http, csrf) = login_form(server).await;
        forms.push((http, csrf, username, password));
    }
    let url = server.base.clone();
    let mut set = JoinSet::new();
    for (http, csrf, username, password) in forms {
        let url = url.clone();
        let xff = xff.clone();
        set.spawn(async move {
            let mut req = http.post(format!("{url}/login")).form(&[
                ("username", username.as_str()),
                ("password", password.as_str()),
                ("csrf_token", csrf.as_str()),
                ("req", ""),
            ]);
            if let Some(xff) = xff {
                req = req.header("x-forwarded-for", xff);
            }
            req.send().await.unwrap().status().as_u16()
        });
    }
    let mut counts = HashMap::new();
    while let Some(status) = set.join_next().await {
        *counts.entry(status.unwrap()).or_insert(0) += 1;
    }
    counts
}

#[tokio::test]
async fn thirty_concurrent_wrong_passwords_reach_the_password_check_only_five_times() {
    let server = start(|c| {
        c.login.max_failures_per_account = 5;
        c.login.max_failures_per_ip = 1000;
    })
    .await;
    let attempts = (0..30)
        .map(|i| ("alice@acme.test".to_string(), format!("wrong-{i}")))
        .collect();
    let counts = burst(&server, attempts, None).await;
    assert_eq!(
        counts,
        HashMap::from([(401, 5), (429, 25)]),
        "exactly the budget reaches argon2; the rest wait"
    );
    // Even the right password now waits.
    let (http, csrf) = login_form(&server).await;
    let r = post_login(
        &http,
        &server,
        &csrf,
        "alice@acme.test",
        ALICE_PASSWORD,
        None,
    )
    .await;
    assert_eq!(r.status(), 429);
    assert!(r.headers().contains_key("retry-after"));
}

#[tokio::test]
async fn an_accounts_email_and_login_share_one_budget() {
    let server = start(|c| c.login.max_failures_per_account = 3).await;
    for name in ["alice@acme.test", "AMARTIN", " Alice@ACME.test "] {
        let (http, csrf) = login_form(&server).await;
        let r = post_login(&http, &server, &csrf, name, "wrong", None).await;
        assert_eq!(r.status(), 401, "{name}");
    }
    let (http, csrf) = login_form(&server).await;
    let r = post_login(&http, &server, &csrf, "amartin", ALICE_PASSWORD, None).await;
    assert_eq!(
        r.status(),
        429,
        "three failures under either name spend the one budget"
    );
    // Bob is another person.
    let (http, csrf) = login_form(&server).await;
    let r = post_login(&http, &server, &csrf, "bob@acme.test", "bob-password", None).await;
    assert_eq!(r.status(), 303);
}

#[tokio::test]
async fn a_burst_over_many_usernames_from_one_network_hits_the_network_limit() {
    let server = start(|c| {
        c.login.max_failures_per_account = 5;
        c.login.max_failures_per_ip = 10;
    })
    .await;
    // Unknown names and real ones alike: probing who exists costs the same budget.
    let attempts = (0..30)
        .map(|i| {
            let name = match i % 3 {
                0 => "alice@acme.test".to_string(),
                _ => format!("nobody-{i}@acme.test"),
            };
            (name, "guess".to_string())
        })
        .collect();
    let counts = burst(&server, attempts, None).await;
    assert_eq!(counts, HashMap::from([(401, 10), (429, 20)]));
}

#[tokio::test]
async fn a_success_clears_the_persons_failures() {
    let server = start(|c| c.login.max_failures_per_account = 3).await;
    for _ in 0..2 {
        let (http, csrf) = login_form(&server).await;
        post_login(&http, &server, &csrf, "alice@acme.test", "wrong", None).await;
    }
    let (http, csrf) = login_form(&server).await;
    let r = post_login(&http, &server, &csrf, "amartin", ALICE_PASSWORD, None).await;
    assert_eq!(r.status(), 303);
    for _ in 0..2 {
        let (http, csrf) = login_form(&server).await;
        let r = post_login(&http, &server, &csrf, "alice@acme.test", "wrong", None).await;
        assert_eq!(r.status(), 401, "the earlier failures were forgotten");
    }
}

#[tokio::test]
async fn a_rotated_leftmost_forwarded_for_neither_escapes_the_throttle_nor_forges_the_audit_ip() {
    let server = start(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.login.max_failures_per_ip = 3;
        c.login.max_failures_per_account = 100;
    })
    .await;
    // The test plays the reverse proxy at 127.0.0.1: the client sent any X-Forwarded-For it
    // liked, and the proxy appended the address the request really came from.
    for i in 0..6 {
        let (http, csrf) = login_form(&server).await;
        let xff = format!("203.0.113.{i}, 10.{i}.0.1, 198.51.100.9");
        let r = post_login(
            &http,
            &server,
            &csrf,
            &format!("user{i}@acme.test"),
            "x",
            Some(&xff),
        )
        .await;
        let expected = if i < 3 { 401 } else { 429 };
        assert_eq!(r.status().as_u16(), expected, "attempt {i}");
    }
    let entries = audit(&server, 6).await;
    assert_eq!(entries.len(), 6);
    for e in &entries {
        assert_eq!(
            e["ip"], "198.51.100.9",
            "the audit names the real client: {e}"
        );
    }
    // The attacker cannot lock someone else's address out by naming it on the left.
    let (http, csrf) = login_form(&server).await;
    let r = post_login(
        &http,
        &server,
        &csrf,
        "alice@acme.test",
        ALICE_PASSWORD,
        Some("198.51.100.10"),
    )
    .await;
    assert_eq!(r.status(), 303, "198.51.100.10 has its own budget");
}

#[tokio::test]
async fn forwarded_for_from_a_peer_that_is_not_a_trusted_proxy_is_ignored() {
    let server = start(|c| {
        c.server.trusted_proxies = vec!["10.0.0.0/8".parse().unwrap()];
        c.login.max_failures_per_ip = 2;
        c.login.max_failures_per_account = 100;
    })
    .await;
    for i in 0..3 {
        let (http, csrf) = login_form(&server).await;
        let r = post_login(
            &http,
            &server,
            &csrf,
            &format!("u{i}@acme.test"),
            "x",
            Some(&format!("198.51.100.{i}")),
        )
        .await;
        assert_eq!(r.status().as_u16(), if i < 2 { 401 } else { 429 });
    }
    assert_eq!(audit(&server, 1).await[0]["ip"], "127.0.0.1");
}

#[tokio::test]
async fn sign_in_is_refused_outside_allowed_networks_and_public_documents_stay_reachable() {
    let server = start(|c| {
        c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
        c.login.allowed_networks = Some(vec!["192.0.2.0/24".parse().unwrap()]);
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, xff: &str| {
        http.get(server.url(path))
            .header("x-forwarded-for", xff)
            .send()
    };
    let sign_in_paths = [
        "/login",
        "/login?req=abc",
        "/login/upstream/corp",
        "/login/upstream/corp/callback?state=x&code=y",
        "/oidc/authorize?client_id=lucca&response_type=code&scope=openid",
        "/oidc/authorize/resume?req=x",
        "/saml/sso?SAMLRequest=x",
        "/saml/sso/resume",
        "/saml/idp-init?sp=x",
        "/",
    ];
    for path in sign_in_paths {
        let r = get(path, "198.51.100.7").await.unwrap();
        assert_eq!(r.status(), 403, "{path}");
        assert!(
            r.headers().get("set-cookie").is_none(),
            "no session: {path}"
        );
        let html = r.text().await.unwrap();
        assert!(
            html.contains("only available from your company") && html.contains("198.51.100.7"),
            "{path}: {html}"
        );
    }
    // A spoofed leftmost hop does not get in either.
    assert_eq!(
        get("/login", "192.0.2.5, 198.51.100.7")
            .await
            .unwrap()
            .status(),
        403
    );
    // Forms posted from outside are refused the same way.
    let r = http
        .post(server.url("/login"))
        .header("x-forwarded-for", "198.51.100.7")
        .form(&[
            ("username", "alice@acme.test"),
            ("password", ALICE_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r
        .text()
        .await
        .unwrap()
        .contains("only available from your company"));
    // Inside: the page.
    assert_eq!(get("/login", "192.0.2.5").await.unwrap().status(), 200);
    // Public documents and sign-out answer everyone.
    for path in [
        "/healthz",
        "/readyz",
        "/.well-known/openid-configuration",
        "/oidc/jwks",
        "/saml/metadata",
        "/logout",
    ] {
        let r = get(path, "198.51.100.7").await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // /metrics is no sign-in page: it answers with the admin token from anywhere.
    let r = http
        .get(server.url("/metrics"))
        .header("x-forwarded-for", "198.51.100.7")
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn allowed_networks_apply_to_the_peer_address_without_proxies() {
    let inside =
        start(|c| c.login.allowed_networks = Some(vec!["127.0.0.0/8".parse().unwrap()])).await;
    assert_eq!(
        reqwest::get(inside.url("/login")).await.unwrap().status(),
        200
    );
    let outside =
        start(|c| c.login.allowed_networks = Some(vec!["192.0.2.0/24".parse().unwrap()])).await;
    let r = reqwest::Client::new()
        .get(outside.url("/login"))
        .header("x-forwarded-for", "192.0.2.1")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        403,
        "X-Forwarded-For is not believed without trusted_proxies"
    );
}

/// Is this browser signed in? (The sign-out page names the person.)
async fn signed_in_as(browser: &Browser, server: &TestServer) -> bool {
    let html = browser
        .get(&server.url("/logout"))
        .await
        .text()
        .await
        .unwrap();
    html.contains("You are signed in as")
}

async fn signed_in_browser(server: &TestServer) -> Browser {
    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    let r = browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(r.status(), 303);
    assert!(signed_in_as(&browser, server).await);
    browser
}

#[tokio::test]
async fn every_form_refuses_a_post_without_its_csrf_token() {
    let server = start(|_| {}).await;

    // POST /login: a forged or missing token (login CSRF: signing the victim into the
    // attacker's account) is refused, and nobody is signed in.
    let victim = Browser::new();
    victim.get(&server.url("/login")).await;
    for token in ["forged", ""] {
        let r = victim
            .http
            .post(server.url("/login"))
            .form(&[
                ("username", "alice@acme.test"),
                ("password", ALICE_PASSWORD),
                ("csrf_token", token),
                ("req", ""),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403, "token {token:?}");
    }
    assert!(!signed_in_as(&victim, &server).await);
    // Cross-site, without the session cookie at all.
    let r = reqwest::Client::new()
        .post(server.url("/login"))
        .form(&[
            ("username", "alice@acme.test"),
            ("password", ALICE_PASSWORD),
            ("csrf_token", "forged"),
            ("req", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);

    // POST /logout: refused, the session survives.
    let browser = signed_in_browser(&server).await;
    for form in [vec![("csrf_token", "forged")], vec![]] {
        let r = browser
            .http
            .post(server.url("/logout"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 403);
    }
    assert!(signed_in_as(&browser, &server).await);

    // POST /oidc/logout without a token or hint: only the confirmation page, session intact.
    for form in [vec![("csrf_token", "forged")], vec![]] {
        let r = browser
            .http
            .post(server.url("/oidc/logout"))
            .form(&form)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.text().await.unwrap().contains("Sign out?"));
    }
    assert!(signed_in_as(&browser, &server).await);

    // With the page's own token, both sign-outs work (the refusals above were the token's).
    let html = browser
        .get(&server.url("/logout"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf_token").unwrap();
    let r = browser
        .http
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success() || r.status().is_redirection());
    assert!(!signed_in_as(&browser, &server).await);
}

fn session_cookie(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("passerelle_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    let before = session_cookie(&page).expect("a session for the CSRF token");
    let posted = browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(posted.status(), 303);
    let after = session_cookie(&posted).expect("a new cookie at sign-in");
    assert_ne!(before, after);
    // The id from before sign-in does not carry the signed-in session.
    let r = reqwest::Client::new()
        .get(server.url("/logout"))
        .header("cookie", &before)
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("You are signed in as"));
}

#[tokio::test]
async fn a_session_id_planted_by_an_attacker_is_never_adopted() {
    let server = start(|_| {}).await;
    // A well-formed id the server never issued (tower-sessions ids are base64url i128s).
    let planted = "passerelle_session=AAAAAAAAAAAAAAAAAAAAAA";
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = http
        .get(server.url("/login"))
        .header("cookie", planted)
        .send()
        .await
        .unwrap();
    let issued = session_cookie(&page).expect("the server issues its own id");
    assert_ne!(issued, planted);
    let csrf = hidden(&page.text().await.unwrap(), "csrf_token").unwrap();
    let r = http
        .post(server.url("/login"))
        .header("cookie", &issued)
        .form(&[
            ("username", "alice@acme.test"),
            ("password", ALICE_PASSWORD),
            ("csrf_token", csrf.as_str()),
            ("req", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let signed = session_cookie(&r).unwrap();
    assert_ne!(signed, issued);
    let r = http
        .get(server.url("/logout"))
        .header("cookie", planted)
        .send()
        .await
        .unwrap();
    assert!(!r.text().await.unwrap().contains("You are signed in as"));
}

#[tokio::test]
async fn a_one_megabyte_username_is_refused_before_anything_is_stored() {
    let server = start(|_| {}).await;
    let before = rows(&server, "audit_log").await;
    let huge = "a".repeat(1_000_000);
    for (username, password) in [
        (huge.as_str(), "x"),
        ("alice@acme.test", &huge[..100_000]),
        (&huge[..257], "x"),
    ] {
        let (http, csrf) = login_form(&server).await;
        let r = post_login(&http, &server, &csrf, username, password, None).await;
        assert_eq!(r.status(), StatusCode::BAD_REQUEST);
        let body = r.text().await.unwrap();
        assert!(body.contains("at most 256 characters"), "a clear message");
        assert!(body.len() < 20_000, "not echoed back: {} bytes", body.len());
    }
    // Each refusal is audited, with the name cut to the audit writer's field cap: the attempt is
    // visible to the security team, and nothing is stored at the size it was sent.
    assert_eq!(
        rows(&server, "audit_log").await,
        before + 3,
        "one row per refusal"
    );
    assert!(largest_stored(&server).await < 10_000);
    // The longest real address still works.
    let (http, csrf) = login_form(&server).await;
    let r = post_login(&http, &server, &csrf, &"b".repeat(256), "x", None).await;
    assert_eq!(r.status(), 401);
}
