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
async fn health_readiness_and_security_headers() {
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
    let login = reqwest::get(server.url("/login")).await.unwrap();
    let h = login.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert!(h["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h.get("strict-transport-security").is_none(),
        "no HSTS over plain http"
    );
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );
    // Every answer, a JSON one, the migration API's and a 404 included: no content sniffing,
    // no referrer leaking a URL's query, a content security policy.
    for path in [
        "/.well-known/openid-configuration",
        "/admin/migrations",
        "/no/such/page",
    ] {
        let r = reqwest::get(server.url(path)).await.unwrap();
        let h = r.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
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

/// The nonce a CSP header allows for scripts and styles; the policy must allow nothing inline.
fn csp_nonce(r: &reqwest::Response) -> String {
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(!csp.contains("unsafe-eval"), "{csp}");
    let script = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("script-src"))
        .expect("script-src");
    let style = csp
        .split(';')
        .map(str::trim)
        .find(|d| d.starts_with("style-src"))
        .expect("style-src");
    let nonce = script
        .strip_prefix("script-src 'nonce-")
        .and_then(|n| n.strip_suffix('\''))
        .expect("a nonce source only")
        .to_string();
    assert_eq!(style, format!("style-src 'nonce-{nonce}'"));
    assert!(nonce.len() >= 22, "at least 128 bits");
    nonce
}

#[tokio::test]
async fn pages_run_only_inline_code_that_carries_the_responses_nonce() {
    let server = start(|_| {}).await;
    let browser = Browser::new();
    let mut seen = std::collections::HashSet::new();
    for path in ["/login", "/logout", "/", "/login?req=expired"] {
        let r = browser.get(&server.url(path)).await;
        let nonce = csp_nonce(&r);
        assert!(seen.insert(nonce.clone()), "a fresh nonce per response");
        let html = r.text().await.unwrap();
        assert!(
            html.contains(&format!("<style nonce=\"{nonce}\">")),
            "{path}: the stylesheet carries this response's nonce"
        );
        assert!(!html.contains(" style=\""), "{path}: no style attributes");
        for (i, _) in html.match_indices("<script") {
            assert!(
                html[i..].starts_with(&format!("<script nonce=\"{nonce}\">")),
                "{path}: every script carries the nonce"
            );
        }
    }
    // The OIDC form_post page: a nonce'd script, and a visible button for browsers without
    // JavaScript.
    let (_, challenge) = {
        let verifier = passerelle::web::random_token(32);
        use base64::Engine;
        let c = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(openssl::sha::sha256(verifier.as_bytes()));
        (verifier, c)
    };
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid"),
        ("response_mode", "form_post"),
        ("prompt", "none"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let r = browser.get(url.as_str()).await;
    assert_eq!(r.status(), 200);
    let nonce = csp_nonce(&r);
    let html = r.text().await.unwrap();
    assert!(
        html.contains(&format!(
            "<script nonce=\"{nonce}\">document.getElementById('autopost').submit();</script>"
        )),
        "{html}"
    );
    assert!(html.contains("<button type=\"submit\">Continue</button>"));
    assert!(html.contains("name=\"error\" value=\"login_required\""));
    // JSON answers carry the policy too.
    let r = reqwest::get(server.url("/.well-known/openid-configuration"))
        .await
        .unwrap();
    csp_nonce(&r);
}

#[tokio::test]
async fn hsts_on_every_response_when_the_public_url_is_https() {
    let server = start(|c| c.server.public_url = "https://idp.acme.test".into()).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in [
        ("GET", "/login"),
        ("GET", "/healthz"),
        ("GET", "/.well-known/openid-configuration"),
        ("GET", "/oidc/authorize?client_id=nobody"),
        ("POST", "/oidc/token"),
        ("GET", "/admin/keys"),
        ("GET", "/no-such-page"),
        ("GET", "/saml/metadata"),
    ] {
        let r = http
            .request(method.parse().unwrap(), server.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000; includeSubDomains"),
            "{method} {path} ({})",
            r.status()
        );
    }
}

#[tokio::test]
async fn metrics_take_the_admin_token_on_the_main_listener() {
    let server = start(|_| {}).await;
    let http = reqwest::Client::new();
    let r = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = http
        .get(server.url("/metrics"))
        .bearer_auth("wrong-token-wrong-token")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = http
        .get(server.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Without an admin token configured, /metrics is closed like the admin API.
    let closed = start(|c| c.admin.token = None).await;
    assert_eq!(
        reqwest::get(closed.url("/metrics")).await.unwrap().status(),
        403
    );
}

#[tokio::test]
async fn metrics_listen_serves_metrics_there_only_without_auth() {
    let server = start(|c| c.server.metrics_listen = Some("127.0.0.1:0".into())).await;
    let addr = server
        .running
        .as_ref()
        .unwrap()
        .metrics_addr
        .expect("a metrics listener");
    // Something to count first.
    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    browser
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let r = reqwest::get(format!("http://{addr}/metrics"))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("passerelle_signins_total"));
    assert_eq!(
        reqwest::get(format!("http://{addr}/login"))
            .await
            .unwrap()
            .status(),
        404,
        "nothing else there"
    );
    let r = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404, "not on the main listener, token or not");
}

/// A configured outbound client that cannot be built stops the start with a message naming what
/// to fix, instead of the server running on without it (here: the Lucca client migrations use
/// when JIT is off; before, the server started and every migration job failed).
#[tokio::test]
async fn a_client_that_cannot_be_built_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config();
    config.server.data_dir = dir.path().join("data");
    config.server.keys_dir = dir.path().join("keys");
    let start = |config: passerelle::config::Config| async move {
        passerelle::app::build_state(config, &passerelle::app::StartOptions::default())
            .await
            .err()
            .map(|e| e.to_string())
    };

    let mut lucca = config;
    lucca.lucca.base_url = Some("https://acme.ilucca.test".into());
    // Not a header value: the client that would carry it cannot be built.
    lucca.lucca.api_key = Some(passerelle::config::Secret::new(
        "0f8fad5b-d9cb-469f-a165\n-70867728950e",
    ));
    let error = start(lucca).await.expect("refused");
    assert!(error.contains("lucca.api_key"), "{error}");
}

/// Discovery and the JWKS are prepared bytes with a strong ETag: a client holding the current
/// version gets 304; a rotation changes the JWKS (and its ETag) at once.
#[tokio::test]
async fn discovery_and_jwks_answer_if_none_match_and_the_jwks_etag_follows_a_rotation() {
    let server = start(|_| {}).await;
    let http = reqwest::Client::new();
    for path in ["/.well-known/openid-configuration", "/oidc/jwks"] {
        let r = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], "application/json");
        assert_eq!(r.headers()["cache-control"], "public, max-age=300");
        let etag = r.headers()["etag"].to_str().unwrap().to_string();
        assert!(
            etag.starts_with('"') && etag.len() > 10,
            "a strong ETag: {etag}"
        );
        let body: Value = r.json().await.unwrap();
        assert!(body.is_object());
        let again = http.get(server.url(path)).send().await.unwrap();
        assert_eq!(again.headers()["etag"].to_str().unwrap(), etag, "stable");

        let cached = http
            .get(server.url(path))
            .header("if-none-match", &etag)
            .send()
            .await
            .unwrap();
        assert_eq!(cached.status(), 304, "{path}");
        assert_eq!(cached.headers()["etag"].to_str().unwrap(), etag);
        assert!(cached.text().await.unwrap().is_empty());
        let stale = http
            .get(server.url(path))
            .header("if-none-match", "\"an-old-version\"")
            .send()
            .await
            .unwrap();
        assert_eq!(stale.status(), 200);
    }

    let before = http.get(server.url("/oidc/jwks")).send().await.unwrap();
    let old_etag = before.headers()["etag"].to_str().unwrap().to_string();
    let r = http
        .post(server.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let after = http
        .get(server.url("/oidc/jwks"))
        .header("if-none-match", &old_etag)
        .send()
        .await
        .unwrap();
    assert_eq!(
        after.status(),
        200,
        "the held version is stale after a rotation"
    );
    assert_ne!(after.headers()["etag"].to_str().unwrap(), old_etag);
    let jwks: Value = after.json().await.unwrap();
    assert_eq!(
        jwks["keys"].as_array().unwrap().len(),
        2,
        "the staged key is published"
    );
}

#[tokio::test]
async fn metrics_have_help_text_and_http_latency_histograms_per_route() {
    let server = start(|_| {}).await;
    for _ in 0..3 {
        reqwest::get(server.url("/.well-known/openid-configuration"))
            .await
            .unwrap();
    }
    // A path nobody serves is not a route label of its own.
    reqwest::get(server.url("/no/such/path/1234"))
        .await
        .unwrap();
    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    browser
        .submit_login(&server.base, page, "alice@acme.test", "wrong")
        .await;
    let metrics = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let name = "passerelle_http_request_duration_seconds";
    assert!(metrics.contains(&format!("# HELP {name} ")), "{metrics}");
    assert!(
        metrics.contains(&format!("# TYPE {name} histogram")),
        "{metrics}"
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(&format!("{name}_bucket"))
                && l.contains(r#"route="/.well-known/openid-configuration""#)
                && l.contains(r#"method="GET""#)
                && l.contains(r#"status="200""#)),
        "{metrics}"
    );
    assert!(!metrics.contains("/no/such/path"), "{metrics}");
    // Every metric of ours says what it counts.
    for line in metrics
        .lines()
        .filter(|l| l.starts_with("# TYPE passerelle_"))
    {
        let metric = line.split_whitespace().nth(2).unwrap();
        assert!(
            metrics.contains(&format!("# HELP {metric} ")),
            "{metric} has no HELP text"
        );
    }
}
