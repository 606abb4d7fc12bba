//! The claims a token carries, per granted scope: the ID token and userinfo both answer with
//! [`scoped_claims`], so they always agree.

use serde_json::{json, Map, Value};

use super::Client;
use crate::identity::Claims;

/// Claims released for `scopes` (used by the ID token and userinfo alike, so they agree).
/// `module_roles_claim` (from `[claims]`) also sends the roles per Lucca module; the client's
/// `release_claims`, when set, keeps only the claims it lists.
pub fn scoped_claims(
    claims: &Claims,
    scopes: &[String],
    client: &Client,
    module_roles_claim: Option<&str>,
) -> Map<String, Value> {
    let has = |s: &str| scopes.iter().any(|x| x == s);
    let mut m = Map::new();
    let mut put = |k: &str, v: &Option<String>| {
        if let Some(v) = v {
            m.insert(k.to_string(), Value::String(v.clone()));
        }
    };
    if has("profile") {
        put("given_name", &claims.given_name);
        put("family_name", &claims.family_name);
        let name = [claims.given_name.as_deref(), claims.family_name.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(" ");
        if !name.is_empty() {
            put("name", &Some(name));
        }
        put(
            "preferred_username",
            &claims.login.clone().or_else(|| Some(claims.email.clone())),
        );
        put("employee_number", &claims.employee_number);
        put("department", &claims.department);
        put("manager_email", &claims.manager_email);
        put("job_title", &claims.job_title);
    }
    if has("email") {
        m.insert("email".into(), Value::String(claims.email.clone()));
        m.insert("email_verified".into(), Value::Bool(claims.email_verified));
    }
    if has("groups") {
        m.insert(client.groups_claim.clone(), json!(claims.roles));
        if let Some(name) = module_roles_claim.filter(|n| !n.is_empty()) {
            m.insert(name.to_string(), json!(claims.roles_by_module));
        }
    }
    if !client.release_claims.is_empty() {
        m.retain(|k, _| client.release_claims.iter().any(|r| r == k));
    }
    m
}
