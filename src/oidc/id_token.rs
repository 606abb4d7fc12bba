//! The claims a token carries, per granted scope, and the signed ID token.

use base64::Engine;
use serde_json::{json, Map, Value};

use super::Client;
use crate::identity::Claims;
use crate::keys::{KeyError, Keys};

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

/// `at_hash`: the left half of SHA-256 of the access token, base64url (OIDC Core §3.1.3.6).
pub fn at_hash(access_token: &str) -> String {
    let digest = openssl::sha::sha256(access_token.as_bytes());
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&digest[..16])
}

pub struct IdTokenInput<'a> {
    pub issuer: &'a str,
    pub client: &'a Client,
    pub claims: &'a Claims,
    pub scopes: &'a [String],
    pub nonce: Option<&'a str>,
    pub auth_time: i64,
    pub amr: &'a [String],
    pub sid: Option<&'a str>,
    pub access_token: &'a str,
    pub ttl_secs: i64,
    pub module_roles_claim: Option<&'a str>,
}

pub fn issue_id_token(keys: &Keys, input: IdTokenInput<'_>) -> Result<String, KeyError> {
    let now = crate::store::now();
    let mut body = scoped_claims(
        input.claims,
        input.scopes,
        input.client,
        input.module_roles_claim,
    );
    body.insert("iss".into(), json!(input.issuer));
    body.insert("sub".into(), json!(input.claims.subject));
    body.insert("aud".into(), json!(input.client.id));
    body.insert("azp".into(), json!(input.client.id));
    body.insert("iat".into(), json!(now));
    body.insert("exp".into(), json!(now + input.ttl_secs));
    body.insert("auth_time".into(), json!(input.auth_time));
    body.insert("amr".into(), json!(input.amr));
    body.insert("at_hash".into(), json!(at_hash(input.access_token)));
    if let Some(nonce) = input.nonce {
        body.insert("nonce".into(), json!(nonce));
    }
    if let Some(sid) = input.sid {
        body.insert("sid".into(), json!(sid));
    }
    keys.signer().sign_jwt(&Value::Object(body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_hash_matches_the_spec_example() {
        // OIDC Core A.3/A.4 example: access token "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
