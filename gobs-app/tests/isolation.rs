//! Black-box tests, on the built binary, of where the boss's machine listener listens and
//! what machines reach: the listener is only on the container bridge's address (or on
//! loopback, for host and qemu machines), for every working `hob_listen` value, its port
//! kept across restarts; a container reaches the boss and neither another container's
//! service nor a host service (on 127.0.0.1 or on 0.0.0.0); a qemu guest registers but
//! reaches no host service through 10.0.2.2. Probes are real connections (busybox `nc`
//! inside the machine) checked from both ends: the machine says whether it connected, and
//! the host's listener says it accepted nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
#[path = "common/setup.rs"]
mod setup;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex};

use common::needs::{CONTAINER, QEMU};
use common::nft::has_table;
use common::{fails, gobs, ok, wait_for};
use gobs_app::hob_net::client_state::{self, ClientState};
use gobs_ocapn::locator::Sturdyref;
use setup::{Setup, own_bridge};

impl Setup {
    /// The port the boss's machine listener chose (or was told): the one machine
    /// `machine`'s hob-client holds in its attach sturdyref, once it stored it.
    fn boss_port(&self, machine: &str) -> u16 {
        let mut state = None;
        wait_for("the hob-client to store its state", || {
            state = self.client_state(machine);
            state.is_some()
        });
        let attach = Sturdyref::parse(&state.unwrap().boss).unwrap();
        attach.peer.hint("port").unwrap().parse().unwrap()
    }

    /// Machine `machine`'s hob-client state, if it stored it yet: in its directory for a
    /// host machine, else on the machine (its registry copied out).
    fn client_state(&self, machine: &str) -> Option<ClientState> {
        let on_host = self.s().join("hosts").join(machine).join("client");
        if on_host.exists() {
            return client_state::inspect(&on_host).ok()?.1;
        }
        let log = format!("/hob/state/{}/registry.log", client_state::VATS_DIR);
        let out = gobs(self.s(), &["get-file", machine, &log]);
        if !out.status.success() {
            return None;
        }
        let copy = tempfile::tempdir().unwrap();
        let vats = copy.path().join(client_state::VATS_DIR);
        std::fs::create_dir_all(&vats).unwrap();
        std::fs::write(vats.join("registry.log"), out.stdout).unwrap();
        client_state::inspect(copy.path()).ok()?.1
    }

    /// Machine `machine`'s address on the bridge.
    fn address_of(&self, machine: &str) -> Ipv4Addr {
        let shown = ok(
            self.s(),
            &[
                "run", machine, "--", "ip", "-4", "-o", "addr", "show", "eth0",
            ],
        );
        let cidr = shown
            .split_whitespace()
            .skip_while(|w| *w != "inet")
            .nth(1)
            .unwrap_or_else(|| panic!("no address in {shown:?}"));
        cidr.split('/').next().unwrap().parse().unwrap()
    }

    /// Whether machine `machine` opens a TCP connection to `ip:port` within 3 s.
    fn connects(&self, machine: &str, ip: impl std::fmt::Display, port: u16) -> bool {
        let probe = format!(
            "busybox nc -w 3 {ip} {port} </dev/null >/dev/null 2>&1 && echo reached || echo cut"
        );
        let said = ok(self.s(), &["run", machine, "--", "sh", "-c", &probe]);
        match said.trim() {
            "reached" => true,
            "cut" => false,
            other => panic!("the probe from {machine} to {ip}:{port} said {other:?}"),
        }
    }
}

/// The addresses this host listens on for TCP port `port` (`/proc/net/tcp` and `tcp6`).
fn listening_on(port: u16) -> Vec<IpAddr> {
    common::proc_net::listening("/proc/net")
        .into_iter()
        .filter(|addr| addr.port() == port)
        .map(|addr| addr.ip())
        .collect()
}

/// A host service: a listener that accepts each connection and closes it at once (so a
/// probe that reached it ends), keeping where each came from.
struct HostService {
    port: u16,
    reached_from: Arc<Mutex<Vec<SocketAddr>>>,
}

impl HostService {
    fn on(ip: Ipv4Addr) -> HostService {
        let listener = TcpListener::bind((ip, 0)).unwrap();
        let port = listener.local_addr().unwrap().port();
        let reached_from = Arc::new(Mutex::new(Vec::new()));
        let seen = reached_from.clone();
        // Ends with the test process (it blocks in accept).
        std::thread::spawn(move || {
            for (_, from) in listener.incoming().flatten().filter_map(|c| {
                let from = c.peer_addr().ok()?;
                Some((c, from))
            }) {
                seen.lock().unwrap().push(from);
            }
        });
        HostService { port, reached_from }
    }

    fn port(&self) -> u16 {
        self.port
    }

    /// Fails the test if any connection reached it.
    fn assert_untouched(&self, what: &str) {
        let reached = self.reached_from.lock().unwrap();
        assert!(reached.is_empty(), "{what} was reached, from {reached:?}");
    }
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static, iproute2 and nftables: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn containers_reach_the_boss_listener_on_their_bridge_and_nothing_else() {
    gobs_testkit::need(CONTAINER);
    let mut setup = Setup::containers("");
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    let (bridge, bridge_ip) = setup.bridge.clone().unwrap();
    ok(&s, &["create-machine", "c1"]);
    ok(&s, &["create-machine", "c2"]);

    // The listener is on the bridge's address, nowhere else.
    let port = setup.boss_port("c2");
    assert_ne!(port, 0);
    assert_eq!(listening_on(port), [IpAddr::V4(bridge_ip)]);
    assert!(has_table(&format!("gobs-{bridge}")), "the bridge's rules");

    // A service of c2's own, reached from c2 itself: the probe works.
    ok(
        &s,
        &[
            "run", "c2", "--", "busybox", "httpd", "-p", "8080", "-h", "/",
        ],
    );
    let c2 = setup.address_of("c2");
    assert!(setup.connects("c2", c2, 8080), "c2 reaches its own service");
    assert!(!setup.connects("c1", c2, 8080), "c1 reaches c2's service");

    // Host services, on every address and on loopback.
    let anywhere = HostService::on(Ipv4Addr::UNSPECIFIED);
    let loopback = HostService::on(Ipv4Addr::LOCALHOST);
    assert!(!setup.connects("c1", bridge_ip, anywhere.port()));
    assert!(!setup.connects("c1", bridge_ip, loopback.port()));
    assert!(!setup.connects("c1", Ipv4Addr::LOCALHOST, loopback.port()));
    anywhere.assert_untouched("a host service on 0.0.0.0");
    loopback.assert_untouched("a host service on 127.0.0.1");
    // The boss's listener is reached.
    assert!(setup.connects("c1", bridge_ip, port), "c1 reaches the boss");

    // The port chosen once is kept across a restart, and the machines attach again.
    setup.kill_daemon();
    setup.start_daemon();
    wait_for("c1 running again", || {
        ok(&s, &["machine", "c1"]).contains("running")
    });
    assert_eq!(setup.boss_port("c2"), port);
    assert_eq!(listening_on(port), [IpAddr::V4(bridge_ip)]);
    assert_eq!(ok(&s, &["run", "c1", "--", "hostname"]), "c1\n");

    // The rules and the listener go with the bridge.
    ok(&s, &["destroy-machine", "c1"]);
    ok(&s, &["destroy-machine", "c2"]);
    assert!(!Path::new(&format!("/sys/class/net/{bridge}")).exists());
    assert!(
        !has_table(&format!("gobs-{bridge}")),
        "the rules outlive the bridge"
    );
    assert_eq!(listening_on(port), Vec::<IpAddr>::new());
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static, iproute2 and nftables: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn an_explicit_bridge_address_and_port_are_used_and_isolation_can_be_turned_off_and_on() {
    gobs_testkit::need(CONTAINER);
    // A port free now (the daemon binds it a moment later).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (bridge, ip) = own_bridge();
    let mut setup = Setup::containers_on(
        (bridge.clone(), ip),
        &format!("hob_listen = \"{ip}:{port}\"\nisolated = false\n"),
    );
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    ok(&s, &["create-machine", "open1"]);
    assert_eq!(setup.boss_port("open1"), port);
    assert_eq!(listening_on(port), [IpAddr::V4(ip)]);
    assert!(
        !has_table(&format!("gobs-{bridge}")),
        "rules made while not isolated"
    );
    // Not isolated: a host service on 0.0.0.0 is reached (so the probe sees a way that is open).
    let anywhere = HostService::on(Ipv4Addr::UNSPECIFIED);
    assert!(setup.connects("open1", ip, anywhere.port()));
    assert_eq!(anywhere.reached_from.lock().unwrap().len(), 1);

    // Isolation turned on with the machine out there (as after an upgrade): its port and
    // the bridge follow when the daemon starts again.
    setup.kill_daemon();
    let config = std::fs::read_to_string(s.join("config.toml")).unwrap();
    let config = config.replace("isolated = false", "isolated = true");
    std::fs::write(s.join("config.toml"), config).unwrap();
    setup.start_daemon();
    wait_for("open1 running again", || {
        ok(&s, &["machine", "open1"]).contains("running")
    });
    assert!(has_table(&format!("gobs-{bridge}")), "the bridge's rules");
    assert!(!setup.connects("open1", ip, anywhere.port()));
    assert_eq!(anywhere.reached_from.lock().unwrap().len(), 1);
    ok(&s, &["destroy-machine", "open1"]);
}

/// Refused when the config is read: nothing is made, so nothing is needed from the host.
/// (Every address, `0.0.0.0`, is taken as the bridge's: earlier releases wrote it.)
#[test]
fn a_listen_address_where_machines_cannot_reach_the_boss_is_refused_naming_the_fix() {
    for wrong in ["127.0.0.1:0", "10.1.2.3:7731"] {
        let setup = Setup::containers(&format!("hob_listen = \"{wrong}\"\n"));
        let ip = setup.bridge_ip();
        let err = fails(setup.s(), &["create-machine", "m"]);
        assert!(err.contains(&format!("hob_listen \"{wrong}\"")), "{err}");
        let port = wrong.rsplit(':').next().unwrap();
        assert!(err.contains(&format!("write \"{ip}:{port}\"")), "{err}");
    }
}

#[test]
fn host_machines_reach_a_listener_on_loopback_only() {
    // `0.0.0.0`, as earlier releases wrote it, is taken as loopback.
    for listen in [None, Some("127.0.0.1:0"), Some("0.0.0.0:0")] {
        let setting = listen.map_or(String::new(), |l| format!("hob_listen = \"{l}\"\n"));
        let mut setup = Setup::with_config(
            &format!("default_provider = \"h\"\n[providers.h]\nkind = \"host\"\n{setting}"),
            None,
        );
        setup.start_daemon();
        let s = setup.s().to_path_buf();
        ok(&s, &["create-machine", "h1"]);
        let port = setup.boss_port("h1");
        assert_eq!(
            listening_on(port),
            [IpAddr::V4(Ipv4Addr::LOCALHOST)],
            "{listen:?}"
        );
        ok(&s, &["destroy-machine", "h1"]);
    }
    let setup = Setup::with_config(
        "default_provider = \"h\"\n[providers.h]\nkind = \"host\"\nhob_listen = \"10.1.2.3:0\"\n",
        None,
    );
    let err = fails(setup.s(), &["create-machine", "h1"]);
    assert!(err.contains("only on loopback"), "{err}");
    assert!(err.contains("write \"127.0.0.1:0\""), "{err}");
}

#[test]
fn a_port_other_than_the_one_machines_hold_is_refused_naming_it() {
    let config = |listen: &str| {
        format!(
            "default_provider = \"h\"\n[providers.h]\nkind = \"host\"\nhob_listen = \"{listen}\"\n"
        )
    };
    let mut setup = Setup::with_config(&config("127.0.0.1:0"), None);
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    ok(&s, &["create-machine", "h1"]);
    let port = setup.boss_port("h1");
    setup.kill_daemon();
    // Another port, free now: the listener must not move, since h1's capabilities name it.
    let other = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    std::fs::write(s.join("config.toml"), config(&format!("127.0.0.1:{other}"))).unwrap();
    setup.start_daemon();
    let err = fails(&s, &["create-machine", "h2"]);
    assert!(
        err.contains(&format!("hob_listen asks for port {other}")),
        "{err}"
    );
    assert!(err.contains(&format!("write port {port} (or 0)")), "{err}");
    // Back to a port of 0, the kept one is used again.
    std::fs::write(s.join("config.toml"), config("127.0.0.1:0")).unwrap();
    setup.kill_daemon();
    setup.start_daemon();
    ok(&s, &["create-machine", "h3"]);
    assert_eq!(setup.boss_port("h3"), port);
    assert_eq!(listening_on(port), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, qemu-system-x86, a kernel in /boot and busybox-static: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_qemu_guest_registers_but_reaches_no_host_service() {
    gobs_testkit::need(QEMU);
    let mut setup = Setup::with_config(
        "default_provider = \"vm\"\n[providers.vm]\nkind = \"qemu\"\n\
         register_timeout = \"600s\"\nmemory = \"512MiB\"\n",
        None,
    );
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    // Created means registered: the guest reached the boss through qemu's forward.
    ok(&s, &["create-machine", "g1"]);
    let port = setup.boss_port("g1");
    assert_eq!(listening_on(port), [IpAddr::V4(Ipv4Addr::LOCALHOST)]);

    let loopback = HostService::on(Ipv4Addr::LOCALHOST);
    let anywhere = HostService::on(Ipv4Addr::UNSPECIFIED);
    for (what, p) in [
        ("loopback", loopback.port()),
        ("0.0.0.0", anywhere.port()),
        ("boss", port),
    ] {
        assert!(
            !setup.connects("g1", "10.0.2.2", p),
            "the guest reached the host's {what} port {p} through 10.0.2.2"
        );
    }
    loopback.assert_untouched("a host service on 127.0.0.1");
    anywhere.assert_untouched("a host service on 0.0.0.0");
    // The probe works in the guest: the one forward, to the boss, is reached.
    assert!(
        setup.connects("g1", "10.0.2.100", port),
        "the guest reaches the boss"
    );

    // The forward carries a new connection after the boss restarts.
    setup.kill_daemon();
    setup.start_daemon();
    wait_for("g1 running again", || {
        ok(&s, &["machine", "g1"]).contains("running")
    });
    assert_eq!(ok(&s, &["run", "g1", "--", "hostname"]), "g1\n");
    ok(&s, &["destroy-machine", "g1"]);
}
