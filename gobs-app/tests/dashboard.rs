//! The dashboard over HTTP: the token, the cross-site checks, the page, the actions and the
//! live stream. (`tests/browser.rs` drives the same page in a real Chromium.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};

mod common;
mod webkit;
use common::*;
use webkit::agent;

/// The cookie the login sets.
fn login(served: &webkit::Served) -> String {
    let response = agent().get(&served.login).call().unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers().get("location").unwrap(), "/");
    let cookie = response
        .headers()
        .get("set-cookie")
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    cookie.split(';').next().unwrap().to_string()
}

/// The page's CSRF token.
fn csrf(page: &str) -> String {
    let at = page.find("name=\"gobs-csrf\" content=\"").unwrap() + 26;
    page[at..at + 52].to_string()
}

fn get(url: &str, cookie: Option<&str>) -> (u16, String) {
    let mut request = agent().get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    let mut response = request.call().unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

fn post(url: &str, headers: &[(&str, &str)], body: &str) -> (u16, String) {
    let mut request = agent().post(url);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    let mut response = request.send(body).unwrap();
    let status = response.status().as_u16();
    (status, response.body_mut().read_to_string().unwrap())
}

#[test]
fn nothing_without_the_token_and_no_action_from_another_site() {
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "web-1"]);
    let served = webkit::serve(s);
    let base = &served.base;
    for path in ["/", "/machines", "/events"] {
        let (status, body) = get(&format!("{base}{path}"), None);
        assert_eq!(status, 401, "{path}: {body}");
        assert!(body.contains("gobs-app web"), "{body}");
    }
    let (status, _) = get(&format!("{base}/login?token=wrong"), None);
    assert_eq!(status, 401);
    let (status, _) = get(&format!("{base}/"), Some("gobs_dashboard=wrong"));
    assert_eq!(status, 401);
    let (status, _) = post(&format!("{base}/machines/web-1/destroy"), &[], "");
    assert_eq!(status, 401);

    let cookie = login(&served);
    let (status, page) = get(&format!("{base}/"), Some(&cookie));
    assert_eq!(status, 200);
    assert!(page.contains("<tr data-machine=\"web-1\">"), "{page}");
    let token = csrf(&page);
    let origin = base.as_str();
    let url = format!("{base}/machines/web-1/destroy");
    // The token's cookie alone (what a cross-site form would send) does nothing.
    let (status, body) = post(&url, &[("cookie", &cookie), ("origin", origin)], "");
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("CSRF"), "{body}");
    let (status, body) = post(
        &url,
        &[
            ("cookie", &cookie),
            ("x-gobs-csrf", &token),
            ("origin", "http://evil.example"),
        ],
        "",
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Origin http://evil.example"), "{body}");
    // Another name for the address (DNS rebinding) is refused, token and all.
    let port = base.rsplit(':').next().unwrap();
    let (status, _) = post(
        &url,
        &[
            ("cookie", &cookie),
            ("x-gobs-csrf", &token),
            ("origin", origin),
            ("host", &format!("evil.example:{port}")),
        ],
        "",
    );
    assert_eq!(status, 421);
    assert_eq!(machine_names(s), ["web-1"], "nothing was destroyed");
    served.daemon.stop("TERM");
}

#[test]
fn the_page_creates_and_destroys_and_streams_each_event() {
    let dir = state();
    let s = dir.path();
    ok(s, &["create-machine", "old"]);
    fails(s, &["create-machine", "fail-1"]);
    let served = webkit::serve(s);
    let base = &served.base;
    let cookie = login(&served);
    let (_, page) = get(&format!("{base}/"), Some(&cookie));
    assert!(
        page.contains("1 running (dummy)") && page.contains("1 failed (dummy)"),
        "{page}"
    );
    assert!(
        page.contains("fails machines named fail-* on purpose"),
        "the failure is shown"
    );
    assert!(
        page.contains("#1  old  creating (provider dummy)"),
        "the history is shown"
    );
    let token = csrf(&page);

    // A live stream from now on.
    let stream = agent()
        .get(format!("{base}/events"))
        .header("cookie", &cookie)
        .call()
        .unwrap();
    assert_eq!(stream.status(), 200);
    assert!(
        stream
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let mut lines = BufReader::new(stream.into_body().into_reader()).lines();
    let mut next_data = move || loop {
        let line = lines.next().unwrap().unwrap();
        if let Some(data) = line.strip_prefix("data: ") {
            return serde_json::from_str::<serde_json::Value>(data).unwrap();
        }
    };

    let acting = [
        ("cookie", cookie.as_str()),
        ("x-gobs-csrf", token.as_str()),
        ("origin", base.as_str()),
        ("content-type", "application/json"),
    ];
    let (status, body) = post(
        &format!("{base}/machines"),
        &acting,
        r#"{"name":"new-1","provider":null}"#,
    );
    assert_eq!(status, 200, "{body}");
    let created: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(created["status"], "running");
    let seen: Vec<String> = (0..3)
        .map(|_| next_data()["text"].as_str().unwrap().to_string())
        .collect();
    assert!(seen[0].contains("new-1  creating"), "{seen:?}");
    assert!(seen[1].contains("new-1  running"), "{seen:?}");
    assert!(
        seen[2].contains("new-1  create-machine by dashboard"),
        "{seen:?}"
    );

    // A change made elsewhere (the command line) arrives too.
    ok(s, &["destroy-machine", "old"]);
    let event = next_data();
    assert_eq!(event["event"]["machine"], "old");
    assert_eq!(event["event"]["what"]["state"], "destroying");

    let (status, body) = post(&format!("{base}/machines/new-1/destroy"), &acting, "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(machine_names(s), ["fail-1"]);
    let (status, body) = post(&format!("{base}/machines"), &acting, r#"{"name":"../x"}"#);
    assert_eq!(status, 400);
    assert!(body.contains("invalid machine name"), "{body}");
    let (status, body) = post(&format!("{base}/machines/ghost/destroy"), &acting, "");
    assert_eq!(status, 404, "{body}");
    let (_, fragment) = get(&format!("{base}/machines"), Some(&cookie));
    assert!(
        fragment.contains("Machines (1)") && !fragment.contains("data-machine=\"new-1\""),
        "{fragment}"
    );
    served.daemon.stop("TERM");
}
