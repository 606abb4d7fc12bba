//! PostgreSQL: the test harness itself, then the backend (the conformance suite runs as the
//! library's unit tests; two nodes on one database run here).

use sqlx::Connection;

use crate::common::{pg, start, Browser, TestServer, LUCCA_CALLBACK};
use crate::oidc::{exchange, lucca_code};

/// The harness hands out a fresh, empty database that a password login reaches over TCP.
#[tokio::test]
async fn the_harness_gives_each_test_a_fresh_database() {
    let Some(a) = pg::database().await else {
        return;
    };
    let b = pg::required_database().await;
    assert_ne!(a, b);
    let mut conn = sqlx::PgConnection::connect(&a).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0);
    let wrong = a.replace("throwaway-test-password", "wrong");
    if wrong != a {
        assert!(sqlx::PgConnection::connect(&wrong).await.is_err());
    }
}

/// Two nodes on one fresh database, sharing the public URL (as behind a load balancer): node B
/// takes A's `public_url`; the key ring is the database's, sealed under the same KEK.
async fn two_nodes() -> Option<(TestServer, TestServer)> {
    two_nodes_with(|_| {}).await
}

/// The settings every node on `url` needs: the database and the shared key-encryption key.
pub(crate) fn on_database(c: &mut passerelle::config::Config, url: &str) {
    c.store.url = Some(passerelle::config::Secret::new(url));
    c.keys.encryption_key = Some(passerelle::config::Secret::new(pg::ENCRYPTION_KEY));
}

async fn two_nodes_with(
    tweak: impl Fn(&mut passerelle::config::Config),
) -> Option<(TestServer, TestServer)> {
    let url = pg::database().await?;
    let a = start(|c| {
        tweak(c);
        on_database(c, &url);
    })
    .await;
    let issuer = a.base.clone();
    let b = start(|c| {
        tweak(c);
        on_database(c, &url);
        c.server.public_url = issuer;
    })
    .await;
    Some((a, b))
}

/// A sign-in started on A (authorize, sign-in page) is finished on B (the form post, the
/// code), and the code is exchanged on A; the same code then fails on B, revoking the grant.
#[tokio::test]
async fn a_sign_in_started_on_one_node_finishes_on_another() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    assert_ne!(a.state().store.node_id(), b.state().store.node_id());
    let browser = Browser::new();
    let (verifier, challenge) = crate::oidc::pkce_pair();
    let url = crate::oidc::authorize_url(
        &a,
        &[
            ("response_type", "code"),
            ("client_id", "lucca"),
            ("redirect_uri", LUCCA_CALLBACK),
            ("scope", "openid email"),
            ("state", "st"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ],
    );
    let page = browser.follow(&a.base, &url).await;
    assert_eq!(page.url().path(), "/login");
    // The form is posted to B: its CSRF token and pending request are in the shared store.
    let posted = browser
        .submit_login(
            &b.base,
            page,
            "alice@acme.test",
            crate::common::ALICE_PASSWORD,
        )
        .await;
    assert_eq!(posted.status(), 303, "B accepts the form A served");
    let next = crate::common::absolute(
        &b.base,
        &crate::common::location(&posted).expect("location"),
    );
    let next = next.replace(&a.base, &b.base);
    let done = browser.follow(&b.base, &next).await;
    let redirect = crate::common::location(&done).expect("redirect to the client");
    assert!(redirect.starts_with(LUCCA_CALLBACK), "{redirect}");
    let code = crate::common::query(&redirect)["code"].clone();

    let (status, tokens) = exchange(&a, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let (status, _) = crate::oidc::userinfo(&b, &access).await;
    assert_eq!(status, 200, "B honours A's access token");

    let (status, body) = exchange(&b, &code, &verifier).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = crate::oidc::userinfo(&a, &access).await;
    assert_eq!(status, 401, "the replay on B revoked the grant on A too");
}

/// The same code sent to both nodes at once: one spends it, the other is a replay, and a replay
/// stops the grant (before it exists, or by revoking it): nobody keeps tokens from that code.
#[tokio::test]
async fn a_code_sent_to_two_nodes_at_once_is_spent_once() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&a, &browser, "openid").await;
    let (x, y) = tokio::join!(
        exchange(&a, &code, &verifier),
        exchange(&b, &code, &verifier)
    );
    let issued: Vec<&serde_json::Value> = [&x, &y]
        .into_iter()
        .filter(|(status, _)| *status == 200)
        .map(|(_, body)| body)
        .collect();
    assert!(issued.len() <= 1, "{x:?} {y:?}");
    let replays = [&x, &y]
        .into_iter()
        .filter(|(status, body)| *status == 400 && body["error"] == "invalid_grant")
        .count();
    assert_eq!(issued.len() + replays, 2, "{x:?} {y:?}");
    assert!(replays >= 1, "{x:?} {y:?}");
    for body in issued {
        let access = body["access_token"].as_str().unwrap();
        for node in [&a, &b] {
            let (status, _) = crate::oidc::userinfo(node, access).await;
            assert_eq!(status, 401, "the family is revoked on every node");
        }
    }
}

/// `passerelle check` connects to the configured database: a wrong password is an error on
/// `store.url` with the server's reason, and the password is not in the output.
#[tokio::test]
async fn check_connects_to_the_database_and_never_prints_the_password() {
    let Some(url) = pg::database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    let run = |url: &str| {
        std::fs::write(
            &path,
            format!(
                "[server]\ndata_dir = \"{0}/data\"\nkeys_dir = \"{0}/keys\"\n[store]\nurl = \"{url}\"\n\
                 [keys]\nencryption_key = \"{1}\"\n",
                dir.path().display(),
                pg::ENCRYPTION_KEY
            ),
        )
        .unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"));
        for var in passerelle::config::ENV_OVERRIDES {
            cmd.env_remove(var);
        }
        let out = cmd.args(["check", "--config"]).arg(&path).output().unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let wrong = url.replace(pg::PASSWORD, "wrong-password-xyz");
    let text = run(&wrong);
    assert!(text.contains("error: store.url:"), "{text}");
    assert!(text.contains("password authentication failed"), "{text}");
    assert!(!text.contains("wrong-password-xyz"), "{text}");
    let text = run(&url);
    assert!(!text.contains("store.url"), "{text}");
    assert!(!text.contains(pg::PASSWORD), "{text}");
    let text = run("mysql://u:secret-x@h/db");
    assert!(
        text.contains("error: store.url:") && !text.contains("secret-x"),
        "{text}"
    );
}

async fn refresh(node: &TestServer, token: &str) -> (u16, serde_json::Value) {
    let form = [("grant_type", "refresh_token"), ("refresh_token", token)];
    crate::oidc::token_request(node, &form, Some(("lucca", crate::common::LUCCA_SECRET))).await
}

/// A refresh token rotated on A and retried on B within the grace window gets A's answer.
#[tokio::test]
async fn a_refresh_retried_on_another_node_within_the_grace_gets_the_same_answer() {
    let Some((a, b)) =
        two_nodes_with(|c| c.oidc.refresh_grace = std::time::Duration::from_secs(30)).await
    else {
        return;
    };
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&a, &browser, "openid offline_access").await;
    let (_, first) = exchange(&a, &code, &verifier).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let (status, on_a) = refresh(&a, &r1).await;
    assert_eq!(status, 200, "{on_a}");
    let (status, on_b) = refresh(&b, &r1).await;
    assert_eq!(status, 200, "within the grace window on B: {on_b}");
    assert_eq!(on_b["refresh_token"], on_a["refresh_token"], "A's answer");
    let r2 = on_a["refresh_token"].as_str().unwrap();
    let (status, _) = refresh(&b, r2).await;
    assert_eq!(status, 200, "B rotates the token A issued");
}

/// Without a grace window, a refresh token rotated on A and replayed on B is reuse: B refuses
/// it and revokes the family, which A then refuses too.
#[tokio::test]
async fn a_refresh_replayed_on_another_node_revokes_the_family_everywhere() {
    let Some((a, b)) = two_nodes_with(|c| c.oidc.refresh_grace = std::time::Duration::ZERO).await
    else {
        return;
    };
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&a, &browser, "openid offline_access").await;
    let (_, first) = exchange(&a, &code, &verifier).await;
    let r1 = first["refresh_token"].as_str().unwrap().to_string();
    let (status, on_a) = refresh(&a, &r1).await;
    assert_eq!(status, 200, "{on_a}");
    let (status, body) = refresh(&b, &r1).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let (status, _) = refresh(&a, on_a["refresh_token"].as_str().unwrap()).await;
    assert_eq!(
        status, 400,
        "the new token of the family is revoked on A too"
    );
    let (status, _) = crate::oidc::userinfo(&a, on_a["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 401);
}

/// `passerelle store migrate --to`: an SQLite install with a signed-in person, tokens and an
/// audit log is copied into an empty PostgreSQL database; a node on that database then honours
/// the refresh token issued on SQLite. A second run refuses the now non-empty database.
#[tokio::test]
async fn store_migrate_copies_an_sqlite_install_into_postgres() {
    let Some(url) = pg::database().await else {
        return;
    };
    let mut lite = start(|_| {}).await;
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&lite, &browser, "openid offline_access").await;
    let (status, tokens) = exchange(&lite, &code, &verifier).await;
    assert_eq!(status, 200);
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();
    let audit_before = lite
        .state()
        .store
        .audit()
        .recent(1000, None)
        .await
        .unwrap()
        .len();
    let (data_dir, keys_dir) = (
        lite.state().config.server.data_dir.clone(),
        lite.state().config.server.keys_dir.clone(),
    );
    let kid = lite.state().keys.signer().kid.clone();
    lite.running.take().unwrap().stop().await;

    let config = lite.dir.path().join("p.toml");
    std::fs::write(
        &config,
        format!("[server]\ndata_dir = \"{}\"\n", data_dir.display()),
    )
    .unwrap();
    let run = || {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"));
        for var in passerelle::config::ENV_OVERRIDES {
            cmd.env_remove(var);
        }
        cmd.args(["store", "migrate", "--to", &url, "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let out = run();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(pg::PASSWORD), "{text}");
    assert!(text.contains("refresh_tokens"), "{text}");

    // The keys move with `keys import`: the nodes go on signing with the single node's key.
    let keys_config = lite.dir.path().join("keys.toml");
    std::fs::write(
        &keys_config,
        format!(
            "[server]\nkeys_dir = \"{}\"\n[store]\nurl = \"{url}\"\n[keys]\nencryption_key = \"{}\"\n",
            keys_dir.display(),
            pg::ENCRYPTION_KEY
        ),
    )
    .unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_passerelle"));
    for var in passerelle::config::ENV_OVERRIDES {
        cmd.env_remove(var);
    }
    let out = cmd
        .args(["keys", "import", "--config"])
        .arg(&keys_config)
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && text.contains(&kid), "{text}");

    let target = url.clone();
    let node = start(move |c| on_database(c, &target)).await;
    assert_eq!(node.state().keys.signer().kid, kid);
    let audit_after = node
        .state()
        .store
        .audit()
        .recent(1000, None)
        .await
        .unwrap()
        .len();
    assert!(
        audit_after >= audit_before && audit_before > 0,
        "{audit_before} {audit_after}"
    );
    let (status, body) = refresh(&node, &refresh_token).await;
    assert_eq!(
        status, 200,
        "the SQLite refresh token works on PostgreSQL: {body}"
    );
    node.state()
        .store
        .audit()
        .record(passerelle::store::AuditEvent {
            event: "after",
            outcome: "ok",
            ..Default::default()
        })
        .await
        .unwrap();

    let out = run();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(text.contains("not empty"), "{text}");
}

/// A SAML request answered on A is a replay on B.
#[tokio::test]
async fn a_saml_request_answered_on_one_node_is_refused_on_another() {
    use crate::saml::{
        assert_error_page, authn_request, new_request_id, posted, redirect_url, register_sp,
        through_login, SP_ACS, SP_ENTITY,
    };
    let Some((a, b)) = two_nodes_with(|c| register_sp(c, false)).await else {
        return;
    };
    let browser = Browser::new();
    let id = new_request_id();
    // The request names the cluster's one public URL (A's, which B serves too).
    let xml = authn_request(&a.base, &id, SP_ENTITY, SP_ACS, "");
    let on_a = redirect_url(&a.base, &xml, None, true);
    let post = posted(through_login(&browser, &a.base, &on_a).await).await;
    assert!(post.xml.contains(&format!(r#"InResponseTo="{id}""#)));
    let on_b = on_a.replace(&a.base, &b.base);
    assert_error_page(browser.get(&on_b).await).await;

    // Not because B refuses A's requests: a new one, sent to B, is answered (same session).
    let fresh = new_request_id();
    let xml = authn_request(&a.base, &fresh, SP_ENTITY, SP_ACS, "");
    let post =
        posted(through_login(&browser, &b.base, &redirect_url(&b.base, &xml, None, true)).await)
            .await;
    assert!(post.xml.contains(&format!(r#"InResponseTo="{fresh}""#)));
}

/// A session started on A is a session on B (no sticky sessions); a logout on A ends it on B.
#[tokio::test]
async fn a_logout_on_one_node_holds_on_another() {
    let Some((a, b)) = two_nodes().await else {
        return;
    };
    let browser = Browser::new();
    let (code, verifier) = lucca_code(&a, &browser, "openid").await;
    let (_, body) = exchange(&a, &code, &verifier).await;
    let id_token = body["id_token"].as_str().unwrap();
    let silent = crate::oidc::silent_authorize_url;
    let r = browser.get(&silent(&b)).await;
    let to = crate::common::location(&r).unwrap_or_default();
    assert!(
        to.starts_with(LUCCA_CALLBACK) && to.contains("code="),
        "B knows A's session: {to}"
    );

    let url = format!(
        "{}?id_token_hint={id_token}&post_logout_redirect_uri=https://acme.ilucca.test/&state=bye",
        a.url("/oidc/logout")
    );
    let r = browser.get(&url).await;
    assert_eq!(
        crate::common::location(&r).as_deref(),
        Some("https://acme.ilucca.test/?state=bye")
    );
    let r = browser.get(&silent(&b)).await;
    let to = crate::common::location(&r).unwrap_or_default();
    assert!(to.contains("error=login_required"), "ended on B too: {to}");
}

/// One outbox update, both nodes delivering what is due at the same moment: one PUT reaches
/// Lucca. (The row is queued through the store, so neither node's worker is woken for it: both
/// deliveries below run at once.)
#[cfg(feature = "simulator")]
#[tokio::test]
async fn an_outbox_update_is_sent_once_by_two_nodes_delivering_at_once() {
    use passerelle::config::{JitMode, Secret};
    use passerelle::lucca::simulator::{spawn, SimulatorConfig};
    let sim = spawn(SimulatorConfig::default()).await.unwrap();
    let Some((a, b)) = two_nodes_with(|c| {
        c.lucca.base_url = Some(sim.base_url().into());
        c.lucca.api_key = Some(Secret::new(sim.api_key()));
        c.lucca.jit = JitMode::UpdateOnly;
    })
    .await
    else {
        return;
    };
    // Each worker makes a first pass at start, then sleeps (nothing is due): let them.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    a.state()
        .store
        .outbox()
        .enqueue(
            "alice@acme.test",
            2,
            r#"{"job_title":"Principal Engineer"}"#,
        )
        .await
        .unwrap();
    let (ja, jb) = (
        a.state().provisioning.clone().unwrap(),
        b.state().provisioning.clone().unwrap(),
    );
    let now = passerelle::store::now();
    let (x, y) = tokio::join!(ja.deliver_due(now), jb.deliver_due(now));
    // One of them claimed it (unless a worker of a slow test machine woke first: the row is
    // then delivered once all the same, which is what is asserted below).
    assert!(x.unwrap() + y.unwrap() <= 1, "never claimed by both");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sim.user(2).unwrap()["jobTitle"] != "Principal Engineer" {
        assert!(std::time::Instant::now() < deadline, "not delivered");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let puts: Vec<_> = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert_eq!(sim.user(2).unwrap()["jobTitle"], "Principal Engineer");
    let rows = b.state().store.outbox().recent(None, 10).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.status.as_str(), r.attempts))
            .collect::<Vec<_>>(),
        [("done", 1)]
    );
}

/// A node that claimed an outbox update and stalled (here: claimed, never delivered) loses it
/// once its lease runs out: B delivers it, once, and A's late answer is refused.
#[cfg(feature = "simulator")]
#[tokio::test]
async fn an_outbox_update_claimed_by_a_stalled_node_is_delivered_by_another() {
    use passerelle::config::{JitMode, Secret};
    use passerelle::lucca::simulator::{spawn, SimulatorConfig};
    let sim = spawn(SimulatorConfig::default()).await.unwrap();
    let Some((a, b)) = two_nodes_with(|c| {
        c.lucca.base_url = Some(sim.base_url().into());
        c.lucca.api_key = Some(Secret::new(sim.api_key()));
        c.lucca.jit = JitMode::UpdateOnly;
        c.store.lease = std::time::Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    // Each worker makes a first pass at start, then sleeps (nothing is due): let them.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let outbox_a = a.state().store.outbox().clone();
    outbox_a
        .enqueue(
            "alice@acme.test",
            2,
            r#"{"job_title":"Principal Engineer"}"#,
        )
        .await
        .unwrap();
    let claimed = outbox_a.due(passerelle::store::now(), 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "A claims the row, then stalls");
    let jb = b.state().provisioning.clone().unwrap();
    assert_eq!(
        jb.deliver_due(passerelle::store::now()).await.unwrap(),
        0,
        "A's"
    );
    // Past A's lease (whole seconds: its deadline, plus one, plus a margin). B's own worker may
    // get there first; either way B delivers it.
    tokio::time::sleep(std::time::Duration::from_millis(4200)).await;
    jb.deliver_due(passerelle::store::now()).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while sim.user(2).unwrap()["jobTitle"] != "Principal Engineer" {
        assert!(std::time::Instant::now() < deadline, "B did not deliver");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let row = &claimed[0];
    assert!(
        !outbox_a.mark_delivered(row.id, row.version).await.unwrap(),
        "A's late answer is refused"
    );
    let puts = sim
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .count();
    assert_eq!(puts, 1);
    let rows = b.state().store.outbox().recent(None, 10).await.unwrap();
    assert_eq!(
        rows.iter()
            .map(|r| (r.status.as_str(), r.attempts))
            .collect::<Vec<_>>(),
        [("done", 1)]
    );
}
