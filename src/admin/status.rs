//! The status page (the console's home): version, uptime, database, Lucca reachability and
//! budget, directory sync and outbox, and what `passerelle check` says of the configuration.

use std::time::Duration;

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit_action, check_csrf, render, when, ConsoleAdmin, ConsoleState};
use crate::web::PageError;

/// How long the page waits for Lucca's answer before saying it is unreachable.
const LUCCA_PING_TIMEOUT: Duration = Duration::from_secs(3);
/// A request Lucca answered this recently tells the page enough: no ping of its own (each
/// costs one of the tenant's 50 requests a minute, and admins leave this page open).
const LUCCA_ANSWER_FRESH: Duration = Duration::from_secs(60);

/// `GET /admin`: the console lives at `/admin/`.
pub async fn redirect_home() -> Redirect {
    Redirect::permanent("/admin/")
}

fn uptime(seconds: i64) -> String {
    let s = seconds.max(0) as u64;
    humantime::format_duration(Duration::from_secs(s)).to_string()
}

async fn lucca(st: &ConsoleState) -> Value {
    let Some(client) = &st.lucca else {
        return Value::Null;
    };
    let reachable =
        match tokio::time::timeout(LUCCA_PING_TIMEOUT, client.reachability(LUCCA_ANSWER_FRESH))
            .await
        {
            Ok(answer) => answer,
            Err(_) => Err(format!(
                "no answer within {}s",
                LUCCA_PING_TIMEOUT.as_secs()
            )),
        };
    let stats = client.limiter().stats();
    let window = stats.window;
    let used = stats
        .recent_sends
        .iter()
        .filter(|(at, _)| at.elapsed() < window)
        .count();
    json!({
        "url": client.base_url().as_str(),
        "reachable": reachable.is_ok(),
        "error": reachable.err(),
        "budget": stats.budget,
        "window": humantime::format_duration(window).to_string(),
        "used": used,
        "rate_limited": stats.rate_limited,
        "waiting": stats.waiting_sign_in + stats.waiting_batch,
        "blocked_for": stats.blocked_for.map(|d| humantime::format_duration(Duration::from_secs(d.as_secs())).to_string()),
    })
}

async fn outbox(st: &ConsoleState) -> Value {
    let rows = st
        .store
        .outbox()
        .recent(None, 200)
        .await
        .unwrap_or_default();
    let count = |s: &str| rows.iter().filter(|r| r.status == s).count();
    let next = st.store.outbox().next_due_at().await.ok().flatten();
    json!({
        "pending": count("pending"),
        "failed": count("failed"),
        "next_due": next.map(when),
        "last_error": rows.iter().find(|r| r.status == "failed").and_then(|r| r.last_error.clone()),
    })
}

/// `GET /admin/`.
pub async fn page(admin: ConsoleAdmin, State(st): State<ConsoleState>) -> Response {
    let database_ok = st.store.health().ping().await.is_ok();
    let backend = if st.config.store.url().is_some() {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    let (lucca, sync, problems, outbox) = tokio::join!(
        lucca(&st),
        st.ops.sync_status(),
        st.ops.check(),
        outbox(&st)
    );
    let sync_counts = sync
        .as_ref()
        .and_then(|s| s["last_run"]["counts"].as_object().cloned())
        .map(|c| {
            c.iter()
                .map(|(k, v)| format!("{k}: {v}"))
                .collect::<Vec<_>>()
                .join(", ")
        });
    render(
        &st,
        &admin,
        "admin/status.html",
        "status",
        minijinja::context! {
            version => env!("CARGO_PKG_VERSION"),
            build => env!("PASSERELLE_BUILD_INFO"),
            uptime => uptime(crate::store::now() - st.started_at),
            started => when(st.started_at),
            database => json!({"backend": backend, "reachable": database_ok}),
            lucca => lucca,
            sync => sync,
            sync_counts => sync_counts,
            outbox => outbox,
            problems => problems,
        },
    )
}

#[derive(Deserialize)]
pub struct SyncForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /admin/console/sync`: run the directory sync now.
pub async fn run_sync(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Form(form): Form<SyncForm>,
) -> Result<Response, PageError> {
    check_csrf(&admin, &form.csrf_token).await?;
    let outcome = st.ops.run_sync().await;
    audit_action(
        &st,
        &admin,
        "sync.run",
        if outcome.is_ok() {
            "started"
        } else {
            "refused"
        },
        json!({"error": outcome.as_ref().err()}),
    )
    .await;
    outcome.map_err(|e| {
        PageError::new(
            axum::http::StatusCode::CONFLICT,
            "admin.status.sync_refused",
            e,
        )
        .with_retry("/admin/")
    })?;
    Ok(Redirect::to("/admin/").into_response())
}
