//! A deliberately misbehaving OpenID provider for bridge-mode refusals: it signs in everyone at
//! once and answers with an ID token whose issuer, signature, nonce and claims the test chooses.

use std::sync::{Arc, Mutex};

use axum::extract::{Form, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Rsa;
use serde_json::{json, Value};

#[derive(Clone, Default)]
pub struct Knobs {
    /// Issuer written in discovery and the token (None = the server's own URL).
    pub issuer: Option<String>,
    /// Sign with a key that is not in the JWKS.
    pub foreign_key: bool,
    /// Put another nonce in the ID token.
    pub wrong_nonce: bool,
    /// Answer the authorization request with `error=access_denied`.
    pub deny: bool,
    /// Claims added to the ID token (email, email_verified, groups…).
    pub claims: Value,
}

struct Inner {
    base: String,
    key: PKey<Private>,
    other_key: PKey<Private>,
    knobs: Mutex<Knobs>,
    nonce: Mutex<Option<String>>,
}

#[derive(Clone)]
pub struct FakeIdp(Arc<Inner>);

impl FakeIdp {
    pub fn base(&self) -> &str {
        &self.0.base
    }
    pub fn set(&self, knobs: Knobs) {
        *self.0.knobs.lock().unwrap() = knobs;
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub async fn start() -> FakeIdp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let other_key = PKey::from_rsa(Rsa::generate(2048).unwrap()).unwrap();
    let idp = FakeIdp(Arc::new(Inner {
        base,
        key,
        other_key,
        knobs: Mutex::new(Knobs::default()),
        nonce: Mutex::new(None),
    }));
    let app = Router::new()
        .route("/.well-known/openid-configuration", get(discovery))
        .route("/jwks", get(jwks))
        .route("/authorize", get(authorize))
        .route("/token", post(token))
        .with_state(idp.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    idp
}

fn issuer(idp: &FakeIdp) -> String {
    idp.0
        .knobs
        .lock()
        .unwrap()
        .issuer
        .clone()
        .unwrap_or_else(|| idp.0.base.clone())
}

async fn discovery(State(idp): State<FakeIdp>) -> Json<Value> {
    let b = &idp.0.base;
    Json(json!({
        "issuer": issuer(&idp),
        "authorization_endpoint": format!("{b}/authorize"),
        "token_endpoint": format!("{b}/token"),
        "jwks_uri": format!("{b}/jwks"),
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }))
}

async fn jwks(State(idp): State<FakeIdp>) -> Json<Value> {
    let rsa = idp.0.key.rsa().unwrap();
    Json(
        json!({"keys": [{"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "k1", "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec())}]}),
    )
}

async fn authorize(
    State(idp): State<FakeIdp>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Response {
    *idp.0.nonce.lock().unwrap() = q.get("nonce").cloned();
    let mut url = url::Url::parse(&q["redirect_uri"]).unwrap();
    if idp.0.knobs.lock().unwrap().deny {
        url.query_pairs_mut()
            .append_pair("error", "access_denied")
            .append_pair("error_description", "the user said no");
    } else {
        url.query_pairs_mut().append_pair("code", "fake-code");
    }
    url.query_pairs_mut().append_pair("state", &q["state"]);
    Redirect::to(url.as_str()).into_response()
}

async fn token(
    State(idp): State<FakeIdp>,
    Form(f): Form<std::collections::HashMap<String, String>>,
) -> Json<Value> {
    let knobs = idp.0.knobs.lock().unwrap().clone();
    let now = chrono::Utc::now().timestamp();
    let nonce = if knobs.wrong_nonce {
        Some("not-the-nonce".to_string())
    } else {
        idp.0.nonce.lock().unwrap().clone()
    };
    let mut claims = json!({
        "iss": issuer(&idp), "sub": "fake-subject-1", "aud": f.get("client_id").cloned().unwrap_or_else(|| "bridge".into()),
        "iat": now, "exp": now + 300, "nonce": nonce,
    });
    if let (Value::Object(m), Value::Object(extra)) = (&mut claims, knobs.claims) {
        m.extend(extra);
    }
    let header = b64(br#"{"alg":"RS256","typ":"JWT","kid":"k1"}"#);
    let payload = b64(claims.to_string().as_bytes());
    let key = if knobs.foreign_key {
        &idp.0.other_key
    } else {
        &idp.0.key
    };
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).unwrap();
    signer
        .update(format!("{header}.{payload}").as_bytes())
        .unwrap();
    let sig = b64(&signer.sign_to_vec().unwrap());
    Json(
        json!({"access_token": "fake-access", "token_type": "Bearer", "expires_in": 300, "id_token": format!("{header}.{payload}.{sig}")}),
    )
}
