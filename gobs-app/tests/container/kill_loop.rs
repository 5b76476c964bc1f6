//! A daemon killed at random instants while it creates a container leaks nothing: no init, no
//! cgroup, no link or rule on the host.

use super::*;

/// The pids of the `container-init` processes (anchor and PID 1) of the machine whose
/// directory is `dir`.
fn inits_of(dir: &Path) -> Vec<i32> {
    let arg = format!("--dir\0{}\0", dir.display());
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|p| p.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.contains("container-init") && c.contains(&arg))
        })
        .collect()
}

/// The tag of the container whose directory is `dir`, from its init's cgroup, once it
/// is in one.
fn tag_of_init(dir: &Path) -> Option<String> {
    inits_of(dir).into_iter().find_map(|pid| {
        let groups = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
        groups
            .lines()
            .find_map(|l| l.rsplit_once("/gobs-").map(|(_, tag)| tag.to_string()))
    })
}

/// Whether creation of `machine` has reached `stage` (see [`STAGES`]).
fn reached(setup: &Setup, machine: &str, stage: &str) -> bool {
    let dir = setup.container_dir(machine);
    match stage {
        "sent" => true,
        "dir" => dir.exists(),
        "root" => dir.join("root/etc").exists(),
        "init" => !inits_of(&dir).is_empty(),
        "veth" => tag_of_init(&dir)
            .is_some_and(|tag| Path::new(&format!("/sys/class/net/gh{tag}")).exists()),
        other => panic!("no stage {other}"),
    }
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root, namespaces, a cgroup, busybox-static and iproute2: GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn killing_the_daemon_at_random_instants_of_creating_leaks_nothing() {
    gobs_testkit::need(NEEDS);
    let mut setup = Setup::containers("");
    let s = setup.s().to_path_buf();
    let seed = u64::from(std::process::id()) * 7919 + 1;
    eprintln!("seed {seed}");
    let mut tags = Vec::new();
    let mut mid_create = 0;
    let rounds = 3 * STAGES.len();
    for round in 0..rounds {
        setup.start_daemon();
        let name = format!("k{round}");
        let mut create = bare()
            .arg("--state-dir")
            .arg(&s)
            .args(["create-machine", &name])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Each stage in turn, then a further 0 to 20 ms: the kill lands anywhere from
        // before the machine is recorded to its registration.
        let stage = STAGES[round % STAGES.len()];
        wait_for(&format!("{name} to reach {stage} or end"), || {
            reached(&setup, &name, stage) || create.try_wait().unwrap().is_some()
        });
        let extra = (seed.wrapping_mul(round as u64 + 1) >> 7) % 20_000;
        std::thread::sleep(Duration::from_micros(extra));
        let still_creating = create.try_wait().unwrap().is_none();
        let started = setup.container_dir(&name).exists();
        setup.kill_daemon();
        // The tag, from the provider's record (once it chose one) or from the init's
        // cgroup: a kill before the record committed leaves neither, and nothing tagged.
        let recorded = setup.slot(&name)[0].as_str().map(str::to_owned);
        if let Some(tag) = recorded.or_else(|| tag_of_init(&setup.container_dir(&name))) {
            tags.push(tag);
        }
        let _ = create.wait();
        let landed = if still_creating && started {
            mid_create += 1;
            "mid-create"
        } else if still_creating {
            "before the container was begun"
        } else {
            "after the create ended"
        };
        setup.start_daemon();
        // Whatever the kill left, the machine is running, failed, or gone; destroying it
        // (when it is there) takes everything down.
        if machine_names(&s).contains(&name) {
            eprintln!(
                "round {round}: killed at {stage} + {extra} µs, {landed}, then {}",
                status_of(&s, &name)
            );
            ok(&s, &["destroy-machine", &name]);
        } else {
            eprintln!("round {round}: killed at {stage} + {extra} µs, {landed}, not recorded");
        }
        assert!(machine_names(&s).is_empty());
        assert_eq!(
            host_leftovers(&setup),
            Vec::<String>::new(),
            "round {round}, kill at {stage}"
        );
        for tag in &tags {
            assert!(
                !Path::new(&format!("/sys/class/net/gh{tag}")).exists(),
                "veth gh{tag}"
            );
            assert_no_cgroup(tag);
        }
        assert!(!setup.container_dir(&name).exists());
        setup.kill_daemon();
    }
    // The stages from the tag on are seen while the create runs: most kills land inside.
    eprintln!("{mid_create} of {rounds} kills landed mid-create");
    assert!(
        mid_create >= rounds / 2,
        "only {mid_create} of {rounds} kills landed while a container was being created"
    );
}
