//! The performance figures of one machine, in one run: the RSA signing rate of one core, then
//! against a real `passerelle serve` process pinned to chosen cores — discovery and JWKS
//! requests per second, whole OIDC code flows per second, SAML Responses per second on one and
//! on two cores, start-up time to `/readyz`, and resident memory idle and with 10,000 live
//! sessions. Each throughput is also given as a ratio to the RSA signing rate: a signature is
//! the one cost an IdP cannot avoid.
//!
//!     scripts/bench                  (builds the release binary and this example, then runs it)
//!     target/release/examples/perf [--server target/release/passerelle] [--seconds 5]
//!                                  [--sessions 10000] [--server-cpus 0] [--load-cpus 1]
//!                                  [--only discovery,jwks,flows,saml,sessions]
//!
//! `--only` runs some measures (the RSA rate is always measured; with `saml` both SAML
//! figures): handy to profile one of them, e.g. `perf record -g -p <server pid>` while it runs.
//!
//! Needs `taskset` (util-linux), `openssl` and `wrk` (Debian packages; `scripts/bench` installs
//! `wrk`). The load runs from the other core (`--load-cpus`) so the server's core measures the
//! server alone; for the two-core SAML figure the server gets both cores and shares them with
//! the load. The SAML load is wrk sending AuthnRequests prepared before the clock starts (its
//! share of the cores is small, and the server's own CPU use is printed beside the rate); the
//! code flows need each answer's code for the next request, so they run from this process.

use std::io::Write;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;

const CLIENT_ID: &str = "perf";
const CALLBACK: &str = "https://rp.example/cb";
const SP_ENTITY: &str = "https://sp.example/perf";
const SP_ACS: &str = "https://sp.example/perf/acs";
const USER: &str = "alice@acme.test";
const PASSWORD: &str = "perf-password";

struct Options {
    server: String,
    seconds: u64,
    sessions: usize,
    server_cpus: String,
    load_cpus: String,
    /// Measures to run (empty: all).
    only: Vec<String>,
}

impl Options {
    fn runs(&self, measure: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|m| m == measure)
    }
}

fn options() -> Options {
    let mut o = Options {
        server: "target/release/passerelle".into(),
        seconds: 5,
        sessions: 10_000,
        server_cpus: "0".into(),
        load_cpus: "1".into(),
        only: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || {
            args.next()
                .unwrap_or_else(|| fail(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--server" => o.server = value(),
            "--seconds" => o.seconds = value().parse().unwrap_or_else(|_| fail("--seconds N")),
            "--sessions" => o.sessions = value().parse().unwrap_or_else(|_| fail("--sessions N")),
            "--server-cpus" => o.server_cpus = value(),
            "--load-cpus" => o.load_cpus = value(),
            "--only" => {
                o.only = value().split(',').map(|m| m.trim().to_string()).collect();
                let known = ["discovery", "jwks", "flows", "saml", "sessions"];
                if let Some(m) = o.only.iter().find(|m| !known.contains(&m.as_str())) {
                    fail(&format!("--only: unknown measure {m} (one of {known:?})"));
                }
            }
            other => fail(&format!("unknown argument {other}")),
        }
    }
    o
}

fn fail(msg: &str) -> ! {
    eprintln!("error: {msg}");
    std::process::exit(2)
}

fn main() {
    let o = options();
    for tool in ["taskset", "openssl", "wrk"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            fail(&format!(
                "{tool} is needed (scripts/bench installs what is missing)"
            ));
        }
    }
    if !std::path::Path::new(&o.server).exists() {
        fail(&format!(
            "no server binary at {} (cargo build --release --bin passerelle)",
            o.server
        ));
    }
    // The load generator itself stays on the load cores.
    pin_self(&o.load_cpus);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap_or_else(|e| fail(&format!("runtime: {e}")));
    runtime.block_on(run(o));
}

fn pin_self(cpus: &str) {
    let status = Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &std::process::id().to_string()])
        .stdout(Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        fail(&format!("cannot pin the load generator to cpus {cpus}"));
    }
}

async fn run(o: Options) {
    let machine = machine_line();
    println!("# Passerelle performance — {machine}");
    println!(
        "# server {} on cpu {}, load on cpu {}, {} s per measure",
        o.server, o.server_cpus, o.load_cpus, o.seconds
    );

    let rsa = rsa_sign_rate(&o.server_cpus, o.seconds);
    // This machine's speed drifts by a tenth from one minute to the next: each ratio is to the
    // RSA rate measured just before its measure.
    let rsa_now = || rsa_sign_rate(&o.server_cpus, o.seconds.min(3));
    row(
        "rsa2048 signs/s, one core (openssl speed)",
        rsa,
        String::new(),
    );

    let dir = tempfile::tempdir().unwrap_or_else(|e| fail(&format!("tempdir: {e}")));
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let secret = passerelle::web::random_token(32);
    let config = write_config(dir.path(), port, &secret);
    let start = |cpus: &str| {
        let (cpus, bin, config) = (cpus.to_string(), o.server.clone(), config.clone());
        let (dir, base) = (dir.path().to_path_buf(), base.clone());
        async move { Server::start(&bin, &config, &cpus, &dir, &base).await }
    };

    // The first start generates the keys; the measured start-up is the second, keys on disk.
    start(&o.server_cpus).await.stop();
    let started = Instant::now();
    let server = start(&o.server_cpus).await;
    row(
        "start-up to /readyz 200, existing keys, ms",
        started.elapsed().as_secs_f64() * 1e3,
        String::new(),
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    row("RSS idle, MB", server.rss_mb(), String::new());
    println!("# cpu {}: {}", o.server_cpus, runtime_line(dir.path()));

    for (measure, name, path) in [
        (
            "discovery",
            "discovery",
            "/.well-known/openid-configuration",
        ),
        ("jwks", "JWKS", "/oidc/jwks"),
    ] {
        if !o.runs(measure) {
            continue;
        }
        let rsa = rsa_now();
        let rate = wrk(&o.load_cpus, &format!("{base}{path}"), o.seconds);
        row(
            &format!("{name} req/s"),
            rate,
            format!("{:.1}x the RSA rate ({rsa:.0}/s just before)", rate / rsa),
        );
    }

    if o.runs("flows") {
        let rsa = rsa_now();
        let flows = code_flows(&base, &secret, o.seconds).await;
        row(
            "OIDC code flows/s (session, PKCE, ID token)",
            flows,
            format!(
                "{:.0}% of the RSA rate ({rsa:.0}/s just before)",
                100.0 * flows / rsa
            ),
        );
    }

    if o.runs("saml") {
        // Response and Assertion signed: two signatures, so the ceiling is half the RSA rate.
        let rsa = rsa_now();
        let (saml1, cores1) =
            saml_responses(&server, &base, &o.load_cpus, o.seconds, dir.path()).await;
        row(
            "SAML Responses/s, two signatures, 1 core",
            saml1,
            format!(
                "{:.0}% of the RSA/2 ceiling ({rsa:.0}/s just before; server busy {cores1:.2} cores)",
                200.0 * saml1 / rsa
            ),
        );
        server.stop();

        let all = format!("{},{}", o.server_cpus, o.load_cpus);
        let server = start(&all).await;
        println!("# cpus {all}: {}", runtime_line(dir.path()));
        let (saml2, cores2) = saml_responses(&server, &base, &all, o.seconds, dir.path()).await;
        row(
            "SAML Responses/s, two signatures, 2 cores",
            saml2,
            format!(
                "{:.2}x one core (server busy {cores2:.2} cores, load the rest)",
                saml2 / saml1
            ),
        );
        server.stop();
    } else {
        server.stop();
    }

    if o.runs("sessions") {
        let server = start(&o.server_cpus).await;
        let made = sessions(&base, o.sessions).await;
        tokio::time::sleep(Duration::from_secs(1)).await;
        row(
            &format!("RSS with {made} live sessions, MB"),
            server.rss_mb(),
            String::new(),
        );
        server.stop();
    }
    let _ = std::io::stdout().flush();
}

fn row(label: &str, value: f64, note: String) {
    let value = if value < 100.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.0}")
    };
    println!("{label:<46}{value:>10}   {note}");
}

fn machine_line() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown cpu".into());
    // Counted from /proc: this process is already pinned to the load cores.
    let cores = std::fs::read_to_string("/proc/cpuinfo")
        .map(|t| t.lines().filter(|l| l.starts_with("processor")).count())
        .unwrap_or(0);
    let date = chrono::Utc::now().format("%Y-%m-%d");
    format!("{date}, {cpu}, {cores} cores")
}

/// `openssl speed rsa2048` on the server's core: the sign/s column of the "rsa 2048 bits" line.
fn rsa_sign_rate(cpus: &str, seconds: u64) -> f64 {
    let out = Command::new("taskset")
        .args([
            "-c",
            cpus,
            "openssl",
            "speed",
            "-seconds",
            &seconds.to_string(),
            "rsa2048",
        ])
        .stderr(Stdio::null())
        .output()
        .unwrap_or_else(|e| fail(&format!("openssl speed: {e}")));
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.starts_with("rsa") && l.contains("2048 bits"))
        .and_then(|l| {
            let numbers: Vec<f64> = l
                .split_whitespace()
                .filter_map(|w| w.trim_end_matches('s').parse().ok())
                .collect();
            // [2048, sign time, verify time, sign/s, verify/s]
            numbers.get(3).copied()
        })
        .unwrap_or_else(|| fail(&format!("cannot read openssl speed output:\n{text}")))
}

fn wrk(cpus: &str, url: &str, seconds: u64) -> f64 {
    let out = Command::new("taskset")
        .args([
            "-c",
            cpus,
            "wrk",
            "-t1",
            "-c32",
            &format!("-d{seconds}s"),
            url,
        ])
        .output()
        .unwrap_or_else(|e| fail(&format!("wrk: {e}")));
    let text = String::from_utf8_lossy(&out.stdout);
    if text.contains("Non-2xx") {
        fail(&format!("{url} answered errors under load:\n{text}"));
    }
    text.lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| fail(&format!("cannot read wrk output:\n{text}")))
}

/// What the server logged about its runtime: its async workers and signing pool, which must
/// follow the cores it is pinned to.
fn runtime_line(dir: &std::path::Path) -> String {
    std::fs::read_to_string(dir.join("server.log"))
        .ok()
        .and_then(|log| {
            log.lines()
                .rev()
                .find(|l| l.contains("async workers"))
                .map(|l| {
                    l.split_once("INFO")
                        .map_or(l, |(_, rest)| rest)
                        .trim()
                        .to_string()
                })
        })
        .unwrap_or_else(|| "(the server did not log its runtime)".into())
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| fail(&format!("no free port: {e}")))
}

fn write_config(dir: &std::path::Path, port: u16, secret: &str) -> std::path::PathBuf {
    // A cheap argon2 hash: 10,000 sign-ins measure sessions, not password hashing.
    use argon2::password_hash::{PasswordHasher, SaltString};
    let params = argon2::Params::new(8, 1, 1, None).unwrap_or_else(|e| fail(&e.to_string()));
    let hasher = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let salt = SaltString::encode_b64(b"perf-salt-16byte").unwrap_or_else(|e| fail(&e.to_string()));
    let hash = hasher
        .hash_password(PASSWORD.as_bytes(), &salt)
        .unwrap_or_else(|e| fail(&e.to_string()))
        .to_string();
    let text = format!(
        r#"[server]
listen = "127.0.0.1:{port}"
public_url = "http://127.0.0.1:{port}"
data_dir = "data"
keys_dir = "keys"

[login]
max_failures_per_ip = 1000000
max_failures_per_account = 1000000

[[oidc.clients]]
client_id = "{CLIENT_ID}"
client_secret = "{secret}"
redirect_uris = ["{CALLBACK}"]

[[saml.service_providers]]
entity_id = "{SP_ENTITY}"
acs_url = "{SP_ACS}"
sign_response = true
sign_assertion = true
require_signed_requests = false

[[directory.users]]
email = "{USER}"
password_hash = "{hash}"
given_name = "Alice"
family_name = "Martin"
groups = ["corp-employees"]
"#
    );
    let path = dir.join("passerelle.toml");
    std::fs::write(&path, text).unwrap_or_else(|e| fail(&format!("config: {e}")));
    path
}

struct Server {
    child: Child,
}

impl Server {
    async fn start(
        bin: &str,
        config: &std::path::Path,
        cpus: &str,
        dir: &std::path::Path,
        base: &str,
    ) -> Server {
        let log =
            std::fs::File::create(dir.join("server.log")).unwrap_or_else(|e| fail(&e.to_string()));
        let mut command = Command::new("taskset");
        // The server must not outlive this process, even when a measure fails and we exit early:
        // the kernel sends it SIGTERM when we end (taskset execs the server, which keeps it).
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
            .args(["-c", cpus, bin, "serve", "--config"])
            .arg(config)
            // Warnings, and the one line saying how many workers the runtime started.
            .env("RUST_LOG", "warn,passerelle::runtime=info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| fail(&format!("cannot start {bin}: {e}")));
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if let Ok(r) = http.get(format!("{base}/readyz")).send().await {
                if r.status() == 200 {
                    return Server { child };
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Server { child }.stop();
        let log = std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        fail(&format!("the server did not become ready:\n{log}"))
    }

    /// CPU time the server has used so far (user + system), in seconds.
    fn cpu_seconds(&self) -> f64 {
        // SAFETY: sysconf only reads a system constant.
        let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
        std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .ok()
            .and_then(|stat| {
                // Fields after the command name, which is in parentheses and may hold spaces:
                // utime and stime are the 12th and 13th.
                let rest = stat.rsplit_once(')')?.1;
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let utime: f64 = fields.get(11)?.parse().ok()?;
                let stime: f64 = fields.get(12)?.parse().ok()?;
                Some((utime + stime) / ticks)
            })
            .unwrap_or(f64::NAN)
    }

    fn rss_mb(&self) -> f64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            })
            .map(|kb| kb / 1024.0)
            .unwrap_or(f64::NAN)
    }

    fn stop(mut self) {
        let _ = Command::new("kill")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap_or_else(|e| fail(&format!("http client: {e}")))
}

/// A browser with a session: GET /login, POST the form.
async fn signed_in(base: &str) -> Option<reqwest::Client> {
    let http = browser();
    sign_in(&http, base).await?;
    Some(http)
}

/// Signs `http` (a browser keeping cookies) in.
async fn sign_in(http: &reqwest::Client, base: &str) -> Option<()> {
    let page = http
        .get(format!("{base}/login"))
        .send()
        .await
        .ok()?
        .text()
        .await
        .ok()?;
    let csrf = hidden(&page, "csrf_token")?;
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
        .ok()?;
    if r.status() != 303 && std::env::var_os("PERF_DEBUG").is_some() {
        eprintln!("sign-in: {}", r.status());
    }
    (r.status() == 303).then_some(())
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')? + start;
    Some(html[start..end].to_string())
}

/// Runs `one` on `workers` signed-in browsers for `seconds`; returns completions per second.
async fn sustained<F, Fut>(base: &str, seconds: u64, workers: usize, one: F) -> f64
where
    F: Fn(reqwest::Client, String) -> Fut + Send + Sync + 'static + Clone,
    Fut: std::future::Future<Output = bool> + Send,
{
    let mut browsers = Vec::new();
    for _ in 0..workers {
        browsers.push(
            signed_in(base)
                .await
                .unwrap_or_else(|| fail("cannot sign in")),
        );
    }
    let done = Arc::new(AtomicU64::new(0));
    let failed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for http in browsers {
        let (done, failed, one, base) =
            (done.clone(), failed.clone(), one.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                if one(http.clone(), base.clone()).await {
                    done.fetch_add(1, Ordering::Relaxed);
                } else {
                    failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let failed = failed.load(Ordering::Relaxed);
    if failed > 0 {
        fail(&format!("{failed} operations failed under load"));
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

async fn code_flows(base: &str, secret: &str, seconds: u64) -> f64 {
    let secret = secret.to_string();
    sustained(base, seconds, 32, move |http, base| {
        let secret = secret.clone();
        async move { one_flow(&http, &base, &secret).await.is_some() }
    })
    .await
}

async fn one_flow(http: &reqwest::Client, base: &str, secret: &str) -> Option<()> {
    let verifier = passerelle::web::random_token(32);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(openssl::sha::sha256(verifier.as_bytes()));
    let r = http
        .get(format!("{base}/oidc/authorize"))
        .query(&[
            ("response_type", "code"),
            ("client_id", CLIENT_ID),
            ("redirect_uri", CALLBACK),
            ("scope", "openid email profile groups"),
            ("state", "s"),
            ("nonce", "n"),
            ("code_challenge", &challenge),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .await
        .ok()?;
    let location = r.headers().get("location")?.to_str().ok()?.to_string();
    let code = url::Url::parse(&location)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())?;
    let token = http
        .post(format!("{base}/oidc/token"))
        .basic_auth(CLIENT_ID, Some(secret))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .ok()?;
    let body: serde_json::Value = token.json().await.ok()?;
    body.get("id_token").map(|_| ())
}

/// The wrk script of the SAML measure: each request a different prepared AuthnRequest (their
/// IDs are single-use), each answer checked for a 200 auto-POST page carrying a SAMLResponse.
const SAML_SCRIPT: &str = r#"
local paths, n = {}, 0
failures, exhausted = 0, 0
local cookie
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  cookie = args[2]
end
function request()
  n = n + 1
  if n > #paths then n = 1; exhausted = exhausted + 1 end
  return wrk.format("GET", paths[n], { ["Cookie"] = cookie })
end
function response(status, headers, body)
  if status ~= 200 or not string.find(body, 'name="SAMLResponse"', 1, true) then
    failures = failures + 1
  end
end
local threads = {}
function setup(thread) threads[#threads + 1] = thread end
function done(summary, latency, requests)
  local failed, wrapped = 0, 0
  for _, t in ipairs(threads) do
    failed = failed + t:get("failures")
    wrapped = wrapped + t:get("exhausted")
  end
  io.write(string.format("failures: %d\nexhausted: %d\n", failed, wrapped))
end
"#;

/// At most this many SAML Responses per second are prepared for (per measured second).
const SAML_PREPARED_PER_SECOND: u64 = 4000;

/// SAML Responses per second, and the server's CPU (in cores) meanwhile: wrk on `load_cpus`
/// sends prepared HTTP-Redirect AuthnRequests with one signed-in session's cookie over 32
/// connections. wrk, not our HTTP client, so that the load costs little of the cores it shares
/// with the server in the two-core measure.
async fn saml_responses(
    server: &Server,
    base: &str,
    load_cpus: &str,
    seconds: u64,
    dir: &std::path::Path,
) -> (f64, f64) {
    let (cookie, check) = saml_session(base)
        .await
        .unwrap_or_else(|| fail("cannot sign in for the SAML measure"));
    check_saml_answer(&check, base).await;
    let script = dir.join("saml.lua");
    let paths = dir.join("saml-requests.txt");
    let mut lines = String::new();
    for _ in 0..SAML_PREPARED_PER_SECOND * seconds {
        lines.push_str(&saml_request_path(base));
        lines.push('\n');
    }
    std::fs::write(&script, SAML_SCRIPT)
        .and_then(|()| std::fs::write(&paths, lines))
        .unwrap_or_else(|e| fail(&format!("SAML requests: {e}")));
    let cpu_before = server.cpu_seconds();
    let out = Command::new("taskset")
        .args(["-c", load_cpus, "wrk", "-t1", "-c32"])
        .arg(format!("-d{seconds}s"))
        .arg("-s")
        .arg(&script)
        .arg(format!("{base}/saml/sso"))
        .arg("--")
        .arg(&paths)
        .arg(&cookie)
        .output()
        .unwrap_or_else(|e| fail(&format!("wrk: {e}")));
    let cores = (server.cpu_seconds() - cpu_before) / seconds as f64;
    let text = String::from_utf8_lossy(&out.stdout);
    let count = |name: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or_else(|| fail(&format!("cannot read wrk output:\n{text}")))
    };
    if count("failures:") > 0 || text.contains("Non-2xx") {
        fail(&format!("SAML sign-ins failed under load:\n{text}"));
    }
    if count("exhausted:") > 0 {
        fail("more SAML Responses than were prepared for: raise SAML_PREPARED_PER_SECOND");
    }
    let rate = text
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| fail(&format!("cannot read wrk output:\n{text}")));
    (rate, cores)
}

/// A signed-in session: its Cookie header, and a browser holding it.
async fn saml_session(base: &str) -> Option<(String, reqwest::Client)> {
    use reqwest::cookie::CookieStore as _;
    let jar = Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .ok()?;
    sign_in(&http, base).await?;
    let url = url::Url::parse(base).ok()?;
    let cookie = jar.cookies(&url)?.to_str().ok()?.to_string();
    Some((cookie, http))
}

/// What the measure counts is a real answer: one Response, checked before the clock starts, is
/// a success with both signatures.
async fn check_saml_answer(http: &reqwest::Client, base: &str) {
    let page = async {
        http.get(format!("{base}{}", saml_request_path(base)))
            .send()
            .await
            .ok()?
            .text()
            .await
            .ok()
    }
    .await
    .unwrap_or_default();
    // The page escapes the value for HTML: base64's `/` comes as `&#x2f;`.
    let xml = hidden(&page, "SAMLResponse")
        .map(|value| value.replace("&#x2f;", "/"))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    let signatures = xml.matches("<ds:SignatureValue>").count();
    if !xml.contains("urn:oasis:names:tc:SAML:2.0:status:Success") || signatures != 2 {
        fail(&format!(
            "the SAML answer is not a doubly-signed success ({signatures} signatures):\n{page}"
        ));
    }
}

/// The path of an HTTP-Redirect AuthnRequest with a fresh ID.
fn saml_request_path(base: &str) -> String {
    let id = format!("_{}", passerelle::web::random_token(16));
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ");
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{base}/saml/sso" AssertionConsumerServiceURL="{SP_ACS}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{SP_ENTITY}</saml:Issuer></samlp:AuthnRequest>"#
    );
    let mut deflater =
        flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let deflated = deflater
        .write_all(xml.as_bytes())
        .and_then(|()| deflater.finish())
        .unwrap_or_else(|e| fail(&format!("deflate: {e}")));
    let request = base64::engine::general_purpose::STANDARD.encode(deflated);
    let query: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("SAMLRequest", &request)
        .finish();
    format!("/saml/sso?{query}")
}

/// Signs in `n` separate browsers (each a session row); returns how many succeeded.
async fn sessions(base: &str, n: usize) -> usize {
    let made = Arc::new(AtomicU64::new(0));
    let next = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let (made, next, base) = (made.clone(), next.clone(), base.to_string());
        tasks.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < n as u64 {
                if signed_in(&base).await.is_some() {
                    made.fetch_add(1, Ordering::Relaxed);
                }
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    made.load(Ordering::Relaxed) as usize
}
