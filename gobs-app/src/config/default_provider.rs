//! Which provider `create-machine` uses when neither `--provider` nor a config file says:
//! the most real one this host allows. A `container` where one can be made — as root on a
//! bridge, otherwise rootless (user namespaces and pasta) — and `dummy` only where neither
//! works, with one line saying why and what to install. `gobs-app init` writes the choice
//! into the config file it makes, with that line.
//!
//! The choice is a pure function of [`HostFacts`], which [`HostFacts::probe`] reads from the
//! host without starting anything (files, `PATH`, sysctls), so every command can afford it.
//! `$GOBS_DEFAULT_PROVIDER` ([`ENV`]) overrides it: for scripts and test suites that want
//! the same default on every host.

use std::path::Path;

use crate::providers::container::{rootfs, rootless};

/// The environment variable that names the default provider instead of the probe.
pub const ENV: &str = "GOBS_DEFAULT_PROVIDER";

/// The default provider here: [`ENV`]'s if set, else [`choose`] on this host's facts.
pub fn for_this_host() -> ProviderChoice {
    match std::env::var(ENV) {
        Ok(provider) if !provider.is_empty() => ProviderChoice {
            provider,
            why: format!("${ENV} names it"),
        },
        _ => choose(&HostFacts::probe()),
    }
}

/// What the choice depends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostFacts {
    /// gobs-app runs as root.
    pub root: bool,
    /// Why unprivileged users may not make user namespaces here, if they may not.
    pub no_user_namespaces: Option<String>,
    /// busybox is at its default path (Debian package busybox-static).
    pub busybox: bool,
    /// `ip` is on `PATH` (iproute2).
    pub ip: bool,
    /// `nft` is on `PATH` (nftables).
    pub nft: bool,
    /// `pasta` is on `PATH` (passt).
    pub pasta: bool,
    /// `ldd` is on `PATH` (libc-bin).
    pub ldd: bool,
}

impl HostFacts {
    /// This host's facts, for this process.
    pub fn probe() -> HostFacts {
        HostFacts {
            root: rustix::process::geteuid().is_root(),
            no_user_namespaces: rootless::user_namespaces().err(),
            busybox: Path::new(rootfs::DEFAULT_BUSYBOX).is_file(),
            ip: on_path("ip"),
            nft: on_path("nft"),
            pasta: on_path(rootless::PASTA),
            ldd: on_path("ldd"),
        }
    }
}

/// The default provider and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderChoice {
    /// A provider of the built-in config: `container` or `dummy` (or [`ENV`]'s).
    pub provider: String,
    /// One line: why, and for `dummy` what to install for real machines.
    pub why: String,
}

/// The most real provider `facts` allow.
///
/// ```
/// use gobs_app::config::default_provider::{choose, HostFacts};
/// let bare = HostFacts {
///     root: false,
///     no_user_namespaces: None,
///     busybox: true,
///     ip: false,
///     nft: false,
///     pasta: false,
///     ldd: true,
/// };
/// let choice = choose(&bare);
/// assert_eq!(choice.provider, "dummy");
/// assert!(choice.why.contains("apt-get install passt"));
/// assert_eq!(choose(&HostFacts { pasta: true, ..bare }).provider, "container");
/// ```
pub fn choose(facts: &HostFacts) -> ProviderChoice {
    let needs: &[(bool, &str, &str)] = if facts.root {
        &[
            (facts.busybox, "busybox", "busybox-static"),
            (facts.ip, "ip", "iproute2"),
            (facts.nft, "nft", "nftables"),
            (facts.ldd, "ldd", "libc-bin"),
        ]
    } else {
        if let Some(why) = &facts.no_user_namespaces {
            return ProviderChoice {
                provider: "dummy".into(),
                why: format!(
                    "machines are dummy (they run nothing): containers without root need user \
                     namespaces, and {why}"
                ),
            };
        }
        &[
            (facts.busybox, "busybox", "busybox-static"),
            (facts.pasta, "pasta", "passt"),
            (facts.ldd, "ldd", "libc-bin"),
        ]
    };
    let missing: Vec<&str> = needs
        .iter()
        .filter(|(has, _, _)| !has)
        .map(|(_, _, package)| *package)
        .collect();
    if missing.is_empty() {
        let why = if facts.root {
            "machines are containers: gobs-app runs as root and this host has busybox-static, \
             iproute2 and nftables"
        } else {
            "machines are rootless containers: this host lets users make user namespaces and \
             has busybox-static and passt"
        };
        return ProviderChoice {
            provider: "container".into(),
            why: why.to_string(),
        };
    }
    let commands: Vec<&str> = needs
        .iter()
        .filter(|(has, _, _)| !has)
        .map(|(_, command, _)| *command)
        .collect();
    ProviderChoice {
        provider: "dummy".into(),
        why: format!(
            "machines are dummy (they run nothing): containers{} need {} here; install them \
             (apt-get install {}) for real machines",
            if facts.root { "" } else { " without root" },
            commands.join(", "),
            missing.join(" ")
        ),
    }
}

/// The config file `gobs-app init` writes: the commented defaults with `choice` as the
/// default provider, and why.
pub fn config_text(default_toml: &str, choice: &ProviderChoice) -> String {
    default_toml.replacen(
        "default_provider = \"dummy\"\n",
        &format!(
            "# `gobs-app init` chose this on this host: {}.\ndefault_provider = \"{}\"\n",
            choice.why, choice.provider
        ),
        1,
    )
}

fn on_path(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(name).is_file()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::config::{DEFAULT_CONFIG_TOML, parse};

    const EVERYTHING: HostFacts = HostFacts {
        root: false,
        no_user_namespaces: None,
        busybox: true,
        ip: true,
        nft: true,
        pasta: true,
        ldd: true,
    };

    #[test]
    fn a_user_with_user_namespaces_and_the_packages_gets_rootless_containers() {
        let choice = choose(&EVERYTHING);
        assert_eq!(choice.provider, "container");
        assert!(choice.why.contains("rootless"), "{}", choice.why);
        // The bridge's tools are root's business.
        let choice = choose(&HostFacts {
            ip: false,
            nft: false,
            ..EVERYTHING
        });
        assert_eq!(choice.provider, "container");
    }

    #[test]
    fn root_with_the_bridge_tools_gets_containers_and_without_them_is_told_what_to_install() {
        let root = HostFacts {
            root: true,
            pasta: false,
            ..EVERYTHING
        };
        assert_eq!(choose(&root).provider, "container");
        let choice = choose(&HostFacts {
            nft: false,
            busybox: false,
            ..root
        });
        assert_eq!(choice.provider, "dummy");
        assert!(
            choice.why.contains("need busybox, nft here")
                && choice
                    .why
                    .contains("apt-get install busybox-static nftables"),
            "{}",
            choice.why
        );
        // Root does not need user namespaces for users.
        let choice = choose(&HostFacts {
            no_user_namespaces: Some("no".into()),
            ..root
        });
        assert_eq!(choice.provider, "container");
    }

    #[test]
    fn without_user_namespaces_a_user_gets_dummy_machines_and_the_reason() {
        let why = "this host allows no user namespaces (/proc/sys/user/max_user_namespaces is 0)";
        let choice = choose(&HostFacts {
            no_user_namespaces: Some(why.into()),
            ..EVERYTHING
        });
        assert_eq!(choice.provider, "dummy");
        assert!(choice.why.contains(why), "{}", choice.why);
        assert!(!choice.why.contains('\n'), "one line: {}", choice.why);
    }

    #[test]
    fn without_pasta_a_user_is_told_to_install_passt() {
        let choice = choose(&HostFacts {
            pasta: false,
            ..EVERYTHING
        });
        assert_eq!(choice.provider, "dummy");
        assert!(
            choice.why.contains("apt-get install passt"),
            "{}",
            choice.why
        );
    }

    #[test]
    fn the_file_init_writes_names_the_choice_and_why_and_parses() {
        for facts in [
            EVERYTHING,
            HostFacts {
                pasta: false,
                ..EVERYTHING
            },
        ] {
            let choice = choose(&facts);
            let text = config_text(DEFAULT_CONFIG_TOML, &choice);
            assert!(text.contains(&choice.why), "{text}");
            let config = parse(&text, Path::new("config.toml")).unwrap();
            assert_eq!(config.default_provider, choice.provider);
        }
    }
}
