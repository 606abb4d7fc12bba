//! The Lucca legacy v3 API client: user lookup, paging, creation, partial update, the
//! department and legal-unit lists, every request going through the tenant's [`RateLimiter`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;
use url::Url;

use super::error::{error_message_from_body, LuccaError};
use super::limiter::{BudgetScope, Priority, RateLimiter};
use super::model::{
    Department, ItemEnvelope, LegalUnit, ListEnvelope, LuccaUser, NewUser, UserChanges, UserPage,
    DEFAULT_USER_FIELDS,
};
use crate::config::{LuccaConfig, Secret};

/// Lucca's `paging` limit cap.
pub const MAX_PAGE_SIZE: u32 = 1000;
/// How long a person may wait for a request slot by default before being told to retry.
pub const DEFAULT_SIGN_IN_MAX_WAIT: Duration = Duration::from_secs(5);
/// When a 429 carries no usable Retry-After: half of Lucca's 60 s window.
const DEFAULT_RETRY_AFTER: Duration = Duration::from_secs(30);
/// 429s retried before giving up (each after its Retry-After).
const MAX_RATE_LIMIT_RETRIES: u32 = 3;
/// Departments rarely change; re-reading them at every creation would waste the budget.
const DEPARTMENTS_TTL: Duration = Duration::from_secs(15 * 60);
/// Stops `list_all_users` on a server that never reports the end (10 million users).
const MAX_PAGES: u32 = 10_000;
/// Today's departments route (v4 envelope, `page`/`limit` paging).
const V4_DEPARTMENTS_PATH: &str = "organization/structure/api/departments";
const V4_LEGAL_UNITS_PATH: &str = "organization/structure/api/legal-units";
/// 5,000 legal units: far more than any tenant has.
const MAX_LEGAL_UNIT_PAGES: u32 = 50;
/// v4 routes cap `limit` at 100.
const V4_PAGE_SIZE: u32 = 100;
const V4_FIRST_PAGE: &str = "1";
/// A cursor longer than this is not one Lucca would send.
const MAX_CURSOR_LEN: usize = 2048;

/// A client for one Lucca tenant. Cheap to clone; clones share the HTTP connection pool, the
/// rate limiter and the department cache.
#[derive(Clone, Debug)]
pub struct LuccaClient {
    inner: Arc<Inner>,
    priority: Priority,
    max_wait: Option<Duration>,
    /// A sign-in's place in the limiter's line and its one deadline for every call it makes
    /// ([`LuccaClient::for_sign_in`]).
    sign_in: Option<SignInPlace>,
}

#[derive(Debug, Clone, Copy)]
struct SignInPlace {
    began: Instant,
    deadline: Instant,
}

#[derive(Debug)]
struct Inner {
    http: reqwest::Client,
    /// Always ends with `/`, so relative joins keep any path prefix.
    base: Url,
    limiter: Arc<RateLimiter>,
    request_timeout: Duration,
    departments: std::sync::Mutex<Option<(Instant, Arc<Vec<Department>>)>>,
    /// Held by batch callers while they refresh `departments`, so they share one fetch.
    departments_refresh: tokio::sync::Mutex<()>,
    /// Set once the v4 departments route answered 404 on this tenant.
    departments_v3: AtomicBool,
    /// How Lucca last answered any request of this client (a refused key and a 5xx count as
    /// errors): the console's status reads it instead of spending the budget on a ping per view.
    last_answer: std::sync::Mutex<Option<(Instant, Result<(), String>)>>,
}

struct Call<'a> {
    operation: &'static str,
    method: Method,
    path: String,
    query: Vec<(&'a str, String)>,
    body: Option<Value>,
}

impl LuccaClient {
    /// A client drawing on the process-wide limiter of the tenant at `base_url`.
    pub fn new(
        base_url: &str,
        api_key: Secret,
        requests_per_minute: u32,
        request_timeout: Duration,
    ) -> Result<Self, LuccaError> {
        let base = parse_base_url(base_url)?;
        let limiter = RateLimiter::for_tenant(&base, requests_per_minute);
        Self::build(base, api_key, limiter, request_timeout)
    }

    /// A client with its own limiter (tests use short windows; several clients may share it).
    pub fn with_limiter(
        base_url: &str,
        api_key: Secret,
        limiter: Arc<RateLimiter>,
        request_timeout: Duration,
    ) -> Result<Self, LuccaError> {
        Self::build(parse_base_url(base_url)?, api_key, limiter, request_timeout)
    }

    /// The client `[lucca]` describes, or `None` when no `base_url` is set (Lucca calls off),
    /// counting its budget in this process.
    pub fn from_config(config: &LuccaConfig) -> Result<Option<Self>, LuccaError> {
        Self::from_config_in(config, &BudgetScope::InProcess)
    }

    /// [`from_config`](Self::from_config), the budget counted where `scope` says (the
    /// composition root shares it through the database when nodes share one).
    pub fn from_config_in(
        config: &LuccaConfig,
        scope: &BudgetScope,
    ) -> Result<Option<Self>, LuccaError> {
        let Some(base_url) = config.base_url.as_deref() else {
            return Ok(None);
        };
        let key = config
            .api_key
            .clone()
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                LuccaError::Config("lucca.api_key: is required when lucca.base_url is set".into())
            })?;
        let base = parse_base_url(base_url)?;
        let limiter = RateLimiter::for_tenant_in(
            &base,
            config.requests_per_minute,
            config.rate_window,
            scope,
        );
        Self::build(base, key, limiter, config.request_timeout).map(Some)
    }

    fn build(
        base: Url,
        api_key: Secret,
        limiter: Arc<RateLimiter>,
        request_timeout: Duration,
    ) -> Result<Self, LuccaError> {
        let mut auth = HeaderValue::from_str(&format!("lucca application={}", api_key.expose()))
            .map_err(|_| {
                LuccaError::Config(
                    "lucca.api_key: contains characters not allowed in an HTTP header".into(),
                )
            })?;
        auth.set_sensitive(true);
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, auth);
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .timeout(request_timeout)
            .connect_timeout(request_timeout)
            // The API answers where it is asked; a redirect means a wrong base_url, and the
            // request carries the API key.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("passerelle/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| LuccaError::Config(format!("cannot build the HTTP client: {e}")))?;
        Ok(LuccaClient {
            inner: Arc::new(Inner {
                http,
                base,
                limiter,
                request_timeout,
                departments: std::sync::Mutex::new(None),
                departments_refresh: tokio::sync::Mutex::new(()),
                departments_v3: AtomicBool::new(false),
                last_answer: std::sync::Mutex::new(None),
            }),
            priority: Priority::Batch,
            max_wait: None,
            sign_in: None,
        })
    }

    /// The same client, queueing its requests at `priority`. `SignIn` gets
    /// [`DEFAULT_SIGN_IN_MAX_WAIT`] unless [`with_max_wait`](Self::with_max_wait) says otherwise.
    pub fn with_priority(&self, priority: Priority) -> Self {
        LuccaClient {
            inner: self.inner.clone(),
            sign_in: None,
            priority,
            max_wait: match priority {
                Priority::SignIn => self.max_wait.or(Some(DEFAULT_SIGN_IN_MAX_WAIT)),
                Priority::Batch => self.max_wait,
            },
        }
    }

    /// Fail with `RateLimited` rather than wait longer than this for the rate limit (the
    /// budget for one whole call, 429 retries included). `None` waits as long as needed.
    pub fn with_max_wait(&self, max_wait: Option<Duration>) -> Self {
        LuccaClient {
            max_wait,
            ..self.clone()
        }
    }

    /// The client for one person's sign-in that began at `began`: every call it makes keeps
    /// that place in the limiter's line (so their account creation goes before the lookups
    /// of people who came after), and all of them together end by `began + wait`.
    pub fn for_sign_in(&self, began: Instant, wait: Duration) -> Self {
        LuccaClient {
            inner: self.inner.clone(),
            priority: Priority::SignIn,
            max_wait: Some(wait),
            sign_in: Some(SignInPlace {
                began,
                deadline: began + wait,
            }),
        }
    }

    pub fn base_url(&self) -> &Url {
        &self.inner.base
    }

    pub fn limiter(&self) -> &Arc<RateLimiter> {
        &self.inner.limiter
    }

    /// Accounts whose professional email is `mail`, former and future employees included.
    /// Several can match (Lucca refuses SSO then: "Several users have been found").
    pub async fn find_by_mail(&self, mail: &str) -> Result<Vec<LuccaUser>, LuccaError> {
        self.find_by("mail", mail, |u| u.mail.as_deref()).await
    }

    /// Accounts whose login is `login`, former and future employees included.
    pub async fn find_by_login(&self, login: &str) -> Result<Vec<LuccaUser>, LuccaError> {
        self.find_by("login", login, |u| u.login.as_deref()).await
    }

    async fn find_by(
        &self,
        filter: &'static str,
        value: &str,
        field: fn(&LuccaUser) -> Option<&str>,
    ) -> Result<Vec<LuccaUser>, LuccaError> {
        let value = value.trim();
        if value.is_empty() {
            return Ok(Vec::new());
        }
        let page = self
            .user_page(
                "look up users",
                vec![
                    (filter, value.to_string()),
                    ("formerEmployees", "true".into()),
                    ("fields", DEFAULT_USER_FIELDS.into()),
                    ("paging", format!("0,{MAX_PAGE_SIZE}")),
                ],
            )
            .await?;
        // Re-check equality here: a value starting with `like,` would otherwise turn Lucca's
        // strict filter into a LIKE search and match other people.
        Ok(page
            .items
            .into_iter()
            .filter(|u| field(u).is_some_and(|v| v.trim().eq_ignore_ascii_case(value)))
            .collect())
    }

    /// One user by id (any contract state).
    pub async fn get_user(&self, id: i64) -> Result<LuccaUser, LuccaError> {
        let envelope: ItemEnvelope<LuccaUser> = self
            .call(Call {
                operation: "read a user",
                method: Method::GET,
                path: format!("api/v3/users/{id}"),
                query: vec![("fields", DEFAULT_USER_FIELDS.into())],
                body: None,
            })
            .await?;
        Ok(envelope.data)
    }

    /// One page of users with a custom `fields=` projection (`collection.count` is added).
    pub async fn list_users_with_fields(
        &self,
        offset: u32,
        limit: u32,
        former_employees: bool,
        fields: &str,
    ) -> Result<UserPage, LuccaError> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let mut query = vec![
            ("fields", format!("{fields},collection.count")),
            ("paging", format!("{offset},{limit}")),
            ("orderBy", "id,asc".into()),
        ];
        if former_employees {
            query.push(("formerEmployees", "true".into()));
        }
        self.user_page("list users", query).await
    }

    /// One page of users, former and future employees included, in id order, narrowed by
    /// v3 filters (`modifiedAt=since,…`, `dtContractEnd=between,…`): the directory sync's read.
    pub async fn list_users_where(
        &self,
        offset: u32,
        limit: u32,
        filters: &[(&'static str, String)],
        fields: &str,
    ) -> Result<UserPage, LuccaError> {
        let limit = limit.clamp(1, MAX_PAGE_SIZE);
        let mut query = vec![
            ("formerEmployees", "true".to_string()),
            ("fields", fields.to_string()),
            ("paging", format!("{offset},{limit}")),
            ("orderBy", "id,asc".into()),
        ];
        query.extend(filters.iter().cloned());
        self.user_page("list users", query).await
    }

    /// Every user, page after page, with a custom `fields=` projection.
    pub async fn list_all_users_with_fields(
        &self,
        former_employees: bool,
        fields: &str,
    ) -> Result<Vec<LuccaUser>, LuccaError> {
        let mut users = Vec::new();
        let mut offset = 0u32;
        for _ in 0..MAX_PAGES {
            let page = self
                .list_users_with_fields(offset, MAX_PAGE_SIZE, former_employees, fields)
                .await?;
            let received = page.items.len() as u32;
            users.extend(page.items);
            offset += received;
            let done =
                received < MAX_PAGE_SIZE || page.count.is_some_and(|c| u64::from(offset) >= c);
            if done {
                break;
            }
        }
        Ok(users)
    }

    /// `POST /api/v3/users?contract=true`: the user and its work contract (without one the
    /// person could not sign in). Lucca's 400 message is passed on in `Validation`.
    pub async fn create_user(&self, user: &NewUser) -> Result<LuccaUser, LuccaError> {
        let body = serde_json::to_value(user).map_err(|e| LuccaError::Decode {
            operation: "create a user",
            cause: e.to_string(),
        })?;
        let envelope: ItemEnvelope<LuccaUser> = self
            .call(Call {
                operation: "create users",
                method: Method::POST,
                path: "api/v3/users".into(),
                query: vec![
                    ("contract", "true".into()),
                    ("fields", DEFAULT_USER_FIELDS.into()),
                ],
                body: Some(body),
            })
            .await?;
        Ok(envelope.data)
    }

    /// `PUT /api/v3/users/{id}` with only the fields set in `changes` (a flat body). Returns
    /// `None` without calling Lucca when there is nothing to change; pass the changes through
    /// [`UserChanges::without_unchanged`] first to drop what Lucca already holds.
    pub async fn update_user(
        &self,
        id: i64,
        changes: &UserChanges,
    ) -> Result<Option<LuccaUser>, LuccaError> {
        if changes.is_empty() {
            return Ok(None);
        }
        let body = serde_json::to_value(changes).map_err(|e| LuccaError::Decode {
            operation: "update a user",
            cause: e.to_string(),
        })?;
        let envelope: ItemEnvelope<LuccaUser> = self
            .call(Call {
                operation: "modify users",
                method: Method::PUT,
                path: format!("api/v3/users/{id}"),
                query: vec![("fields", DEFAULT_USER_FIELDS.into())],
                body: Some(body),
            })
            .await?;
        Ok(Some(envelope.data))
    }

    /// All departments (id and name), cached for 15 minutes: from the v4 route, or from the
    /// v3 one (sunset by Lucca in September 2026) when v4 answers 404.
    pub async fn departments(&self) -> Result<Arc<Vec<Department>>, LuccaError> {
        // Batch callers queue behind a refresh in progress and reuse its result. A caller
        // with a deadline (a person signing in) never waits behind someone else's refresh,
        // which may be queued at batch priority: it fetches on its own if one is running.
        let _refreshing = match self.max_wait {
            Some(_) => self.inner.departments_refresh.try_lock().ok(),
            None => Some(self.inner.departments_refresh.lock().await),
        };
        if let Some(list) = self.cached_departments() {
            return Ok(list);
        }
        self.fetch_departments().await
    }

    /// All departments read now, whatever the cache holds (which they then replace): for a
    /// migration, which must see a department created in Lucca a minute ago.
    pub async fn reload_departments(&self) -> Result<Arc<Vec<Department>>, LuccaError> {
        let _refreshing = self.inner.departments_refresh.lock().await;
        self.fetch_departments().await
    }

    async fn fetch_departments(&self) -> Result<Arc<Vec<Department>>, LuccaError> {
        let departments = if self.inner.departments_v3.load(Ordering::Relaxed) {
            self.fetch_departments_v3().await?
        } else {
            match self.fetch_departments_v4().await {
                Ok(list) => list,
                // A tenant that does not serve the v4 route yet: v3 until the process restarts
                // (v4 is asked first again then), without paying a 404 at every refresh.
                Err(LuccaError::NotFound { .. }) => {
                    tracing::info!("Lucca has no v4 departments route here; reading /api/v3/departments instead");
                    self.inner.departments_v3.store(true, Ordering::Relaxed);
                    self.fetch_departments_v3().await?
                }
                Err(e) => return Err(e),
            }
        };
        let list = Arc::new(departments);
        *self.departments_cache() = Some((Instant::now(), list.clone()));
        Ok(list)
    }

    /// `GET /organization/structure/api/departments` (lucca-api.md §1.7).
    async fn fetch_departments_v4(&self) -> Result<Vec<Department>, LuccaError> {
        self.v4_list(
            "list departments",
            V4_DEPARTMENTS_PATH,
            Vec::new(),
            MAX_PAGES,
            "department",
        )
        .await
    }

    /// Lucca's active legal units (id and name), read now: `passerelle check` holds
    /// `lucca.defaults.legal_entity_id` against them.
    pub async fn legal_units(&self) -> Result<Vec<LegalUnit>, LuccaError> {
        self.fetch_legal_units(false).await
    }

    /// The archived legal units only. Separate from [`legal_units`](Self::legal_units)
    /// because only the `isArchived` parameter is documented to tell them apart (no field of
    /// an item is), so a caller asks for these only when an id is not among the active ones.
    pub async fn archived_legal_units(&self) -> Result<Vec<LegalUnit>, LuccaError> {
        self.fetch_legal_units(true).await
    }

    /// `GET /organization/structure/api/legal-units` (lucca-api.md §1.7), `fields.root` asking
    /// for `next` as documented. A tenant has a handful of legal units: more than
    /// [`MAX_LEGAL_UNIT_PAGES`] pages means the paging is broken, not a big company.
    async fn fetch_legal_units(&self, archived: bool) -> Result<Vec<LegalUnit>, LuccaError> {
        self.v4_list(
            "list legal units",
            V4_LEGAL_UNITS_PATH,
            vec![
                ("isArchived", archived.to_string()),
                ("fields.root", "prev,next,count".into()),
            ],
            MAX_LEGAL_UNIT_PAGES,
            "legal unit",
        )
        .await
    }

    /// Every item of a v4 list route: `{"items", "next"}` pages of at most 100, `next` being a
    /// URL, a cursor or a page number, `null` at the end. Still more after `max_pages` is an
    /// error: a partial list would make ids look unknown.
    async fn v4_list<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        path: &str,
        query: Vec<(&'static str, String)>,
        max_pages: u32,
        what: &str,
    ) -> Result<Vec<T>, LuccaError> {
        let mut items = Vec::new();
        let mut page = V4_FIRST_PAGE.to_string();
        for _ in 0..max_pages {
            let mut page_query = vec![("page", page.clone()), ("limit", V4_PAGE_SIZE.to_string())];
            page_query.extend(query.iter().cloned());
            let envelope: V4Page = self
                .call(Call {
                    operation,
                    method: Method::GET,
                    path: path.into(),
                    query: page_query,
                    body: None,
                })
                .await?;
            let received = envelope.items.len();
            items.extend(parse_items::<T>(envelope.items, what));
            match next_page(operation, envelope.next.as_ref())? {
                Some(next) if received > 0 && next != page => page = next,
                _ => return Ok(items),
            }
        }
        Err(LuccaError::Decode {
            operation,
            cause: format!(
                "still more after {max_pages} pages of {V4_PAGE_SIZE} (read {} so far): the paging never ends",
                items.len()
            ),
        })
    }

    /// The deprecated v3 route, for tenants that still lack the v4 one.
    async fn fetch_departments_v3(&self) -> Result<Vec<Department>, LuccaError> {
        let mut departments = Vec::new();
        let mut offset = 0u32;
        for _ in 0..MAX_PAGES {
            let envelope: ListEnvelope = self
                .call(Call {
                    operation: "list departments",
                    method: Method::GET,
                    path: "api/v3/departments".into(),
                    query: vec![
                        ("fields", "id,name".into()),
                        ("paging", format!("{offset},{MAX_PAGE_SIZE}")),
                    ],
                    body: None,
                })
                .await?;
            let received = envelope.data.items.len() as u32;
            departments.extend(parse_items::<Department>(envelope.data.items, "department"));
            offset += received;
            if received < MAX_PAGE_SIZE {
                break;
            }
        }
        Ok(departments)
    }

    fn cached_departments(&self) -> Option<Arc<Vec<Department>>> {
        self.departments_cache()
            .as_ref()
            .filter(|(fetched, _)| fetched.elapsed() < DEPARTMENTS_TTL)
            .map(|(_, list)| list.clone())
    }

    fn departments_cache(
        &self,
    ) -> std::sync::MutexGuard<'_, Option<(Instant, Arc<Vec<Department>>)>> {
        self.inner
            .departments
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Lucca's roles (`GET /api/v3/roles`, id and name), to resolve `lucca_role` names.
    pub async fn roles(&self) -> Result<Vec<Department>, LuccaError> {
        let envelope: ListEnvelope = self
            .call(Call {
                operation: "list roles",
                method: Method::GET,
                path: "api/v3/roles".into(),
                query: vec![
                    ("fields", "id,name".into()),
                    ("paging", format!("0,{MAX_PAGE_SIZE}")),
                ],
                body: None,
            })
            .await?;
        Ok(parse_items::<Department>(envelope.data.items, "role"))
    }

    /// The ids of a user's secondary roles (`habilitedRoles`), read now.
    pub async fn habilited_roles(&self, id: i64) -> Result<Vec<i64>, LuccaError> {
        let envelope: ItemEnvelope<LuccaUser> = self
            .call(Call {
                operation: "read a user",
                method: Method::GET,
                path: format!("api/v3/users/{id}"),
                query: vec![("fields", "id,habilitedRoles[id,name]".into())],
                body: None,
            })
            .await?;
        Ok(envelope.data.habilited_role_ids())
    }

    /// A cheap authenticated request, for `passerelle check`: proves the URL, the key and its
    /// right to read users.
    pub async fn ping(&self) -> Result<(), LuccaError> {
        self.user_page(
            "read users",
            vec![("fields", "id".into()), ("paging", "0,1".into())],
        )
        .await
        .map(|_| ())
    }

    /// Whether Lucca answers: how it answered a request in the last `fresh`, or else a
    /// [`ping`](Self::ping). Viewing a status page every few seconds costs no budget then.
    pub async fn reachability(&self, fresh: Duration) -> Result<(), String> {
        let recent = self
            .inner
            .last_answer
            .lock()
            .ok()
            .and_then(|last| last.clone())
            .filter(|(at, _)| at.elapsed() < fresh);
        match recent {
            Some((_, answer)) => answer,
            None => self.ping().await.map_err(|e| e.to_string()),
        }
    }

    fn record_answer(&self, answer: Result<(), String>) {
        if let Ok(mut last) = self.inner.last_answer.lock() {
            *last = Some((Instant::now(), answer));
        }
    }

    async fn user_page(
        &self,
        operation: &'static str,
        query: Vec<(&str, String)>,
    ) -> Result<UserPage, LuccaError> {
        let envelope: ListEnvelope = self
            .call(Call {
                operation,
                method: Method::GET,
                path: "api/v3/users".into(),
                query,
                body: None,
            })
            .await?;
        Ok(UserPage {
            items: parse_items(envelope.data.items, "user"),
            count: envelope.data.count,
        })
    }

    /// Send one request through the limiter, waiting out and retrying 429s, and decode the
    /// `{"data": …}` answer.
    async fn call<T: DeserializeOwned>(&self, call: Call<'_>) -> Result<T, LuccaError> {
        let operation = call.operation;
        let url = self
            .inner
            .base
            .join(&call.path)
            .map_err(|e| LuccaError::Config(format!("cannot build a request URL: {e}")))?;
        let deadline = match self.sign_in {
            Some(place) => Some(place.deadline),
            None => self.max_wait.map(|w| Instant::now() + w),
        };
        let place = self.sign_in.map(|p| p.began);
        let mut rate_limited = 0;
        let priority = match self.priority {
            Priority::SignIn => "sign_in",
            Priority::Batch => "batch",
        };
        loop {
            let queued = Instant::now();
            let slot = self
                .inner
                .limiter
                .acquire_in_place(self.priority, place, deadline)
                .await;
            metrics::histogram!("passerelle_lucca_queue_wait_seconds", "priority" => priority)
                .record(queued.elapsed().as_secs_f64());
            let stats = self.inner.limiter.stats();
            metrics::gauge!("passerelle_lucca_queue_depth", "priority" => "sign_in")
                .set(stats.waiting_sign_in as f64);
            metrics::gauge!("passerelle_lucca_queue_depth", "priority" => "batch")
                .set(stats.waiting_batch as f64);
            slot.map_err(|e| {
                metrics::counter!("passerelle_lucca_requests_total", "operation" => operation, "outcome" => "budget_exhausted").increment(1);
                LuccaError::RateLimited {
                    retry_after: e.retry_after,
                }
            })?;
            let mut request = self
                .inner
                .http
                .request(call.method.clone(), url.clone())
                .query(&call.query);
            if let Some(body) = &call.body {
                request = request.json(body);
            }
            let started = Instant::now();
            let response = request.send().await.map_err(|e| {
                metrics::counter!("passerelle_lucca_requests_total", "operation" => operation, "outcome" => "unavailable").increment(1);
                let error = self.transport_error(operation, e);
                self.record_answer(Err(error.to_string()));
                error
            })?;
            let status = response.status();
            let outcome = match status.as_u16() {
                200..=299 => "ok",
                429 => "rate_limited",
                401 | 403 => "refused_key",
                404 => "not_found",
                400..=499 => "client_error",
                _ => "server_error",
            };
            metrics::counter!("passerelle_lucca_requests_total", "operation" => operation, "outcome" => outcome).increment(1);
            tracing::debug!(
                method = %call.method, path = %call.path, status = status.as_u16(),
                elapsed_ms = started.elapsed().as_millis() as u64, "lucca request"
            );
            if status == StatusCode::TOO_MANY_REQUESTS {
                let retry_after = response
                    .headers()
                    .get(RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(parse_retry_after)
                    .unwrap_or(DEFAULT_RETRY_AFTER);
                self.inner.limiter.report_rate_limited(retry_after).await;
                metrics::counter!("passerelle_lucca_rate_limited_total").increment(1);
                rate_limited += 1;
                let too_late = deadline.is_some_and(|d| Instant::now() + retry_after > d);
                // A sign-in's deadline bounds its retries (it keeps its place in line); work
                // without a deadline gives up after a few.
                let give_up = match deadline {
                    Some(_) => too_late,
                    None => rate_limited > MAX_RATE_LIMIT_RETRIES,
                };
                if give_up {
                    return Err(LuccaError::RateLimited { retry_after });
                }
                tracing::warn!(
                    retry_after_ms = retry_after.as_millis() as u64,
                    "Lucca answered 429 (tenant budget shared with other integrations); waiting before retrying"
                );
                continue;
            }
            let body = response
                .bytes()
                .await
                .map_err(|e| self.transport_error(operation, e))?;
            if !status.is_success() {
                let error = status_error(operation, status, &call.path, &body);
                // A 404 or a refused value is Lucca answering; a refused key or a 5xx is not
                // Lucca working for us.
                let broken = matches!(status.as_u16(), 401 | 403) || status.is_server_error();
                self.record_answer(if broken {
                    Err(error.to_string())
                } else {
                    Ok(())
                });
                return Err(error);
            }
            self.record_answer(Ok(()));
            return serde_json::from_slice(&body).map_err(|e| LuccaError::Decode {
                operation,
                cause: format!(
                    "{e} (body starts with `{}`)",
                    error_message_from_body(&body)
                ),
            });
        }
    }

    fn transport_error(&self, operation: &'static str, error: reqwest::Error) -> LuccaError {
        let cause = if error.is_timeout() {
            format!(
                "no answer within {:?} (lucca.request_timeout; Lucca itself aborts requests after 5 s)",
                self.inner.request_timeout
            )
        } else if error.is_connect() {
            format!(
                "cannot connect to {}: {}",
                self.inner.base,
                root_cause(&error)
            )
        } else {
            root_cause(&error)
        };
        LuccaError::Unavailable { operation, cause }
    }
}

fn status_error(
    operation: &'static str,
    status: StatusCode,
    path: &str,
    body: &[u8],
) -> LuccaError {
    match status {
        StatusCode::UNAUTHORIZED => LuccaError::Unauthorized,
        StatusCode::FORBIDDEN => LuccaError::Forbidden { operation },
        StatusCode::NOT_FOUND => LuccaError::NotFound {
            what: format!("/{path}"),
        },
        StatusCode::REQUEST_TIMEOUT => LuccaError::Unavailable {
            operation,
            cause: "Lucca aborted the request after 5 s (408)".into(),
        },
        s if s.is_server_error() => LuccaError::Unavailable {
            operation,
            cause: format!("HTTP {}: {}", s.as_u16(), error_message_from_body(body)),
        },
        s => LuccaError::Validation {
            operation,
            status: s.as_u16(),
            message: error_message_from_body(body),
        },
    }
}

/// A v4 list page: `{"items": [...], "next": …}` (other keys ignored).
#[derive(Debug, serde::Deserialize)]
struct V4Page {
    #[serde(default)]
    items: Vec<Value>,
    #[serde(default)]
    next: Option<Value>,
}

/// The `page` value for the next v4 request, from `next`: `null` (the end), a page number, a
/// cursor, a `{"href": …}` link, or a URL whose `page` parameter is taken. Only the parameter is
/// kept: the request goes to the tenant's own route whatever host a URL names, so an answer
/// can never send the API key elsewhere.
fn next_page(operation: &'static str, next: Option<&Value>) -> Result<Option<String>, LuccaError> {
    let undecodable = |why: &str| LuccaError::Decode {
        operation,
        cause: format!("`next` {why}"),
    };
    let text = match next {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Number(n)) => return Ok(Some(n.to_string())),
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Object(link)) => match link.get("href") {
            Some(Value::String(s)) => s.trim().to_string(),
            Some(Value::Null) | None => return Ok(None),
            Some(_) => return Err(undecodable("has a non-text href")),
        },
        Some(_) => return Err(undecodable("is neither a link, a cursor nor a page number")),
    };
    if text.is_empty() {
        return Ok(None);
    }
    if text.len() > MAX_CURSOR_LEN {
        return Err(undecodable("is longer than any cursor Lucca sends"));
    }
    let query = if let Ok(url) = Url::parse(&text) {
        url.query().map(str::to_owned)
    } else if text.starts_with('/') || text.contains('?') {
        text.split_once('?').map(|(_, q)| q.to_string())
    } else {
        return Ok(Some(text));
    };
    let page = query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k.eq_ignore_ascii_case("page"))
            .map(|(_, v)| v.into_owned())
    });
    match page {
        Some(page) if !page.is_empty() => Ok(Some(page)),
        _ => Err(undecodable("is a link without a `page` parameter")),
    }
}

fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

fn parse_items<T: DeserializeOwned>(items: Vec<Value>, what: &str) -> Vec<T> {
    items
        .into_iter()
        .filter_map(|item| match serde_json::from_value(item) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                tracing::warn!(error = %e, "skipping an unreadable Lucca {what}");
                None
            }
        })
        .collect()
}

fn parse_base_url(base_url: &str) -> Result<Url, LuccaError> {
    let mut url = Url::parse(base_url.trim()).map_err(|e| {
        LuccaError::Config(format!("lucca.base_url: `{base_url}` is not a URL ({e})"))
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(LuccaError::Config(format!(
            "lucca.base_url: `{base_url}` is not an http(s) URL"
        )));
    }
    url.set_query(None);
    url.set_fragment(None);
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// `Retry-After` is either delay-seconds or an HTTP-date (RFC 9110 §10.2.3).
pub(crate) fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    if let Ok(seconds) = value.parse::<f64>() {
        return (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.signed_duration_since(chrono::Utc::now());
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(parse_retry_after(" 0 "), Some(Duration::ZERO));
        let in_a_minute = (chrono::Utc::now() + chrono::Duration::seconds(60))
            .format("%a, %d %b %Y %H:%M:%S GMT")
            .to_string();
        let wait = parse_retry_after(&in_a_minute).unwrap();
        assert!(
            wait > Duration::from_secs(55) && wait <= Duration::from_secs(60),
            "{wait:?}"
        );
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn the_next_v4_page_comes_from_a_link_a_cursor_or_a_number() {
        let next = |v: Value| next_page("list departments", Some(&v));
        assert_eq!(next(Value::Null).unwrap(), None);
        assert_eq!(next_page("list departments", None).unwrap(), None);
        assert_eq!(next(serde_json::json!(2)).unwrap().as_deref(), Some("2"));
        assert_eq!(
            next(serde_json::json!("!S7DHF")).unwrap().as_deref(),
            Some("!S7DHF")
        );
        assert_eq!(next(serde_json::json!("")).unwrap(), None);
        assert_eq!(
            next(serde_json::json!(
                "https://acme.ilucca.net/organization/structure/api/departments?limit=100&page=3"
            ))
            .unwrap()
            .as_deref(),
            Some("3")
        );
        assert_eq!(
            next(serde_json::json!(
                "/organization/structure/api/departments?page=%21ab"
            ))
            .unwrap()
            .as_deref(),
            Some("!ab")
        );
        assert_eq!(
            next(serde_json::json!({"href": "https://elsewhere.example/x?page=4"}))
                .unwrap()
                .as_deref(),
            Some("4"),
            "only the parameter is kept, never the host"
        );
        assert_eq!(next(serde_json::json!({"href": null})).unwrap(), None);
        assert!(next(serde_json::json!("https://acme.ilucca.net/x?limit=1")).is_err());
        assert!(next(serde_json::json!([1])).is_err());
        assert!(next(serde_json::json!("x".repeat(5000))).is_err());
    }

    #[test]
    fn base_urls_are_normalised() {
        assert_eq!(
            parse_base_url("https://acme.ilucca.net")
                .unwrap()
                .join("api/v3/users")
                .unwrap()
                .as_str(),
            "https://acme.ilucca.net/api/v3/users"
        );
        assert_eq!(
            parse_base_url("http://127.0.0.1:1/prefix")
                .unwrap()
                .join("api/v3/users")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:1/prefix/api/v3/users"
        );
        assert!(parse_base_url("ftp://x").is_err());
        assert!(parse_base_url("acme.ilucca.net").is_err());
    }

    #[test]
    fn from_config_names_the_missing_key() {
        let mut config = LuccaConfig::default();
        assert!(LuccaClient::from_config(&config).unwrap().is_none());
        config.base_url = Some("https://from-config.ilucca.net".into());
        let err = LuccaClient::from_config(&config).unwrap_err().to_string();
        assert!(err.starts_with("lucca.api_key:"), "{err}");
        config.api_key = Some(Secret::new("k"));
        let client = LuccaClient::from_config(&config).unwrap().unwrap();
        assert_eq!(client.limiter().stats().budget, 50);
    }

    #[test]
    fn the_key_never_shows_in_debug_output() {
        let client = LuccaClient::new(
            "https://debug-test.ilucca.net",
            Secret::new("very-secret-key"),
            50,
            Duration::from_secs(4),
        )
        .unwrap();
        assert!(!format!("{client:?}").contains("very-secret-key"));
    }
}
