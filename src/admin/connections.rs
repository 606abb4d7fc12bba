//! The connections page: the OIDC clients and SAML SPs as configured and as loaded, our
//! discovery and metadata URLs, and downloads of our metadata and signing certificate.

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use openssl::x509::X509;
use serde_json::{json, Value};

use super::{render, when, ConsoleAdmin, ConsoleState};
use crate::web::PageError;

fn certificate(cert: &X509) -> Value {
    let digest = cert
        .digest(openssl::hash::MessageDigest::sha256())
        .map(|d| hex::encode(d).to_uppercase())
        .unwrap_or_default();
    let expires = cert.not_after().to_string();
    let days_left = openssl::asn1::Asn1Time::days_from_now(0)
        .ok()
        .and_then(|now| now.diff(cert.not_after()).ok())
        .map(|d| d.days);
    let subject = cert
        .subject_name()
        .entries()
        .filter_map(|e| e.data().to_string().ok())
        .collect::<Vec<_>>()
        .join(", ");
    json!({
        "subject": subject,
        "expires": expires,
        "days_left": days_left,
        "expired": days_left.is_some_and(|d| d < 0),
        "sha256": digest,
    })
}

/// `GET /admin/console/connections`.
pub async fn page(admin: ConsoleAdmin, State(st): State<ConsoleState>) -> Response {
    let clients: Vec<Value> = st
        .config
        .oidc
        .clients
        .iter()
        .map(|c| {
            let loaded = st.oidc.clients.get(&c.client_id);
            json!({
                "client_id": c.client_id,
                "name": loaded.map(|l| l.name.clone()).unwrap_or_else(|| c.client_id.clone()),
                "public": loaded.is_some_and(|l| l.is_public()),
                "pkce": loaded.is_some_and(|l| l.require_pkce || l.is_public()),
                "redirect_uris": c.redirect_uris,
                "scopes": c.allowed_scopes.join(" "),
                "refresh": serde_json::to_value(c.refresh_tokens).unwrap_or_default(),
            })
        })
        .collect();
    let registry = st.saml.registry();
    let sps: Vec<Value> = st
        .config
        .saml
        .service_providers
        .iter()
        .map(|c| {
            let sp = c
                .entity_id
                .as_deref()
                .and_then(|id| registry.get(id))
                .or_else(|| {
                    // Given by metadata only: find it by its configured name or ACS.
                    registry.iter().find(|sp| {
                        (c.name.is_some() && sp.settings.name == c.name)
                            || c.acs_url.as_deref().is_some_and(|a| sp.acs.iter().any(|e| e.url == a))
                    }).cloned()
                });
            let source = match (&c.metadata_url, &c.metadata_file) {
                (Some(url), _) => json!({"kind": "url", "value": url}),
                (None, Some(file)) => json!({"kind": "file", "value": file.display().to_string()}),
                (None, None) => json!({"kind": "inline", "value": ""}),
            };
            json!({
                "name": c.name.clone().or_else(|| sp.as_ref().and_then(|s| s.settings.name.clone())).unwrap_or_default(),
                "entity_id": sp.as_ref().map(|s| s.entity_id.clone()).or_else(|| c.entity_id.clone()).unwrap_or_default(),
                "source": source,
                "from_url": c.metadata_url.is_some(),
                "acs": sp.as_ref().map(|s| s.acs.iter().map(|a| a.url.clone()).collect::<Vec<_>>()).unwrap_or_default(),
                "sign_response": c.sign_response,
                "sign_assertion": c.sign_assertion,
                "encrypt_assertion": c.encrypt_assertion,
                "signed_requests": sp.as_ref().is_some_and(|s| s.authn_requests_signed),
                "signing_certs": sp.as_ref().map(|s| s.signing_certs.iter().map(certificate).collect::<Vec<_>>()).unwrap_or_default(),
                "encryption_cert": sp.as_ref().and_then(|s| s.encryption_cert.as_ref().map(certificate)),
            })
        })
        .collect();
    let signer = st.keys.signer();
    render(
        &st,
        &admin,
        "admin/connections.html",
        "connections",
        minijinja::context! {
            discovery_url => st.url("/.well-known/openid-configuration"),
            issuer => st.base_url.to_string(),
            jwks_url => st.url("/oidc/jwks"),
            metadata_url => st.saml.urls.entity_id.clone(),
            sso_url => st.saml.urls.sso.clone(),
            our_certificate => certificate(&signer.cert),
            clients => clients,
            sps => sps,
            metadata_refreshed => when(st.saml.refreshed_at()),
            metadata_refresh_every => humantime::format_duration(st.config.saml.metadata_refresh).to_string(),
        },
    )
}

/// `GET /admin/console/connections/certificate.pem`: the current signing certificate.
pub async fn certificate_pem(
    _admin: ConsoleAdmin,
    State(st): State<ConsoleState>,
) -> Result<Response, PageError> {
    let signer = st.keys.signer();
    let pem = signer
        .cert
        .to_pem()
        .map_err(|e| PageError::internal("encoding the certificate", e))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/x-pem-file"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"passerelle-signing.pem\"",
            ),
        ],
        pem,
    )
        .into_response())
}
