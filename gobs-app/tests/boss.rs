//! The actor-backed backend, in process: the boss, its providers and hob, through the
//! `Backend` trait and by talking to the actors directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use gobs_app::backend::{Backend, BackendError, ErrorKind, MachineInfo, MachineStatus};
use gobs_app::boss_backend::{BossBackend, MACHINES_DIR, ProviderSpec, Timeouts};
use gobs_app::config::Config;
use gobs_app::dummy::DummySettings;
use gobs_app::hob::{HobClientPresence, HobError, RegistrationState, hob_error};
use gobs_app::process::ProcessSettings;
use gobs_app::provider::ProviderRef;
use gobs_runtime::{Promise, Vat, spawn};
use tempfile::TempDir;

/// A backend with the default config's providers (`dummy`, and `local` of kind process).
fn default_backend() -> (TempDir, BossBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = BossBackend::open(dir.path(), &Config::default()).unwrap();
    (dir, backend)
}

fn dummy(delay_ms: u64) -> ProviderSpec {
    ProviderSpec::Dummy(DummySettings {
        create_delay_ms: delay_ms,
        ..DummySettings::default()
    })
}

fn local(state: &Path) -> ProviderSpec {
    ProviderSpec::Process(ProcessSettings {
        root: state.join(MACHINES_DIR),
        shell: None,
    })
}

fn argv(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| w.to_string()).collect()
}

fn names(list: &[MachineInfo]) -> Vec<&str> {
    list.iter().map(|m| m.name.as_str()).collect()
}

fn assert_error(
    result: Result<impl std::fmt::Debug, BackendError>,
    kind: ErrorKind,
    says: &[&str],
) {
    let err = result.unwrap_err();
    assert_eq!(err.kind, kind, "{err}");
    for part in says {
        assert!(err.message.contains(part), "{part:?} not in: {err}");
    }
}

#[test]
fn create_list_show_run_destroy() {
    let (_dir, mut b) = default_backend();
    let m = b.create_machine("web-1", "dummy").unwrap();
    assert_eq!(m.status, MachineStatus::Running);
    assert_eq!(m.provider, "dummy");
    assert_eq!(m.bindings, ["run", "status"]);
    assert!(m.created_at > 0);
    b.create_machine("web-2", "dummy").unwrap();

    let list = b.list_machines().unwrap();
    assert_eq!(names(&list), ["web-1", "web-2"]);
    assert!(list.iter().all(|m| m.status == MachineStatus::Running));
    assert!(list.iter().all(|m| m.bindings == ["run", "status"]));

    let shown = b.machine("web-1").unwrap();
    assert_eq!(shown, m);

    let out = b.run("web-1", &argv(&["echo", "hi there"])).unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.stdout, "dummy machine web-1 ran: echo 'hi there'\n");

    let gone = b.destroy_machine("web-1").unwrap();
    assert_eq!(gone.name, "web-1");
    assert_eq!(names(&b.list_machines().unwrap()), ["web-2"]);
    assert_error(
        b.machine("web-1"),
        ErrorKind::NotFound,
        &["existing machines: web-2"],
    );

    let providers = b.providers().unwrap();
    let listed: Vec<(&str, &str)> = providers
        .iter()
        .map(|p| (p.name.as_str(), p.kind.as_str()))
        .collect();
    assert_eq!(listed, [("dummy", "dummy"), ("local", "process")]);
    b.close().unwrap();
}

#[test]
fn the_boss_and_each_machine_have_vats_of_their_own() {
    let (_dir, b) = default_backend();
    let boss = b.boss().clone();
    let created = boss.send().create_machine("m".into(), "dummy".into());
    assert_eq!(created.wait().unwrap().status, MachineStatus::Running);
    let record = boss.send().record("m".into()).wait().unwrap().unwrap();
    let client = record.client.unwrap();
    let Some(ProviderRef::Dummy(provider)) = boss.send().provider("dummy".into()).wait().unwrap()
    else {
        panic!("the dummy provider is a DummyProvider");
    };
    let machine_vat = provider.send().vat_of("m".into()).wait().unwrap().unwrap();
    assert_eq!(machine_vat.name(), "machine-dummy-m");
    assert_eq!(client.vat(), machine_vat);
    assert_ne!(provider.vat(), machine_vat);
    assert_ne!(boss.vat(), provider.vat());
    assert_eq!(client.send().machine().wait().unwrap(), "m");
}

#[test]
fn refusals_list_what_exists() {
    let (_dir, b) = default_backend();
    assert_error(
        b.machine("nope"),
        ErrorKind::NotFound,
        &["no machine named \"nope\"", "there are no machines"],
    );
    b.create_machine("a", "dummy").unwrap();
    b.create_machine("b", "local").unwrap();
    assert_error(
        b.create_machine("a", "local"),
        ErrorKind::AlreadyExists,
        &["\"a\" already exists", "existing machines: a, b"],
    );
    for result in [
        b.machine("c").map(drop),
        b.run("c", &argv(&["true"])).map(drop),
        b.destroy_machine("c").map(drop),
    ] {
        assert_error(
            result,
            ErrorKind::NotFound,
            &["\"c\"", "existing machines: a, b"],
        );
    }
    assert_error(
        b.create_machine("c", "aws"),
        ErrorKind::UnknownProvider,
        &["\"aws\"", "enabled providers: dummy, local"],
    );
    // Nothing was recorded by the refused requests.
    assert_eq!(names(&b.list_machines().unwrap()), ["a", "b"]);
}

#[test]
fn a_failed_creation_leaves_a_failed_record_with_the_reason() {
    let (_dir, b) = default_backend();
    assert_error(
        b.create_machine("fail-1", "dummy"),
        ErrorKind::Provider,
        &[
            "fail-1",
            "fails machines named fail-* on purpose",
            "destroy-machine fail-1",
        ],
    );
    let m = b.machine("fail-1").unwrap();
    assert_eq!(m.status, MachineStatus::Failed);
    assert!(m.error.unwrap().contains("on purpose"));
    assert!(m.bindings.is_empty());
    assert_error(
        b.run("fail-1", &argv(&["true"])),
        ErrorKind::InvalidRequest,
        &["failed", "on purpose"],
    );
    // The name stays taken until the record goes.
    assert_error(
        b.create_machine("fail-1", "dummy"),
        ErrorKind::AlreadyExists,
        &[],
    );
    b.destroy_machine("fail-1").unwrap();
    assert!(b.list_machines().unwrap().is_empty());
}

#[test]
fn a_process_machine_that_cannot_be_made_fails_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the machines' directory should be.
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let spec = ProviderSpec::Process(ProcessSettings {
        root: dir.path().join("not-a-dir"),
        shell: None,
    });
    let b = BossBackend::start(dir.path(), [("local".to_string(), spec)]).unwrap();
    assert_error(
        b.create_machine("p", "local"),
        ErrorKind::Provider,
        &["cannot create machine directory", "not-a-dir/p"],
    );
    let p = b.machine("p").unwrap();
    assert_eq!(p.status, MachineStatus::Failed);
    let error = p.error.unwrap();
    assert!(
        !error.contains("cleaning up"),
        "nothing was made, nothing to clean: {error}"
    );
    b.destroy_machine("p").unwrap();
}

#[test]
fn slow_creation_does_not_block_the_boss() {
    let dir = tempfile::tempdir().unwrap();
    let b = BossBackend::start(
        dir.path(),
        [
            ("slow".to_string(), dummy(60_000)),
            ("quick".to_string(), dummy(0)),
        ],
    )
    .unwrap();
    let b = b.with_timeouts(Timeouts {
        create: Duration::from_millis(200),
        ..Timeouts::default()
    });
    // The backend gives up waiting, and says so; the boss keeps going.
    assert_error(
        b.create_machine("s", "slow"),
        ErrorKind::Provider,
        &["still being created after 200ms", "gobs-app machine s"],
    );
    let s = b.machine("s").unwrap();
    assert_eq!(s.status, MachineStatus::Creating);
    // Meanwhile the boss answers, and makes other machines.
    let b = b.with_timeouts(Timeouts::default());
    let q = b.create_machine("q", "quick").unwrap();
    assert_eq!(q.status, MachineStatus::Running);
    let list = b.list_machines().unwrap();
    let statuses: Vec<_> = list.iter().map(|m| (m.name.as_str(), m.status)).collect();
    assert_eq!(
        statuses,
        [
            ("q", MachineStatus::Running),
            ("s", MachineStatus::Creating)
        ]
    );
    assert_error(
        b.run("s", &argv(&["true"])),
        ErrorKind::InvalidRequest,
        &["still being created"],
    );
    // Destroying it cancels the creation.
    b.destroy_machine("s").unwrap();
    assert_eq!(names(&b.list_machines().unwrap()), ["q"]);
}

#[test]
fn a_registration_capability_works_once() {
    let (_dir, b) = default_backend();
    let hob = b.boss().send().hob().wait().unwrap();
    let registration = hob.send().issue("m".into()).wait().unwrap();
    let (machine_vat, client) = b
        .vats()
        .start_vat("test-machine", || spawn(HobClientPresence::new("m".into())))
        .unwrap();
    let register = || client.send().register(registration.clone()).wait();
    assert_eq!(register().unwrap(), "m");
    assert_eq!(
        hob.send().client_of("m".into()).wait().unwrap(),
        Some(client.clone())
    );
    let replayed = register().unwrap_err();
    assert_eq!(
        hob_error(&replayed),
        Some(HobError::AlreadyUsed {
            machine: "m".into()
        }),
        "{replayed}"
    );
    assert!(replayed.to_string().contains("already used"), "{replayed}");
    // Another client cannot take the machine's place with it either.
    let intruder = machine_vat
        .run(|| spawn(HobClientPresence::new("m".into())))
        .unwrap();
    let err = intruder
        .send()
        .register(registration.clone())
        .wait()
        .unwrap_err();
    assert!(matches!(
        hob_error(&err),
        Some(HobError::AlreadyUsed { .. })
    ));
    assert_eq!(
        hob.send().client_of("m".into()).wait().unwrap(),
        Some(client)
    );
    machine_vat.shutdown();
}

#[test]
fn a_revoked_registration_capability_is_refused() {
    let (_dir, b) = default_backend();
    let hob = b.boss().send().hob().wait().unwrap();
    let registration = hob.send().issue("m".into()).wait().unwrap();
    hob.send().revoke("m".into()).wait().unwrap();
    assert_eq!(
        registration.send().state().wait().unwrap(),
        RegistrationState::Revoked
    );
    let machine_vat = Vat::spawn("test-machine-2").unwrap();
    let client = machine_vat
        .run(|| spawn(HobClientPresence::new("m".into())))
        .unwrap();
    let err = client.send().register(registration).wait().unwrap_err();
    assert_eq!(
        hob_error(&err),
        Some(HobError::Revoked {
            machine: "m".into()
        })
    );
    assert!(hob.send().registered_machines().wait().unwrap().is_empty());
    machine_vat.shutdown();
}

#[test]
fn destroying_a_machine_revokes_its_registration_capability() {
    let dir = tempfile::tempdir().unwrap();
    let b = BossBackend::start(dir.path(), [("slow".to_string(), dummy(3_000))]).unwrap();
    let boss = b.boss().clone();
    let hob = boss.send().hob().wait().unwrap();
    let creating: Promise<MachineInfo> = boss.send().create_machine("m".into(), "slow".into());
    // While the provider works, the capability it was handed is open.
    let registration = hob
        .send()
        .pending_registration("m".into())
        .wait()
        .unwrap()
        .unwrap();
    assert_eq!(
        registration.send().state().wait().unwrap(),
        RegistrationState::Open
    );
    // Destroyed while still being created: the capability is revoked.
    let destroyed = boss.send().destroy_machine("m".into());
    assert_eq!(
        destroyed.wait().unwrap().unwrap().status,
        MachineStatus::Creating
    );
    assert!(boss.send().machine_names().wait().unwrap().is_empty());
    let machine_vat = Vat::spawn("late-machine").unwrap();
    let late = machine_vat
        .run(|| spawn(HobClientPresence::new("m".into())))
        .unwrap();
    let err = late.send().register(registration).wait().unwrap_err();
    assert_eq!(
        hob_error(&err),
        Some(HobError::Revoked {
            machine: "m".into()
        }),
        "{err}"
    );
    assert!(err.to_string().contains("destroyed"), "{err}");
    // The creation ends as cancelled, and the provider keeps nothing of it.
    let outcome = creating.wait().unwrap();
    assert_eq!(outcome.status, MachineStatus::Failed);
    let error = outcome.error.unwrap();
    assert!(
        error.contains("destroyed before its creation finished"),
        "{error}"
    );
    assert!(hob.send().registered_machines().wait().unwrap().is_empty());
    let Some(ProviderRef::Dummy(provider)) = boss.send().provider("slow".into()).wait().unwrap()
    else {
        panic!("a dummy provider");
    };
    assert!(provider.send().machine_names().wait().unwrap().is_empty());
    assert!(provider.send().vat_of("m".into()).wait().unwrap().is_none());
    machine_vat.shutdown();
}

#[test]
fn run_on_a_dummy_echoes_and_is_recorded() {
    let (_dir, b) = default_backend();
    b.create_machine("d", "dummy").unwrap();
    b.run("d", &argv(&["make", "all"])).unwrap();
    let out = b.run("d", &argv(&["ls", "-l"])).unwrap();
    assert_eq!(out.stdout, "dummy machine d ran: ls -l\n");
    let Some(ProviderRef::Dummy(provider)) =
        b.boss().send().provider("dummy".into()).wait().unwrap()
    else {
        panic!("a dummy provider");
    };
    let machine = provider.send().machine("d".into()).wait().unwrap().unwrap();
    assert_eq!(
        machine.send().history().wait().unwrap(),
        [argv(&["make", "all"]), argv(&["ls", "-l"])]
    );
}

#[test]
fn run_on_a_process_machine_really_runs_in_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let b = BossBackend::start(dir.path(), [("local".to_string(), local(dir.path()))]).unwrap();
    let m = b.create_machine("p", "local").unwrap();
    assert_eq!(m.status, MachineStatus::Running);
    assert_eq!(m.bindings, ["run", "status"]);
    let machine_dir = dir.path().join(MACHINES_DIR).join("p");
    assert!(machine_dir.is_dir());

    let out = b.run("p", &argv(&["echo", "hi"])).unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str()), (Some(0), "hi\n"));

    let out = b
        .run(
            "p",
            &argv(&["sh", "-c", "pwd; echo $HOME; touch made-here"]),
        )
        .unwrap();
    let canonical = machine_dir.canonicalize().unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(Path::new(lines[0]).canonicalize().unwrap(), canonical);
    assert_eq!(Path::new(lines[1]), machine_dir);
    assert!(machine_dir.join("made-here").exists());

    let out = b
        .run("p", &argv(&["sh", "-c", "echo oops >&2; exit 3"]))
        .unwrap();
    assert_eq!((out.exit_code, out.stderr.as_str()), (Some(3), "oops\n"));

    assert_error(
        b.run("p", &argv(&["/no/such/program"])),
        ErrorKind::Provider,
        &["cannot run the command on machine p", "cannot start"],
    );

    b.destroy_machine("p").unwrap();
    assert!(!machine_dir.exists());
}

#[test]
fn a_configured_shell_gets_the_quoted_command() {
    let dir = tempfile::tempdir().unwrap();
    let spec = ProviderSpec::Process(ProcessSettings {
        root: dir.path().join(MACHINES_DIR),
        shell: Some("/bin/sh".into()),
    });
    let b = BossBackend::start(dir.path(), [("sh".to_string(), spec)]).unwrap();
    b.create_machine("s", "sh").unwrap();
    let out = b
        .run("s", &argv(&["printf", "%s|", "it's", "a b"]))
        .unwrap();
    assert_eq!(out.stdout, "it's|a b|");
}

#[test]
fn twenty_machines() {
    let (_dir, mut b) = default_backend();
    let boss = b.boss().clone();
    // All twenty asked for at once; the providers make them side by side.
    let creating: Vec<Promise<MachineInfo>> = (0..20)
        .map(|i| {
            let provider = if i % 2 == 0 { "dummy" } else { "local" };
            boss.send()
                .create_machine(format!("m{i:02}"), provider.into())
        })
        .collect();
    for created in creating {
        let m = created.wait().unwrap();
        assert_eq!(m.status, MachineStatus::Running, "{m:?}");
    }
    let list = b.list_machines().unwrap();
    assert_eq!(list.len(), 20);
    assert!(list.iter().all(|m| m.status == MachineStatus::Running));
    for m in &list {
        let out = b.run(&m.name, &argv(&["echo", &m.name])).unwrap();
        assert!(out.stdout.contains(&m.name), "{out:?}");
    }
    for m in &list {
        b.destroy_machine(&m.name).unwrap();
    }
    assert!(b.list_machines().unwrap().is_empty());
    b.close().unwrap();
}

#[test]
fn a_disabled_provider_makes_no_machines_but_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let b = BossBackend::start(dir.path(), [("d".to_string(), dummy(0))]).unwrap();
    b.create_machine("a", "d").unwrap();
    b.boss().send().enable_only(vec![]).wait().unwrap();
    assert!(b.providers().unwrap().is_empty());
    assert_error(
        b.create_machine("b", "d"),
        ErrorKind::UnknownProvider,
        &["enabled providers: none"],
    );
    assert_eq!(b.run("a", &argv(&["true"])).unwrap().exit_code, Some(0));
    b.destroy_machine("a").unwrap();
}
