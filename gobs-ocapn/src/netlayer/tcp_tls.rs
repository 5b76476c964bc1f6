//! `tcp-tls`: CapTP over TLS over TCP, as Spritely Goblins 0.18 speaks it.
//!
//! A node's name on this netlayer (its designator) is the lowercase, unpadded base32 of
//! SHA-256(SHA-256(its PEM certificate)), 52 characters. After accepting a connection the
//! server writes the certificate's length as 4 little-endian bytes (Goblins writes host
//! order, which is little-endian on x86-64) and then the PEM text; then the TLS handshake
//! runs. The client hashes the PEM it was sent, refuses the connection if the hash is not
//! the designator it dialled, and trusts exactly that self-signed certificate — no
//! certificate authority is involved.
//!
//! A client presents its own certificate too (as Goblins 0.18 does when asked), which
//! proves the location it claims in `op:start-session`: the server believes a claim only
//! if the client's certificate, as PEM, hashes to the claimed designator
//! ([`PeerProof::Proved`]). A client without one (a dial-only netlayer) still connects,
//! with its claim unproven ([`PeerProof::Unproved`]). Sturdyref URIs look like
//! `ocapn://<designator>.tcp-tls/s/<base64url swiss>?host=…&port=…`.
//! The locator's hints are written with string keys (`{"host" … "port" …}`), which is what
//! Goblins 0.18 reads when it dials back (e.g. to redeem a handoff).
//!
//! TLS is rustls with the `ring` provider.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use data_encoding::BASE32_NOPAD;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Mutex, Notify, mpsc};

use super::tls_verify::{AnyClientCert, Pinned};
use super::{
    Accepted, BoxFuture, DEFAULT_HANDSHAKE_TIMEOUT, ListenConfig, Netlayer, Stream, TcpAcceptor,
    invalid,
};
use crate::locator::PeerLocator;
use crate::node::PeerProof;

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
    /// The certificate and key presented when dialling, to prove our location.
    client_cert: Option<Arc<ClientCert>>,
    /// What each of its listeners shares.
    listening: Option<Arc<Listening>>,
    /// The accept loop of each address it listens on.
    listeners: std::sync::Mutex<BTreeMap<SocketAddr, tokio::task::JoinHandle<()>>>,
    /// [`Netlayer::stop_accepting`] was called; `accept` is woken to close the queue.
    stopped: AtomicBool,
    stopping: Notify,
}

impl Drop for TcpTls {
    fn drop(&mut self) {
        for task in self.lock_listeners().values() {
            task.abort();
        }
    }
}

/// What every listener of one netlayer shares: where accepted connections go, the TLS
/// server side, the certificate sent first, and the bounds.
#[derive(Clone)]
struct Listening {
    tx: mpsc::Sender<Accepted>,
    acceptor: tokio_rustls::TlsAcceptor,
    pem: Vec<u8>,
    config: ListenConfig,
}

impl Listening {
    /// Accepts on `listener` until the node stops taking connections or the answered
    /// task is aborted.
    fn spawn(&self, listener: TcpListener) -> tokio::task::JoinHandle<()> {
        let shared = self.clone();
        let mut tcp_acceptor = TcpAcceptor::new(listener, "tcp-tls", shared.config.per_source);
        tokio::spawn(async move {
            loop {
                let (tcp, peer, permit) = tokio::select! {
                    next = tcp_acceptor.next() => next,
                    () = shared.tx.closed() => return,
                };
                // Each handshake runs on its own task: a slow client holds up no one.
                let shared = shared.clone();
                tokio::spawn(async move {
                    let hs = tokio::time::timeout(
                        shared.config.handshake_timeout,
                        server_handshake(tcp, shared.acceptor, shared.pem),
                    )
                    .await;
                    match hs {
                        Ok(Ok((stream, proof))) => {
                            let accepted = Accepted::new(stream, proof).holding(permit);
                            let _ = shared.tx.send(accepted).await;
                        }
                        Ok(Err(e)) => tracing::info!(%peer, error = %e, "tcp-tls handshake failed"),
                        Err(_) => tracing::info!(%peer, "tcp-tls handshake timed out"),
                    }
                });
            }
        })
    }
}

/// A node's certificate and key, parsed.
struct ClientCert {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl ClientCert {
    fn parse(identity: &TlsIdentity) -> std::io::Result<ClientCert> {
        Ok(ClientCert {
            cert: CertificateDer::from_pem_slice(identity.cert_pem.as_bytes())
                .map_err(|e| invalid(format!("the tcp-tls certificate is not PEM: {e}")))?,
            key: PrivateKeyDer::from_pem_slice(identity.key_pem.as_bytes())
                .map_err(|e| invalid(format!("the tcp-tls private key is not PEM: {e}")))?,
        })
    }
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
        let ours = ClientCert::parse(identity)?;
        let provider = provider();
        let config = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(std::io::Error::other)?
            .with_client_cert_verifier(Arc::new(AnyClientCert { provider }))
            .with_single_cert(vec![ours.cert.clone()], ours.key.clone_key())
            .map_err(|e| {
                invalid(format!(
                    "the tcp-tls certificate and key do not go together: {e}"
                ))
            })?;
        let (tx, rx) = mpsc::channel(64);
        let listening = Arc::new(Listening {
            tx,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            pem: identity.cert_pem.clone().into_bytes(),
            config: listen,
        });
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
        let first = listening.spawn(listener);
        Ok(TcpTls {
            incoming: Some(Mutex::new(rx)),
            locator,
            local_addr: Some(local),
            client_cert: Some(Arc::new(ours)),
            listening: Some(listening),
            listeners: std::sync::Mutex::new(BTreeMap::from([(local, first)])),
            stopped: AtomicBool::new(false),
            stopping: Notify::new(),
        })
    }

    /// Also listens on `addr`, with the same identity and bounds, handing its connections
    /// to the same node: for a node that must be reachable at several addresses (one per
    /// network it serves) and nowhere else. The locator keeps naming the first address.
    /// Answers the address bound.
    pub async fn listen_also(&self, addr: SocketAddr) -> std::io::Result<SocketAddr> {
        let listening = self
            .listening
            .as_ref()
            .ok_or_else(|| invalid("this tcp-tls netlayer only dials".into()))?;
        if self.stopped.load(Ordering::Acquire) {
            return Err(stopped());
        }
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let task = listening.spawn(listener);
        if let Some(old) = self.lock_listeners().insert(local, task) {
            old.abort();
        }
        Ok(local)
    }

    /// Stops listening on `addr` (the first address too); connections accepted there go
    /// on. Answers whether it listened there.
    pub fn stop_listening(&self, addr: SocketAddr) -> bool {
        let task = self.lock_listeners().remove(&addr);
        task.map(|t| t.abort()).is_some()
    }

    /// The addresses it listens on.
    pub fn listening_at(&self) -> Vec<SocketAddr> {
        self.lock_listeners().keys().copied().collect()
    }

    fn lock_listeners(
        &self,
    ) -> std::sync::MutexGuard<'_, BTreeMap<SocketAddr, tokio::task::JoinHandle<()>>> {
        self.listeners
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// A tcp-tls netlayer that only dials (it has no identity of its own to listen with,
    /// nor to prove a location with).
    pub fn dial_only() -> TcpTls {
        TcpTls {
            incoming: None,
            locator: PeerLocator::new("tcp-tls", "dial-only"),
            local_addr: None,
            client_cert: None,
            listening: None,
            listeners: std::sync::Mutex::default(),
            stopped: AtomicBool::new(false),
            stopping: Notify::new(),
        }
    }

    /// The address it listened on first.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }
}

fn stopped() -> std::io::Error {
    std::io::Error::other("the tcp-tls listener stopped")
}

/// Closes the queue of accepted connections and closes those in it; handshakes still under
/// way find it closed and close theirs.
fn close_queue(queue: &mut mpsc::Receiver<Accepted>) {
    queue.close();
    while queue.try_recv().is_ok() {}
}

async fn server_handshake(
    mut tcp: TcpStream,
    acceptor: tokio_rustls::TlsAcceptor,
    pem: Vec<u8>,
) -> std::io::Result<(Stream, PeerProof)> {
    tcp.set_nodelay(true)?;
    let len = u32::try_from(pem.len()).map_err(|_| invalid("certificate too long".into()))?;
    tcp.write_all(&len.to_le_bytes()).await?;
    tcp.write_all(&pem).await?;
    let tls = acceptor.accept(tcp).await?;
    let proof = match tls.get_ref().1.peer_certificates() {
        Some([cert, ..]) => PeerProof::Proved {
            transport: "tcp-tls".to_owned(),
            designator: designator_of(pem_of(cert).as_bytes()),
        },
        _ => PeerProof::Unproved,
    };
    Ok((Box::new(tls) as Stream, proof))
}

/// A certificate as PEM the way its owner hashed it for its designator: 64-character
/// lines and a final newline (as rcgen and GnuTLS, so gobs and Goblins, write it).
fn pem_of(cert: &CertificateDer<'_>) -> String {
    pem::encode_config(
        &pem::Pem::new("CERTIFICATE", cert.as_ref()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

async fn client_handshake(
    host: String,
    port: u16,
    designator: String,
    ours: Option<Arc<ClientCert>>,
) -> std::io::Result<Stream> {
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
        .with_custom_certificate_verifier(Arc::new(Pinned { cert, provider }));
    let config = match ours {
        Some(ours) => config
            .with_client_auth_cert(vec![ours.cert.clone()], ours.key.clone_key())
            .map_err(|e| invalid(format!("our tcp-tls certificate cannot be used: {e}")))?,
        None => config.with_no_client_auth(),
    };
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
            let mut queue = incoming.lock().await;
            // Registered before the flag is read, so a stop in between still wakes it.
            let stopping = self.stopping.notified();
            tokio::pin!(stopping);
            stopping.as_mut().enable();
            if self.stopped.load(Ordering::Acquire) {
                close_queue(&mut queue);
                return Err(stopped());
            }
            tokio::select! {
                next = queue.recv() => next.ok_or_else(stopped),
                () = stopping => {
                    close_queue(&mut queue);
                    Err(stopped())
                }
            }
        })
    }

    fn stop_accepting(&self) {
        self.stopped.store(true, Ordering::Release);
        for (_, task) in std::mem::take(&mut *self.lock_listeners()) {
            task.abort();
        }
        // An `accept` waiting holds the queue: it closes it once woken.
        if let Some(mut queue) = self.incoming.as_ref().and_then(|q| q.try_lock().ok()) {
            close_queue(&mut queue);
        }
        self.stopping.notify_waiters();
    }

    fn connect(&self, peer: &PeerLocator) -> BoxFuture<'static, std::io::Result<Stream>> {
        let host = peer.hint("host").map(str::to_owned);
        let port = peer.hint("port").and_then(|p| p.parse::<u16>().ok());
        let designator = peer.designator.clone();
        let uri = peer.to_uri();
        let ours = self.client_cert.clone();
        Box::pin(async move {
            let (Some(host), Some(port)) = (host, port) else {
                return Err(invalid(format!(
                    "{uri}: a tcp-tls locator needs host and port hints"
                )));
            };
            tokio::time::timeout(DIAL_TIMEOUT, client_handshake(host, port, designator, ours))
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
