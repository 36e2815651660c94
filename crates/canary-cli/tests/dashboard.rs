//! `canary dashboard`, `canary demo --dashboard` and `canary report --html` in a real
//! browser: Debian's chromium, headless, driven over the DevTools protocol by
//! `dashboard_browser/drive.mjs` (node, standard library only). Each test spawns the
//! binary, opens its page after the page's own script ran, checks the DOM, and writes a
//! screenshot under `target/dashboard-screens/`. The records live in moto's S3, written
//! by the `DeploymentStore` the Lambda functions use.
//!
//! Missing chromium or node is a failing test that says how to install them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use async_trait::async_trait;
use canary_cli::dashboard::{Dashboard, Group, Listing, serve};
use canary_cli::harness::DemoEnv;
use canary_cli::harness::fixtures::{deploy_document, image};
use canary_core::compare::Counts;
use canary_core::execution::{ActionKind, DEPLOYMENT_KEY, OutcomeStatus};
use canary_core::{Deployment, Verdict, VerdictStatus};
use canary_sfn::{NoopObserver, TaskError, TaskInvoker};
use canary_store::{DeploymentStore, Finish, S3Objects, ServiceRef};
use canary_testkit::{MotoServer, require_program, unique_name};
use serde_json::{Value, json};

const PREFIX: &str = "state/";

fn moto() -> &'static MotoServer {
    MotoServer::shared().unwrap()
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        .try_into()
        .unwrap()
}

/// Chromium and node, or the test fails saying how to install them.
fn browser() -> Option<(PathBuf, PathBuf)> {
    let chromium = require_program("chromium", "apt-get install chromium").unwrap()?;
    let node = require_program("node", "apt-get install nodejs").unwrap()?;
    Some((chromium, node))
}

fn screens() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"),
        PathBuf::from,
    );
    let dir = target.join("dashboard-screens");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The canary binary serving a dashboard; killed when dropped.
struct Served {
    child: Child,
    url: String,
}

impl Served {
    /// Spawns `canary <args>` and waits for its `dashboard: <url>` line.
    fn spawn(args: &[&str], moto_env: bool) -> Self {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_canary"));
        cmd.args(args)
            .env_remove("CANARY_STATE_BUCKET")
            .env_remove("CANARY_STATE_PREFIX")
            .env("USER", "dash-tester")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if moto_env {
            cmd.envs(moto().env());
        }
        let mut child = cmd.spawn().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut seen = String::new();
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                seen.push_str(&line);
                seen.push('\n');
                if let Some(url) = line.strip_prefix("dashboard: ") {
                    let _ = tx.send(Ok(url.trim().to_owned()));
                }
            }
            let _ = tx.send(Err(seen));
        });
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(Ok(url)) => Self { child, url },
            other => {
                let _ = child.kill();
                panic!("canary {args:?} did not print its URL: {other:?}");
            }
        }
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// What the browser saw.
struct Page {
    dom: String,
    requests: Vec<String>,
}

/// Opens `url` in chromium, runs `script`, waits for `until`, writes
/// `target/dashboard-screens/<name>.png` and returns the DOM and the requests made.
fn browse(url: &str, name: &str, script: Option<&str>, until: Option<&str>) -> Option<Page> {
    let (chromium, node) = browser()?;
    let shot = screens().join(format!("{name}.png"));
    let _ = std::fs::remove_file(&shot);
    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/dashboard_browser/drive.mjs");
    let mut cmd = Command::new(node);
    cmd.arg(driver).arg(chromium).arg(url).arg(&shot);
    if script.is_some() || until.is_some() {
        cmd.arg(script.unwrap_or("0"));
    }
    if let Some(u) = until {
        cmd.arg(u);
    }
    let out = cmd.stdin(Stdio::null()).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "the browser failed on {url}:\n{err}");
    let meta = std::fs::metadata(&shot).unwrap();
    assert!(
        meta.len() > 10_000,
        "{} is too small to be a screenshot",
        shot.display()
    );
    let requests = err
        .lines()
        .filter_map(|l| l.strip_prefix("request "))
        .map(str::to_owned)
        .collect();
    assert!(
        !err.contains("page error"),
        "the page's script failed:\n{err}"
    );
    Some(Page {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        requests,
    })
}

/// The part of `dom` from the element with `id` to the next element of that kind.
fn section<'a>(dom: &'a str, id: &str, next: &str) -> &'a str {
    let start = dom
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("no #{id} in the page"));
    let rest = &dom[start..];
    let end = rest[1..].find(next).map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

fn only_from(page: &Page, origin: &str) {
    assert!(!page.requests.is_empty(), "the browser saw no request");
    for r in &page.requests {
        assert!(
            r.starts_with(origin) || r.starts_with("data:"),
            "the page asked for {r}, outside {origin}"
        );
    }
}

/// A POST to the dashboard: the status line and the body.
fn post(url: &str, path: &str, body: &str) -> (u16, String) {
    let hostport = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: {hostport}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, answer)
}

fn verdict(status: VerdictStatus, errors: f64, requests: f64, reason: &str) -> Verdict {
    Verdict {
        status,
        errors,
        requests: Some(requests),
        error_rate: Some(errors / requests * 100.0),
        window_seconds: 600,
        datapoints: 20,
        version: None,
        latency_ms: None,
        comparison: None,
        stable: Some(Counts::new(requests * 4.0, 1.0)),
        reason: reason.into(),
    }
}

/// A fresh bucket in moto and the store the Lambda functions would use on it.
async fn bucket() -> (String, DeploymentStore) {
    let sdk = moto().sdk_config().await;
    let bucket = unique_name("dash");
    S3Objects::new(&sdk, &bucket).create_bucket().await.unwrap();
    (
        bucket.clone(),
        DeploymentStore::s3(&sdk, &bucket).with_prefix(PREFIX),
    )
}

/// `svc`: v1 promoted, v2 rolled back after an unhealthy check (its reason quoting
/// `evil`), v3 running at 20% after a healthy check, its lock held by `exec-3`.
async fn history(store: &DeploymentStore, svc: &ServiceRef, evil: &str) {
    let t = now() - 7200;
    let lock = store.take_lock(svc, "exec-1", t).await.unwrap();
    store.begin(svc, "exec-1", "repo/web:1", t).await.unwrap();
    store
        .finish_promoted(
            svc,
            &Finish {
                execution: "exec-1".into(),
                lock_token: lock.token,
                version: 1,
                image: "repo/web:1".into(),
                started_at: t,
                ended_at: t + 90,
                max_weight: 100,
                verdicts: vec![],
                reason: "first deployment: promoted once ready".into(),
            },
        )
        .await
        .unwrap();
    let t = t + 1000;
    let lock = store.take_lock(svc, "exec-2", t).await.unwrap();
    store.begin(svc, "exec-2", "repo/web:2", t).await.unwrap();
    let bad = verdict(
        VerdictStatus::Unhealthy,
        12.0,
        252.0,
        "12 errors in 252 requests over 600 s: more than failure_threshold_value 0",
    );
    store
        .record_progress(svc, "exec-2", 2, 20, Some(&bad), t + 300)
        .await
        .unwrap();
    store
        .finish_rolled_back(
            svc,
            &Finish {
                execution: "exec-2".into(),
                lock_token: lock.token,
                version: 2,
                image: "repo/web:2".into(),
                started_at: t,
                ended_at: t + 330,
                max_weight: 20,
                verdicts: vec![bad],
                reason: format!("unhealthy at 20%: 12 errors in 252 requests over 600 s {evil}"),
            },
        )
        .await
        .unwrap();
    let t = now() - 600;
    store.take_lock(svc, "exec-3", t).await.unwrap();
    store.begin(svc, "exec-3", "repo/web:3", t).await.unwrap();
    let good = verdict(
        VerdictStatus::Healthy,
        0.0,
        240.0,
        "0 errors in 240 requests over 600 s: within thresholds",
    );
    store
        .record_progress(svc, "exec-3", 3, 20, Some(&good), t + 120)
        .await
        .unwrap();
}

#[test]
fn the_demo_dashboard_names_the_four_scenarios_and_shows_the_faulty_canary_rolled_back_with_its_numbers()
 {
    if browser().is_none() {
        return;
    }
    let served = Served::spawn(&["demo", "--dashboard", "--listen", "127.0.0.1:0"], false);
    let Some(page) = browse(
        &served.url,
        "demo",
        None,
        Some("document.getElementById('live').textContent === 'live'"),
    ) else {
        return;
    };
    only_from(&page, served.url.trim_end_matches('/'));
    let dom = &page.dom;
    for (i, (scenario, outcome)) in [
        ("first-deployment", "promoted"),
        ("healthy-canary", "promoted"),
        ("faulty-canary", "rolled back"),
        ("canary-not-ready", "rolled back"),
    ]
    .into_iter()
    .enumerate()
    {
        let group = section(dom, &format!("group-{i}"), "<section");
        assert!(group.contains(&format!("<h2>{scenario}</h2>")), "{group}");
        assert!(group.contains("blogpost/yelb/yelb-appserver"), "{group}");
        assert!(
            group.contains(&format!(
                "class=\"outcome {}\">{outcome}",
                outcome.replace(' ', "-")
            )),
            "{scenario} is not shown {outcome}:\n{group}"
        );
    }
    // The faulty canary: its unhealthy verdict marked on the timeline with its numbers,
    // the rollback marked as a decision, both in the events table.
    let faulty = section(dom, "group-2", "<section");
    let timeline = section(
        faulty,
        "svc-2-blogpost-yelb-yelb-appserver-v3",
        "</details>",
    );
    assert!(
        timeline.contains("<circle class=\"mark verdict unhealthy\""),
        "{timeline}"
    );
    assert!(timeline.contains("unhealthy: 25 errors"), "{timeline}");
    assert!(
        timeline.contains("<g class=\"mark decision rolled-back\"><title>"),
        "{timeline}"
    );
    assert!(
        timeline.contains("rolled back to yelb-appserver-2"),
        "{timeline}"
    );
    assert!(timeline.contains("25 errors over 300 s"), "{timeline}");
    // The healthy canary's weight climbed to 100% over its steps.
    let healthy = section(dom, "group-1", "<section");
    assert!(healthy.contains("<path class=\"weight\""), "{healthy}");
    assert!(
        healthy.matches("mark verdict healthy").count() >= 5,
        "{healthy}"
    );
    // Every deployment ended: no buttons.
    assert!(
        !dom.contains("data-action="),
        "buttons without a running deployment"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_dashboard_over_s3_lists_the_services_with_their_history_and_updates_live() {
    if browser().is_none() {
        return;
    }
    let (bucket, store) = bucket().await;
    let web = ServiceRef::new("c1", "shop", "web");
    let evil = "<img src=x onerror=\"document.title='pwned'\">";
    history(&store, &web, evil).await;
    let api = ServiceRef::new("c1", "shop", "api");
    history(&store, &api, "").await;
    let served = Served::spawn(
        &[
            "dashboard",
            "--bucket",
            &bucket,
            "--listen",
            "127.0.0.1:0",
            "--read-only",
        ],
        true,
    );
    // The record moves on while the page is open: the page shows it within seconds.
    let writer = {
        let store = store.clone();
        let web = web.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(3)).await;
            let good = verdict(
                VerdictStatus::Healthy,
                0.0,
                480.0,
                "0 errors in 480 requests over 600 s: within thresholds",
            );
            store
                .record_progress(&web, "exec-3", 3, 50, Some(&good), now())
                .await
                .unwrap();
        })
    };
    let url = served.url.clone();
    let page = tokio::task::spawn_blocking(move || {
        browse(
            &url,
            "s3-read-only",
            None,
            Some("document.querySelector('#svc-0-c1-shop-web dd.running') && document.querySelector('#svc-0-c1-shop-web dd.running').textContent.includes('at 50%')"),
        )
    })
    .await
    .unwrap();
    writer.await.unwrap();
    let Some(page) = page else { return };
    only_from(&page, served.url.trim_end_matches('/'));
    let dom = &page.dom;
    assert!(!dom.contains("<title>pwned"), "a reason's markup ran");
    assert!(
        !dom.contains("<img src=\"x\""),
        "a reason's markup became an element"
    );
    assert!(
        dom.contains("&lt;img src=x onerror="),
        "the reason is not shown as text"
    );
    for svc in ["c1/shop/api", "c1/shop/web"] {
        let id = format!("svc-0-{}", svc.replace('/', "-"));
        let card = section(dom, &id, "<article");
        assert!(card.contains(&format!("<h3>{svc}</h3>")), "{card}");
        assert!(card.contains("held by <code>exec-3</code>"), "{card}");
        assert!(
            card.contains("v1 <code>repo/web:1</code>"),
            "stable:\n{card}"
        );
        assert!(
            card.contains("first deployment: promoted once ready"),
            "{card}"
        );
        assert!(
            card.contains("unhealthy at 20%: 12 errors in 252 requests"),
            "{card}"
        );
        assert!(card.contains(">rolled back</td>"), "{card}");
    }
    let web_card = section(dom, "svc-0-c1-shop-web", "<article");
    assert!(web_card.contains("0 errors in 480 requests"), "{web_card}");
    assert!(dom.contains("read-only"), "no read-only badge");
    assert!(!dom.contains("data-action="), "buttons in read-only mode");
    // The actions are refused, not only hidden.
    let (status, body) = post(
        &served.url,
        "/api/abort",
        r#"{"group":0,"service":"c1/shop/web","reason":"no"}"#,
    );
    assert_eq!(status, 403, "{body}");
    assert!(store.abort_requested(&web).await.unwrap().is_none());
    // A page whose name was made to point at 127.0.0.1 reads nothing.
    let hostport = served
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let mut s = std::net::TcpStream::connect(&hostport).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(
        s,
        "GET /api/board HTTP/1.1\r\nHost: rebound.example\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(!answer.contains("c1/shop/web"), "{answer}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_abort_button_asks_the_running_deployment_to_roll_back() {
    if browser().is_none() {
        return;
    }
    let (bucket, store) = bucket().await;
    let web = ServiceRef::new("c1", "shop", "web");
    history(&store, &web, "").await;
    let served = Served::spawn(
        &["dashboard", "--bucket", &bucket, "--listen", "127.0.0.1:0"],
        true,
    );
    // Another site's page may not act through the browser.
    let (status, body) = {
        let url = served.url.clone();
        tokio::task::spawn_blocking(move || {
            let hostport = url.trim_start_matches("http://").trim_end_matches('/').to_owned();
            let mut s = std::net::TcpStream::connect(&hostport).unwrap();
            let body = r#"{"group":0,"service":"c1/shop/web","reason":"x"}"#;
            write!(
                s,
                "POST /api/abort HTTP/1.1\r\nHost: {hostport}\r\nOrigin: http://evil.example\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            )
            .unwrap();
            let mut answer = String::new();
            s.read_to_string(&mut answer).unwrap();
            (answer.split_whitespace().nth(1).unwrap_or("").to_owned(), answer)
        })
        .await
        .unwrap()
    };
    assert_eq!(status, "403", "{body}");
    assert!(store.abort_requested(&web).await.unwrap().is_none());

    let url = served.url.clone();
    let page = tokio::task::spawn_blocking(move || {
        browse(
            &url,
            "s3-abort",
            Some(
                "window.prompt = () => 'bad release'; window.confirm = () => true; \
                 document.querySelector('button[data-action=abort]').click(); true",
            ),
            Some("document.getElementById('message').textContent.includes('abort requested') && document.querySelector('#svc-0-c1-shop-web').innerHTML.includes(': bad release')"),
        )
    })
    .await
    .unwrap();
    let Some(page) = page else { return };
    let card = section(&page.dom, "svc-0-c1-shop-web", "<article");
    assert!(card.contains("data-action=\"abort\""), "{card}");
    assert!(card.contains("data-action=\"promote\""), "{card}");
    assert!(card.contains(": bad release"), "{card}");
    let abort = store
        .abort_requested(&web)
        .await
        .unwrap()
        .expect("abort.json written");
    assert_eq!(abort.reason, "bad release");
    assert!(abort.by.starts_with("dash-tester@"), "{abort:?}");
    // Nothing to abort on a service without a deployment: a clear refusal.
    let (status, body) = post(
        &served.url,
        "/api/abort",
        r#"{"group":0,"service":"c1/shop/none","reason":"x"}"#,
    );
    assert_eq!(status, 409, "{body}");
    assert!(body.contains("no deployment is running"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_html_report_is_one_self_contained_file_with_the_rollback_and_its_numbers() {
    if browser().is_none() {
        return;
    }
    let (bucket, store) = bucket().await;
    let web = ServiceRef::new("c1", "shop", "web");
    history(&store, &web, "").await;
    let file = screens().join("report-web-v2.html");
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["report", "c1/shop/web", "2", "--bucket", &bucket, "--html"])
        .arg(&file)
        .envs(moto().env())
        .env_remove("CANARY_STATE_PREFIX")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let html = std::fs::read_to_string(&file).unwrap();
    assert!(!html.contains("<script"), "the report has a script");
    for link in ["src=\"http", "href=\"http", "url(http", "@import"] {
        assert!(!html.contains(link), "the report links out ({link})");
    }
    let url = format!("file://{}", file.canonicalize().unwrap().display());
    let Some(page) = tokio::task::spawn_blocking(move || browse(&url, "report", None, None))
        .await
        .unwrap()
    else {
        return;
    };
    only_from(&page, "file://");
    assert_eq!(page.requests.len(), 1, "{:?}", page.requests);
    let dom = &page.dom;
    assert!(dom.contains("<h1>c1/shop/web v2</h1>"), "{dom}");
    assert!(
        dom.contains("<circle class=\"mark verdict unhealthy\""),
        "{dom}"
    );
    assert!(
        dom.contains("unhealthy: 12 errors, 252 requests, error rate 4.76%"),
        "{dom}"
    );
    assert!(dom.contains("stable: 1 errors, 1008 requests"), "{dom}");
    assert!(dom.contains("mark decision rolled-back"), "{dom}");

    // A version that does not exist is refused naming it.
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["report", "c1/shop/web", "9", "--bucket", &bucket, "--html"])
        .arg(screens().join("none.html"))
        .envs(moto().env())
        .env_remove("CANARY_STATE_PREFIX")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("version `9`"));
}

#[test]
fn a_dashboard_beyond_loopback_must_be_read_only() {
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["dashboard", "--bucket", "b", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--listen `0.0.0.0:0`") && err.contains("--read-only"),
        "{err}"
    );
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["dashboard", "--bucket", "b", "--state-machine", "canary"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("invalid --state-machine `canary`"), "{err}");
    let out = Command::new(env!("CARGO_BIN_EXE_canary"))
        .args(["dashboard"])
        .env_remove("CANARY_STATE_BUCKET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--bucket"), "{err}");
}

/// A person who takes real time: the execution is held where a task returned with the
/// deployment waiting at a gate, until an approval is stored (at most 90 s).
struct HoldAtGate<'a> {
    inner: &'a dyn TaskInvoker,
    store: DeploymentStore,
    svc: ServiceRef,
    held: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl TaskInvoker for HoldAtGate<'_> {
    async fn invoke(&self, resource: &str, input: Value) -> Result<Value, TaskError> {
        let out = self.inner.invoke(resource, input).await?;
        let at_gate = out
            .get(DEPLOYMENT_KEY)
            .and_then(|d| serde_json::from_value::<Deployment>(d.clone()).ok())
            .is_some_and(|d| d.gate.is_some());
        if at_gate && !self.held.swap(true, std::sync::atomic::Ordering::SeqCst) {
            let until = std::time::Instant::now() + Duration::from_secs(90);
            while self
                .store
                .approval_requested(&self.svc)
                .await
                .unwrap()
                .is_none()
            {
                assert!(
                    std::time::Instant::now() < until,
                    "nobody approved within 90 s"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_approve_button_continues_a_deployment_paused_at_a_gate() {
    if browser().is_none() {
        return;
    }
    let env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1]).await.unwrap();
    let svc = env.service_ref();
    let store = env.services.store.clone();
    let dashboard = Dashboard {
        title: "gates".into(),
        groups: vec![Group::new(
            "gates",
            store.clone(),
            Listing::Fixed(vec![svc.clone()]),
        )],
        read_only: false,
        by: "ana@browser".into(),
    };
    let served = serve(
        std::sync::Arc::new(dashboard),
        "127.0.0.1:0".parse().unwrap(),
    )
    .await
    .unwrap();
    let url = served.url();
    let invoker = env.invoker();
    let held = HoldAtGate {
        inner: &invoker,
        store: store.clone(),
        svc: svc.clone(),
        held: std::sync::atomic::AtomicBool::new(false),
    };
    let mut doc = deploy_document(&image(2));
    doc["gates"] = json!([{"at": 50, "timeout": 3600}]);
    let person = async {
        // The page once the deployment waits at its gate: click Approve.
        let until = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let r = store.status(&svc).await.unwrap().in_progress;
            if r.as_ref().is_some_and(|r| r.gate.is_some()) {
                break;
            }
            assert!(
                std::time::Instant::now() < until,
                "the deployment never paused"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let url = url.clone();
        tokio::task::spawn_blocking(move || {
            browse(
                &url,
                "gate-approve",
                Some(
                    "if (!document.querySelector('dd.gate').textContent.includes('paused at 50%, waiting for approval since')) { throw new Error('no gate shown'); } \
                     window.prompt = () => 'dashboards look good'; window.confirm = () => true; \
                     document.querySelector('button[data-action=approve]').click(); true",
                ),
                Some("document.getElementById('message').textContent.includes('approved by ana@browser')"),
            )
        })
        .await
        .unwrap()
    };
    let mut observer = NoopObserver;
    let (run, page) = tokio::join!(env.deploy_doc(doc, &held, &mut observer), person);
    let Some(page) = page else { return };
    assert!(
        page.dom
            .contains("gate at 50% approved by ana@browser (dashboards look good)"),
        "{}",
        page.dom
    );
    let outcome = run
        .output
        .get(DEPLOYMENT_KEY)
        .and_then(|d| serde_json::from_value::<Deployment>(d.clone()).ok())
        .and_then(|d| d.outcome)
        .unwrap_or_else(|| panic!("no outcome: {:?}", run.status));
    assert_eq!(
        outcome.status,
        OutcomeStatus::Promoted,
        "{}",
        outcome.reason
    );
    let record = store.record(&svc, 2).await.unwrap().unwrap();
    let approved = record
        .operator
        .iter()
        .find(|a| a.kind == ActionKind::Approved)
        .unwrap_or_else(|| panic!("no approval in the record: {:?}", record.operator));
    assert_eq!(approved.by, "ana@browser");
    assert_eq!(approved.reason, "dashboards look good");
    // The page afterwards: promoted, the pause and the approval on the timeline.
    let url = served.url();
    let after = tokio::task::spawn_blocking(move || browse(&url, "gate-approved", None, None))
        .await
        .unwrap()
        .unwrap();
    let card = section(&after.dom, "svc-0-blogpost-yelb-yelb-appserver", "<article");
    assert!(
        card.contains("<summary>v2 <span class=\"outcome promoted\">promoted</span>"),
        "{card}"
    );
    assert!(card.contains("paused at the 50% gate by"), "{card}");
    assert!(
        card.contains("approved at the 50% gate by ana@browser: dashboards look good"),
        "{card}"
    );
    assert!(card.contains("<path class=\"mark operator\""), "{card}");
    assert!(
        !card.contains("data-action="),
        "buttons after the deployment ended"
    );
    served.shutdown().await;
    env.shutdown().await;
}

/// The local executor's events as Step Functions would record them (TaskStateExited
/// with the state's output, WaitStateEntered with its input, the execution's end).
#[derive(Default)]
struct AsStepFunctions {
    events: Vec<aws_sdk_sfn::types::HistoryEvent>,
    types: std::collections::HashMap<String, canary_sfn::StateType>,
}

impl canary_sfn::Observer for AsStepFunctions {
    fn on_event(&mut self, e: &canary_sfn::Event) {
        use aws_sdk_sfn::types::{
            HistoryEvent, HistoryEventType, StateEnteredEventDetails, StateExitedEventDetails,
        };
        use canary_sfn::{EventKind, StateType};
        let event = |kind: HistoryEventType| {
            HistoryEvent::builder()
                .id(i64::try_from(self.events.len()).unwrap() + 1)
                .timestamp(aws_sdk_sfn::primitives::DateTime::from_millis(e.at_millis))
                .r#type(kind)
        };
        let built = match &e.kind {
            EventKind::StateEntered {
                state,
                state_type,
                input,
            } => {
                self.types.insert(state.clone(), *state_type);
                (*state_type == StateType::Wait).then(|| {
                    event(HistoryEventType::WaitStateEntered)
                        .state_entered_event_details(
                            StateEnteredEventDetails::builder()
                                .name(state)
                                .input(input.to_string())
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap()
                })
            }
            EventKind::StateExited { state, output } => {
                (self.types.get(state) == Some(&StateType::Task)).then(|| {
                    event(HistoryEventType::TaskStateExited)
                        .state_exited_event_details(
                            StateExitedEventDetails::builder()
                                .name(state)
                                .output(output.to_string())
                                .build()
                                .unwrap(),
                        )
                        .build()
                        .unwrap()
                })
            }
            EventKind::ExecutionSucceeded { .. } => {
                Some(event(HistoryEventType::ExecutionSucceeded).build().unwrap())
            }
            EventKind::ExecutionFailed { .. } => {
                Some(event(HistoryEventType::ExecutionFailed).build().unwrap())
            }
            _ => None,
        };
        self.events.extend(built);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_execution_history_gives_the_timeline_with_its_exact_times() {
    use canary_cli::dashboard::sfn::rows_of;
    use canary_cli::harness::fixtures::FAULTY_ERROR_RATE;
    let env = DemoEnv::start().await.unwrap();
    env.deploy_versions(&[1]).await.unwrap();
    env.sim.set_error_rate(&image(2), FAULTY_ERROR_RATE);
    let mut history = AsStepFunctions::default();
    let run = env
        .deploy_doc(deploy_document(&image(2)), &env.invoker(), &mut history)
        .await;
    assert!(!run.succeeded());
    let (timed, ended) = rows_of(&history.events);
    assert!(ended, "the execution's end is in its history");
    assert_eq!(timed.next_check, None, "no check is due after the end");
    let rows = &timed.rows;
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(
        states.first().copied(),
        Some("RenderTemplate"),
        "{states:?}"
    );
    assert_eq!(states.last().copied(), Some("Rollback"), "{states:?}");
    // The check that caught it, with its numbers, at the weight it caught it.
    let caught = rows
        .iter()
        .find(|r| {
            r.verdict
                .as_ref()
                .is_some_and(|v| v.status == VerdictStatus::Unhealthy)
        })
        .unwrap_or_else(|| panic!("no unhealthy verdict: {rows:?}"));
    assert_eq!(caught.weight, 10);
    assert!(caught.bad);
    assert!(
        caught.note.contains("unhealthy: ") && caught.note.contains(" errors"),
        "{}",
        caught.note
    );
    // Times come from the history, in order, within the execution's run.
    let start = rows[0].at_millis;
    assert!(rows.windows(2).all(|w| w[0].at_millis <= w[1].at_millis));
    assert!(rows.last().unwrap().at_millis - start <= run.duration_millis);
    let end = rows.last().unwrap();
    assert_eq!(end.weight, 0);
    assert!(
        end.note.contains("rolled back to yelb-appserver-1"),
        "{}",
        end.note
    );
    // While it ran, the Wait state said when the next check was due.
    let (mid, _) = rows_of(&history.events[..history.events.len() / 2]);
    let due = mid.next_check.expect("a Wait state before the middle");
    assert!(due * 1000 >= start, "{due}");
    env.shutdown().await;
}
