//! What anonymous requests can make the server store, and what it deletes by itself.

use std::path::Path;
use std::time::Duration;

use base64::Engine;

use crate::common::{database, hidden, start, Browser};

/// The database file and its write-ahead log, in bytes.
fn database_size(data_dir: &Path) -> u64 {
    ["passerelle.db", "passerelle.db-wal"]
        .iter()
        .map(|f| std::fs::metadata(data_dir.join(f)).map_or(0, |m| m.len()))
        .sum()
}

/// Finding 5: 30 anonymous requests carrying huge fields (a 900 KB username, a 60 KB unknown
/// SAML Issuer — the biggest the 64 KiB XML limit lets through) used to add each field whole
/// to the audit log (about 14 MB here). Now each stored field is capped, so the database grows
/// by at most ~32 KiB per request, whatever the request carried.
#[tokio::test]
async fn thirty_requests_with_huge_fields_grow_the_database_by_a_bounded_amount() {
    let server = start(|_| {}).await;
    let data_dir = server.dir.path().join("data");
    let browser = Browser::new();
    // One ordinary round first, so the session table and the WAL exist before measuring.
    let page = browser.get(&server.url("/login")).await;
    browser
        .submit_login(&server.base, page, "nobody@acme.test", "wrong")
        .await;
    let before = database_size(&data_dir);

    let huge_username = "x".repeat(900_000);
    for i in 0..15 {
        let html = browser
            .get(&server.url("/login"))
            .await
            .text()
            .await
            .unwrap();
        let csrf = hidden(&html, "csrf_token").expect("csrf field");
        let r = browser
            .http
            .post(server.url("/login"))
            .form(&[
                ("username", format!("{i}{huge_username}").as_str()),
                ("password", "wrong"),
                ("csrf_token", &csrf),
                ("req", ""),
            ])
            .send()
            .await
            .unwrap();
        // Refused at intake: a username over 256 characters never reaches the password check.
        assert!(
            r.status() == 400,
            "refused, not stored whole: {}",
            r.status()
        );
    }
    let huge_issuer = format!("https://evil.example/{}", "a".repeat(60_000));
    for i in 0..15 {
        let xml = format!(
            r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="_huge{i}" Version="2.0" IssueInstant="{now}" Destination="{base}/saml/sso"><saml:Issuer>{huge_issuer}{i}</saml:Issuer></samlp:AuthnRequest>"#,
            now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ"),
            base = server.base,
        );
        let r = browser
            .http
            .post(server.url("/saml/sso"))
            .form(&[(
                "SAMLRequest",
                base64::engine::general_purpose::STANDARD.encode(xml),
            )])
            .send()
            .await
            .unwrap();
        assert!(r.status().is_client_error(), "{}", r.status());
    }

    let grown = database_size(&data_dir).saturating_sub(before);
    assert!(
        grown < 30 * 32 * 1024,
        "30 requests grew the database by {grown} bytes"
    );
    let rows = server
        .state()
        .store
        .audit()
        .recent(100, None)
        .await
        .unwrap();
    assert!(rows.len() >= 30, "every attempt is still audited");
    for row in &rows {
        for field in [&row.subject, &row.client, &row.ip, &row.detail] {
            let len = field.as_deref().map_or(0, str::len);
            assert!(len <= 4096, "an audit field of {len} bytes: {row:?}");
        }
    }
    let cut = rows
        .iter()
        .find_map(|r| r.subject.as_deref().filter(|s| s.contains("…[cut ")))
        .expect("the huge username is kept cut and marked");
    assert!(cut.ends_with(" bytes]"), "{cut}");
}

/// `[audit] retention` and the session store's expired rows: the housekeeping task deletes
/// both by itself, from its first round at start.
#[tokio::test]
async fn housekeeping_purges_old_audit_rows_and_expired_sessions() {
    let data = tempfile::tempdir().unwrap();
    let day = 86_400;
    {
        let store = passerelle::store::Store::open(data.path()).await.unwrap();
        let pool = database(data.path()).await;
        let now = chrono::Utc::now().timestamp();
        for (age_days, event) in [(31, "old"), (29, "recent")] {
            sqlx::query("INSERT INTO audit_log (at, event, outcome) VALUES ($1, $2, 'ok')")
                .bind(now - age_days * day)
                .bind(event)
                .execute(&pool)
                .await
                .unwrap();
        }
        // A session that expired an hour ago, as tower-sessions writes it.
        use tower_sessions::session::{Id, Record};
        use tower_sessions::SessionStore;
        let sessions = store.sessions().session_store();
        let mut expired = Record {
            id: Id::default(),
            data: Default::default(),
            expiry_date: tower_sessions::cookie::time::OffsetDateTime::now_utc()
                - tower_sessions::cookie::time::Duration::hours(1),
        };
        sessions.create(&mut expired).await.unwrap();
    }
    let data_dir = data.path().to_path_buf();
    let server = start(move |c| {
        c.server.data_dir = data_dir;
        c.audit.retention = Duration::from_secs(30 * 86_400);
    })
    .await;
    let pool = database(&server.state().config.server.data_dir).await;
    let counts = || async {
        let events: Vec<String> = sqlx::query_scalar("SELECT event FROM audit_log ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
        let sessions: i64 = sqlx::query_scalar("SELECT count(*) FROM tower_sessions")
            .fetch_one(&pool)
            .await
            .unwrap();
        (events, sessions)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (events, sessions) = counts().await;
        if events == ["recent"] && sessions == 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "still there after 10 s: audit {events:?}, {sessions} session(s)"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
