#![allow(clippy::unwrap_used, clippy::expect_used)]
//! The boss's own tests: what a restart does to machines in flight.

use super::*;
use gobs_runtime::Vat;

#[test]
fn a_restart_fails_what_was_in_flight_logs_it_and_says_what_to_do() {
    let vat = Vat::spawn("boss-restart").unwrap();
    let (settled, machines, logged) = vat
        .run(|| {
            let mut boss = Boss::new();
            for (i, (name, status)) in [
                ("a", MachineStatus::Creating),
                ("b", MachineStatus::Running),
                ("c", MachineStatus::Destroying),
            ]
            .into_iter()
            .enumerate()
            {
                boss.machines.insert(
                    name.to_string(),
                    MachineRecord {
                        id: i as u64,
                        provider: "dummy".into(),
                        status,
                        created_at: 0,
                        error: None,
                        client: None,
                        machine: None,
                    },
                );
            }
            let settled = boss.settle_after_restart();
            let log = boss.log().call().page(Default::default()).unwrap();
            (settled, boss.machines, log.events)
        })
        .unwrap();
    assert_eq!(settled, ["a", "c"]);
    assert_eq!(machines["a"].status, MachineStatus::Failed);
    let error = machines["a"].error.as_deref().unwrap();
    assert!(
        error.contains("restarted while the machine was being created"),
        "{error}"
    );
    assert_eq!(machines["b"].status, MachineStatus::Running);
    assert_eq!(machines["c"].status, MachineStatus::Failed);
    assert!(
        machines["c"]
            .error
            .as_deref()
            .unwrap()
            .contains("destroy it")
    );
    let logged: Vec<_> = logged
        .iter()
        .map(|e| match &e.what {
            What::State { state, error, .. } => {
                (e.machine.clone().unwrap(), *state, error.clone().unwrap())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(logged.len(), 2);
    assert_eq!(
        (logged[0].0.as_str(), logged[0].1),
        ("a", MachineState::Failed)
    );
    assert_eq!(logged[0].2, error);
    assert_eq!(
        (logged[1].0.as_str(), logged[1].1),
        ("c", MachineState::Failed)
    );
    vat.shutdown();
}
