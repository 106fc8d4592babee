//! Plugins built against `ferry:plugin@0.1.0` (the fixtures of
//! `tests/fixtures/plugins-0.1`, built from the sources before contract 0.2)
//! run through the real binary: a port whose adapter, pipeline rule and
//! service are all 0.1 components receives, maps, answers and sends, and a
//! trap of a 0.1 rule lands on its own message.

use ferry_tests::{exception_with, ferry, ferry_stdout};

#[test]
fn a_port_of_0_1_plugins_runs_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    ferry_tests::fixture_plugins(
        root,
        &[
            "file-adapter",
            "value-map",
            "sales-order-service",
            "test-hostile",
        ],
        ferry_tests::plugin_0_1,
    );
    let config = root.join("ferry.toml");
    std::fs::write(
        &config,
        r#"
data_dir = "data"
plugin_dir = "plugins"

[adapters.file]
component = "file-adapter"

[rules.map]
component = "value-map"
options = { elements = "ItemId", map = { "EXT-1" = "1000" } }

[rules.guard]
component = "test-hostile"

[services.sales]
component = "sales-order-service"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["guard", "map"]
services = [{ action = "*/SalesOrderService/*", service = "sales" }]
logging = "all"
"#,
    )
    .unwrap();
    let inbox = root.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(
        inbox.join("001.xml"),
        ferry_tests::order_envelope(1, "EXT-1"),
    )
    .unwrap();
    std::fs::write(
        inbox.join("002.xml"),
        ferry_tests::order_envelope(2, "HOSTILE:panic"),
    )
    .unwrap();
    std::fs::write(
        inbox.join("003.xml"),
        ferry_tests::order_envelope(3, "EXT-1"),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();

    // `ferry check` loads them, saying they run through the adapter layer.
    let check = ferry(&["check", "--config", cfg]);
    assert!(check.status.success(), "{check:?}");

    let run = ferry(&["run", "--once", "--config", cfg, "--log-level", "info"]);
    assert!(run.status.success(), "{run:?}");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(log.contains("runs through the adapter layer"), "{log}");

    // The two good orders are answered (the 0.1 adapter wrote them), the
    // inbox is empty (it deleted the sources).
    let mut answers: Vec<String> = std::fs::read_dir(root.join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    answers.sort();
    assert_eq!(answers.len(), 2, "{answers:?}");
    assert!(
        answers.iter().any(|a| a.contains("SO-PO-1-")),
        "{answers:?}"
    );
    assert!(
        answers.iter().any(|a| a.contains("SO-PO-3-")),
        "{answers:?}"
    );
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 0);

    // The 0.1 value-map mapped the item (the history keeps the version
    // after the pipeline).
    let history = ferry_stdout(&[
        "history",
        "--config",
        cfg,
        "{00000000-0000-4000-8000-000000000001}",
    ]);
    assert!(history.contains("<ItemId>1000</ItemId>"), "{history}");

    // The panic of the 0.1 rule is on its own message.
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", cfg]);
    let e = exception_with(&exceptions, "id={00000000-0000-4000-8000-000000000002}");
    assert!(e.contains("test-hostile") && e.contains("panicked"), "{e}");
    assert!(
        e.contains("hostile panic: the document asked for it"),
        "{e}"
    );
}
