//! Where the boss's machine listener listens: only where machines reach it, never on every
//! address of the host.
//!
//! - A container machine reaches the boss at its bridge's `.1` address, so a container
//!   provider's listener listens there (the provider makes the bridge before it binds).
//! - A qemu guest reaches the boss through qemu's forward to a loopback address, and a host
//!   machine's hob-client runs on the host: both listen on loopback.
//!
//! A boss has one listener (one identity, one port, recorded in the gateway's table at its
//! first start, since the sturdyrefs machines hold name it); each provider adds its place
//! to it ([`super::boss_gateway::BossGateway::start`]). A provider's `hob_listen` setting
//! says the address and the port: the address must be its machines' place, so a value
//! that would listen elsewhere is refused with the value to write instead.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// Where a provider's machines reach the boss.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// A container bridge whose host address is this.
    Bridge(Ipv4Addr),
    /// Loopback: qemu's forward to the boss, or a hob-client on the host itself.
    Loopback,
}

impl Place {
    /// The listener's address there when `hob_listen` is unset (with port 0: chosen at the
    /// first start and kept).
    pub fn default_listen(self) -> SocketAddr {
        match self {
            Place::Bridge(ip) => SocketAddr::from((ip, 0)),
            Place::Loopback => SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
        }
    }

    /// `addr`, moved here if it is elsewhere, its port kept: settings saved before the
    /// listener kept to its place (`0.0.0.0`) are still what a restored provider has until
    /// the config's replace them.
    pub fn fit(self, addr: SocketAddr) -> SocketAddr {
        if self.admits(addr.ip()) {
            addr
        } else {
            SocketAddr::new(self.default_listen().ip(), addr.port())
        }
    }

    fn admits(self, ip: IpAddr) -> bool {
        match self {
            Place::Bridge(bridge) => ip == IpAddr::V4(bridge),
            Place::Loopback => ip.is_loopback(),
        }
    }

    fn explain(self) -> String {
        match self {
            Place::Bridge(ip) => format!(
                "this provider's containers reach the boss only at their bridge's address \
                 {ip}"
            ),
            Place::Loopback => "qemu guests (through qemu's forward) and host machines reach \
                                the boss only on loopback"
                .to_owned(),
        }
    }
}

/// A provider's `hob_listen` setting, `IP:PORT`, for machines that reach the boss at
/// `place`; unset: [`Place::default_listen`]. Every address (`0.0.0.0`, the default of
/// earlier releases) is taken as `place`, its port kept, with a warning; any other address
/// elsewhere is refused, naming the setting and the value to write.
pub fn parse_listen(setting: Option<String>, place: Place) -> Result<SocketAddr, String> {
    let Some(text) = setting else {
        return Ok(place.default_listen());
    };
    let wanted = |port: u16| SocketAddr::new(place.default_listen().ip(), port);
    let addr: SocketAddr = text.parse().map_err(|_| {
        format!(
            "hob_listen {text:?} is not IP:PORT; write {:?} (port 0: one is chosen at the \
             first start and kept), or leave hob_listen unset",
            wanted(0).to_string()
        )
    })?;
    if addr.ip().is_unspecified() {
        // Every address: the default of releases before the listener kept to its place, so
        // configs written then still say it. Taken as the place, port kept, with a warning.
        let here = SocketAddr::new(place.default_listen().ip(), addr.port());
        tracing::warn!(
            "hob_listen {text:?} would listen on every address of the host; {}, so the boss \
            listens at {here} instead: write {:?}, or leave hob_listen unset",
            place.explain(),
            here.to_string()
        );
        return Ok(here);
    }
    if !place.admits(addr.ip()) {
        return Err(format!(
            "hob_listen {text:?} would listen where no machine of this provider reaches the \
             boss: {}; write {:?}, or leave hob_listen unset",
            place.explain(),
            wanted(addr.port()).to_string()
        ));
    }
    Ok(addr)
}

/// Why the gateway cannot listen at `addr`, and what to do.
pub(super) fn cannot_listen(addr: SocketAddr, e: &std::io::Error) -> String {
    let hint = if e.kind() == std::io::ErrorKind::AddrNotAvailable {
        "no interface of this host has that address (for a container provider, its bridge \
         must be up first)"
    } else {
        "free the port, or choose another in the providers' `hob_listen`"
    };
    format!("the hob gateway cannot listen on {addr}: {e}; {hint}")
}

/// Why `hob_listen`'s port `asked` cannot be: the gateway has used `used` since its first
/// start.
pub(super) fn port_conflict(asked: u16, used: u16) -> String {
    format!(
        "hob_listen asks for port {asked}, but the boss's machine listener has used port \
         {used} since its first start (the capabilities its machines hold name it): write \
         port {used} (or 0) in every provider's hob_listen"
    )
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    const BRIDGE: Place = Place::Bridge(Ipv4Addr::new(10, 9, 8, 1));

    fn parse(text: &str, place: Place) -> Result<SocketAddr, String> {
        parse_listen(Some(text.to_owned()), place)
    }

    #[test]
    fn unset_listens_at_the_machines_place_on_a_port_chosen_once() {
        assert_eq!(
            parse_listen(None, BRIDGE).unwrap().to_string(),
            "10.9.8.1:0"
        );
        assert_eq!(
            parse_listen(None, Place::Loopback).unwrap().to_string(),
            "127.0.0.1:0"
        );
    }

    #[test]
    fn the_machines_place_is_taken_with_any_port() {
        assert_eq!(parse("10.9.8.1:7731", BRIDGE).unwrap().port(), 7731);
        assert_eq!(parse("127.0.0.1:0", Place::Loopback).unwrap().port(), 0);
        assert!(parse("[::1]:7731", Place::Loopback).is_ok());
    }

    #[test]
    fn anywhere_else_is_refused_naming_the_setting_and_the_value_to_write() {
        let err = parse("127.0.0.1:0", BRIDGE).unwrap_err();
        assert!(err.contains("hob_listen \"127.0.0.1:0\""), "{err}");
        assert!(err.contains("bridge's address 10.9.8.1"), "{err}");
        assert!(err.contains("write \"10.9.8.1:0\""), "{err}");
        let err = parse("10.9.8.7:0", Place::Loopback).unwrap_err();
        assert!(err.contains("only on loopback"), "{err}");
        assert!(err.contains("write \"127.0.0.1:0\""), "{err}");
        let err = parse("10.9.8.1:1", Place::Loopback).unwrap_err();
        assert!(err.contains("write \"127.0.0.1:1\""), "{err}");
    }

    #[test]
    fn every_address_as_earlier_releases_wrote_it_is_taken_as_the_place_port_kept() {
        assert_eq!(
            parse("0.0.0.0:7731", BRIDGE).unwrap().to_string(),
            "10.9.8.1:7731"
        );
        assert_eq!(
            parse("0.0.0.0:0", Place::Loopback).unwrap().to_string(),
            "127.0.0.1:0"
        );
        assert_eq!(
            parse("[::]:0", Place::Loopback).unwrap().to_string(),
            "127.0.0.1:0"
        );
    }

    #[test]
    fn a_saved_address_elsewhere_is_moved_here_keeping_its_port() {
        let old: SocketAddr = "0.0.0.0:7731".parse().unwrap();
        assert_eq!(BRIDGE.fit(old).to_string(), "10.9.8.1:7731");
        assert_eq!(Place::Loopback.fit(old).to_string(), "127.0.0.1:7731");
        let here: SocketAddr = "127.0.0.2:0".parse().unwrap();
        assert_eq!(Place::Loopback.fit(here), here);
    }

    #[test]
    fn what_is_not_an_address_says_how_to_write_one() {
        let err = parse("everywhere", BRIDGE).unwrap_err();
        assert!(err.contains("not IP:PORT"), "{err}");
        assert!(err.contains("\"10.9.8.1:0\""), "{err}");
    }
}
