//! Bridge mode: a second Passerelle as the upstream (the whole chain), and a fake upstream for
//! the refusals.

use passerelle::config::{ClientConfig, Secret, UnmappedGroups, UpstreamConfig};
use serde_json::{json, Value};

use crate::common::fake_idp::{self, Knobs};
use crate::common::*;

const BRIDGE_SECRET: &str = "bridge-client-secret-0123456789";

/// Follow redirects while they stay on one of `bases`.
async fn follow_across(browser: &Browser, bases: &[&str], url: &str) -> reqwest::Response {
    let mut url = url.to_string();
    for _ in 0..20 {
        let r = browser.get(&url).await;
        let Some(next) = location(&r).filter(|_| r.status().is_redirection()) else {
            return r;
        };
        let origin = bases
            .iter()
            .find(|b| url.starts_with(**b))
            .copied()
            .unwrap_or(bases[0]);
        let next = absolute(origin, &next);
        if !bases.iter().any(|b| next.starts_with(b)) {
            return r;
        }
        url = next;
    }
    panic!("redirect loop");
}

fn upstream_config(name: &str, issuer: &str) -> UpstreamConfig {
    UpstreamConfig {
        name: name.into(),
        issuer: issuer.into(),
        client_id: "bridge".into(),
        client_secret: Some(Secret::new(BRIDGE_SECRET)),
        scopes: vec![
            "openid".into(),
            "profile".into(),
            "email".into(),
            "groups".into(),
        ],
        allowed_email_domains: vec!["acme.test".into()],
        ..Default::default()
    }
}

/// Two servers: an upstream Passerelle (local directory, raw groups passed through) and a
/// bridge with no local users whose only way in is that upstream. `tweak` adjusts the bridge.
async fn chain(tweak: impl FnOnce(&mut passerelle::config::Config)) -> (TestServer, TestServer) {
    let (ul, ubase) = bind().await;
    let (bl, bbase) = bind().await;
    let callback = format!("{bbase}/login/upstream/corp/callback");
    let upstream = start_bound(ul, ubase.clone(), |c| {
        c.login.session_cookie = "upstream_session".into();
        c.role_mapping.clear();
        c.claims.unmapped_groups = UnmappedGroups::PassThrough;
        c.oidc.clients.push(ClientConfig {
            client_id: "bridge".into(),
            client_secret: Some(Secret::new(BRIDGE_SECRET)),
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        });
    })
    .await;
    let bridge = start_bound(bl, bbase, |c| {
        c.directory.users.clear();
        let mut upstream = upstream_config("corp", &ubase);
        upstream.use_userinfo = true;
        c.upstreams = vec![upstream];
        tweak(c);
    })
    .await;
    (upstream, bridge)
}

#[tokio::test]
async fn the_whole_chain_rp_to_bridge_to_upstream_and_back() {
    let (upstream, bridge) = chain(|_| {}).await;
    let (ubase, bbase) = (upstream.base.clone(), bridge.base.clone());

    let browser = Browser::new();
    let (verifier, challenge) = {
        use base64::Engine;
        let v = passerelle::web::random_token(32);
        let c = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(openssl::sha::sha256(v.as_bytes()));
        (v, c)
    };
    let mut url = url::Url::parse(&bridge.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid profile email groups"),
        ("state", "chain"),
        ("nonce", "n1"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ]);
    let bases = [bbase.as_str(), ubase.as_str()];
    let page = follow_across(&browser, &bases, url.as_str()).await;
    assert!(
        page.url().as_str().starts_with(&format!("{ubase}/login")),
        "the upstream's sign-in page: {}",
        page.url()
    );
    let posted = browser
        .submit_login(&ubase, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(posted.status(), 303);
    let back = follow_across(
        &browser,
        &bases,
        &absolute(&ubase, &location(&posted).unwrap()),
    )
    .await;
    let to_client = location(&back).expect("redirect to the RP");
    assert!(to_client.starts_with(LUCCA_CALLBACK), "{to_client}");
    let code = query(&to_client)["code"].clone();

    let r = reqwest::Client::new()
        .post(bridge.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", LUCCA_CALLBACK),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let claims = jwt_payload(body["id_token"].as_str().unwrap());
    assert_eq!(claims["iss"], bbase);
    assert_eq!(claims["email"], "alice@acme.test");
    assert_eq!(
        claims["department"], "Engineering",
        "attributes come from the upstream identity"
    );
    assert_eq!(
        claims["groups"],
        json!(["validateur_n1", "collaborateur"]),
        "the bridge's table maps the upstream's groups"
    );
    assert_eq!(claims["amr"], json!(["fed"]));
    assert!(
        claims["sub"].as_str().unwrap().starts_with("up-"),
        "linked by (issuer, subject), not by email"
    );
    drop(upstream);
}

async fn bridge_to_fake(
    tweak: impl FnOnce(&mut UpstreamConfig),
) -> (TestServer, fake_idp::FakeIdp) {
    let idp = fake_idp::start().await;
    let mut upstream = upstream_config("fake", idp.base());
    tweak(&mut upstream);
    let server = start(|c| c.upstreams = vec![upstream]).await;
    (server, idp)
}

async fn attempt(server: &TestServer, idp: &fake_idp::FakeIdp) -> (u16, String) {
    let browser = Browser::new();
    let r = follow_across(
        &browser,
        &[&server.base, idp.base()],
        &server.url("/login/upstream/fake"),
    )
    .await;
    let status = r.status().as_u16();
    (status, r.text().await.unwrap_or_default())
}

fn good_claims() -> Value {
    json!({"email": "alice@acme.test", "email_verified": true, "given_name": "Alice", "groups": ["corp-hr"]})
}

#[tokio::test]
async fn upstream_refusals_are_clear_pages() {
    let (server, idp) =
        bridge_to_fake(|c| c.groups_overage_fallback = vec!["corp-employees".into()]).await;

    idp.set(Knobs {
        issuer: Some("https://impostor.example".into()),
        claims: good_claims(),
        ..Default::default()
    });
    let (status, page) = attempt(&server, &idp).await;
    assert_eq!(status, 502, "{page}");
    assert!(
        page.contains("cannot be reached") && page.contains("Try again"),
        "wrong issuer in discovery: {page}"
    );

    let cases: Vec<(Knobs, u16, &str)> = vec![
        (
            Knobs {
                foreign_key: true,
                claims: good_claims(),
                ..Default::default()
            },
            502,
            "could not be verified",
        ),
        (
            Knobs {
                wrong_nonce: true,
                claims: good_claims(),
                ..Default::default()
            },
            502,
            "could not be verified",
        ),
        (
            Knobs {
                claims: json!({"email": "alice@acme.test", "email_verified": false}),
                ..Default::default()
            },
            403,
            "is not verified",
        ),
        (
            Knobs {
                claims: json!({"email": "eve@evil.test", "email_verified": true}),
                ..Default::default()
            },
            403,
            "evil.test",
        ),
        (
            Knobs {
                deny: true,
                ..Default::default()
            },
            403,
            "access_denied",
        ),
    ];
    for (knobs, expected, needle) in cases {
        idp.set(knobs);
        let (status, page) = attempt(&server, &idp).await;
        assert_eq!(status, expected, "{needle}: {page}");
        assert!(page.contains(needle), "{needle} in {page}");
        assert!(
            !page.contains("fake-access"),
            "no token leaks into the page"
        );
    }

    // A good answer signs in.
    idp.set(Knobs {
        claims: good_claims(),
        ..Default::default()
    });
    let (status, _) = attempt(&server, &idp).await;
    assert!(status == 200 || status == 303, "{status}");
}

#[tokio::test]
async fn entra_group_overage_is_reported_and_the_fallback_applied() {
    let (server, idp) =
        bridge_to_fake(|c| c.groups_overage_fallback = vec!["corp-employees".into()]).await;
    idp.set(Knobs {
        claims: json!({"email": "dana@acme.test", "email_verified": true, "_claim_names": {"groups": "src1"}, "_claim_sources": {"src1": {"endpoint": "https://graph.example/"}}}),
        ..Default::default()
    });
    let (status, page) = attempt(&server, &idp).await;
    assert!(status < 400, "{page}");
    let audit: Value = reqwest::Client::new()
        .get(server.url("/admin/audit?limit=1"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &audit["entries"][0];
    assert_eq!(entry["event"], "login.upstream");
    // The audit API gives `detail` as JSON.
    let detail = &entry["detail"];
    assert_eq!(detail["groups_overage"], true);

    // The preview knows the person from their last sign-in, and says so.
    let preview: Value = reqwest::Client::new()
        .get(server.url("/admin/preview?user=dana@acme.test"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(preview["groups_overage"], true);
    assert_eq!(
        preview["roles"],
        json!(["collaborateur"]),
        "the fallback group's role"
    );
    assert!(preview["identity"]["subject"]
        .as_str()
        .unwrap()
        .starts_with("up-"));
}

#[tokio::test]
async fn the_whole_chain_with_saml_downstream() {
    use crate::saml::{
        attributes, authn_request, name_id, new_request_id, posted, redirect_url, register_sp,
        samael_sp, SP_ACS, SP_ENTITY,
    };

    let (upstream, bridge) = chain(|c| register_sp(c, false)).await;
    let (ubase, bbase) = (upstream.base.clone(), bridge.base.clone());

    let browser = Browser::new();
    let id = new_request_id();
    let url = redirect_url(
        &bbase,
        &authn_request(&bbase, &id, SP_ENTITY, SP_ACS, ""),
        None,
        true,
    );
    let bases = [bbase.as_str(), ubase.as_str()];
    let page = follow_across(&browser, &bases, &url).await;
    assert!(
        page.url().as_str().starts_with(&format!("{ubase}/login")),
        "the upstream's sign-in page: {}",
        page.url()
    );
    let signed_in = browser
        .submit_login(&ubase, page, "alice@acme.test", ALICE_PASSWORD)
        .await;
    assert_eq!(signed_in.status(), 303);
    let auto_post = follow_across(
        &browser,
        &bases,
        &absolute(&ubase, &location(&signed_in).unwrap()),
    )
    .await;
    let post = posted(auto_post).await;
    assert_eq!(post.action, SP_ACS);

    let sp = samael_sp(&bridge.base, SP_ACS, SP_ENTITY).await;
    let assertion = sp
        .parse_base64_response(&post.saml_response, Some(&[id.as_str()]))
        .expect("the SP accepts the bridge's Response");
    assert_eq!(name_id(&assertion), "alice@acme.test");
    let attrs = attributes(&assertion);
    assert_eq!(
        attrs["department"],
        vec!["Engineering"],
        "from the upstream identity"
    );
    assert_eq!(
        attrs["groups"],
        vec!["validateur_n1", "collaborateur"],
        "the bridge's table over the upstream's groups"
    );
}
