//! The `passerelle` binary: check, keys, hash-password.

use std::process::{Command, Stdio};

fn passerelle() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    for var in passerelle::config::ENV_OVERRIDES {
        c.env_remove(var);
    }
    c
}

#[test]
fn check_names_the_key_of_every_problem() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(
        &path,
        r#"
[server]
public_url = "ftp://nope"
[[oidc.clients]]
client_id = "lucca"
redirect_uris = ["http://evil.example/cb"]
[lucca]
requests_per_minute = 0
"#,
    )
    .unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success());
    for key in [
        "server.public_url",
        "oidc.clients[0].redirect_uris[0]",
        "lucca.requests_per_minute",
    ] {
        assert!(
            text.contains(&format!("error: {key}:")),
            "{key} in:\n{text}"
        );
    }

    std::fs::write(&path, "[server]\nlisten = 3\n").unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("server.listen"),
        "a type error names its key"
    );
}

/// Runs `passerelle check` on `toml` in a fresh folder (also its working directory):
/// (exit success, stdout, stderr, the folder).
fn check(toml: &str) -> (bool, String, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passerelle.toml");
    std::fs::write(&path, toml).unwrap();
    let out = passerelle()
        .current_dir(dir.path())
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        dir,
    )
}

const A_CLIENT: &str =
    "[[oidc.clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://app.example/cb\"]\n";

/// Issue 14: a TOML syntax error names the file, line and column and shows the line with a
/// caret; everything `check` says is on stdout, nothing on stderr.
#[test]
fn check_shows_a_toml_syntax_error_with_its_line_column_and_a_caret_on_stdout() {
    let (ok, out, err, dir) =
        check("[server]\npublic_url = \"https://sso.example\"\nlisten = \"127.0.0.1:80\" x\n");
    assert!(!ok, "{out}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
    let file = dir.path().join("passerelle.toml");
    assert!(
        out.starts_with(&format!(
            "error: {}:3:25: expected newline, `#`\n",
            file.display()
        )),
        "{out}"
    );
    assert!(out.contains("3 | listen = \"127.0.0.1:80\" x\n"), "{out}");
    assert!(
        out.contains(&format!("  | {}^\n", " ".repeat(24))),
        "the caret under column 25:\n{out}"
    );
    assert!(out.ends_with("1 error(s)\n"), "{out}");

    let (ok, out, err, _dir) = check("[server]\nlisten = 3\n");
    assert!(!ok && err.is_empty(), "{out}{err}");
    assert!(
        out.contains(":2:10: server.listen: invalid type: integer `3`, expected a string"),
        "{out}"
    );
}

/// Issue 14: every problem in one run on one stream: validation errors, secret files that
/// cannot be read and a blank one, together, then the count; exit code 1.
#[test]
fn check_reports_every_problem_of_a_run_together() {
    let (ok, out, err, _dir) = check(
        r#"
[server]
public_url = "ftp://nope"
[admin]
token_file = "missing-token"
[[oidc.clients]]
client_id = "app"
redirect_uris = ["https://app.example/cb"]
client_secret_file = ""
[[oidc.clients]]
client_id = "other"
redirect_uris = ["http://evil.example/cb"]
"#,
    );
    assert!(!ok, "{out}");
    assert!(err.is_empty(), "nothing on stderr: {err}");
    for line in [
        "error: server.public_url: must be an http(s) URL",
        "error: admin.token_file: cannot read secret file ",
        "error: oidc.clients[0].client_secret_file: is blank: give the path of the file that holds the secret, or remove the key (or set oidc.clients[0].client_secret instead)",
        "error: oidc.clients[1].redirect_uris[0]: ",
        "4 error(s), 0 warning(s)",
    ] {
        assert!(out.contains(line), "{line} in:\n{out}");
    }
    assert!(!out.contains("not both"), "{out}");
}

/// Issue 14: a secret in a file is not "both"; a value and a file are.
#[test]
fn check_says_not_both_only_when_both_a_secret_and_its_file_are_given() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret");
    std::fs::write(&secret, "9c1185a5c5e9fc54612808977ee8f548b2258d31\n").unwrap();
    let client = format!(
        "[[oidc.clients]]\nclient_id = \"app\"\nredirect_uris = [\"https://app.example/cb\"]\nclient_secret_file = {:?}\n",
        secret.display().to_string()
    );
    let (ok, out, _, _d) = check(&client);
    assert!(ok, "{out}");
    assert!(out.ends_with("configuration OK\n"), "{out}");
    let (ok, out, _, _d) = check(&format!(
        "{client}client_secret = \"9c1185a5c5e9fc54612808977ee8f548b2258d31\"\n"
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains("error: oidc.clients[0].client_secret_file: give either oidc.clients[0].client_secret or oidc.clients[0].client_secret_file, not both"),
        "{out}"
    );
}

/// Issue 14: an empty configuration is not "OK": it has nothing to sign in to. No warning
/// about the default templates folder, which the admin never named; a named one that is
/// missing is worth one. `check` creates no directory.
#[test]
fn check_of_an_empty_config_warns_there_is_nothing_to_sign_in_to_and_creates_nothing() {
    let (ok, out, err, dir) = check("");
    assert!(ok, "warnings only: {out}");
    assert!(err.is_empty(), "{err}");
    assert!(
        out.contains("warning: oidc.clients: nothing is configured to sign in to: add an [[oidc.clients]] or a [[saml.service_providers]]"),
        "{out}"
    );
    assert!(!out.contains("configuration OK"), "{out}");
    assert!(!out.contains("templates_dir"), "{out}");
    assert!(out.ends_with("no errors, 1 warning(s)\n"), "{out}");
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["passerelle.toml"], "check created nothing");

    let (ok, out, _, _d) = check(A_CLIENT);
    assert!(ok, "{out}");
    assert_eq!(out, "configuration OK\n");

    let (ok, out, _, dir) = check(&format!(
        "[server]\ntemplates_dir = \"branding\"\n{A_CLIENT}"
    ));
    assert!(ok, "{out}");
    assert!(
        out.contains(&format!(
            "warning: server.templates_dir: {} does not exist: the built-in templates will be used",
            dir.path().join("branding").display()
        )),
        "{out}"
    );
}

/// Issue 14: a password_hash that cannot be verified is an error naming the person's entry
/// (for `check`, and `serve` refuses to start with it), never a silent "Wrong email or password.".
#[test]
fn a_malformed_password_hash_is_an_error_naming_the_user() {
    for (hash, says) in [
        ("nonsense", "not a PHC hash string"),
        (
            "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ",
            "has no salt or no hash output",
        ),
        (
            "$argon2id$v=19$m=1,t=2,p=1$c2FsdHNhbHQ$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "argon2 refuses its parameters",
        ),
    ] {
        let toml = format!(
            "{A_CLIENT}[[directory.users]]\nemail = \"ok@acme.example\"\npassword_hash = \"{}\"\n[[directory.users]]\nemail = \"bad@acme.example\"\npassword_hash = \"{hash}\"\n",
            passerelle::login::hash_password("a-password-of-our-own").unwrap()
        );
        let (ok, out, _, dir) = check(&toml);
        assert!(!ok, "{hash}: {out}");
        assert!(
            out.contains(&format!("error: directory.users[1].password_hash: {says}")),
            "{hash}: {out}"
        );
        assert!(!out.contains("directory.users[0]"), "{out}");
        let serve = passerelle()
            .args(["serve", "--config"])
            .arg(dir.path().join("passerelle.toml"))
            .env("PASSERELLE_LISTEN", "127.0.0.1:0")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&serve.stderr);
        assert!(!serve.status.success(), "{stderr}");
        assert!(
            stderr.contains("directory.users[1].password_hash"),
            "{stderr}"
        );
    }
}

/// Finding 4: the shipped example's secrets are refused by `check` and `serve`, each named;
/// with real values in their place the same file passes. `check` creates no directory.
#[test]
fn check_and_serve_refuse_the_examples_placeholders_until_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/passerelle.toml"
    ))
    .unwrap();
    let path = dir.path().join("passerelle.toml");
    std::fs::write(&path, &example).unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}");
    for key in [
        "admin.token",
        "oidc.clients[0].client_secret",
        "directory.users[0].password_hash",
        "directory.users[1].password_hash",
    ] {
        assert!(
            text.contains(&format!("error: {key}: ")),
            "{key} in:\n{text}"
        );
    }
    assert!(
        text.contains("error: admin.token: this value is a placeholder from the shipped example; generate one with `openssl rand -base64 32`"),
        "{text}"
    );
    assert!(text.contains("4 error(s)"), "{text}");

    let serve = passerelle()
        .args(["serve", "--config"])
        .arg(&path)
        .env("PASSERELLE_LISTEN", "127.0.0.1:0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&serve.stderr);
    assert!(!serve.status.success(), "{stderr}");
    assert!(stderr.contains("admin.token"), "{stderr}");
    assert!(stderr.contains("oidc.clients[0].client_secret"), "{stderr}");

    let hash = passerelle::login::hash_password("a-password-of-our-own").unwrap();
    let mut real = String::new();
    for line in example.lines() {
        let line = if line.starts_with("token = ") {
            "token = \"Xb0GgC8mJ1n0h8rR3p8yP6c9l1Q4w2e7V5t3u6i9o0A=\"".to_string()
        } else if line.starts_with("client_secret = ") {
            "client_secret = \"9c1185a5c5e9fc54612808977ee8f548b2258d31\"".to_string()
        } else if line.starts_with("password_hash = ") {
            format!("password_hash = \"{hash}\"")
        } else {
            line.to_string()
        };
        real.push_str(&line);
        real.push('\n');
    }
    std::fs::write(&path, real).unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    for created_on_first_start in ["data", "keys"] {
        assert!(
            !dir.path().join(created_on_first_start).exists(),
            "check must not create {created_on_first_start}"
        );
    }
}

/// Finding 7: an existing keys directory open to others is a warning naming the fix.
#[cfg(unix)]
#[test]
fn check_warns_about_an_open_keys_directory() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys");
    std::fs::create_dir(&keys).unwrap();
    std::fs::set_permissions(&keys, std::fs::Permissions::from_mode(0o755)).unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "").unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "warning: server.keys_dir: {} is open to other users (mode 755) and holds private keys: chmod 700 {}",
            keys.display(),
            keys.display()
        )),
        "{text}"
    );
    assert!(!dir.path().join("data").exists());
}

/// The demo makes its own secrets (printed in its banner) and its data directory is private.
#[cfg(unix)]
#[test]
fn the_demo_starts_with_secrets_of_its_own() {
    use std::io::BufRead;
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let mut child = passerelle()
        .args(["demo", "--listen", "127.0.0.1:0"])
        .env("PASSERELLE_DATA_DIR", dir.path().join("demo"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut token = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while token.is_none() && std::time::Instant::now() < deadline {
        if let Ok(line) = rx.recv_timeout(std::time::Duration::from_secs(1)) {
            if let Some(rest) = line.trim().strip_prefix("Admin token") {
                token = rest.split_whitespace().next().map(str::to_string);
            }
        }
    }
    let data_dir_mode = std::fs::metadata(dir.path().join("demo").join("data"))
        .map(|m| m.permissions().mode() & 0o777);
    let db_mode = std::fs::metadata(dir.path().join("demo/data/passerelle.db"))
        .map(|m| m.permissions().mode() & 0o777);
    child.kill().unwrap();
    child.wait().unwrap();
    let token = token.expect("the demo prints its admin token");
    assert!(token.len() >= 40, "{token}");
    assert!(passerelle::config::secrets::refusal(&token, true).is_none());
    assert_eq!(data_dir_mode.unwrap(), 0o700);
    assert_eq!(db_mode.unwrap(), 0o600);
}

#[test]
fn keys_show_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(&path, "[server]\nkeys_dir = \"k\"\n").unwrap();
    let out = passerelle()
        .args(["keys", "show", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let shown = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        shown.contains("signing") && shown.contains("sha256"),
        "{shown}"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.path().join("k")), 0o700, "keys_dir");
        for entry in std::fs::read_dir(dir.path().join("k")).unwrap() {
            let entry = entry.unwrap();
            if entry.path().extension().is_some_and(|e| e == "pem") {
                assert_eq!(
                    entry.metadata().unwrap().permissions().mode() & 0o777,
                    0o600,
                    "{:?}",
                    entry.path()
                );
            }
        }
    }
    let out = passerelle()
        .args(["keys", "rotate", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(out.status.success());
    let rotated = String::from_utf8_lossy(&out.stdout);
    assert!(
        rotated.contains("staged") && rotated.contains("next"),
        "{rotated}"
    );
}

#[test]
fn hash_password_prints_an_argon2id_hash() {
    let mut child = passerelle()
        .arg("hash-password")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(b"s3cret\n").unwrap();
    let out = child.wait_with_output().unwrap();
    let hash = String::from_utf8_lossy(&out.stdout);
    assert!(hash.starts_with("$argon2id$"), "{hash}");
    passerelle::config::check_password_hash(hash.trim()).unwrap();
}

/// Issue 14: at a terminal, `hash-password` asks twice without echoing what is typed (run
/// under a pseudo-terminal by `script`, which is in every Debian install).
#[cfg(unix)]
#[test]
fn hash_password_prompts_at_a_terminal_without_echo() {
    use std::io::{Read, Write};
    let bin = env!("CARGO_BIN_EXE_passerelle");
    let mut child = Command::new("script")
        .args(["-qec", &format!("{bin} hash-password"), "/dev/null"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    let mut seen = String::new();
    let wait_for = |what: &str, seen: &mut String| {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !seen.contains(what) {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(bytes) => seen.push_str(&String::from_utf8_lossy(&bytes)),
                Err(_) => panic!("no `{what}` in:\n{seen}"),
            }
        }
    };
    wait_for("Password: ", &mut seen);
    // The prompt is written just before echo is turned off; a person types later than that.
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"tty-s3cret\r").unwrap();
    wait_for("Password again: ", &mut seen);
    // The prompt is written just before echo is turned off; a person types later than that.
    std::thread::sleep(std::time::Duration::from_millis(500));
    stdin.write_all(b"tty-s3cret\r").unwrap();
    wait_for("$argon2id$", &mut seen);
    let status = child.wait().unwrap();
    while let Ok(bytes) = rx.recv_timeout(std::time::Duration::from_millis(200)) {
        seen.push_str(&String::from_utf8_lossy(&bytes));
    }
    assert!(status.success(), "{seen}");
    assert!(
        !seen.contains("tty-s3cret"),
        "the password was echoed:\n{seen}"
    );
}

#[test]
fn migrate_says_a_url_without_a_scheme_needs_one() {
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("people.csv");
    std::fs::write(&csv, "email\na@acme.example\n").unwrap();
    for (url, says) in [
        (
            "127.0.0.1:18700",
            "error: --url the URL needs a scheme: http://127.0.0.1:18700",
        ),
        (
            "localhost:18700",
            "error: --url the URL needs a scheme: http://localhost:18700",
        ),
        (
            "ftp://sso.acme.example",
            "use an http:// or https:// URL (not ftp://)",
        ),
    ] {
        let out = passerelle()
            .current_dir(dir.path())
            .args(["migrate", "--dry-run", "--token", "t", "--url", url])
            .arg(&csv)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(stderr.contains(says), "{url}: {stderr}");
        assert!(!stderr.contains("builder error"), "{stderr}");
    }
}

/// Answers every connection on a loopback port with a 200 and `body`, for as long as the
/// test runs.
fn answer_with(content_type: Option<&str>, body: &str) -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    answer_on(listener, content_type, body)
}

fn answer_on(listener: std::net::TcpListener, content_type: Option<&str>, body: &str) -> u16 {
    use std::io::{Read, Write};
    let response = format!(
        "HTTP/1.1 200 OK\r\n{}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        content_type
            .map(|t| format!("Content-Type: {t}\r\n"))
            .unwrap_or_default(),
        body.len()
    );
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf);
            let _ = stream.write_all(response.as_bytes());
        }
    });
    port
}

/// Issue 14: an HTML page at a metadata URL is named as such (not "contains a DTD"), and an
/// unreachable one says why (the whole cause chain, not "error sending request for url").
#[test]
fn check_says_a_metadata_url_serves_html_or_why_it_cannot_be_reached() {
    let html = answer_with(
        Some("text/html; charset=utf-8"),
        "<!DOCTYPE html><html><body>Hi</body></html>",
    );
    let html_no_type = answer_with(None, "\n  <HTML><body>Hi</body></HTML>");
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let sp = |port: u16| {
        format!("[[saml.service_providers]]\nmetadata_url = \"http://127.0.0.1:{port}/metadata\"\n")
    };
    let (ok, out, err, _d) = check(&format!("{}{}{}", sp(html), sp(html_no_type), sp(closed)));
    assert!(!ok && err.is_empty(), "{out}{err}");
    assert!(
        out.contains(&format!("error: saml.service_providers[0].metadata_url: http://127.0.0.1:{html}/metadata is an HTML page, not SAML metadata (HTTP 200, text/html)")),
        "{out}"
    );
    assert!(
        out.contains(&format!("error: saml.service_providers[1].metadata_url: http://127.0.0.1:{html_no_type}/metadata is an HTML page, not SAML metadata (HTTP 200, no Content-Type)")),
        "{out}"
    );
    assert!(!out.contains("DTD"), "{out}");
    let refused = out
        .lines()
        .find(|l| l.starts_with("error: saml.service_providers[2].metadata_url: "))
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        refused.to_lowercase().contains("connection refused"),
        "the cause is named: {refused}"
    );
}

/// Issue 14: an upstream's discovery document is checked when it can be fetched: the issuer
/// it states and the endpoints sign-in needs.
#[test]
fn check_compares_an_upstreams_discovery_with_its_issuer() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let good = format!(
        r#"{{"issuer":"http://127.0.0.1:{port}","authorization_endpoint":"http://127.0.0.1:{port}/a","token_endpoint":"http://127.0.0.1:{port}/t","jwks_uri":"http://127.0.0.1:{port}/k"}}"#
    );
    answer_on(listener, Some("application/json"), &good);
    let other = answer_with(
        Some("application/json"),
        r#"{"issuer":"https://login.example.com/tenant/v2.0","authorization_endpoint":"https://login.example.com/a"}"#,
    );
    let upstream = |issuer: &str| {
        format!(
            "[[upstreams]]\nname = \"corp\"\nissuer = \"{issuer}\"\nclient_id = \"c\"\nclient_secret = \"9c1185a5c5e9fc54612808977ee8f548b2258d31\"\nallowed_email_domains = [\"acme.example\"]\n"
        )
    };
    let (_, out, _, _d) = check(&format!(
        "{A_CLIENT}{}{}",
        upstream(&format!("http://127.0.0.1:{port}")),
        upstream(&format!("http://127.0.0.1:{other}"))
    ));
    assert!(!out.contains("upstreams[0].issuer"), "{out}");
    assert!(
        out.contains(&format!("error: upstreams[1].issuer: the discovery document at http://127.0.0.1:{other}/.well-known/openid-configuration states the issuer `https://login.example.com/tenant/v2.0`, not `http://127.0.0.1:{other}`")),
        "{out}"
    );
    assert!(out.contains("lacks token_endpoint, jwks_uri"), "{out}");
}

#[test]
fn preview_prints_groups_rows_and_claims() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        r#"
[[oidc.clients]]
client_id = "lucca"
client_secret = "lucca-client-secret-0123456789"
redirect_uris = ["https://acme.ilucca.test/cb"]
[[directory.users]]
email = "alice@acme.test"
password = "pw"
groups = ["corp-hr", "stray"]
[[role_mapping]]
group = "corp-hr"
role = "administrateur_rh"
module = "figgo"
"#,
    )
    .unwrap();
    let out = passerelle()
        .args(["preview", "alice@acme.test", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(p["roles"], serde_json::json!(["administrateur_rh"]));
    assert_eq!(p["groups"][1]["outcome"], "dropped_unmapped");
    assert_eq!(
        p["oidc"]["lucca"]["id_token_claims"]["groups"],
        serde_json::json!(["administrateur_rh"])
    );
    let missing = passerelle()
        .args(["preview", "nobody@acme.test", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no user"));
}

#[test]
fn check_warns_about_an_sp_whose_logout_cannot_be_verified() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("passerelle.toml");
    let config = |extra: &str| {
        format!(
            r#"
[server]
data_dir = "{d}/data"
keys_dir = "{d}/keys"

[[saml.service_providers]]
entity_id = "https://sp.example/saml"
acs_url = "https://sp.example/saml/acs"
slo_url = "https://sp.example/saml/slo"
require_signed_requests = false
{extra}
"#,
            d = dir.path().display()
        )
    };
    let key = "saml.service_providers[0].allow_unsigned_logout";
    std::fs::write(&path, config("")).unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "a warning, not an error:\n{text}");
    assert!(
        text.contains(&format!("warning: {key}:")) && text.contains("no signing certificate"),
        "{text}"
    );

    std::fs::write(&path, config("allow_unsigned_logout = true")).unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(!text.contains(key), "the admin chose it:\n{text}");
}

#[test]
fn check_and_serve_refuse_the_old_forwarded_for_switch_and_explain_its_replacement() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.toml");
    std::fs::write(
        &path,
        "[server]\nlisten = \"127.0.0.1:0\"\ntrust_forwarded_for = true\ndata_dir = \"data\"\nkeys_dir = \"keys\"\n",
    )
    .unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("error: server.trust_forwarded_for: replaced by server.trusted_proxies: list your reverse proxies' addresses"),
        "{text}"
    );
    let out = passerelle()
        .args(["serve", "--config"])
        .arg(&path)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "serve refuses to start");
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        text.contains("server.trust_forwarded_for") && text.contains("trusted_proxies"),
        "{text}"
    );
}

/// Logs go to stderr without colour codes when it is not a terminal (a journal, a file): stdout
/// is left for what a command prints. `-V` names the commit and the build date.
#[test]
fn serve_logs_to_stderr_without_colours_and_version_names_the_build() {
    let version = passerelle().arg("-V").output().unwrap();
    let version = String::from_utf8_lossy(&version.stdout).to_string();
    assert!(version.starts_with("passerelle 0."), "{version}");
    assert!(
        version.contains("commit ") && version.contains(", built 20"),
        "{version}"
    );

    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("passerelle.toml");
    std::fs::write(
        &config,
        format!(
            "[server]\nlisten = \"127.0.0.1:{port}\"\npublic_url = \"http://127.0.0.1:{port}\"\n"
        ),
    )
    .unwrap();
    let child = passerelle()
        .args(["serve", "--config"])
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut up = false;
    while !up && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        up = std::net::TcpStream::connect(("127.0.0.1", port)).is_ok();
    }
    // SIGTERM: a clean stop, so the "stopped" line is written too.
    let _ = Command::new("kill").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(up, "the server never listened: {stderr}");
    assert!(
        stdout.trim().is_empty(),
        "nothing but a command's output on stdout: {stdout}"
    );
    assert!(stderr.contains("passerelle is listening"), "{stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "no ANSI escapes off a terminal: {stderr:?}"
    );
}

/// Built-in TLS: `check` reads the files as `serve` would. A key of another certificate, a
/// missing file and an expired certificate are errors naming their key; a certificate near
/// its end and a key file others can read are warnings; a good pair is OK.
#[test]
fn check_reads_the_tls_certificate_and_key_as_serve_would() {
    use crate::common::tls::{KeyFormat, TestCa};
    let files = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let good = ca.issue(files.path(), "good", 90, KeyFormat::Pkcs8Ec);
    let other = ca.issue(files.path(), "other", 90, KeyFormat::Sec1Ec);
    let expired = ca.issue(files.path(), "expired", -2, KeyFormat::Pkcs8Ec);
    let soon = ca.issue(files.path(), "soon", 10, KeyFormat::Pkcs1Rsa);
    let config = |cert: &std::path::Path, key: &std::path::Path| {
        format!(
            "[server]\npublic_url = \"https://sso.acme.test\"\ntls_cert = {:?}\ntls_key = {:?}\n{A_CLIENT}",
            cert.display().to_string(),
            key.display().to_string()
        )
    };

    let (ok, out, _, _d) = check(&config(&good.cert_path, &good.key_path));
    assert!(ok, "{out}");
    assert_eq!(out, "configuration OK\n");

    let (ok, out, _, _d) = check(&config(&good.cert_path, &other.key_path));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "error: server.tls_key: the private key in {} does not belong to the certificate in {}",
            other.key_path.display(),
            good.cert_path.display()
        )),
        "{out}"
    );

    let missing = files.path().join("missing.key.pem");
    let (ok, out, _, _d) = check(&config(&good.cert_path, &missing));
    assert!(!ok, "{out}");
    assert!(
        out.contains(&format!(
            "error: server.tls_key: cannot read {}",
            missing.display()
        )),
        "{out}"
    );

    let (ok, out, _, _d) = check(&config(&expired.cert_path, &expired.key_path));
    assert!(!ok, "{out}");
    assert!(
        out.contains("error: server.tls_cert: the certificate in") && out.contains("expired on"),
        "{out}"
    );

    let (ok, out, _, _d) = check(&format!(
        "[server]\npublic_url = \"https://sso.acme.test\"\ntls_cert = {:?}\n{A_CLIENT}",
        good.cert_path.display().to_string()
    ));
    assert!(!ok, "{out}");
    assert!(
        out.contains(
            "error: server.tls_key: is missing: server.tls_cert and server.tls_key go together"
        ),
        "{out}"
    );

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&soon.key_path, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    let (ok, out, _, _d) = check(&config(&soon.cert_path, &soon.key_path));
    assert!(ok, "warnings only: {out}");
    assert!(
        out.contains(&format!(
            "warning: server.tls_cert: the certificate in {} expires on",
            soon.cert_path.display()
        )) && (out.contains("(in 9 days)") || out.contains("(in 10 days)")),
        "{out}"
    );
    #[cfg(unix)]
    assert!(
        out.contains(&format!(
            "warning: server.tls_key: {} is a private key open to other users (mode 644): chmod 600 {}",
            soon.key_path.display(),
            soon.key_path.display()
        )),
        "{out}"
    );
}
