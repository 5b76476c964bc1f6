//! What a listening TCP netlayer does before a connection reaches the node: it bounds how
//! many connections one source address holds at once (handshakes under way included), and
//! when accepting fails — a process out of file descriptors, most often — it backs off
//! and says so once per burst instead of once per retry.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpStream};

/// How many connections one source address may hold by default: a quarter of the usual
/// 1,024-descriptor limit, so one address cannot take a process's descriptors.
pub const DEFAULT_PER_SOURCE: usize = 256;

/// How long a connection has for the netlayer's own handshake by default.
pub const DEFAULT_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The first wait after a failed accept; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
/// The longest wait between two accepts that fail.
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// During a long run of failures, how often the log is reminded of it.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// How a TCP netlayer listens.
#[derive(Clone, Debug)]
pub struct ListenConfig {
    /// The most connections one source address may hold at once, handshakes under way
    /// included; more are closed as soon as they are accepted. Peers behind one address
    /// (a NAT, or every local peer on loopback) share it.
    pub per_source: usize,
    /// How long an accepted connection has for the netlayer's own handshake (tcp-tls:
    /// the certificate preamble and the TLS handshake).
    pub handshake_timeout: Duration,
}

impl Default for ListenConfig {
    fn default() -> ListenConfig {
        ListenConfig {
            per_source: DEFAULT_PER_SOURCE,
            handshake_timeout: DEFAULT_HANDSHAKE_TIMEOUT,
        }
    }
}

/// The connections each source address holds.
#[derive(Debug)]
struct Sources {
    open: Mutex<HashMap<IpAddr, Source>>,
    max: usize,
}

#[derive(Debug, Default)]
struct Source {
    open: usize,
    /// Its refusals were logged since it last went under the bound.
    warned: bool,
}

/// One connection counted against its source address, for as long as it is held.
#[derive(Debug)]
pub(crate) struct SourcePermit {
    sources: Arc<Sources>,
    ip: IpAddr,
}

impl Sources {
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<SourcePermit> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        let source = open.entry(ip).or_default();
        if source.open >= self.max {
            if !source.warned {
                source.warned = true;
                tracing::warn!(
                    source = %ip,
                    limit = self.max,
                    "{ip} holds {} connections, the most one address may: closing its new \
                     ones until some end (raise the listener's per_source limit if that many \
                     peers share {ip})",
                    source.open
                );
            }
            return None;
        }
        source.open += 1;
        Some(SourcePermit {
            sources: self.clone(),
            ip,
        })
    }
}

impl Drop for SourcePermit {
    fn drop(&mut self) {
        let mut open = self
            .sources
            .open
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(source) = open.get_mut(&self.ip) {
            source.open = source.open.saturating_sub(1);
            source.warned = false;
            if source.open == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// Accepts TCP connections within the per-source bound, waiting out accept failures.
#[derive(Debug)]
pub(crate) struct TcpAcceptor {
    listener: TcpListener,
    sources: Arc<Sources>,
    backoff: AcceptBackoff,
}

impl TcpAcceptor {
    pub(crate) fn new(listener: TcpListener, transport: &str, max: usize) -> Self {
        TcpAcceptor {
            listener,
            sources: Arc::new(Sources {
                open: Mutex::default(),
                max,
            }),
            backoff: AcceptBackoff::new(transport.to_owned()),
        }
    }

    /// The next connection whose source is under its bound (others are closed at once).
    pub(crate) async fn next(&mut self) -> (TcpStream, SocketAddr, SourcePermit) {
        loop {
            match self.listener.accept().await {
                Ok((tcp, peer)) => {
                    self.backoff.succeeded();
                    if let Some(permit) = self.sources.admit(peer.ip()) {
                        return (tcp, peer, permit);
                    }
                    tracing::debug!(source = %peer, "refused: too many connections from its address");
                }
                Err(e) => self.backoff.failed(&e).await,
            }
        }
    }
}

/// Waits between accepts that fail, longer each time they fail in a row, and logs them
/// as one: a warning, then at most one a minute while failures go on (a process at its
/// descriptor limit fails, accepts one as another closes, and fails again), and one line
/// when accepting works again.
#[derive(Debug)]
pub(crate) struct AcceptBackoff {
    transport: String,
    /// Failures since the last accept that worked: how long the next wait is.
    in_a_row: u32,
    /// Failures since the last warning.
    unreported: u64,
    /// When the last warning went out, and whether the line saying accepting works again
    /// followed it.
    warned: Option<(Instant, bool)>,
}

impl AcceptBackoff {
    pub(crate) fn new(transport: String) -> Self {
        AcceptBackoff {
            transport,
            in_a_row: 0,
            unreported: 0,
            warned: None,
        }
    }

    /// Accepting failed with `e`: warns unless a warning went out less than a minute ago,
    /// then waits before the next try.
    pub(crate) async fn failed(&mut self, e: &std::io::Error) {
        self.in_a_row += 1;
        self.unreported += 1;
        let now = Instant::now();
        let delay = backoff(self.in_a_row);
        if self
            .warned
            .is_none_or(|(at, _)| now.duration_since(at) >= REMIND_EVERY)
        {
            let earlier = match self.unreported - 1 {
                0 => String::new(),
                n => format!(" ({n} more failures since the last warning)"),
            };
            tracing::warn!(
                transport = %self.transport,
                "accepting connections fails: {}; retrying, at most {:?} apart, until it \
                 works{earlier}",
                explain(e),
                MAX_BACKOFF
            );
            self.warned = Some((now, false));
            self.unreported = 0;
        } else {
            tracing::debug!(
                transport = %self.transport,
                in_a_row = self.in_a_row,
                ?delay,
                error = %e,
                "accept still failing"
            );
        }
        tokio::time::sleep(delay).await;
    }

    /// An accept worked: the next failure waits little again; says so once after a
    /// warning.
    pub(crate) fn succeeded(&mut self) {
        self.in_a_row = 0;
        if let Some((at, false)) = self.warned {
            tracing::info!(
                transport = %self.transport,
                "accepting connections again ({} failed attempts since the warning {:?} ago)",
                self.unreported + 1,
                at.elapsed()
            );
            self.warned = Some((at, true));
        }
    }
}

/// The wait after the `failures`-th failure in a row.
fn backoff(failures: u32) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    (FIRST_BACKOFF * 2u32.pow(doublings)).min(MAX_BACKOFF)
}

/// What an accept error means and what to do about it.
fn explain(e: &std::io::Error) -> String {
    use rustix::io::Errno;
    let errno = e.raw_os_error().map(Errno::from_raw_os_error);
    if errno == Some(Errno::MFILE) {
        // Listing them takes a descriptor too, so it fails while none is left.
        let open = std::fs::read_dir("/proc/self/fd")
            .map_or_else(|_| "all it may".to_owned(), |d| (d.count() - 1).to_string());
        let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile);
        let show = |v: Option<u64>| v.map_or_else(|| "unlimited".to_owned(), |v| v.to_string());
        format!(
            "this process has no file descriptor left ({open} open; RLIMIT_NOFILE soft limit \
             {}, hard limit {}): raise the limit (`ulimit -n`, systemd's `LimitNOFILE=`) or \
             lower the listener's per_source limit ({e})",
            show(limit.current),
            show(limit.maximum)
        )
    } else if errno == Some(Errno::NFILE) {
        format!(
            "the system has no file descriptor left (its limit is sysctl fs.file-max): \
             raise it or close what holds them ({e})"
        )
    } else if matches!(errno, Some(Errno::NOBUFS | Errno::NOMEM)) {
        format!("the kernel is out of memory for sockets ({e})")
    } else {
        e.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_doubles_from_5_ms_up_to_a_second() {
        let waits: Vec<u128> = (1..=10).map(|n| backoff(n).as_millis()).collect();
        assert_eq!(waits, [5, 10, 20, 40, 80, 160, 320, 640, 1000, 1000]);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }

    #[test]
    fn a_source_holds_at_most_its_bound_and_gets_its_place_back() {
        let sources = Arc::new(Sources {
            open: Mutex::default(),
            max: 2,
        });
        let ip = IpAddr::from([127, 0, 0, 1]);
        let other: IpAddr = IpAddr::from([10, 0, 0, 2]);
        let first = sources.admit(ip);
        let second = sources.admit(ip);
        assert!(first.is_some() && second.is_some());
        assert!(sources.admit(ip).is_none(), "a third from one address");
        assert!(
            sources.admit(other).is_some(),
            "another address has its own bound"
        );
        drop(first);
        assert!(sources.admit(ip).is_some(), "a place freed is taken again");
    }

    #[test]
    fn a_shortage_of_descriptors_is_named_with_the_limit_and_the_fix() {
        let e = std::io::Error::from_raw_os_error(rustix::io::Errno::MFILE.raw_os_error());
        let text = explain(&e);
        assert!(text.contains("RLIMIT_NOFILE soft limit"), "{text}");
        assert!(text.contains("ulimit -n"), "{text}");
        let e = std::io::Error::from_raw_os_error(rustix::io::Errno::NFILE.raw_os_error());
        assert!(explain(&e).contains("fs.file-max"), "{}", explain(&e));
    }
}
