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
        String::from_utf8_lossy(&out.stderr).contains("server.listen"),
        "a type error names its key"
    );
}

#[test]
fn check_accepts_the_annotated_example() {
    let dir = tempfile::tempdir().unwrap();
    let example = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/passerelle.toml"
    ))
    .unwrap();
    let path = dir.path().join("passerelle.toml");
    std::fs::write(&path, example).unwrap();
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
    passerelle::login::check_password_hash(hash.trim()).unwrap();
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
