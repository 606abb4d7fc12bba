//! Built-in TLS (`[server] tls_cert` and `tls_key`), over real TLS on loopback: both HTTP
//! versions, the client address, clients that do not speak TLS or say nothing, the certificate
//! swapped by a reload, and the files `serve` refuses to start with.

use std::time::Duration;

use passerelle::app::{build_state, StartOptions};
use passerelle::config::Config;
use tokio::io::AsyncWriteExt;

use crate::common::tls::{client, peer_certificate, KeyFormat, TestCa};
use crate::common::{base_config, start_bound, TestServer};

const DISCOVERY: &str = "/.well-known/openid-configuration";

/// A server on 127.0.0.1 serving `cert`/`key` over TLS, its public URL https.
async fn start_tls(
    cert: &std::path::Path,
    key: &std::path::Path,
    tweak: impl FnOnce(&mut Config),
) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("https://{}", listener.local_addr().unwrap());
    let (cert, key) = (cert.to_path_buf(), key.to_path_buf());
    start_bound(listener, base, move |c| {
        c.server.tls_cert = Some(cert);
        c.server.tls_key = Some(key);
        tweak(c);
    })
    .await
}

#[tokio::test]
async fn discovery_is_served_over_tls_with_http1_and_http2_and_the_client_address_is_known() {
    let files = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let leaf = ca.issue(files.path(), "server", 90, KeyFormat::Pkcs8Ec);
    // Only 127.0.0.1 may sign in: the page opens only if the peer address reached the router.
    let server = start_tls(&leaf.cert_path, &leaf.key_path, |c| {
        c.login.allowed_networks = Some(vec!["127.0.0.1/32".parse().unwrap()]);
    })
    .await;
    assert!(server.base.starts_with("https://127.0.0.1:"));

    for (http2, version) in [
        (false, reqwest::Version::HTTP_11),
        (true, reqwest::Version::HTTP_2),
    ] {
        let http = client(&ca, http2);
        let r = http.get(server.url(DISCOVERY)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(r.version(), version, "ALPN chose the protocol");
        assert_eq!(peer_certificate(&r), leaf.der);
        assert_eq!(
            r.headers()
                .get("strict-transport-security")
                .and_then(|v| v.to_str().ok()),
            Some(passerelle::web::HSTS)
        );
        let body: serde_json::Value = r.json().await.unwrap();
        assert_eq!(body["issuer"], server.base.as_str());
        assert_eq!(
            body["token_endpoint"],
            format!("{}/oidc/token", server.base).as_str()
        );

        let login = http.get(server.url("/login")).send().await.unwrap();
        assert_eq!(
            login.status(),
            200,
            "the peer 127.0.0.1 is inside allowed_networks"
        );
    }
}

#[tokio::test]
async fn a_client_that_does_not_speak_tls_or_says_nothing_does_not_stop_the_others() {
    let files = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let leaf = ca.issue(files.path(), "server", 90, KeyFormat::Sec1Ec);
    let server = start_tls(&leaf.cert_path, &leaf.key_path, |_| {}).await;
    let addr = server.running.as_ref().unwrap().addr;

    // Plain HTTP to the TLS port: the handshake fails and the connection is closed; no answer
    // a client could take for a page.
    let plain = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
        .get(format!("http://{addr}{DISCOVERY}"))
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP got an answer: {plain:?}");

    // Connected and silent (no ClientHello), and one that stops half-way through a record:
    // neither holds up a client that completes its handshake.
    let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let mut half = tokio::net::TcpStream::connect(addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01])
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = tokio::time::timeout(
        Duration::from_secs(5),
        client(&ca, false).get(server.url(DISCOVERY)).send(),
    )
    .await
    .expect("a silent client blocked the next one")
    .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        started.elapsed() < passerelle::web::tls::HANDSHAKE_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_reload_serves_the_renewed_certificate_and_a_broken_one_keeps_the_old() {
    let files = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let first = ca.issue(files.path(), "server", 90, KeyFormat::Pkcs1Rsa);
    let server = start_tls(&first.cert_path, &first.key_path, |_| {}).await;
    let seen = || async {
        let r = client(&ca, false)
            .get(server.url(DISCOVERY))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        peer_certificate(&r)
    };
    assert_eq!(seen().await, first.der);

    // Renewed in place, as certbot does: same paths, new key and certificate.
    let renewed = ca.issue(files.path(), "renewed", 60, KeyFormat::Pkcs8Ec);
    std::fs::copy(&renewed.cert_path, &first.cert_path).unwrap();
    std::fs::copy(&renewed.key_path, &first.key_path).unwrap();
    let done = passerelle::app::reload(server.state()).await.unwrap();
    let certificate = done.certificate.expect("the certificate was read again");
    assert!(
        certificate.subject.contains("renewed.passerelle.test"),
        "{}",
        certificate.subject
    );
    assert_eq!(
        seen().await,
        renewed.der,
        "a new connection sees the new one"
    );

    // A certificate copied without its key: refused, the running one kept.
    let other = ca.issue(files.path(), "other", 60, KeyFormat::Pkcs8Ec);
    std::fs::copy(&other.cert_path, &first.cert_path).unwrap();
    let refused = passerelle::app::reload(server.state()).await.unwrap_err();
    assert!(
        refused
            .iter()
            .any(|p| p.starts_with("server.tls_key:") && p.contains("does not belong")),
        "{refused:?}"
    );
    assert_eq!(
        seen().await,
        renewed.der,
        "the old certificate is still served"
    );
}

#[tokio::test]
async fn serve_refuses_a_key_of_another_certificate_a_missing_file_an_expired_certificate_and_half_the_pair(
) {
    let files = tempfile::tempdir().unwrap();
    let ca = TestCa::new();
    let good = ca.issue(files.path(), "good", 90, KeyFormat::Pkcs8Ec);
    let other = ca.issue(files.path(), "other", 90, KeyFormat::Pkcs8Ec);
    let expired = ca.issue(files.path(), "expired", -1, KeyFormat::Pkcs8Ec);
    let missing = files.path().join("missing.pem");
    let refusal = |cert: Option<&std::path::Path>, key: Option<&std::path::Path>| {
        let mut c = base_config();
        let data = files.path().join("data");
        c.server.data_dir = data.clone();
        c.server.keys_dir = data.join("keys");
        c.server.public_url = "https://127.0.0.1:8443".into();
        c.server.tls_cert = cert.map(|p| p.to_path_buf());
        c.server.tls_key = key.map(|p| p.to_path_buf());
        let what = format!("cert {cert:?} and key {key:?}");
        async move {
            match build_state(c, &StartOptions::default()).await {
                Ok(_) => panic!("started with {what}"),
                Err(e) => e.to_string(),
            }
        }
    };
    let e = refusal(Some(&good.cert_path), Some(&other.key_path)).await;
    assert!(
        e.starts_with("server.tls_key: the private key in") && e.contains("does not belong"),
        "{e}"
    );
    let e = refusal(Some(&missing), Some(&good.key_path)).await;
    assert!(
        e.starts_with(&format!(
            "server.tls_cert: cannot read {}",
            missing.display()
        )),
        "{e}"
    );
    let e = refusal(Some(&expired.cert_path), Some(&expired.key_path)).await;
    assert!(e.starts_with("server.tls_cert: the certificate in"), "{e}");
    assert!(e.contains("expired on"), "{e}");
    let e = refusal(Some(&good.cert_path), None).await;
    assert!(
        e.contains("server.tls_key: is missing: server.tls_cert and server.tls_key go together"),
        "{e}"
    );
    assert!(
        !files.path().join("data").exists(),
        "nothing was opened before the refusal"
    );
}
