//! The foundation over HTTP: discovery, health, the sign-in page, throttling, admin auth.

use serde_json::Value;

use crate::common::*;

#[tokio::test]
async fn discovery_names_every_endpoint_under_public_url() {
    let server = start(|_| {}).await;
    let d: Value = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(d["issuer"], server.base);
    for (key, path) in [
        ("authorization_endpoint", "/oidc/authorize"),
        ("token_endpoint", "/oidc/token"),
        ("userinfo_endpoint", "/oidc/userinfo"),
        ("jwks_uri", "/oidc/jwks"),
        ("end_session_endpoint", "/oidc/logout"),
        ("revocation_endpoint", "/oidc/revoke"),
    ] {
        assert_eq!(d[key], server.url(path), "{key}");
    }
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    assert_eq!(d["authorization_response_iss_parameter_supported"], true);
    for scope in ["openid", "groups", "offline_access"] {
        assert!(
            d["scopes_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|s| s == scope),
            "{scope}"
        );
    }
    for method in ["client_secret_basic", "client_secret_post", "none"] {
        assert!(d["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s == method));
    }
    let jwks: Value = reqwest::get(server.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &jwks["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert_eq!(key["alg"], "RS256");
    assert!(key["kid"].as_str().is_some());
}

#[tokio::test]
async fn health_readiness_metrics_and_security_headers() {
    let server = start(|_| {}).await;
    assert_eq!(
        reqwest::get(server.url("/healthz")).await.unwrap().status(),
        200
    );
    let ready: Value = reqwest::get(server.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["database"], "ok");
    assert_eq!(ready["keys"], "ok");
    let metrics = reqwest::get(server.url("/metrics")).await.unwrap();
    assert_eq!(metrics.status(), 200);
    let login = reqwest::get(server.url("/login")).await.unwrap();
    let h = login.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["cache-control"], "no-store");
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
}

#[tokio::test]
async fn sign_in_page_has_the_contract_fields_and_a_generic_error() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    let html = page.text().await.unwrap();
    for needle in [
        "name=\"username\"",
        "name=\"password\"",
        "name=\"csrf_token\"",
        "<label for=\"username\"",
        "name=\"viewport\"",
    ] {
        assert!(html.contains(needle), "{needle}");
    }
    let again = browser.get(&server.url("/login")).await;
    let wrong_user = browser
        .submit_login(&server.base, again, "nobody@acme.test", "x")
        .await;
    assert_eq!(wrong_user.status(), 401);
    let a = wrong_user.text().await.unwrap();
    let again = browser.get(&server.url("/login")).await;
    let wrong_pw = browser
        .submit_login(&server.base, again, "alice@acme.test", "x")
        .await;
    let b = wrong_pw.text().await.unwrap();
    assert!(
        a.contains("Wrong email or password") && b.contains("Wrong email or password"),
        "same message either way"
    );

    // A form posted without the session's CSRF token is refused.
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
}

#[tokio::test]
async fn the_session_id_changes_at_sign_in() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    let before = page.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let posted = browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(posted.status(), 303);
    let after = posted.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_ne!(before, after);
}

#[tokio::test]
async fn repeated_failures_are_throttled_per_account() {
    let server = start(|c| c.login.max_failures_per_account = 3).await;
    let browser = Browser::new();
    for _ in 0..3 {
        let page = browser.get(&server.url("/login")).await;
        assert_eq!(
            browser
                .submit_login(&server.base, page, "alice@acme.test", "wrong")
                .await
                .status(),
            401
        );
    }
    let page = browser.get(&server.url("/login")).await;
    let r = browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(r.status(), 429, "even the right password waits");
    assert!(r.text().await.unwrap().contains("Too many failed attempts"));
    let page = browser.get(&server.url("/login")).await;
    assert_eq!(
        browser
            .submit_login(&server.base, page, "bob@acme.test", "bob-password")
            .await
            .status(),
        303,
        "other accounts unaffected"
    );
}

#[tokio::test]
async fn admin_api_requires_the_bearer_token_and_audits_sign_ins() {
    let server = start(|_| {}).await;
    let http = reqwest::Client::new();
    assert_eq!(
        http.get(server.url("/admin/keys"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        http.get(server.url("/admin/keys"))
            .bearer_auth("wrong-token-wrong-token")
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    let keys: Value = http
        .get(server.url("/admin/keys"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(keys["keys"].as_array().unwrap().len(), 1);

    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let audit: Value = http
        .get(server.url("/admin/audit?limit=5"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = &audit["entries"][0];
    assert_eq!(first["event"], "login");
    assert_eq!(first["outcome"], "success");
    assert_eq!(first["subject"], "alice@acme.test");
    assert_eq!(first["ip"], "127.0.0.1");
}

#[tokio::test]
async fn key_rotation_publishes_the_next_key_before_it_signs() {
    let server = start(|_| {}).await;
    let http = reqwest::Client::new();
    let before: Value = reqwest::get(server.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let r = http
        .post(server.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let again = http
        .post(server.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409, "one pending rotation at a time");
    let after: Value = reqwest::get(server.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        after["keys"].as_array().unwrap().len(),
        2,
        "next key published at once"
    );
    let ready: Value = reqwest::get(server.url("/readyz"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        ready["signing_kid"], before["keys"][0]["kid"],
        "the old key still signs"
    );
}
