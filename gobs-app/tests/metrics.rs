//! The daemon's Prometheus metrics, read by a real exposition parser (`prometheus-parse`)
//! after machines were created, failed and destroyed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;

use prometheus_parse::{Scrape, Value};

mod common;
mod webkit;
use common::*;

fn scrape(url: &str) -> (String, Scrape) {
    let mut response = webkit::agent().get(url).call().unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    let text = response.body_mut().read_to_string().unwrap();
    let lines = text.lines().map(|l| Ok(l.to_string()));
    let parsed = Scrape::parse(lines).expect("the exposition parses");
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    (text, parsed)
}

/// The value of the sample `name` with exactly `labels`.
fn value(scrape: &Scrape, name: &str, labels: &[(&str, &str)]) -> Option<Value> {
    let want: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    scrape
        .samples
        .iter()
        .find(|s| {
            let have: BTreeMap<String, String> = s
                .labels
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            s.metric == name && have == want
        })
        .map(|s| s.value.clone())
}

fn number(value: Option<Value>) -> f64 {
    match value {
        Some(Value::Gauge(v) | Value::Counter(v) | Value::Untyped(v)) => v,
        other => panic!("not a number: {other:?}"),
    }
}

/// How many fsyncs the histogram counted (its `+Inf` bucket, equal to its count).
fn fsync_count(m: &Scrape, text: &str) -> f64 {
    match value(m, "gobs_store_fsync_duration_seconds", &[]) {
        Some(Value::Histogram(buckets)) => {
            let total = buckets.last().unwrap();
            assert!(total.less_than.is_infinite(), "{text}");
            assert!(
                buckets.windows(2).all(|w| w[0].count <= w[1].count),
                "cumulative buckets: {text}"
            );
            total.count
        }
        other => panic!("fsync durations: {other:?}\n{text}"),
    }
}

#[test]
fn the_daemon_exposes_machines_durations_failures_and_the_process() {
    let dir = state();
    let s = dir.path();
    let served = webkit::serve(s);
    assert!(
        served.metrics.starts_with("http://127.0.0.1:"),
        "{}",
        served.metrics
    );
    for name in ["a", "b", "c"] {
        ok(s, &["create-machine", name]);
    }
    fails(s, &["create-machine", "fail-1"]);
    ok(s, &["destroy-machine", "a"]);

    let (text, m) = scrape(&served.metrics);
    let machines = |state: &str| {
        number(value(
            &m,
            "gobs_machines",
            &[("provider", "dummy"), ("state", state)],
        ))
    };
    assert_eq!(machines("running"), 2.0, "{text}");
    assert_eq!(machines("failed"), 1.0);
    assert!(
        value(
            &m,
            "gobs_machines",
            &[("provider", "dummy"), ("state", "destroying")]
        )
        .is_none()
    );

    match value(
        &m,
        "gobs_machine_create_duration_seconds",
        &[("provider", "dummy"), ("outcome", "ok")],
    ) {
        Some(Value::Histogram(buckets)) => {
            let total = buckets.last().unwrap();
            assert!(total.less_than.is_infinite());
            assert_eq!(total.count, 3.0, "{text}");
        }
        other => panic!("create durations: {other:?}\n{text}"),
    }
    match value(
        &m,
        "gobs_machine_destroy_duration_seconds",
        &[("provider", "dummy"), ("outcome", "ok")],
    ) {
        Some(Value::Histogram(buckets)) => assert_eq!(buckets.last().unwrap().count, 1.0),
        other => panic!("destroy durations: {other:?}\n{text}"),
    }
    let failures = value(
        &m,
        "gobs_machine_failures_total",
        &[("provider", "dummy"), ("reason", "create")],
    );
    assert_eq!(number(failures), 1.0, "{text}");
    let commands = value(
        &m,
        "gobs_operator_commands_total",
        &[("op", "create-machine"), ("outcome", "error")],
    );
    assert_eq!(number(commands), 1.0);
    assert_eq!(number(value(&m, "gobs_events_kept", &[])), 15.0, "{text}");
    assert_eq!(number(value(&m, "gobs_events_retained_max", &[])), 10_000.0);
    assert!(number(value(&m, "gobs_store_size_bytes", &[])) > 0.0);
    assert!(
        number(value(&m, "gobs_vats", &[])) >= 4.0,
        "boss, providers, machines"
    );
    assert!(number(value(&m, "process_resident_memory_bytes", &[])) > 1e6);
    assert!(
        number(value(&m, "gobs_actors", &[])) >= 4.0,
        "at least the boss's, the providers' and the machines' roots: {text}"
    );
    assert_eq!(
        number(value(&m, "gobs_hob_sessions", &[])),
        0.0,
        "dummy machines have no hob session"
    );
    let commits = number(value(&m, "gobs_store_commits_total", &[]));
    let fsyncs = fsync_count(&m, &text);
    assert!(
        commits >= 4.0,
        "a commit per created machine at least: {text}"
    );
    assert!(fsyncs >= commits, "every commit is fsynced: {text}");

    // A create commits and fsyncs again.
    ok(s, &["create-machine", "d"]);
    let (text, m) = scrape(&served.metrics);
    assert!(number(value(&m, "gobs_store_commits_total", &[])) > commits);
    assert!(fsync_count(&m, &text) > fsyncs);

    // Conventions: every metric has help, a gobs_ (or process_) name, no machine names.
    for sample in &m.samples {
        assert!(
            sample.metric.starts_with("gobs_") || sample.metric.starts_with("process_"),
            "{}",
            sample.metric
        );
        for (key, label) in sample.labels.iter() {
            assert!(
                !["a", "b", "c", "fail-1"].contains(&label.as_str()),
                "{key}={label}"
            );
        }
    }
    for family in [
        "gobs_machines",
        "gobs_machine_create_duration_seconds",
        "gobs_vats",
        "gobs_actors",
        "gobs_hob_sessions",
        "gobs_store_commits",
        "gobs_store_fsync_duration_seconds",
    ] {
        assert!(m.docs.contains_key(family), "no HELP for {family}");
    }
    served.daemon.stop("TERM");
}

#[test]
fn nothing_listens_unless_the_config_says_so() {
    let dir = state();
    let s = dir.path();
    let err = fails(s, &["web"]);
    assert!(
        err.contains("[metrics] or [dashboard] enabled = true"),
        "{err}"
    );
    let daemon = Daemon::start(s);
    let out = ok(s, &["web"]);
    assert_eq!(out, "metrics:   off\ndashboard: off\n");
    daemon.stop("TERM");
}
