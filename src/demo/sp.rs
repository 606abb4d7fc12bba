//! The demo SAML service provider: sends an AuthnRequest (HTTP-Redirect binding) to this very
//! server, and at its ACS verifies the Response with samael's `ServiceProvider` against our
//! published metadata, then shows the NameID and attributes — what Lucca would receive.

use axum::extract::State;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use chrono::{SecondsFormat, Utc};
use samael::metadata::EntityDescriptor;
use samael::service_provider::ServiceProviderBuilder;
use serde::Deserialize;
use tower_sessions::Session;

use super::DemoState;
use crate::saml::{encode_redirect, MessageKind};
use crate::web::{Message, PageError};

const SESSION_KEY: &str = "demo_sp_request";

pub fn entity_id(public_url: &str) -> String {
    format!("{}/demo/saml/sp", public_url.trim_end_matches('/'))
}

pub fn acs_url(public_url: &str) -> String {
    format!("{}/demo/saml/acs", public_url.trim_end_matches('/'))
}

/// `GET /demo/saml/start`: an unsigned AuthnRequest (the demo SP is registered with
/// `require_signed_requests = false`), sent with the Redirect binding.
pub async fn start(
    State(state): State<DemoState>,
    session: Session,
) -> Result<Response, PageError> {
    let id = crate::saml::new_id().map_err(|e| PageError::internal("demo SP id", e))?;
    let xml = format!(
        r#"<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="{id}" Version="2.0" IssueInstant="{now}" Destination="{sso}" AssertionConsumerServiceURL="{acs}" ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"><saml:Issuer>{entity}</saml:Issuer><samlp:NameIDPolicy Format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress" AllowCreate="true"/></samlp:AuthnRequest>"#,
        now = Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true),
        sso = state.saml_sso_url,
        acs = acs_url(&state.base_url),
        entity = entity_id(&state.base_url),
    );
    session
        .insert(SESSION_KEY, &id)
        .await
        .map_err(|e| PageError::internal("session store", e))?;
    let url = encode_redirect(&state.saml_sso_url, MessageKind::Request, &xml, None, None)
        .map_err(|e| PageError::internal("demo SP request", e))?;
    Ok(Redirect::to(&url).into_response())
}

#[derive(Deserialize)]
pub struct AcsForm {
    #[serde(rename = "SAMLResponse")]
    saml_response: String,
}

/// `POST /demo/saml/acs`: verify the Response as an SP would and show what it says.
pub async fn acs(
    State(state): State<DemoState>,
    session: Session,
    Form(form): Form<AcsForm>,
) -> Result<Response, PageError> {
    let expected: Option<String> = session.remove(SESSION_KEY).await.ok().flatten();
    let certificates: Vec<openssl::x509::X509> = state
        .keys
        .published()
        .iter()
        .map(|k| k.cert.clone())
        .collect();
    let metadata = crate::saml::render_metadata(
        &crate::saml::IdpMetadataParams {
            public_url: &state.base_url,
            want_authn_requests_signed: false,
            certificates: &certificates,
            valid_until: Utc::now() + chrono::Duration::days(1),
            cache_duration: std::time::Duration::from_secs(3600),
        },
        None,
    )
    .map_err(|e| PageError::internal("demo SP metadata", e))?;
    let idp: EntityDescriptor = metadata
        .parse()
        .map_err(|e| PageError::internal("demo SP metadata", e))?;
    let sp = ServiceProviderBuilder::default()
        .entity_id(entity_id(&state.base_url))
        .allow_idp_initiated(true)
        .idp_metadata(idp)
        .acs_url(acs_url(&state.base_url))
        .build()
        .map_err(|e| PageError::internal("demo SP", e))?;
    let ids: Vec<&str> = expected.iter().map(String::as_str).collect();
    let assertion = sp
        .parse_base64_response(&form.saml_response, expected.as_ref().map(|_| &ids[..]))
        .map_err(|e| {
            PageError::bad_request(
                "demo.saml_refused.title",
                Message::new("demo.saml_refused.message").arg("detail", e.to_string()),
            )
        })?;
    let name_id = assertion
        .subject
        .as_ref()
        .and_then(|s| s.name_id.as_ref())
        .map(|n| n.value.clone())
        .unwrap_or_default();
    let mut rows = vec![("NameID".to_string(), name_id)];
    for statement in assertion.attribute_statements.iter().flatten() {
        for a in &statement.attributes {
            let values: Vec<String> = a.values.iter().filter_map(|v| v.value.clone()).collect();
            rows.push((a.name.clone().unwrap_or_default(), values.join(", ")));
        }
    }
    Ok(Html(state.templates.render(
        "demo_callback.html",
        minijinja::context! {
            title => state.templates.message(&"demo.saml.title".into()),
            subtitle => state.templates.message(&"demo.saml.subtitle".into()),
            rows => rows,
        },
    ))
    .into_response())
}
