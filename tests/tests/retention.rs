//! Retention under load, through the real binary: `ferry run` prunes every
//! second, with every log kept for one second only, while 2,000 orders and
//! 20 failing messages flow in four waves. Every order is answered, the
//! failed messages stay in the queue with their content, history and
//! exceptions, and what is about messages gone is pruned.
//!
//! No timing is asserted: the deadlines only turn a hang into a failure.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferry_tests::api::Api;
use ferry_tests::plugins_dir;
use ferry_tests::running::{DEADLINE, Host, ORDER_ACTION, order, wait_for_responses};

const WAVES: u32 = 4;
const ORDERS: u32 = 500;
const FAILING: u32 = 5;

/// An order whose Action no service handles: it stays in the queue, Error.
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

[console]
listen = "127.0.0.1:0"

[retention]
message_log = "1s"
history = "1s"
exceptions = "1s"
audit = "1s"
every = "1s"
"#,
        plugins = plugins_dir().display()
    );
    let path = root.join("ferry.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Order `n`'s `MessageId`, braces percent-encoded for a query.
fn message_id(n: u32) -> String {
    format!("%7B00000000-0000-4000-8000-{n:012}%7D")
}

#[test]
fn retention_under_load_loses_no_queued_message() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg = config(root);
    let (inbox, outbox, data) = (root.join("inbox"), root.join("outbox"), root.join("data"));
    let staging = root.join("staging");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::create_dir_all(&staging).unwrap();
    // Written aside and renamed into place: the host never reads a
    // half-written file.
    let drop_file = |name: String, content: String| {
        std::fs::write(staging.join(&name), content).unwrap();
        std::fs::rename(staging.join(&name), inbox.join(&name)).unwrap();
    };
    let write_wave = |w: u32| {
        for i in 0..ORDERS {
            let n = w * 10_000 + i + 1;
            drop_file(format!("order-{n}.xml"), order(n));
        }
        for i in 0..FAILING {
            let n = w * 10_000 + 9_000 + i;
            drop_file(format!("unknown-{n}.xml"), unknown_action(n));
        }
    };
    write_wave(0);
    let mut host = Host::start(&cfg, root.join("ferry.log"), "info");
    for w in 0..WAVES {
        if w > 0 {
            write_wave(w);
        }
        wait_for_responses(
            &mut host,
            &outbox,
            ((w + 1) * ORDERS) as usize,
            "the orders of a wave were not answered",
        );
    }
    let api = Api::new(&data);

    // The first wave's processed MessageIds and histories are pruned (the
    // pruning ran under load: the later waves came after).
    let deadline = Instant::now() + DEADLINE;
    loop {
        let h = api.get(&format!("/api/v1/history?message_id={}", message_id(1)));
        if h["processed"] == false && h["history"].as_array().unwrap().is_empty() {
            break;
        }
        host.assert_running();
        assert!(
            Instant::now() < deadline,
            "order 1's records were never pruned: {h}\nlog:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // One more whole pass after that (the counter moves at the end of each).
    let pruned = |log: &str| -> u64 {
        let metrics = api.text("/metrics");
        metrics
            .lines()
            .find(|l| l.starts_with(&format!("ferry_retention_pruned_total{{log=\"{log}\"}}")))
            .and_then(|l| l.split_whitespace().last())
            .map_or(0, |v| v.parse::<f64>().unwrap() as u64)
    };
    assert!(pruned("message_log") > 0);
    assert!(pruned("history") > 0);

    // Every order answered, exactly once.
    assert_eq!(
        ferry_tests::running::responses(&outbox),
        (WAVES * ORDERS) as usize
    );
    // Every failed message is still queued, with its content, its history
    // and its exceptions.
    let page = api.get("/api/v1/queue?limit=1000");
    let items = page["items"].as_array().unwrap();
    assert_eq!(items.len(), (WAVES * FAILING) as usize, "{page}");
    for m in items {
        assert_eq!(m["status"], "error", "{m}");
        let k = m["key"].as_u64().unwrap();
        let shown = api.get(&format!("/api/v1/queue/{k}"));
        assert!(
            shown["message"]["content"]
                .as_str()
                .unwrap()
                .contains("CustomerService"),
            "{shown}"
        );
        let versions = shown["versions"].as_array().unwrap();
        assert!(!versions.is_empty(), "{shown}");
        assert!(
            versions[0]["content"]
                .as_str()
                .unwrap()
                .contains("CustomerService"),
            "{shown}"
        );
        assert!(
            !shown["exceptions"].as_array().unwrap().is_empty(),
            "{shown}"
        );
        let id = m["message_id"].as_str().unwrap();
        let h = api.get(&format!(
            "/api/v1/history?message_id={}",
            id.replace('{', "%7B").replace('}', "%7D")
        ));
        assert!(!h["history"].as_array().unwrap().is_empty(), "{h}");
    }
    host.assert_running();
    host.stop();
}
