//! The PostgreSQL adapter: the conformance suite on a throwaway database, and the schema it
//! shares with SQLite.

use std::collections::BTreeMap;

use sqlx::{Connection, PgConnection, SqliteConnection};

use crate::store::{DatabaseUrl, Store, StoreConfig, DB_FILE};

use crate::store::test_pg as pg;

/// A fresh store on a fresh database. `None`: no PostgreSQL here (outside CI), test skipped.
pub(crate) async fn open_database() -> Option<(Store, String)> {
    let url = pg::database().await?;
    let config = StoreConfig::Postgres {
        url: DatabaseUrl::parse(&url).unwrap(),
    };
    Some((crate::store::open(&config).await.unwrap(), url))
}

mod conformance {
    crate::store_conformance_suite!(optional super::open_database);
}

/// Two nodes (two stores, one-second leases) on one fresh database.
async fn open_two_nodes() -> Option<(Store, Store, ())> {
    let url = pg::database().await?;
    let config = StoreConfig::Postgres {
        url: DatabaseUrl::parse(&url).unwrap(),
    };
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
    Some((a, b, ()))
}

mod two_nodes {
    crate::store_two_node_suite!(super::open_two_nodes);
}

/// Each table as `column -> (type, not null)`, the types named as SQLite declares them.
type Schema = BTreeMap<String, BTreeMap<String, (String, bool)>>;

/// Tables that are not ours to compare: each migrator's history, and the session store's own
/// (tower-sessions-sqlx-store shapes it per backend).
fn ours(table: &str) -> bool {
    !matches!(table, "_sqlx_migrations" | "tower_sessions" | "session")
}

async fn sqlite_schema(conn: &mut SqliteConnection) -> Schema {
    let rows: Vec<(String, String, String, bool, i64)> = sqlx::query_as(
        "SELECT m.name, c.name, c.type, c.\"notnull\", c.pk
         FROM sqlite_master m JOIN pragma_table_info(m.name) c
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite_%'",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table, column, ty, not_null, pk) in rows {
        if ours(&table) {
            // SQLite lets a primary key column hold NULL unless told otherwise; PostgreSQL
            // never does, and no code of ours writes one.
            let not_null = not_null || pk > 0;
            schema
                .entry(table)
                .or_default()
                .insert(column, (ty.to_uppercase(), not_null));
        }
    }
    schema
}

async fn postgres_schema(conn: &mut PgConnection) -> Schema {
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text
         FROM information_schema.columns WHERE table_schema = 'public'",
    )
    .fetch_all(conn)
    .await
    .unwrap();
    let mut schema = Schema::new();
    for (table, column, ty, nullable) in rows {
        if ours(&table) {
            // The SQLite type each PostgreSQL type reads back as through the same Rust type:
            // i64 and bool are INTEGER there, String TEXT, Vec<u8> BLOB.
            let ty = match ty.as_str() {
                "bigint" | "boolean" => "INTEGER",
                "text" => "TEXT",
                "bytea" => "BLOB",
                // Anything else (an `integer` that would truncate an i64) fails the comparison.
                other => other,
            };
            schema
                .entry(table)
                .or_default()
                .insert(column, (ty.to_string(), nullable == "NO"));
        }
    }
    schema
}

/// Both migration folders build the same tables with the same columns, each column of a
/// matching type and nullability: compared on the live schemas, as each backend built them.
#[tokio::test]
async fn both_backends_have_the_same_schema() {
    let Some((_store, url)) = open_database().await else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let _sqlite = Store::open(dir.path()).await.unwrap();
    let mut lite =
        SqliteConnection::connect(&format!("sqlite://{}", dir.path().join(DB_FILE).display()))
            .await
            .unwrap();
    let mut pg = PgConnection::connect(&url).await.unwrap();
    let (lite, pg) = (
        sqlite_schema(&mut lite).await,
        postgres_schema(&mut pg).await,
    );
    assert!(lite.len() >= 12, "{lite:#?}");
    for (table, columns) in &lite {
        assert_eq!(
            Some(columns),
            pg.get(table),
            "table {table}: SQLite (left) and PostgreSQL (right) differ"
        );
    }
    assert_eq!(
        lite.keys().collect::<Vec<_>>(),
        pg.keys().collect::<Vec<_>>()
    );
}

/// A refused login is a clear error naming the server, with the cause, and no password.
#[tokio::test]
async fn a_wrong_password_is_a_connect_error_without_the_password() {
    let Some(url) = pg::database().await else {
        return;
    };
    let wrong = url.replace(pg::PASSWORD, "not-the-password-x");
    let config = StoreConfig::Postgres {
        url: DatabaseUrl::parse(&wrong).unwrap(),
    };
    let err = crate::store::open(&config).await.unwrap_err();
    let mut chain = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    assert!(chain.contains("cannot connect"), "{chain}");
    assert!(chain.contains("password authentication failed"), "{chain}");
    assert!(!chain.contains("not-the-password-x"), "{chain}");
}

/// Two nodes starting at once on an empty database both come up, with the schema applied once.
#[tokio::test]
async fn nodes_starting_together_apply_the_schema_once() {
    let Some(url) = pg::database().await else {
        return;
    };
    let config = StoreConfig::Postgres {
        url: DatabaseUrl::parse(&url).unwrap(),
    };
    let (a, b) = tokio::join!(crate::store::open(&config), crate::store::open(&config));
    a.unwrap();
    b.unwrap();
    let mut conn = PgConnection::connect(&url).await.unwrap();
    let applied: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(applied, super::MIGRATOR.iter().count() as i64);
}

/// Adding a first key waits for the key-ring lock (what serialises nodes starting together):
/// while another transaction holds it and inserts its own first key, ours waits, then finds
/// the ring taken and writes nothing.
#[tokio::test]
async fn a_first_signing_key_waits_for_the_key_ring_lock() {
    let Some((store, url)) = open_database().await else {
        return;
    };
    let mut other = PgConnection::connect(&url).await.unwrap();
    let mut tx = sqlx::Connection::begin(&mut other).await.unwrap();
    sqlx::query(super::dialect::LOCK_SIGNING_KEYS.expect("PostgreSQL locks the key ring"))
        .execute(&mut *tx)
        .await
        .unwrap();
    let key = crate::store::StoredSigningKey {
        kid: "ours".into(),
        certificate: "c".into(),
        kek_id: "k".into(),
        sealed_key: "v1.x".into(),
        created_at: 1,
        signs_from: 1,
    };
    let ring = store.signing_keys().clone();
    let ours = tokio::spawn(async move { ring.add_first_signing_keys(&[key]).await.unwrap() });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!ours.is_finished(), "waits for the lock");
    sqlx::query(
        "INSERT INTO signing_keys (kid, certificate, kek_id, sealed_key, created_at, signs_from)
         VALUES ('theirs', 'c', 'k', 'v1.y', 1, 1)",
    )
    .execute(&mut *tx)
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert!(!ours.await.unwrap(), "the ring was taken meanwhile");
    let kids: Vec<String> = store
        .signing_keys()
        .signing_keys()
        .await
        .unwrap()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, ["theirs"]);
}
