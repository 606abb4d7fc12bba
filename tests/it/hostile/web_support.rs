//! What the sign-in and OIDC parts of the corpus share: fresh sign-in forms, the audit log, and
//! a look at the database to prove that nothing attacker-sized was stored.

use serde_json::Value;

use crate::common::*;

/// A fresh browser session on the sign-in page: its HTTP client (cookies kept) and CSRF token.
pub async fn login_form(server: &TestServer) -> (reqwest::Client, String) {
    let browser = Browser::new();
    let html = browser
        .get(&server.url("/login"))
        .await
        .text()
        .await
        .unwrap();
    let csrf = hidden(&html, "csrf_token").expect("csrf field");
    (browser.http, csrf)
}

/// POST the sign-in form; `xff` is sent as `X-Forwarded-For` (the test plays the proxy).
pub async fn post_login(
    http: &reqwest::Client,
    server: &TestServer,
    csrf: &str,
    username: &str,
    password: &str,
    xff: Option<&str>,
) -> reqwest::Response {
    let mut req = http.post(server.url("/login")).form(&[
        ("username", username),
        ("password", password),
        ("csrf_token", csrf),
        ("req", ""),
    ]);
    if let Some(xff) = xff {
        req = req.header("x-forwarded-for", xff);
    }
    req.send().await.unwrap()
}

/// The newest audit entries.
pub async fn audit(server: &TestServer, limit: usize) -> Vec<Value> {
    let body: Value = reqwest::Client::new()
        .get(server.url(&format!("/admin/audit?limit={limit}")))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    body["entries"].as_array().cloned().unwrap_or_default()
}

/// The longest value stored in any table anonymous requests can reach (pending sign-ins,
/// sessions, codes, the audit log).
pub async fn largest_stored(server: &TestServer) -> i64 {
    let pool = database(&server.state().config.server.data_dir).await;
    let mut largest = 0;
    for sql in [
        "SELECT COALESCE(MAX(LENGTH(payload)), 0) FROM login_requests",
        "SELECT COALESCE(MAX(LENGTH(data)), 0) FROM tower_sessions",
        "SELECT COALESCE(MAX(LENGTH(redirect_uri) + LENGTH(COALESCE(nonce, '')) + LENGTH(client_id)), 0) FROM auth_codes",
        "SELECT COALESCE(MAX(LENGTH(COALESCE(subject, '')) + LENGTH(COALESCE(client, '')) + LENGTH(COALESCE(ip, '')) + LENGTH(COALESCE(detail, ''))), 0) FROM audit_log",
    ] {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&pool).await.unwrap();
        largest = largest.max(n);
    }
    largest
}

/// How many rows a table has.
pub async fn rows(server: &TestServer, table: &str) -> i64 {
    let pool = database(&server.state().config.server.data_dir).await;
    let (n,): (i64,) = sqlx::query_as(&format!("SELECT COUNT(*) FROM {table}"))
        .fetch_one(&pool)
        .await
        .unwrap();
    n
}
