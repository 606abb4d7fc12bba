//! How a database row becomes a port record, for any sqlx backend: each record is read by
//! column name, so the same impl serves SQLite and (later) PostgreSQL. The records themselves
//! (in `ports/`) name no driver type.

use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};

use super::ports::{
    AuditEntry, CodeRecord, GrantRecord, LuccaLink, MigrationClassCount, MigrationJobRecord,
    MigrationRowRecord, OutboxRow, SyncStateRecord,
};

/// `impl FromRow for $record`, each field read from the column of the same name.
macro_rules! from_row {
    ($record:ident { $($field:ident: $ty:ty),* $(,)? }) => {
        impl<'r, R: Row> FromRow<'r, R> for $record
        where
            &'r str: ColumnIndex<R>,
            $($ty: Decode<'r, R::Database> + Type<R::Database>,)*
        {
            fn from_row(row: &'r R) -> sqlx::Result<Self> {
                Ok($record {
                    $($field: row.try_get(stringify!($field))?,)*
                })
            }
        }
    };
}

from_row!(CodeRecord {
    client_id: String,
    redirect_uri: String,
    code_challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    subject: String,
    session_id: Option<String>,
    auth_time: i64,
    amr: String,
    identity: String,
    expires_at: i64,
});

from_row!(GrantRecord {
    id: String,
    client_id: String,
    subject: String,
    scope: String,
    identity: String,
    auth_time: i64,
    amr: String,
    session_id: Option<String>,
    expires_at: i64,
    revoked_at: Option<i64>,
});

from_row!(LuccaLink {
    subject: String,
    lucca_id: i64,
    email: Option<String>,
    status: String,
    checked_at: i64,
});

from_row!(OutboxRow {
    id: i64,
    subject: String,
    lucca_id: i64,
    payload: String,
    status: String,
    version: i64,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
});

from_row!(AuditEntry {
    id: i64,
    at: i64,
    event: String,
    outcome: String,
    subject: Option<String>,
    client: Option<String>,
    ip: Option<String>,
    detail: Option<String>,
});

from_row!(MigrationJobRecord {
    id: String,
    dry_run: bool,
    notify: bool,
    status: String,
    total: i64,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: Option<i64>,
    error: Option<String>,
});

from_row!(MigrationRowRecord {
    row_no: i64,
    seq: i64,
    email: String,
    input: String,
    class: Option<String>,
    fields: Option<String>,
    lucca_id: Option<i64>,
    message: Option<String>,
    done: bool,
    write_started_at: Option<i64>,
    notice: Option<String>,
    findings: Option<String>,
});

from_row!(SyncStateRecord {
    last_started_at: Option<i64>,
    last_finished_at: Option<i64>,
    last_full_at: Option<i64>,
    last_counts: Option<String>,
    last_error: Option<String>,
    last_error_at: Option<i64>,
    run_started_at: Option<i64>,
    run_since: Option<i64>,
    run_full: bool,
    cursor: i64,
    run_counts: Option<String>,
});

from_row!(MigrationClassCount {
    class: Option<String>,
    done: bool,
    count: i64,
});

impl From<sqlx::Error> for super::StoreError {
    fn from(e: sqlx::Error) -> Self {
        super::StoreError::Backend(Box::new(e))
    }
}

impl From<sqlx::migrate::MigrateError> for super::StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        super::StoreError::Migrate(Box::new(e))
    }
}
