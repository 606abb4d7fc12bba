//! The load check of several nodes on one PostgreSQL: two real `passerelle serve` processes on
//! one database, driven with complete OpenID Connect code flows (a signed-in browser's
//! authorize → code → token exchange, each flow starting on one node and exchanging its code on
//! the other), then one node killed (SIGKILL) in the middle of a run.
//!
//!     cargo run --release --example cluster_load [-- --seconds 10 --clients 16]
//!
//! It prints the flows per second of one node, then of two, then what happened to every flow
//! of the run in which node B was killed: completed (an ID token whose signature, issuer,
//! audience and nonce check out), failed cleanly (a connection error, or an OAuth error
//! response), or wrong (anything else: a 5xx, a token that does not verify, a code answered
//! twice). Wrong answers make it exit 1. It then checks from the database that no code was
//! spent twice: every grant comes from exactly one code, and every token the client received
//! belongs to a distinct grant.
//!
//! The database is a throwaway cluster started like the tests' (Debian's `postgresql` package),
//! or a fresh database on the server of `PASSERELLE_TEST_DATABASE_URL` (a role allowed to
//! `CREATE DATABASE`). The server binary is built first (`cargo build --release --bin
//! passerelle`) unless `--server PATH` names one.
//!
//! The throughput of two nodes is bounded by the machine: both nodes, PostgreSQL and this client
//! share its cores, so on a small machine two nodes show what they keep (no loss, no double
//! spend) rather than a doubling.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use sqlx::Connection;

#[path = "../tests/it/common/pg.rs"]
mod pg;

const CLIENT_ID: &str = "load";
const CALLBACK: &str = "https://rp.example/cb";
const USER: &str = "alice@acme.test";
const PASSWORD: &str = "load-check-password";

struct Options {
    server: Option<PathBuf>,
    seconds: u64,
    clients: usize,
}

fn options() -> Options {
    let mut o = Options {
        server: None,
        seconds: 10,
        clients: 16,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--server" => o.server = Some(value().into()),
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| fail("--seconds N")),
            "--clients" => o.clients = value().parse().unwrap_or_else(|_| fail("--clients N")),
            other => fail(&format!("unknown argument {other}")),
        }
    }
    o
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

#[tokio::main]
async fn main() {
    let o = options();
    let server = o.server.clone().unwrap_or_else(build_server);
    let Some(url) = pg::database().await else {
        fail("no PostgreSQL: install the `postgresql` package or set PASSERELLE_TEST_DATABASE_URL")
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "# two passerelle nodes on one PostgreSQL — {cores} cores, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "# {} clients, {} s per run, each flow: authorize on one node, token exchange on the other",
        o.clients, o.seconds
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("tempdir: {e}")));
    let secret = passerelle::web::random_token(32);
    let mut kek = [0u8; 32];
    openssl::rand::rand_bytes(&mut kek).unwrap_or_else(|e| fail(&e.to_string()));
    let kek = STANDARD.encode(kek);
    let (port_a, port_b) = (free_port(), free_port());
    let issuer = format!("http://127.0.0.1:{port_a}");
    let node = |name: &str, port: u16| {
        let config = write_config(dir.path(), name, port, &issuer, &url, &kek, &secret);
        NodeSpec {
            name: name.to_string(),
            base: format!("http://127.0.0.1:{port}"),
            config,
            log: dir.path().join(format!("{name}.log")),
            server: server.clone(),
        }
    };
    let (spec_a, spec_b) = (node("a", port_a), node("b", port_b));

    // One node.
    let a = spec_a.start().await;
    let check = Arc::new(Checker::new(&spec_a.base, &issuer, &secret).await);
    let browsers = sign_in(&spec_a.base, o.clients).await;
    let one = run(&check, &browsers, &[&spec_a.base], o.seconds, None).await;
    report("one node (A)", &one, o.seconds);

    // Two nodes, every flow crossing from one to the other.
    let mut b = Some(spec_b.start().await);
    let both = [spec_a.base.as_str(), spec_b.base.as_str()];
    let two = run(&check, &browsers, &both, o.seconds, None).await;
    report("two nodes (A+B)", &two, o.seconds);
    println!(
        "{:<34}{:>9.2}x",
        "two nodes / one node",
        two.per_second(o.seconds) / one.per_second(o.seconds).max(f64::MIN_POSITIVE)
    );

    // Two nodes, B killed halfway.
    let kill_at = Duration::from_secs(o.seconds) / 2;
    let killer = {
        let mut node_b = b.take();
        async move {
            tokio::time::sleep(kill_at).await;
            if let Some(node) = node_b.as_mut() {
                node.kill();
            }
            node_b
        }
    };
    let (killed, node_b) = tokio::join!(
        run(&check, &browsers, &both, o.seconds, Some(kill_at)),
        killer
    );
    report(
        &format!("two nodes, B killed at {}s", kill_at.as_secs()),
        &killed,
        o.seconds,
    );
    println!(
        "  after the kill, A alone: {} flows completed",
        killed.completed_after_kill
    );
    for (what, n) in &killed.clean {
        println!("  failed cleanly: {n:>6} {what}");
    }
    drop(node_b);

    let wrong: Vec<String> = [&one, &two, &killed]
        .iter()
        .flat_map(|r| r.wrong.iter().cloned())
        .collect();
    let tokens: Vec<String> = [&one, &two, &killed]
        .iter()
        .flat_map(|r| r.access_tokens.iter().cloned())
        .collect();
    let spent = spent_codes(&url, &tokens).await;
    println!(
        "database: {} codes spent, {} of them by a node killed before it made the grant; {} \
         grants, each from exactly one code ({} grants named by two codes, {} grants without a \
         code)",
        spent.codes_used,
        spent.codes_used - spent.codes_with_grant,
        spent.grants,
        spent.shared_grants,
        spent.codes_twice,
    );
    println!(
        "          {} tokens received, from {} distinct grants; {} grants made but never answered \
         (their tokens never left the node), {} of them still live",
        tokens.len(),
        spent.token_grants,
        spent.grants - spent.token_grants as i64,
        spent.unanswered_live,
    );
    a.stop();
    let double_spend = spent.codes_twice > 0
        || spent.shared_grants > 0
        || spent.token_grants != tokens.len()
        || spent.grants != spent.codes_with_grant;
    if !wrong.is_empty() || double_spend {
        for w in wrong.iter().take(20) {
            eprintln!("wrong: {w}");
        }
        eprintln!(
            "FAILED: {} wrong answers{}",
            wrong.len(),
            if double_spend {
                ", a code spent twice"
            } else {
                ""
            }
        );
        std::process::exit(1);
    }
    println!("OK: every flow completed or failed cleanly; no code was spent twice");
}

/// `target/release/passerelle`, built (or found up to date) by the cargo running this example.
fn build_server() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--quiet", "--bin", "passerelle"])
        .current_dir(root)
        .status()
        .unwrap_or_else(|e| fail(&format!("cargo build: {e}")));
    if !status.success() {
        fail("cargo build --release --bin passerelle failed");
    }
    let exe = std::env::current_exe().unwrap_or_else(|e| fail(&e.to_string()));
    // target/release/examples/cluster_load -> target/release/passerelle
    let bin = exe
        .parent()
        .and_then(Path::parent)
        .map(|d| d.join("passerelle"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| root.join("target/release/passerelle"));
    if !bin.exists() {
        fail(&format!("no server binary at {}", bin.display()));
    }
    bin
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(&format!("no free port: {e}")))
}

#[allow(clippy::too_many_arguments)]
fn write_config(
    dir: &Path,
    name: &str,
    port: u16,
    issuer: &str,
    url: &str,
    kek: &str,
    secret: &str,
) -> PathBuf {
    // A cheap argon2 hash: the check signs in a few browsers, it does not measure hashing.
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).unwrap_or_else(|e| fail(&e.to_string()));
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"load-salt-16byte").unwrap_or_else(|e| fail(&e.to_string()));
    let hash = hasher
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap_or_else(|e| fail(&e.to_string()))
        .to_string();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
public_url = "{issuer}"
data_dir = "{name}/data"
keys_dir = "{name}/keys"

[store]
url = "{url}"

[keys]
encryption_key = "{kek}"

[login]
max_failures_per_ip = 1000000
max_failures_per_account = 1000000

[[oidc.clients]]
client_id = "{CLIENT_ID}"
client_secret = "{secret}"
redirect_uris = ["{CALLBACK}"]

[[directory.users]]
email = "{USER}"
password_hash = "{hash}"
given_name = "Alice"
family_name = "Martin"
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap_or_else(|e| fail(&format!("config: {e}")));
    path
}

struct NodeSpec {
    name: String,
    base: String,
    config: PathBuf,
    log: PathBuf,
    server: PathBuf,
}

struct Node {
    child: Child,
}

impl NodeSpec {
    async fn start(&self) -> Node {
        let log = std::fs::File::create(&self.log).unwrap_or_else(|e| fail(&e.to_string()));
        let mut command = Command::new(&self.server);
        // The node must not outlive this process, even when the check fails and exits early.
        #[cfg(target_os = "linux")]
        {
            use std::os::unix::process::CommandExt;
            // SAFETY: prctl(2) with PR_SET_PDEATHSIG only sets a flag on the child being
            // started; it touches no memory of ours and is async-signal-safe.
            unsafe {
                command.pre_exec(|| {
                    libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM);
                    Ok(())
                });
            }
        }
        let child = command
            .args(["serve", "--config"])
            .arg(&self.config)
            .env("RUST_LOG", "warn")
            .env_remove("PASSERELLE_DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {}: {e}", self.server.display())));
        let mut node = Node { child };
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{}/readyz", self.base)).send().await {
                if r.status() == 200 {
                    return node;
                }
            }
            if let Ok(Some(_)) = node.child.try_wait() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        node.kill();
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        fail(&format!("node {} did not become ready:\n{log}", self.name))
    }
}

impl Node {
    /// SIGKILL: no graceful shutdown, requests in flight are cut.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| fail(&format!("http client: {e}")))
}

/// `n` browsers, each signed in once (on `base`; the session lives in the shared database and
/// the cookie goes to every node of 127.0.0.1).
async fn sign_in(base: &str, n: usize) -> Vec<reqwest::Client> {
    let mut browsers = Vec::new();
    for _ in 0..n {
        let http = browser();
        let page = http
            .get(format!("{base}/login"))
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("GET /login: {e}")))
            .text()
            .await
            .unwrap_or_default();
        let csrf = hidden(&page, "csrf_token").unwrap_or_else(|| fail("no CSRF token on /login"));
        let r = http
            .post(format!("{base}/login"))
            .form(&[
                ("username", USER),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
                ("req", ""),
            ])
            .send()
            .await
            .unwrap_or_else(|e| fail(&format!("POST /login: {e}")));
        if r.status() != 303 {
            fail(&format!("sign-in answered {}", r.status()));
        }
        browsers.push(http);
    }
    browsers
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Checks an ID token the way a relying party would: the signature against the cluster's JWKS,
/// then issuer, audience and nonce.
struct Checker {
    keys: HashMap<String, jsonwebtoken::DecodingKey>,
    issuer: String,
    secret: String,
}

impl Checker {
    async fn new(base: &str, issuer: &str, secret: &str) -> Checker {
        let jwks: serde_json::Value = reqwest::get(format!("{base}/oidc/jwks"))
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| fail(&format!("JWKS: {e}")))
            .json()
            .await
            .unwrap_or_else(|e| fail(&format!("JWKS: {e}")));
        let mut keys = HashMap::new();
        for k in jwks["keys"].as_array().into_iter().flatten() {
            let (Some(kid), Some(n), Some(e)) =
                (k["kid"].as_str(), k["n"].as_str(), k["e"].as_str())
            else {
                continue;
            };
            if let Ok(key) = jsonwebtoken::DecodingKey::from_rsa_components(n, e) {
                keys.insert(kid.to_string(), key);
            }
        }
        Checker {
            keys,
            issuer: issuer.to_string(),
            secret: secret.to_string(),
        }
    }

    fn id_token(&self, token: &str, nonce: &str) -> Result<(), String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| format!("header: {e}"))?;
        let kid = header.kid.ok_or("no kid")?;
        let key = self
            .keys
            .get(&kid)
            .ok_or_else(|| format!("signed by {kid}, not in the JWKS"))?;
        let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
        validation.set_audience(&[CLIENT_ID]);
        validation.set_issuer(&[&self.issuer]);
        let data = jsonwebtoken::decode::<serde_json::Value>(token, key, &validation)
            .map_err(|e| format!("ID token does not verify: {e}"))?;
        if data.claims["nonce"] != nonce {
            return Err(format!("nonce {} instead of {nonce}", data.claims["nonce"]));
        }
        Ok(())
    }
}

/// What became of the flows of one run.
#[derive(Default)]
struct Results {
    completed: u64,
    completed_after_kill: u64,
    /// Clean failures by kind ("connection error at authorize", "invalid_grant", …).
    clean: BTreeMap<String, u64>,
    wrong: Vec<String>,
    access_tokens: Vec<String>,
}

impl Results {
    fn per_second(&self, seconds: u64) -> f64 {
        self.completed as f64 / seconds as f64
    }
}

fn report(label: &str, r: &Results, seconds: u64) {
    let failed: u64 = r.clean.values().sum();
    println!(
        "{label:<34}{:>9.1} flows/s   ({} completed, {failed} failed cleanly, {} wrong)",
        r.per_second(seconds),
        r.completed,
        r.wrong.len()
    );
}

fn record(results: &Mutex<Results>, outcome: Outcome, after_kill: bool) {
    let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
    match outcome {
        Outcome::Completed(token) => {
            r.completed += 1;
            if after_kill {
                r.completed_after_kill += 1;
            }
            r.access_tokens.push(token);
        }
        Outcome::Clean(why) => *r.clean.entry(why).or_default() += 1,
        Outcome::Wrong(why) => r.wrong.push(why),
    }
}

enum Outcome {
    Completed(String),
    Clean(String),
    Wrong(String),
}

/// Every browser runs flows back to back for `seconds`, flow `i` of browser `j` starting on
/// node `(i + j) % n` and exchanging its code on the next node.
async fn run(
    check: &Arc<Checker>,
    browsers: &[reqwest::Client],
    nodes: &[&str],
    seconds: u64,
    kill_at: Option<Duration>,
) -> Results {
    let results = Arc::new(Mutex::new(Results::default()));
    let started = Instant::now();
    let until = started + Duration::from_secs(seconds);
    let nodes: Arc<Vec<String>> = Arc::new(nodes.iter().map(|s| s.to_string()).collect());
    let mut tasks = Vec::new();
    for (j, http) in browsers.iter().enumerate() {
        let (http, check, nodes, results) =
            (http.clone(), check.clone(), nodes.clone(), results.clone());
        tasks.push(tokio::spawn(async move {
            let mut i = j;
            while Instant::now() < until {
                let from = &nodes[i % nodes.len()];
                let to = &nodes[(i + 1) % nodes.len()];
                i += 1;
                let outcome = flow(&http, &check, from, to, &nodes).await;
                let after_kill = kill_at.is_some_and(|k| started.elapsed() > k);
                let clean_failure = matches!(outcome, Outcome::Clean(_));
                record(&results, outcome, after_kill);
                if clean_failure {
                    // Back off like a browser would, rather than spin on the dead node and take
                    // the CPU from the live one.
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut r = results.lock().unwrap_or_else(|e| e.into_inner());
    std::mem::take(&mut *r)
}

/// One complete code flow: authorize on `from` (the browser is signed in), exchange on `to`; a
/// connection error at the exchange is retried once on each other node (the code may or may
/// not have been spent by the node that died: either answer is clean).
async fn flow(
    http: &reqwest::Client,
    check: &Checker,
    from: &str,
    to: &str,
    nodes: &[String],
) -> Outcome {
    let verifier = passerelle::web::random_token(32);
    let challenge = URL_SAFE_NO_PAD.encode(openssl::sha::sha256(verifier.as_bytes()));
    let nonce = passerelle::web::random_token(12);
    let state = passerelle::web::random_token(12);
    let r = match http
        .get(format!("{from}/oidc/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", CALLBACK),
            ("scope", "openid email"),
            ("state", &state),
            ("nonce", &nonce),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
    {
        Ok(r) => r,
        Err(e) => return Outcome::Clean(connection("authorize", &e)),
    };
    let status = r.status().as_u16();
    let location = r
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let Some(query) = location
        .strip_prefix(CALLBACK)
        .and_then(|rest| url::Url::parse(&format!("https://x/{rest}")).ok())
    else {
        return Outcome::Wrong(format!("authorize on {from}: {status} to {location:?}"));
    };
    let params: HashMap<String, String> = query.query_pairs().into_owned().collect();
    if params.get("state") != Some(&state) {
        return Outcome::Wrong(format!(
            "authorize on {from}: state {:?}",
            params.get("state")
        ));
    }
    if let Some(error) = params.get("error") {
        return Outcome::Clean(format!("authorize: {error}"));
    }
    let Some(code) = params.get("code") else {
        return Outcome::Wrong(format!("authorize on {from}: no code in {location}"));
    };

    let mut targets = vec![to.to_string()];
    targets.extend(nodes.iter().filter(|n| *n != to).cloned());
    let mut first_error = None;
    for node in &targets {
        let sent = http
            .post(format!("{node}/oidc/token"))
            .basic_auth(CLIENT_ID, Some(&check.secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", CALLBACK),
                ("code_verifier", &verifier),
            ])
            .send()
            .await;
        let r = match sent {
            Ok(r) => r,
            Err(e) => {
                first_error.get_or_insert_with(|| connection("token exchange", &e));
                continue;
            }
        };
        let status = r.status().as_u16();
        let body: serde_json::Value = match r.json().await {
            Ok(body) => body,
            Err(e) => {
                first_error.get_or_insert_with(|| connection("token response", &e));
                continue;
            }
        };
        return match (status, body["id_token"].as_str(), body["error"].as_str()) {
            (200, Some(id_token), _) => match check.id_token(id_token, &nonce) {
                Ok(()) => match body["access_token"].as_str() {
                    Some(token) => Outcome::Completed(token.to_string()),
                    None => Outcome::Wrong("token response without an access token".into()),
                },
                Err(why) => Outcome::Wrong(why),
            },
            (400 | 401, _, Some(error)) => Outcome::Clean(match &first_error {
                Some(before) => format!("{before}, then {error} on retry"),
                None => format!("token exchange: {error}"),
            }),
            _ => Outcome::Wrong(format!("token exchange on {node}: {status} {body}")),
        };
    }
    Outcome::Clean(first_error.unwrap_or_else(|| "no node answered".into()))
}

fn connection(stage: &str, e: &reqwest::Error) -> String {
    let kind = if e.is_connect() {
        "connection refused"
    } else if e.is_timeout() {
        "timeout"
    } else {
        "connection cut"
    };
    format!("{stage}: {kind}")
}

struct Spent {
    codes_used: i64,
    codes_with_grant: i64,
    grants: i64,
    /// Codes that name a grant another code names too.
    shared_grants: i64,
    /// Codes answered with more than one grant: impossible by the schema (one `grant_id`), so
    /// it is counted from the grants: grants no code names.
    codes_twice: i64,
    /// Distinct grants behind the access tokens the client received.
    token_grants: usize,
    /// Grants whose tokens the client never received that are not revoked.
    unanswered_live: i64,
}

/// From the database: each exchanged code names one grant, each grant is named by one code,
/// there is no grant without its code, and the tokens the client got belong to distinct grants.
async fn spent_codes(url: &str, tokens: &[String]) -> Spent {
    let mut db = sqlx::PgConnection::connect(url)
        .await
        .unwrap_or_else(|e| fail(&format!("database: {e}")));
    let codes_used = count(
        &mut db,
        "SELECT COUNT(*) FROM auth_codes WHERE used_at IS NOT NULL",
    )
    .await;
    let codes_with_grant = count(
        &mut db,
        "SELECT COUNT(DISTINCT grant_id) FROM auth_codes WHERE grant_id IS NOT NULL",
    )
    .await;
    let grants = count(&mut db, "SELECT COUNT(*) FROM grants").await;
    let shared_grants = count(
        &mut db,
        "SELECT COUNT(*) FROM (SELECT grant_id FROM auth_codes WHERE grant_id IS NOT NULL
         GROUP BY grant_id HAVING COUNT(*) > 1) shared",
    )
    .await;
    let codes_twice = count(
        &mut db,
        "SELECT COUNT(*) FROM grants g WHERE NOT EXISTS
         (SELECT 1 FROM auth_codes c WHERE c.grant_id = g.id)",
    )
    .await;
    let hashes: Vec<String> = tokens
        .iter()
        .map(|t| hex::encode(openssl::sha::sha256(t.as_bytes())))
        .collect();
    let grant_ids: Vec<String> =
        sqlx::query_scalar("SELECT grant_id FROM access_tokens WHERE token_hash = ANY($1)")
            .bind(&hashes)
            .fetch_all(&mut db)
            .await
            .unwrap_or_else(|e| fail(&format!("access tokens: {e}")));
    if grant_ids.len() != tokens.len() {
        fail(&format!(
            "{} of the {} access tokens received are not in the database",
            tokens.len() - grant_ids.len(),
            tokens.len()
        ));
    }
    let token_grants = grant_ids.iter().collect::<HashSet<_>>().len();
    let unanswered_live: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM grants WHERE revoked_at IS NULL AND NOT (id = ANY($1))",
    )
    .bind(&grant_ids)
    .fetch_one(&mut db)
    .await
    .unwrap_or_else(|e| fail(&format!("grants: {e}")));
    Spent {
        unanswered_live,
        codes_used,
        codes_with_grant,
        grants,
        shared_grants,
        codes_twice,
        token_grants,
    }
}

async fn count(db: &mut sqlx::PgConnection, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(db)
        .await
        .unwrap_or_else(|e| fail(&format!("{sql}: {e}")))
}
