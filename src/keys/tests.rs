use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use chrono::TimeDelta;
use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use serde_json::json;

use super::*;

fn settings() -> KeysConfig {
    KeysConfig {
        rotation_delay: Duration::from_secs(48 * 3600),
        retire_after: Duration::from_secs(24 * 3600),
        certificate_validity_days: 365,
        ..KeysConfig::default()
    }
}

fn kids(keys: &[Arc<SigningKey>]) -> Vec<String> {
    keys.iter().map(|k| k.kid.clone()).collect()
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn first_start_generates_private_files_and_a_keyring() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("keys");
    let keys = Keys::load_or_generate(&dir, &settings()).unwrap();
    let kid = keys.signer().kid.clone();

    assert_eq!(mode(&dir), 0o700);
    for name in [
        format!("{kid}.key.pem"),
        format!("{kid}.crt.pem"),
        KEYRING.into(),
    ] {
        assert_eq!(mode(&dir.join(&name)), 0o600, "{name}");
    }
    let pem = fs::read_to_string(dir.join(format!("{kid}.key.pem"))).unwrap();
    assert!(pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
    let ring: serde_json::Value =
        serde_json::from_slice(&fs::read(dir.join(KEYRING)).unwrap()).unwrap();
    assert_eq!(ring["keys"][0]["kid"], kid.as_str());
    assert_eq!(ring["keys"][0]["key_file"], format!("{kid}.key.pem"));
    assert_eq!(ring["keys"][0]["cert_file"], format!("{kid}.crt.pem"));

    let status = keys.status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].state, "signing");
    assert_eq!(
        status[0].fingerprint_sha256,
        keys.signer().fingerprint_sha256().unwrap()
    );
    assert!(status[0].not_after - status[0].not_before == TimeDelta::days(365));
}

#[test]
fn a_later_start_loads_the_same_key() {
    let tmp = tempfile::tempdir().unwrap();
    let first = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let again = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    assert_eq!(first.signer().kid, again.signer().kid);
    assert_eq!(
        first.signer().certificate_der().unwrap(),
        again.signer().certificate_der().unwrap()
    );
    // The kid is the thumbprint of the loaded key, not just what the keyring says.
    assert_eq!(
        material::kid_of(&again.signer().pkey).unwrap(),
        again.signer().kid
    );
}

#[tokio::test]
async fn rotation_publishes_first_signs_later_and_retires_after_the_grace_period() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let old = keys.signer().kid.clone();
    let t0 = Utc::now();

    let staged = keys.rotate_at(t0).await.unwrap();
    assert_eq!(staged.state, "next");
    assert_eq!(staged.signs_from, t0 + TimeDelta::hours(48));
    let new = staged.kid.clone();
    assert_ne!(new, old);

    // Published at once, but the old key keeps signing until signs_from.
    assert_eq!(keys.signer_at(t0).kid, old);
    assert_eq!(kids(&keys.published_at(t0)), [old.as_str(), new.as_str()]);
    let err = keys.rotate_at(t0 + TimeDelta::hours(1)).await.unwrap_err();
    assert!(
        matches!(err, KeyError::RotationPending { ref kid, .. } if *kid == new),
        "{err}"
    );

    let switch = staged.signs_from;
    assert_eq!(keys.signer_at(switch - TimeDelta::seconds(1)).kid, old);
    assert_eq!(keys.signer_at(switch).kid, new);
    let retiring = switch + TimeDelta::hours(23);
    assert_eq!(
        kids(&keys.published_at(retiring)),
        [new.as_str(), old.as_str()]
    );
    let states: Vec<String> = keys
        .status_at(retiring)
        .into_iter()
        .map(|s| s.state)
        .collect();
    let until = (switch + TimeDelta::hours(24)).to_rfc3339_opts(SecondsFormat::Secs, true);
    assert_eq!(
        states,
        [format!("retiring until {until}"), "signing".into()]
    );

    let after = switch + TimeDelta::hours(25);
    assert_eq!(kids(&keys.published_at(after)), [new.as_str()]);
    assert_eq!(keys.status_at(after)[0].state, "retired");

    // Once the staged key signs, a further rotation is allowed; the ring survives a restart.
    let third = keys.rotate_at(after).await.unwrap().kid;
    let restarted = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    assert_eq!(kids(&restarted.published_at(after)), [new, third]);
    assert!(
        tmp.path().join(format!("{old}.key.pem")).exists(),
        "retired files are kept"
    );
}

#[tokio::test]
async fn reload_picks_up_a_rotation_by_another_process_and_keeps_the_ring_on_error() {
    let tmp = tempfile::tempdir().unwrap();
    let server = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let cli = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let staged = cli.rotate().await.unwrap().kid;
    assert_eq!(server.published().len(), 1);

    server.reload().await.unwrap();
    assert_eq!(server.published()[1].kid, staged);
    assert!(matches!(
        server.rotate().await,
        Err(KeyError::RotationPending { .. })
    ));

    fs::write(tmp.path().join(KEYRING), b"{ not json").unwrap();
    let err = server.reload().await.unwrap_err().to_string();
    assert!(err.contains("keyring.json"), "{err}");
    assert_eq!(server.published().len(), 2);
}

#[test]
fn sign_jwt_verifies_with_verify_jwt_and_plain_openssl() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let signer = keys.signer();
    // Long expired on purpose: verify_jwt leaves exp to its callers.
    let claims = json!({"iss": "https://idp.example", "sub": "42", "aud": "rp", "exp": 1});
    let token = signer.sign_jwt(&claims).unwrap();

    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let header = URL_SAFE_NO_PAD.decode(parts[0]).unwrap();
    assert_eq!(
        String::from_utf8(header).unwrap(),
        format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, signer.kid)
    );
    assert!(!token.contains('='));

    assert_eq!(keys.verify_jwt(&token).unwrap(), claims);

    let public = signer.cert.public_key().unwrap();
    let mut verifier = Verifier::new(MessageDigest::sha256(), &public).unwrap();
    verifier
        .update(format!("{}.{}", parts[0], parts[1]).as_bytes())
        .unwrap();
    assert!(verifier
        .verify(&URL_SAFE_NO_PAD.decode(parts[2]).unwrap())
        .unwrap());
}

#[test]
fn tampered_and_unsigned_tokens_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let signer = keys.signer();
    let token = signer.sign_jwt(&json!({"sub": "42"})).unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let b64 = |v: serde_json::Value| URL_SAFE_NO_PAD.encode(v.to_string());

    let tampered = format!("{}.{}.{}", parts[0], b64(json!({"sub": "admin"})), parts[2]);
    assert!(matches!(
        keys.verify_jwt(&tampered),
        Err(KeyError::InvalidToken("signature does not verify"))
    ));

    let none = b64(json!({"alg": "none", "typ": "JWT", "kid": signer.kid}));
    for forged in [
        format!("{none}.{}.", parts[1]),
        format!("{none}.{}.{}", parts[1], parts[2]),
    ] {
        assert!(matches!(
            keys.verify_jwt(&forged),
            Err(KeyError::InvalidToken(_))
        ));
    }

    let hs256 = b64(json!({"alg": "HS256", "typ": "JWT", "kid": signer.kid}));
    assert!(matches!(
        keys.verify_jwt(&format!("{hs256}.{}.{}", parts[1], parts[2])),
        Err(KeyError::InvalidToken("algorithm is not RS256"))
    ));

    let stranger = b64(json!({"alg": "RS256", "typ": "JWT", "kid": "someone-else"}));
    assert!(keys
        .verify_jwt(&format!("{stranger}.{}.{}", parts[1], parts[2]))
        .is_err());
    assert!(keys.verify_jwt("not a token").is_err());
}

#[tokio::test]
async fn jwks_lists_published_keys_with_their_certificates() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let staged = keys.rotate().await.unwrap().kid;
    let jwks = keys.jwks();
    let list = jwks["keys"].as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["kid"], keys.signer().kid.as_str());
    assert_eq!(list[1]["kid"], staged.as_str());

    let jwk = &list[0];
    assert_eq!(
        (&jwk["kty"], &jwk["use"], &jwk["alg"], &jwk["e"]),
        (
            &json!("RSA"),
            &json!("sig"),
            &json!("RS256"),
            &json!("AQAB")
        )
    );
    let n = URL_SAFE_NO_PAD.decode(jwk["n"].as_str().unwrap()).unwrap();
    assert_eq!(material::thumbprint(&n, &[1, 0, 1]), jwk["kid"]);
    let der = STANDARD.decode(jwk["x5c"][0].as_str().unwrap()).unwrap();
    assert_eq!(der, keys.signer().certificate_der().unwrap());
    assert_eq!(
        jwk["x5t#S256"],
        URL_SAFE_NO_PAD.encode(openssl::sha::sha256(&der))
    );
}

#[test]
fn a_corrupt_key_file_is_reported_by_name_and_left_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let kid = Keys::load_or_generate(tmp.path(), &settings())
        .unwrap()
        .signer()
        .kid
        .clone();
    let key_path = tmp.path().join(format!("{kid}.key.pem"));
    fs::write(&key_path, b"-----BEGIN PRIVATE KEY-----\ngarbage\n").unwrap();

    let err = Keys::load_or_generate(tmp.path(), &settings())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&key_path.display().to_string()), "{err}");
    assert_eq!(
        fs::read(&key_path).unwrap(),
        b"-----BEGIN PRIVATE KEY-----\ngarbage\n"
    );
}

#[test]
fn a_corrupt_or_missing_keyring_is_reported_rather_than_regenerated() {
    let tmp = tempfile::tempdir().unwrap();
    Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let keyring = tmp.path().join(KEYRING);

    fs::write(&keyring, b"{\"keys\": 3}").unwrap();
    let err = Keys::load_or_generate(tmp.path(), &settings())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&keyring.display().to_string()), "{err}");

    fs::remove_file(&keyring).unwrap();
    let err = Keys::load_or_generate(tmp.path(), &settings())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("no keyring.json"), "{err}");
    assert!(!keyring.exists());
}

#[test]
fn a_key_that_does_not_match_its_kid_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
    let kid = keys.signer().kid.clone();
    let other = material::generate(1, Utc::now(), Utc::now()).unwrap();
    fs::write(
        tmp.path().join(format!("{kid}.key.pem")),
        other.pkey.private_key_to_pem_pkcs8().unwrap(),
    )
    .unwrap();
    let err = Keys::load_or_generate(tmp.path(), &settings())
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains(&format!("{kid}.crt.pem")), "{err}");
}

/// The ring kept in the store (PostgreSQL mode), on the SQLite adapter where one node is
/// enough (the port is the same) and on a real PostgreSQL for nodes racing each other.
mod shared {
    use super::*;
    use crate::config::Secret;
    use crate::store::{Store, StoreConfig};

    pub(super) const KEK_A: &str = "g5f0kJSfYDxq8pCKrzL0OddoBMvdUYD77DsdhtFPF+U=";
    const KEK_B: &str = "aok0x5C2/aZq/kEugtKB4ZAErgIzBB6nGcjeCMthvfo=";

    fn with_keks(current: &str, previous: &[&str]) -> KeysConfig {
        KeysConfig {
            encryption_key: Some(Secret::new(current)),
            previous_encryption_keys: previous.iter().map(|p| Secret::new(*p)).collect(),
            rotation_delay: Duration::from_secs(3600),
            ..settings()
        }
    }

    async fn sqlite_store() -> (Store, tempfile::TempDir) {
        let tmp = tempfile::tempdir().unwrap();
        (Store::open(tmp.path()).await.unwrap(), tmp)
    }

    async fn pg_store() -> Option<Store> {
        let url = crate::store::test_pg::database().await?;
        let config = StoreConfig::Postgres {
            url: crate::store::DatabaseUrl::parse(&url).unwrap(),
        };
        Some(crate::store::open(&config).await.unwrap())
    }

    #[tokio::test]
    async fn the_first_start_stores_one_sealed_key_that_later_starts_load() {
        let (store, _tmp) = sqlite_store().await;
        let ring = store.signing_keys().clone();
        let first = Keys::open_shared(ring.clone(), &with_keks(KEK_A, &[]))
            .await
            .unwrap();
        assert!(first.is_shared());
        let rows = ring.signing_keys().await.unwrap();
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        let signer = first.signer();
        assert_eq!(row.kid, signer.kid);
        assert_eq!(row.signs_from, signer.signs_from.timestamp());
        // The private key is not in the row in any plain form.
        let der = signer.pkey.private_key_to_pkcs8().unwrap();
        let pem = String::from_utf8(signer.pkey.private_key_to_pem_pkcs8().unwrap()).unwrap();
        assert!(!row.sealed_key.contains("PRIVATE KEY"));
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        assert!(!row.sealed_key.contains(&body[..40]));
        let sealed = STANDARD.decode(&row.sealed_key[3..]).unwrap();
        assert!(!sealed.windows(32).any(|w| w == &der[der.len() - 32..]));
        assert!(row.certificate.starts_with("-----BEGIN CERTIFICATE-----"));

        let again = Keys::open_shared(ring, &with_keks(KEK_A, &[]))
            .await
            .unwrap();
        assert_eq!(again.signer().kid, signer.kid);
        assert_eq!(again.jwks(), first.jwks());
    }

    #[tokio::test]
    async fn a_rotation_on_one_node_is_adopted_by_the_other_at_the_same_signs_from() {
        let (store, _tmp) = sqlite_store().await;
        let settings = with_keks(KEK_A, &[]);
        let a = Keys::open_shared(store.signing_keys().clone(), &settings)
            .await
            .unwrap();
        let b = Keys::open_shared(store.signing_keys().clone(), &settings)
            .await
            .unwrap();
        let old = a.signer().kid.clone();
        let t0 = Utc::now();
        let staged = a.rotate_at(t0).await.unwrap();
        assert_eq!(staged.state, "next");
        assert_eq!(b.published().len(), 1, "B has not re-read the ring yet");
        b.reload().await.unwrap();
        assert_eq!(kids(&b.published_at(t0)), kids(&a.published_at(t0)));
        let switch = staged.signs_from;
        for node in [&a, &b] {
            assert_eq!(node.signer_at(switch - TimeDelta::seconds(1)).kid, old);
            assert_eq!(node.signer_at(switch).kid, staged.kid);
        }
        // A second rotation, on the other node, is refused while the first is pending.
        let err = b.rotate_at(t0 + TimeDelta::seconds(5)).await.unwrap_err();
        assert!(
            matches!(err, KeyError::RotationPending { ref kid, .. } if *kid == staged.kid),
            "{err}"
        );
        assert_eq!(store.signing_keys().signing_keys().await.unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_wrong_kek_is_refused_naming_the_kid() {
        let (store, _tmp) = sqlite_store().await;
        let keys = Keys::open_shared(store.signing_keys().clone(), &with_keks(KEK_A, &[]))
            .await
            .unwrap();
        let kid = keys.signer().kid.clone();
        let err = Keys::open_shared(store.signing_keys().clone(), &with_keks(KEK_B, &[]))
            .await
            .err()
            .expect("refused");
        let text = err.to_string();
        assert!(
            matches!(err, KeyError::UnknownEncryptionKey { .. }),
            "{text}"
        );
        assert!(
            text.contains(&kid) && text.contains("encryption_key"),
            "{text}"
        );
        let none = Keys::open_shared(store.signing_keys().clone(), &settings())
            .await
            .err()
            .expect("refused");
        assert!(matches!(none, KeyError::NoEncryptionKey), "{none}");
    }

    #[tokio::test]
    async fn rewrap_seals_every_key_under_the_new_kek() {
        let (store, _tmp) = sqlite_store().await;
        let ring = store.signing_keys().clone();
        let keys = Keys::open_shared(ring.clone(), &with_keks(KEK_A, &[]))
            .await
            .unwrap();
        keys.rotate().await.unwrap();
        let before = ring.signing_keys().await.unwrap();

        // Rewrap needs the old KEK to open what it sealed.
        assert!(rewrap(ring.clone(), &with_keks(KEK_B, &[])).await.is_err());
        let done = rewrap(ring.clone(), &with_keks(KEK_B, &[KEK_A]))
            .await
            .unwrap();
        assert_eq!(done.resealed.len(), 2);
        let again = rewrap(ring.clone(), &with_keks(KEK_B, &[KEK_A]))
            .await
            .unwrap();
        assert_eq!((again.resealed.len(), again.current.len()), (0, 2));
        let after = ring.signing_keys().await.unwrap();
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.kid, a.kid);
            assert_ne!(b.kek_id, a.kek_id);
            assert_ne!(b.sealed_key, a.sealed_key);
        }

        let new_only = Keys::open_shared(ring.clone(), &with_keks(KEK_B, &[]))
            .await
            .unwrap();
        assert_eq!(new_only.jwks(), keys.jwks());
        assert!(Keys::open_shared(ring, &with_keks(KEK_A, &[]))
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_keys_directory_is_imported_into_an_empty_ring_only() {
        let tmp = tempfile::tempdir().unwrap();
        let files = Keys::load_or_generate(tmp.path(), &settings()).unwrap();
        files.rotate().await.unwrap();
        let (store, _db) = sqlite_store().await;
        let ring = store.signing_keys().clone();
        let kids = import_dir(tmp.path(), ring.clone(), &with_keks(KEK_A, &[]))
            .await
            .unwrap();
        assert_eq!(kids, super::kids(&files.published()));
        let shared = Keys::open_shared(ring.clone(), &with_keks(KEK_A, &[]))
            .await
            .unwrap();
        assert_eq!(shared.signer().kid, files.signer().kid);
        assert_eq!(shared.jwks(), files.jwks());
        let err = import_dir(tmp.path(), ring, &with_keks(KEK_A, &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, KeyError::ImportIntoNonEmpty), "{err}");
    }

    /// Nodes starting together on an empty PostgreSQL end with one key; nodes rotating together
    /// stage one.
    #[tokio::test]
    async fn nodes_racing_on_postgres_store_one_first_key_and_stage_one_key() {
        let Some(store) = pg_store().await else {
            return;
        };
        let settings = with_keks(KEK_A, &[]);
        let ring = store.signing_keys().clone();
        let open = || Keys::open_shared(ring.clone(), &settings);
        let (a, b, c, d) = tokio::join!(open(), open(), open(), open());
        let nodes = [a.unwrap(), b.unwrap(), c.unwrap(), d.unwrap()];
        assert_eq!(ring.signing_keys().await.unwrap().len(), 1);
        for node in &nodes {
            assert_eq!(node.signer().kid, nodes[0].signer().kid);
        }
        let (a, b, c, d) = tokio::join!(
            nodes[0].rotate(),
            nodes[1].rotate(),
            nodes[2].rotate(),
            nodes[3].rotate()
        );
        let rotated = [a, b, c, d];
        let staged: Vec<_> = rotated.iter().filter(|r| r.is_ok()).collect();
        assert_eq!(staged.len(), 1, "{rotated:?}");
        for r in &rotated {
            if let Err(e) = r {
                assert!(
                    matches!(
                        e,
                        KeyError::RotationPending { .. } | KeyError::ConcurrentChange
                    ),
                    "{e}"
                );
            }
        }
        assert_eq!(ring.signing_keys().await.unwrap().len(), 2);
    }
}
