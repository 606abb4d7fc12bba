//! `POST /admin/people/{email}/revoke` over real HTTP: a person signed in in a browser (OIDC
//! and SAML) with an access and a refresh token loses all of it at once, audited; a new
//! sign-in works again.

use serde_json::Value;

use crate::common::*;
use crate::saml::{
    authn_request, new_request_id, posted, redirect_url, register_sp, through_login, SP_ACS,
    SP_ENTITY,
};

fn authorize_url(server: &TestServer) -> String {
    let mut url = url::Url::parse(&server.url("/oidc/authorize")).unwrap();
    url.query_pairs_mut().extend_pairs([
        ("response_type", "code"),
        ("client_id", "lucca"),
        ("redirect_uri", LUCCA_CALLBACK),
        ("scope", "openid email offline_access"),
        ("state", "st"),
    ]);
    url.to_string()
}

pub(crate) async fn tokens(server: &TestServer, browser: &Browser) -> Value {
    let to = browser
        .authorize(
            &server.base,
            &authorize_url(server),
            "alice@acme.test",
            ALICE_PASSWORD,
        )
        .await;
    let code = query(&to)["code"].clone();
    reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", LUCCA_CALLBACK),
        ])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn sso_url(server: &TestServer) -> String {
    let xml = authn_request(&server.base, &new_request_id(), SP_ENTITY, SP_ACS, "");
    redirect_url(&server.base, &xml, None, true)
}

async fn admin_revoke(server: &TestServer, email: &str, token: Option<&str>) -> (u16, Value) {
    let mut request =
        reqwest::Client::new().post(server.url(&format!("/admin/people/{email}/revoke")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn an_admin_revoke_ends_sessions_and_tokens_at_once_and_a_new_sign_in_works() {
    let server = start(|c| register_sp(c, false)).await;
    let browser = Browser::new();
    let issued = tokens(&server, &browser).await;
    let access = issued["access_token"].as_str().unwrap().to_string();
    let refresh_token = issued["refresh_token"].as_str().unwrap().to_string();
    // The browser session also signs in to the SAML SP.
    let before = posted(through_login(&browser, &server.base, &sso_url(&server)).await).await;
    assert_eq!(before.action, SP_ACS);

    let (status, _) = admin_revoke(&server, "alice@acme.test", None).await;
    assert_eq!(status, 401, "the admin token is required");
    let (status, body) = admin_revoke(&server, "ALICE@Acme.TEST", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["revoked"]["sessions"], 1, "{body}");
    assert_eq!(body["revoked"]["grants"], 1, "{body}");
    assert_eq!(body["revoked"]["access_tokens"], 1, "{body}");
    assert_eq!(body["revoked"]["refresh_tokens"], 1, "{body}");

    let r = reqwest::Client::new()
        .post(server.url("/oidc/token"))
        .basic_auth("lucca", Some(LUCCA_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", refresh_token.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let error: Value = r.json().await.unwrap();
    assert_eq!(error["error"], "invalid_grant");
    let userinfo = reqwest::Client::new()
        .get(server.url("/oidc/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 401, "the access token is revoked");
    let again = browser.follow(&server.base, &authorize_url(&server)).await;
    assert_eq!(again.url().path(), "/login", "the browser session ended");
    let sso = browser.follow(&server.base, &sso_url(&server)).await;
    assert_eq!(sso.url().path(), "/login", "SAML SSO asks to sign in");

    let subject = body["subjects"][0].as_str().unwrap().to_string();
    let audit = server
        .state()
        .store
        .audit()
        .recent(50, Some(&subject))
        .await
        .unwrap();
    let revoked = audit
        .iter()
        .find(|e| e.event == "revoked")
        .expect("a `revoked` audit event");
    assert_eq!(revoked.outcome, "admin");
    assert!(revoked
        .detail
        .as_deref()
        .unwrap()
        .contains("\"reason\":\"admin\""));

    // "Sign out everywhere", not a ban: signing in again works, the new tokens work.
    let fresh = tokens(&server, &browser).await;
    let userinfo = reqwest::Client::new()
        .get(server.url("/oidc/userinfo"))
        .bearer_auth(fresh["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    let after = posted(through_login(&browser, &server.base, &sso_url(&server)).await).await;
    assert_eq!(after.action, SP_ACS);
    // A second revoke finds the new session and tokens.
    let (status, body) = admin_revoke(&server, "alice@acme.test", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200);
    assert_eq!(body["revoked"]["grants"], 1, "{body}");
}

#[tokio::test]
async fn an_admin_revoke_of_someone_unknown_is_a_404_with_a_json_error() {
    let server = start(|_| {}).await;
    let (status, body) = admin_revoke(&server, "nobody@acme.test", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 404);
    assert!(
        body["error"].as_str().unwrap().contains("nobody@acme.test"),
        "{body}"
    );
    // In the directory but never signed in, no grant, no link: still nobody we know of.
    let (status, _) = admin_revoke(&server, "alice@acme.test", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 404);
    let (status, body) = admin_revoke(&server, "not-an-email", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 400, "{body}");
}
