//! Plugins built against `ferry:plugin@0.2.0` (the fixtures of
//! `tests/fixtures/plugins-0.2.0`) run natively on a host of a later 0.2.x
//! (the compatibility rule of `wit/ferry.wit`): a port whose adapter,
//! pipeline rule and service are 0.2.0 components receives, maps, answers
//! and sends, without the 0.1 adapter layer.

use ferry_tests::{ferry, ferry_stdout};

#[test]
fn a_port_of_0_2_0_plugins_runs_natively_on_this_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let plugins = ferry_tests::fixture_plugins(
        root,
        &["file-adapter", "value-map", "sales-order-service"],
        ferry_tests::plugin_0_2_0,
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

[services.sales]
component = "sales-order-service"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["map"]
services = [{ action = "*/SalesOrderService/*", service = "sales" }]
logging = "all"
"#,
    )
    .unwrap();
    let inbox = root.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for n in 1..=3 {
        std::fs::write(
            inbox.join(format!("00{n}.xml")),
            ferry_tests::order_envelope(n, "EXT-1"),
        )
        .unwrap();
    }
    let cfg = config.to_str().unwrap();

    let check = ferry(&["check", "--config", cfg]);
    assert!(check.status.success(), "{check:?}");
    let inspect = ferry_stdout(&[
        "plugin",
        "check",
        plugins.join("file-adapter.wasm").to_str().unwrap(),
    ]);
    assert!(inspect.contains("ferry:plugin/files@0.2.0"), "{inspect}");

    let run = ferry(&["run", "--once", "--config", cfg, "--log-level", "info"]);
    assert!(run.status.success(), "{run:?}");
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(!log.contains("adapter layer"), "{log}");

    // Every order answered (the 0.2.0 adapter staged
    // through `files.write` and renamed), nothing left in the inbox and no
    // temporary file in the outbox.
    let mut names: Vec<String> = std::fs::read_dir(root.join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names
            .iter()
            .all(|n| n.ends_with(".xml") && !n.starts_with('.')),
        "{names:?}"
    );
    let answers: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(root.join("outbox").join(n)).unwrap())
        .collect();
    for n in 1..=3 {
        let po = format!("SO-PO-{n}-");
        assert!(answers.iter().any(|a| a.contains(&po)), "{po}: {answers:?}");
    }
    assert_eq!(std::fs::read_dir(&inbox).unwrap().count(), 0);
    let history = ferry_stdout(&[
        "history",
        "--config",
        cfg,
        "{00000000-0000-4000-8000-000000000001}",
    ]);
    assert!(history.contains("<ItemId>1000</ItemId>"), "{history}");
}
