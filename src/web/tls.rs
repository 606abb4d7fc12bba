//! Built-in TLS (`[server] tls_cert` and `tls_key`): the certificate chain and its key read and
//! checked (the one rule set `check` and `serve` share), swapped on reload without a restart,
//! and the accept loop that serves the router over TLS 1.2+ (HTTP/1.1 and HTTP/2 by ALPN).
//!
//! Each connection's handshake runs in its own task under a deadline, so a client that
//! connects and says nothing holds only its own connection.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use axum::extract::ConnectInfo;
use tokio::net::TcpListener;
use tokio_rustls::rustls;
use tower::ServiceExt;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// How long a client may take to complete the TLS handshake before its connection is closed.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A certificate that expires within this many days is worth a warning (Let's Encrypt renews
/// 30 days before the end: a certificate this close to it was not renewed).
const EXPIRY_WARNING_DAYS: i32 = 30;

/// Why the certificate chain or key cannot be served. Each names the file and the fix.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {}: {source}", path.display())]
    Read {
        key: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} holds no PEM certificate (a \"-----BEGIN CERTIFICATE-----\" block): give the certificate chain, the server's certificate first", path.display())]
    NoCertificate { path: PathBuf },
    #[error("{} is not a readable certificate chain: {reason}", path.display())]
    BadCertificate { path: PathBuf, reason: String },
    #[error("{} holds no PEM private key (\"BEGIN PRIVATE KEY\" PKCS#8, \"BEGIN RSA PRIVATE KEY\" or \"BEGIN EC PRIVATE KEY\"): {reason}", path.display())]
    NoKey { path: PathBuf, reason: String },
    #[error("{}: the private key cannot sign for TLS: {reason}", path.display())]
    BadKey { path: PathBuf, reason: String },
    #[error("the private key in {} does not belong to the certificate in {} (their public keys differ): give the key the certificate was issued for", key.display(), cert.display())]
    Mismatch { cert: PathBuf, key: PathBuf },
    #[error("the certificate in {} expired on {not_after}: renew it", path.display())]
    Expired { path: PathBuf, not_after: String },
}

impl TlsError {
    /// The configuration key whose file is at fault.
    pub fn key(&self) -> &'static str {
        match self {
            TlsError::Read { key, .. } => key,
            TlsError::NoCertificate { .. }
            | TlsError::BadCertificate { .. }
            | TlsError::Expired { .. } => "server.tls_cert",
            TlsError::NoKey { .. } | TlsError::BadKey { .. } | TlsError::Mismatch { .. } => {
                "server.tls_key"
            }
        }
    }
}

/// A certificate chain and its key, read and checked, ready to serve.
#[derive(Debug, Clone)]
pub struct Certificate {
    key: Arc<CertifiedKey>,
    /// The leaf's subject, for the log line of a reload.
    pub subject: String,
    /// The leaf's end of validity, as OpenSSL prints it (`Mar  1 12:00:00 2027 GMT`).
    pub not_after: String,
    days_left: i32,
}

impl Certificate {
    /// Read `cert` (the PEM chain, the leaf first) and `key` (its PEM private key) and check
    /// that they belong together and that the leaf has not expired.
    pub fn read(cert: &Path, key: &Path) -> Result<Certificate, TlsError> {
        let cert_pem = read_file("server.tls_cert", cert)?;
        let key_pem = read_file("server.tls_key", key)?;
        let chain = CertificateDer::pem_slice_iter(&cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TlsError::BadCertificate {
                path: cert.to_path_buf(),
                reason: e.to_string(),
            })?;
        let Some(leaf) = chain.first() else {
            return Err(TlsError::NoCertificate {
                path: cert.to_path_buf(),
            });
        };
        let bad_cert = |reason: String| TlsError::BadCertificate {
            path: cert.to_path_buf(),
            reason,
        };
        let x509 = openssl::x509::X509::from_der(leaf).map_err(|e| bad_cert(e.to_string()))?;
        let now = openssl::asn1::Asn1Time::days_from_now(0).map_err(|e| bad_cert(e.to_string()))?;
        let left = now
            .diff(x509.not_after())
            .map_err(|e| bad_cert(e.to_string()))?;
        let not_after = x509.not_after().to_string();
        if left.days < 0 || (left.days == 0 && left.secs <= 0) {
            return Err(TlsError::Expired {
                path: cert.to_path_buf(),
                not_after,
            });
        }
        let private = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| TlsError::NoKey {
            path: key.to_path_buf(),
            reason: e.to_string(),
        })?;
        let signing = provider()
            .key_provider
            .load_private_key(private)
            .map_err(|e| TlsError::BadKey {
                path: key.to_path_buf(),
                reason: e.to_string(),
            })?;
        let certified = CertifiedKey::new(chain, signing);
        match certified.keys_match() {
            Ok(()) => {}
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
                return Err(TlsError::Mismatch {
                    cert: cert.to_path_buf(),
                    key: key.to_path_buf(),
                })
            }
            // Serving a key nobody can compare with the certificate would only fail in every
            // client's handshake.
            Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {
                return Err(TlsError::BadKey {
                    path: key.to_path_buf(),
                    reason: "its public key cannot be compared with the certificate's".into(),
                })
            }
            Err(e) => return Err(bad_cert(e.to_string())),
        }
        let subject = x509
            .subject_name()
            .entries()
            .filter_map(|e| e.data().to_string().ok())
            .collect::<Vec<_>>()
            .join(", ");
        Ok(Certificate {
            key: Arc::new(certified),
            subject,
            not_after,
            days_left: left.days,
        })
    }

    /// What is worth telling about a certificate that can be served: an end near.
    pub fn warnings(&self, cert: &Path) -> Vec<String> {
        if self.days_left < EXPIRY_WARNING_DAYS {
            vec![format!(
                "the certificate in {} expires on {} (in {} days): renew it, then reload (systemctl reload, or SIGHUP)",
                cert.display(),
                self.not_after,
                self.days_left
            )]
        } else {
            Vec::new()
        }
    }
}

fn read_file(key: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        key,
        path: path.to_path_buf(),
        source,
    })
}

/// The crypto of the rest of the tree (reqwest, sqlx, lettre): aws-lc-rs.
fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// The certificate being served, swapped whole by [`TlsCertificates::install`]: handshakes
/// under way keep the one they started with, new ones get the new one.
#[derive(Debug)]
pub struct TlsCertificates {
    cert: PathBuf,
    key: PathBuf,
    current: ArcSwap<Certificate>,
}

impl TlsCertificates {
    /// Read the files once; the paths are kept for [`TlsCertificates::read`].
    pub fn load(cert: &Path, key: &Path) -> Result<TlsCertificates, TlsError> {
        let current = Certificate::read(cert, key)?;
        Ok(TlsCertificates {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            current: ArcSwap::from_pointee(current),
        })
    }

    /// Read the files again (a renewed certificate), without serving the result yet.
    pub fn read(&self) -> Result<Certificate, TlsError> {
        Certificate::read(&self.cert, &self.key)
    }

    /// Serve `certificate` to every new connection.
    pub fn install(&self, certificate: Certificate) {
        self.current.store(Arc::new(certificate));
    }

    /// The certificate being served.
    pub fn current(&self) -> Arc<Certificate> {
        self.current.load_full()
    }

    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The rustls configuration that serves whatever certificate is installed: TLS 1.2 and
    /// 1.3 (rustls' safe defaults), HTTP/2 preferred to HTTP/1.1.
    pub fn server_config(self: &Arc<Self>) -> Result<Arc<rustls::ServerConfig>, TlsError> {
        let mut config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::BadCertificate {
                path: self.cert.clone(),
                reason: e.to_string(),
            })?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        Ok(Arc::new(config))
    }
}

impl ResolvesServerCert for TlsCertificates {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load().key.clone())
    }
}

/// Serve `app` over TLS on `listener` until `shutdown` completes; then stop accepting, let the
/// requests in flight finish, and return. The client address reaches the handlers as
/// `ConnectInfo<SocketAddr>`, as with plain HTTP.
pub async fn serve(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: axum::Router,
    shutdown: impl Future<Output = ()> + Send,
) {
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let acceptor = acceptor.clone();
        let app = app.clone();
        // Taken before the handshake, so a shutdown also waits for (at most the deadline of)
        // a handshake under way.
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::debug!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let service = hyper::service::service_fn(
                move |mut request: http::Request<hyper::body::Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    app.clone().oneshot(request.map(axum::body::Body::new))
                },
            );
            let builder =
                hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
            let connection = builder
                .serve_connection_with_upgrades(hyper_util::rt::TokioIo::new(stream), service)
                .into_owned();
            if let Err(e) = watcher.watch(connection).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// As axum's own accept loop: a client that hung up is nothing; anything else (out of file
/// descriptors) is logged and waited out, not a reason to stop serving.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::ConnectionRefused | ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}
