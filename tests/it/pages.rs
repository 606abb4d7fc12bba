//! The pages a person sees, in French and in English: the language follows `Accept-Language`,
//! else `[server] default_language`; `<html lang>` and `Vary` follow. The 404 page (and its JSON
//! twin for programs), the reference id in the page, the `X-Request-Id` header and the log.

use std::process::{Command, Stdio};

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, ACCEPT_LANGUAGE};

use crate::common::*;

/// A browser that sends this `Accept-Language` (none for `None`).
fn browser(lang: Option<&str>) -> Browser {
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, HeaderValue::from_static("text/html,*/*;q=0.8"));
    if let Some(lang) = lang {
        headers.insert(ACCEPT_LANGUAGE, HeaderValue::from_str(lang).unwrap());
    }
    Browser {
        http: reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .default_headers(headers)
            .build()
            .unwrap(),
    }
}

fn lang_of(html: &str) -> &str {
    let start = html.find("<html lang=\"").expect("<html lang>") + 12;
    &html[start..start + html[start..].find('"').unwrap()]
}

/// Fetch `path` with each language and check the page's `lang` and one phrase of each.
async fn in_both_languages(server: &TestServer, path: &str, en: &str, fr: &str) {
    for (accept, want_lang, phrase) in [
        (None, "en", en),
        (Some("en"), "en", en),
        (Some("en-GB,en;q=0.9"), "en", en),
        (Some("fr"), "fr", fr),
        (Some("fr-FR,fr;q=0.9,en;q=0.8"), "fr", fr),
        (Some("de-DE,*;q=0.1"), "en", en),
    ] {
        let r = browser(accept).get(&server.url(path)).await;
        let vary = r
            .headers()
            .get_all("vary")
            .iter()
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
            .collect::<Vec<_>>()
            .join(",");
        assert!(vary.contains("accept-language"), "{path}: Vary {vary}");
        let html = r.text().await.unwrap();
        assert_eq!(lang_of(&html), want_lang, "{path} with {accept:?}");
        assert!(html.contains(phrase), "{path} with {accept:?}: {html}");
    }
}

#[tokio::test]
async fn the_sign_in_logout_and_landing_pages_follow_accept_language() {
    let server = start(|_| {}).await;
    in_both_languages(&server, "/login", "<h1>Sign in</h1>", "<h1>Connexion</h1>").await;
    in_both_languages(&server, "/login", "Email or login", "E-mail ou identifiant").await;
    in_both_languages(&server, "/logout", "Sign out?", "Se déconnecter").await;
    in_both_languages(
        &server,
        "/",
        "OpenID Connect discovery",
        "Découverte OpenID Connect",
    )
    .await;
    // An error page: a sign-in request that does not exist (any more).
    in_both_languages(
        &server,
        "/login?req=gone",
        "This sign-in has expired",
        "Cette connexion a expiré",
    )
    .await;

    // Wrong password, in French; then signed in and out, in French.
    let b = browser(Some("fr"));
    let page = b.get(&server.url("/login")).await;
    let wrong = b
        .submit_login(&server.base, page, "alice@acme.test", "nope")
        .await;
    assert_eq!(wrong.status(), 401);
    let html = wrong.text().await.unwrap();
    assert!(html.contains("E-mail ou mot de passe incorrect."), "{html}");
    let page = b.get(&server.url("/login")).await;
    let ok = b
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(ok.status(), 303);
    let confirm = b.get(&server.url("/logout")).await.text().await.unwrap();
    assert!(
        confirm.contains("Vous êtes connecté en tant que <strong>alice@acme.test</strong>"),
        "{confirm}"
    );
    let csrf = hidden(&confirm, "csrf_token").unwrap();
    let done = b
        .http
        .post(server.url("/logout"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    let html = done.text().await.unwrap();
    assert_eq!(lang_of(&html), "fr");
    assert!(html.contains("Vous êtes déconnecté"), "{html}");
}

#[tokio::test]
async fn default_language_fr_serves_french_to_browsers_that_say_nothing() {
    let server = start(|c| c.server.default_language = "fr".into()).await;
    for (accept, lang, phrase) in [
        (None, "fr", "Connexion"),
        (Some("de"), "fr", "Connexion"),
        (Some("*"), "fr", "Connexion"),
        (Some("en-US"), "en", "Sign in"),
    ] {
        let html = browser(accept)
            .get(&server.url("/login"))
            .await
            .text()
            .await
            .unwrap();
        assert_eq!(lang_of(&html), lang, "{accept:?}");
        assert!(html.contains(phrase), "{accept:?}");
    }
}

#[tokio::test]
async fn the_oidc_form_post_and_saml_auto_post_pages_are_translated() {
    let server = start(|c| crate::saml::register_sp(c, false)).await;
    for (lang, want) in [("en", "Continuing to"), ("fr", "Redirection vers")] {
        // OIDC, response_mode=form_post.
        let b = browser(Some(lang));
        let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", "openid"),
            ("state", "st"),
            ("response_mode", "form_post"),
        ]);
        let page = b.follow(&server.base, url.as_str()).await;
        let posted = b
            .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
            .await;
        let next = absolute(&server.base, &location(&posted).unwrap());
        let html = b.follow(&server.base, &next).await.text().await.unwrap();
        assert_eq!(lang_of(&html), lang);
        assert!(html.contains(want), "{html}");
        assert!(html.contains("name=\"code\""), "{html}");

        // SAML, IdP-initiated: the same browser is signed in now.
        let url = server.url(&format!(
            "/saml/idp-init?sp={}",
            url::form_urlencoded::byte_serialize(crate::saml::SP_ENTITY.as_bytes())
                .collect::<String>()
        ));
        let html = b.follow(&server.base, &url).await.text().await.unwrap();
        assert_eq!(lang_of(&html), lang);
        assert!(html.contains(want), "{html}");
        assert!(html.contains("name=\"SAMLResponse\""), "{html}");
    }
}

/// The reference at the bottom of an error page.
fn reference_in(html: &str) -> Option<String> {
    let marker = html.find("reference: ").map(|i| i + 11).or_else(|| {
        html.find("référence\u{a0}: ")
            .map(|i| i + "référence\u{a0}: ".len())
    })?;
    Some(
        html[marker..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || "-_.".contains(*c))
            .collect(),
    )
}

#[tokio::test]
async fn an_unknown_path_gets_a_page_for_people_and_json_for_programs() {
    let server = start(|_| {}).await;
    for (lang, title) in [("en", "Page not found"), ("fr", "Page introuvable")] {
        let r = browser(Some(lang)).get(&server.url("/no/such/page")).await;
        assert_eq!(r.status(), 404);
        assert!(r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        assert_eq!(id.len(), 8, "{id}");
        let html = r.text().await.unwrap();
        assert_eq!(lang_of(&html), lang);
        assert!(html.contains(title), "{html}");
        assert_eq!(reference_in(&html).as_deref(), Some(id.as_str()), "{html}");
    }

    let http = reqwest::Client::new();
    for (path, accept) in [
        ("/admin/no-such-thing", None),
        ("/oauth2/nothing", Some("*/*")),
        ("/lucca/nope", None),
        ("/anything", Some("application/json")),
    ] {
        let mut req = http.get(server.url(path));
        if let Some(accept) = accept {
            req = req.header(ACCEPT, accept);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 404, "{path}");
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_found", "{path}");
        assert_eq!(body["request_id"], id, "{path}");
    }
}

#[tokio::test]
async fn an_incoming_request_id_is_kept_only_from_a_trusted_proxy() {
    let direct = start(|_| {}).await;
    let r = reqwest::Client::new()
        .get(direct.url("/healthz"))
        .header("x-request-id", "from-the-client")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "from-the-client");

    let proxied = start(|c| c.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await;
    let http = reqwest::Client::new();
    let r = http
        .get(proxied.url("/login?req=gone"))
        .header("x-request-id", "edge-42.a_b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "edge-42.a_b");
    let html = r.text().await.unwrap();
    assert_eq!(reference_in(&html).as_deref(), Some("edge-42.a_b"));
    // Not a sane id (spaces could forge a log line): replaced.
    let r = http
        .get(proxied.url("/healthz"))
        .header("x-request-id", "x status=200")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"].len(), 8);
}

/// A refused person (a leaver) reads why in French, with a mail to the support contact naming
/// the refusal and the reference, and the way back to Lucca; no "Try again".
#[cfg(feature = "simulator")]
#[tokio::test]
async fn a_refusal_page_offers_a_mail_to_support_and_the_way_back_to_lucca() {
    use passerelle::config::JitMode;
    let sim = crate::jit::simulator().await;
    let server = start(|c| {
        crate::jit::with_lucca(c, &sim, JitMode::CreateAndUpdate);
        c.lucca.support_contact = "votre service RH (rh@acme.test)".into();
    })
    .await;
    for (lang, why, write, back, retry) in [
        (
            "fr",
            "a pris fin le 31 décembre 2022",
            "Écrire à votre service RH (rh@acme.test)",
            "Retour à Lucca",
            "Réessayer",
        ),
        (
            "en",
            "ended on 31 December 2022",
            "Write to votre service RH (rh@acme.test)",
            "Back to Lucca",
            "Try again",
        ),
    ] {
        let b = browser(Some(lang));
        let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
        url.query_pairs_mut().extend_pairs([
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", "openid"),
            ("state", "st"),
        ]);
        let page = b.follow(&server.base, url.as_str()).await;
        let posted = b
            .submit_login(
                &server.base,
                page,
                "david.petit@acme.test",
                "David-password",
            )
            .await;
        let next = absolute(&server.base, &location(&posted).unwrap());
        let r = b.follow(&server.base, &next).await;
        assert_eq!(r.status(), 403);
        let id = r.headers()["x-request-id"].to_str().unwrap().to_string();
        let html = r.text().await.unwrap();
        assert_eq!(lang_of(&html), lang);
        assert!(html.contains(why), "{html}");
        assert!(html.contains(write), "{html}");
        assert!(html.contains(back), "{html}");
        // minijinja escapes `/` in attributes.
        let lucca = sim.base_url().replace('/', "&#x2f;");
        assert!(html.contains(&format!("href=\"{lucca}\"")), "{html}");
        assert!(!html.contains(retry), "no retry on a refusal: {html}");
        let mailto = html
            .split("href=\"")
            .find(|s| s.starts_with("mailto:"))
            .map(|s| &s[..s.find('"').unwrap()])
            .expect("a mailto link");
        assert!(
            mailto.starts_with("mailto:rh@acme.test?subject="),
            "{mailto}"
        );
        assert!(
            mailto.contains(&id),
            "the reference in the subject: {mailto}"
        );
        assert!(!mailto.contains(' '), "{mailto}");
    }
}

/// The access log: one line per request on stderr at info, with the request id and without
/// the query string (it carries codes and state), in text and in JSON, never with ANSI codes.
#[test]
fn the_access_log_has_one_line_per_request_with_its_id_and_no_query() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("passerelle.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\nlog_format = \"{format}\"\n"
            ),
        )
        .unwrap();
        let log = dir.path().join("stderr.log");
        let mut command = Command::new(env!("CARGO_BIN_EXE_passerelle"));
        for var in passerelle::config::ENV_OVERRIDES {
            command.env_remove(var);
        }
        let mut child = command
            .args(["serve", "--config"])
            .arg(&config)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let mut up = false;
        while !up && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(200));
            up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
        }
        let answer = if up {
            http_get(port, "/login?code=SECRET-CODE&state=SECRET-STATE")
        } else {
            String::new()
        };
        let missing = if up {
            http_get(port, "/no/such/page?token=SECRET-TOKEN")
        } else {
            String::new()
        };
        let probe = if up {
            http_get(port, "/healthz")
        } else {
            String::new()
        };
        let _ = Command::new("kill").arg(child.id().to_string()).status();
        let _ = child.wait();
        let stderr = std::fs::read_to_string(&log).unwrap();
        assert!(up, "the server never listened: {stderr}");
        let id = header_in(&answer, "x-request-id").expect("X-Request-Id");
        let probe_id = header_in(&probe, "x-request-id").expect("X-Request-Id");
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&id)).collect();
        assert_eq!(
            lines.len(),
            1,
            "{format}: one line for the request: {stderr}"
        );
        let line = lines[0];
        assert!(
            !stderr.contains("SECRET"),
            "{format}: no query string: {stderr}"
        );
        assert!(!stderr.contains('\u{1b}'), "{format}: no ANSI: {stderr:?}");
        assert!(
            !stderr.contains(&probe_id),
            "{format}: probes are logged at debug only: {stderr}"
        );
        // An error: the reference the page shows is the header's, and the log's lines of that
        // request (the error page's and the access line) carry it.
        let missing_id = header_in(&missing, "x-request-id").expect("X-Request-Id");
        assert_eq!(reference_in(&missing).as_deref(), Some(missing_id.as_str()));
        let lines: Vec<&str> = stderr.lines().filter(|l| l.contains(&missing_id)).collect();
        assert_eq!(lines.len(), 2, "{format}: {stderr}");
        assert!(lines.iter().any(|l| l.contains("error page")), "{lines:?}");
        assert!(lines.iter().any(|l| l.contains("404")), "{lines:?}");
        match format {
            "json" => {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let f = &v["fields"];
                assert_eq!(v["level"], "INFO", "{line}");
                assert_eq!(f["method"], "GET", "{line}");
                assert_eq!(f["path"], "/login", "{line}");
                assert_eq!(f["status"], 200, "{line}");
                assert_eq!(f["request_id"], id.as_str(), "{line}");
                assert!(f["latency_ms"].as_f64().is_some(), "{line}");
            }
            _ => {
                for needle in [
                    "INFO",
                    "method=GET",
                    "path=/login",
                    "status=200",
                    "latency_ms=",
                ] {
                    assert!(line.contains(needle), "{needle} in {line}");
                }
            }
        }
    }
}

/// A plain HTTP/1.1 GET (the test is synchronous, like the other binary tests); the answer's
/// head and body as text.
fn http_get(port: u16, path: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

fn header_in(answer: &str, name: &str) -> Option<String> {
    answer.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
    })
}

#[tokio::test]
async fn the_choice_of_company_sign_in_and_its_errors_are_translated() {
    let server = start(|c| {
        c.upstreams = vec![passerelle::config::UpstreamConfig {
            name: "corp".into(),
            // Never reached: the page lists it, the callback below fails before any call.
            issuer: "http://127.0.0.1:9".into(),
            client_id: "bridge".into(),
            client_secret: Some(passerelle::config::Secret::new("bridge-secret-0123456789")),
            ..Default::default()
        }];
    })
    .await;
    in_both_languages(
        &server,
        "/login",
        "Continue with corp",
        "Continuer avec corp",
    )
    .await;
    in_both_languages(
        &server,
        "/login/upstream/corp/callback?state=unknown&code=x",
        "This sign-in attempt is not known to this browser",
        "Ce navigateur ne connaît pas cette tentative de connexion",
    )
    .await;
    in_both_languages(
        &server,
        "/login/upstream/nobody",
        "Unknown sign-in option",
        "Option de connexion inconnue",
    )
    .await;
}
