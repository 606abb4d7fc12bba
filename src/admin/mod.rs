//! The admin console at `/admin/`: server-rendered pages (the runtime templates folder,
//! `templates/admin/`) for migrations, people, the audit log, connections, keys and status, on
//! top of the domain rooms; and the audit API (`GET /admin/audit`), which shares its query
//! with the audit page.
//!
//! Who may open it: a person signed in through Passerelle itself (the ordinary session, the
//! ordinary sign-in page) whose groups meet `[admin] groups`. The admin bearer token opens the
//! JSON API only, never these pages. Every form carries the session's CSRF token; rotating
//! keys, applying a migration and revoking a person also need a sign-in in the last
//! `[admin] fresh_sign_in` (15 minutes; else the person signs in again and comes back). Every action is
//! audited with the admin's subject and email.
//!
//! What only the composition root can do (revoke a person across both front ends, the claims
//! preview, `passerelle check`) comes through the [`ConsoleOps`] port that `app/` implements.
//!
//! May import every room below `app/`; never `app/`.

mod audit;
mod auth;
mod connections;
mod keys;
mod migrations;
mod people;
mod status;

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::FromRef;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use audit::api_routes;
pub use auth::ConsoleAdmin;

use crate::config::Config;
use crate::keys::Keys;
use crate::login::LoginState;
use crate::provisioning::migration::MigrationContext;
use crate::provisioning::revocation::RevokeSummary;
use crate::store::Store;
use crate::web::Templates;

/// What the console needs of the composition root: work that spans rooms no room below it may
/// join (both front ends, the pipeline, the checks).
#[async_trait]
pub trait ConsoleOps: Send + Sync {
    /// "Sign out everywhere": every session, grant and token of the person with this email.
    /// `None` when Passerelle knows nobody by it. `admin` is who asked (audited).
    async fn revoke_email(
        &self,
        email: &str,
        admin: &str,
    ) -> Result<Option<(Vec<String>, RevokeSummary)>, String>;

    /// The claims preview of `user` for one client (`client_id`), one SP (`sp`) or all.
    async fn preview(
        &self,
        user: &str,
        sp: Option<String>,
        client_id: Option<String>,
    ) -> Result<serde_json::Value, String>;

    /// The warnings and errors `passerelle check` finds in the running configuration.
    async fn check(&self) -> Vec<String>;

    /// The directory sync's state (`GET /admin/sync`), `None` without Lucca.
    async fn sync_status(&self) -> Option<serde_json::Value>;

    /// Run the directory sync now; the error says why it could not start.
    async fn run_sync(&self) -> Result<(), String>;
}

/// The console's narrow state, cut from the app's by `FromRef`.
#[derive(Clone)]
pub struct ConsoleState {
    pub store: Store,
    pub login: LoginState,
    pub templates: Arc<Templates>,
    pub keys: Arc<Keys>,
    pub migrations: Arc<MigrationContext>,
    pub saml: Arc<crate::saml::SamlIdp>,
    pub oidc: Arc<crate::oidc::Provider>,
    pub config: Arc<Config>,
    /// Lucca, when configured (reachability and budget on the status page).
    pub lucca: Option<crate::lucca::LuccaClient>,
    pub ops: Arc<dyn ConsoleOps>,
    pub base_url: Arc<str>,
    /// When this process started (unix seconds), for the uptime.
    pub started_at: i64,
}

impl ConsoleState {
    /// Does this person belong to `[admin] groups`?
    pub fn is_admin(&self, identity: &crate::identity::Identity) -> bool {
        let admins = &self.config.admin.groups;
        identity
            .groups
            .iter()
            .any(|g| admins.iter().any(|a| a == g))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

/// The console's pages. Merged by `app/` inside the session layer and the error pages, outside
/// the global 1 MiB body limit (uploads are bounded by `[migrations] max_upload_bytes`).
pub fn routes<S>() -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    ConsoleState: FromRef<S>,
{
    Router::new()
        .route("/admin", get(status::redirect_home))
        .route("/admin/", get(status::page))
        .route("/admin/resume", get(auth::resume))
        .route("/admin/console/sync", post(status::run_sync))
        .route(
            "/admin/console/migrations",
            get(migrations::list).post(migrations::upload),
        )
        .route("/admin/console/migrations/{id}", get(migrations::job))
        .route(
            "/admin/console/migrations/{id}/events",
            get(migrations::events),
        )
        .route(
            "/admin/console/migrations/{id}/report.csv",
            get(migrations::report_csv),
        )
        .route(
            "/admin/console/migrations/{id}/report.json",
            get(migrations::report_json),
        )
        .route(
            "/admin/console/migrations/{id}/cancel",
            post(migrations::cancel),
        )
        .route("/admin/console/people", get(people::page))
        .route("/admin/console/people/revoke", post(people::revoke))
        .route("/admin/console/audit", get(audit::page))
        .route("/admin/console/audit.csv", get(audit::csv))
        .route("/admin/console/connections", get(connections::page))
        .route(
            "/admin/console/connections/certificate.pem",
            get(connections::certificate_pem),
        )
        .route("/admin/console/keys", get(keys::page))
        .route("/admin/console/keys/rotate", post(keys::rotate))
}

/// A console page: the template with the admin, the CSRF token and the active tab.
fn render(
    st: &ConsoleState,
    admin: &ConsoleAdmin,
    name: &str,
    tab: &str,
    ctx: minijinja::Value,
) -> Response {
    Html(st.templates.render(
        name,
        minijinja::context! {
            admin_email => admin.who.identity.email.clone(),
            csrf_token => admin.csrf.clone(),
            tab => tab,
            fresh_sign_in => admin.is_fresh(),
            fresh_window => humantime::format_duration(st.config.admin.fresh_sign_in).to_string(),
            ..ctx
        },
    ))
    .into_response()
}

/// Record an admin's action with their identity.
async fn audit_action(
    st: &ConsoleState,
    admin: &ConsoleAdmin,
    event: &str,
    outcome: &str,
    mut detail: serde_json::Value,
) {
    if let Some(map) = detail.as_object_mut() {
        map.insert("admin".into(), admin.who.identity.email.clone().into());
        map.insert("via".into(), "console".into());
    }
    if let Err(e) = st
        .store
        .audit()
        .record(crate::store::AuditEvent {
            event,
            outcome,
            subject: Some(&admin.who.identity.subject),
            client: None,
            ip: None,
            detail: Some(detail),
        })
        .await
    {
        tracing::warn!(error = %e, "could not write the audit log");
    }
}

/// A unix time as people read it: `2026-12-01 16:05:09 UTC`.
fn when(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string())
        .unwrap_or_default()
}

/// A form's CSRF field, checked against the session's token.
async fn check_csrf(admin: &ConsoleAdmin, presented: &str) -> Result<(), crate::web::PageError> {
    if crate::web::verify_csrf(&admin.session, presented).await {
        Ok(())
    } else {
        Err(crate::web::PageError::new(
            axum::http::StatusCode::FORBIDDEN,
            "admin.form_expired.title",
            "admin.form_expired.message",
        ))
    }
}
