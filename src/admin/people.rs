//! The people page: find a person by email or by part of an email or name; their identity, groups and mapped roles (the
//! claims preview), Lucca link, grants and live tokens; "sign out everywhere".

use std::collections::BTreeSet;

use axum::extract::{Query, State};
use axum::response::{Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::{json, Value};

use super::{audit_action, auth, check_csrf, render, when, ConsoleAdmin, ConsoleState};
use crate::web::PageError;

/// The longest email looked up.
const MAX_EMAIL_BYTES: usize = 320;
/// The most people a search lists (refine the search past that).
const MAX_MATCHES: usize = 20;
/// The shortest search: one letter would list everyone.
const MIN_SEARCH_CHARS: usize = 2;

#[derive(Debug, Default, Deserialize)]
pub struct PeopleQuery {
    #[serde(default)]
    pub email: String,
    /// The claims preview's target: `client:ID`, `sp:ENTITY_ID`, or empty for all.
    #[serde(default)]
    pub target: String,
    /// What the last action did (shown once, after a redirect).
    #[serde(default)]
    pub done: String,
}

/// Everything the store knows of the subjects behind an email.
async fn records(
    st: &ConsoleState,
    email: &str,
    preview_subject: Option<&str>,
) -> Result<Value, PageError> {
    let mut subjects: BTreeSet<String> = st
        .store
        .person_revocations()
        .subjects_with_email(email)
        .await?
        .into_iter()
        .collect();
    if let Some(local) = st.login.directory().by_name(email) {
        subjects.insert(local.subject);
    }
    subjects.extend(preview_subject.map(str::to_string));
    let clients = &st.oidc.clients;
    let mut people = Vec::new();
    for subject in &subjects {
        let link = st.store.lucca_links().get(subject).await?;
        let grants = st.store.grant_activity().grant_activity(subject).await?;
        let tokens = st.store.person_revocations().live_tokens(subject).await?;
        let revoked_at = st.store.person_revocations().revoked_at(subject).await?;
        people.push(json!({
            "subject": subject,
            "lucca": link.map(|l| json!({
                "id": l.lucca_id,
                "status": l.status,
                "checked_at": when(l.checked_at),
            })),
            "grants": grants.iter().map(|g| json!({
                "client": clients.get(&g.client_id).map(|c| c.name.clone()).unwrap_or_else(|| g.client_id.clone()),
                "client_id": g.client_id,
                "scope": g.scope,
                "since": when(g.created_at),
                "last_used": when(g.last_used_at),
                "expires": when(g.expires_at),
            })).collect::<Vec<_>>(),
            "access_tokens": tokens.access_tokens,
            "refresh_tokens": tokens.refresh_tokens,
            "revoked_at": revoked_at.map(|ms| when(ms / 1000)),
        }));
    }
    Ok(Value::Array(people))
}

/// The people `fragment` may mean: the directory's (by email, login or name) and everyone who
/// signed in (by email), each email once, in order, at most [`MAX_MATCHES`].
async fn search(st: &ConsoleState, fragment: &str) -> Result<Vec<Value>, PageError> {
    let mut found: std::collections::BTreeMap<String, Option<String>> = st
        .login
        .directory()
        .matching(fragment, MAX_MATCHES)
        .into_iter()
        .map(|p| {
            let name = [p.given_name, p.family_name]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(" ");
            (p.email, (!name.is_empty()).then_some(name))
        })
        .collect();
    let signed_in = st
        .store
        .person_revocations()
        .emails_containing(fragment, MAX_MATCHES as u32)
        .await?;
    for email in signed_in {
        found.entry(email).or_insert(None);
    }
    Ok(found
        .into_iter()
        .take(MAX_MATCHES)
        .map(|(email, name)| {
            let href = format!(
                "/admin/console/people?{}",
                serde_urlencoded::to_string([("email", &email)]).unwrap_or_default()
            );
            json!({"email": email, "name": name, "href": href})
        })
        .collect())
}

/// `GET /admin/console/people?email=…[&target=…]`: `email` is an email, or part of one or of a
/// name to search for.
pub async fn page(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Query(q): Query<PeopleQuery>,
) -> Result<Response, PageError> {
    let email = q.email.trim();
    let mut error: Option<Value> = None;
    let mut preview = Value::Null;
    let mut people = Value::Array(Vec::new());
    let mut matches: Vec<Value> = Vec::new();
    if email.len() > MAX_EMAIL_BYTES {
        error = Some(json!({"key": "admin.people.not_an_email", "email": format!("{email:.80}")}));
    } else if !email.is_empty() && !email.contains('@') {
        // Part of a name or an email: the people it may mean, each a link to their page.
        if email.chars().count() < MIN_SEARCH_CHARS {
            error = Some(json!({"key": "admin.people.too_short", "email": email}));
        } else {
            matches = search(&st, email).await?;
            if matches.is_empty() {
                error = Some(json!({"key": "admin.people.no_match", "email": email}));
            }
        }
    } else if !email.is_empty() {
        let (sp, client_id) = match q.target.split_once(':') {
            Some(("sp", id)) => (Some(id.to_string()), None),
            Some(("client", id)) => (None, Some(id.to_string())),
            _ => (None, None),
        };
        match st.ops.preview(email, sp, client_id).await {
            Ok(p) => preview = p,
            // Said below when nothing else is known of the person either.
            Err(e) => tracing::debug!(error = %e, "no claims preview"),
        }
        let subject = preview["identity"]["subject"].as_str();
        people = records(&st, email, subject).await?;
        if people.as_array().is_some_and(Vec::is_empty) && preview.is_null() {
            // Not this exact email: perhaps one like it (a typo in the domain, a second address).
            matches = search(&st, email).await?;
            error = Some(json!({"key": "admin.people.nobody", "email": email}));
        }
    }
    let targets: Vec<Value> = st
        .config
        .oidc
        .clients
        .iter()
        .map(|c| json!({"value": format!("client:{}", c.client_id), "label": c.name.clone().unwrap_or_else(|| c.client_id.clone())}))
        .chain(st.saml.registry().iter().map(|sp| json!({"value": format!("sp:{}", sp.entity_id), "label": sp.entity_id})))
        .collect();
    let preview_text = if preview.is_null() {
        String::new()
    } else {
        serde_json::to_string_pretty(
            &json!({"oidc": preview["oidc"], "saml": preview["saml"], "jit": preview["jit"]}),
        )
        .unwrap_or_default()
    };
    Ok(render(
        &st,
        &admin,
        "admin/people.html",
        "people",
        minijinja::context! {
            email => email,
            target => q.target,
            targets => targets,
            error => error,
            done => done_notice(&q.done),
            identity => minijinja::Value::from_serialize(&preview["identity"]),
            roles => minijinja::Value::from_serialize(&preview["roles"]),
            groups => minijinja::Value::from_serialize(&preview["groups"]),
            preview => preview_text,
            people => minijinja::Value::from_serialize(&people),
            matches => matches,
        },
    ))
}

/// The notice after a revoke: `done=GRANTS,ACCESS,REFRESH` or `done=nobody`.
fn done_notice(done: &str) -> Value {
    if done == "nobody" {
        return json!({"nobody": true});
    }
    let n: Vec<u64> = done.split(',').filter_map(|n| n.parse().ok()).collect();
    match n[..] {
        [grants, access, refresh] => {
            json!({"grants": grants, "access": access, "refresh": refresh})
        }
        _ => Value::Null,
    }
}

#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf_token: String,
    #[serde(default)]
    email: String,
}

/// `POST /admin/console/people/revoke`: sign the person out everywhere.
pub async fn revoke(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Form(form): Form<RevokeForm>,
) -> Result<Response, Response> {
    use axum::response::IntoResponse;
    check_csrf(&admin, &form.csrf_token)
        .await
        .map_err(IntoResponse::into_response)?;
    let email = form.email.trim().to_string();
    let page = format!(
        "/admin/console/people?{}",
        serde_urlencoded::to_string([("email", email.as_str())]).unwrap_or_default()
    );
    auth::require_fresh(&st, &admin, &page).await?;
    if email.is_empty() || email.len() > MAX_EMAIL_BYTES || !email.contains('@') {
        return Err(PageError::bad_request(
            "admin.people.bad_email.title",
            "admin.people.bad_email.message",
        )
        .with_retry("/admin/console/people")
        .into_response());
    }
    let who = format!("{} (console)", admin.who.identity.email);
    let done = match st.ops.revoke_email(&email, &who).await {
        Ok(Some((subjects, summary))) => {
            metrics::counter!("passerelle_revocations_total", "reason" => "admin", "source" => "console").increment(1);
            audit_action(
                &st,
                &admin,
                "admin.revoke",
                "revoked",
                json!({"email": email, "subjects": subjects, "revoked": summary}),
            )
            .await;
            format!(
                "{},{},{}",
                summary.grants, summary.access_tokens, summary.refresh_tokens
            )
        }
        Ok(None) => "nobody".to_string(),
        Err(e) => return Err(PageError::internal("revoking a person", e).into_response()),
    };
    Ok(Redirect::to(&format!(
        "{page}&{}",
        serde_urlencoded::to_string([("done", done.as_str())]).unwrap_or_default()
    ))
    .into_response())
}
