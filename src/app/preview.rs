//! The claims preview: for one person, the identity, what each group became (and which table
//! row did it, or why it was dropped), and the exact claims each client would receive —
//! before the person ever signs in. Served by `GET /admin/preview` and `passerelle preview`.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{json, Map, Value};

use super::AppState;
use crate::identity::{GroupTrace, Identity};

/// Whose view to preview.
#[derive(Debug, Clone)]
pub enum Target {
    /// Every registered client.
    All,
    Client(String),
    ServiceProvider(String),
}

impl Target {
    pub fn from_params(sp: Option<String>, client_id: Option<String>) -> Result<Target, String> {
        match (
            sp.filter(|s| !s.is_empty()),
            client_id.filter(|s| !s.is_empty()),
        ) {
            (Some(_), Some(_)) => Err("give either sp or client_id, not both".into()),
            (Some(sp), None) => Ok(Target::ServiceProvider(sp)),
            (None, Some(c)) => Ok(Target::Client(c)),
            (None, None) => Ok(Target::All),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PreviewError {
    #[error("no user `{0}` in the directory (nor among people who signed in through an upstream)")]
    UnknownUser(String),
    #[error("no OIDC client `{0}` is registered")]
    UnknownClient(String),
    #[error("no SAML service provider `{0}` is registered")]
    UnknownServiceProvider(String),
}

#[derive(Debug, Serialize)]
pub struct Preview {
    pub identity: Identity,
    /// Each group of the person: the rows that mapped it, or why it was dropped.
    pub groups: Vec<GroupTrace>,
    pub roles: Vec<String>,
    pub roles_by_module: BTreeMap<String, Vec<String>>,
    /// Roles cut by `claims.max_roles` (0 normally).
    pub roles_dropped: usize,
    /// For a bridge-mode person: did their IdP report a group overage at their last sign-in?
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups_overage: Option<bool>,
    /// Per client: the scopes assumed (Lucca asks `openid profile email groups`) and the ID
    /// token claims (userinfo returns the same).
    pub oidc: BTreeMap<String, Value>,
    /// Per SAML SP (entity ID): the NameID and the exact attributes of the Assertion.
    pub saml: BTreeMap<String, Value>,
    /// What JIT would do at this person's sign-in (from read-only Lucca lookups).
    pub jit: Value,
}

pub async fn preview(
    state: &AppState,
    user: &str,
    target: &Target,
) -> Result<Preview, PreviewError> {
    let (identity, groups_overage) = find_identity(state, user)
        .await
        .ok_or_else(|| PreviewError::UnknownUser(user.to_string()))?;
    let mapped = state.pipeline.map(&identity);
    let module_roles_claim = state.pipeline.module_roles_claim();
    let clients: Vec<&crate::oidc::Client> = match target {
        Target::All => state
            .config
            .oidc
            .clients
            .iter()
            .filter_map(|c| state.oidc.provider.clients.get(&c.client_id))
            .collect(),
        Target::Client(id) => vec![state
            .oidc
            .provider
            .clients
            .get(id)
            .ok_or_else(|| PreviewError::UnknownClient(id.clone()))?],
        Target::ServiceProvider(_) => Vec::new(),
    };
    // SAML: the exact NameID and attributes each SP would receive (same Claims as OIDC).
    let registry = state.saml.registry();
    let sps: Vec<std::sync::Arc<crate::saml::ServiceProvider>> = match target {
        Target::All => registry.iter().cloned().collect(),
        Target::Client(_) => Vec::new(),
        Target::ServiceProvider(id) => vec![registry
            .get(id)
            .ok_or_else(|| PreviewError::UnknownServiceProvider(id.clone()))?],
    };
    let mut saml = BTreeMap::new();
    for sp in sps {
        let attributes: Vec<Value> = crate::saml::attributes_from_claims(
            &mapped.claims,
            module_roles_claim.as_deref(),
        )
        .into_iter()
        .map(|a| json!({"name": a.name, "friendly_name": a.friendly_name, "values": a.values}))
        .collect();
        saml.insert(
            sp.entity_id.clone(),
            json!({
                "name_id": crate::saml::name_id_for(&sp, &mapped.claims, state.config.lucca.match_on),
                "name_id_format": sp.settings.name_id_format.uri(),
                "attribute_name_format": sp.settings.attribute_name_format.uri(),
                "attributes": attributes,
            }),
        );
    }
    let mut oidc = BTreeMap::new();
    for client in clients {
        let scopes = client.grantable_scopes("openid profile email groups");
        let mut claims: Map<String, Value> = crate::oidc::scoped_claims(
            &mapped.claims,
            &scopes,
            client,
            module_roles_claim.as_deref(),
        );
        claims.insert("iss".into(), json!(state.oidc.provider.issuer));
        claims.insert("sub".into(), json!(mapped.claims.subject));
        claims.insert("aud".into(), json!(client.id));
        oidc.insert(
            client.id.clone(),
            json!({"scopes": scopes, "id_token_claims": claims}),
        );
    }
    // Read-only lookups: the preview must never create or queue anything.
    let jit = match &state.provisioning {
        Some(jit) => jit.preview(&mapped.claims).await,
        None => json!({
            "mode": state.config.lucca.jit,
            "action": "none",
            "reason": if state.config.lucca.base_url.is_none() {
                "lucca.base_url is not set: Passerelle makes no Lucca calls"
            } else {
                "lucca.jit = \"off\": Passerelle makes no Lucca calls at sign-in"
            },
        }),
    };
    Ok(Preview {
        identity,
        groups: mapped.trace,
        roles: mapped.claims.roles.clone(),
        roles_by_module: mapped.claims.roles_by_module.clone(),
        roles_dropped: mapped.claims.roles_dropped,
        groups_overage,
        oidc,
        saml,
        jit,
    })
}

/// A local user, or else the identity a bridge-mode person last signed in with.
async fn find_identity(state: &AppState, user: &str) -> Option<(Identity, Option<bool>)> {
    if let Some(identity) = state.live().directory.by_name(user) {
        return Some((identity, None));
    }
    let crate::store::UpstreamIdentity {
        identity: json,
        groups_overage: overage,
    } = state
        .store
        .upstream_identities()
        .by_email(user)
        .await
        .ok()??;
    let identity: Identity = serde_json::from_str(&json).ok()?;
    Some((identity, Some(overage)))
}
