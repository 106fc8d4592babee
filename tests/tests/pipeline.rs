//! End to end through the real binary: 200 files — good orders, a batch, a
//! malformed file, a duplicate MessageId, an unknown Action, rules that trap,
//! reject and loop, a service fault and a service rejection — go through
//! `ferry run --once`. Every good message is answered exactly once; every bad
//! one is in the queue with the right status and a clear exception; nothing
//! is lost, counted exactly.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry::envelope::{self, Parsed};
use ferry_tests::{exception_with, ferry, ferry_stdout, plugin, plugins_dir};

const ORDER_ACTION: &str =
    "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create";

fn id(n: u32) -> String {
    format!("{{00000000-0000-4000-8000-{n:012}}}")
}

fn order_body(n: u32, extra: &str) -> String {
    format!(
        "<SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
         <SalesTable class=\"entity\"><CustAccount>C{n}</CustAccount>\
         <PurchOrderFormNum>PO-{n}</PurchOrderFormNum>{extra}\
         <SalesLine class=\"entity\"><ItemId>ITEM-{n}</ItemId><SalesQty>1</SalesQty></SalesLine>\
         </SalesTable></SalesOrder>"
    )
}

fn envelope(message_id: Option<&str>, action: &str, body: &str) -> String {
    let mid = message_id
        .map(|m| format!("<MessageId>{m}</MessageId>"))
        .unwrap_or_default();
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header>{mid}<Company>ceu</Company><Action>{action}</Action></Header>\
         <Body><MessageParts>{body}</MessageParts></Body></Envelope>"
    )
}

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let config = root.join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
plugin_dir = "{plugins}"
group_commit = 16

[adapters.file]
component = "file-adapter"

[rules.guard]
component = "test-hostile"

[services.sales]
component = "sales-order-service"
options = {{ forward_port = "copies" }}

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["guard"]
services = [{{ action = "*/SalesOrderService/*", service = "sales" }}]
time_limit_ms = 300
logging = "all"

[ports.copies]
direction = "outbound"
adapter = "file"
address = "copies"
"#,
            plugins = plugins_dir().display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("inbox")).unwrap();
    Setup {
        _dir: dir,
        root,
        config,
    }
}

fn write(root: &Path, name: &str, content: &str) {
    std::fs::write(root.join("inbox").join(name), content).unwrap();
}

/// Response files in `folder`, by RequestMessageId: (count, fault code).
fn responses(folder: &Path) -> BTreeMap<String, Vec<Option<String>>> {
    let mut out: BTreeMap<String, Vec<Option<String>>> = BTreeMap::new();
    for entry in std::fs::read_dir(folder).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        assert!(!name.starts_with('.'), "temporary file left behind: {name}");
        let text = std::fs::read_to_string(&path).unwrap();
        let Parsed::Single(env) = envelope::parse(&text).unwrap() else {
            panic!("{name} is a batch")
        };
        assert_eq!(name, format!("{}.xml", env.header.message_id));
        let request = env
            .header
            .request_message_id
            .clone()
            .expect("RequestMessageId");
        out.entry(request)
            .or_default()
            .push(env.fault_of().map(|(code, _)| code));
    }
    out
}

#[test]
fn two_hundred_files_good_and_bad_are_each_accounted_for() {
    let s = setup();
    let cfg = s.config.to_str().unwrap();
    // 001-190: good orders.
    for n in 1..=190 {
        write(
            &s.root,
            &format!("{n:03}_order.xml"),
            &envelope(Some(&id(n)), ORDER_ACTION, &order_body(n, "")),
        );
    }
    // 191: a batch of three good orders.
    let batch = envelope::Batch {
        batch_id: Some("{BA7C0000-0000-4000-8000-000000000191}".into()),
        conversation_id: Some("customer-191".into()),
        messages: (1..=3)
            .map(|i| {
                let n = 1910 + i;
                let Parsed::Single(e) =
                    envelope::parse(&envelope(Some(&id(n)), ORDER_ACTION, &order_body(n, "")))
                        .unwrap()
                else {
                    unreachable!()
                };
                e
            })
            .collect(),
    };
    write(&s.root, "191_batch.xml", &batch.to_xml());
    // 192: malformed XML.
    write(&s.root, "192_malformed.xml", "<Envelope><Header>oops");
    // 193: a duplicate of 005's MessageId.
    write(
        &s.root,
        "193_duplicate.xml",
        &envelope(Some(&id(5)), ORDER_ACTION, &order_body(5, "")),
    );
    // 194: an Action no service handles.
    write(
        &s.root,
        "194_unknown_action.xml",
        &envelope(
            Some(&id(194)),
            "http://schemas.microsoft.com/dynamics/2008/01/services/CustomerService/create",
            &order_body(194, ""),
        ),
    );
    // 195: the pipeline rule panics (traps).
    write(
        &s.root,
        "195_trap.xml",
        &envelope(
            Some(&id(195)),
            ORDER_ACTION,
            &order_body(195, "<Note>HOSTILE:panic</Note>"),
        ),
    );
    // 196: good, without a MessageId (one is generated).
    write(
        &s.root,
        "196_no_message_id.xml",
        &envelope(None, ORDER_ACTION, &order_body(196, "")),
    );
    // 197: an operation the service answers with a fault.
    write(
        &s.root,
        "197_fault.xml",
        &envelope(
            Some(&id(197)),
            "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/delete",
            &order_body(197, ""),
        ),
    );
    // 198: the pipeline rule rejects the document.
    write(
        &s.root,
        "198_reject.xml",
        &envelope(
            Some(&id(198)),
            ORDER_ACTION,
            &order_body(198, "<Note>HOSTILE:reject</Note>"),
        ),
    );
    // 199: the pipeline rule loops past the port's time limit.
    write(
        &s.root,
        "199_loop.xml",
        &envelope(
            Some(&id(199)),
            ORDER_ACTION,
            &order_body(199, "<Note>HOSTILE:loop</Note>"),
        ),
    );
    // 200: the service rejects a body without a sales order.
    write(
        &s.root,
        "200_no_order.xml",
        &envelope(Some(&id(200)), ORDER_ACTION, "<Nothing/>"),
    );
    assert_eq!(
        std::fs::read_dir(s.root.join("inbox")).unwrap().count(),
        200
    );

    let run = ferry(&["run", "--once", "--config", cfg]);
    assert!(
        run.status.success(),
        "ferry run --once failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );

    // Every source was taken: the inbox is empty.
    assert_eq!(std::fs::read_dir(s.root.join("inbox")).unwrap().count(), 0);

    // Responses: 190 + 3 + 1 orders answered once each, plus the duplicate
    // fault (answering 005's id) and the service's fault for 197.
    let resp = responses(&s.root.join("outbox"));
    let mut expected_ok: Vec<String> = (1..=190).map(id).collect();
    expected_ok.extend((1911..=1913).map(id));
    for i in &expected_ok {
        let r = resp.get(i).unwrap_or_else(|| panic!("no response to {i}"));
        if i == &id(5) {
            assert_eq!(r.len(), 2, "005: its answer and the duplicate's fault");
            assert!(r.contains(&None));
            assert!(r.contains(&Some("DuplicateMessage".to_string())));
        } else {
            assert_eq!(r, &vec![None], "{i} answered exactly once");
        }
    }
    assert_eq!(resp[&id(197)], vec![Some("UnknownAction".to_string())]);
    for bad in [194, 195, 198, 199, 200] {
        assert!(!resp.contains_key(&id(bad)), "{bad} must not be answered");
    }
    // The 196 without MessageId got one generated, and one response.
    let generated: Vec<_> = resp
        .keys()
        .filter(|k| !k.starts_with("{00000000-0000-4000-8000-"))
        .collect();
    assert_eq!(generated.len(), 1, "{generated:?}");
    let total: usize = resp.values().map(Vec::len).sum();
    assert_eq!(total, 194 + 2);

    // Copies forwarded through the Send API: one per answered order.
    let copies = std::fs::read_dir(s.root.join("copies")).unwrap().count();
    assert_eq!(copies, 194);

    // The queue holds exactly the six bad messages, with the right status.
    let list = ferry_stdout(&["queue", "list", "--config", cfg]);
    assert!(list.contains("6 message(s)"), "{list}");
    let malformed = ferry_stdout(&[
        "queue",
        "list",
        "--config",
        cfg,
        "--status",
        "malformed-xml",
    ]);
    assert!(malformed.contains("192_malformed.xml"), "{malformed}");
    assert!(malformed.contains("1 message(s)"), "{malformed}");
    let errors = ferry_stdout(&["queue", "list", "--config", cfg, "--status", "error"]);
    assert!(errors.contains("5 message(s)"), "{errors}");
    for name in [
        "194_unknown_action",
        "195_trap",
        "198_reject",
        "199_loop",
        "200_no_order",
    ] {
        assert!(errors.contains(name), "{name} not in Error: {errors}");
    }

    // The exceptions explain each failure: port, stage, plugin and hash.
    let hostile = ferry::runtime::Runtime::new(Default::default())
        .unwrap()
        .load(&plugin("test-hostile"))
        .unwrap();
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", cfg]);
    let find = |needle: &str| exception_with(&exceptions, needle);
    let trap = find("hostile panic");
    assert!(trap.contains("stage=pipeline"), "{trap}");
    assert!(
        trap.contains(&format!("plugin=test-hostile@{}", hostile.short_hash())),
        "{trap}"
    );
    assert!(trap.contains(&id(195)), "{trap}");
    assert!(find("time limit").contains(&id(199)));
    assert!(find("hostile rejects").contains(&id(198)));
    assert!(find("no service on port in handles Action").contains(&id(194)));
    assert!(find("DuplicateMessage").contains(&id(5)));
    assert!(find("192_malformed.xml").contains("stage=parse"));
    assert!(find("UnknownAction").contains("plugin=sales-order-service@"));
    let no_order = find(&id(200));
    assert!(no_order.contains("stage=service"), "{no_order}");

    // `queue show` gives the failed message with its error and exception.
    let key = errors
        .lines()
        .find(|l| l.contains("195_trap"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap()
        .to_string();
    let show = ferry_stdout(&["queue", "show", "--config", cfg, &key]);
    assert!(show.contains("status:          Error"), "{show}");
    assert!(show.contains("hostile panic"), "{show}");
    assert!(show.contains("--- exceptions ---"), "{show}");

    // A second occurrence changes nothing: nothing is processed twice.
    let again = ferry(&["run", "--once", "--config", cfg]);
    assert!(again.status.success());
    let total_again: usize = responses(&s.root.join("outbox"))
        .values()
        .map(Vec::len)
        .sum();
    assert_eq!(total_again, total);

    // Resubmit: a failed message released by the operator is processed
    // again — and, still bad, fails again with a second exception.
    ferry_stdout(&["queue", "hold", "--config", cfg, &key]);
    let held = ferry_stdout(&["queue", "list", "--config", cfg, "--status", "hold"]);
    assert!(held.contains("195_trap"), "{held}");
    ferry_stdout(&["queue", "release", "--config", cfg, &key]);
    assert!(ferry(&["run", "--once", "--config", cfg]).status.success());
    let show = ferry_stdout(&["queue", "show", "--config", cfg, &key]);
    assert!(show.contains("status:          Error"), "{show}");
    assert!(show.contains("attempts:        2"), "{show}");
}

#[test]
fn a_second_host_on_the_same_data_directory_is_refused() {
    let s = setup();
    let cfg = s.config.to_str().unwrap();
    let mut first = std::process::Command::new(ferry_tests::ferry_bin())
        .args(["run", "--config", cfg])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the first host holds the queue (its database exists).
    let db = s.root.join("data").join("ferry.redb");
    for _ in 0..200 {
        if db.exists() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    std::thread::sleep(std::time::Duration::from_millis(200));
    let second = ferry(&["run", "--once", "--config", cfg]);
    let _ = first.kill();
    let _ = first.wait();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another Ferry host"), "{err}");
}
