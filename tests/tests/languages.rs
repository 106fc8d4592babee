//! Plugins in other languages, end to end through the real binary: the
//! Python example rule `data-policy` (plugins/python/data-policy, built with
//! componentize-py) on an inbound pipeline, and the JavaScript example
//! transform `csv-orders` (plugins/js/csv-orders, built with
//! componentize-js) turning CSV files into envelopes. Good documents pass
//! (or are transformed) and are answered; bad ones end in Error with the
//! language's own message in the exception log: a rule error returned by the
//! guest, an uncaught Python exception (its traceback) and a thrown
//! JavaScript Error (its message). Nothing is lost.
//!
//! The components are built by `scripts/build-guest-plugins` (which
//! `scripts/test` runs before `cargo test`); without them the test fails
//! saying so. Python and JavaScript components take seconds to compile
//! (minutes on a busy 2-core machine with the test build), so everything
//! runs on one configuration and one data directory, and the compiled
//! components are kept between test runs in `target/test-compile-cache/`:
//! copied into the data directory's compile cache (`DATA_DIR/cache`, keyed
//! by component hash and engine compatibility hash, so a changed plugin or
//! engine is simply compiled again) before the first run and copied back
//! after it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use sha2::{Digest, Sha256};

use ferry_tests::{exception_with, ferry, ferry_stdout, plugins_dir};

const ORDER_ACTION: &str =
    "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create";

/// `target/plugins/NAME.wasm`, built by scripts/build-guest-plugins from
/// `plugins/LANG/NAME/`.
///
/// # Panics
///
/// When it is missing or older than its source, saying how to build it.
fn guest_plugin(lang: &str, name: &str, source: &str) -> PathBuf {
    let path = plugins_dir().join(format!("{name}.wasm"));
    let src = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins")
        .join(lang)
        .join(name)
        .join(source);
    let Ok(built) = std::fs::metadata(&path).and_then(|m| m.modified()) else {
        panic!(
            "the {lang} plugin component {} is missing: it is built by scripts/build-guest-plugins \
             (componentize-py / componentize-js, installed under target/toolchains); scripts/test \
             runs it before `cargo test`. Run `scripts/build-guest-plugins`, then the tests again.",
            path.display()
        );
    };
    let edited = std::fs::metadata(&src)
        .and_then(|m| m.modified())
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()));
    assert!(
        edited <= built,
        "{} is older than {}: run scripts/build-guest-plugins to rebuild it",
        path.display(),
        src.display()
    );
    path
}

/// The compiled components kept between test runs.
fn shared_cache() -> PathBuf {
    plugins_dir()
        .parent()
        .expect("target/plugins has a parent")
        .join("test-compile-cache")
        .join("languages")
}

fn cwasm_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cwasm"))
                .collect()
        })
        .unwrap_or_default()
}

/// Copy every `.cwasm` of `from` into `to` (a temporary file renamed into
/// place); with `prune`, remove the entries of `to` that `from` lacks.
fn sync_cache(from: &Path, to: &Path, prune: bool) {
    std::fs::create_dir_all(to).unwrap();
    let new = cwasm_files(from);
    for f in &new {
        let dest = to.join(f.file_name().unwrap());
        if !dest.exists() {
            let tmp = to.join(format!(".{}.tmp", std::process::id()));
            std::fs::copy(f, &tmp).unwrap();
            std::fs::rename(&tmp, &dest).unwrap();
        }
    }
    if prune {
        for old in cwasm_files(to) {
            if !new.iter().any(|n| n.file_name() == old.file_name()) {
                let _ = std::fs::remove_file(old);
            }
        }
    }
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn envelope(n: u32, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{}</MessageId><Company>dat</Company><Action>{ORDER_ACTION}</Action></Header>\
         <Body><MessageParts><SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
         <SalesTable class=\"entity\"><CustAccount>C{n}</CustAccount><PurchOrderFormNum>PO-{n}</PurchOrderFormNum>{extra}\
         <SalesLine class=\"entity\"><ItemId>ITEM-{n}</ItemId><SalesQty>1</SalesQty></SalesLine>\
         </SalesTable></SalesOrder></MessageParts></Body></Envelope>",
        id(n)
    )
}

fn id(n: u32) -> String {
    format!("{{00000000-0000-4000-8000-{n:012}}}")
}

fn config(root: &Path) -> PathBuf {
    let path = root.join("ferry.toml");
    let policy = "SalesOrder,SalesTable,CustAccount,PurchOrderFormNum,SalesLine,ItemId,SalesQty";
    let port = |name: &str, stage: &str, rule: &str, out: &str| {
        format!(
            "[ports.{name}]\ndirection = \"inbound\"\nadapter = \"file\"\naddress = \"in-{name}\"\n\
             response_address = \"{out}\"\n{stage} = [\"{rule}\"]\n\
             services = [{{ action = \"*/SalesOrderService/*\", service = \"sales\" }}]\n\n"
        )
    };
    let mut text = format!(
        r#"data_dir = "data"
plugin_dir = "{plugins}"

[adapters.file]
component = "file-adapter"

[services.sales]
component = "sales-order-service"
options = {{ forward_port = "copies" }}

# Python: the data policy, as configured, misconfigured and not configured.
[rules.policy]
component = "data-policy"
options = {{ enabled = "Unused", ports = {{ py = "{policy}" }} }}

[rules.policy-bad]
component = "data-policy"
options = {{ enabled = "{policy}", max_elements = "lots" }}

[rules.policy-none]
component = "data-policy"

# JavaScript: the CSV transform, configured and without its Action.
[rules.csv]
component = "csv-orders"
options = {{ action = "{ORDER_ACTION}", company = "dat" }}

[rules.csv-bad]
component = "csv-orders"

[ports.copies]
direction = "outbound"
adapter = "file"
address = "copies"

"#,
        plugins = plugins_dir().display()
    );
    text += &port("py", "pipeline", "policy", "out-py");
    text += &port("pybad", "pipeline", "policy-bad", "out-py");
    text += &port("pynone", "pipeline", "policy-none", "out-py");
    text += &port("csv", "transforms", "csv", "out-csv");
    text += &port("csvbad", "transforms", "csv-bad", "out-csv");
    std::fs::write(&path, text).unwrap();
    for p in ["py", "pybad", "pynone", "csv", "csvbad"] {
        std::fs::create_dir_all(root.join(format!("in-{p}"))).unwrap();
    }
    path
}

fn write(root: &Path, port: &str, name: &str, content: &str) {
    std::fs::write(root.join(format!("in-{port}")).join(name), content).unwrap();
}

/// The files of a folder: (name, content), sorted by name.
fn files(dir: &Path) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| {
                    let e = e.unwrap();
                    (
                        e.file_name().to_string_lossy().into_owned(),
                        std::fs::read_to_string(e.path()).unwrap(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

#[test]
fn python_and_javascript_rules_run_end_to_end_and_their_errors_reach_the_exception_log() {
    guest_plugin("python", "data-policy", "app.py");
    guest_plugin("js", "csv-orders", "app.js");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let cfg_path = config(root);
    let cfg = cfg_path.to_str().unwrap();

    // Python data policy: 1 passes; 2 carries two elements not enabled.
    write(root, "py", "001_good.xml", &envelope(1, ""));
    write(
        root,
        "py",
        "002_not_enabled.xml",
        &envelope(2, "<Price>3</Price><Discount>1</Discount>"),
    );
    // Misconfigured (max_elements = "lots"): an uncaught ValueError.
    write(root, "pybad", "003_any.xml", &envelope(3, ""));
    // Not configured: the rule returns `failed`.
    write(root, "pynone", "004_any.xml", &envelope(4, ""));
    // JavaScript CSV transform: one good file (two lines of one order), a
    // short line, a bad quantity.
    let header = "CustAccount,PurchOrderFormNum,ItemId,SalesQty\n";
    write(
        root,
        "csv",
        "001_ok.csv",
        &format!("{header}C-77,PO-77,ITEM-1,2\r\nC-77,PO-77,ITEM-2,5\n"),
    );
    write(
        root,
        "csv",
        "002_short.csv",
        &format!("{header}C-1,PO-1,ITEM-1\n"),
    );
    write(
        root,
        "csv",
        "003_qty.csv",
        &format!("{header}C-1,PO-1,ITEM-1,many\n"),
    );
    // No `action` configured: the rule throws an Error.
    write(
        root,
        "csvbad",
        "001_ok.csv",
        &format!("{header}C-1,PO-1,ITEM-1,1\n"),
    );

    let cache = root.join("data").join("cache");
    sync_cache(&shared_cache(), &cache, false);
    let started = Instant::now();
    let run = ferry(&[
        "run",
        "--once",
        "--config",
        cfg,
        "--log-level",
        "warn,ferry::plugin=info",
    ]);
    let first = started.elapsed();
    assert!(
        run.status.success(),
        "ferry run --once failed: {}",
        String::from_utf8_lossy(&run.stderr)
    );
    let log = String::from_utf8_lossy(&run.stderr);
    // The JavaScript rule's `log` call reached Ferry's log.
    assert!(
        log.contains("csv converted") && log.contains("csv-orders"),
        "{log}"
    );

    // Every source was taken.
    for p in ["py", "pybad", "pynone", "csv", "csvbad"] {
        assert_eq!(
            files(&root.join(format!("in-{p}"))),
            vec![],
            "in-{p} not emptied"
        );
    }

    // Answers: the good Python document and the converted CSV order, one each.
    let answers_py = files(&root.join("out-py"));
    assert_eq!(answers_py.len(), 1, "{answers_py:?}");
    assert!(
        answers_py[0]
            .1
            .contains(&format!("<RequestMessageId>{}</RequestMessageId>", id(1))),
        "{}",
        answers_py[0].1
    );
    assert!(answers_py[0].1.contains("SO-PO-1-"), "{}", answers_py[0].1);
    let answers_csv = files(&root.join("out-csv"));
    assert_eq!(answers_csv.len(), 1, "{answers_csv:?}");
    assert!(
        answers_csv[0].1.contains("SO-PO-77-"),
        "{}",
        answers_csv[0].1
    );

    // The service forwards each created order's body: the copy of the CSV
    // order is exactly what the JavaScript transform made of the file.
    let copies = files(&root.join("copies"));
    assert_eq!(copies.len(), 2, "{copies:?}");
    let csv_copy = &copies
        .iter()
        .find(|(_, c)| c.contains("PO-77"))
        .expect("a copy of the CSV order")
        .1;
    assert!(
        csv_copy.contains(
            "<SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
             <SalesTable class=\"entity\"><CustAccount>C-77</CustAccount><PurchOrderFormNum>PO-77</PurchOrderFormNum>\
             <SalesLine class=\"entity\"><ItemId>ITEM-1</ItemId><SalesQty>2</SalesQty></SalesLine>\
             <SalesLine class=\"entity\"><ItemId>ITEM-2</ItemId><SalesQty>5</SalesQty></SalesLine>\
             </SalesTable></SalesOrder>"
        ),
        "{csv_copy}"
    );
    assert!(csv_copy.contains("<Company>dat</Company>"), "{csv_copy}");

    // The six bad messages are in the queue, in Error; nothing else is.
    let all = ferry_stdout(&["queue", "list", "--config", cfg]);
    assert!(all.contains("6 message(s)"), "{all}");
    let errors = ferry_stdout(&["queue", "list", "--config", cfg, "--status", "error"]);
    assert!(errors.contains("6 message(s)"), "{errors}");
    for (port, name) in [
        ("py", "002_not_enabled.xml"),
        ("pybad", "003_any.xml"),
        ("pynone", "004_any.xml"),
        ("csv", "002_short.csv"),
        ("csv", "003_qty.csv"),
        ("csvbad", "001_ok.csv"),
    ] {
        assert!(
            errors
                .lines()
                .any(|l| l.contains(name) && l.split_whitespace().nth(2) == Some(port)),
            "{port}/{name} not in Error:\n{errors}"
        );
    }

    // Each exception carries the guest's own words.
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", cfg]);
    let find = |needle: &str| exception_with(&exceptions, needle);
    // Python: a rule error returned by the guest.
    let e = find("data-policy: elements not enabled for port py: Discount, Price");
    assert!(e.contains("rejected"), "{e}");
    assert!(e.contains("plugin=data-policy@"), "{e}");
    assert!(e.contains(&id(2)), "{e}");
    let e = find("data-policy: no elements are enabled for port pynone");
    assert!(e.contains(&id(4)), "{e}");
    // Python: an uncaught exception, with its traceback.
    let e = find("ValueError: invalid literal for int() with base 10: 'lots'");
    assert!(e.contains("Traceback (most recent call last)"), "{e}");
    assert!(e.contains("app.py"), "{e}");
    assert!(e.contains("port=pybad"), "{e}");
    assert!(e.contains(&id(3)), "{e}");
    // JavaScript: rule errors returned by the guest.
    let e = find("csv-orders: line 2: 3 fields, the header has 4");
    assert!(
        e.contains("rejected") && e.contains("stage=transform"),
        "{e}"
    );
    find("csv-orders: line 2: SalesQty \"many\" is not a positive number");
    // JavaScript: a thrown Error, with its message and where it was thrown.
    let e = find("csv-orders on port csvbad: the option `action` is not set");
    assert!(e.contains("plugin=csv-orders@"), "{e}");
    assert!(e.contains("panicked in apply"), "{e}");
    assert!(e.contains("app.js:"), "{e}");

    // `queue show` gives the Python traceback with the message.
    let key = errors
        .lines()
        .find(|l| l.contains("003_any.xml"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap();
    let show = ferry_stdout(&["queue", "show", "--config", cfg, key]);
    assert!(show.contains("status:          Error"), "{show}");
    assert!(show.contains("Traceback (most recent call last)"), "{show}");

    // A second occurrence, from the compile cache: nothing is processed twice.
    let started = Instant::now();
    let again = ferry(&["run", "--once", "--config", cfg]);
    let warm = started.elapsed();
    assert!(again.status.success());
    assert_eq!(files(&root.join("out-py")).len(), 1);
    assert_eq!(files(&root.join("out-csv")).len(), 1);
    assert!(ferry_stdout(&["queue", "list", "--config", cfg]).contains("6 message(s)"));
    // Each of the four components is in the compile cache (named by its
    // sha256; entries of older versions copied from the shared cache may
    // be there too).
    let cached: Vec<String> = cwasm_files(&cache)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for name in [
        "file-adapter",
        "sales-order-service",
        "data-policy",
        "csv-orders",
    ] {
        let hash = sha256_hex(&std::fs::read(plugins_dir().join(format!("{name}.wasm"))).unwrap());
        assert!(
            cached.iter().any(|f| f.starts_with(&hash)),
            "{name} ({hash}) is not in the compile cache: {cached:?}"
        );
    }
    sync_cache(&cache, &shared_cache(), true);
    eprintln!(
        "ferry run --once: {:.1} s the first time (compiling what {} did not hold), {:.2} s from the compile cache",
        first.as_secs_f64(),
        shared_cache().display(),
        warm.as_secs_f64()
    );
}
