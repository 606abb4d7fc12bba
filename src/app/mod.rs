//! The composition root: turns a validated configuration into running state (every room's
//! narrow state, the HTTP clients, the workers) and a listening server; assembles the router;
//! owns reload, housekeeping, the `/admin/*` API, `passerelle check` and the claims preview
//! (they compose several rooms). The only room that knows every other; nothing imports it but
//! `main.rs` (and the tests, examples and benches outside `src/`).
//!
//! May import every room.

pub mod admin;
pub mod check;
mod console;
mod housekeeping;
pub mod preview;
mod reload;
mod revoke;
mod router;
mod state;
mod substates;

pub use reload::{reload, Reloaded, ReloadedCertificate};
pub use router::{metrics_router, router};
pub use state::{AppParts, AppState};

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use crate::config::{Config, Severity};
use crate::keys::Keys;
use crate::login::Live;
use crate::login::{Directory, MemoryThrottle};
use crate::store::StoreConfig;
use crate::web::Templates;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("configuration has errors:\n{0}")]
    Invalid(String),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("[store] url (or PASSERELLE_DATABASE_URL) {0}")]
    StoreUrl(#[from] crate::store::UrlError),
    #[error(transparent)]
    Keys(#[from] crate::keys::KeyError),
    #[error("SAML service providers:\n{0}")]
    Saml(String),
    #[error("directory: {0}")]
    Directory(#[from] crate::login::LoginError),
    #[error("lucca: {0}")]
    Lucca(#[from] crate::lucca::LuccaError),
    #[error("migrations: {0}")]
    Migrations(#[from] crate::provisioning::migration::ContextError),
    /// An HTTP client (with its timeouts and redirect policy) could not be built: the server
    /// does not fall back to one without them.
    #[error("cannot build the HTTP client for {purpose}: {source}")]
    HttpClient {
        purpose: &'static str,
        source: reqwest::Error,
    },
    #[error("{key}: {0}", key = .0.key())]
    Tls(#[from] crate::web::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
}

/// Options that are not configuration: how this process runs.
#[derive(Debug, Clone, Default)]
pub struct StartOptions {
    /// Serve the demo relying party and landing-page extras.
    pub demo: bool,
    /// The file the configuration came from, re-read by `POST /admin/reload` and SIGHUP.
    pub config_path: Option<std::path::PathBuf>,
}

/// Seconds: from a cached discovery document to a Lucca call waiting out a Retry-After.
const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// HELP text of the metrics the protocol and sign-in rooms count (the Lucca and provisioning
/// rooms describe theirs).
fn describe_metrics() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_histogram!(
        "passerelle_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by method, route (the matched pattern, not the path) and status."
    );
    describe_counter!(
        "passerelle_signins_total",
        "Sign-in attempts by method (pwd, fed, any) and outcome (success, wrong_password, throttled, network_refused…)."
    );
    describe_counter!(
        "passerelle_oidc_codes_issued_total",
        "OpenID Connect authorization codes issued."
    );
    describe_counter!(
        "passerelle_oidc_tokens_issued_total",
        "OpenID Connect token responses issued (code exchanges and refreshes)."
    );
    describe_counter!(
        "passerelle_saml_responses_total",
        "SAML Responses sent to service providers, by outcome (success, error)."
    );
    describe_counter!(
        "passerelle_revocations_total",
        "People whose sessions, grants and tokens were revoked, by reason and source."
    );
}

fn metrics_handle() -> Option<metrics_exporter_prometheus::PrometheusHandle> {
    // One global recorder per process; tests start several servers in one process.
    static HANDLE: OnceLock<Option<metrics_exporter_prometheus::PrometheusHandle>> =
        OnceLock::new();
    HANDLE
        .get_or_init(|| {
            use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};
            // Durations as Prometheus histograms (buckets a scraper can aggregate across
            // nodes), not the exporter's default summaries.
            // The buckets are a non-empty constant: the builder cannot refuse them.
            PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), DURATION_BUCKETS)
                .ok()?
                .install_recorder()
                .ok()
        })
        .clone()
}

/// Everything the server needs, built from the configuration. Refuses an invalid configuration.
pub async fn build_state(config: Config, options: &StartOptions) -> Result<AppState, StartError> {
    let problems = config.validate();
    let errors: Vec<String> = problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .map(|p| p.to_string())
        .collect();
    if !errors.is_empty() {
        return Err(StartError::Invalid(errors.join("\n")));
    }
    for warning in problems.iter().filter(|p| p.severity == Severity::Warning) {
        tracing::warn!("{warning}");
    }
    // Before anything is opened: a certificate that cannot be served stops the start.
    let tls = match config.server.tls_files() {
        Some((cert, key)) => {
            let tls = crate::web::TlsCertificates::load(cert, key)?;
            for warning in tls.current().warnings(cert) {
                tracing::warn!("server.tls_cert: {warning}");
            }
            Some(Arc::new(tls))
        }
        None => None,
    };
    let store_config = StoreConfig::from_settings(config.store.url(), &config.server.data_dir)?;
    let node = crate::store::Node {
        lease: config.store.lease,
        ..crate::store::Node::for_store(&store_config)
    };
    let store = crate::store::open_as(&store_config, node)
        .await?
        .with_audit_writer();
    tracing::info!(store = %store_config.describe(), node = store.node_id(), "store open");
    let keys = Keys::open(&config, &store).await?;
    let directory = Directory::new(&config.directory.users)?;
    let live = Live {
        directory: Arc::new(directory),
        role_mapping: config.role_mapping.clone(),
        claims: config.claims.clone(),
    };
    let base_url: Arc<str> = config.server.base_url().into();
    // Every outbound HTTP client is built here, once: a failure stops the start.
    let client_error = |purpose| move |source| StartError::HttpClient { purpose, source };
    let oidc_http = crate::login::OidcHttp::new().map_err(client_error("OpenID providers"))?;
    let metadata_http =
        crate::saml::idp::metadata_http_client().map_err(client_error("SAML SP metadata"))?;
    // One client per tenant for JIT, migrations and the sync. Its budget is this process's
    // with the embedded store, the database's when nodes share one: 50 requests a minute for
    // the whole cluster, not for each node.
    let lucca_scope = match store_config {
        StoreConfig::Sqlite { .. } => crate::lucca::BudgetScope::InProcess,
        StoreConfig::Postgres { .. } => crate::lucca::BudgetScope::Shared {
            store: store.lucca_budget().clone(),
            node: store.node_id().to_string(),
            sign_in_reserve: config.lucca.sign_in_reserve,
        },
    };
    let lucca = crate::lucca::LuccaClient::from_config_in(&config.lucca, &lucca_scope)?;
    let provisioning =
        crate::provisioning::Jit::from_config(&config.lucca, store.clone(), lucca.clone())?;
    let saml = crate::saml::SamlIdp::load(&base_url, &config.saml, metadata_http)
        .await
        .map_err(|problems| {
            StartError::Saml(
                problems
                    .iter()
                    .map(|p| format!("error: {p}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
            )
        })?;
    let live = Arc::new(ArcSwap::from_pointee(live));
    let migrations = Arc::new(crate::provisioning::migration::MigrationContext::new(
        &config,
        store.clone(),
        live.clone(),
        base_url.clone(),
        lucca.clone(),
    )?);
    let roles = crate::provisioning::roles::RoleApplier::from_config(&config, &store, live.clone());
    if let (Some(jit), Some(roles)) = (&provisioning, &roles) {
        jit.set_role_applier(roles.clone());
    }
    let sync = crate::provisioning::sync::build(
        &config,
        &store,
        provisioning.as_deref(),
        lucca.as_ref(),
        roles,
    )?;
    let webhooks = crate::provisioning::webhooks::build(&config.lucca, &sync);
    // Leavers found by the sync, a webhook, a sign-in or a refresh lose every session and token.
    let revoker = Arc::new(revoke::PersonRevoker::new(store.clone(), live.clone()));
    if let Some(jit) = &provisioning {
        jit.follower().set_revocation(revoker.clone());
    }
    if let Some(sync) = &sync.0 {
        sync.follower().set_revocation(revoker.clone());
    }
    let metrics = metrics_handle();
    crate::lucca::describe_metrics();
    describe_metrics();
    crate::provisioning::describe_metrics();
    let pipeline = Arc::new(
        crate::pipeline::Pipeline::new(
            live.clone(),
            provisioning
                .clone()
                .map(|jit| jit as Arc<dyn crate::pipeline::Provisioning>),
        )
        .with_support_contact(&config.lucca.support_contact),
    );
    // The way back to Lucca that refusal pages offer: the tenant's address, when configured.
    let templates = Arc::new(Templates::new(&config.server.templates_dir).with_global(
        "lucca_url",
        minijinja::Value::from(config.lucca.base_url.clone()),
    ));
    // Whatever a session signs in to and must be told when it is signed out.
    let logout = Arc::new(crate::login::LogoutParticipants::new(vec![Arc::new(
        crate::saml::SingleLogout::new(store.clone(), config.login.request_ttl),
    )]));
    // Failed sign-ins are counted where every node sees them: in memory for the one node of
    // the embedded store, in the database when nodes share one.
    let throttle: Arc<dyn crate::login::LoginThrottle> = match store_config {
        StoreConfig::Sqlite { .. } => Arc::new(MemoryThrottle::new(
            config.login.failure_window,
            config.login.max_failures_per_account,
            config.login.max_failures_per_ip,
        )),
        StoreConfig::Postgres { .. } => Arc::new(crate::login::StoreThrottle::new(
            store.login_failures().clone(),
            config.login.failure_window,
            config.login.max_failures_per_account,
            config.login.max_failures_per_ip,
        )),
    };
    let login = crate::login::LoginState {
        store: store.clone(),
        settings: Arc::new(config.login.clone()),
        live: live.clone(),
        throttle,
        upstreams: Arc::new(crate::login::upstream::Upstreams::new(
            &config.upstreams,
            &base_url,
            &oidc_http,
        )),
        templates: templates.clone(),
        logout,
    };
    let keys = Arc::new(keys);
    let oidc = crate::oidc::OidcState {
        provider: Arc::new(crate::oidc::Provider::new(&config.oidc, &base_url)),
        store: store.clone(),
        keys: keys.clone(),
        pipeline: pipeline.clone(),
        login: login.clone(),
        templates: templates.clone(),
    };
    let state = AppState::new(AppParts {
        started_at: crate::store::now(),
        check_cache: Default::default(),
        revoker,
        sync,
        webhooks,
        trusted_proxies: crate::web::TrustedProxies(config.server.trusted_proxies.clone().into()),
        login,
        pipeline,
        store,
        keys,
        live,
        templates,
        oidc,
        saml: Arc::new(saml),
        oidc_http,
        metrics,
        base_url,
        demo: options.demo,
        config_path: options.config_path.clone(),
        provisioning,
        migrations,
        tls,
        config: Arc::new(config),
    });
    Ok(state)
}

/// A server running in this process.
pub struct Running {
    pub addr: SocketAddr,
    /// Where `/metrics` is served when `[server] metrics_listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub state: AppState,
    shutdown: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
    /// Background work (outbox, migrations, housekeeping, metadata refresh, SIGHUP), stopped with
    /// the server so a stopped server never keeps writing. Aborting is safe: an outbox update or
    /// a migration write cut short is found pending, and re-checked, by the next start.
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Stop accepting, finish in-flight requests.
    pub async fn stop(mut self) {
        self.stop_workers();
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = (&mut self.task).await;
        // In-flight requests are done: store what they and the workers queued for the audit.
        self.state.store.close().await;
    }

    /// Wait until the server ends (Ctrl-C or SIGTERM when started with [`serve_until_signal`]).
    pub async fn wait(mut self) {
        let _ = (&mut self.task).await;
        self.stop_workers();
        self.state.store.close().await;
    }

    fn stop_workers(&mut self) {
        for worker in self.workers.drain(..) {
            worker.abort();
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop_workers();
    }
}

/// Bind `listen` (port 0 picks a free port) and serve in the background.
pub async fn start(state: AppState, listen: &str) -> Result<Running, StartError> {
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| StartError::Listen {
            addr: listen.to_string(),
            source,
        })?;
    start_on(state, listener).await
}

/// Serve on an already-bound listener (tests bind first to learn the port for `public_url`).
pub async fn start_on(state: AppState, listener: TcpListener) -> Result<Running, StartError> {
    let addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: "listener".into(),
        source,
    })?;
    let tls = match &state.tls {
        Some(tls) => Some(tls.server_config()?),
        None => None,
    };
    let mut workers = vec![
        housekeeping::spawn_housekeeping(state.clone()),
        housekeeping::spawn_key_reload(state.clone()),
        reload::spawn_reload_on_sighup(state.clone()),
        crate::provisioning::migration::spawn_worker(state.migrations.clone()),
    ];
    // Pending updates from before a restart are picked up by the worker's first pass.
    workers.extend(
        state
            .provisioning
            .clone()
            .map(crate::provisioning::spawn_outbox_worker),
    );
    workers.extend(crate::saml::idp::spawn_metadata_refresh(state.saml.clone()));
    workers.extend(crate::provisioning::sync::spawn(&state.sync));
    workers.extend(crate::provisioning::webhooks::spawn(&state.webhooks));
    let mut metrics_addr = None;
    if let Some(listen) = state.config.server.metrics_listen.as_deref() {
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| StartError::Listen {
                addr: listen.to_string(),
                source,
            })?;
        metrics_addr = listener.local_addr().ok();
        let app = metrics_router(state.clone());
        // A worker: it stops with the server.
        workers.push(tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "metrics listener stopped with an error");
            }
        }));
    }
    let app = router(state.clone());
    let (tx, rx) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let shutdown = async move {
            tokio::select! {
                _ = rx => {},
                _ = shutdown_signal() => {},
            }
        };
        match tls {
            Some(tls) => crate::web::tls::serve(listener, tls, app, shutdown).await,
            None => {
                let app = app.into_make_service_with_connect_info::<SocketAddr>();
                if let Err(e) = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown)
                    .await
                {
                    tracing::error!(error = %e, "server stopped with an error");
                }
            }
        }
    });
    Ok(Running {
        addr,
        metrics_addr,
        state,
        shutdown: Some(tx),
        task,
        workers,
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
