//! `GET /saml/metadata[?download=1]` and `GET /saml/metadata.xml`: our IdP metadata with the
//! current and next certificates (signed when `[saml] sign_metadata`).

use axum::extract::{Query, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use serde::Deserialize;

use super::SamlState;
use crate::saml::{render_metadata, IdpMetadataParams, SigningMaterial};
use crate::web::PageError;

const METADATA_CONTENT_TYPE: &str = "application/samlmetadata+xml";
const METADATA_FILENAME: &str = "attachment; filename=\"passerelle-idp-metadata.xml\"";

#[derive(Deserialize)]
pub struct MetadataQuery {
    #[serde(default)]
    download: Option<String>,
}

/// `GET /saml/metadata[?download=1]`.
pub async fn metadata(State(state): State<SamlState>, Query(q): Query<MetadataQuery>) -> Response {
    let download = q
        .download
        .as_deref()
        .is_some_and(|d| !matches!(d, "" | "0" | "false"));
    metadata_response(&state, download)
}

/// `GET /saml/metadata.xml`: the same, as a file to upload.
pub async fn metadata_download(State(state): State<SamlState>) -> Response {
    metadata_response(&state, true)
}

fn metadata_response(state: &SamlState, download: bool) -> Response {
    let saml = state.idp.settings();
    let certificates: Vec<openssl::x509::X509> = state
        .keys
        .published()
        .iter()
        .map(|k| k.cert.clone())
        .collect();
    let signer = state.keys.signer();
    let signing = SigningMaterial::new(&signer.pkey, &signer.cert);
    let params = IdpMetadataParams {
        public_url: &state.public_url,
        want_authn_requests_signed: saml.want_authn_requests_signed,
        certificates: &certificates,
        valid_until: Utc::now() + chrono_duration(saml.metadata_valid_for),
        cache_duration: saml.metadata_cache_duration,
    };
    let xml = match render_metadata(&params, saml.sign_metadata.then_some(&signing)) {
        Ok(xml) => xml,
        Err(e) => return PageError::internal("rendering SAML metadata", e).into_response(),
    };
    let mut response = xml.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(METADATA_CONTENT_TYPE),
    );
    // SPs poll it; a short public cache is harmless (it carries no secret) and spares us.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    if download {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static(METADATA_FILENAME),
        );
    }
    response
}

fn chrono_duration(d: std::time::Duration) -> chrono::Duration {
    chrono::Duration::from_std(d).unwrap_or(chrono::Duration::days(7))
}
