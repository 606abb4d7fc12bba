//! The PostgreSQL adapter: several nodes on one database, the schema of `migrations/postgres/`
//! applied at open (under an advisory lock, so nodes starting together apply it once). The
//! ports' SQL is the SQLite adapter's (`../sql/`); what only PostgreSQL has is here: the
//! connection, the session store, and the claim queries of `dialect`.

mod dialect;
mod sessions;

#[cfg(test)]
mod tests;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::Connection;

use super::{DatabaseUrl, Node, StoreError};

fn options(url: &DatabaseUrl) -> Result<PgConnectOptions, StoreError> {
    Ok(PgConnectOptions::from_str(url.expose())
        .map_err(|e| connect_error(url, e))?
        .application_name("passerelle"))
}

/// The driver's error never holds the URL; the message names it redacted.
fn connect_error(url: &DatabaseUrl, e: sqlx::Error) -> StoreError {
    StoreError::Connect {
        url: url.redacted(),
        source: Box::new(e),
    }
}

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Held while this node brings the schema up to date (sqlx's migrator takes its own lock; this
/// one also covers the session store's tables). Any constant: it only has to be ours.
const SCHEMA_LOCK: i64 = 0x7061_7373_6572_656c; // "passerel"

/// Every port, on one connection pool.
#[derive(Clone, Debug)]
pub struct PgAdapter {
    pool: PgPool,
    /// The pool the shared SQL reads from: the same pool (PostgreSQL has no single writer to
    /// keep free; see the SQLite adapter for why it has two).
    reads: PgPool,
    node: Node,
}

impl PgAdapter {
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Connect to `url` and bring its schema up to date.
    pub async fn open(url: &DatabaseUrl, node: Node) -> Result<PgAdapter, StoreError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect_with(options(url)?)
            .await
            .map_err(|e| connect_error(url, e))?;
        let adapter = PgAdapter {
            reads: pool.clone(),
            pool,
            node,
        };
        adapter.migrate().await?;
        Ok(adapter)
    }

    /// Connect once and ask the server for its version, changing nothing: `passerelle check`.
    pub async fn probe(url: &DatabaseUrl) -> Result<String, StoreError> {
        let options = options(url)?;
        let connect = sqlx::PgConnection::connect_with(&options);
        let mut conn = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| StoreError::Connect {
                url: url.redacted(),
                source: "no answer within 10 s".into(),
            })?
            .map_err(|e| connect_error(url, e))?;
        let version: String = sqlx::query_scalar("SHOW server_version")
            .fetch_one(&mut conn)
            .await?;
        conn.close().await.ok();
        Ok(version)
    }

    /// The stored signing keys, read on one connection without touching the schema (`passerelle
    /// check`); `None` before any node created the table.
    pub async fn peek_signing_keys(
        url: &DatabaseUrl,
    ) -> Result<Option<Vec<crate::store::StoredSigningKey>>, StoreError> {
        let options = options(url)?;
        let connect = sqlx::PgConnection::connect_with(&options);
        let mut conn = tokio::time::timeout(Duration::from_secs(10), connect)
            .await
            .map_err(|_| StoreError::Connect {
                url: url.redacted(),
                source: "no answer within 10 s".into(),
            })?
            .map_err(|e| connect_error(url, e))?;
        let exists: bool = sqlx::query_scalar("SELECT to_regclass('signing_keys') IS NOT NULL")
            .fetch_one(&mut conn)
            .await?;
        let rows = if exists {
            let rows: Vec<(String, String, String, String, i64, i64)> = sqlx::query_as(
                "SELECT kid, certificate, kek_id, sealed_key, created_at, signs_from
                 FROM signing_keys ORDER BY signs_from, created_at, kid",
            )
            .fetch_all(&mut conn)
            .await?;
            Some(
                rows.into_iter()
                    .map(
                        |(kid, certificate, kek_id, sealed_key, created_at, signs_from)| {
                            crate::store::StoredSigningKey {
                                kid,
                                certificate,
                                kek_id,
                                sealed_key,
                                created_at,
                                signs_from,
                            }
                        },
                    )
                    .collect(),
            )
        } else {
            None
        };
        conn.close().await.ok();
        Ok(rows)
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        let mut lock = self.pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *lock)
            .await?;
        let applied = async {
            MIGRATOR.run(&self.pool).await?;
            sessions::session_store(&self.pool)
                .migrate()
                .await
                .map_err(StoreError::from)
        }
        .await;
        // The lock is the connection's: closing it would release it too, but the connection
        // goes back to the pool, so release it explicitly.
        let released = sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *lock)
            .await;
        if released.is_err() {
            lock.detach().close().await.ok();
        }
        applied
    }
}

// The port implementations both backends share, compiled for this driver (`../sql/`).
mod audit {
    use super::PgAdapter as Adapter;
    include!("../sql/audit.rs");
}
mod audit_query {
    use super::PgAdapter as Adapter;
    include!("../sql/audit_query.rs");
}
mod grant_activity {
    use super::PgAdapter as Adapter;
    include!("../sql/grant_activity.rs");
}
mod health {
    use super::PgAdapter as Adapter;
    include!("../sql/health.rs");
}
mod housekeeping {
    use super::PgAdapter as Adapter;
    include!("../sql/housekeeping.rs");
}
mod login_requests {
    use super::PgAdapter as Adapter;
    include!("../sql/login_requests.rs");
}
mod lucca_links {
    use super::PgAdapter as Adapter;
    include!("../sql/lucca_links.rs");
}
mod migration_jobs {
    use super::PgAdapter as Adapter;
    include!("../sql/migration_jobs.rs");
}
mod oauth {
    use super::PgAdapter as Adapter;
    include!("../sql/oauth.rs");
}
mod outbox {
    use super::PgAdapter as Adapter;
    include!("../sql/outbox.rs");
}
mod saml_request_ids {
    use super::PgAdapter as Adapter;
    include!("../sql/saml_request_ids.rs");
}
mod upstream_identities {
    use super::PgAdapter as Adapter;
    include!("../sql/upstream_identities.rs");
}
mod leases {
    use super::PgAdapter as Adapter;
    include!("../sql/leases.rs");
}
mod sync_state {
    use super::PgAdapter as Adapter;
    include!("../sql/sync_state.rs");
}
mod person_revocations {
    use super::PgAdapter as Adapter;
    include!("../sql/person_revocations.rs");
}
mod lucca_budget {
    use super::PgAdapter as Adapter;
    include!("../sql/lucca_budget.rs");
}
mod login_failures {
    use super::PgAdapter as Adapter;
    include!("../sql/login_failures.rs");
}
mod signing_keys {
    use super::PgAdapter as Adapter;
    include!("../sql/signing_keys.rs");
}
