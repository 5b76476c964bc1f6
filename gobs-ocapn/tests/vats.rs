//! Vats meet the network: a `#[define_actor]` actor exported on one node is called by
//! method name from another node, through a far reference whose `send()` returns a gobs
//! `Promise`; a failing method breaks the promise and rolls its turn back.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::tcp_node;

use gobs_ocapn::captp::{CapRef, Term};
use gobs_ocapn::locator::Sturdyref;
use gobs_ocapn::syrup::Value;
use gobs_ocapn::vat::{RemoteObject, export_actor};
use std::future::IntoFuture;

use gobs_runtime::{Vat, define_actor};

#[define_actor]
pub struct Tally {
    total: u64,
    names: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("{0} is too many")]
pub struct TooMany(u64);

#[define_actor]
impl Tally {
    pub fn add(&mut self, who: String, n: u64) -> Result<u64, TooMany> {
        self.names.push(who);
        if n > 100 {
            return Err(TooMany(n));
        }
        self.total += n;
        Ok(self.total)
    }

    pub fn names(&self) -> Vec<String> {
        self.names.clone()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gobs_actor_is_called_by_method_name_across_nodes() {
    let vat = Vat::spawn("tally").unwrap();
    let tally = vat
        .spawn_actor(Tally {
            total: 0,
            names: vec![],
        })
        .unwrap();
    let server = tcp_node().await;
    let client = tcp_node().await;
    let exported = export_actor(&server, tally.clone()).await.unwrap();
    let Term::Ref(CapRef::Local(obj)) = exported else {
        panic!()
    };
    server
        .with_core(move |c| c.bind_swiss(b"tally-swiss", obj))
        .await
        .unwrap();

    let sturdyref = Sturdyref {
        peer: server.locator().clone(),
        swiss: b"tally-swiss".to_vec(),
    };
    let p = client
        .with_core(move |c| c.enliven(&sturdyref))
        .await
        .unwrap();
    let Ok(Term::Ref(remote)) = client.settled(p).await.unwrap() else {
        panic!("enliven failed")
    };
    let far = RemoteObject::new(client.clone(), remote);

    // Symbols and strings both reach a String parameter.
    let total = far
        .send("add", vec![Term::sym("ann"), Term::Data(Value::from(5u64))])
        .await
        .unwrap();
    assert_eq!(total, Term::Data(Value::from(5u64)));
    let total = far
        .send("add", vec![Term::str("bob"), Term::Data(Value::from(7u64))])
        .await
        .unwrap();
    assert_eq!(total, Term::Data(Value::from(12u64)));

    // The method's error breaks the promise; its turn is rolled back (no name recorded).
    let err = far
        .send(
            "add",
            vec![Term::str("eve"), Term::Data(Value::from(1000u64))],
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("1000 is too many"), "{err}");
    let names = far.send("names", vec![]).await.unwrap();
    assert_eq!(names, Term::List(vec![Term::str("ann"), Term::str("bob")]));

    // Wrong method, wrong arguments: broken promises that say what was wrong.
    let err = far.send("nope", vec![]).await.unwrap_err();
    assert!(err.to_string().contains("no method `nope`"), "{err}");
    let err = far.send("add", vec![Term::str("x")]).await.unwrap_err();
    assert!(err.to_string().contains("bad arguments for `add("), "{err}");

    // The actor in its own vat saw the same calls.
    let local = tally.send_with(|t: &Tally| t.total).await.unwrap();
    assert_eq!(local, 12);
    vat.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vat_code_pipelines_across_the_wire() {
    let server = tcp_node().await;
    server
        .with_core(gobs_ocapn::fixtures::install)
        .await
        .unwrap();
    let client = tcp_node().await;
    let sturdyref = Sturdyref {
        peer: server.locator().clone(),
        swiss: gobs_ocapn::fixtures::CAR_FACTORY_BUILDER.to_vec(),
    };
    let p = client
        .with_core(move |c| c.enliven(&sturdyref))
        .await
        .unwrap();
    let Ok(Term::Ref(builder)) = client.settled(p).await.unwrap() else {
        panic!("enliven failed")
    };
    let builder = RemoteObject::new(client.clone(), builder);
    // Three messages leave before the first answer: each goes to the previous answer.
    let factory = builder.pipeline_args(vec![]).await.unwrap();
    let car = factory
        .pipeline_args(vec![Term::List(vec![
            Term::sym("blue"),
            Term::sym("roadster"),
        ])])
        .await
        .unwrap();
    assert_eq!(
        car.send_args(vec![]).await.unwrap(),
        Term::str("Vroom! I am a blue roadster car!")
    );
    // A break travels down the pipeline to the last message.
    let bad = factory
        .pipeline_args(vec![Term::sym("not-a-car")])
        .await
        .unwrap();
    let err = bad.send("drive", vec![]).await.unwrap_err();
    assert!(err.to_string().contains("a car is [color model]"), "{err}");
}

/// A vat on a `LocalWorker` of the node's own thread: the connection's reader runs the
/// call's turn and writes its answer in the same wake-up. Calls keep their order, one
/// that fails rolls back, and many in flight all come back.
#[test]
fn an_actor_in_a_vat_on_the_nodes_own_thread_answers_in_order() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    tokio::task::LocalSet::new().block_on(&rt, async {
        let (worker, run) = gobs_runtime::LocalWorker::new();
        tokio::task::spawn_local(run);
        let vat = Vat::spawn_on("tally-here", &worker).unwrap();
        let tally = vat
            .post(|| {
                Ok(gobs_runtime::spawn(Tally {
                    total: 0,
                    names: vec![],
                }))
            })
            .await
            .unwrap();
        let (server, client) = (tcp_node().await, tcp_node().await);
        let sturdyref = common::publish(&server, tally, b"tally-here").await;
        let far: gobs_runtime::Ref<Tally> =
            common::within(RemoteObject::enliven_as(&client, &sturdyref))
                .await
                .unwrap();
        assert_eq!(
            common::within(far.send().add("ann".into(), 1).into_future())
                .await
                .unwrap(),
            1
        );
        assert!(
            common::within(far.send().add("bob".into(), 500).into_future())
                .await
                .is_err()
        );
        let answers: Vec<_> = (0..20)
            .map(|i| far.send().add(format!("c{i}"), 1))
            .collect();
        for (i, answer) in answers.into_iter().enumerate() {
            assert_eq!(
                common::within(answer.into_future()).await.unwrap(),
                i as u64 + 2
            );
        }
        let names = common::within(far.send().names().into_future())
            .await
            .unwrap();
        let mut expected = vec!["ann".to_owned()];
        expected.extend((0..20).map(|i| format!("c{i}")));
        assert_eq!(names, expected, "the failed call left nothing");
    });
}
