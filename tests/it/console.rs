//! The admin console and the audit API over real HTTP (without a browser; the browser tests
//! are in `browser.rs`): who may open the console, how they sign in, CSRF on its forms, and
//! the audit API's times, details, filters, paging and errors.

use serde_json::Value;

use crate::common::*;

/// Bob (group `corp-hr`) administers; Alice does not.
pub fn with_admins(c: &mut passerelle::config::Config) {
    c.admin.groups = vec!["corp-hr".into()];
}

/// Sign in at the console through Passerelle's sign-in page; returns the console's home page.
pub async fn console_sign_in(
    server: &TestServer,
    browser: &Browser,
    user: &str,
    password: &str,
) -> reqwest::Response {
    let r = browser.get(&server.url("/admin/")).await;
    assert_eq!(r.status(), 303, "no session: to the sign-in page");
    let login = absolute(&server.base, &location(&r).unwrap());
    assert!(login.contains("/login?req="), "{login}");
    let page = browser.get(&login).await;
    assert!(page.status().is_success());
    let posted = browser
        .submit_login(&server.base, page, user, password)
        .await;
    assert_eq!(posted.status(), 303);
    let resume = location(&posted).unwrap();
    assert!(resume.starts_with("/admin/resume?req="), "{resume}");
    browser
        .follow(&server.base, &absolute(&server.base, &resume))
        .await
}

#[tokio::test]
async fn admins_sign_in_through_passerelle_and_others_get_a_clear_403() {
    let server = start(with_admins).await;
    // The bearer token opens the JSON API, not the pages.
    let r = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(server.url("/admin/console/audit"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(location(&r).unwrap().starts_with("/login?req="));

    let bob = Browser::new();
    let home = console_sign_in(&server, &bob, "bob@acme.test", "bob-password").await;
    assert_eq!(home.status(), 200);
    assert_eq!(home.url().path(), "/admin/");
    let html = home.text().await.unwrap();
    assert!(html.contains("Signed in as bob@acme.test"), "{html}");
    // A deep link survives the sign-in.
    let fresh = Browser::new();
    let r = fresh.get(&server.url("/admin/console/keys")).await;
    let page = fresh
        .get(&absolute(&server.base, &location(&r).unwrap()))
        .await;
    let posted = fresh
        .submit_login(&server.base, page, "bob@acme.test", "bob-password")
        .await;
    let landed = fresh
        .follow(
            &server.base,
            &absolute(&server.base, &location(&posted).unwrap()),
        )
        .await;
    assert_eq!(landed.url().path(), "/admin/console/keys");

    let alice = Browser::new();
    let r = alice.get(&server.url("/admin/")).await;
    let page = alice
        .get(&absolute(&server.base, &location(&r).unwrap()))
        .await;
    let posted = alice
        .submit_login(&server.base, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    let refused = alice
        .follow(
            &server.base,
            &absolute(&server.base, &location(&posted).unwrap()),
        )
        .await;
    assert_eq!(refused.status(), 403);
    let html = refused.text().await.unwrap();
    assert!(html.contains("not an administrator"), "{html}");
    assert!(
        html.contains("alice@acme.test"),
        "says who they are signed in as"
    );
    assert!(html.contains("action=\"/logout\""), "offers a sign-out");

    // A resume link cannot send the person elsewhere, and an unknown one is a clear page.
    let r = bob.get(&server.url("/admin/resume?req=unknown")).await;
    assert_eq!(r.status(), 400);
}

#[tokio::test]
async fn console_forms_need_the_csrf_token_and_actions_are_audited_with_the_admin() {
    let server = start(with_admins).await;
    let bob = Browser::new();
    let home = console_sign_in(&server, &bob, "bob@acme.test", "bob-password").await;
    let html = home.text().await.unwrap();
    let csrf = hidden(&html, "csrf_token").expect("csrf field");
    let keys_before = server.state().keys.status().len();
    let r = bob
        .http
        .post(server.url("/admin/console/keys/rotate"))
        .form(&[("csrf_token", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "a forged token changes nothing");
    assert_eq!(server.state().keys.status().len(), keys_before);
    let r = bob
        .http
        .post(server.url("/admin/console/keys/rotate"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(location(&r).unwrap(), "/admin/console/keys?done=staged");
    assert_eq!(server.state().keys.status().len(), keys_before + 1);

    let audit: Value = reqwest::Client::new()
        .get(server.url("/admin/audit?event=keys.rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["outcome"], "staged");
    assert_eq!(
        entry["subject"], "bob@acme.test",
        "the admin, not the token"
    );
    assert_eq!(entry["detail"]["admin"], "bob@acme.test");
}

#[tokio::test]
async fn the_audit_api_gives_rfc3339_times_json_details_filters_pages_and_json_errors() {
    let server = start(|_| {}).await;
    for (user, password) in [
        ("alice@acme.test", ALICE_PASSWORD),
        ("alice@acme.test", "wrong"),
        ("bob@acme.test", "bob-password"),
        ("alice@acme.test", ALICE_PASSWORD),
    ] {
        let b = Browser::new();
        let page = b.get(&server.url("/login")).await;
        b.submit_login(&server.base, page, user, password).await;
    }
    let http = reqwest::Client::new();
    let get = |query: &str| {
        let http = http.clone();
        let url = server.url(&format!("/admin/audit{query}"));
        async move {
            let r = http.get(url).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
            let status = r.status().as_u16();
            let kind = r
                .headers()
                .get("content-type")
                .map(|v| v.to_str().unwrap().to_string())
                .unwrap_or_default();
            (status, kind, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let (status, _, all) = get("?event=login").await;
    assert_eq!(status, 200, "{all}");
    let entries = all["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 4);
    let at = entries[0]["at"].as_str().expect("a string time");
    assert!(chrono::DateTime::parse_from_rfc3339(at).is_ok(), "{at}");
    assert!(
        entries
            .iter()
            .all(|e| e["detail"].is_object() || e["detail"].is_null()),
        "{all}"
    );

    let (_, _, failures) = get("?event=login&outcome=bad_credentials").await;
    assert_eq!(failures["entries"].as_array().unwrap().len(), 1);
    let (_, _, alice) = get("?event=login&outcome=success&subject=alice@acme.test").await;
    assert_eq!(alice["entries"].as_array().unwrap().len(), 2);
    let (_, _, future) = get("?since=2999-01-01").await;
    assert!(future["entries"].as_array().unwrap().is_empty());

    // Paging: two pages of two, the second from the first's `next`, then nothing more.
    let (_, _, first) = get("?event=login&limit=2").await;
    assert_eq!(first["entries"].as_array().unwrap().len(), 2);
    let next = first["next"].as_str().expect("a next page").to_string();
    assert!(
        next.starts_with("/admin/audit?") && next.contains("event=login"),
        "{next}"
    );
    let (_, _, second) = get(next.trim_start_matches("/admin/audit")).await;
    let ids = |v: &Value| {
        v["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["id"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(&second).len(), 2);
    assert!(
        ids(&first).iter().min() > ids(&second).iter().max(),
        "older entries on the next page"
    );
    assert!(second["next"].is_null(), "{second}");

    for (query, needle) in [
        ("?limit=0", "limit"),
        ("?limit=100000", "limit"),
        ("?before=abc", "before"),
        ("?since=last-week", "since"),
        ("?colour=red", "colour"),
    ] {
        let (status, kind, body) = get(query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert!(kind.starts_with("application/json"), "{query}: {kind}");
        assert!(
            body["error"].as_str().unwrap().contains(needle),
            "{query}: {body}"
        );
    }
    let r = http.get(server.url("/admin/audit")).send().await.unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test]
async fn the_audit_page_filters_and_exports_csv_with_formula_cells_neutralised() {
    let server = start(with_admins).await;
    // A username typed into the sign-in form lands in the log: make it a formula.
    let b = Browser::new();
    let page = b.get(&server.url("/login")).await;
    b.submit_login(&server.base, page, "=HYPERLINK(\"http://evil.test\")", "x")
        .await;
    let bob = Browser::new();
    console_sign_in(&server, &bob, "bob@acme.test", "bob-password").await;
    let page = bob
        .get(&server.url("/admin/console/audit?event=login&outcome=bad_credentials"))
        .await;
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("HYPERLINK"), "{html}");
    assert!(
        !html.contains("bob@acme.test</td>"),
        "only failures are listed"
    );
    let bad = bob.get(&server.url("/admin/console/audit?limit=abc")).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("limit=`abc`"));
    let csv = bob
        .get(&server.url("/admin/console/audit.csv?event=login&outcome=bad_credentials"))
        .await;
    assert_eq!(csv.status(), 200);
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = csv.text().await.unwrap();
    assert!(
        text.starts_with("id,at,event,outcome,subject,client,ip,detail"),
        "{text}"
    );
    assert!(!text.contains(",=HYPERLINK"), "{text}");
}

#[tokio::test]
async fn a_sensitive_action_on_an_old_sign_in_asks_for_the_password_again_then_works() {
    let server = start(|c| {
        with_admins(c);
        c.admin.fresh_sign_in = std::time::Duration::from_secs(1);
    })
    .await;
    let bob = Browser::new();
    let home = console_sign_in(&server, &bob, "bob@acme.test", "bob-password").await;
    let csrf = hidden(&home.text().await.unwrap(), "csrf_token").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let keys_before = server.state().keys.status().len();
    let rotate = || {
        bob.http
            .post(server.url("/admin/console/keys/rotate"))
            .form(&[("csrf_token", csrf.as_str())])
            .send()
    };
    let r = rotate().await.unwrap();
    assert_eq!(r.status(), 303);
    let login = location(&r).unwrap();
    assert!(
        login.starts_with("/login?req="),
        "sign in again first: {login}"
    );
    assert_eq!(
        server.state().keys.status().len(),
        keys_before,
        "nothing rotated yet"
    );
    // The sign-in page asks for the password although the session is live.
    let page = bob.get(&server.url(&login)).await;
    assert_eq!(page.status(), 200);
    let posted = bob
        .submit_login(&server.base, page, "bob@acme.test", "bob-password")
        .await;
    let back = bob
        .follow(
            &server.base,
            &absolute(&server.base, &location(&posted).unwrap()),
        )
        .await;
    assert_eq!(
        back.url().path(),
        "/admin/console/keys",
        "back to the page of the action"
    );
    let csrf_after = hidden(&back.text().await.unwrap(), "csrf_token").unwrap();
    let r = bob
        .http
        .post(server.url("/admin/console/keys/rotate"))
        .form(&[("csrf_token", csrf_after.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(location(&r).unwrap(), "/admin/console/keys?done=staged");
    assert_eq!(server.state().keys.status().len(), keys_before + 1);
}

/// The people page finds a person from part of a name or an email, among the directory and the
/// people who signed in, and lists them as links; a miss and a one-letter search say so.
#[tokio::test]
async fn the_people_page_finds_a_person_by_part_of_a_name_or_an_email() {
    let server = start(with_admins).await;
    let bob = Browser::new();
    console_sign_in(&server, &bob, "bob@acme.test", "bob-password").await;
    // Someone known only because they signed in (an upstream person, say).
    server
        .state()
        .store
        .person_revocations()
        .record_sign_in("upstream-zoe", "Zoe.Martinez@Acme.test", 1)
        .await
        .unwrap();
    let page = |q: &str| {
        let url = format!(
            "{}?{}",
            server.url("/admin/console/people"),
            serde_urlencoded::to_string([("email", q)]).unwrap()
        );
        let bob = &bob;
        async move {
            let r = bob.get(&url).await;
            assert_eq!(r.status(), 200, "{url}");
            r.text().await.unwrap()
        }
    };
    let html = page("MARTIN").await;
    assert!(html.contains("id=\"matches\""), "{html}");
    assert!(
        html.contains("people?email=alice%40acme.test\">alice@acme.test</a>")
            && html.contains("Alice Martin"),
        "the directory's Alice by her family name: {html}"
    );
    assert!(
        html.contains("zoe.martinez@acme.test"),
        "a person who signed in, by part of the email: {html}"
    );
    assert!(!html.contains("bob@acme.test\">"), "{html}");
    // An exact email shows the person, not a list.
    let html = page("alice@acme.test").await;
    assert!(html.contains("id=\"identity\"") && !html.contains("id=\"matches\""));
    // A mistyped domain: nobody with that email, and the people it may mean.
    let html = page("alice@acme.tes").await;
    assert!(html.contains("knows nobody with the email"), "{html}");
    assert!(html.contains("id=\"matches\"") && html.contains("alice@acme.test"));
    let html = page("zz-nobody").await;
    assert!(html.contains("matches “zz-nobody”"), "{html}");
    let html = page("a").await;
    assert!(html.contains("at least two letters"), "{html}");
}
