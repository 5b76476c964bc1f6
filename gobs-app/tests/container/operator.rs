//! What an operator does with the container provider: `init` then create with no editing, a
//! terminal that shows the steps, a subnet the host already routes, files in and out.

use super::*;

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn init_then_create_machine_with_the_container_provider_needs_no_editing() {
    gobs_testkit::need(NEEDS);
    // The guard: tears down whatever the test made, even when it fails.
    let mut setup = Setup::without_config();
    let defaults = gobs_app::providers::container::ContainerSettings::defaults(setup.s());
    let [a, b, c] = defaults.subnet;
    setup.bridge = Some((defaults.bridge, Ipv4Addr::new(a, b, c, 1)));
    let s = setup.s().to_path_buf();
    ok(&s, &["init"]);
    let config = std::fs::read_to_string(s.join("config.toml")).unwrap();
    assert!(config.contains("[providers.container]"), "{config}");
    setup.start_daemon();
    let created = ok(&s, &["create-machine", "fresh", "--provider", "container"]);
    assert!(created.contains("running"), "{created}");
    assert_eq!(ok(&s, &["run", "fresh", "--", "hostname"]), "fresh\n");
    ok(&s, &["destroy-machine", "fresh"]);
    assert_eq!(host_leftovers(&setup), Vec::<String>::new());
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_terminal_shows_a_containers_steps_as_it_is_made_and_taken_down() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("");
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    let created = on_a_terminal(&s, &["create-machine", "steps-1"])
        .output()
        .unwrap();
    let shown = text(&created.stdout);
    assert!(created.status.success(), "{shown}");
    let steps = [
        "provisioning with container provider container",
        "checking the host and the boss's listener",
        "building the container's root filesystem",
        "starting the container's init in new namespaces",
        "plugging the container into the provider's bridge",
        "waiting for the container's hob-client to register with the boss (at most",
        "booting: starting the machine's vat",
    ];
    shows_in_order(&step_lines(&shown), &steps, &shown);
    assert!(shown.contains("created machine steps-1"), "{shown}");
    let destroyed = on_a_terminal(&s, &["destroy-machine", "steps-1"])
        .output()
        .unwrap();
    let shown = text(&destroyed.stdout);
    assert!(destroyed.status.success(), "{shown}");
    let steps = [
        "stopping the machine's vat",
        "stopping the container",
        "removing the container's cgroup and network link",
        "removing the container's directory",
    ];
    shows_in_order(&step_lines(&shown), &steps, &shown);
    assert_eq!(host_leftovers(&setup), Vec::<String>::new());
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_subnet_the_host_already_routes_is_refused_naming_the_setting() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("register_timeout = \"5s\"\n");
    let config = std::fs::read_to_string(setup.s().join("config.toml")).unwrap();
    let subnet = config
        .lines()
        .find_map(|l| l.strip_prefix("subnet = \""))
        .unwrap()
        .trim_end_matches('"')
        .to_string();
    let taken = Link(format!("gd{:x}", std::process::id() & 0xff_ffff));
    assert!(
        Command::new("ip")
            .args(["link", "add", &taken.0, "type", "bridge"])
            .status()
            .unwrap()
            .success()
    );
    let addr = subnet.replace(".0/24", ".9/24");
    assert!(
        Command::new("ip")
            .args(["addr", "add", &addr, "dev", &taken.0])
            .status()
            .unwrap()
            .success()
    );
    assert!(
        Command::new("ip")
            .args(["link", "set", &taken.0, "up"])
            .status()
            .unwrap()
            .success()
    );
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    let err = fails(&s, &["create-machine", "clash"]);
    assert!(err.contains("already in use on this host"), "{err}");
    assert!(err.contains("set `subnet`"), "{err}");
    assert!(!setup.container_dir("clash").exists());
    ok(&s, &["destroy-machine", "clash"]);
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn files_go_into_a_container_and_stay_there() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("");
    setup.start_daemon();
    let s = setup.s().to_path_buf();
    ok(&s, &["create-machine", "files-1"]);
    let work = tempfile::tempdir().unwrap();
    let local = work.path().join("all.bin");
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096 + 17).collect();
    std::fs::write(&local, &bytes).unwrap();
    let remote = format!("/tmp/gobs-files-test-{}", std::process::id());
    let said = ok(
        &s,
        &[
            "put-file",
            "files-1",
            local.to_str().unwrap(),
            &remote,
            "--mode",
            "0640",
        ],
    );
    assert!(
        said.contains("on machine files-1 (mode 0640, sha256 "),
        "{said}"
    );
    assert!(
        !Path::new(&remote).exists(),
        "the file reached the host's /tmp"
    );
    assert_eq!(
        ok(
            &s,
            &["run", "files-1", "--", "stat", "-c", "%a %s", &remote]
        ),
        format!("640 {}\n", bytes.len())
    );
    let out = gobs(&s, &["get-file", "files-1", &remote]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(out.stdout, bytes);
    let err = fails(&s, &["get-file", "files-1", "/no/such/file"]);
    assert!(
        err.contains("no file /no/such/file") && err.contains("files-1"),
        "{err}"
    );

    // Past the old 512 KiB, and a tree with -r, both ways through the container.
    let tree = work.path().join("tree");
    std::fs::create_dir_all(tree.join("sub/empty")).unwrap();
    let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(tree.join("sub/big"), &big).unwrap();
    std::os::unix::fs::symlink("sub/big", tree.join("link")).unwrap();
    let remote_tree = format!("{remote}-tree");
    ok(
        &s,
        &[
            "put-file",
            "-r",
            "files-1",
            tree.to_str().unwrap(),
            &remote_tree,
        ],
    );
    assert_eq!(
        ok(
            &s,
            &[
                "run",
                "files-1",
                "--",
                "sh",
                "-c",
                &format!(
                    "cd {remote_tree} && readlink link && wc -c < sub/big && test -d sub/empty && echo ok"
                )
            ]
        ),
        format!("sub/big\n{}\nok\n", big.len())
    );
    let back = work.path().join("back");
    ok(
        &s,
        &[
            "get-file",
            "-r",
            "files-1",
            &remote_tree,
            back.to_str().unwrap(),
        ],
    );
    assert!(std::fs::read(back.join("sub/big")).unwrap() == big);
    assert!(back.join("sub/empty").is_dir());
    assert_eq!(
        std::fs::read_link(back.join("link")).unwrap(),
        Path::new("sub/big")
    );
    ok(&s, &["destroy-machine", "files-1"]);
}
