use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};

use super::*;

fn settings() -> KeysConfig {
    KeysConfig {
        rotation_delay: StdDuration::from_secs(3600),
        retire_after: StdDuration::from_secs(600),
        certificate_validity_days: 30,
    }
}

#[test]
fn rfc7638_thumbprint_example() {
    let n = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";
    let e = "AQAB";
    let d = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .unwrap()
    };
    assert_eq!(
        thumbprint(&d(n), &d(e)),
        "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
    );
}

#[test]
fn first_start_generates_private_files_and_later_starts_load_them() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(dir.path(), &settings()).unwrap();
    let kid = keys.signer().kid.clone();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for name in [
            format!("{kid}.key.pem"),
            format!("{kid}.crt.pem"),
            "keyring.json".into(),
        ] {
            let mode = std::fs::metadata(dir.path().join(&name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{name}");
        }
    }
    let again = Keys::load_or_generate(dir.path(), &settings()).unwrap();
    assert_eq!(again.signer().kid, kid);
    let rsa = again.signer().pkey.rsa().unwrap();
    assert_eq!(thumbprint(&rsa.n().to_vec(), &rsa.e().to_vec()), kid);
    let status = again.status();
    assert_eq!(status.len(), 1);
    assert_eq!(status[0].state, "signing");
    assert!(status[0].not_after > Utc::now() + Duration::days(29));
}

#[test]
fn rotation_publishes_first_then_signs_then_retires() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(dir.path(), &settings()).unwrap();
    let old = keys.signer().kid.clone();
    let t0 = Utc::now();
    let staged = keys.rotate_at(t0).unwrap();
    assert_eq!(staged.state, "next");
    assert!(
        matches!(keys.rotate_at(t0), Err(KeyError::RotationPending { .. })),
        "no stacking"
    );

    let published: Vec<String> = keys
        .published_at(t0)
        .iter()
        .map(|k| k.kid.clone())
        .collect();
    assert_eq!(
        published,
        vec![old.clone(), staged.kid.clone()],
        "next key published at once"
    );
    assert_eq!(keys.signer_at(t0).kid, old, "but the old key still signs");

    let t1 = t0 + Duration::seconds(3601);
    assert_eq!(
        keys.signer_at(t1).kid,
        staged.kid,
        "after the delay the new key signs"
    );
    let published: Vec<String> = keys
        .published_at(t1)
        .iter()
        .map(|k| k.kid.clone())
        .collect();
    assert_eq!(
        published,
        vec![staged.kid.clone(), old.clone()],
        "the old one is still published"
    );
    assert!(keys
        .status_at(t1)
        .iter()
        .any(|s| s.kid == old && s.state.starts_with("retiring until")));

    let t2 = t0 + Duration::seconds(3600 + 601);
    let published: Vec<String> = keys
        .published_at(t2)
        .iter()
        .map(|k| k.kid.clone())
        .collect();
    assert_eq!(
        published,
        vec![staged.kid.clone()],
        "retired after retire_after"
    );

    // Another process (the CLI) sees the same ring.
    let other = Keys::load_or_generate(dir.path(), &settings()).unwrap();
    assert_eq!(other.status().len(), 2);
    keys.reload().unwrap();
    assert_eq!(keys.status().len(), 2);
}

#[test]
fn jwts_verify_and_tampering_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(dir.path(), &settings()).unwrap();
    let token = keys
        .signer()
        .sign_jwt(&serde_json::json!({"sub": "alice", "n": 1}))
        .unwrap();
    assert_eq!(keys.verify_jwt(&token).unwrap()["sub"], "alice");

    // A plain OpenSSL verifier agrees.
    let (input, sig) = token.rsplit_once('.').unwrap();
    let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(sig)
        .unwrap();
    let signer = keys.signer();
    let mut v = Verifier::new(MessageDigest::sha256(), &signer.pkey).unwrap();
    assert!(v.verify_oneshot(&sig, input.as_bytes()).unwrap());

    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] = b64url(br#"{"sub":"mallory","n":1}"#);
    assert!(
        keys.verify_jwt(&parts.join(".")).is_err(),
        "payload swapped"
    );
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","kid":"x"}"#),
        b64url(br#"{"sub":"x"}"#)
    );
    assert!(keys.verify_jwt(&none).is_err(), "alg none");
    assert!(keys.verify_jwt("garbage").is_err());
}

#[test]
fn a_corrupt_key_file_is_named_not_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let keys = Keys::load_or_generate(dir.path(), &settings()).unwrap();
    let path = dir.path().join(format!("{}.key.pem", keys.signer().kid));
    std::fs::write(&path, "not a key").unwrap();
    let err = Keys::load_or_generate(dir.path(), &settings())
        .err()
        .expect("refused")
        .to_string();
    assert!(err.contains(".key.pem"), "{err}");
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        "not a key",
        "never silently regenerated"
    );
}
