//! The web console in a real headless Chromium (Debian's `chromium` and
//! `chromium-driver`, driven over WebDriver with fantoccini), against the
//! real `ferry run`.
//!
//! Covered: signing in with a token; the overview; filtering the queue;
//! opening a failed message, editing and resubmitting it, and seeing it
//! answered; a bulk resubmit with its dry run; a viewer sees no action
//! button and its POSTs are refused; forged POSTs (no CSRF token, a wrong
//! one, another site's origin) are refused and change nothing; bad input
//! gets a clear 4xx page and the host goes on; the overview fits a phone's
//! width. Screenshots of the pages go to `target/console-screenshots/`.
//!
//! The browser is not optional: without `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` (or `FERRY_CHROMIUM` / `FERRY_CHROMEDRIVER`)
//! these tests fail, saying how to install them (`scripts/test` does, as
//! root). No timing is asserted: the deadlines only turn a hang into a
//! failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use ferry_tests::plugins_dir;
use ferry_tests::running::{DEADLINE, Host, ORDER_ACTION, order, wait_for_responses};

/// An order whose Action no service handles: it fails in inbound
/// processing (Error).
fn unknown_action(n: u32) -> String {
    order(n).replace(
        ORDER_ACTION,
        "http://schemas.microsoft.com/dynamics/2008/01/services/CustomerService/create",
    )
}

fn config(root: &Path) -> PathBuf {
    let text = format!(
        r#"
data_dir = "data"
plugin_dir = "{plugins}"

[adapters.file]
component = "file-adapter"

[services.sales]
component = "sales-order-service"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
logging = "all"
services = [{{ action = "*/SalesOrderService/*", service = "sales" }}]

[jobs.orders]
every = "1h"

[console]
listen = "127.0.0.1:0"
"#,
        plugins = plugins_dir().display()
    );
    let path = root.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .parent()
                .unwrap()
                .join("target")
        })
}

/// A program the tests need: `var` names another path.
fn program(var: &str, default: &str) -> PathBuf {
    let path = std::env::var_os(var).map_or_else(|| PathBuf::from(default), PathBuf::from);
    assert!(
        path.is_file(),
        "{} is missing: the console's browser tests need Debian's chromium and chromium-driver \
         (`apt-get install -y chromium chromium-driver`; scripts/test installs them when run as \
         root), or {var} naming another one",
        path.display()
    );
    path
}

/// chromedriver and a headless Chromium with a fresh profile; both are
/// stopped when dropped.
struct Browser {
    driver: Child,
    client: Option<Client>,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn start() -> Browser {
        let chromium = program("FERRY_CHROMIUM", "/usr/bin/chromium");
        let chromedriver = program("FERRY_CHROMEDRIVER", "/usr/bin/chromedriver");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot start chromedriver");
        let profile = tempfile::tempdir().unwrap();
        let mut caps = serde_json::Map::new();
        caps.insert("browserName".into(), "chrome".into());
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": chromium,
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--disable-quic",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    "--window-size=1280,900",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + DEADLINE;
        let mut browser = Browser {
            driver,
            client: None,
            _profile: profile,
        };
        loop {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => {
                    browser.client = Some(c);
                    return browser;
                }
                Err(e) => {
                    if let Some(status) = browser.driver.try_wait().unwrap() {
                        panic!("chromedriver exited ({status}) before a session started: {e}");
                    }
                    assert!(
                        Instant::now() < deadline,
                        "no Chromium session within {DEADLINE:?}: {e}"
                    );
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
    }

    fn c(&self) -> &Client {
        self.client.as_ref().unwrap()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// The host's address and tokens.
struct Console {
    base: String,
    operator: String,
    viewer: String,
    shots: PathBuf,
}

impl Console {
    fn new(data: &Path) -> Console {
        let host: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.join("console").join("host.json")).unwrap())
                .unwrap();
        let token = |role: &str| {
            std::fs::read_to_string(data.join("console").join(format!("{role}.token")))
                .unwrap()
                .trim()
                .to_string()
        };
        let shots = target_dir().join("console-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Console {
            base: host["url"].as_str().unwrap().to_string(),
            operator: token("operator"),
            viewer: token("viewer"),
            shots,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET /api/v1/…` as the operator.
    fn api(&self, path: &str) -> serde_json::Value {
        let mut r = agent()
            .get(self.url(path))
            .header("Authorization", &format!("Bearer {}", self.operator))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "GET {path}");
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    async fn shot(&self, b: &Browser, name: &str) {
        let png = b.c().screenshot().await.unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn keys(page: &serde_json::Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_u64().unwrap())
        .collect()
}

/// Polls until `cond` holds for the API's page at `path`.
fn wait_api(
    host: &mut Host,
    console: &Console,
    path: &str,
    cond: impl Fn(&serde_json::Value) -> bool,
) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let page = console.api(path);
        if cond(&page) {
            return;
        }
        host.assert_running();
        assert!(
            Instant::now() < deadline,
            "{path} never became as expected: {page}\nlog:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The text of the element `css`, waiting for it to appear.
async fn text(b: &Browser, css: &str) -> String {
    match b
        .c()
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(css))
        .await
    {
        Ok(e) => e.text().await.unwrap(),
        Err(e) => {
            let source = b.c().source().await.unwrap_or_default();
            panic!("no {css} ({e}); the page:\n{source}");
        }
    }
}

/// Waits until the element `css` shows `needle`.
async fn wait_text(b: &Browser, css: &str, needle: &str) -> String {
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Ok(e) = b.c().find(Locator::Css(css)).await
            && let Ok(t) = e.text().await
            && t.contains(needle)
        {
            return t;
        }
        if Instant::now() > deadline {
            let source = b.c().source().await.unwrap_or_default();
            panic!("{css} never showed {needle:?}; the page:\n{source}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn click(b: &Browser, css: &str) {
    b.c()
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css}: {e}"))
        .click()
        .await
        .unwrap();
}

async fn count(b: &Browser, css: &str) -> usize {
    b.c().find_all(Locator::Css(css)).await.unwrap().len()
}

/// Runs the job `orders` now, from the jobs page.
async fn run_now(b: &Browser, console: &Console) {
    b.c().goto(&console.url("/console/jobs")).await.unwrap();
    text(b, "#page-jobs").await;
    click(b, "form[action='/console/jobs/orders/run-now'] button").await;
    wait_text(b, "#note", "orders").await;
}

async fn sign_in(b: &Browser, console: &Console, token: &str) {
    b.c().delete_all_cookies().await.unwrap();
    b.c().goto(&console.url("/console/")).await.unwrap();
    // Not signed in: the login form.
    let field = b
        .c()
        .wait()
        .at_most(DEADLINE)
        .for_element(Locator::Css("#page-login #token"))
        .await
        .unwrap();
    field.send_keys(token).await.unwrap();
    click(b, "#page-login button[type=submit]").await;
    text(b, "#page-overview").await;
}

/// Submits, from the page, a form the console did not write: `action`
/// with the given fields (a forgery, as a script or another tab could).
async fn forge(b: &Browser, action: &str, fields: &[(&str, &str)]) {
    let fields: Vec<_> = fields
        .iter()
        .map(|(k, v)| serde_json::json!([k, v]))
        .collect();
    b.c()
        .execute(
            "const f = document.createElement('form');
             f.method = 'post'; f.action = arguments[0];
             f.setAttribute('hx-boost', 'false');
             for (const [k, v] of arguments[1]) {
               const i = document.createElement('input');
               i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i);
             }
             document.body.appendChild(f); f.submit();",
            vec![serde_json::json!(action), serde_json::json!(fields)],
        )
        .await
        .unwrap();
}

#[test]
fn the_console_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg = config(root);
    let (inbox, outbox, data) = (root.join("inbox"), root.join("outbox"), root.join("data"));
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("a-order-1.xml"), order(1)).unwrap();
    std::fs::write(inbox.join("b-unknown-2.xml"), unknown_action(2)).unwrap();
    std::fs::write(inbox.join("c-unknown-3.xml"), unknown_action(3)).unwrap();
    std::fs::write(inbox.join("d-unknown-4.xml"), unknown_action(4)).unwrap();
    std::fs::write(inbox.join("e-junk-5.xml"), "<Envelope><Header>oops").unwrap();
    let mut host = Host::start(&cfg, root.join("ferry.log"), "info");
    wait_for_responses(&mut host, &outbox, 1, "order 1 was not answered");
    let console = Console::new(&data);
    wait_api(&mut host, &console, "/api/v1/queue", |p| keys(p).len() == 4);
    let errors = keys(&console.api("/api/v1/queue?status=error"));
    assert_eq!(errors.len(), 3);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let b = Browser::start().await;

        // ---- sign in, the overview --------------------------------------
        sign_in(&b, &console, &console.operator).await;
        let queued = text(&b, "#queued").await;
        assert!(queued.contains("4"), "{queued}");
        assert!(text(&b, "#ports").await.contains("in"));
        let logged = console.api("/api/v1/exceptions");
        let logged = logged.as_array().unwrap().len();
        assert!(logged >= 4, "{logged}");
        assert!(
            text(&b, "#exceptions-hour")
                .await
                .contains(&logged.to_string()),
            "{logged} exceptions"
        );
        assert!(text(&b, "#oldest").await.contains("none"));
        console.shot(&b, "overview").await;

        // ---- filter the queue -------------------------------------------
        click(&b, "header nav a[href='/console/queue']").await;
        text(&b, "#page-queue").await;
        b.c()
            .find(Locator::Css("#filters select[name=status]"))
            .await
            .unwrap()
            .select_by_value("error")
            .await
            .unwrap();
        click(&b, "#apply").await;
        wait_text(&b, "#shown", "3 message(s)").await;
        assert_eq!(count(&b, "#messages tbody tr").await, 3);
        console.shot(&b, "queue").await;

        // ---- a failed message: edit, resubmit, answered -------------------
        click(
            &b,
            &format!("#messages a[href='/console/message/{}']", errors[0]),
        )
        .await;
        text(&b, "#page-message").await;
        assert_eq!(text(&b, "#status").await, "Error");
        assert!(count(&b, "#versions tbody tr").await >= 1);
        assert!(count(&b, "#message-exceptions tbody tr").await >= 1);
        console.shot(&b, "message").await;
        let fixed = order(2);
        b.c()
            .execute(
                "document.getElementById('content').value = arguments[0];",
                vec![serde_json::json!(fixed)],
            )
            .await
            .unwrap();
        click(&b, "#edit-resubmit").await;
        wait_text(&b, "#note", "edited and resubmitted").await;
        // The job's next occurrence is an hour away: run it now, from the
        // jobs page.
        run_now(&b, &console).await;
        wait_for_responses(&mut host, &outbox, 2, "the edited order 2 was not answered");
        wait_api(&mut host, &console, "/api/v1/queue", |p| {
            !keys(p).contains(&errors[0])
        });
        b.c().goto(&console.url("/console/audit")).await.unwrap();
        wait_text(&b, "#audit", "edit-and-resubmit").await;
        console.shot(&b, "audit").await;

        // ---- a bulk resubmit with its dry run ------------------------------
        b.c()
            .goto(&console.url("/console/queue?status=error"))
            .await
            .unwrap();
        wait_text(&b, "#shown", "2 message(s)").await;
        b.c()
            .find(Locator::Css("#bulk select[name=action]"))
            .await
            .unwrap()
            .select_by_value("resubmit")
            .await
            .unwrap();
        click(&b, "#dry-run").await;
        assert_eq!(text(&b, "#dry-run-result #matched").await, "2");
        // The dry run changed nothing.
        for k in &errors[1..] {
            let m = console.api(&format!("/api/v1/queue/{k}"));
            assert_eq!(m["message"]["attempts"], 1, "{m}");
        }
        console.shot(&b, "bulk-dry-run").await;
        click(&b, "#confirm-button").await;
        wait_text(&b, "#note", "resubmit: 2 message(s) done").await;
        run_now(&b, &console).await;
        // Both were processed again (and failed again: no service for them).
        wait_api(&mut host, &console, "/api/v1/queue?status=error", |p| {
            p["items"].as_array().unwrap().len() == 2
                && p["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .all(|m| m["attempts"].as_u64() == Some(2))
        });

        // ---- the other pages ------------------------------------------------
        for (path, id, name) in [
            ("/console/exceptions", "#page-exceptions", "exceptions"),
            ("/console/jobs", "#page-jobs", "jobs"),
            ("/console/plugins", "#page-plugins", "plugins"),
        ] {
            b.c().goto(&console.url(path)).await.unwrap();
            text(&b, id).await;
            console.shot(&b, name).await;
        }
        assert!(text(&b, "#plugins").await.contains("sales-order-service"));

        // ---- forged POSTs, as the operator ---------------------------------
        let target = errors[1];
        let delete = format!("/console/message/{target}/delete");
        b.c()
            .goto(&console.url(&format!("/console/message/{target}")))
            .await
            .unwrap();
        text(&b, "#page-message").await;
        forge(&b, &delete, &[]).await;
        wait_text(&b, "#page-error h1", "403").await;
        let refused = text(&b, "#error-text").await;
        assert!(refused.contains("security token"), "{refused}");
        b.c()
            .goto(&console.url(&format!("/console/message/{target}")))
            .await
            .unwrap();
        text(&b, "#page-message").await;
        forge(&b, &delete, &[("csrf", "0123456789abcdef0123456789abcdef")]).await;
        wait_text(&b, "#page-error h1", "403").await;
        assert_eq!(
            console.api(&format!("/api/v1/queue/{target}"))["message"]["key"],
            target
        );

        // ---- bad input: a clear 4xx page, the host unaffected ---------------
        b.c()
            .goto(&console.url("/console/queue?status=bogus"))
            .await
            .unwrap();
        wait_text(&b, "#page-error h1", "400").await;
        assert!(text(&b, "#error-text").await.contains("bogus"));
        b.c()
            .goto(&console.url("/console/message/abc"))
            .await
            .unwrap();
        wait_text(&b, "#error-text", "not a queue id").await;
        b.c()
            .goto(&console.url("/console/message/999999"))
            .await
            .unwrap();
        wait_text(&b, "#page-error h1", "404").await;
        host.assert_running();

        // ---- a viewer: no action buttons, its POSTs refused -----------------
        sign_in(&b, &console, &console.viewer).await;
        assert!(text(&b, "#who").await.contains("viewer"));
        b.c()
            .goto(&console.url(&format!("/console/message/{target}")))
            .await
            .unwrap();
        text(&b, "#page-message").await;
        assert_eq!(count(&b, "#actions").await, 0);
        assert_eq!(count(&b, "#edit").await, 0);
        // The only form that POSTs is signing out.
        assert_eq!(count(&b, "form[method=post]").await, 1);
        console.shot(&b, "viewer-message").await;
        b.c().goto(&console.url("/console/queue")).await.unwrap();
        text(&b, "#page-queue").await;
        assert_eq!(count(&b, "#bulk").await, 0);
        b.c().goto(&console.url("/console/jobs")).await.unwrap();
        text(&b, "#page-jobs").await;
        assert_eq!(count(&b, "form[method=post]").await, 1);
        // With its own valid CSRF token, a viewer's POST is still refused.
        let csrf = b
            .c()
            .find(Locator::Css("form.who input[name=csrf]"))
            .await
            .unwrap()
            .attr("value")
            .await
            .unwrap()
            .unwrap();
        forge(&b, &delete, &[("csrf", &csrf)]).await;
        wait_text(&b, "#page-error h1", "403").await;
        assert!(text(&b, "#error-text").await.contains("may only read"));
        assert_eq!(
            console.api(&format!("/api/v1/queue/{target}"))["message"]["key"],
            target
        );

        // ---- a phone's width ------------------------------------------------
        sign_in(&b, &console, &console.operator).await;
        b.c().set_window_size(390, 844).await.unwrap();
        b.c().goto(&console.url("/console/")).await.unwrap();
        text(&b, "#page-overview").await;
        let fits = b
            .c()
            .execute(
                "return document.documentElement.scrollWidth <= window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(
            fits,
            serde_json::json!(true),
            "the overview is wider than a phone"
        );
        console.shot(&b, "overview-phone").await;

        let client = b.client.as_ref().unwrap().clone();
        client.close().await.unwrap();
    });

    // ---- forgeries over plain HTTP: the checks are not vacuous -------------
    let csrf = ferry::control::auth::csrf_for(&console.operator);
    let cookie = format!("ferry_console={}", console.operator);
    let hold = console.url(&format!("/console/message/{}/hold", errors[1]));
    let post = |extra: &[(&str, &str)], body: &str| {
        let mut req = agent()
            .post(&hold)
            .header("Cookie", &cookie)
            .header("Content-Type", "application/x-www-form-urlencoded");
        for (k, v) in extra {
            req = req.header(*k, *v);
        }
        req.send(body).unwrap().status().as_u16()
    };
    let with_token = format!("csrf={csrf}");
    assert_eq!(post(&[("Origin", "http://evil.example")], &with_token), 403);
    assert_eq!(post(&[("Sec-Fetch-Site", "cross-site")], &with_token), 403);
    assert_eq!(post(&[], "csrf=wrong"), 403);
    assert_eq!(post(&[], ""), 403);
    assert_eq!(
        console.api(&format!("/api/v1/queue/{}", errors[1]))["message"]["status"],
        "error"
    );
    // The same request from the console's own page is done.
    assert_eq!(post(&[("Sec-Fetch-Site", "same-origin")], &with_token), 303);
    assert_eq!(
        console.api(&format!("/api/v1/queue/{}", errors[1]))["message"]["status"],
        "hold"
    );
    host.stop();
}
