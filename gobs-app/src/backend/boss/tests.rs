#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use crate::config::Config;
use crate::model::ErrorKind;
use crate::ops::Request;

#[test]
fn answers_requests_like_any_backend_and_marks_the_default_provider() {
    let dir = tempfile::tempdir().unwrap();
    let config = Config::default();
    let mut backend: Box<dyn Backend + Send + Sync> =
        Box::new(BossBackend::open(dir.path(), &config).unwrap());
    let cancel = Cancel::new();
    let Response::CreateMachine(m) = (Request::CreateMachine {
        name: "web-1".parse().unwrap(),
        provider: None,
        host: None,
        progress: Default::default(),
    })
    .execute(&*backend, &cancel) else {
        panic!("expected a machine");
    };
    assert_eq!(
        (m.provider.as_str(), m.status),
        ("dummy", MachineStatus::Running)
    );
    let Response::Providers(providers) = (Request::Providers {}).execute(&*backend, &cancel) else {
        panic!("expected providers");
    };
    let defaults: Vec<_> = providers
        .iter()
        .filter(|p| p.default)
        .map(|p| &p.name)
        .collect();
    assert_eq!(defaults, ["dummy"]);
    let Response::Error(e) = Request::Run(crate::ops::Run {
        name: "web-1".parse().unwrap(),
        command: vec![],
        timeout: None,
        raw: false,
        stream: false,
        terminal: false,
        tty: None,
        io: None,
    })
    .execute(&*backend, &cancel) else {
        panic!("an empty command is refused");
    };
    assert_eq!(e.kind, ErrorKind::InvalidRequest);
    backend.close().unwrap();
}

#[test]
fn the_boss_checks_machine_names_itself() {
    let dir = tempfile::tempdir().unwrap();
    let b = BossBackend::open(dir.path(), &Config::default()).unwrap();
    let err = b
        .boss()
        .send()
        .create_machine(
            "../escape".into(),
            "local".into(),
            crate::progress::Progress::none(),
        )
        .wait()
        .unwrap_err();
    let err = BackendError::from(err);
    assert_eq!(err.kind, ErrorKind::InvalidRequest, "{err}");
    assert!(!dir.path().join("escape").exists());
}
