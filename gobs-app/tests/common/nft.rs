//! An nftables table a test makes for itself, deleted when the guard drops (a failed test
//! too). Its name carries the test process's pid, so concurrent runs never share one.

use std::io::Write;
use std::process::{Command, Stdio};

/// A table `inet NAME`, made from a ruleset body, deleted on drop.
pub struct NftTable {
    name: String,
}

impl NftTable {
    /// Makes table `inet gobs-test-PID-TAG` with `body` (chains and rules, nft syntax).
    pub fn new(tag: &str, body: &str) -> NftTable {
        let name = format!("gobs-test-{}-{tag}", std::process::id());
        let made = nft(&format!(
            "table inet {name}\ndelete table inet {name}\ntable inet {name} {{\n{body}\n}}\n"
        ));
        assert!(made, "nft refused table {name}: {body}");
        NftTable { name }
    }
}

impl Drop for NftTable {
    fn drop(&mut self) {
        let name = &self.name;
        if !nft(&format!("table inet {name}\ndelete table inet {name}\n")) {
            eprintln!("could not delete nftables table inet {name}: delete it by hand");
        }
    }
}

/// Runs `nft -f -` on `script`; whether it worked.
fn nft(script: &str) -> bool {
    let Ok(mut child) = Command::new("nft")
        .args(["-f", "-"])
        .stdin(Stdio::piped())
        .spawn()
    else {
        return false;
    };
    let written = child
        .stdin
        .take()
        .is_some_and(|mut i| i.write_all(script.as_bytes()).is_ok());
    child.wait().is_ok_and(|s| s.success()) && written
}

/// Whether nftables has table `inet NAME`.
pub fn has_table(name: &str) -> bool {
    let out = Command::new("nft")
        .args(["list", "tables"])
        .output()
        .expect("nft runs (apt-get install nftables)");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .any(|l| l.trim() == format!("table inet {name}"))
}
