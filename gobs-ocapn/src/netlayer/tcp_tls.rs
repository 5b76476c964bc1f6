//! `tcp-tls`: CapTP over TLS over TCP, as Spritely Goblins 0.18 speaks it.
//!
//! A node's name on this netlayer (its designator) is the lowercase, unpadded base32 of
//! SHA-256(SHA-256(its PEM certificate)), 52 characters. After accepting a connection the
//! server writes the certificate's length as 4 little-endian bytes (Goblins writes host
//! order, which is little-endian on x86-64) and then the PEM text; then the TLS handshake
//! runs. The client hashes the PEM it was sent, refuses the connection if the hash is not
//! the designator it dialled, and trusts exactly that self-signed certificate — no
//! certificate authority is involved. Sturdyref URIs look like
//! `ocapn://<designator>.tcp-tls/s/<base64url swiss>?host=…&port=…`.
//! The locator's hints are written with string keys (`{"host" … "port" …}`), which is what
//! Goblins 0.18 reads when it dials back (e.g. to redeem a handoff).
//!
//! TLS is rustls with the `ring` provider.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use data_encoding::BASE32_NOPAD;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, mpsc};

use super::{
    Accepted, BoxFuture, DEFAULT_HANDSHAKE_TIMEOUT, ListenConfig, Netlayer, Stream, TcpAcceptor,
    invalid,
};
use crate::locator::PeerLocator;

/// Longest certificate a client accepts in the preamble.
const MAX_CERT_LEN: u32 = 64 * 1024;
/// How long the preamble and the TLS handshake of a dial may take.
const DIAL_TIMEOUT: Duration = DEFAULT_HANDSHAKE_TIMEOUT;

/// A node's tcp-tls identity: a self-signed certificate and its private key, both PEM.
/// Keep it (in the node's persisted state) to keep the designator, and so the node's
/// sturdyrefs, across restarts.
#[derive(Clone)]
pub struct TlsIdentity {
    /// The certificate, PEM.
    pub cert_pem: String,
    /// The private key, PEM (PKCS#8).
    pub key_pem: String,
}

impl std::fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TlsIdentity({})", self.designator())
    }
}

impl TlsIdentity {
    /// A fresh self-signed certificate (ECDSA P-256).
    pub fn generate() -> std::io::Result<TlsIdentity> {
        let key = rcgen::KeyPair::generate().map_err(std::io::Error::other)?;
        let params = rcgen::CertificateParams::new(vec!["gobs-ocapn".to_owned()])
            .map_err(std::io::Error::other)?;
        let cert = params.self_signed(&key).map_err(std::io::Error::other)?;
        Ok(TlsIdentity {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// The designator this certificate gives.
    pub fn designator(&self) -> String {
        designator_of(self.cert_pem.as_bytes())
    }
}

/// The designator of a PEM certificate: lowercase unpadded base32 of
/// SHA-256(SHA-256(pem)).
///
/// ```
/// let d = gobs_ocapn::netlayer::designator_of(b"-----BEGIN CERTIFICATE-----\n...");
/// assert_eq!(d.len(), 52);
/// assert!(d.chars().all(|c| c.is_ascii_lowercase() || ('2'..='7').contains(&c)));
/// ```
pub fn designator_of(pem: &[u8]) -> String {
    let once = Sha256::digest(pem);
    let twice = Sha256::digest(once);
    BASE32_NOPAD.encode(&twice).to_ascii_lowercase()
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The `tcp-tls` netlayer.
pub struct TcpTls {
    incoming: Option<Mutex<mpsc::Receiver<Accepted>>>,
    locator: PeerLocator,
    local_addr: Option<SocketAddr>,
}

impl std::fmt::Debug for TcpTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TcpTls({})", self.locator.to_uri())
    }
}

impl TcpTls {
    /// Listens on `addr` with `identity`. `public_host` is the host put in the locator's
    /// hints (`addr`'s IP if `None`).
    pub async fn bind(
        addr: SocketAddr,
        identity: &TlsIdentity,
        public_host: Option<&str>,
    ) -> std::io::Result<TcpTls> {
        TcpTls::bind_with(addr, identity, public_host, ListenConfig::default()).await
    }

    /// [`TcpTls::bind`], with `listen`'s bounds on connections.
    pub async fn bind_with(
        addr: SocketAddr,
        identity: &TlsIdentity,
        public_host: Option<&str>,
        listen: ListenConfig,
    ) -> std::io::Result<TcpTls> {
        let cert = CertificateDer::from_pem_slice(identity.cert_pem.as_bytes())
            .map_err(|e| invalid(format!("the tcp-tls certificate is not PEM: {e}")))?;
        let key = PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
            .map_err(|e| invalid(format!("the tcp-tls private key is not PEM: {e}")))?;
        let config = rustls::ServerConfig::builder_with_provider(provider())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![cert], key)
            .map_err(|e| {
                invalid(format!(
                    "the tcp-tls certificate and key do not go together: {e}"
                ))
            })?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let locator = PeerLocator::new("tcp-tls", identity.designator())
            .with_hint(
                "host",
                public_host
                    .map(str::to_owned)
                    .unwrap_or_else(|| local.ip().to_string()),
            )
            .with_hint("port", local.port().to_string());
        let (tx, rx) = mpsc::channel(64);
        let pem = identity.cert_pem.clone().into_bytes();
        let mut tcp_acceptor = TcpAcceptor::new(listener, "tcp-tls", listen.per_source);
        let handshake_timeout = listen.handshake_timeout;
        tokio::spawn(async move {
            loop {
                let (tcp, peer, permit) = tokio::select! {
                    next = tcp_acceptor.next() => next,
                    () = tx.closed() => return,
                };
                // Each handshake runs on its own task: a slow client holds up no one.
                let (tx, acceptor, pem) = (tx.clone(), acceptor.clone(), pem.clone());
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(
                        handshake_timeout,
                        server_handshake(tcp, acceptor, pem),
                    )
                    .await;
                    match hs {
                        Ok(Ok(stream)) => {
                            let _ = tx.send(Accepted::new(stream).holding(permit)).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "tcp-tls handshake failed"),
                        Err(_) => tracing::info!(%peer, "tcp-tls handshake timed out"),
                    }
                });
            }
        });
        Ok(TcpTls {
            incoming: Some(Mutex::new(rx)),
            locator,
            local_addr: Some(local),
        })
    }

    /// A tcp-tls netlayer that only dials (it has no identity of its own to listen with).
    pub fn dial_only() -> TcpTls {
        TcpTls {
            incoming: None,
            locator: PeerLocator::new("tcp-tls", "dial-only"),
            local_addr: None,
        }
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
}

async fn server_handshake(
    mut tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    pem: Vec<u8>,
) -> std::io::Result<Stream> {
    tcp.set_nodelay(true)?;
    let len = u32::try_from(pem.len()).map_err(|_| invalid("certificate too long".into()))?;
    tcp.write_all(&len.to_le_bytes()).await?;
    tcp.write_all(&pem).await?;
    let tls = acceptor.accept(tcp).await?;
    Ok(Box::new(tls) as Stream)
}

async fn client_handshake(host: String, port: u16, designator: String) -> std::io::Result<Stream> {
    let mut tcp = TcpStream::connect((host.as_str(), port)).await?;
    tcp.set_nodelay(true)?;
    let mut len = [0u8; 4];
    tcp.read_exact(&mut len).await?;
    let len = u32::from_le_bytes(len);
    if len > MAX_CERT_LEN {
        return Err(invalid(format!(
            "{host}:{port} announced a {len}-byte certificate; at most {MAX_CERT_LEN} are accepted"
        )));
    }
    let mut pem = vec![0u8; len as usize];
    tcp.read_exact(&mut pem).await?;
    let got = designator_of(&pem);
    if got != designator {
        return Err(std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!(
                "{host}:{port} presented a certificate whose hash is {got}, not the designator {designator} that was dialled; refusing the connection"
            ),
        ));
    }
    let cert = CertificateDer::from_pem_slice(&pem)
        .map_err(|e| {
            invalid(format!(
                "{host}:{port} sent a certificate that is not PEM: {e}"
            ))
        })?
        .into_owned();
    let provider = provider();
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(std::io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }))
        .with_no_client_auth();
    let name = ServerName::try_from(designator.clone()).map_err(|e| {
        invalid(format!(
            "designator {designator} is not a TLS server name: {e}"
        ))
    })?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await?;
    Ok(Box::new(tls) as Stream)
}

/// Trusts exactly one certificate: the one whose hash is the designator.
#[derive(Debug)]
struct Pinned {
    cert: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Pinned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.cert.as_ref() && intermediates.is_empty() {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

impl Netlayer for TcpTls {
    fn transport(&self) -> &str {
        "tcp-tls"
    }

    fn locator(&self) -> PeerLocator {
        self.locator.clone()
    }

    fn can_accept(&self) -> bool {
        self.incoming.is_some()
    }

    fn accept(&self) -> BoxFuture<'_, std::io::Result<Accepted>> {
        Box::pin(async move {
            let incoming = self
                .incoming
                .as_ref()
                .ok_or_else(|| invalid("this tcp-tls netlayer only dials".into()))?;
            incoming
                .lock()
                .await
                .recv()
                .await
                .ok_or_else(|| std::io::Error::other("the tcp-tls listener stopped"))
        })
    }

    fn connect(&self, peer: &PeerLocator) -> BoxFuture<'static, std::io::Result<Stream>> {
        let host = peer.hint("host").map(str::to_owned);
        let port = peer.hint("port").and_then(|p| p.parse::<u16>().ok());
        let designator = peer.designator.clone();
        let uri = peer.to_uri();
        Box::pin(async move {
            let (Some(host), Some(port)) = (host, port) else {
                return Err(invalid(format!(
                    "{uri}: a tcp-tls locator needs host and port hints"
                )));
            };
            tokio::time::timeout(DIAL_TIMEOUT, client_handshake(host, port, designator))
                .await
                .map_err(|_| {
                    std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!("{uri}: tcp-tls handshake timed out"),
                    )
                })?
        })
    }
}
