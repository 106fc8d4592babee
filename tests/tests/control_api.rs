//! The control API of a running host, end to end through the real binary:
//! `ferry run` serves it; these tests call it over HTTP with the tokens the
//! host wrote into its data directory, and run the CLI, which reaches the
//! running host through it.
//!
//! Covered: every queue-manager operation (search with filters and paging,
//! show with versions and exceptions, diff, export, hold, release, delete,
//! resubmit, edit-and-resubmit, bulk with its dry run and cutoff, the audit
//! log), both roles (a viewer reads, every change it asks for is refused
//! and changes nothing), missing and unknown tokens, malformed requests
//! (each a clear 4xx, the host unaffected), and the CLI on the running host.
//!
//! No timing is asserted: the deadlines only turn a hang into a failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_tests::running::{DEADLINE, Host, ORDER_ACTION, order, wait_for_responses};
use ferry_tests::{plugins_dir, run};

/// An order (MessageId ends in `n`) whose Action no service handles: it
/// fails in inbound processing (Error).
fn unknown_action(n: u32) -> String {
    order(n).replace(
        ORDER_ACTION,
        "http://schemas.microsoft.com/dynamics/2008/01/services/CustomerService/create",
    )
}

fn config(root: &Path, listen: &str) -> PathBuf {
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
listen = "{listen}"
"#,
        plugins = plugins_dir().display()
    );
    let path = root.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A client of the running host's API.
struct Api {
    base: String,
    operator: String,
    viewer: String,
    agent: ureq::Agent,
}

struct Answer {
    status: u16,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", self.status, self.body))
    }
}

impl Api {
    fn new(data: &Path) -> Api {
        let host: serde_json::Value =
            serde_json::from_slice(&std::fs::read(data.join("console").join("host.json")).unwrap())
                .unwrap();
        let token = |role: &str| {
            std::fs::read_to_string(data.join("console").join(format!("{role}.token")))
                .unwrap()
                .trim()
                .to_string()
        };
        Api {
            base: host["url"].as_str().unwrap().to_string(),
            operator: token("operator"),
            viewer: token("viewer"),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                .build()
                .into(),
        }
    }

    fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
        let mut r = r.expect("the host answers");
        Answer {
            status: r.status().as_u16(),
            body: r.body_mut().read_to_string().unwrap(),
        }
    }

    fn get(&self, path: &str, token: Option<&str>) -> Answer {
        let mut req = self.agent.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        Self::answer(req.call())
    }

    fn post(&self, path: &str, token: Option<&str>, body: Option<&str>) -> Answer {
        let mut req = self.agent.post(format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.header("Authorization", &format!("Bearer {t}"));
        }
        let r = match body {
            Some(b) => req.header("Content-Type", "application/json").send(b),
            None => req.send_empty(),
        };
        Self::answer(r)
    }

    fn op_get(&self, path: &str) -> serde_json::Value {
        let a = self.get(path, Some(&self.operator));
        assert_eq!(a.status, 200, "GET {path}: {}", a.body);
        a.json()
    }

    fn op_post(&self, path: &str, body: Option<&str>) -> serde_json::Value {
        let a = self.post(path, Some(&self.operator), body);
        assert_eq!(a.status, 200, "POST {path}: {}", a.body);
        a.json()
    }
}

/// The keys of a page of messages.
fn keys(page: &serde_json::Value) -> Vec<u64> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_u64().unwrap())
        .collect()
}

/// Poll the API until `cond` holds for the page of `path`.
fn wait_page(host: &mut Host, api: &Api, path: &str, cond: impl Fn(&serde_json::Value) -> bool) {
    let deadline = Instant::now() + DEADLINE;
    loop {
        let page = api.op_get(path);
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

/// A 4xx with a JSON error naming `needle`.
fn refused(a: &Answer, status: u16, needle: &str) {
    assert_eq!(a.status, status, "{}", a.body);
    let e = a.json();
    let text = e["error"].as_str().unwrap_or_default();
    assert!(
        text.to_lowercase().contains(&needle.to_lowercase()),
        "expected {needle:?} in {status}: {}",
        a.body
    );
}

#[test]
fn the_control_api_manages_the_queue_of_the_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg_path = config(root, "127.0.0.1:0");
    let cfg = cfg_path.to_str().unwrap();
    let (inbox, outbox, data) = (root.join("inbox"), root.join("outbox"), root.join("data"));
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("a-order-1.xml"), order(1)).unwrap();
    std::fs::write(inbox.join("b-unknown-2.xml"), unknown_action(2)).unwrap();
    std::fs::write(inbox.join("c-unknown-3.xml"), unknown_action(3)).unwrap();
    std::fs::write(inbox.join("d-unknown-4.xml"), unknown_action(4)).unwrap();
    std::fs::write(inbox.join("e-junk-5.xml"), "<Envelope><Header>oops").unwrap();
    let mut host = Host::start(&cfg_path, root.join("ferry.log"), "info");
    wait_for_responses(&mut host, &outbox, 1, "order 1 was not answered");
    let api = Api::new(&data);
    wait_page(&mut host, &api, "/api/v1/queue", |p| keys(p).len() == 4);

    // ---- who may ------------------------------------------------------
    refused(&api.get("/api/v1/queue", None), 401, "no token");
    refused(
        &api.get("/api/v1/queue", Some("not-a-token")),
        401,
        "unknown token",
    );
    let page = api.get("/api/v1/queue?status=error", Some(&api.viewer));
    assert_eq!(page.status, 200, "{}", page.body);
    let errors = keys(&page.json());
    assert_eq!(errors.len(), 3, "{}", page.body);
    for (path, body) in [
        (format!("/api/v1/queue/{}/hold", errors[0]), None),
        (format!("/api/v1/queue/{}/delete", errors[0]), None),
        (
            format!("/api/v1/queue/{}/resubmit", errors[0]),
            Some(r#"{"content":"<x/>"}"#),
        ),
        (
            "/api/v1/queue/bulk".to_string(),
            Some(r#"{"action":"delete","search":{}}"#),
        ),
        ("/api/v1/jobs/orders/hold".to_string(), None),
    ] {
        refused(&api.post(&path, Some(&api.viewer), body), 403, "viewer");
    }
    // A viewer may count (a dry run changes nothing).
    let dry = api.post(
        "/api/v1/queue/bulk",
        Some(&api.viewer),
        Some(r#"{"action":"delete","search":{"status":"error"},"dry_run":true}"#),
    );
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(dry.json()["matched"], 3);
    // Nothing changed.
    assert_eq!(keys(&api.op_get("/api/v1/queue?status=error")), errors);

    // ---- malformed requests: a clear 4xx, the host unaffected ----------
    refused(
        &api.get("/api/v1/queue?status=bogus", Some(&api.viewer)),
        400,
        "unknown message status 'bogus'",
    );
    refused(
        &api.get("/api/v1/queue?limit=0", Some(&api.viewer)),
        400,
        "limit",
    );
    refused(
        &api.get("/api/v1/queue?after=x", Some(&api.viewer)),
        400,
        "after",
    );
    refused(
        &api.get("/api/v1/queue?colour=red", Some(&api.viewer)),
        400,
        "colour",
    );
    refused(
        &api.get("/api/v1/queue?from=yesterday", Some(&api.viewer)),
        400,
        "not a time",
    );
    refused(
        &api.get("/api/v1/queue/abc", Some(&api.viewer)),
        400,
        "not a queue id",
    );
    refused(
        &api.get("/api/v1/queue/999999", Some(&api.viewer)),
        404,
        "no message with queue id 999999",
    );
    refused(
        &api.get("/api/v1/nothing", Some(&api.viewer)),
        404,
        "no such API path",
    );
    refused(
        &api.post("/api/v1/queue/bulk", Some(&api.operator), Some("{not json")),
        400,
        "malformed request body",
    );
    refused(
        &api.post(
            "/api/v1/queue/bulk",
            Some(&api.operator),
            Some(r#"{"action":"explode"}"#),
        ),
        400,
        "malformed request body",
    );
    refused(
        &api.post(
            &format!("/api/v1/queue/{}/explode", errors[0]),
            Some(&api.operator),
            None,
        ),
        404,
        "no action",
    );
    refused(
        &api.post(
            &format!("/api/v1/queue/{}/resubmit", errors[0]),
            Some(&api.operator),
            Some("[1,2]"),
        ),
        400,
        "malformed request body",
    );
    refused(
        &api.post(
            &format!("/api/v1/queue/{}/resubmit", errors[0]),
            Some(&api.operator),
            Some(r#"{"content":"<Envelope><Header>still broken"}"#),
        ),
        400,
        "not a message envelope",
    );
    refused(
        &api.post("/api/v1/jobs/nope/hold", Some(&api.operator), None),
        404,
        "no job named \"nope\"",
    );
    host.assert_running();

    // ---- search and paging ---------------------------------------------
    let p1 = api.op_get("/api/v1/queue?limit=2");
    assert_eq!(keys(&p1).len(), 2);
    let next = p1["next"].as_u64().expect("a next page");
    let p2 = api.op_get(&format!("/api/v1/queue?limit=2&after={next}"));
    let p3 = api.op_get(&format!(
        "/api/v1/queue?limit=2&after={}",
        p2["next"].as_u64().unwrap_or(u64::MAX)
    ));
    let mut all = keys(&p1);
    all.extend(keys(&p2));
    all.extend(keys(&p3));
    all.dedup();
    assert_eq!(all.len(), 4, "{p1} {p2} {p3}");
    assert_eq!(keys(&api.op_get("/api/v1/queue?name=unknown-3")).len(), 1);
    assert_eq!(
        keys(&api.op_get("/api/v1/queue?status=malformed-xml")).len(),
        1
    );
    assert_eq!(
        keys(&api.op_get("/api/v1/queue?error=customerservice&port=in&direction=inbound")),
        errors
    );
    let id3 = "{00000000-0000-4000-8000-000000000003}";
    assert_eq!(
        keys(&api.op_get("/api/v1/queue?message_id=00000000-0000-4000-8000-000000000003")),
        vec![errors[1]]
    );

    // ---- show, diff, export ----------------------------------------------
    let shown = api.op_get(&format!("/api/v1/queue/{}", errors[1]));
    assert_eq!(shown["message"]["status"], "error");
    assert_eq!(shown["message"]["message_id"], id3);
    assert!(
        !shown["exceptions"].as_array().unwrap().is_empty(),
        "{shown}"
    );
    assert!(!shown["versions"].as_array().unwrap().is_empty(), "{shown}");
    let exported = api.get(
        &format!("/api/v1/queue/{}/content", errors[1]),
        Some(&api.viewer),
    );
    assert_eq!(exported.status, 200);
    assert!(exported.body.contains("CustomerService"));

    // ---- single actions: hold, release, delete ---------------------------
    let r = api.op_post(&format!("/api/v1/queue/{}/hold", errors[2]), None);
    assert_eq!(r["status"], "hold");
    refused(
        &api.post(
            &format!(
                "/api/v1/queue/{}/hold",
                keys(&api.op_get("/api/v1/queue?status=malformed-xml"))[0]
            ),
            Some(&api.operator),
            None,
        ),
        409,
        "cannot hold",
    );
    let r = api.op_post(&format!("/api/v1/queue/{}/delete", errors[2]), None);
    assert_eq!(r["status"], serde_json::Value::Null);
    refused(
        &api.get(&format!("/api/v1/queue/{}", errors[2]), Some(&api.viewer)),
        404,
        "no message",
    );

    // ---- edit-and-resubmit through the CLI, answered -----------------------
    let fixed = root.join("fixed-3.xml");
    std::fs::write(&fixed, order(3)).unwrap();
    let out = run(&[
        "queue",
        "resubmit",
        "--config",
        cfg,
        &errors[1].to_string(),
        "--content",
        fixed.to_str().unwrap(),
    ]);
    assert_eq!(out.code, Some(0), "{out}");
    assert!(out.stdout.contains("edited and resubmitted"), "{out}");
    let shown = api.op_get(&format!("/api/v1/queue/{}", errors[1]));
    assert_eq!(shown["message"]["status"], "ready");
    let versions = shown["versions"].as_array().unwrap();
    assert!(
        versions.iter().any(|v| v["stage"] == "operator edit"),
        "{shown}"
    );
    let diff = api.op_get(&format!("/api/v1/queue/{}/diff", errors[1]));
    let diff = diff["diff"].as_str().unwrap();
    assert!(
        diff.contains("-") && diff.contains("SalesOrderService/create"),
        "{diff}"
    );
    // The malformed one: unchanged it would fail again, so it is refused.
    let junk = keys(&api.op_get("/api/v1/queue?status=malformed-xml"))[0];
    let out = run(&["queue", "resubmit", "--config", cfg, &junk.to_string()]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(out.stderr.contains("Malformed XML"), "{out}");
    // run-now: the edited order is answered (two responses).
    let out = run(&["job", "run-now", "--config", cfg, "orders"]);
    assert_eq!(out.code, Some(0), "{out}");
    wait_for_responses(&mut host, &outbox, 2, "the edited order was not answered");
    wait_page(&mut host, &api, "/api/v1/queue", |p| {
        !keys(p).contains(&errors[1])
    });

    // ---- bulk: a dry run, then exactly what it counted ----------------------
    // A new failure after the look is not touched by the bulk action.
    let dry = api.op_post(
        "/api/v1/queue/bulk",
        Some(r#"{"action":"hold","search":{"status":"error"},"dry_run":true}"#),
    );
    assert_eq!(dry["matched"], 1, "{dry}");
    let cutoff = dry["cutoff"].clone();
    std::fs::write(inbox.join("f-unknown-6.xml"), unknown_action(6)).unwrap();
    let out = run(&["job", "run-now", "--config", cfg, "orders"]);
    assert_eq!(out.code, Some(0), "{out}");
    wait_page(&mut host, &api, "/api/v1/queue?status=error", |p| {
        keys(p).len() == 2
    });
    let done = api.op_post(
        "/api/v1/queue/bulk",
        Some(&format!(
            r#"{{"action":"hold","search":{{"status":"error"}},"cutoff":{cutoff}}}"#
        )),
    );
    assert_eq!(done["done"], 1, "{done}");
    assert_eq!(
        keys(&api.op_get("/api/v1/queue?status=hold")),
        vec![errors[0]]
    );
    assert_eq!(keys(&api.op_get("/api/v1/queue?status=error")).len(), 1);
    let m = api.get("/metrics", Some(&api.viewer));
    assert!(
        m.body
            .contains("ferry_queue_depth{direction=\"inbound\",port=\"in\",status=\"hold\"} 1"),
        "{}",
        m.body
    );
    // The CLI's bulk on the running host, with its dry run.
    let out = run(&[
        "queue",
        "bulk",
        "release",
        "--config",
        cfg,
        "--status",
        "hold",
        "--dry-run",
    ]);
    assert!(out.stdout.contains("dry run: 1 message(s) match"), "{out}");
    let cut = out
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("to act on exactly these: --cutoff "))
        .unwrap()
        .to_string();
    let out = run(&[
        "queue", "bulk", "release", "--config", cfg, "--status", "hold", "--cutoff", &cut,
    ]);
    assert!(out.stdout.contains("release: 1 done"), "{out}");

    // ---- the CLI on the running host -----------------------------------------
    let list = run(&["queue", "list", "--config", cfg]);
    assert_eq!(list.code, Some(0), "{list}");
    assert!(list.stdout.trim_end().ends_with("3 message(s)"), "{list}");
    let show = run(&["queue", "show", "--config", cfg, &errors[0].to_string()]);
    assert!(show.stdout.contains("status:          Ready"), "{show}");
    assert!(show.stdout.contains("--- operators ---"), "{show}");
    let ex = run(&["exceptions", "list", "--config", cfg]);
    assert!(ex.stdout.contains("CustomerService"), "{ex}");
    let hist = run(&["history", "--config", cfg, id3]);
    assert!(hist.stdout.contains("stage=operator edit"), "{hist}");
    let plugins = run(&["plugin", "list", "--config", cfg]);
    assert!(plugins.stdout.contains("sales-order-service"), "{plugins}");

    // ---- the audit log: every action, with who ---------------------------------
    let audit = api.op_get("/api/v1/audit?limit=100");
    let entries = audit["items"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "hold",
        "delete",
        "edit-and-resubmit",
        "job-run-now",
        "bulk-hold",
        "bulk-release",
    ] {
        assert!(actions.contains(&a), "{a} not in {actions:?}");
    }
    // No refused action was recorded.
    assert!(!actions.contains(&"resubmit"), "{actions:?}");
    let edit = entries
        .iter()
        .find(|e| e["action"] == "edit-and-resubmit")
        .unwrap();
    assert!(
        edit["who"]
            .as_str()
            .unwrap()
            .starts_with("operator (operator token, cli user"),
        "{edit}"
    );
    assert_eq!(edit["messages"][0].as_u64(), Some(errors[1]));

    // ---- metrics: Prometheus text, a token needed, no message ids ---------------
    refused(&api.get("/metrics", None), 401, "no token");
    let m = api.get("/metrics", Some(&api.viewer));
    assert_eq!(m.status, 200, "{}", m.body);
    for needle in [
        "ferry_messages_received_total{port=\"in\"}",
        "ferry_messages_processed_total{direction=\"inbound\",port=\"in\",outcome=\"done\"}",
        "ferry_messages_processed_total{direction=\"inbound\",port=\"in\",outcome=\"error\"}",
        "ferry_queue_depth{direction=\"inbound\",port=\"in\",status=\"malformed-xml\"} 1",
        "ferry_queue_depth{direction=\"inbound\",port=\"in\",status=\"ready\"} 1",
        "ferry_queue_oldest_message_age_seconds{status=\"ready\"}",
        "ferry_plugin_calls_total{plugin=\"sales-order-service\",function=\"invoke\",outcome=\"ok\"}",
        "ferry_plugin_call_duration_seconds_bucket{plugin=\"file-adapter\"",
        "ferry_processing_duration_seconds_bucket{stage=\"inbound\"",
        "ferry_commit_duration_seconds_bucket",
        "ferry_commit_changes_bucket",
        "ferry_exceptions_total{port=\"in\"",
    ] {
        assert!(m.body.contains(needle), "{needle} not in:\n{}", m.body);
    }
    // The hold count went back to zero when the held message was released.
    assert!(
        m.body
            .contains("ferry_queue_depth{direction=\"inbound\",port=\"in\",status=\"hold\"} 0"),
        "{}",
        m.body
    );
    assert!(
        !m.body.contains("00000000-0000-4000"),
        "a MessageId as a label:\n{}",
        m.body
    );

    // The host is still well, and stops cleanly.
    host.assert_running();
    host.stop();
    // Stopped: the same commands open the queue directly.
    let audit = run(&["audit", "--config", cfg]);
    assert_eq!(audit.code, Some(0), "{audit}");
    assert!(audit.stdout.contains("edit-and-resubmit"), "{audit}");
    let list = run(&["queue", "list", "--config", cfg]);
    assert!(list.stdout.trim_end().ends_with("3 message(s)"), "{list}");
}

#[test]
fn a_host_with_the_console_off_says_so_to_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg_path = config(root, "");
    std::fs::create_dir_all(root.join("inbox")).unwrap();
    std::fs::write(root.join("inbox").join("o1.xml"), order(1)).unwrap();
    let mut host = Host::start(&cfg_path, root.join("ferry.log"), "info");
    wait_for_responses(
        &mut host,
        &root.join("outbox"),
        1,
        "order 1 was not answered",
    );
    let out = run(&["queue", "list", "--config", cfg_path.to_str().unwrap()]);
    assert_ne!(out.code, Some(0), "{out}");
    assert!(
        out.stderr.contains("does not serve its control API"),
        "{out}"
    );
    assert!(out.stderr.contains("console is off"), "{out}");
    host.assert_running();
    host.stop();
}

#[test]
fn a_configured_address_that_is_taken_stops_the_host_with_the_reason() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = config(dir.path(), &addr);
    let out = run(&["run", "--once", "--config", cfg_path.to_str().unwrap()]);
    assert_eq!(out.code, Some(2), "{out}");
    assert!(
        out.stderr.contains(&format!("cannot listen on {addr}")),
        "{out}"
    );
    assert!(out.stderr.contains("[console] listen"), "{out}");
}
