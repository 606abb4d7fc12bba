//! The key ring nodes share on PostgreSQL: one key for nodes starting together, a rotation on
//! one adopted by all at the same `signs_from`, private keys sealed under `[keys]
//! encryption_key` (refused when missing or wrong), and `passerelle keys rewrap`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use serde_json::Value;
use sqlx::Connection;

use crate::common::{base_config, pg, start, Browser, TestServer, ADMIN_TOKEN};
use crate::oidc::{exchange, lucca_code};
use crate::postgres::on_database;

/// Another key-encryption key (base64 of 32 bytes, for these tests only).
const NEW_KEK: &str = "h2TkV/f0XC3khMZFU11u7Q9M9RA8y2vEXW9cYVOicPQ=";

fn passerelle() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_passerelle"));
    for var in passerelle::config::ENV_OVERRIDES {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null());
    cmd
}

fn output(out: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

async fn jwks(node: &TestServer) -> Value {
    reqwest::get(node.url("/oidc/jwks"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn kids(jwks: &Value) -> Vec<String> {
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// The kid in the header of the ID token a complete code flow on `node` ends with.
async fn signing_kid(node: &TestServer) -> String {
    let browser = Browser::new();
    let (code, verifier) = lucca_code(node, &browser, "openid").await;
    let (status, body) = exchange(node, &code, &verifier).await;
    assert_eq!(status, 200, "{body}");
    let token = body["id_token"].as_str().unwrap();
    let header = URL_SAFE_NO_PAD
        .decode(token.split('.').next().unwrap())
        .unwrap();
    let header: Value = serde_json::from_slice(&header).unwrap();
    header["kid"].as_str().unwrap().to_string()
}

async fn stored_rows(url: &str) -> Vec<(String, String, String, String)> {
    let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
    sqlx::query_as("SELECT kid, kek_id, sealed_key, certificate FROM signing_keys ORDER BY kid")
        .fetch_all(&mut conn)
        .await
        .unwrap()
}

#[tokio::test]
async fn two_nodes_starting_together_on_an_empty_database_end_with_one_key() {
    let Some(url) = pg::database().await else {
        return;
    };
    let (a, b) = tokio::join!(
        start(|c| on_database(c, &url)),
        start(|c| on_database(c, &url))
    );
    let (on_a, on_b) = (jwks(&a).await, jwks(&b).await);
    assert_eq!(kids(&on_a).len(), 1, "{on_a}");
    assert_eq!(on_a, on_b, "the same JWKS on both nodes");
    assert_eq!(stored_rows(&url).await.len(), 1);
    assert_eq!(signing_kid(&a).await, kids(&on_a)[0]);
    assert_eq!(signing_kid(&b).await, kids(&on_a)[0]);
}

#[tokio::test]
async fn a_rotation_on_one_node_is_adopted_by_the_other_and_both_switch_at_signs_from() {
    let Some(url) = pg::database().await else {
        return;
    };
    let node = |c: &mut passerelle::config::Config| {
        on_database(c, &url);
        c.keys.reload_interval = Duration::from_millis(300);
        c.keys.rotation_delay = Duration::from_secs(4);
    };
    let a = start(node).await;
    let b = start(node).await;
    let old = a.state().keys.signer().kid.clone();

    let r = reqwest::Client::new()
        .post(a.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let staged: Value = r.json().await.unwrap();
    let new = staged["staged"]["kid"].as_str().unwrap().to_string();
    let signs_from: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(staged["staged"]["signs_from"].clone()).unwrap();

    // B publishes the staged key within its reload interval (three intervals of slack on a
    // busy machine), before it signs with it.
    let rotated = Instant::now();
    while !kids(&jwks(&b).await).contains(&new) {
        assert!(
            rotated.elapsed() < Duration::from_millis(900),
            "B did not adopt the rotation"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(kids(&jwks(&a).await), kids(&jwks(&b).await));
    // A second rotation on B is refused: A's key is pending on every node.
    let again = reqwest::Client::new()
        .post(b.url("/admin/keys/rotate"))
        .bearer_auth(ADMIN_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 409);

    // Both switch at the same instant: the stored signs_from, to the second.
    for node in [&a, &b] {
        let keys = &node.state().keys;
        assert_eq!(
            keys.signer_at(signs_from - chrono::TimeDelta::seconds(1))
                .kid,
            old
        );
        assert_eq!(keys.signer_at(signs_from).kid, new);
    }
    if chrono::Utc::now() + chrono::TimeDelta::seconds(1) < signs_from {
        assert_eq!(signing_kid(&b).await, old, "not before signs_from");
    }
    let wait = (signs_from - chrono::Utc::now())
        .to_std()
        .unwrap_or_default();
    tokio::time::sleep(wait + Duration::from_millis(100)).await;
    assert_eq!(signing_kid(&a).await, new);
    assert_eq!(signing_kid(&b).await, new);
}

#[tokio::test]
async fn the_stored_private_key_is_sealed_not_plaintext() {
    let Some(url) = pg::database().await else {
        return;
    };
    let a = start(|c| on_database(c, &url)).await;
    let signer = a.state().keys.signer();
    let der = signer.pkey.private_key_to_pkcs8().unwrap();
    let pem = String::from_utf8(signer.pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
    let rows = stored_rows(&url).await;
    assert_eq!(rows.len(), 1);
    let (kid, kek_id, sealed, certificate) = &rows[0];
    assert_eq!(kid, &signer.kid);
    assert!(certificate.starts_with("-----BEGIN CERTIFICATE-----"));
    for text in [kek_id, sealed] {
        assert!(!text.contains("PRIVATE KEY"), "{text}");
        assert!(!text.contains(pg::ENCRYPTION_KEY), "{text}");
    }
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    assert!(!sealed.contains(&body[..32]));
    let blob = STANDARD
        .decode(sealed.strip_prefix("v1.").expect("versioned"))
        .unwrap();
    // Nonce, ciphertext of the DER, tag: no 16-byte run of the key appears.
    assert_eq!(blob.len(), 12 + der.len() + 16);
    assert!(!der.windows(16).any(|w| blob.windows(16).any(|v| v == w)));
    // Nor is it anywhere in the row's table as plain PEM or DER base64.
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let dump: String =
        sqlx::query_scalar("SELECT string_agg(signing_keys::text, ' ') FROM signing_keys")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    assert!(!dump.contains(&STANDARD.encode(&der)[..32]));
}

/// A node given another KEK than the one the ring was sealed under refuses to start, naming the
/// key it cannot open and the setting to fix.
#[tokio::test]
async fn a_node_with_a_wrong_kek_is_refused_naming_the_kid() {
    let Some(url) = pg::database().await else {
        return;
    };
    let a = start(|c| on_database(c, &url)).await;
    let kid = a.state().keys.signer().kid.clone();
    let dir = tempfile::tempdir().unwrap();
    let mut config = base_config();
    config.server.data_dir = dir.path().join("data");
    config.server.keys_dir = dir.path().join("keys");
    on_database(&mut config, &url);
    config.keys.encryption_key = Some(passerelle::config::Secret::new(NEW_KEK));
    let err = passerelle::app::build_state(config, &Default::default())
        .await
        .err()
        .expect("refused");
    let text = err.to_string();
    assert!(text.contains(&kid), "{text}");
    assert!(text.contains("[keys] encryption_key"), "{text}");
    assert!(
        !text.contains(NEW_KEK) && !text.contains(pg::ENCRYPTION_KEY),
        "{text}"
    );
    assert!(
        !dir.path().join("keys").exists(),
        "no file ring in PostgreSQL mode"
    );

    // `check` says so before a start is tried, reading the stored keys and changing nothing.
    let path = dir.path().join("p.toml");
    let write = |kek: &str| {
        std::fs::write(
            &path,
            format!(
                "[server]\ndata_dir = \"{0}/data\"\nkeys_dir = \"{0}/keys\"\n[store]\nurl = \"{url}\"\n\
                 [keys]\nencryption_key = \"{kek}\"\n",
                dir.path().display()
            ),
        )
        .unwrap()
    };
    write(NEW_KEK);
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains(&format!(
            "error: keys.encryption_key: signing key {kid} in the database is sealed under"
        )),
        "{text}"
    );
    write(pg::ENCRYPTION_KEY);
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = output(&out);
    assert!(!text.contains("keys.encryption_key"), "{text}");
    assert_eq!(stored_rows(&url).await.len(), 1);
}

/// KEK rotation: the new KEK in front, the old one as previous, `passerelle keys rewrap`; then
/// a node with only the new KEK starts and publishes the same keys, and the old KEK alone no
/// longer opens them.
#[tokio::test]
async fn rewrap_then_a_start_with_only_the_new_kek_works() {
    let Some(url) = pg::database().await else {
        return;
    };
    let mut a = start(|c| on_database(c, &url)).await;
    a.state().keys.rotate().await.unwrap();
    let before = jwks(&a).await;
    assert_eq!(kids(&before).len(), 2);
    a.running.take().unwrap().stop().await;

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\ndata_dir = \"{0}/data\"\nkeys_dir = \"{0}/keys\"\n[store]\nurl = \"{url}\"\n\
             [keys]\nencryption_key = \"{NEW_KEK}\"\nprevious_encryption_keys = [\"{1}\"]\n",
            dir.path().display(),
            pg::ENCRYPTION_KEY
        ),
    )
    .unwrap();
    let sealed_before = stored_rows(&url).await;
    let out = passerelle()
        .args(["keys", "rewrap", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = output(&out);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("2 key(s) rewrapped"), "{text}");
    assert!(
        !text.contains(NEW_KEK) && !text.contains(pg::ENCRYPTION_KEY),
        "{text}"
    );
    let sealed_after = stored_rows(&url).await;
    for (b, a) in sealed_before.iter().zip(&sealed_after) {
        assert_eq!(b.0, a.0);
        assert_ne!((&b.1, &b.2), (&a.1, &a.2), "resealed under the new KEK");
    }

    let node = start(|c| {
        on_database(c, &url);
        c.keys.encryption_key = Some(passerelle::config::Secret::new(NEW_KEK));
    })
    .await;
    assert_eq!(kids(&jwks(&node).await), kids(&before));
    let old_only = passerelle()
        .args(["keys", "show", "--config"])
        .arg({
            let old = dir.path().join("old.toml");
            std::fs::write(
                &old,
                format!(
                    "[store]\nurl = \"{url}\"\n[keys]\nencryption_key = \"{}\"\n",
                    pg::ENCRYPTION_KEY
                ),
            )
            .unwrap();
            old
        })
        .output()
        .unwrap();
    let text = output(&old_only);
    assert!(!old_only.status.success(), "{text}");
    assert!(
        text.contains("is sealed under key-encryption key") && text.contains(&kids(&before)[0]),
        "{text}"
    );
}

/// PostgreSQL without `[keys] encryption_key`: `check` reports it and `serve` refuses to start,
/// both naming the key.
#[tokio::test]
async fn check_and_serve_refuse_postgres_without_an_encryption_key() {
    let Some(url) = pg::database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p.toml");
    std::fs::write(
        &path,
        format!(
            "[server]\nlisten = \"127.0.0.1:0\"\ndata_dir = \"{0}/data\"\nkeys_dir = \"{0}/keys\"\n\
             [store]\nurl = \"{url}\"\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let out = passerelle()
        .args(["check", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let text = output(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("error: keys.encryption_key: is required with [store] url"),
        "{text}"
    );

    let mut serve = passerelle()
        .args(["serve", "--config"])
        .arg(&path)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(status) = serve.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            serve.kill().ok();
            panic!("serve started without an encryption key");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = output(&serve.wait_with_output().unwrap());
    assert!(!status.success(), "{text}");
    assert!(text.contains("keys.encryption_key"), "{text}");
    assert!(!text.contains(pg::PASSWORD), "{text}");
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0, "refused before touching the database");
}
