//! A container bridge's firewall: its machines reach the boss's listener on the bridge and
//! nothing else of the host (no service on 0.0.0.0, no loopback, no other address), and
//! nothing through the host (no routing to other networks or back onto the bridge). That
//! machines cannot reach each other across the bridge itself is the bridge ports'
//! isolation ([`super::net::plug`]); these rules close the way around it through the host.
//!
//! The host may still open connections to its machines (their answers are let through).
//!
//! The rules are an nftables table of their own, `inet gobs-BRIDGE`: named by the bridge,
//! which is named by the state directory, so two state directories never touch each
//! other's rules; made (or replaced, atomically) with the bridge and deleted with it. They
//! need `nft` (Debian package nftables).

use std::io::Write;
use std::net::SocketAddrV4;
use std::process::{Command, Stdio};

/// The Debian package `nft` comes in.
pub const PACKAGE: &str = "nftables";

/// The nftables table (family `inet`) of bridge `bridge`.
pub fn table_name(bridge: &str) -> String {
    format!("gobs-{bridge}")
}

/// Whether `nft` can be run; the error names the package to install.
pub fn check() -> Result<(), String> {
    nft(&["--version"], None).map(|_| ())
}

/// Makes (or replaces) bridge `bridge`'s rules: from the bridge, only `boss` (the
/// listener's address on the bridge) is reached.
pub fn ensure(bridge: &str, boss: SocketAddrV4) -> Result<(), String> {
    nft(&["-f", "-"], Some(&ruleset(bridge, boss)))?;
    Ok(())
}

/// Deletes bridge `bridge`'s rules, if they are there.
pub fn remove(bridge: &str) -> Result<(), String> {
    let table = table_name(bridge);
    // Declaring the table first makes deleting it work whether or not it was there.
    nft(
        &["-f", "-"],
        Some(&format!("table inet {table}\ndelete table inet {table}\n")),
    )?;
    Ok(())
}

/// The rules of bridge `bridge`, as one transaction that replaces any earlier ones.
fn ruleset(bridge: &str, boss: SocketAddrV4) -> String {
    let table = table_name(bridge);
    let (ip, port) = (boss.ip(), boss.port());
    format!(
        "table inet {table}\n\
         delete table inet {table}\n\
         table inet {table} {{\n\
         \tchain input {{\n\
         \t\ttype filter hook input priority filter - 10; policy accept;\n\
         \t\tiifname \"{bridge}\" ip daddr {ip} tcp dport {port} accept\n\
         \t\tiifname \"{bridge}\" ct state established,related accept\n\
         \t\tiifname \"{bridge}\" drop\n\
         \t}}\n\
         \tchain forward {{\n\
         \t\ttype filter hook forward priority filter - 10; policy accept;\n\
         \t\tiifname \"{bridge}\" drop\n\
         \t\toifname \"{bridge}\" drop\n\
         \t}}\n\
         }}\n"
    )
}

/// Runs `nft ARGS`, with `input` on its stdin; the error says what failed and what `nft`
/// said.
fn nft(args: &[&str], input: Option<&str>) -> Result<String, String> {
    run("nft", args, input)
}

/// Runs `program` (nft) with `args` and `input`.
fn run(program: &str, args: &[&str], input: Option<&str>) -> Result<String, String> {
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if input.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    crate::child_fds::exclude(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| {
        format!(
            "cannot run `{program}` (install Debian package {PACKAGE}, or set `isolated = \
             false` in the container provider's config): {e}"
        )
    })?;
    if let (Some(text), Some(mut stdin)) = (input, child.stdin.take()) {
        stdin
            .write_all(text.as_bytes())
            .map_err(|e| format!("cannot hand `nft` its rules: {e}"))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| format!("cannot wait for `nft`: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_missing_nft_names_its_package_and_the_way_around_it() {
        let err = run("/nonexistent/nft", &["--version"], None).unwrap_err();
        assert!(err.contains("install Debian package nftables"), "{err}");
        assert!(err.contains("isolated = false"), "{err}");
    }

    #[test]
    fn the_rules_admit_only_the_boss_listener_and_route_nothing() {
        let rules = ruleset("gobs1a2b3c", SocketAddrV4::new([10, 9, 8, 1].into(), 7731));
        assert!(rules.starts_with("table inet gobs-gobs1a2b3c\ndelete table"), "{rules}");
        assert!(
            rules.contains("iifname \"gobs1a2b3c\" ip daddr 10.9.8.1 tcp dport 7731 accept\n"),
            "{rules}"
        );
        let drop_rest = "established,related accept\n\t\tiifname \"gobs1a2b3c\" drop\n";
        assert!(rules.contains(drop_rest), "{rules}");
        assert!(rules.contains("hook forward"), "{rules}");
        assert!(rules.contains("oifname \"gobs1a2b3c\" drop"), "{rules}");
    }
}
