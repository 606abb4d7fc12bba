//! The keys page: current, staged and retiring signing keys with their dates; rotate.

use axum::extract::State;
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;
use serde_json::json;

use super::{audit_action, auth, check_csrf, render, ConsoleAdmin, ConsoleState};
use crate::web::PageError;

#[derive(Deserialize, Default)]
pub struct KeysQuery {
    #[serde(default)]
    done: String,
}

/// `GET /admin/console/keys`.
pub async fn page(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    axum::extract::Query(q): axum::extract::Query<KeysQuery>,
) -> Response {
    let keys: Vec<serde_json::Value> = st
        .keys
        .status()
        .into_iter()
        .map(|k| {
            json!({
                "kid": k.kid,
                "state": k.state,
                "fingerprint": k.fingerprint_sha256,
                "signs_from": k.signs_from.format("%Y-%m-%d %H:%M UTC").to_string(),
                "not_after": k.not_after.format("%Y-%m-%d").to_string(),
            })
        })
        .collect();
    render(
        &st,
        &admin,
        "admin/keys.html",
        "keys",
        minijinja::context! {
            keys => keys,
            done => q.done,
            rotation_delay => humantime::format_duration(st.config.keys.rotation_delay).to_string(),
        },
    )
}

#[derive(Deserialize)]
pub struct RotateForm {
    #[serde(default)]
    csrf_token: String,
}

/// `POST /admin/console/keys/rotate`: stage the next key (published now, signing after
/// `[keys] rotation_delay`).
pub async fn rotate(
    admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
    Form(form): Form<RotateForm>,
) -> Result<Response, Response> {
    check_csrf(&admin, &form.csrf_token)
        .await
        .map_err(IntoResponse::into_response)?;
    auth::require_fresh(&st, &admin, "/admin/console/keys").await?;
    // The key ring generates the key off the async workers itself.
    let outcome = st.keys.rotate().await;
    let done = match outcome {
        Ok(staged) => {
            tracing::info!(kid = %staged.kid, signs_from = %staged.signs_from, "signing key rotation staged (console)");
            audit_action(
                &st,
                &admin,
                "keys.rotate",
                "staged",
                json!({"kid": staged.kid, "signs_from": staged.signs_from}),
            )
            .await;
            "staged"
        }
        // Pending here, or staged by another node at the same moment.
        Err(
            crate::keys::KeyError::RotationPending { .. } | crate::keys::KeyError::ConcurrentChange,
        ) => "pending",
        Err(e) => return Err(PageError::internal("key rotation", e).into_response()),
    };
    Ok(Redirect::to(&format!("/admin/console/keys?done={done}")).into_response())
}
