//! Finding what a provider started for a machine from outside, by the path of the machine
//! directory its command line names (as teardown's backstop does): for tests that end
//! those processes when they fail, and that check what the provider recorded.

use std::path::Path;

/// The live processes whose command line holds `flag` followed by `value`.
pub fn started_with(flag: &str, value: &Path) -> Vec<i32> {
    let value = value.as_os_str().as_encoded_bytes();
    std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat
                .rsplit_once(')')
                .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z'));
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            !zombie
                && args
                    .windows(2)
                    .any(|pair| pair[0] == flag.as_bytes() && pair[1] == value)
        })
        .collect()
}

/// The hob-client of the `host` machine whose directory is `machine_dir` (`hosts/M`).
pub fn host_hob_client(machine_dir: &Path) -> Option<i32> {
    started_with("--dir", &machine_dir.join("client"))
        .into_iter()
        .next()
}

/// The pid in a record (`PID STARTTIME`) a provider keeps.
pub fn pid_of(record: &serde_json::Value) -> Option<i32> {
    record.as_str()?.split_whitespace().next()?.parse().ok()
}

/// The pid of machine `machine`'s anchor as provider `provider` (a qemu or host one)
/// recorded it: in its core (the portrait's first field, which saves as
/// `[name, settings, book, vats, anchors]`).
pub fn provider_anchor(s: &Path, provider: &str, machine: &str) -> Option<i32> {
    pid_of(&provider_field(s, provider, 0)[4][machine])
}

/// Field `index` of the root actor of provider `provider`'s vat (its record of its
/// machines), read from the store of state directory `s` beside the daemon; null if it
/// cannot be read.
pub fn provider_field(s: &Path, provider: &str, index: usize) -> serde_json::Value {
    let read = |args: &[&str]| -> Option<serde_json::Value> {
        let out = super::gobs(s, args);
        out.status
            .success()
            .then(|| serde_json::from_slice(&out.stdout).ok())
            .flatten()
    };
    let vat = format!("provider-{provider}");
    let root = read(&["state", "actors", "--vat", &vat, "--json"]).and_then(|actors| {
        actors
            .as_array()?
            .iter()
            .find(|a| a["root"] == true)
            .map(|a| a["id"].to_string())
    });
    root.and_then(|id| read(&["state", "portrait", &vat, &id]))
        .map(|p| p["args"][index].clone())
        .unwrap_or_default()
}
