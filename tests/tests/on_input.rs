//! The event-driven mode of a batch job, end to end through the real
//! binary: `ferry run` with a job that recurs every hour and has
//! `on_input = true`. After its first occurrence (which answers a first
//! order), a second order dropped into the inbox is answered too — which
//! can only happen through an occurrence started by the input, since the
//! next recurrence is an hour away — and `ferry job history` shows that
//! occurrence with the trigger `input`.
//!
//! No timing is asserted: the deadlines only turn a hang into a failure.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::{ferry, ferry_bin, plugins_dir};

const ORDER_ACTION: &str =
    "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create";

/// How long a response may take before the test fails (generous: a slow CI
/// machine compiles the plugins on the host's first start).
const DEADLINE: Duration = Duration::from_secs(60);

fn order(n: u32) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{{00000000-0000-4000-8000-{n:012}}}</MessageId>\
         <Company>ceu</Company><Action>{ORDER_ACTION}</Action></Header>\
         <Body><MessageParts>\
         <SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
         <SalesTable class=\"entity\"><CustAccount>C{n}</CustAccount>\
         <PurchOrderFormNum>PO-{n}</PurchOrderFormNum>\
         <SalesLine class=\"entity\"><ItemId>ITEM-{n}</ItemId><SalesQty>1</SalesQty></SalesLine>\
         </SalesTable></SalesOrder></MessageParts></Body></Envelope>"
    )
}

/// A running `ferry run`, stopped (SIGTERM, then SIGKILL) when dropped.
struct Host {
    child: Child,
    log: PathBuf,
}

impl Host {
    fn start(config: &Path, log: PathBuf) -> Host {
        let child = Command::new(ferry_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .args([
                "--log-level",
                "info,ferry::scheduler=debug,ferry::input=debug",
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start ferry run");
        Host { child, log }
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fail (with the log) if the host has exited.
    fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("ferry run exited ({status}):\n{}", self.log());
        }
    }

    /// SIGTERM, and wait for a clean exit.
    fn stop(mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(
                    status.success(),
                    "ferry run ended {status}:\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "ferry run did not stop within {DEADLINE:?} of SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The response files in `outbox` (temporary dot-files aside).
fn responses(outbox: &Path) -> usize {
    std::fs::read_dir(outbox).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

/// Wait until `outbox` holds `n` responses; fail with `why` and the log.
fn wait_for_responses(host: &mut Host, outbox: &Path, n: usize, why: &str) {
    let deadline = Instant::now() + DEADLINE;
    while responses(outbox) < n {
        host.assert_running();
        assert!(
            Instant::now() < deadline,
            "{why}: {} response(s) in {} after {DEADLINE:?}, expected {n}\nlog:\n{}",
            responses(outbox),
            outbox.display(),
            host.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn new_input_starts_an_occurrence_long_before_the_next_recurrence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = root.join("ferry.toml");
    std::fs::write(
        &config,
        format!(
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
services = [{{ action = "*/SalesOrderService/*", service = "sales" }}]

[jobs.orders]
every = "1h"
on_input = true
min_interval = "100ms"
"#,
            plugins = plugins_dir().display()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let check = ferry(&["check", "--config", cfg]);
    assert!(
        check.status.success(),
        "ferry check failed: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let (inbox, outbox) = (root.join("inbox"), root.join("outbox"));
    std::fs::create_dir_all(&inbox).unwrap();
    std::fs::write(inbox.join("order-1.xml"), order(1)).unwrap();

    let mut host = Host::start(&config, root.join("ferry.log"));
    // The first occurrence (the recurrence's, at the start) answers order 1.
    // Its send task runs after its receive task, so order 2, written from
    // here on, cannot be received by it.
    wait_for_responses(
        &mut host,
        &outbox,
        1,
        "the first occurrence did not answer the first order",
    );
    std::fs::write(inbox.join("order-2.xml"), order(2)).unwrap();
    wait_for_responses(
        &mut host,
        &outbox,
        2,
        "the second order, written after the first occurrence, was not answered: no \
         occurrence was started by the new input (the next recurrence is an hour away)",
    );
    let log = host.log();
    host.stop();

    let out = ferry(&["job", "history", "--config", cfg, "orders"]);
    let history = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ferry job history failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let first = history.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("#1 Ended") && first.contains("[schedule,"),
        "the first occurrence is the recurrence's:\n{history}"
    );
    assert!(
        history
            .lines()
            .any(|l| l.starts_with('#') && l.contains(" Ended ") && l.contains("[input,")),
        "no occurrence started by input in the history:\n{history}\nlog:\n{log}"
    );
    let list = ferry(&["job", "list", "--config", cfg]);
    let list = String::from_utf8_lossy(&list.stdout);
    assert!(
        list.contains("every 1h, and on input (min interval 100ms)"),
        "{list}"
    );
}
