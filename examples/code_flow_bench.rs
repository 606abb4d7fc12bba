//! Whole OIDC code flows per second over loopback: authorize (with an existing session) →
//! code → token exchange (PKCE, client_secret_basic) → ID token, with concurrent workers.
//!
//!     cargo run --release --example code_flow_bench -- [flows=2000] [workers=16]
//!
//! Everything runs in this process against a real server on 127.0.0.1 with a temporary
//! database and fresh keys.

use std::time::Instant;

use base64::Engine;
use passerelle::app::{build_state, start_on, StartOptions};
use passerelle::config::{ClientConfig, Config, DirectoryUser, Secret};

const SECRET: &str = "bench-client-secret-0123456789";
const CALLBACK: &str = "https://rp.example/cb";

#[tokio::main]
async fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let flows = args.first().copied().unwrap_or(2000);
    let workers = args.get(1).copied().unwrap_or(16);

    let dir = tempfile::tempdir().expect("tempdir");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let mut config = Config::default();
    config.server.public_url = base.clone();
    config.server.data_dir = dir.path().join("data");
    config.server.keys_dir = dir.path().join("keys");
    config.login.max_failures_per_ip = 1_000_000;
    config.directory.users = vec![DirectoryUser {
        email: "alice@acme.test".into(),
        password: Some(Secret::new("pw")),
        groups: vec!["g".into()],
        ..Default::default()
    }];
    config.oidc.clients = vec![ClientConfig {
        client_id: "bench".into(),
        client_secret: Some(Secret::new(SECRET)),
        redirect_uris: vec![CALLBACK.into()],
        ..Default::default()
    }];
    let state = build_state(config, &StartOptions::default())
        .await
        .expect("state");
    let running = start_on(state, listener).await.expect("start");

    // One signed-in browser per worker.
    let mut browsers = Vec::new();
    for _ in 0..workers {
        let http = reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client");
        let page = http
            .get(format!("{base}/login"))
            .send()
            .await
            .expect("login page")
            .text()
            .await
            .expect("html");
        let csrf = field(&page, "csrf_token");
        let r = http
            .post(format!("{base}/login"))
            .form(&[
                ("username", "alice@acme.test"),
                ("password", "pw"),
                ("csrf_token", &csrf),
                ("req", ""),
            ])
            .send()
            .await
            .expect("login");
        assert_eq!(r.status(), 303, "sign-in");
        browsers.push(http);
    }

    let started = Instant::now();
    let per_worker = flows / workers;
    let mut tasks = Vec::new();
    for http in browsers {
        let base = base.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..per_worker {
                one_flow(&http, &base).await;
            }
        }));
    }
    for t in tasks {
        t.await.expect("worker");
    }
    let elapsed = started.elapsed();
    let done = per_worker * workers;
    println!(
        "{done} code flows (authorize + token exchange + ID token) with {workers} workers in {:.2}s: {:.0} flows/s",
        elapsed.as_secs_f64(),
        done as f64 / elapsed.as_secs_f64()
    );
    running.stop().await;
}

async fn one_flow(http: &reqwest::Client, base: &str) {
    let verifier = passerelle::web::random_token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(openssl::sha::sha256(verifier.as_bytes()));
    let r = http
        .get(format!("{base}/oidc/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", "bench"),
            ("redirect_uri", CALLBACK),
            ("scope", "openid email profile groups"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .expect("authorize");
    let location = r
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .expect("redirect")
        .to_string();
    let code = url::Url::parse(&location)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let token = http
        .post(format!("{base}/oidc/token"))
        .basic_auth("bench", Some(SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .expect("token");
    assert_eq!(token.status(), 200);
}

fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).expect("field") + marker.len();
    let end = html[start..].find('"').expect("end") + start;
    html[start..end].to_string()
}
