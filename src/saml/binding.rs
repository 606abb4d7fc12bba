//! The two bindings, both directions.
//!
//! HTTP-Redirect: `SAMLRequest`/`SAMLResponse` = base64(raw DEFLATE(xml)), optionally signed in
//! the query: `Signature` = sign("SAMLRequest=…&RelayState=…&SigAlg=…"), computed over the
//! parameter values *exactly as they appear in the URL*. We therefore keep the raw query and
//! never re-encode (samael's `UrlVerifier` re-encodes, and breaks on lowercase `%2f`).
//!
//! HTTP-POST: the form field is base64(xml); any signature is the XML signature inside.

use std::io::Read;

use base64::alphabet;
use base64::engine::general_purpose::STANDARD as B64;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use flate2::Compression;

use super::dsig::{rsa_sha256, SignError, SigningMaterial, ALG_RSA_SHA256};
use super::ns;

/// Padding is optional in what SPs send; some drop it.
const LENIENT_B64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Binding {
    Redirect,
    Post,
}

impl Binding {
    pub fn from_uri(uri: &str) -> Option<Binding> {
        match uri.trim() {
            ns::BINDING_REDIRECT => Some(Binding::Redirect),
            ns::BINDING_POST => Some(Binding::Post),
            _ => None,
        }
    }
}

/// Which parameter carries the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MessageKind {
    Request,
    Response,
}

impl MessageKind {
    pub fn parameter(self) -> &'static str {
        match self {
            MessageKind::Request => "SAMLRequest",
            MessageKind::Response => "SAMLResponse",
        }
    }
}

/// Size caps for inbound messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BindingLimits {
    /// The decoded (inflated) XML.
    pub max_xml_bytes: usize,
    /// RelayState, in bytes after percent-decoding. The spec's 80 is too strict for real SPs.
    pub max_relay_state: usize,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BindingError {
    #[error("the request has no {0} parameter")]
    MissingMessage(&'static str),
    #[error("the {0} parameter appears more than once")]
    DuplicateParameter(String),
    #[error("the {0} parameter has a malformed %-escape")]
    BadPercentEncoding(&'static str),
    #[error("the {0} parameter is not valid base64")]
    BadBase64(&'static str),
    #[error("the encoded message is {len} bytes, more than the {max}-byte limit")]
    EncodedTooLarge { len: usize, max: usize },
    #[error("the message is not valid DEFLATE data")]
    Inflate,
    #[error("the message inflates to more than {max} bytes (refused as a possible deflate bomb)")]
    InflatedTooLarge { max: usize },
    #[error("the message is not UTF-8 text")]
    NotUtf8,
    #[error("RelayState is {len} bytes, more than the {max}-byte limit")]
    RelayStateTooLong { len: usize, max: usize },
    #[error("the query has a Signature but no SigAlg")]
    SignatureWithoutSigAlg,
    #[error("the query has a SigAlg but no Signature")]
    SigAlgWithoutSignature,
}

/// An inbound message after the binding layer, before any XML parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decoded {
    pub binding: Binding,
    pub xml: String,
    pub relay_state: Option<String>,
    /// Redirect binding only: the query signature, still to be verified.
    pub query_signature: Option<QuerySignature>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuerySignature {
    /// `SAMLRequest=<raw>[&RelayState=<raw>]&SigAlg=<raw>`, the exact signed octets.
    pub signed: String,
    pub sig_alg: String,
    pub signature: Vec<u8>,
}

/// Decode an HTTP-Redirect query string (`raw_query`: everything after `?`, as received).
pub fn decode_redirect(
    raw_query: &str,
    kind: MessageKind,
    limits: &BindingLimits,
) -> Result<Decoded, BindingError> {
    let param = kind.parameter();
    let raw_query = raw_query.strip_prefix('?').unwrap_or(raw_query);
    let (mut message, mut relay, mut sig_alg, mut signature) = (None, None, None, None);
    for pair in raw_query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let slot = match key {
            k if k == param => &mut message,
            "RelayState" => &mut relay,
            "SigAlg" => &mut sig_alg,
            "Signature" => &mut signature,
            _ => continue,
        };
        // A repeated parameter could make us verify one value and use another.
        if slot.replace(value).is_some() {
            return Err(BindingError::DuplicateParameter(key.to_string()));
        }
    }
    let message_raw = message.ok_or(BindingError::MissingMessage(param))?;
    let encoded_cap = encoded_cap(limits);
    if message_raw.len() > encoded_cap {
        return Err(BindingError::EncodedTooLarge {
            len: message_raw.len(),
            max: encoded_cap,
        });
    }
    let message_b64 = percent_decode(message_raw, param)?;
    // A '+' sent unescaped reads as a space; base64 never contains spaces, so put it back.
    let message_b64: String = String::from_utf8_lossy(&message_b64)
        .chars()
        .filter(|c| *c != '\r' && *c != '\n')
        .map(|c| if c == ' ' { '+' } else { c })
        .collect();
    let compressed = LENIENT_B64
        .decode(message_b64.as_bytes())
        .map_err(|_| BindingError::BadBase64(param))?;
    let xml = inflate(&compressed, limits.max_xml_bytes)?;

    let relay_state = match relay {
        Some(raw) => relay_state(
            &String::from_utf8(percent_decode(raw, "RelayState")?)
                .map_err(|_| BindingError::NotUtf8)?,
            limits,
        )?,
        None => None,
    };

    let query_signature = match (sig_alg, signature) {
        (None, None) => None,
        (Some(_), None) => return Err(BindingError::SigAlgWithoutSignature),
        (None, Some(_)) => return Err(BindingError::SignatureWithoutSigAlg),
        (Some(alg_raw), Some(sig_raw)) => {
            // The signed octets use the raw values, in this order, whatever the query order.
            let mut signed = format!("{param}={message_raw}");
            if let Some(relay_raw) = relay {
                signed.push_str("&RelayState=");
                signed.push_str(relay_raw);
            }
            signed.push_str("&SigAlg=");
            signed.push_str(alg_raw);
            let sig_alg = String::from_utf8(percent_decode(alg_raw, "SigAlg")?)
                .map_err(|_| BindingError::NotUtf8)?;
            let sig_b64 = percent_decode(sig_raw, "Signature")?;
            let sig_b64: Vec<u8> = sig_b64
                .into_iter()
                .filter(|b| !b.is_ascii_whitespace() || *b == b' ')
                .map(|b| if b == b' ' { b'+' } else { b })
                .collect();
            let signature = LENIENT_B64
                .decode(&sig_b64)
                .map_err(|_| BindingError::BadBase64("Signature"))?;
            Some(QuerySignature {
                signed,
                sig_alg,
                signature,
            })
        }
    };
    Ok(Decoded {
        binding: Binding::Redirect,
        xml,
        relay_state,
        query_signature,
    })
}

/// Decode an HTTP-POST form field (`message_b64`: the form value, already form-decoded by the
/// web layer) and its RelayState field.
pub fn decode_post(
    message_b64: &str,
    relay: Option<&str>,
    kind: MessageKind,
    limits: &BindingLimits,
) -> Result<Decoded, BindingError> {
    let param = kind.parameter();
    let encoded_cap = encoded_cap(limits);
    if message_b64.len() > encoded_cap {
        return Err(BindingError::EncodedTooLarge {
            len: message_b64.len(),
            max: encoded_cap,
        });
    }
    // Some SPs wrap the base64 at 64/76 columns.
    let compact: Vec<u8> = message_b64
        .bytes()
        .filter(|b| !b.is_ascii_whitespace())
        .collect();
    if compact.is_empty() {
        return Err(BindingError::MissingMessage(param));
    }
    let bytes = LENIENT_B64
        .decode(&compact)
        .map_err(|_| BindingError::BadBase64(param))?;
    if bytes.len() > limits.max_xml_bytes {
        return Err(BindingError::EncodedTooLarge {
            len: bytes.len(),
            max: limits.max_xml_bytes,
        });
    }
    let xml = String::from_utf8(bytes).map_err(|_| BindingError::NotUtf8)?;
    Ok(Decoded {
        binding: Binding::Post,
        xml,
        relay_state: match relay {
            Some(r) => relay_state(r, limits)?,
            None => None,
        },
        query_signature: None,
    })
}

/// Base64 of the deflated message can exceed the XML size only by a small factor.
fn encoded_cap(limits: &BindingLimits) -> usize {
    limits.max_xml_bytes.saturating_mul(2).saturating_add(1024)
}

fn relay_state(value: &str, limits: &BindingLimits) -> Result<Option<String>, BindingError> {
    if value.len() > limits.max_relay_state {
        return Err(BindingError::RelayStateTooLong {
            len: value.len(),
            max: limits.max_relay_state,
        });
    }
    Ok(Some(value.to_string()).filter(|v| !v.is_empty()))
}

/// Raw DEFLATE with a hard cap: reading stops at `max + 1` bytes, so a deflate bomb costs us
/// at most that much memory and time.
fn inflate(compressed: &[u8], max: usize) -> Result<String, BindingError> {
    let mut out = Vec::new();
    DeflateDecoder::new(compressed)
        .take(max as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|_| BindingError::Inflate)?;
    if out.len() > max {
        return Err(BindingError::InflatedTooLarge { max });
    }
    String::from_utf8(out).map_err(|_| BindingError::NotUtf8)
}

/// `application/x-www-form-urlencoded` value decoding (`+` is a space, `%xx` in either case);
/// a malformed escape is an error rather than passed through.
fn percent_decode(raw: &str, param: &'static str) -> Result<Vec<u8>, BindingError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or(BindingError::BadPercentEncoding(param))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Ok(out)
}

fn percent_encode(value: &[u8]) -> String {
    url::form_urlencoded::byte_serialize(value).collect()
}

/// The URL that sends `xml` to `destination` with the HTTP-Redirect binding, signed in the
/// query with RSA-SHA256 when `signing` is given. Put no XML signature in `xml` for this binding.
pub fn encode_redirect(
    destination: &str,
    kind: MessageKind,
    xml: &str,
    relay_state: Option<&str>,
    signing: Option<&SigningMaterial>,
) -> Result<String, SignError> {
    let mut deflater = DeflateEncoder::new(Vec::new(), Compression::default());
    // Writing to a Vec does not fail in practice; still no panic on this path.
    std::io::Write::write_all(&mut deflater, xml.as_bytes()).map_err(|_| SignError::Deflate)?;
    let compressed = deflater.finish().map_err(|_| SignError::Deflate)?;
    let mut query = format!(
        "{}={}",
        kind.parameter(),
        percent_encode(B64.encode(compressed).as_bytes())
    );
    if let Some(relay) = relay_state {
        query.push_str("&RelayState=");
        query.push_str(&percent_encode(relay.as_bytes()));
    }
    if let Some(key) = signing {
        query.push_str("&SigAlg=");
        query.push_str(&percent_encode(ALG_RSA_SHA256.as_bytes()));
        let signature = rsa_sha256(key, query.as_bytes())?;
        query.push_str("&Signature=");
        query.push_str(&percent_encode(B64.encode(signature).as_bytes()));
    }
    let separator = if destination.contains('?') { '&' } else { '?' };
    Ok(format!("{destination}{separator}{query}"))
}

/// The value of the `SAMLRequest`/`SAMLResponse` form field for the HTTP-POST binding.
pub fn encode_post(xml: &str) -> String {
    B64.encode(xml.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::saml::dsig::{verify_detached, ALG_RSA_SHA1};
    use crate::saml::testkit;

    const LIMITS: BindingLimits = BindingLimits {
        max_xml_bytes: 64 * 1024,
        max_relay_state: 1024,
    };

    fn deflate_b64(data: &[u8]) -> String {
        let mut e = DeflateEncoder::new(Vec::new(), Compression::best());
        std::io::Write::write_all(&mut e, data).unwrap();
        B64.encode(e.finish().unwrap())
    }

    #[test]
    fn redirect_round_trip_signed() {
        let sp = testkit::sp_signing();
        let url = encode_redirect(
            "https://idp.test/saml/slo?tenant=a",
            MessageKind::Request,
            "<x>é</x>",
            Some("back to /page?a=1&b=2"),
            Some(&sp.material()),
        )
        .unwrap();
        assert!(url.starts_with("https://idp.test/saml/slo?tenant=a&SAMLRequest="));
        let query = url.split_once("tenant=a&").unwrap().1;
        let decoded = decode_redirect(query, MessageKind::Request, &LIMITS).unwrap();
        assert_eq!(decoded.xml, "<x>é</x>");
        assert_eq!(
            decoded.relay_state.as_deref(),
            Some("back to /page?a=1&b=2")
        );
        let sig = decoded.query_signature.unwrap();
        assert_eq!(sig.sig_alg, ALG_RSA_SHA256);
        assert!(sig.signed.starts_with("SAMLRequest="));
        assert!(sig
            .signed
            .contains("&RelayState=back+to+%2Fpage%3Fa%3D1%26b%3D2&SigAlg="));
        verify_detached(
            sig.signed.as_bytes(),
            &sig.sig_alg,
            &sig.signature,
            std::slice::from_ref(&sp.cert),
            false,
        )
        .unwrap();
    }

    #[test]
    fn signed_octets_follow_spec_order_and_raw_values() {
        let message = deflate_b64(b"<x/>");
        let raw_message = message
            .replace('+', "%2b")
            .replace('/', "%2f")
            .replace('=', "%3d");
        let query = format!(
            "Signature=c2ln&SigAlg=http%3a%2f%2fwww.w3.org%2f2000%2f09%2fxmldsig%23rsa-sha1&RelayState=r%2fs&SAMLRequest={raw_message}&other=1"
        );
        let d = decode_redirect(&query, MessageKind::Request, &LIMITS).unwrap();
        let sig = d.query_signature.unwrap();
        assert_eq!(
            sig.signed,
            format!("SAMLRequest={raw_message}&RelayState=r%2fs&SigAlg=http%3a%2f%2fwww.w3.org%2f2000%2f09%2fxmldsig%23rsa-sha1")
        );
        assert_eq!(sig.sig_alg, ALG_RSA_SHA1);
        assert_eq!(sig.signature, b"sig");
        assert_eq!(d.relay_state.as_deref(), Some("r/s"));
    }

    #[test]
    fn redirect_refusals() {
        let message = deflate_b64(b"<x/>");
        let cases: Vec<(String, BindingError)> = vec![
            (
                "RelayState=x".into(),
                BindingError::MissingMessage("SAMLRequest"),
            ),
            (
                format!("SAMLRequest={message}&SAMLRequest={message}"),
                BindingError::DuplicateParameter("SAMLRequest".into()),
            ),
            (
                format!("SAMLRequest={message}&SigAlg=x"),
                BindingError::SigAlgWithoutSignature,
            ),
            (
                format!("SAMLRequest={message}&Signature=x"),
                BindingError::SignatureWithoutSigAlg,
            ),
            (
                "SAMLRequest=%zz".into(),
                BindingError::BadPercentEncoding("SAMLRequest"),
            ),
            (
                "SAMLRequest=!!!".into(),
                BindingError::BadBase64("SAMLRequest"),
            ),
            (
                format!("SAMLRequest={}", B64.encode(b"not deflate at all, really")),
                BindingError::Inflate,
            ),
            (
                format!("SAMLRequest={message}&RelayState={}", "a".repeat(1025)),
                BindingError::RelayStateTooLong {
                    len: 1025,
                    max: 1024,
                },
            ),
        ];
        for (query, expected) in cases {
            assert_eq!(
                decode_redirect(&query, MessageKind::Request, &LIMITS),
                Err(expected),
                "{query}"
            );
        }
    }

    #[test]
    fn deflate_bomb_is_refused_cleanly() {
        // 50 MB of spaces deflate to about 50 KB.
        let bomb = deflate_b64(&vec![b' '; 50 * 1024 * 1024]);
        assert!(bomb.len() < 100 * 1024);
        let limits = BindingLimits {
            max_xml_bytes: 64 * 1024,
            max_relay_state: 1024,
        };
        let query = format!("SAMLRequest={}", percent_encode(bomb.as_bytes()));
        assert_eq!(
            decode_redirect(&query, MessageKind::Request, &limits),
            Err(BindingError::InflatedTooLarge { max: 64 * 1024 })
        );
    }

    #[test]
    fn post_decoding() {
        let b64 = encode_post("<x>é</x>");
        let wrapped = format!("{}\r\n{}", &b64[..4], &b64[4..]);
        let d = decode_post(&wrapped, Some(""), MessageKind::Request, &LIMITS).unwrap();
        assert_eq!(d.xml, "<x>é</x>");
        assert_eq!(d.relay_state, None);
        assert_eq!(
            decode_post("", None, MessageKind::Request, &LIMITS),
            Err(BindingError::MissingMessage("SAMLRequest"))
        );
        assert_eq!(
            decode_post("@@@", None, MessageKind::Request, &LIMITS),
            Err(BindingError::BadBase64("SAMLRequest"))
        );
        let small = BindingLimits {
            max_xml_bytes: 4,
            max_relay_state: 8,
        };
        assert!(matches!(
            decode_post(&b64, None, MessageKind::Request, &small),
            Err(BindingError::EncodedTooLarge { .. })
        ));
    }
}
