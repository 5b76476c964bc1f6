//! The actor-backed backend, in process: the boss, its providers and hob, through the
//! `Backend` trait and by talking to the actors directly.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::time::Duration;

use gobs_app::actors::hob::{HobClientPresence, HobError, RegistrationState, hob_error};
use gobs_app::backend::Backend;
use gobs_app::backend::boss::{BossBackend, Timeouts};
use gobs_app::config::{Config, parse};
use gobs_app::model::{
    BackendError, Cancel, ErrorKind, MachineInfo, MachineName, MachineStatus, ProviderInfo,
    RunOutput,
};
use gobs_app::progress::Progress;
use gobs_app::providers::dummy::DummyProvider;
use gobs_app::providers::local::MACHINES_DIR;
use gobs_runtime::{Promise, Vat, spawn};
use gobs_testkit::Need;
use tempfile::TempDir;

/// What a test of `local` machines needs: the provider confines each command in a mount
/// namespace of its own, as a uid of its own, so it must run as root.
const LOCAL_PROVIDER: &[Need] = &[Need::Root, Need::MountTmpfs];

/// A backend with the default config's providers (`dummy`, and `local`).
fn default_backend() -> (TempDir, BossBackend) {
    let dir = tempfile::tempdir().unwrap();
    let backend = BossBackend::open(dir.path(), &Config::default()).unwrap();
    (dir, backend)
}

/// A backend whose config is `providers` (TOML `[providers.*]` tables) and a default
/// provider, so it goes through the provider table as a config file does.
fn start(dir: &Path, default: &str, providers: &str) -> BossBackend {
    let text = format!("default_provider = \"{default}\"\n{providers}");
    let config = parse(&text, Path::new("test.toml")).unwrap();
    BossBackend::open(dir, &config).unwrap()
}

fn dummy(name: &str, delay_ms: u64) -> String {
    format!("[providers.{name}]\nkind = \"dummy\"\ncreate_delay = \"{delay_ms}ms\"\n")
}

fn local(name: &str) -> String {
    format!("[providers.{name}]\nkind = \"local\"\n")
}

fn n(name: &str) -> MachineName {
    name.parse().unwrap()
}

fn create(b: &BossBackend, name: &str, provider: &str) -> Result<MachineInfo, BackendError> {
    let (cancel, provider) = (Cancel::new(), Some(provider.to_string()));
    b.create_machine(&cancel, n(name), provider, None, Default::default())
}

fn list_all(b: &BossBackend) -> Result<Vec<MachineInfo>, BackendError> {
    b.list_machines(&Cancel::new())
}

fn show(b: &BossBackend, name: &str) -> Result<MachineInfo, BackendError> {
    b.machine(&Cancel::new(), n(name))
}

fn run(b: &BossBackend, name: &str, command: &[String]) -> Result<RunOutput, BackendError> {
    let run = gobs_app::ops::Run {
        name: n(name),
        command: command.to_vec(),
        timeout: None,
        raw: false,
        stream: false,
        terminal: false,
        tty: None,
        io: None,
    };
    match b.on_machine(&Cancel::new(), std::sync::Arc::new(run))? {
        gobs_app::ops::Response::Run(out) => Ok(out),
        other => panic!("run answered {other:?}"),
    }
}

fn destroy(b: &BossBackend, name: &str) -> Result<MachineInfo, BackendError> {
    b.destroy_machine(&Cancel::new(), n(name), Default::default())
}

fn providers(b: &BossBackend) -> Result<Vec<ProviderInfo>, BackendError> {
    b.providers(&Cancel::new())
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
    let m = create(&b, "web-1", "dummy").unwrap();
    assert_eq!(m.status, MachineStatus::Running);
    assert_eq!(m.provider, "dummy");
    assert_eq!(m.bindings, ["run", "status"]);
    assert!(m.created_at > 0);
    create(&b, "web-2", "dummy").unwrap();

    let list = list_all(&b).unwrap();
    assert_eq!(names(&list), ["web-1", "web-2"]);
    assert!(list.iter().all(|m| m.status == MachineStatus::Running));
    assert!(list.iter().all(|m| m.bindings == ["run", "status"]));

    let shown = show(&b, "web-1").unwrap();
    assert_eq!(shown, m);

    let out = run(&b, "web-1", &argv(&["echo", "hi there"])).unwrap();
    assert_eq!(out.exit_code, Some(0));
    assert_eq!(out.stdout, "dummy machine web-1 ran: echo 'hi there'\n");

    let gone = destroy(&b, "web-1").unwrap();
    assert_eq!(gone.name, "web-1");
    assert_eq!(names(&list_all(&b).unwrap()), ["web-2"]);
    assert_error(
        show(&b, "web-1"),
        ErrorKind::NotFound,
        &["existing machines: web-2"],
    );

    let providers = providers(&b).unwrap();
    let listed: Vec<(&str, &str)> = providers
        .iter()
        .map(|p| (p.name.as_str(), p.kind.as_str()))
        .collect();
    assert_eq!(
        listed,
        [
            ("container", "container"),
            ("dummy", "dummy"),
            ("local", "local"),
            ("qemu", "qemu")
        ]
    );
    b.close().unwrap();
}

#[test]
fn the_boss_and_each_machine_have_vats_of_their_own() {
    let (_dir, b) = default_backend();
    let boss = b.boss().clone();
    let created = boss
        .send()
        .create_machine("m".into(), "dummy".into(), Progress::none());
    assert_eq!(created.wait().unwrap().status, MachineStatus::Running);
    let record = boss.send().record("m".into()).wait().unwrap().unwrap();
    let client = record.client.unwrap();
    let provider = boss
        .send()
        .provider("dummy".into())
        .wait()
        .unwrap()
        .unwrap();
    let provider = provider
        .actor()
        .downcast::<DummyProvider>()
        .expect("a dummy provider");
    let machine_vat = provider.send().vat_of("m".into()).wait().unwrap().unwrap();
    assert_eq!(machine_vat.name(), "machine-dummy.m");
    assert_eq!(client.vat(), machine_vat);
    assert_ne!(provider.vat(), machine_vat);
    assert_ne!(boss.vat(), provider.vat());
    assert_eq!(client.send().machine().wait().unwrap(), "m");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn refusals_list_what_exists() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let (_dir, b) = default_backend();
    assert_error(
        show(&b, "nope"),
        ErrorKind::NotFound,
        &["no machine named \"nope\"", "there are no machines"],
    );
    create(&b, "a", "dummy").unwrap();
    create(&b, "b", "local").unwrap();
    assert_error(
        create(&b, "a", "local"),
        ErrorKind::AlreadyExists,
        &["\"a\" already exists", "existing machines: a, b"],
    );
    for result in [
        show(&b, "c").map(drop),
        run(&b, "c", &argv(&["true"])).map(drop),
        destroy(&b, "c").map(drop),
    ] {
        assert_error(
            result,
            ErrorKind::NotFound,
            &["\"c\"", "existing machines: a, b"],
        );
    }
    assert_error(
        create(&b, "c", "aws"),
        ErrorKind::UnknownProvider,
        &[
            "\"aws\"",
            "enabled providers: container, dummy, local, qemu",
        ],
    );
    // Nothing was recorded by the refused requests.
    assert_eq!(names(&list_all(&b).unwrap()), ["a", "b"]);
}

#[test]
fn a_failed_creation_leaves_a_failed_record_with_the_reason() {
    let (_dir, b) = default_backend();
    assert_error(
        create(&b, "fail-1", "dummy"),
        ErrorKind::Provider,
        &[
            "fail-1",
            "fails machines named fail-* on purpose",
            "destroy-machine fail-1",
        ],
    );
    let m = show(&b, "fail-1").unwrap();
    assert_eq!(m.status, MachineStatus::Failed);
    assert!(m.error.unwrap().contains("on purpose"));
    assert!(m.bindings.is_empty());
    assert_error(
        run(&b, "fail-1", &argv(&["true"])),
        ErrorKind::InvalidRequest,
        &["failed", "on purpose"],
    );
    // The name stays taken until the record goes.
    assert_error(create(&b, "fail-1", "dummy"), ErrorKind::AlreadyExists, &[]);
    destroy(&b, "fail-1").unwrap();
    assert!(list_all(&b).unwrap().is_empty());
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_process_machine_that_cannot_be_made_fails_with_the_reason() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = tempfile::tempdir().unwrap();
    // A file where the machines' directory should be.
    std::fs::write(dir.path().join("not-a-dir"), "").unwrap();
    let root = dir.path().join("not-a-dir");
    let b = start(
        dir.path(),
        "local",
        &format!(
            "{}root = {:?}\n",
            local("local"),
            root.display().to_string()
        ),
    );
    assert_error(
        create(&b, "p", "local"),
        ErrorKind::Provider,
        &["cannot create the machines' directory", "not-a-dir"],
    );
    let p = show(&b, "p").unwrap();
    assert_eq!(p.status, MachineStatus::Failed);
    let error = p.error.unwrap();
    assert!(
        !error.contains("cleaning up"),
        "nothing was made, nothing to clean: {error}"
    );
    destroy(&b, "p").unwrap();
}

#[test]
fn slow_creation_does_not_block_the_boss() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(
        dir.path(),
        "quick",
        &format!("{}{}", dummy("slow", 60_000), dummy("quick", 0)),
    );
    let b = b.with_timeouts(Timeouts {
        create: Duration::from_millis(200),
        ..Timeouts::default()
    });
    // The backend gives up waiting, and says so; the boss keeps going.
    assert_error(
        create(&b, "s", "slow"),
        ErrorKind::Provider,
        &["still being created after 200ms", "gobs-app machine s"],
    );
    let s = show(&b, "s").unwrap();
    assert_eq!(s.status, MachineStatus::Creating);
    // Meanwhile the boss answers, and makes other machines.
    let b = b.with_timeouts(Timeouts::default());
    let q = create(&b, "q", "quick").unwrap();
    assert_eq!(q.status, MachineStatus::Running);
    let list = list_all(&b).unwrap();
    let statuses: Vec<_> = list.iter().map(|m| (m.name.as_str(), m.status)).collect();
    assert_eq!(
        statuses,
        [
            ("q", MachineStatus::Running),
            ("s", MachineStatus::Creating)
        ]
    );
    assert_error(
        run(&b, "s", &argv(&["true"])),
        ErrorKind::InvalidRequest,
        &["still being created"],
    );
    // Destroying it cancels the creation.
    destroy(&b, "s").unwrap();
    assert_eq!(names(&list_all(&b).unwrap()), ["q"]);
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
    let b = start(dir.path(), "slow", &dummy("slow", 3_000));
    let boss = b.boss().clone();
    let hob = boss.send().hob().wait().unwrap();
    let creating: Promise<MachineInfo> =
        boss.send()
            .create_machine("m".into(), "slow".into(), Progress::none());
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
    let destroyed = boss.send().destroy_machine("m".into(), Progress::none());
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
    let provider = boss.send().provider("slow".into()).wait().unwrap().unwrap();
    let provider = provider
        .actor()
        .downcast::<DummyProvider>()
        .expect("a dummy provider");
    assert!(provider.send().machine_names().wait().unwrap().is_empty());
    assert!(provider.send().vat_of("m".into()).wait().unwrap().is_none());
    machine_vat.shutdown();
}

#[test]
fn run_on_a_dummy_echoes_and_is_recorded() {
    let (_dir, b) = default_backend();
    create(&b, "d", "dummy").unwrap();
    run(&b, "d", &argv(&["make", "all"])).unwrap();
    let out = run(&b, "d", &argv(&["ls", "-l"])).unwrap();
    assert_eq!(out.stdout, "dummy machine d ran: ls -l\n");
    let provider = b
        .boss()
        .send()
        .provider("dummy".into())
        .wait()
        .unwrap()
        .unwrap();
    let provider = provider
        .actor()
        .downcast::<DummyProvider>()
        .expect("a dummy provider");
    let machine = provider.send().machine("d".into()).wait().unwrap().unwrap();
    assert_eq!(
        machine.send().history().wait().unwrap(),
        [argv(&["make", "all"]), argv(&["ls", "-l"])]
    );
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn run_on_a_process_machine_really_runs_in_its_directory() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), "local", &local("local"));
    let m = create(&b, "p", "local").unwrap();
    assert_eq!(m.status, MachineStatus::Running);
    assert_eq!(m.bindings, ["run", "status"]);
    let machine_dir = dir.path().join(MACHINES_DIR).join("p");
    assert!(machine_dir.is_dir());

    let out = run(&b, "p", &argv(&["echo", "hi"])).unwrap();
    assert_eq!((out.exit_code, out.stdout.as_str()), (Some(0), "hi\n"));

    let out = run(
        &b,
        "p",
        &argv(&["sh", "-c", "pwd; echo $HOME; touch made-here"]),
    )
    .unwrap();
    let canonical = machine_dir.canonicalize().unwrap();
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(Path::new(lines[0]).canonicalize().unwrap(), canonical);
    assert_eq!(Path::new(lines[1]), machine_dir);
    assert!(machine_dir.join("made-here").exists());

    let out = run(&b, "p", &argv(&["sh", "-c", "echo oops >&2; exit 3"])).unwrap();
    assert_eq!((out.exit_code, out.stderr.as_str()), (Some(3), "oops\n"));

    assert_error(
        run(&b, "p", &argv(&["/no/such/program"])),
        ErrorKind::Provider,
        &["cannot run the command on machine p", "cannot start"],
    );

    destroy(&b, "p").unwrap();
    assert!(!machine_dir.exists());
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn a_configured_shell_gets_the_quoted_command() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let dir = tempfile::tempdir().unwrap();
    let b = start(
        dir.path(),
        "sh",
        &format!("{}command = \"/bin/sh\"\n", local("sh")),
    );
    create(&b, "s", "sh").unwrap();
    let out = run(&b, "s", &argv(&["printf", "%s|", "it's", "a b"])).unwrap();
    assert_eq!(out.stdout, "it's|a b|");
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs root (the local provider confines commands): GOBS_REQUIRE_PRIVILEGED=1 runs it"
)]
fn twenty_machines() {
    gobs_testkit::need(LOCAL_PROVIDER);
    let (_dir, mut b) = default_backend();
    let boss = b.boss().clone();
    // All twenty asked for at once; the providers make them side by side.
    let creating: Vec<Promise<MachineInfo>> = (0..20)
        .map(|i| {
            let provider = if i % 2 == 0 { "dummy" } else { "local" };
            boss.send()
                .create_machine(format!("m{i:02}"), provider.into(), Progress::none())
        })
        .collect();
    for created in creating {
        let m = created.wait().unwrap();
        assert_eq!(m.status, MachineStatus::Running, "{m:?}");
    }
    let list = list_all(&b).unwrap();
    assert_eq!(list.len(), 20);
    assert!(list.iter().all(|m| m.status == MachineStatus::Running));
    for m in &list {
        let out = run(&b, &m.name, &argv(&["echo", &m.name])).unwrap();
        assert!(out.stdout.contains(&m.name), "{out:?}");
    }
    for m in &list {
        destroy(&b, &m.name).unwrap();
    }
    assert!(list_all(&b).unwrap().is_empty());
    b.close().unwrap();
}

#[test]
fn a_disabled_provider_makes_no_machines_but_keeps_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let b = start(dir.path(), "d", &dummy("d", 0));
    create(&b, "a", "d").unwrap();
    b.boss().send().enable_only(vec![]).wait().unwrap();
    assert!(providers(&b).unwrap().is_empty());
    assert_error(
        create(&b, "b", "d"),
        ErrorKind::UnknownProvider,
        &["enabled providers: none"],
    );
    assert_eq!(run(&b, "a", &argv(&["true"])).unwrap().exit_code, Some(0));
    destroy(&b, "a").unwrap();
}
