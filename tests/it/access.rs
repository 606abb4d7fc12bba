//! Who may sign in where (`allowed_groups` on OIDC clients and SAML SPs) and the per-module
//! roles over SAML, over real HTTP.

use serde_json::Value;

use crate::common::*;
use crate::saml::{
    attributes, authn_request, new_request_id, posted, redirect_url, register_sp, samael_sp,
    SP_ACS, SP_ENTITY,
};

fn authorize_url(server: &TestServer) -> String {
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid email"),
        ("state", "st-42"),
    ]);
    url.to_string()
}

fn hr_only(c: &mut passerelle::config::Config) {
    c.oidc.clients[0].allowed_groups = vec![" corp-hr ".into()];
}

async fn audit(server: &TestServer) -> Value {
    reqwest::Client::new()
        .get(server.url("/admin/audit?limit=20"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn an_oidc_client_with_allowed_groups_sends_access_denied_to_anyone_else() {
    let server = start(hr_only).await;

    // Alice is in corp-employees and corp-managers, not corp-hr: the client hears
    // access_denied (with its state and our issuer), and no code.
    let to = Browser::new()
        .authorize(
            &server.base,
            &authorize_url(&server),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await;
    assert!(to.starts_with(LUCCA_CALLBACK), "{to}");
    let q = query(&to);
    assert_eq!(q["error"], "access_denied", "{to}");
    assert_eq!(q["state"], "st-42");
    assert!(!q.contains_key("code"));
    assert!(q["error_description"].contains("group"), "{to}");
    let log = audit(&server).await.to_string();
    assert!(log.contains("access_denied"), "{log}");

    // Bob is in corp-hr: he gets a code.
    let to = Browser::new()
        .authorize(
            &server.base,
            &authorize_url(&server),
            "bob@acme.test",
            "bob-password",
        )
        .await;
    assert!(query(&to).contains_key("code"), "{to}");

    // Another client without a list is open to Alice.
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "mobile"),
        ("redirect_uri", MOBILE_CALLBACK),
        ("scope", "openid"),
        (
            "code_challenge",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        ),
        ("code_challenge_method", "S256"),
    ]);
    let to = Browser::new()
        .authorize(
            &server.base,
            url.as_str(),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await;
    assert!(query(&to).contains_key("code"), "{to}");
}

fn sso_url(server: &TestServer, id: &str) -> String {
    let xml = authn_request(&server.base, id, SP_ENTITY, SP_ACS, "");
    redirect_url(&server.base, &xml, None, true)
}

/// Through the login page as `who`, to whatever the SSO answers.
async fn sso_as(server: &TestServer, url: &str, who: &str, password: &str) -> reqwest::Response {
    let browser = Browser::new();
    let r = browser.follow(&server.base, url).await;
    assert_eq!(r.url().path(), "/login");
    let posted = browser.submit_login(&server.base, r, who, password).await;
    assert_eq!(posted.status(), 303, "login should succeed");
    let next = absolute(&server.base, &location(&posted).unwrap());
    browser.follow(&server.base, &next).await
}

#[tokio::test]
async fn a_saml_sp_with_allowed_groups_refuses_anyone_else_with_a_clear_page() {
    let server = start(|c| {
        register_sp(c, false);
        c.saml.service_providers[0].allowed_groups = vec!["corp-hr".into()];
    })
    .await;

    let refused = sso_as(
        &server,
        &sso_url(&server, &new_request_id()),
        "alice@acme.test",
        ALICE_PASSWORD,
    )
    .await;
    assert_eq!(refused.status(), 403);
    let page = refused.text().await.unwrap();
    assert!(page.contains("have access"), "{page}");
    assert!(page.contains("Lucca"), "names the application: {page}");
    assert!(!page.contains("SAMLResponse"), "no assertion is sent");
    let log = audit(&server).await.to_string();
    assert!(log.contains("saml.sso") && log.contains("refused"), "{log}");

    let id = new_request_id();
    let ok = posted(
        sso_as(
            &server,
            &sso_url(&server, &id),
            "bob@acme.test",
            "bob-password",
        )
        .await,
    )
    .await;
    assert_eq!(ok.action, SP_ACS);
}

#[tokio::test]
async fn module_roles_are_released_over_saml_as_one_attribute_per_module() {
    let server = start(|c| {
        register_sp(c, false);
        c.claims.module_roles_claim = Some("lucca_roles".into());
        c.role_mapping.push(passerelle::config::RoleMappingRow {
            group: "corp-employees".into(),
            role: "salarie".into(),
            module: Some("pagga".into()),
            ..Default::default()
        });
    })
    .await;
    let id = new_request_id();
    let post = posted(
        sso_as(
            &server,
            &sso_url(&server, &id),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await,
    )
    .await;
    let sp = samael_sp(&server.base, SP_ACS, SP_ENTITY).await;
    let assertion = sp
        .parse_base64_response(&post.saml_response, Some(&[id.as_str()]))
        .expect("samael accepts the Response");
    let attrs = attributes(&assertion);
    assert_eq!(
        attrs["lucca_roles.figgo"],
        vec!["validateur_n1".to_string(), "collaborateur".to_string()]
    );
    assert_eq!(attrs["lucca_roles.pagga"], vec!["salarie".to_string()]);
    assert!(attrs.contains_key("groups"));
}
