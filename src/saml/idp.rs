//! The running SAML IdP: the registered service providers (swapped whole when metadata given by
//! URL is refreshed), the intake policy and our URLs. Built once at start from `[saml]`.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;

use super::request::IntakePolicy;
use super::sp::{ServiceProvider, SpError, SpRegistry};
use super::IdpUrls;
use crate::config::{SamlConfig, ServiceProviderConfig};

/// How long fetching one SP's metadata may take (start-up, refresh, `passerelle check`).
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// One SP that could not be registered, with the configuration key to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpProblem {
    /// e.g. `saml.service_providers[0].metadata_url`
    pub key: String,
    pub message: String,
}

impl std::fmt::Display for SpProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.key, self.message)
    }
}

/// What the SAML handlers share.
pub struct SamlIdp {
    pub urls: IdpUrls,
    pub policy: IntakePolicy,
    sps: ArcSwap<SpRegistry>,
    /// The last SP built successfully for each `[[saml.service_providers]]` entry, so that a
    /// failed refresh of one URL keeps its previous metadata instead of dropping the SP.
    last_good: tokio::sync::Mutex<Vec<ServiceProvider>>,
    config: SamlConfig,
    /// Fetches metadata given by URL (start-up and every refresh).
    http: reqwest::Client,
    /// When the registry was last built from metadata (unix seconds): start-up, then each
    /// successful refresh. Shown by the admin console.
    refreshed_at: std::sync::atomic::AtomicI64,
}

impl SamlIdp {
    /// Read every configured SP (files read, URLs fetched with `http`, see
    /// [`metadata_http_client`]). Any failure is a start-up error.
    pub async fn load(
        public_url: &str,
        config: &SamlConfig,
        http: reqwest::Client,
    ) -> Result<SamlIdp, Vec<SpProblem>> {
        let urls = IdpUrls::new(public_url);
        let policy = IntakePolicy::new(&urls, config);
        let mut sps = Vec::new();
        let mut problems = Vec::new();
        for (i, sp_config) in config.service_providers.iter().enumerate() {
            match load_one(&http, i, sp_config).await {
                Ok(sp) => {
                    for warning in sp_warnings(i, sp_config, &sp) {
                        tracing::warn!(key = %warning.key, "{}", warning.message);
                    }
                    sps.push(sp)
                }
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let registry = SpRegistry::new(sps.clone()).map_err(|e| {
            vec![SpProblem {
                key: "saml.service_providers".into(),
                message: e.to_string(),
            }]
        })?;
        Ok(SamlIdp {
            urls,
            policy,
            sps: ArcSwap::from_pointee(registry),
            last_good: tokio::sync::Mutex::new(sps),
            config: config.clone(),
            http,
            refreshed_at: std::sync::atomic::AtomicI64::new(chrono::Utc::now().timestamp()),
        })
    }

    /// When the SPs' metadata was last read successfully (unix seconds).
    pub fn refreshed_at(&self) -> i64 {
        self.refreshed_at.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `[saml]` as configured at start.
    pub fn settings(&self) -> &SamlConfig {
        &self.config
    }

    /// The registry as it is now (cheap; a refresh swaps in a new one).
    pub fn registry(&self) -> Arc<SpRegistry> {
        self.sps.load_full()
    }

    /// Whether any SP's metadata comes from a URL (and so needs refreshing).
    pub fn has_metadata_urls(&self) -> bool {
        self.config
            .service_providers
            .iter()
            .any(|sp| sp.metadata_url.is_some())
    }

    /// Fetch the metadata URLs again. An SP whose fetch or parse fails keeps its last good copy
    /// (logged with the reason): a Lucca outage must not lock everyone out.
    pub async fn refresh(&self) {
        let http = &self.http;
        let mut last_good = self.last_good.lock().await;
        let mut next = Vec::with_capacity(last_good.len());
        for (i, config) in self.config.service_providers.iter().enumerate() {
            let previous = last_good.get(i).cloned();
            if config.metadata_url.is_none() {
                next.extend(previous);
                continue;
            }
            match load_one(http, i, config).await {
                Ok(sp) => next.push(sp),
                Err(problem) => {
                    tracing::warn!(problem = %problem, "SP metadata refresh failed; keeping the last good copy");
                    next.extend(previous);
                }
            }
        }
        match SpRegistry::new(next.clone()) {
            Ok(registry) => {
                self.sps.store(Arc::new(registry));
                *last_good = next;
                self.refreshed_at.store(
                    chrono::Utc::now().timestamp(),
                    std::sync::atomic::Ordering::Relaxed,
                );
                tracing::debug!("SP metadata refreshed");
            }
            Err(e) => {
                tracing::warn!(error = %e, "refreshed SP metadata is inconsistent; keeping the last good registry")
            }
        }
    }
}

/// Refresh metadata given by URL every `saml.metadata_refresh`.
pub fn spawn_metadata_refresh(idp: Arc<SamlIdp>) -> Option<tokio::task::JoinHandle<()>> {
    if !idp.has_metadata_urls() {
        return None;
    }
    let every = idp.config.metadata_refresh.max(Duration::from_secs(60));
    Some(tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        // The first tick fires at once; start-up has just fetched everything.
        tick.tick().await;
        loop {
            tick.tick().await;
            idp.refresh().await;
        }
    }))
}

/// The client SP metadata is fetched with: bounded time, a few redirects at most (a metadata
/// URL may move to a CDN). Built once by the caller, which refuses to go on without it rather
/// than fall back to a client without these limits.
pub fn metadata_http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .connect_timeout(FETCH_TIMEOUT)
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
}

/// Fetch metadata from `url`: a 2xx with a body of reasonable size that is not a web page.
/// Failures keep their cause ("connection refused", "dns error", a certificate problem).
pub async fn fetch_metadata(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = http
        .get(url)
        .header(
            reqwest::header::ACCEPT,
            "application/samlmetadata+xml, application/xml, text/xml",
        )
        .send()
        .await
        .map_err(|e| format!("cannot fetch {url}: {}", crate::web::cause_chain(&e)))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("fetching {url} answered {status}"));
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase()
        });
    let body = response
        .bytes()
        .await
        .map_err(|e| format!("cannot read {url}: {}", crate::web::cause_chain(&e)))?;
    if body.len() > super::sp::MAX_METADATA_BYTES {
        return Err(format!("{url} returned more than 1 MiB: not SP metadata"));
    }
    // A login page or a portal's front page at the metadata URL would otherwise be reported
    // by the XML parser as "contains a DTD" (its <!DOCTYPE html>).
    if content_type.as_deref() == Some("text/html") || looks_like_html(&body) {
        return Err(format!(
            "{url} is an HTML page, not SAML metadata (HTTP {}, {})",
            status.as_u16(),
            content_type.as_deref().unwrap_or("no Content-Type")
        ));
    }
    String::from_utf8(body.to_vec()).map_err(|_| format!("{url} did not return UTF-8 XML"))
}

/// Whether a body starts like an HTML document (`<!DOCTYPE html` or `<html`).
fn looks_like_html(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
    let start = text
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    start.starts_with("<!doctype html") || start.starts_with("<html")
}

/// Build the SP of entry `i`, or say which key is wrong and why.
pub async fn load_one(
    http: &reqwest::Client,
    i: usize,
    config: &ServiceProviderConfig,
) -> Result<ServiceProvider, SpProblem> {
    let base = format!("saml.service_providers[{i}]");
    let fetched = match &config.metadata_url {
        Some(url) if config.metadata_file.is_none() => Some(
            fetch_metadata(http, url)
                .await
                .map_err(|message| SpProblem {
                    key: format!("{base}.metadata_url"),
                    message,
                })?,
        ),
        _ => None,
    };
    ServiceProvider::from_config(config, fetched.as_deref()).map_err(|e| SpProblem {
        key: problem_key(&base, config, &e),
        message: e.to_string(),
    })
}

/// What is legal but will not work as the admin probably expects, for `passerelle check` (as
/// warnings) and the start-up log.
pub fn sp_warnings(
    i: usize,
    config: &ServiceProviderConfig,
    sp: &ServiceProvider,
) -> Vec<SpProblem> {
    let base = format!("saml.service_providers[{i}]");
    let mut out = Vec::new();
    if sp.signing_certs.is_empty() && sp.slo_endpoint().is_some() && !config.allow_unsigned_logout {
        out.push(SpProblem {
            key: format!("{base}.allow_unsigned_logout"),
            message: format!(
                "{} has a single logout endpoint but no signing certificate: its LogoutRequests \
                 and LogoutResponses cannot be verified and will be refused. Register its \
                 certificate (metadata or `certificate`), or set allow_unsigned_logout = true \
                 to accept unsigned logout from it",
                sp.entity_id
            ),
        });
    }
    out
}

/// The most specific key an [`SpError`] is about.
fn problem_key(base: &str, config: &ServiceProviderConfig, error: &SpError) -> String {
    let source = if config.metadata_file.is_some() {
        "metadata_file"
    } else if config.metadata_url.is_some() {
        "metadata_url"
    } else {
        "acs_url"
    };
    let field = match error {
        SpError::NoEncryptionCertificate(_) => "encrypt_assertion",
        SpError::BadNameIdFormat(_) => "name_id_format",
        SpError::BadIdentifier(_) => "identifier",
        SpError::BadAttributeNameFormat(_) => "attribute_name_format",
        SpError::EntityIdMismatch { .. } | SpError::MissingEntityId
            if config.metadata_file.is_none() && config.metadata_url.is_none() =>
        {
            "entity_id"
        }
        SpError::BadUrl { what, .. } if *what == "slo_url" => "slo_url",
        SpError::BadCertificate { .. } if config.certificate.is_some() && source == "acs_url" => {
            "certificate"
        }
        SpError::NotEnoughToRegister => return base.to_string(),
        _ => source,
    };
    format!("{base}.{field}")
}
