//! PostgreSQL: the test harness itself, then the backend (the conformance suite runs as the
//! library's unit tests; two nodes on one database run here).

use sqlx::Connection;

use crate::common::pg;

/// The harness hands out a fresh, empty database that a password login reaches over TCP.
#[tokio::test]
async fn the_harness_gives_each_test_a_fresh_database() {
    let Some(a) = pg::database().await else {
        return;
    };
    let b = pg::required_database().await;
    assert_ne!(a, b);
    let mut conn = sqlx::PgConnection::connect(&a).await.unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = 'public'",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    assert_eq!(tables, 0);
    let wrong = a.replace("throwaway-test-password", "wrong");
    if wrong != a {
        assert!(sqlx::PgConnection::connect(&wrong).await.is_err());
    }
}
