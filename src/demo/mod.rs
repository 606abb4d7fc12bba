//! `passerelle demo`: the landing page, a built-in relying party whose callback page shows
//! the verified ID token claims, and an in-process Lucca simulator that JIT provisions into
//! (listed at `/demo/lucca`). A build without the `simulator` cargo feature runs the demo with
//! JIT off, and says so.
//!
//! Handlers take a narrow [`DemoState`]. May import `config/`, `web/`, `keys/`, `login/`, `lucca/`
//! (the simulator) and `saml/` (its IdP metadata and Redirect encoding); only `app/` imports it.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::Router;
use tower_sessions::Session;

#[cfg(feature = "simulator")]
use crate::lucca::simulator::{self, SimulatorConfig, SimulatorHandle};

mod rp;
mod sp;

use std::sync::Arc;

use crate::config::Config;
use crate::keys::Keys;
use crate::login::{OidcHttp, SignedIn};
use crate::web::Templates;

/// What the demo handlers read (axum `FromRef` from the app's state).
#[derive(Clone)]
pub struct DemoState {
    pub config: Arc<Config>,
    pub templates: Arc<Templates>,
    /// `public_url` without a trailing slash.
    pub base_url: Arc<str>,
    /// Started by `passerelle demo`: the demo RP/SP routes and the landing page's extras.
    pub demo: bool,
    /// The demo RP's client: it signs in through this very server over HTTP.
    pub oidc_http: OidcHttp,
    /// The published certificates the demo SP verifies Responses with.
    pub keys: Arc<Keys>,
    /// The IdP's SSO URL the demo SP sends its AuthnRequest to.
    pub saml_sso_url: Arc<str>,
    /// Read with the session: a revoked person's landing page shows them signed out.
    pub store: crate::store::Store,
}

impl DemoState {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
}

/// The landing page at `/`.
pub async fn landing(State(state): State<DemoState>, session: Session) -> Response {
    let signed_in = SignedIn::current(
        &session,
        &state.store,
        state.config.login.session_max_age.as_secs() as i64,
    )
    .await
    .map(|s| s.identity.email);
    let demo_users: Vec<minijinja::Value> = if state.demo {
        state
            .config
            .directory
            .users
            .iter()
            .map(|u| {
                minijinja::context! {
                    email => u.email,
                    password => u.password.as_ref().map(|p| p.expose().to_string()),
                    groups => u.groups.join(", "),
                }
            })
            .collect()
    } else {
        Vec::new()
    };
    Html(state.templates.render(
        "landing.html",
        minijinja::context! {
            signed_in => signed_in,
            discovery_url => state.url("/.well-known/openid-configuration"),
            jwks_url => state.url("/oidc/jwks"),
            metadata_url => state.url("/saml/metadata"),
            demo => state.demo,
            demo_saml => state.demo,
            demo_users => demo_users,
        },
    ))
    .into_response()
}

/// The demo relying party's routes, served only by `passerelle demo`.
pub fn routes<S>(enabled: bool) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
    DemoState: axum::extract::FromRef<S>,
{
    if !enabled {
        return Router::new();
    }
    Router::new()
        .route("/demo/oidc/start", axum::routing::get(rp::start))
        .route("/demo/oidc/callback", axum::routing::get(rp::callback))
        .route("/demo/lucca", axum::routing::get(lucca_users))
        .route("/demo/saml/start", axum::routing::get(sp::start))
        .route("/demo/saml/acs", axum::routing::post(sp::acs))
}

/// The demo's Lucca tenant, started on first use and kept for the life of the process.
#[cfg(feature = "simulator")]
static SIMULATOR: std::sync::OnceLock<Result<SimulatorHandle, String>> = std::sync::OnceLock::new();

/// Start the simulator (once) and return it. It runs on a thread and runtime of its own, so
/// it can be started from synchronous code and outlives whichever runtime asked for it.
#[cfg(feature = "simulator")]
fn demo_lucca() -> Result<&'static SimulatorHandle, String> {
    SIMULATOR
        .get_or_init(start_simulator)
        .as_ref()
        .map_err(Clone::clone)
}

#[cfg(feature = "simulator")]
fn start_simulator() -> Result<SimulatorHandle, String> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("lucca-simulator".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = tx.send(Err(format!("cannot start the Lucca simulator: {e}")));
                    return;
                }
            };
            runtime.block_on(async move {
                let config = SimulatorConfig {
                    api_key: crate::web::random_token(24),
                    ..SimulatorConfig::default()
                };
                match simulator::spawn(config).await {
                    Ok(handle) => {
                        let _ = tx.send(Ok(handle));
                        // Keep serving: the handle lives in `SIMULATOR`, the server here.
                        std::future::pending::<()>().await;
                    }
                    Err(e) => {
                        let _ = tx.send(Err(format!("cannot start the Lucca simulator: {e}")));
                    }
                }
            });
        })
        .map_err(|e| format!("cannot start the Lucca simulator: {e}"))?;
    rx.recv()
        .map_err(|_| "the Lucca simulator did not start".to_string())?
}

/// `/demo/lucca`: the simulator's users, so a visitor can watch JIT create and update them.
async fn lucca_users(State(state): State<DemoState>) -> Response {
    #[cfg(feature = "simulator")]
    if let Some(Ok(sim)) = SIMULATOR.get() {
        return simulator_users(&state, sim);
    }
    Html(state.templates.render(
        "message.html",
        minijinja::context! {
            title => state.templates.message(&"demo.no_simulator.title".into()),
            message => state.templates.message(&"demo.no_simulator.message".into()),
        },
    ))
    .into_response()
}

#[cfg(feature = "simulator")]
fn simulator_users(state: &DemoState, sim: &SimulatorHandle) -> Response {
    let text = |u: &serde_json::Value, k: &str| {
        u.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_string()
    };
    let departments = sim.departments();
    let users = sim.users();
    let rows: Vec<(String, String)> = users
        .iter()
        .map(|u| {
            let id = u.get("id").and_then(|v| v.as_i64()).unwrap_or_default();
            let department = u
                .get("departmentId")
                .and_then(|v| v.as_i64())
                .and_then(|d| departments.iter().find(|x| x.id == d))
                .map(|d| d.name.clone())
                .unwrap_or_default();
            let end = text(u, "dtContractEnd");
            let contract = if end.is_empty() {
                format!(
                    "since {}",
                    text(u, "dtContractStart").get(..10).unwrap_or("")
                )
            } else {
                format!("ended {}", end.get(..10).unwrap_or(""))
            };
            let manager = u
                .get("managerId")
                .and_then(|v| v.as_i64())
                .map(|m| format!("manager #{m}"))
                .unwrap_or_default();
            let details: Vec<String> = [
                text(u, "mail"),
                text(u, "jobTitle"),
                department,
                manager,
                contract,
            ]
            .into_iter()
            .filter(|part| !part.is_empty())
            .collect();
            (
                format!("#{id} {} {}", text(u, "firstName"), text(u, "lastName")),
                details.join(" · "),
            )
        })
        .collect();
    Html(state.templates.render(
        "demo_callback.html",
        minijinja::context! {
            title => state.templates.message(&"demo.lucca.title".into()),
            subtitle => state.templates.message(&crate::web::Message::new("demo.lucca.subtitle").arg("url", sim.base_url().to_string())),
            rows => rows,
            raw => serde_json::to_string_pretty(&users).unwrap_or_default(),
        },
    ))
    .into_response()
}

/// The demo's built-in configuration: three users (two already in Lucca, one JIT creates), a
/// role table, a demo client served by this process, the Lucca simulator with JIT on (when
/// built with it), data under the system temp directory.
pub fn demo_config(listen: Option<String>) -> Result<crate::config::Config, String> {
    use crate::config::{
        ClientConfig, Config, DirectoryUser, LuccaDefaults, RoleMappingRow, Secret,
    };
    let mut config = Config::default();
    let listen = listen
        .or_else(|| std::env::var("PASSERELLE_LISTEN").ok())
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let public_url =
        std::env::var("PASSERELLE_PUBLIC_URL").unwrap_or_else(|_| format!("http://{listen}"));
    let root = std::env::var("PASSERELLE_DATA_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir().join("passerelle-demo"));
    config.server.listen = listen;
    config.server.public_url = public_url.trim_end_matches('/').to_string();
    config.server.data_dir = root.join("data");
    config.server.keys_dir = root.join("keys");
    // Fresh secrets per run: the demo listens on a real port, and a published token would let
    // anyone who can reach it into the admin API.
    config.admin.token = Some(Secret::new(crate::web::random_token(32)));
    let user = |email: &str,
                password: &str,
                given: &str,
                family: &str,
                number: &str,
                dept: &str,
                manager: Option<&str>,
                groups: &[&str]| DirectoryUser {
        email: email.into(),
        password: Some(Secret::new(password)),
        given_name: Some(given.into()),
        family_name: Some(family.into()),
        employee_number: Some(number.into()),
        department: Some(dept.into()),
        manager_email: manager.map(Into::into),
        groups: groups.iter().map(|g| g.to_string()).collect(),
        ..Default::default()
    };
    config.directory.users = vec![
        user(
            "alice@acme.test",
            "alice-demo",
            "Alice",
            "Martin",
            "00042",
            "Engineering",
            Some("bob@acme.test"),
            &["corp-employees", "corp-managers"],
        ),
        user(
            "bob@acme.test",
            "bob-demo",
            "Bob",
            "Durand",
            "00007",
            "Human Resources",
            None,
            &["corp-employees", "corp-hr"],
        ),
        // Not in the simulator's seed: her first sign-in creates her Lucca account.
        user(
            "carol@acme.test",
            "carol-demo",
            "Carol",
            "Lambert",
            "00090",
            "Sales",
            Some("farid.haddad@acme.test"),
            &["corp-employees"],
        ),
    ];
    #[cfg(feature = "simulator")]
    {
        let lucca = demo_lucca()?;
        config.lucca.base_url = Some(lucca.base_url().to_string());
        config.lucca.api_key = Some(Secret::new(lucca.api_key()));
        config.lucca.jit = crate::config::JitMode::CreateAndUpdate;
    }
    config.lucca.support_contact = "your HR team (hr@acme.test)".into();
    config.lucca.defaults = LuccaDefaults {
        legal_entity_id: Some(1),
        role_principal_id: Some(55),
        culture_id: Some(1036),
        department_id: Some(13),
    };
    config.role_mapping = vec![
        RoleMappingRow {
            group: "corp-managers".into(),
            role: "validateur_n1".into(),
            module: Some("figgo".into()),
            ..Default::default()
        },
        RoleMappingRow {
            group: "corp-hr".into(),
            role: "administrateur_rh".into(),
            module: Some("figgo".into()),
            ..Default::default()
        },
        RoleMappingRow {
            group: "corp-employees".into(),
            role: "collaborateur".into(),
            module: Some("figgo".into()),
            ..Default::default()
        },
    ];
    config.oidc.clients = vec![ClientConfig {
        client_id: DEMO_CLIENT_ID.into(),
        name: Some("Passerelle demo application".into()),
        client_secret: Some(Secret::new(crate::web::random_token(32))),
        redirect_uris: vec![format!("{}/demo/oidc/callback", config.server.public_url)],
        post_logout_redirect_uris: vec![format!("{}/", config.server.public_url)],
        ..Default::default()
    }];
    // The demo SAML SP served by this process; it sends unsigned requests.
    config.saml.service_providers = vec![crate::config::ServiceProviderConfig {
        name: Some("Passerelle demo SAML application".into()),
        entity_id: Some(sp::entity_id(&config.server.public_url)),
        acs_url: Some(sp::acs_url(&config.server.public_url)),
        require_signed_requests: Some(false),
        ..Default::default()
    }];
    Ok(config)
}

/// The banner's line when this build has no Lucca simulator.
const NO_SIMULATOR: &str = "\nNo Lucca simulator: this build leaves out the `simulator` cargo feature, so just-in-time\nprovisioning is off (sign-ins work; no Lucca account is looked up or created).\n";

pub const DEMO_CLIENT_ID: &str = "demo";

/// The demo client's secret, generated by [`demo_config`] for this run.
pub fn demo_client_secret(config: &crate::config::Config) -> Option<&str> {
    config
        .oidc
        .clients
        .iter()
        .find(|c| c.client_id == DEMO_CLIENT_ID)
        .and_then(|c| c.client_secret.as_ref())
        .map(|s| s.expose())
}

/// What `passerelle demo` prints once listening.
pub fn banner(config: &crate::config::Config) -> String {
    let base = config.server.base_url();
    let mut out = format!(
        "\nPasserelle demo is running.\n\n  Start page      {base}/\n  OIDC discovery  {base}/.well-known/openid-configuration\n  SAML metadata   {base}/saml/metadata\n  Admin token     {token}  (new each run)\n\nDemo users:\n",
        token = config.admin.token.as_ref().map(|t| t.expose()).unwrap_or("(none)")
    );
    for u in &config.directory.users {
        out.push_str(&format!(
            "  {:<20} password {:<12} groups {}\n",
            u.email,
            u.password.as_ref().map(|p| p.expose()).unwrap_or(""),
            u.groups.join(", ")
        ));
    }
    match &config.lucca.base_url {
        Some(lucca) => out.push_str(&format!(
            "\nLucca simulator {lucca}  (its users: {base}/demo/lucca)\n  Just-in-time provisioning is on: signing in as carol@acme.test creates her Lucca account.\n"
        )),
        None => out.push_str(NO_SIMULATOR),
    }
    out.push_str(&format!(
        "\nData and keys: {}\nPress Ctrl-C to stop.\n",
        config
            .server
            .data_dir
            .parent()
            .unwrap_or(&config.server.data_dir)
            .display()
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Severity;

    #[test]
    fn the_banner_says_whether_lucca_is_simulated() {
        let mut config = crate::config::Config::default();
        assert!(banner(&config).contains(NO_SIMULATOR));
        config.lucca.base_url = Some("http://127.0.0.1:9".into());
        let text = banner(&config);
        assert!(text.contains("Lucca simulator http://127.0.0.1:9  (its users: "));
        assert!(!text.contains(NO_SIMULATOR));
    }

    #[cfg(feature = "simulator")]
    #[test]
    fn the_demo_provisions_into_its_own_lucca_simulator() {
        let config = demo_config(Some("127.0.0.1:0".into())).unwrap();
        assert_eq!(config.lucca.jit, crate::config::JitMode::CreateAndUpdate);
        let lucca = config.lucca.base_url.as_deref().unwrap();
        assert_eq!(lucca, demo_lucca().unwrap().base_url());
    }

    #[cfg(not(feature = "simulator"))]
    #[test]
    fn without_the_simulator_the_demo_runs_with_jit_off() {
        let config = demo_config(Some("127.0.0.1:0".into())).unwrap();
        assert_eq!(config.lucca.jit, crate::config::JitMode::Off);
        assert_eq!(config.lucca.base_url, None);
        assert!(banner(&config).contains(NO_SIMULATOR));
    }

    #[test]
    fn the_demo_generates_its_own_secrets_and_they_pass_the_checks() {
        let first = demo_config(Some("127.0.0.1:0".into())).unwrap();
        let second = demo_config(Some("127.0.0.1:0".into())).unwrap();
        let errors: Vec<_> = first
            .validate()
            .into_iter()
            .filter(|p| p.severity == Severity::Error)
            .collect();
        assert!(errors.is_empty(), "{errors:?}");
        let token = |c: &crate::config::Config| c.admin.token.clone().unwrap();
        assert_ne!(token(&first), token(&second));
        assert_ne!(demo_client_secret(&first), demo_client_secret(&second));
        assert!(banner(&first).contains(token(&first).expose()));
    }
}
