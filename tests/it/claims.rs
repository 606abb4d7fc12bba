//! The claims preview and the reload of users and the role table.

use serde_json::Value;

use crate::common::*;

const CONFIG: &str = r#"
[server]
public_url = "{base}"
data_dir = "{dir}/data"
keys_dir = "{dir}/keys"

[admin]
token = "admin-token-for-tests-0123456789"

[[oidc.clients]]
client_id = "lucca"
client_secret = "lucca-client-secret-0123456789"
redirect_uris = ["https://acme.ilucca.test/identity/oidc/callback"]

[[directory.users]]
email = "alice@acme.test"
password = "alice-password"
given_name = "Alice"
groups = ["corp-managers", "corp-employees", "nobody-maps-this"]

[[role_mapping]]
group = "corp-managers"
role = "validateur_n1"
module = "figgo"

[[role_mapping]]
group = "corp-employees"
role = "collaborateur"
module = "figgo"
"#;

async fn get_preview(server: &TestServer, query: &str, token: Option<&str>) -> (u16, Value) {
    let mut req = reqwest::Client::new().get(server.url(&format!("/admin/preview?{query}")));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn preview_explains_each_group_and_shows_the_exact_claims() {
    let (server, _) = start_from_file(CONFIG).await;
    let (status, p) = get_preview(
        &server,
        "user=Alice@acme.test&client_id=lucca",
        Some(ADMIN_TOKEN),
    )
    .await;
    assert_eq!(status, 200, "{p}");
    assert_eq!(
        p["roles"],
        serde_json::json!(["validateur_n1", "collaborateur"])
    );
    assert_eq!(
        p["roles_by_module"]["figgo"],
        serde_json::json!(["validateur_n1", "collaborateur"])
    );
    let groups = p["groups"].as_array().unwrap();
    assert_eq!(groups[0]["group"], "corp-managers");
    assert_eq!(groups[0]["rows"][0]["row"], 0);
    assert_eq!(groups[2]["outcome"], "dropped_unmapped");
    let claims = &p["oidc"]["lucca"]["id_token_claims"];
    assert_eq!(claims["groups"], p["roles"]);
    assert_eq!(claims["email"], "alice@acme.test");
    assert_eq!(claims["aud"], "lucca");

    assert_eq!(
        get_preview(&server, "user=nobody@acme.test", Some(ADMIN_TOKEN))
            .await
            .0,
        404
    );
    assert_eq!(
        get_preview(
            &server,
            "user=alice@acme.test&client_id=ghost",
            Some(ADMIN_TOKEN)
        )
        .await
        .0,
        404
    );
    assert_eq!(
        get_preview(&server, "user=alice@acme.test", None).await.0,
        401
    );
}

#[tokio::test]
async fn reload_swaps_the_table_and_keeps_sessions_and_refuses_a_broken_file() {
    let (server, path) = start_from_file(CONFIG).await;
    let browser = Browser::new();
    let page = browser.get(&server.url("/login")).await;
    assert_eq!(
        browser
            .submit_login(&server.base, page, "alice@acme.test", "alice-password")
            .await
            .status(),
        303
    );

    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("role = \"collaborateur\"", "role = \"employee\"");
    std::fs::write(&path, text).unwrap();
    let http = reqwest::Client::new();
    let r = http
        .post(server.url("/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, p) = get_preview(&server, "user=alice@acme.test", Some(ADMIN_TOKEN)).await;
    assert_eq!(p["roles"], serde_json::json!(["validateur_n1", "employee"]));

    // The session survived the reload: /login?req-less visit redirects nowhere but the landing
    // page shows the person signed in.
    let landing = browser.get(&server.url("/")).await.text().await.unwrap();
    assert!(
        landing.contains("alice@acme.test"),
        "still signed in after reload"
    );

    std::fs::write(&path, "[[role_mapping]]\ngroup = \"\"\nrole = \"x\"\n").unwrap();
    let r = http
        .post(server.url("/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let body: Value = r.json().await.unwrap();
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("role_mapping[0].group"),
        "{body}"
    );
    let (_, p) = get_preview(&server, "user=alice@acme.test", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        p["roles"],
        serde_json::json!(["validateur_n1", "employee"]),
        "running table kept"
    );
}

#[tokio::test]
async fn per_client_release_list_and_per_module_roles() {
    let server = start(|c| {
        c.claims.module_roles_claim = Some("lucca_roles".into());
        c.oidc.clients[0].release_claims =
            vec!["email".into(), "groups".into(), "lucca_roles".into()];
        c.oidc.clients[0].groups_claim = Some("roles".into());
        c.oidc.clients[0].release_claims.push("roles".into());
    })
    .await;
    let (status, p) = get_preview(&server, "user=alice@acme.test", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, 200, "{p}");
    let lucca = &p["oidc"]["lucca"]["id_token_claims"];
    assert_eq!(
        lucca["roles"],
        serde_json::json!(["validateur_n1", "collaborateur"]),
        "renamed roles claim"
    );
    assert_eq!(
        lucca["lucca_roles"]["figgo"],
        serde_json::json!(["validateur_n1", "collaborateur"])
    );
    assert!(
        lucca.get("given_name").is_none() && lucca.get("department").is_none(),
        "not released: {lucca}"
    );
    assert_eq!(lucca["email"], "alice@acme.test");
    let mobile = &p["oidc"]["mobile"]["id_token_claims"];
    assert_eq!(
        mobile["department"], "Engineering",
        "other clients keep every scoped claim"
    );
}

/// The claims are computed once per sign-in, when JIT acts on them: a reload between the
/// sign-in and the code exchange changes neither the ID token nor userinfo nor what a refresh
/// of that grant carries; the next sign-in gets the new table.
#[tokio::test]
async fn tokens_carry_the_claims_released_at_sign_in_even_after_a_reload() {
    use crate::oidc::{exchange, lucca_code, token_request, userinfo};
    let (server, path) = start_from_file(CONFIG).await;
    let browser = Browser::new();
    let signed_in_roles = serde_json::json!(["validateur_n1", "collaborateur"]);
    let (code, verifier) = lucca_code(
        &server,
        &browser,
        "openid profile email groups offline_access",
    )
    .await;

    let text = std::fs::read_to_string(&path)
        .unwrap()
        .replace("role = \"collaborateur\"", "role = \"employee\"");
    std::fs::write(&path, text).unwrap();
    let r = reqwest::Client::new()
        .post(server.url("/admin/reload"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, p) = get_preview(&server, "user=alice@acme.test", Some(ADMIN_TOKEN)).await;
    assert_eq!(p["roles"], serde_json::json!(["validateur_n1", "employee"]));

    let (status, tokens) = exchange(&server, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["groups"], signed_in_roles, "ID token: {id_token}");
    let (status, info) = userinfo(&server, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(info["groups"], signed_in_roles, "userinfo: {info}");

    let (status, refreshed) = token_request(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
        ],
        Some(("lucca", LUCCA_SECRET)),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let id_token = jwt_payload(refreshed["id_token"].as_str().unwrap());
    assert_eq!(
        id_token["groups"], signed_in_roles,
        "refresh keeps the grant's claims"
    );
    let (_, info) = userinfo(&server, refreshed["access_token"].as_str().unwrap()).await;
    assert_eq!(info["groups"], signed_in_roles);

    // A new sign-in (the session is reused) releases the claims of the table now running.
    let (code, verifier) = lucca_code(&server, &browser, "openid groups").await;
    let (status, tokens) = exchange(&server, &code, &verifier).await;
    assert_eq!(status, 200, "{tokens}");
    let id_token = jwt_payload(tokens["id_token"].as_str().unwrap());
    assert_eq!(
        id_token["groups"],
        serde_json::json!(["validateur_n1", "employee"])
    );
}
