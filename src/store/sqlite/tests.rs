//! The SQLite adapter: the conformance suite on a temp file, and what only this backend has
//! (file modes, batched purges, upgrading files created by older schemas).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

#[cfg(unix)]
use std::os::unix::fs::PermissionsExt;

use sqlx::sqlite::{SqliteConnectOptions, SqlitePool};

use super::{open_data_files, DB_FILE, MIGRATOR};
use crate::store::{now, AuditEvent, Store};

/// A fresh store on a real file in a temp dir (kept alive by the returned guard).
async fn open_temp() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    (store, dir)
}

mod conformance {
    use super::open_temp;

    crate::store_conformance_suite!(open_temp);
}

/// Two processes on one file (one node in production, but the leases hold all the same).
async fn open_two_nodes() -> Option<(Store, Store, tempfile::TempDir)> {
    let dir = tempfile::tempdir().unwrap();
    let config = crate::store::StoreConfig::sqlite(dir.path());
    let node = |id: &str| crate::store::Node {
        id: id.into(),
        lease: crate::store::conformance::SHORT_LEASE,
    };
    let a = crate::store::open_as(&config, node("node-a"))
        .await
        .unwrap();
    let b = crate::store::open_as(&config, node("node-b"))
        .await
        .unwrap();
    Some((a, b, dir))
}

mod two_nodes {
    crate::store_two_node_suite!(super::open_two_nodes);
}

/// A second pool on the same file, to look at rows the ports do not show.
async fn raw(data_dir: &Path) -> SqlitePool {
    SqlitePool::connect_with(
        SqliteConnectOptions::from_str("sqlite://")
            .unwrap()
            .filename(data_dir.join(DB_FILE)),
    )
    .await
    .unwrap()
}

#[cfg(unix)]
fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// Whatever the umask (the test process keeps the usual 022), a new data directory is 0700
/// and the database with its WAL and shared-memory files 0600.
#[cfg(unix)]
#[tokio::test]
async fn a_new_database_is_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("var").join("data");
    let store = Store::open(&data_dir).await.unwrap();
    store
        .audit()
        .record(AuditEvent {
            event: "test",
            outcome: "ok",
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(mode(&data_dir), 0o700);
    assert_eq!(mode(&tmp.path().join("var")), 0o700);
    for name in [DB_FILE, "passerelle.db-wal", "passerelle.db-shm"] {
        assert_eq!(mode(&data_dir.join(name)), 0o600, "{name}");
    }
    assert!(open_data_files(&data_dir).is_empty());
    std::fs::set_permissions(
        data_dir.join(DB_FILE),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    assert_eq!(
        open_data_files(&data_dir),
        [(data_dir.join(DB_FILE), 0o644)]
    );
}

#[tokio::test]
async fn a_large_audit_purge_goes_in_batches() {
    let tmp = tempfile::tempdir().unwrap();
    let store = Store::open(tmp.path()).await.unwrap();
    let pool = raw(tmp.path()).await;
    let rows = 2 * super::audit::PURGE_BATCH + 1;
    sqlx::query(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < $1)
         INSERT INTO audit_log (at, event, outcome) SELECT 1, 'old', 'ok' FROM n",
    )
    .bind(rows)
    .execute(&pool)
    .await
    .unwrap();
    assert_eq!(
        store
            .audit()
            .purge_older_than(Duration::from_secs(1))
            .await
            .unwrap(),
        rows as u64
    );
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

/// The read connections cannot write: a write routed to `reads` by mistake fails in the
/// conformance suite instead of competing with the writer under load.
#[tokio::test]
async fn the_read_connections_refuse_writes_and_the_writer_takes_them() {
    let tmp = tempfile::tempdir().unwrap();
    let node = crate::store::Node {
        id: "node-a".into(),
        lease: crate::store::conformance::SHORT_LEASE,
    };
    let adapter = super::SqliteAdapter::open(tmp.path(), node).await.unwrap();
    let insert = "INSERT INTO audit_log (at, event, outcome) VALUES (1, 'test', 'ok')";
    let refused = sqlx::query(insert)
        .execute(&adapter.reads)
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("readonly"), "{refused}");
    sqlx::query(insert).execute(&adapter.pool).await.unwrap();
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log")
        .fetch_one(&adapter.reads)
        .await
        .unwrap();
    assert_eq!(stored, 1);
}

/// SHA-384 of each migration as released (what `_sqlx_migrations.checksum` holds in every
/// existing database): a changed byte in one of them would make every install refuse to start.
const RELEASED: [(i64, &str); 6] = [
    (1, "29f728b5fb2cac59d32c707ca221ec93af425f9a7eb82ae9b41054571481cd03bceeb4d53ac7cfe17280dbf178059264"),
    (2, "0d883a278c44490290cb8972072de665185de1104ddc131ad20547d7c8a6c62aa55708dff4ad497f75ef95907e83ae35"),
    (3, "9ada23e0956569ed3561b767ed7c68954fabe43143bc6b18822d7364d19e6fea2c4b7bf2838c0ae9f38127eb1c4b9826"),
    (4, "5f978d11b90bf166b10ede977a68c8bcb9545e769b048792e180d44bfee089b2d8888ca939b1c0e94a3a4a2d3bda40a1"),
    (5, "6b4af31f211c4c3137a94a9fadb73425c6f5a7538a42ff406c2d55700a89a4f459ea485115d2943b12a4d92d66db0527"),
    (6, "28421b8bf8d2515c8f8bb44b74e4799e65795acf2bb9cdaf3bdf5b2fa986a3871ab4031270526f95f085b308000426d2"),
];

#[test]
fn released_migrations_keep_their_versions_and_checksums() {
    for (version, checksum) in RELEASED {
        let migration = MIGRATOR
            .iter()
            .find(|m| m.version == version)
            .unwrap_or_else(|| panic!("migration {version} is gone"));
        assert_eq!(hex::encode(&migration.checksum), checksum, "{version}");
    }
}

/// A file created by the schema as released before the portable one (migrations 1–6, run by
/// sqlx from the files as released), holding rows in every table that changes, opens with all
/// of them kept, and its applied history stays valid.
#[tokio::test]
async fn a_database_from_the_released_schema_upgrades_with_its_data() {
    let tmp = tempfile::tempdir().unwrap();
    let data_dir = tmp.path().join("data");
    let released = tmp.path().join("released");
    std::fs::create_dir(&released).unwrap();
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/sqlite");
    for entry in std::fs::read_dir(&source).unwrap() {
        let name = entry.unwrap().file_name();
        let version: i64 = name.to_string_lossy()[..4].parse().unwrap();
        if RELEASED.iter().any(|(v, _)| *v == version) {
            std::fs::copy(source.join(&name), released.join(&name)).unwrap();
        }
    }
    super::files::create_private_dir(&data_dir).unwrap();
    {
        let pool = SqlitePool::connect_with(
            SqliteConnectOptions::from_str("sqlite://")
                .unwrap()
                .filename(data_dir.join(DB_FILE))
                .create_if_missing(true),
        )
        .await
        .unwrap();
        let old = sqlx::migrate::Migrator::new(released.as_path())
            .await
            .unwrap();
        assert_eq!(old.iter().count(), RELEASED.len());
        old.run(&pool).await.unwrap();
        for sql in [
            // Ids 1..=3, then the newest deleted: AUTOINCREMENT would number the next one 4.
            "INSERT INTO audit_log (at, event, outcome, subject) VALUES
               (100, 'first', 'ok', 'alice'), (200, 'second', 'ok', NULL), (300, 'third', 'ok', 'bob')",
            "DELETE FROM audit_log WHERE id = 3",
            "INSERT INTO lucca_outbox (subject, lucca_id, payload, status, version, attempts,
               next_attempt_at, last_error, created_at, updated_at) VALUES
               ('alice', 2, '{\"a\":1}', 'pending', 3, 2, 50, 'boom', 10, 40),
               ('bob', 3, '{}', 'done', 1, 1, 20, NULL, 20, 20)",
            // Three jobs in one second, inserted in an order their ids do not sort in.
            "INSERT INTO migration_jobs (id, dry_run, notify, status, total, created_at) VALUES
               ('job-b', 1, 0, 'queued', 1, 500), ('job-a', 0, 1, 'queued', 0, 500),
               ('job-c', 0, 0, 'queued', 0, 500)",
            "INSERT INTO migration_rows (job_id, row_no, seq, email, input, done) VALUES
               ('job-b', 2, 0, 'p@acme.test', '{}', 0)",
            "INSERT INTO lucca_links (subject, lucca_id, email, status, checked_at) VALUES
               ('alice', 2, 'alice@acme.test', 'active', 60)",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        pool.close().await;
    }

    let store = Store::open(&data_dir).await.unwrap();
    let audit = store.audit().recent(10, None).await.unwrap();
    assert_eq!(
        audit
            .iter()
            .map(|e| (e.id, e.at, e.event.as_str(), e.subject.as_deref()))
            .collect::<Vec<_>>(),
        [(2, 200, "second", None), (1, 100, "first", Some("alice"))]
    );
    store
        .audit()
        .record(AuditEvent {
            event: "after",
            outcome: "ok",
            ..Default::default()
        })
        .await
        .unwrap();
    let newest = &store.audit().recent(1, None).await.unwrap()[0];
    assert_eq!((newest.id, newest.event.as_str()), (3, "after"));

    let outbox = store.outbox().recent(None, 10).await.unwrap();
    assert_eq!(
        outbox
            .iter()
            .map(|r| (
                r.id,
                r.subject.as_str(),
                r.payload.as_str(),
                r.status.as_str(),
                r.version,
                r.attempts,
                r.next_attempt_at,
                r.last_error.as_deref(),
                r.created_at,
                r.updated_at
            ))
            .collect::<Vec<_>>(),
        [
            (2, "bob", "{}", "done", 1, 1, 20, None, 20, 20),
            (
                1,
                "alice",
                r#"{"a":1}"#,
                "pending",
                3,
                2,
                50,
                Some("boom"),
                10,
                40
            )
        ]
    );
    store.outbox().enqueue("alice", 2, "{}").await.unwrap();
    store.outbox().enqueue("carol", 4, "{}").await.unwrap();
    let due = store.outbox().due(now(), 10).await.unwrap();
    assert_eq!(
        due.iter().map(|r| (r.id, r.version)).collect::<Vec<_>>(),
        [(1, 4), (3, 1)],
        "the pending row was coalesced, the new one numbered after"
    );

    let jobs: Vec<String> = store
        .migration_jobs()
        .list_jobs(10)
        .await
        .unwrap()
        .into_iter()
        .map(|j| j.id)
        .collect();
    assert_eq!(jobs, ["job-c", "job-a", "job-b"], "creation order kept");
    assert_eq!(
        store.migration_jobs().next_job().await.unwrap().as_deref(),
        Some("job-b")
    );
    store
        .migration_jobs()
        .create_job("job-0", false, false, &[])
        .await
        .unwrap();
    assert_eq!(
        store.migration_jobs().list_jobs(1).await.unwrap()[0].id,
        "job-0"
    );
    assert_eq!(
        store.migration_jobs().rows("job-b", true).await.unwrap()[0].email,
        "p@acme.test"
    );
    assert_eq!(
        store
            .lucca_links()
            .get("alice")
            .await
            .unwrap()
            .map(|l| l.checked_at),
        Some(60)
    );

    let pool = raw(&data_dir).await;
    let schema: Vec<String> =
        sqlx::query_scalar("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert!(
        !schema.iter().any(|sql| sql.contains("AUTOINCREMENT")),
        "{schema:#?}"
    );
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name IN ('audit_log', 'lucca_outbox')
         AND name NOT LIKE 'sqlite_%' ORDER BY name",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        indexes,
        [
            "audit_log_at",
            "audit_log_subject",
            "lucca_outbox_due",
            "lucca_outbox_one_pending",
            "lucca_outbox_target"
        ]
    );
    let applied: Vec<(i64, bool)> =
        sqlx::query_as("SELECT version, success FROM _sqlx_migrations ORDER BY version")
            .fetch_all(&pool)
            .await
            .unwrap();
    assert_eq!(applied.len(), MIGRATOR.iter().count());
    assert!(applied.iter().all(|(_, success)| *success));
    pool.close().await;
    drop(store);
    // And it opens again: the recorded checksums match the migrations shipped.
    Store::open(&data_dir).await.unwrap();
}
