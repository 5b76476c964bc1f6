//! The dashboard in a real browser: Debian's Chromium, headless, driven over WebDriver
//! (chromedriver, through the `fantoccini` client). It checks that the page loads and lists
//! the machines a test created, follows a machine's state change live, destroys a machine
//! from the page, and that requests without the token are refused; it keeps a screenshot
//! and prints its path.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use gobs_testkit::Need;

mod common;
mod webkit;
use common::*;

/// Two dummy providers: `dummy`, and `slow`, whose machines stay `creating` for 2 s (long
/// enough to watch the page show it, then show `running`).
const PROVIDERS: &str = "\n[providers.dummy]\nkind = \"dummy\"\n\n\
[providers.slow]\nkind = \"dummy\"\ncreate_delay = \"2s\"\n";

/// chromedriver on a free loopback port; killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Driver {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut child = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // It says when it listens.
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = lines.any(|l| l.is_ok_and(|l| l.contains("started successfully")));
        assert!(ready, "chromedriver did not start");
        std::thread::spawn(move || lines.for_each(drop));
        Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn browser(driver: &Driver, profile: &Path) -> Client {
    let args = [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1280,900",
        &format!("--user-data-dir={}", profile.display()),
    ];
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({ "binary": "/usr/bin/chromium", "args": args }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("chromium starts under chromedriver")
}

/// Waits (up to 20 s) until `css` matches `present` elements or none.
async fn wait_for(client: &Client, css: &str, present: bool) {
    let start = Instant::now();
    loop {
        let found = !client.find_all(Locator::Css(css)).await.unwrap().is_empty();
        if found == present {
            return;
        }
        let page = client.source().await.unwrap_or_default();
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "timed out waiting for {css} to be {}:\n{page}",
            if present { "there" } else { "gone" }
        );
        // The WebDriver way of waiting: look at the page again shortly.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `fetch(path, options)` in the page; the answer's status.
async fn status_of(client: &Client, path: &str, options: &str) -> u64 {
    let script =
        format!("const done = arguments[0]; fetch('{path}', {options}).then(r => done(r.status));");
    client
        .execute_async(&script, vec![])
        .await
        .unwrap()
        .as_u64()
        .unwrap()
}

#[test]
#[cfg_attr(
    not(gobs_require_all),
    ignore = "needs chromium and chromium-driver: set GOBS_REQUIRE_PRIVILEGED=1 (CI sets CI) to run it"
)]
fn the_dashboard_in_chromium_lists_updates_destroys_and_needs_its_token() {
    gobs_testkit::need(&[
        Need::Command("chromium", "chromium"),
        Need::Command("chromedriver", "chromium-driver"),
    ]);
    let dir = state();
    let s = dir.path().to_path_buf();
    std::fs::write(
        s.join("config.toml"),
        format!("{}{PROVIDERS}", webkit::CONFIG),
    )
    .unwrap();
    ok(&s, &["create-machine", "web-1"]);
    ok(&s, &["create-machine", "db-1"]);
    let served = webkit::serve_with_config(&s);
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver::start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let client = browser(&driver, profile.path()).await;
        // Without the token: refused.
        client.goto(&format!("{}/", served.base)).await.unwrap();
        let refused = client.source().await.unwrap();
        assert!(refused.contains("needs its access token"), "{refused}");

        // With it: the page lists the machines, and goes live.
        client.goto(&served.login).await.unwrap();
        wait_for(&client, "tr[data-machine='web-1']", true).await;
        wait_for(&client, "tr[data-machine='db-1']", true).await;
        let live = client.find(Locator::Id("live")).await.unwrap();
        let start = Instant::now();
        while live.text().await.unwrap() != "live" {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the live updates never connected"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        // A machine made elsewhere appears, creating, then running: no reload.
        let state_dir = s.clone();
        let creating = std::thread::spawn(move || {
            ok(
                &state_dir,
                &["create-machine", "slow-1", "--provider", "slow"],
            )
        });
        wait_for(&client, "tr[data-machine='slow-1'] td.state.creating", true).await;
        wait_for(&client, "tr[data-machine='slow-1'] td.state.running", true).await;
        creating.join().unwrap();

        let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
        std::fs::write(&shot, client.screenshot().await.unwrap())
            .unwrap_or_else(|e| panic!("cannot keep the screenshot at {}: {e}", shot.display()));
        println!("dashboard screenshot: {}", shot.display());

        // Destroy from the page.
        client
            .find(Locator::Css("button[data-destroy='db-1']"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        wait_for(&client, "tr[data-machine='db-1']", false).await;
        let status = client.find(Locator::Id("status")).await.unwrap();
        assert_eq!(status.text().await.unwrap(), "done");

        // Requests without the token, or an action without the page's CSRF header: refused.
        assert_eq!(
            status_of(&client, "/machines", "{credentials: 'omit'}").await,
            401
        );
        assert_eq!(
            status_of(&client, "/machines/web-1/destroy", "{method: 'POST'}").await,
            403
        );
        client.close().await.unwrap();
    });
    let mut names = machine_names(&s);
    names.sort();
    assert_eq!(names, ["slow-1", "web-1"]);
    let history = ok(&s, &["events", "--machine", "db-1"]);
    assert!(
        history.contains("destroy-machine by dashboard"),
        "{history}"
    );
    served.daemon.stop("TERM");
}
