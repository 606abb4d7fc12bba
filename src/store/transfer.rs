//! `passerelle store migrate --to postgres://…`: copy an SQLite install into an empty
//! PostgreSQL database, every table, in one transaction, each table's row count verified.
//!
//! Refuses a database that holds any row in our tables (there is no `--force`: a half-used
//! database is not something to merge into; drop and recreate it to start over). The copy is
//! one transaction, so a failure leaves the target as empty as it was. Leases held by the old
//! node are not carried over (the new nodes would otherwise wait for them to expire).

use std::path::Path;

use sqlx::postgres::PgArguments;
use sqlx::sqlite::SqliteRow;
use sqlx::{Arguments, Row};

use super::{DatabaseUrl, Node, StoreError};

/// Our tables, parents before children (grants before their tokens, jobs before their rows).
/// Not copied: `lucca_sends`, `lucca_blocks` and `login_failures`, the counts of the last
/// minutes that only nodes sharing PostgreSQL write (one SQLite node counts in memory).
const TABLES: [&str; 18] = [
    "login_requests",
    "grants",
    "auth_codes",
    "access_tokens",
    "refresh_tokens",
    "audit_log",
    "saml_request_ids",
    "lucca_links",
    "lucca_outbox",
    "migration_jobs",
    "migration_rows",
    "upstream_identities",
    "leases",
    "sync_state",
    "job_leases",
    "person_revocations",
    "signing_keys",
    "tower_sessions",
];

/// The tables with an identity column, whose sequence must move past the copied ids.
const IDENTITIES: [&str; 2] = ["audit_log", "lucca_outbox"];

#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the target database is not empty ({table} has {rows} rows): the copy only goes into an \
         empty database; drop and recreate it to start over"
    )]
    NotEmpty { table: String, rows: i64 },
    #[error("{table}: {copied} rows written but {found} found after the copy; nothing was kept")]
    CountMismatch {
        table: String,
        copied: i64,
        found: i64,
    },
    #[error("no SQLite database at {0}")]
    NoSource(String),
}

impl From<sqlx::Error> for TransferError {
    fn from(e: sqlx::Error) -> Self {
        TransferError::Store(e.into())
    }
}

/// Copy `data_dir`'s SQLite database into the database at `url`; returns each table with the
/// number of rows copied. Stop the node first: rows it writes meanwhile would be missed.
pub async fn sqlite_to_postgres(
    data_dir: &Path,
    url: &DatabaseUrl,
) -> Result<Vec<(String, i64)>, TransferError> {
    let file = data_dir.join(super::DB_FILE);
    if !file.exists() {
        return Err(TransferError::NoSource(file.display().to_string()));
    }
    // Opening each brings its schema up to date: both are at the same version afterwards.
    let source = super::sqlite::SqliteAdapter::open(data_dir, Node::local()).await?;
    let target = super::postgres::PgAdapter::open(url, Node::random()).await?;
    let (lite, pg) = (source.pool(), target.pool());

    let mut tx = pg.begin().await?;
    for table in TABLES {
        let rows: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", pg_table(table)))
            .fetch_one(&mut *tx)
            .await?;
        if rows > 0 {
            return Err(TransferError::NotEmpty {
                table: table.into(),
                rows,
            });
        }
    }
    let mut copied = Vec::new();
    for table in TABLES {
        let columns = pg_columns(&mut tx, table).await?;
        let names: Vec<&str> = columns.iter().map(|(n, _)| n.as_str()).collect();
        let select = format!("SELECT {} FROM {table}", names.join(", "));
        let insert = format!(
            "INSERT INTO {} ({}) VALUES ({})",
            pg_table(table),
            names.join(", "),
            (1..=names.len())
                .map(|i| format!("${i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        let rows: Vec<SqliteRow> = sqlx::query(&select).fetch_all(lite).await?;
        for row in &rows {
            let mut args = PgArguments::default();
            for (i, (_, ty)) in columns.iter().enumerate() {
                bind(&mut args, row, i, ty)?;
            }
            sqlx::query_with(&insert, args).execute(&mut *tx).await?;
        }
        let found: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", pg_table(table)))
            .fetch_one(&mut *tx)
            .await?;
        let written = rows.len() as i64;
        if found != written {
            return Err(TransferError::CountMismatch {
                table: table.into(),
                copied: written,
                found,
            });
        }
        copied.push((table.to_string(), written));
    }
    for table in IDENTITIES {
        sqlx::query(&format!(
            "SELECT setval(pg_get_serial_sequence('{table}', 'id'),
                           COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
        ))
        .execute(&mut *tx)
        .await?;
    }
    for sql in [
        "UPDATE lucca_outbox SET lease_owner = NULL, lease_until = NULL",
        "UPDATE migration_jobs SET lease_owner = NULL, lease_until = NULL",
        "DELETE FROM leases",
        "DELETE FROM job_leases",
    ] {
        sqlx::query(sql).execute(&mut *tx).await?;
    }
    tx.commit().await?;
    Ok(copied)
}

/// Where a table lives on PostgreSQL: the session store keeps its own schema.
fn pg_table(table: &str) -> &str {
    match table {
        "tower_sessions" => "tower_sessions.session",
        other => other,
    }
}

async fn pg_columns(
    tx: &mut sqlx::PgConnection,
    table: &str,
) -> Result<Vec<(String, String)>, sqlx::Error> {
    let (schema, name) = match pg_table(table).split_once('.') {
        Some((s, n)) => (s.to_string(), n.to_string()),
        None => ("public".to_string(), table.to_string()),
    };
    sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns
         WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
    )
    .bind(schema)
    .bind(name)
    .fetch_all(tx)
    .await
}

/// Read column `i` of an SQLite row as the Rust type the PostgreSQL column takes, and bind it.
fn bind(args: &mut PgArguments, row: &SqliteRow, i: usize, ty: &str) -> Result<(), StoreError> {
    let added = match ty {
        "bigint" => args.add(row.try_get::<Option<i64>, _>(i)?),
        "boolean" => args.add(row.try_get::<Option<bool>, _>(i)?),
        "text" => args.add(row.try_get::<Option<String>, _>(i)?),
        "bytea" => args.add(row.try_get::<Option<Vec<u8>>, _>(i)?),
        // The session store's expiry, as tower-sessions-sqlx-store writes it on each backend.
        "timestamp with time zone" => {
            args.add(row.try_get::<tower_sessions::cookie::time::OffsetDateTime, _>(i)?)
        }
        other => {
            return Err(StoreError::Corrupt(format!(
                "unexpected column type {other}"
            )))
        }
    };
    added.map_err(StoreError::Backend)
}
