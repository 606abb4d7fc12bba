//! An in-process stand-in for a Lucca tenant's legacy v3 API, faithful to what lucca-api.md
//! documents: the `Authorization: lucca application=KEY` check, `fields=` projection (brackets
//! and dot paths, `collection.count`), `paging`, the `mail`/`login`/`id`/`formerEmployees`
//! filters, user creation with validation, partial updates, departments (today's v4 route; the
//! v3 one answers 404 as it has since September 2026), legal units (active and archived), and
//! a per-minute
//! sliding-window rate limit answered with 429 + Retry-After.
//!
//! Tests and `passerelle demo` start it with [`spawn`]; the handle inspects and changes its
//! state, records every request with its arrival time, and injects latency and failures.
//! Where Lucca's behaviour is not documented the simulator is lenient (unknown fields in a
//! projection are left out, unknown query parameters ignored).

mod query;
mod structure;
mod users;
mod webhooks;

pub use webhooks::webhook_signature;

use std::collections::{BTreeMap, VecDeque};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use query::query_pairs;
use structure::{list_departments_v4, list_legal_units};
use users::{canonicalize, create_user, get_user, list_departments, list_users, update_user};

/// The key the simulator accepts unless told otherwise.
pub const DEFAULT_SIMULATOR_API_KEY: &str = "simulator-api-key";

const SEED_JSON: &str = include_str!("../../../examples/lucca-seed.json");

#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot read the simulator seed {path}: {source}")]
    ReadSeed {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid simulator seed: {0}")]
    Seed(String),
}

/// `{id, name}` of a department, legal entity or role in the seed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct NamedRef {
    pub id: i64,
    pub name: String,
}

/// The simulator's initial data, in the shape of `examples/lucca-seed.json`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seed {
    #[serde(default)]
    pub legal_entities: Vec<NamedRef>,
    /// Legal units closed in Lucca: listed only with `isArchived=true`, refused to new users.
    #[serde(default)]
    pub archived_legal_entities: Vec<NamedRef>,
    #[serde(default)]
    pub roles: Vec<NamedRef>,
    #[serde(default)]
    pub departments: Vec<NamedRef>,
    #[serde(default)]
    pub users: Vec<Map<String, Value>>,
}

impl Seed {
    /// `examples/lucca-seed.json`, compiled in.
    pub fn builtin() -> Result<Seed, SimulatorError> {
        Seed::from_json(SEED_JSON)
    }

    pub fn from_json(text: &str) -> Result<Seed, SimulatorError> {
        serde_json::from_str(text).map_err(|e| SimulatorError::Seed(e.to_string()))
    }

    pub fn from_file(path: &Path) -> Result<Seed, SimulatorError> {
        let text = std::fs::read_to_string(path).map_err(|source| SimulatorError::ReadSeed {
            path: path.display().to_string(),
            source,
        })?;
        Seed::from_json(&text)
    }
}

#[derive(Debug, Clone)]
pub struct SimulatorConfig {
    /// `127.0.0.1:0` (any free port) by default.
    pub listen: SocketAddr,
    pub api_key: String,
    /// Lucca's 50 by default; `None` disables the limit.
    pub requests_per_minute: Option<u32>,
    /// The rate-limit window (60 s like Lucca; shorter in tests).
    pub rate_window: Duration,
    pub latency: Duration,
    /// The day contracts are judged against; `None` is the local date.
    pub today: Option<NaiveDate>,
    /// `None`: the built-in seed.
    pub seed: Option<Seed>,
}

impl Default for SimulatorConfig {
    fn default() -> Self {
        SimulatorConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            api_key: DEFAULT_SIMULATOR_API_KEY.into(),
            requests_per_minute: Some(50),
            rate_window: Duration::from_secs(60),
            latency: Duration::ZERO,
            today: None,
            seed: None,
        }
    }
}

/// One request as it reached the simulator.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// Arrival time, before any injected latency.
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    /// The JSON body (a string when it was not JSON), if any.
    pub body: Option<Value>,
    /// The answer's status; `None` while the request is being handled.
    pub status: Option<u16>,
    /// The answer's Retry-After (seconds), if it had one.
    pub retry_after: Option<u64>,
    seq: u64,
}

impl RecordedRequest {
    /// The decoded value of query parameter `name` (case-insensitive), if present.
    pub fn query_param(&self, name: &str) -> Option<String> {
        query_pairs(self.query.as_deref())
            .into_iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

type Shared = Arc<Mutex<Sim>>;

struct Sim {
    base_url: String,
    api_key: String,
    users: BTreeMap<i64, Map<String, Value>>,
    departments: Vec<NamedRef>,
    legal_entities: Vec<NamedRef>,
    archived_legal_entities: Vec<NamedRef>,
    roles: Vec<NamedRef>,
    /// Answered on the legal-units route instead of the list (404: a tenant without it; 403:
    /// a key whose role may not read it).
    legal_units_answer: Option<u16>,
    /// Today's Lucca answers 404 on `/api/v3/departments`; tests of the fallback turn it on.
    v3_departments: bool,
    v4_departments: bool,
    rate_limit: Option<u32>,
    rate_window: Duration,
    counted: VecDeque<Instant>,
    latency: Duration,
    fail_next: u32,
    fail_status: u16,
    injected_retry_after: Option<String>,
    today: Option<NaiveDate>,
    log: Vec<RecordedRequest>,
    next_seq: u64,
}

/// A running simulator. Dropping it stops the server.
pub struct SimulatorHandle {
    addr: SocketAddr,
    base_url: String,
    api_key: String,
    state: Shared,
    shutdown: Option<oneshot::Sender<()>>,
    task: JoinHandle<()>,
}

/// Start a simulator and return once it accepts connections.
pub async fn spawn(config: SimulatorConfig) -> Result<SimulatorHandle, SimulatorError> {
    let seed = match config.seed {
        Some(seed) => seed,
        None => Seed::builtin()?,
    };
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|source| SimulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let addr = listener
        .local_addr()
        .map_err(|source| SimulatorError::Bind {
            addr: config.listen,
            source,
        })?;
    let base_url = format!("http://{addr}");
    let mut users = BTreeMap::new();
    for (i, raw) in seed.users.into_iter().enumerate() {
        let user = canonicalize(raw);
        let id = user
            .get("id")
            .and_then(Value::as_i64)
            .ok_or_else(|| SimulatorError::Seed(format!("users[{i}] has no integer `id`")))?;
        if users.insert(id, user).is_some() {
            return Err(SimulatorError::Seed(format!(
                "users[{i}]: id {id} is used twice"
            )));
        }
    }
    let state = Arc::new(Mutex::new(Sim {
        base_url: base_url.clone(),
        api_key: config.api_key.clone(),
        users,
        departments: seed.departments,
        legal_entities: seed.legal_entities,
        archived_legal_entities: seed.archived_legal_entities,
        roles: seed.roles,
        legal_units_answer: None,
        v3_departments: false,
        v4_departments: true,
        rate_limit: config.requests_per_minute,
        rate_window: config.rate_window,
        counted: VecDeque::new(),
        latency: config.latency,
        fail_next: 0,
        fail_status: 500,
        injected_retry_after: Some("1".into()),
        today: config.today,
        log: Vec::new(),
        next_seq: 0,
    }));
    let app = Router::new()
        .route("/api/v3/users", get(list_users).post(create_user))
        .route("/api/v3/users/{id}", get(get_user).put(update_user))
        .route("/api/v3/departments", get(list_departments))
        .route("/api/v3/roles", get(users::list_roles))
        .route(
            "/organization/structure/api/departments",
            get(list_departments_v4),
        )
        .route(
            "/organization/structure/api/legal-units",
            get(list_legal_units),
        )
        .fallback(|| async { lucca_error(StatusCode::NOT_FOUND, "No route matches this URL") })
        .layer(middleware::from_fn_with_state(state.clone(), gatekeeper))
        .with_state(state.clone());
    let (shutdown, stop) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let stopped = async {
            let _ = stop.await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stopped)
            .await
        {
            tracing::warn!(error = %e, "the Lucca simulator stopped");
        }
    });
    Ok(SimulatorHandle {
        addr,
        base_url,
        api_key: config.api_key,
        state,
        shutdown: Some(shutdown),
        task,
    })
}

impl SimulatorHandle {
    /// `http://127.0.0.1:PORT`, the value for `lucca.base_url`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// Every stored user, as stored (without the computed `name`, `department`… fields).
    pub fn users(&self) -> Vec<Value> {
        self.lock()
            .users
            .values()
            .map(|u| Value::Object(u.clone()))
            .collect()
    }

    pub fn user(&self, id: i64) -> Option<Value> {
        self.lock().users.get(&id).cloned().map(Value::Object)
    }

    /// Insert or replace a user (it must carry an integer `id`).
    pub fn put_user(&self, user: Value) -> Option<i64> {
        let Value::Object(map) = user else {
            return None;
        };
        let map = canonicalize(map);
        let id = map.get("id").and_then(Value::as_i64)?;
        self.lock().users.insert(id, map);
        Some(id)
    }

    /// Change some fields of a user as an HR person would in Lucca: `modifiedAt` is stamped
    /// now. `false` when there is no such user or `changes` is not an object.
    pub fn modify_user(&self, id: i64, changes: Value) -> bool {
        let Value::Object(changes) = changes else {
            return false;
        };
        let mut sim = self.lock();
        let Some(user) = sim.users.get_mut(&id) else {
            return false;
        };
        user.extend(canonicalize(changes));
        user.insert("modifiedAt".into(), users::now_stamp());
        true
    }

    /// Delete a user (reads by id answer 404 from now on).
    pub fn remove_user(&self, id: i64) -> Option<Value> {
        self.lock().users.remove(&id).map(Value::Object)
    }

    /// The day contracts are judged against (`None`: the local date).
    pub fn set_today(&self, today: Option<NaiveDate>) {
        self.lock().today = today;
    }

    pub fn departments(&self) -> Vec<NamedRef> {
        self.lock().departments.clone()
    }

    /// Serve the v3 departments route again (as Lucca did before September 2026), and hide
    /// the v4 one (`v4 = false`) to play a tenant that lacks it.
    pub fn set_departments_routes(&self, v3: bool, v4: bool) {
        let mut sim = self.lock();
        sim.v3_departments = v3;
        sim.v4_departments = v4;
    }

    /// Answer `status` on the legal-units route instead of the list (404 plays a tenant that
    /// lacks it, 403 a key whose role may not read it); `None` serves it again.
    pub fn set_legal_units_answer(&self, status: Option<u16>) {
        self.lock().legal_units_answer = status;
    }

    /// Every request received so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().log.clone()
    }

    pub fn request_count(&self) -> usize {
        self.lock().log.len()
    }

    pub fn clear_requests(&self) {
        self.lock().log.clear();
    }

    /// Delay every answer by this much (a slow tenant; client timeouts).
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Answer the next `n` requests with `status` instead of handling them. A 429 carries the
    /// Retry-After set by [`set_injected_retry_after`](Self::set_injected_retry_after).
    pub fn fail_next(&self, n: u32, status: u16) {
        let mut sim = self.lock();
        sim.fail_next = n;
        sim.fail_status = status;
    }

    /// The raw Retry-After of injected 429s (`"1"` by default; an HTTP-date works too);
    /// `None` sends none.
    pub fn set_injected_retry_after(&self, value: Option<&str>) {
        self.lock().injected_retry_after = value.map(str::to_owned);
    }

    /// Requests per window before 429s; `None` disables the limit.
    pub fn set_rate_limit(&self, requests_per_window: Option<u32>) {
        let mut sim = self.lock();
        sim.rate_limit = requests_per_window;
        sim.counted.clear();
    }

    pub fn set_rate_window(&self, window: Duration) {
        self.lock().rate_window = window;
    }

    /// Stop accepting requests; in-flight ones are dropped.
    pub fn stop(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        self.task.abort();
    }

    fn lock(&self) -> MutexGuard<'_, Sim> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for SimulatorHandle {
    fn drop(&mut self) {
        self.stop_now();
    }
}

impl std::fmt::Debug for SimulatorHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimulatorHandle")
            .field("base_url", &self.base_url)
            .finish()
    }
}

fn lock(sim: &Shared) -> MutexGuard<'_, Sim> {
    sim.lock().unwrap_or_else(|e| e.into_inner())
}

/// Recording, latency, injected faults, the rate limit and authentication, in that order,
/// for every request.
async fn gatekeeper(State(sim): State<Shared>, request: Request, next: Next) -> Response {
    let at = Instant::now();
    let (parts, body) = request.into_parts();
    let bytes = axum::body::to_bytes(body, 16 << 20)
        .await
        .unwrap_or_default();
    let (seq, latency) = {
        let mut s = lock(&sim);
        let seq = s.next_seq;
        s.next_seq += 1;
        let body = (!bytes.is_empty()).then(|| {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        });
        s.log.push(RecordedRequest {
            at,
            method: parts.method.to_string(),
            path: parts.uri.path().to_string(),
            query: parts.uri.query().map(str::to_owned),
            body,
            status: None,
            retry_after: None,
            seq,
        });
        (seq, s.latency)
    };
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let refusal = {
        let mut s = lock(&sim);
        s.refusal(&parts.headers)
    };
    let response = match refusal {
        Some(response) => response,
        None => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
    };
    let mut s = lock(&sim);
    if let Some(entry) = s.log.iter_mut().rev().find(|r| r.seq == seq) {
        entry.status = Some(response.status().as_u16());
        entry.retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok());
    }
    response
}

impl Sim {
    /// The answer to give instead of handling the request, if any.
    fn refusal(&mut self, headers: &HeaderMap) -> Option<Response> {
        if self.fail_next > 0 {
            self.fail_next -= 1;
            let status =
                StatusCode::from_u16(self.fail_status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let mut response = lucca_error(status, "Injected failure");
            if status == StatusCode::TOO_MANY_REQUESTS {
                if let Some(value) = self
                    .injected_retry_after
                    .as_deref()
                    .and_then(|v| v.parse().ok())
                {
                    response.headers_mut().insert(header::RETRY_AFTER, value);
                }
            }
            return Some(response);
        }
        if let Some(limit) = self.rate_limit {
            let now = Instant::now();
            let window = self.rate_window;
            while self.counted.front().is_some_and(|t| *t + window <= now) {
                self.counted.pop_front();
            }
            if self.counted.len() >= limit as usize {
                let index = self.counted.len() - limit as usize;
                let wait = (self.counted[index] + window) - now;
                let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                let mut response = lucca_error(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!(
                        "Rate limit of {limit} requests per {}s exceeded",
                        window.as_secs()
                    ),
                );
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, seconds.max(1).into());
                return Some(response);
            }
            self.counted.push_back(now);
        }
        if !authorized(headers, &self.api_key) {
            return Some(lucca_error(
                StatusCode::UNAUTHORIZED,
                "Authentication required: send 'Authorization: lucca application={API key}'",
            ));
        }
        None
    }

    fn today(&self) -> NaiveDate {
        self.today
            .unwrap_or_else(|| chrono::Local::now().date_naive())
    }

    fn named(list: &[NamedRef], id: Option<i64>) -> Option<&NamedRef> {
        id.and_then(|id| list.iter().find(|r| r.id == id))
    }
}

fn authorized(headers: &HeaderMap, key: &str) -> bool {
    let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    let mut parts = value.trim().splitn(2, char::is_whitespace);
    let scheme = parts.next().unwrap_or_default();
    let credentials = parts.next().unwrap_or_default().trim();
    let given = credentials
        .get(..12)
        .filter(|p| p.eq_ignore_ascii_case("application="))
        .map(|_| &credentials[12..]);
    scheme.eq_ignore_ascii_case("lucca") && given == Some(key) && !key.is_empty()
}

/// Lucca's legacy error bodies are undocumented; this shape is the one seen in client mocks.
fn lucca_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        Json(json!({"Status": status.as_u16(), "Message": message})),
    )
        .into_response()
}

/// A request the simulator refuses, answered in Lucca's error shape.
struct Refusal(StatusCode, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        lucca_error(self.0, &self.1)
    }
}

fn bad_request(message: impl Into<String>) -> Refusal {
    Refusal(StatusCode::BAD_REQUEST, message.into())
}

fn user_not_found(id: i64) -> Refusal {
    Refusal(StatusCode::NOT_FOUND, format!("User {id} not found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_builtin_seed_loads() {
        let seed = Seed::builtin().unwrap();
        assert_eq!(seed.users.len(), 8);
        let names: Vec<&str> = seed.departments.iter().map(|d| d.name.as_str()).collect();
        assert_eq!(names, ["Engineering", "Human Resources", "Sales"]);
    }

    #[test]
    fn the_authorization_scheme_is_case_insensitive() {
        let mut headers = HeaderMap::new();
        for (value, ok) in [
            ("lucca application=k", true),
            ("Lucca application=k", true),
            ("LUCCA Application=k", true),
            ("lucca application=other", false),
            ("Bearer k", false),
            ("lucca k", false),
        ] {
            headers.insert(header::AUTHORIZATION, value.parse().unwrap());
            assert_eq!(authorized(&headers, "k"), ok, "{value}");
        }
        assert!(!authorized(&HeaderMap::new(), "k"));
    }
}
