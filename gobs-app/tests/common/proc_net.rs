//! The kernel's tables of TCP sockets (`/proc/…/net/tcp` and `tcp6`), read as `ss -ltn`
//! would: which addresses are listened on, which connections are open, and by which
//! socket.

use std::net::{IpAddr, SocketAddr};

/// One row of the kernel's TCP tables.
pub struct TcpSocket {
    pub local: SocketAddr,
    /// In state LISTEN (else a connection, in whatever state).
    pub listening: bool,
    /// The socket's inode: `/proc/PID/fd/N` links to `socket:[INODE]`.
    pub inode: String,
}

/// The TCP sockets of the network namespace whose tables are under `net` (e.g.
/// `/proc/net`, or `/proc/PID/net` for a process's).
pub fn sockets(net: &str) -> Vec<TcpSocket> {
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(format!("{net}/{table}")) else {
            continue;
        };
        for row in text.lines().skip(1) {
            let cols: Vec<&str> = row.split_whitespace().collect();
            // sl, local_address, rem_address, st, …, inode (the tenth column); 0A is LISTEN.
            if cols.len() > 9 {
                found.push(TcpSocket {
                    local: parse_address(cols[1]),
                    listening: cols[3] == "0A",
                    inode: cols[9].to_owned(),
                });
            }
        }
    }
    found
}

/// The addresses listened on in the network namespace of `net` (see [`sockets`]).
pub fn listening(net: &str) -> Vec<SocketAddr> {
    sockets(net)
        .into_iter()
        .filter(|s| s.listening)
        .map(|s| s.local)
        .collect()
}

/// `HEXIP:HEXPORT`: the address as the kernel's 32-bit words, each in this host's byte
/// order; the port as a number.
fn parse_address(text: &str) -> SocketAddr {
    let (ip, port) = text.split_once(':').unwrap();
    let bytes: Vec<u8> = (0..ip.len() / 8)
        .flat_map(|i| {
            u32::from_str_radix(&ip[i * 8..i * 8 + 8], 16)
                .unwrap()
                .to_ne_bytes()
        })
        .collect();
    let ip = match <[u8; 4]>::try_from(bytes.as_slice()) {
        Ok(v4) => IpAddr::from(v4),
        Err(_) => IpAddr::from(<[u8; 16]>::try_from(bytes).unwrap()),
    };
    SocketAddr::new(ip, u16::from_str_radix(port, 16).unwrap())
}
