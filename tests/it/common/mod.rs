//! The shared harness: a real server per test, a cookie-keeping browser that does not follow
//! redirects (so each hop can be asserted), and an `openidconnect` relying party.

#![allow(dead_code)]

pub mod fake_idp;
pub mod pg;
pub mod tls;

use std::future::Future;
use std::pin::Pin;

use passerelle::app::{build_state, start_on, Running, StartOptions};
use passerelle::config::{
    ClientConfig, Config, DirectoryUser, RefreshPolicy, RoleMappingRow, Secret,
};
use reqwest::header::LOCATION;

pub const LUCCA_SECRET: &str = "lucca-client-secret-0123456789";
pub const LUCCA_CALLBACK: &str = "https://acme.ilucca.test/identity/oidc/callback";
pub const MOBILE_CALLBACK: &str = "com.example.app:/callback";
pub const ADMIN_TOKEN: &str = "admin-token-for-tests-0123456789";
pub const ALICE_PASSWORD: &str = "alice-password";

pub struct TestServer {
    pub base: String,
    pub running: Option<Running>,
    pub dir: tempfile::TempDir,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
    pub fn state(&self) -> &passerelle::app::AppState {
        &self.running.as_ref().expect("running").state
    }
}

/// The configuration every test starts from: Alice and Bob, a role table, Lucca's confidential
/// client and a mobile public client.
pub fn base_config() -> Config {
    let mut c = Config::default();
    c.admin.token = Some(Secret::new(ADMIN_TOKEN));
    c.directory.users = vec![
        DirectoryUser {
            email: "alice@acme.test".into(),
            login: Some("amartin".into()),
            password: Some(Secret::new(ALICE_PASSWORD)),
            given_name: Some("Alice".into()),
            family_name: Some("Martin".into()),
            employee_number: Some("00042".into()),
            department: Some("Engineering".into()),
            manager_email: Some("bob@acme.test".into()),
            groups: vec![
                "corp-employees".into(),
                "corp-managers".into(),
                "unmapped-group".into(),
            ],
            ..Default::default()
        },
        DirectoryUser {
            email: "bob@acme.test".into(),
            password: Some(Secret::new("bob-password")),
            given_name: Some("Bob".into()),
            family_name: Some("Durand".into()),
            groups: vec!["corp-hr".into()],
            ..Default::default()
        },
    ];
    c.role_mapping = vec![
        RoleMappingRow {
            group: "corp-managers".into(),
            role: "validateur_n1".into(),
            module: Some("figgo".into()),
            ..Default::default()
        },
        RoleMappingRow {
            group: "corp-hr".into(),
            role: "administrateur_rh".into(),
            module: Some("figgo".into()),
            ..Default::default()
        },
        RoleMappingRow {
            group: "corp-employees".into(),
            role: "collaborateur".into(),
            module: Some("figgo".into()),
            ..Default::default()
        },
    ];
    c.oidc.clients = vec![
        ClientConfig {
            client_id: "lucca".into(),
            name: Some("Lucca".into()),
            client_secret: Some(Secret::new(LUCCA_SECRET)),
            redirect_uris: vec![LUCCA_CALLBACK.into()],
            post_logout_redirect_uris: vec!["https://acme.ilucca.test/".into()],
            ..Default::default()
        },
        ClientConfig {
            client_id: "mobile".into(),
            name: Some("Lucca mobile".into()),
            redirect_uris: vec![MOBILE_CALLBACK.into(), "http://127.0.0.1/cb".into()],
            refresh_tokens: RefreshPolicy::Always,
            ..Default::default()
        },
    ];
    c
}

/// Start a server on an ephemeral port with `tweak` applied to the base configuration.
pub async fn start(tweak: impl FnOnce(&mut Config)) -> TestServer {
    let (listener, base) = bind().await;
    start_bound(listener, base, tweak).await
}

/// Bind an ephemeral loopback port first, when a configuration must know another server's URL.
pub async fn bind() -> (tokio::net::TcpListener, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    (listener, base)
}

pub async fn start_bound(
    listener: tokio::net::TcpListener,
    base: String,
    tweak: impl FnOnce(&mut Config),
) -> TestServer {
    let dir = tempfile::tempdir().expect("tempdir");
    let addr = listener.local_addr().expect("addr");
    let mut config = base_config();
    config.server.listen = addr.to_string();
    config.server.public_url = base.clone();
    config.server.data_dir = dir.path().join("data");
    config.server.keys_dir = dir.path().join("keys");
    config.server.templates_dir = dir.path().join("no-templates");
    tweak(&mut config);
    let state = build_state(config, &StartOptions::default())
        .await
        .expect("valid test configuration");
    let running = start_on(state, listener).await.expect("server starts");
    TestServer {
        base,
        running: Some(running),
        dir,
    }
}

/// Start a server from a configuration file (so that `POST /admin/reload` has a file to read).
/// `{base}` and `{dir}` in the text are replaced by the server's URL and a temporary directory.
pub async fn start_from_file(text: &str) -> (TestServer, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let path = dir.path().join("passerelle.toml");
    let text = text
        .replace("{base}", &base)
        .replace("{dir}", &dir.path().display().to_string());
    std::fs::write(&path, text).expect("write config");
    let config = Config::load_with_env(Some(&path), |_| None).expect("config parses");
    let options = StartOptions {
        demo: false,
        config_path: Some(path.clone()),
    };
    let state = build_state(config, &options)
        .await
        .expect("valid configuration");
    let running = start_on(state, listener).await.expect("server starts");
    (
        TestServer {
            base,
            running: Some(running),
            dir,
        },
        path,
    )
}

/// A browser: keeps cookies, never follows redirects.
pub struct Browser {
    pub http: reqwest::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    pub fn new() -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .cookie_store(true)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
        }
    }

    pub async fn get(&self, url: &str) -> reqwest::Response {
        self.http.get(url).send().await.expect("GET")
    }

    /// Follow redirects while they stay on `base`, and — as a browser does — the waiting
    /// page's `Refresh`; return the first response that does neither (a page, or a redirect to
    /// a client).
    pub async fn follow(&self, base: &str, url: &str) -> reqwest::Response {
        let mut url = url.to_string();
        let mut redirects = 0;
        let mut refreshes = 0;
        loop {
            let r = self.get(&url).await;
            if let Some((secs, next)) = refresh(&r) {
                refreshes += 1;
                assert!(refreshes <= 120, "the waiting page never ended: {url}");
                tokio::time::sleep(std::time::Duration::from_secs(secs)).await;
                url = absolute(base, &next);
                continue;
            }
            match location(&r) {
                Some(next) if r.status().is_redirection() => {
                    let next = absolute(base, &next);
                    if !next.starts_with(base) {
                        return r;
                    }
                    redirects += 1;
                    assert!(redirects <= 10, "redirect loop from {url}");
                    url = next;
                }
                _ => return r,
            }
        }
    }

    /// On a sign-in page response, submit the form; return the response to the POST.
    pub async fn submit_login(
        &self,
        base: &str,
        page: reqwest::Response,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        let html = page.text().await.expect("page");
        let csrf = hidden(&html, "csrf_token").expect("csrf field");
        let req = hidden(&html, "req").unwrap_or_default();
        self.http
            .post(format!("{base}/login"))
            .form(&[
                ("username", username),
                ("password", password),
                ("csrf_token", &csrf),
                ("req", &req),
            ])
            .send()
            .await
            .expect("POST /login")
    }

    /// Start at an authorization URL, sign in, and return where the server finally redirects
    /// the browser outside itself (the client's redirect URI with code or error).
    pub async fn authorize(&self, base: &str, url: &str, username: &str, password: &str) -> String {
        let r = self.follow(base, url).await;
        let r = if r.status() == 200 && r.url().path() == "/login" {
            let posted = self.submit_login(base, r, username, password).await;
            assert_eq!(posted.status(), 303, "login should succeed");
            let next = absolute(base, &location(&posted).expect("location"));
            self.follow(base, &next).await
        } else {
            r
        };
        assert!(
            r.status().is_redirection(),
            "expected a redirect to the client, got {}",
            r.status()
        );
        location(&r).expect("location")
    }
}

/// A `Refresh: N;url=…` header (the waiting page): the delay and the URL.
pub fn refresh(r: &reqwest::Response) -> Option<(u64, String)> {
    let value = r.headers().get("refresh")?.to_str().ok()?;
    let (secs, rest) = value.split_once(';')?;
    let url = rest.trim().strip_prefix("url=")?;
    Some((secs.trim().parse().ok()?, url.to_string()))
}

pub fn location(r: &reqwest::Response) -> Option<String> {
    r.headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

pub fn absolute(base: &str, url: &str) -> String {
    if url.starts_with('/') {
        format!("{base}{url}")
    } else {
        url.to_string()
    }
}

/// The value of a hidden input named `name` in an HTML page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(
        html[start..end]
            .replace("&amp;", "&")
            .replace("&#x2f;", "/")
            .replace("&#x3d;", "="),
    )
}

/// Query parameters of a URL (also of custom-scheme URLs).
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    let q = url.split_once('?').map(|(_, q)| q).unwrap_or("");
    url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect()
}

type Fut =
    Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, reqwest::Error>> + Send>>;

/// The `openidconnect` HTTP adapter over reqwest 0.13 (crates-notes §4).
pub fn oidc_http() -> impl Fn(openidconnect::HttpRequest) -> Fut {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    move |req| {
        let client = client.clone();
        Box::pin(async move {
            let (parts, body) = req.into_parts();
            let r = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let mut b = http::Response::builder().status(r.status());
            for (k, v) in r.headers() {
                b = b.header(k, v);
            }
            Ok(b.body(r.bytes().await?.to_vec()).expect("response"))
        })
    }
}

/// Decode a JWT payload without verifying (tests check custom claims after openidconnect
/// has verified the token).
pub fn jwt_payload(token: &str) -> serde_json::Value {
    use base64::Engine;
    let part = token.split('.').nth(1).expect("payload");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(part)
        .expect("base64");
    serde_json::from_slice(&bytes).expect("json")
}

/// The test's own connection to the SQLite file in `data_dir`, to look at (or age) rows that
/// the store's ports do not show. The server keeps its own pool on the same file.
pub async fn database(data_dir: &std::path::Path) -> sqlx::SqlitePool {
    use std::str::FromStr;
    let options = sqlx::sqlite::SqliteConnectOptions::from_str("sqlite://")
        .expect("options")
        .filename(data_dir.join(passerelle::store::DB_FILE))
        .busy_timeout(std::time::Duration::from_secs(5));
    sqlx::SqlitePool::connect_with(options)
        .await
        .expect("the database file")
}
