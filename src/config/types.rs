//! The configuration's types: one struct per TOML section, their defaults, and the small value
//! types (`Secret`, `Network`, `Scope`) the rest of the code reads. No loading, no checking.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A secret value: never printed by `Debug`, so it cannot leak through logs.
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// An IP network written as a CIDR (`10.0.0.0/8`, `2001:db8::/32`) or a single address
/// (`10.0.0.5`, a /32 or /128). Host bits are cleared: `10.1.2.3/8` means `10.0.0.0/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network(pub ipnet::IpNet);

impl Network {
    pub fn contains(&self, ip: std::net::IpAddr) -> bool {
        self.0.contains(&ip)
    }
}

impl std::str::FromStr for Network {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        let net = match s.parse::<ipnet::IpNet>() {
            Ok(net) => net.trunc(),
            Err(_) => match s.parse::<std::net::IpAddr>() {
                Ok(ip) => ipnet::IpNet::from(ip),
                Err(_) => {
                    return Err(format!(
                        "`{s}` is not an IP address or CIDR network (e.g. \"10.0.0.5\", \"10.0.0.0/8\", \"2001:db8::/32\")"
                    ))
                }
            },
        };
        // Client addresses are compared in their canonical form (an IPv4-mapped IPv6 address
        // is the IPv4 address), so a mapped network would never match anything.
        if let ipnet::IpNet::V6(v6) = net {
            if v6.addr().to_ipv4_mapped().is_some() && v6.prefix_len() >= 96 {
                return Err(format!(
                    "`{s}` is an IPv4-mapped IPv6 network: write it as IPv4 (e.g. \"{}/{}\")",
                    v6.addr()
                        .to_ipv4_mapped()
                        .map(|a| a.to_string())
                        .unwrap_or_default(),
                    v6.prefix_len() - 96
                ));
            }
        }
        Ok(Network(net))
    }
}

impl fmt::Display for Network {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Network {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub server: ServerConfig,
    pub admin: AdminConfig,
    pub keys: KeysConfig,
    pub login: LoginConfig,
    pub oidc: OidcConfig,
    pub saml: SamlConfig,
    pub lucca: LuccaConfig,
    pub directory: DirectoryConfig,
    pub role_mapping: Vec<RoleMappingRow>,
    pub claims: ClaimsConfig,
    pub upstreams: Vec<UpstreamConfig>,
    pub migrations: MigrationsConfig,
    pub smtp: SmtpConfig,
    pub audit: AuditConfig,
    pub store: super::StoreSettings,
}

/// `[audit]`: how long the audit log keeps its rows.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuditConfig {
    /// Rows older than this are deleted, once a day; `"0s"` keeps them forever.
    #[serde(with = "humantime_serde")]
    pub retention: Duration,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            retention: Duration::from_secs(400 * 24 * 3600),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// The languages the pages are written in (`server.default_language`); `web::Lang` has one
/// variant for each.
pub const LANGUAGES: &[&str] = &["en", "fr"];

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: String,
    pub public_url: String,
    pub data_dir: PathBuf,
    pub keys_dir: PathBuf,
    /// Where `login.html` and friends are read from at run time; built-in copies are used for
    /// any file that is not there.
    pub templates_dir: PathBuf,
    pub log_format: LogFormat,
    /// Reverse proxies whose `X-Forwarded-For` is believed (addresses or CIDR networks). The
    /// client is the rightmost hop that is not one of them; empty = the peer address.
    pub trusted_proxies: Vec<Network>,
    /// Serve `/metrics` only on this separate address (for a private interface, no auth there);
    /// unset = `/metrics` on the main listener behind the admin bearer token.
    pub metrics_listen: Option<String>,
    /// Serve HTTPS on `listen` with this certificate chain (PEM, the leaf first) and
    /// `tls_key`; both or neither. Unset = plain HTTP, for a reverse proxy in front.
    pub tls_cert: Option<PathBuf>,
    /// The private key of `tls_cert` (PEM: PKCS#8, PKCS#1 RSA or SEC1 EC).
    pub tls_key: Option<PathBuf>,
    /// The language of the pages when the browser's `Accept-Language` names none Passerelle
    /// speaks (one of [`LANGUAGES`]).
    pub default_language: String,
    /// The old, unsafe switch (it believed the leftmost, client-chosen hop). Still read so that
    /// `check` and `serve` can explain its replacement instead of a bare "unknown field".
    #[serde(rename = "trust_forwarded_for")]
    pub legacy_trust_forwarded_for: Option<serde::de::IgnoredAny>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: "127.0.0.1:8080".into(),
            public_url: "http://127.0.0.1:8080".into(),
            data_dir: "data".into(),
            keys_dir: "keys".into(),
            templates_dir: "templates".into(),
            log_format: LogFormat::Text,
            trusted_proxies: Vec::new(),
            metrics_listen: None,
            tls_cert: None,
            tls_key: None,
            default_language: "en".into(),
            legacy_trust_forwarded_for: None,
        }
    }
}

impl ServerConfig {
    /// `public_url` without a trailing slash, ready to have paths appended.
    pub fn base_url(&self) -> String {
        self.public_url.trim_end_matches('/').to_string()
    }

    /// The certificate chain and key files when built-in TLS is on (both keys set).
    pub fn tls_files(&self) -> Option<(&Path, &Path)> {
        Some((self.tls_cert.as_deref()?, self.tls_key.as_deref()?))
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminConfig {
    /// Bearer token for `/admin/*`. Unset (and no `token_file`/`token_sha256`) disables the admin API.
    pub token: Option<Secret>,
    pub token_file: Option<PathBuf>,
    /// Hex SHA-256 of the token, so the token itself need not be stored anywhere.
    pub token_sha256: Option<String>,
    /// People in any of these groups (as the directory or upstream gives them) may open the
    /// admin console at `/admin/`, signed in through Passerelle itself. Empty: nobody may.
    pub groups: Vec<String>,
    /// Rotating keys, applying a migration and revoking a person from the console need a
    /// sign-in this recent; an older one signs in again first.
    #[serde(with = "humantime_serde")]
    pub fresh_sign_in: Duration,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            token: None,
            token_file: None,
            token_sha256: None,
            groups: Vec::new(),
            fresh_sign_in: Duration::from_secs(15 * 60),
        }
    }
}

impl AdminConfig {
    /// The SHA-256 the presented bearer token must hash to: of `token` when set, else
    /// `token_sha256` decoded. None (no usable token) means the admin API is disabled.
    pub fn token_digest(&self) -> Option<[u8; 32]> {
        match (&self.token, &self.token_sha256) {
            (Some(t), _) if !t.is_empty() => Some(openssl::sha::sha256(t.expose().as_bytes())),
            (_, Some(h)) => hex::decode(h).ok().and_then(|b| b.try_into().ok()),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct KeysConfig {
    /// How long a key staged by `passerelle keys rotate` is published before it starts signing,
    /// so relying parties (and Lucca's metadata refresh) pick it up first.
    #[serde(with = "humantime_serde")]
    pub rotation_delay: Duration,
    /// How long a superseded key stays published after it stopped signing: at least the
    /// lifetime of anything it signed.
    #[serde(with = "humantime_serde")]
    pub retire_after: Duration,
    /// Validity of the self-signed certificates generated for new keys.
    pub certificate_validity_days: u32,
    /// With PostgreSQL (`[store] url`): the key-encryption key, base64 of 32 random bytes,
    /// under which the private signing keys kept in the database are sealed (AES-256-GCM).
    /// Required there; unused with the SQLite file, whose keys stay files in `keys_dir`.
    pub encryption_key: Option<Secret>,
    pub encryption_key_file: Option<PathBuf>,
    /// Former key-encryption keys, still accepted to open keys sealed before a KEK rotation
    /// (until `passerelle keys rewrap` has sealed every key under `encryption_key`).
    pub previous_encryption_keys: Vec<Secret>,
    /// A file holding the former keys, one per line (replaces `previous_encryption_keys`).
    pub previous_encryption_keys_file: Option<PathBuf>,
    /// How often a running server re-reads the key ring: `keyring.json` (a rotation by the
    /// CLI), or with PostgreSQL the shared ring, so that a key staged on any node is published
    /// by all within this long.
    #[serde(with = "humantime_serde")]
    pub reload_interval: Duration,
}

impl Default for KeysConfig {
    fn default() -> Self {
        KeysConfig {
            rotation_delay: Duration::from_secs(48 * 3600),
            retire_after: Duration::from_secs(24 * 3600),
            certificate_validity_days: 3650,
            encryption_key: None,
            encryption_key_file: None,
            previous_encryption_keys: Vec::new(),
            previous_encryption_keys_file: None,
            reload_interval: Duration::from_secs(60),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginConfig {
    /// A sign-in session ends after this long without use.
    #[serde(with = "humantime_serde")]
    pub session_idle_timeout: Duration,
    /// ... and in any case this long after the person authenticated.
    #[serde(with = "humantime_serde")]
    pub session_max_age: Duration,
    /// Failed sign-ins allowed per account within `failure_window` before it is throttled.
    pub max_failures_per_account: u32,
    /// Failed sign-ins allowed per client IP within `failure_window`.
    pub max_failures_per_ip: u32,
    #[serde(with = "humantime_serde")]
    pub failure_window: Duration,
    /// How long a pending sign-in (an authorization or SAML request waiting for the person to
    /// authenticate) stays usable.
    #[serde(with = "humantime_serde")]
    pub request_ttl: Duration,
    /// Name of the session cookie (change it when several instances share a host name).
    pub session_cookie: String,
    /// Sign-in (and the token endpoint) only for clients in these networks; unset = everyone.
    pub allowed_networks: Option<Vec<Network>>,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            session_cookie: "passerelle_session".into(),
            session_idle_timeout: Duration::from_secs(8 * 3600),
            session_max_age: Duration::from_secs(12 * 3600),
            max_failures_per_account: 5,
            max_failures_per_ip: 20,
            failure_window: Duration::from_secs(15 * 60),
            request_ttl: Duration::from_secs(30 * 60),
            allowed_networks: None,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OidcConfig {
    #[serde(with = "humantime_serde")]
    pub code_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub id_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub access_token_ttl: Duration,
    #[serde(with = "humantime_serde")]
    pub refresh_token_ttl: Duration,
    /// A refresh family ends this long after the original sign-in (the grant's auth time),
    /// however often it rotates: a leaver's mobile app cannot keep access forever.
    #[serde(with = "humantime_serde")]
    pub refresh_token_max_lifetime: Duration,
    /// A rotated refresh token presented again within this window (a concurrent retry from a
    /// mobile app or a second tab) gets the same answer instead of revoking the family.
    #[serde(with = "humantime_serde")]
    pub refresh_grace: Duration,
    pub clients: Vec<ClientConfig>,
}

impl Default for OidcConfig {
    fn default() -> Self {
        OidcConfig {
            code_ttl: Duration::from_secs(60),
            id_token_ttl: Duration::from_secs(3600),
            access_token_ttl: Duration::from_secs(3600),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            refresh_token_max_lifetime: Duration::from_secs(90 * 24 * 3600),
            refresh_grace: Duration::from_secs(10),
            clients: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshPolicy {
    /// Issue a refresh token only when `offline_access` is granted.
    #[default]
    OfflineAccess,
    /// Always issue one (the mobile apps).
    Always,
    Never,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClientConfig {
    pub client_id: String,
    pub name: Option<String>,
    /// Omitted (with no `client_secret_file`) => public client: PKCE S256 is required.
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    /// Require PKCE from this confidential client too (always required for public clients).
    pub require_pkce: bool,
    pub refresh_tokens: RefreshPolicy,
    /// Scopes this client may be granted; empty = every supported scope. Kept as text so that
    /// `passerelle check` names each unknown one (see [`Scope`]) instead of stopping at the first.
    pub allowed_scopes: Vec<String>,
    /// Name of the claim that carries the mapped roles (default `groups`).
    pub groups_claim: Option<String>,
    /// Release only these claims (besides the protocol ones: sub, iss, aud…); empty = every
    /// claim of the granted scopes. Lucca gets what it needs and nothing more.
    pub release_claims: Vec<String>,
    /// Let this client call the token endpoint from outside `[login] allowed_networks` (a web
    /// application whose servers redeem the code; the person's network was checked at sign-in).
    pub token_from_any_network: bool,
    /// Only people in at least one of these groups (their directory or upstream groups, before
    /// mapping) may sign in to this client; empty = everyone.
    pub allowed_groups: Vec<String>,
}

/// An OpenID Connect scope Passerelle understands: the one list config validation, the client
/// registry and discovery all read. `groups` releases the mapped roles; `offline_access` a
/// refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scope {
    OpenId,
    Profile,
    Email,
    Groups,
    OfflineAccess,
}

impl Scope {
    pub const ALL: [Scope; 5] = [
        Scope::OpenId,
        Scope::Profile,
        Scope::Email,
        Scope::Groups,
        Scope::OfflineAccess,
    ];

    /// The scope names, in [`Scope::ALL`]'s order (what discovery publishes).
    pub const NAMES: [&'static str; 5] = {
        let mut names = [""; 5];
        let mut i = 0;
        while i < names.len() {
            names[i] = Scope::ALL[i].as_str();
            i += 1;
        }
        names
    };

    pub const fn as_str(self) -> &'static str {
        match self {
            Scope::OpenId => "openid",
            Scope::Profile => "profile",
            Scope::Email => "email",
            Scope::Groups => "groups",
            Scope::OfflineAccess => "offline_access",
        }
    }

    /// Exact, case-sensitive match (RFC 6749 §3.3: scope tokens are case-sensitive).
    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|s| s.as_str() == name)
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ClientConfig {
    pub fn is_public(&self) -> bool {
        self.client_secret.as_ref().is_none_or(|s| s.is_empty())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SamlConfig {
    /// Advertise `WantAuthnRequestsSigned` and refuse unsigned AuthnRequests by default.
    pub want_authn_requests_signed: bool,
    /// Sign the published metadata document.
    pub sign_metadata: bool,
    #[serde(with = "humantime_serde")]
    pub metadata_valid_for: Duration,
    #[serde(with = "humantime_serde")]
    pub metadata_cache_duration: Duration,
    #[serde(with = "humantime_serde")]
    pub assertion_ttl: Duration,
    /// Allowed difference between our clock and an SP's IssueInstant.
    #[serde(with = "humantime_serde")]
    pub clock_skew: Duration,
    /// How often SP metadata given by `metadata_url` is fetched again.
    #[serde(with = "humantime_serde")]
    pub metadata_refresh: Duration,
    pub service_providers: Vec<ServiceProviderConfig>,
}

impl Default for SamlConfig {
    fn default() -> Self {
        SamlConfig {
            want_authn_requests_signed: true,
            sign_metadata: false,
            metadata_valid_for: Duration::from_secs(7 * 24 * 3600),
            metadata_cache_duration: Duration::from_secs(24 * 3600),
            assertion_ttl: Duration::from_secs(300),
            clock_skew: Duration::from_secs(180),
            metadata_refresh: Duration::from_secs(6 * 3600),
            service_providers: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServiceProviderConfig {
    pub name: Option<String>,
    pub metadata_file: Option<PathBuf>,
    pub metadata_url: Option<String>,
    pub entity_id: Option<String>,
    pub acs_url: Option<String>,
    /// PEM file (or inline PEM) of the SP's signing certificate, when not given by metadata.
    pub certificate: Option<String>,
    pub sign_response: bool,
    pub sign_assertion: bool,
    pub encrypt_assertion: bool,
    /// Override `saml.want_authn_requests_signed` for this SP.
    pub require_signed_requests: Option<bool>,
    /// Accept this SP's single-logout messages unsigned (default false: they must be signed
    /// with its registered certificate, whatever `require_signed_requests` says).
    pub allow_unsigned_logout: bool,
    /// `email` (default), `persistent` or `unspecified`.
    pub name_id_format: Option<String>,
    /// Override `[lucca] match_on` for this SP: `email` or `login`.
    pub identifier: Option<String>,
    /// `NameFormat` of the released attributes: `unspecified` (default), `uri` or `basic`.
    pub attribute_name_format: Option<String>,
    pub slo_url: Option<String>,
    /// As for OIDC clients: only people in one of these groups may sign in to this SP.
    pub allowed_groups: Vec<String>,
}

impl Default for ServiceProviderConfig {
    fn default() -> Self {
        ServiceProviderConfig {
            name: None,
            metadata_file: None,
            metadata_url: None,
            entity_id: None,
            acs_url: None,
            certificate: None,
            sign_response: true,
            sign_assertion: true,
            encrypt_assertion: false,
            require_signed_requests: None,
            allow_unsigned_logout: false,
            name_id_format: None,
            identifier: None,
            attribute_name_format: None,
            slo_url: None,
            allowed_groups: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MatchOn {
    #[default]
    Email,
    Login,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JitMode {
    #[default]
    Off,
    UpdateOnly,
    CreateAndUpdate,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LuccaConfig {
    /// Tenant root, e.g. `https://acme.ilucca.net`. Unset: no Lucca API calls (JIT off).
    pub base_url: Option<String>,
    pub api_key: Option<Secret>,
    pub api_key_file: Option<PathBuf>,
    pub match_on: MatchOn,
    pub jit: JitMode,
    pub requests_per_minute: u32,
    /// With several nodes on one PostgreSQL: the requests of each window batch work leaves to
    /// people signing in (on any node).
    pub sign_in_reserve: u32,
    /// The window `requests_per_minute` counts over: Lucca's minute. Not a configuration key
    /// (Lucca's window is fixed); tests against the simulator shorten it.
    #[serde(skip)]
    pub rate_window: Duration,
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    pub defaults: LuccaDefaults,
    /// The attributes Passerelle keeps up to date in Lucca at sign-in; the others belong to HR.
    pub owned_attributes: Vec<OwnedAttribute>,
    /// Whom a refused person should contact, as it reads in a sentence ("your HR team",
    /// "hr@acme.example").
    pub support_contact: String,
    /// How long a decision that a person is active stays good enough to let them in while
    /// Lucca cannot be asked.
    #[serde(with = "humantime_serde")]
    pub decision_ttl: Duration,
    /// Directory sync: how often users modified in Lucca are read (`0s`: never).
    #[serde(with = "humantime_serde")]
    pub sync_interval: Duration,
    /// JIT and the sync write the Lucca roles `[[role_mapping]]` grants (`habilitedRoles`).
    pub apply_roles: bool,
    /// How long a person signing in may wait for Lucca (the budget, a Retry-After).
    #[serde(with = "humantime_serde")]
    pub sign_in_wait: Duration,
    /// Enables `POST /lucca/webhooks`: the secret Lucca signs its events with.
    pub webhook_secret: Option<Secret>,
    pub webhook_secret_file: Option<PathBuf>,
}

/// An attribute of a Lucca account that Passerelle may overwrite from the identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OwnedAttribute {
    FirstName,
    LastName,
    Department,
    Manager,
    EmployeeNumber,
    JobTitle,
}

impl OwnedAttribute {
    pub const ALL: [OwnedAttribute; 6] = [
        OwnedAttribute::FirstName,
        OwnedAttribute::LastName,
        OwnedAttribute::Department,
        OwnedAttribute::Manager,
        OwnedAttribute::EmployeeNumber,
        OwnedAttribute::JobTitle,
    ];

    /// The name used in the configuration, the audit log and the preview.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnedAttribute::FirstName => "first_name",
            OwnedAttribute::LastName => "last_name",
            OwnedAttribute::Department => "department",
            OwnedAttribute::Manager => "manager",
            OwnedAttribute::EmployeeNumber => "employee_number",
            OwnedAttribute::JobTitle => "job_title",
        }
    }
}

/// `[lucca] sign_in_reserve` by default: a tenth of Lucca's 50 requests a minute.
pub const DEFAULT_SIGN_IN_RESERVE: u32 = 5;

/// Used when `lucca.support_contact` is not set.
pub const DEFAULT_SUPPORT_CONTACT: &str = "your HR or IT team";

impl Default for LuccaConfig {
    fn default() -> Self {
        LuccaConfig {
            base_url: None,
            api_key: None,
            api_key_file: None,
            match_on: MatchOn::Email,
            jit: JitMode::Off,
            requests_per_minute: 50,
            sign_in_reserve: DEFAULT_SIGN_IN_RESERVE,
            rate_window: Duration::from_secs(60),
            request_timeout: Duration::from_secs(4),
            defaults: LuccaDefaults::default(),
            owned_attributes: OwnedAttribute::ALL.to_vec(),
            support_contact: DEFAULT_SUPPORT_CONTACT.into(),
            decision_ttl: Duration::from_secs(24 * 3600),
            sync_interval: Duration::from_secs(15 * 60),
            apply_roles: false,
            sign_in_wait: Duration::from_secs(60),
            webhook_secret: None,
            webhook_secret_file: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LuccaDefaults {
    pub legal_entity_id: Option<i64>,
    pub role_principal_id: Option<i64>,
    pub culture_id: Option<i64>,
    pub department_id: Option<i64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryConfig {
    pub users: Vec<DirectoryUser>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DirectoryUser {
    /// Stable subject identifier; defaults to the lower-cased email.
    pub subject: Option<String>,
    pub email: String,
    pub login: Option<String>,
    pub password: Option<Secret>,
    pub password_hash: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub employee_number: Option<String>,
    pub department: Option<String>,
    pub manager_email: Option<String>,
    pub job_title: Option<String>,
    pub groups: Vec<String>,
    pub disabled: bool,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RoleMappingRow {
    pub group: String,
    pub role: String,
    #[serde(default)]
    pub module: Option<String>,
    /// The Lucca role this row grants (with `[lucca] apply_roles`), by id…
    #[serde(default)]
    pub lucca_role_id: Option<i64>,
    /// …or by name, resolved through Lucca's roles API.
    #[serde(default)]
    pub lucca_role: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UnmappedGroups {
    /// Groups with no row in the table are not sent.
    #[default]
    Drop,
    /// Groups with no row are sent as they are, after the mapped roles.
    PassThrough,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClaimsConfig {
    pub unmapped_groups: UnmappedGroups,
    /// Roles everyone who signs in gets, before the mapped ones.
    pub default_roles: Vec<String>,
    /// Most roles sent in one token or assertion; beyond it the list is cut and the cut reported.
    pub max_roles: usize,
    /// Also send the roles per Lucca module under this claim/attribute name (e.g. `lucca_roles`
    /// → `{"figgo": ["validateur_n1"]}`); unset = not sent.
    pub module_roles_claim: Option<String>,
}

impl Default for ClaimsConfig {
    fn default() -> Self {
        ClaimsConfig {
            unmapped_groups: UnmappedGroups::Drop,
            default_roles: Vec::new(),
            max_roles: 100,
            module_roles_claim: None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamConfig {
    pub name: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub client_secret_file: Option<PathBuf>,
    pub scopes: Vec<String>,
    pub email_claim: Option<String>,
    pub given_name_claim: Option<String>,
    pub family_name_claim: Option<String>,
    pub groups_claim: Option<String>,
    pub department_claim: Option<String>,
    pub manager_email_claim: Option<String>,
    pub employee_number_claim: Option<String>,
    pub allowed_email_domains: Vec<String>,
    /// Refuse people whose `email_verified` is not true (default true; Entra ID sends no such
    /// claim, so set it to false there and restrict `allowed_email_domains` instead).
    pub require_email_verified: Option<bool>,
    /// Also read claims from the upstream's userinfo endpoint (for IdPs that keep the ID token thin).
    pub use_userinfo: bool,
    /// Groups assumed when the upstream reports a group overage (Entra's `_claim_names` /
    /// `hasgroups` instead of `groups`): empty = no groups, e.g. ["corp-employees"] for a default role.
    pub groups_overage_fallback: Vec<String>,
}

/// `[migrations]`: batch SSO migrations (`POST /admin/migrations`, `passerelle migrate`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MigrationsConfig {
    /// Largest upload accepted, in bytes (5 MiB: about 50,000 people with every column).
    pub max_upload_bytes: usize,
    /// Most people in one file.
    pub max_rows: usize,
    /// Email each migrated person (through `[smtp]`) unless the request says `notify=false`.
    pub notify_people: bool,
}

impl Default for MigrationsConfig {
    fn default() -> Self {
        MigrationsConfig {
            max_upload_bytes: 5 * 1024 * 1024,
            max_rows: 50_000,
            notify_people: false,
        }
    }
}

/// `[smtp]`: the relay that sends the migration emails. Unset `host`: no email is sent.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: Option<String>,
    pub port: u16,
    /// The sender, e.g. `"IT <it@acme.test>"`.
    pub from: Option<String>,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub password_file: Option<PathBuf>,
    /// Upgrade the connection with STARTTLS (required when true); false speaks plain SMTP,
    /// for a relay on the same host or network only.
    pub starttls: bool,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        SmtpConfig {
            host: None,
            port: 587,
            from: None,
            username: None,
            password: None,
            password_file: None,
            starttls: true,
            timeout: Duration::from_secs(10),
        }
    }
}

impl Config {
    pub fn listen_addr(&self) -> Result<SocketAddr, String> {
        self.server
            .listen
            .parse()
            .map_err(|e| format!("`{}` is not an address:port ({e})", self.server.listen))
    }
}
