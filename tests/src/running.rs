//! A `ferry run` host in the background for end-to-end tests of a running
//! host (event-driven jobs, job commands), and the sales orders they send it.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::ferry_bin;

/// The Action of the example sales-order service's `create`.
pub const ORDER_ACTION: &str =
    "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create";

/// How long a response may take before the test fails (generous: a slow CI
/// machine compiles the plugins on the host's first start).
pub const DEADLINE: Duration = Duration::from_secs(60);

/// Sales order `n` as an AIF envelope (MessageId ends in `n`).
pub fn order(n: u32) -> String {
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
pub struct Host {
    child: Child,
    log: PathBuf,
}

impl Host {
    /// Start `ferry run --config CONFIG` with stderr (at `log_level`) in `log`.
    pub fn start(config: &Path, log: PathBuf, log_level: &str) -> Host {
        let child = Command::new(ferry_bin())
            .args(["run", "--config", config.to_str().unwrap()])
            .args(["--log-level", log_level])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start ferry run");
        Host { child, log }
    }

    /// The host's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What the host has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Fail (with the log) if the host has exited.
    pub fn assert_running(&mut self) {
        if let Some(status) = self.child.try_wait().unwrap() {
            panic!("ferry run exited ({status}):\n{}", self.log());
        }
    }

    /// SIGTERM, and wait for a clean exit.
    pub fn stop(mut self) {
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
pub fn responses(outbox: &Path) -> usize {
    std::fs::read_dir(outbox).map_or(0, |entries| {
        entries
            .flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

/// Wait until `outbox` holds `n` responses; fail with `why` and the log.
pub fn wait_for_responses(host: &mut Host, outbox: &Path, n: usize, why: &str) {
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

/// A configuration with one inbound file port `in` (folder `inbox`,
/// answers to `outbox`) served by the example sales-order service, and one
/// job `orders` that runs every hour; `job_extra` is added to the job's
/// table (e.g. `on_input = true`).
pub fn hourly_orders_config(job_extra: &str) -> String {
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
{job_extra}
"#,
        plugins = crate::plugins_dir().display()
    )
}

/// In `root`: write [`hourly_orders_config`] (with `job_extra`) as
/// `ferry.toml` and order 1 into `inbox/`, start the host, and wait until
/// the first occurrence (the recurrence's, at the start) has answered it in
/// `outbox/`. From then on the host holds the data directory.
pub fn start_hourly_orders(root: &Path, job_extra: &str, log_level: &str) -> Host {
    let config = root.join("ferry.toml");
    std::fs::write(&config, hourly_orders_config(job_extra)).expect("write ferry.toml");
    let inbox = root.join("inbox");
    std::fs::create_dir_all(&inbox).expect("create the inbox");
    std::fs::write(inbox.join("order-1.xml"), order(1)).expect("write order 1");
    let mut host = Host::start(&config, root.join("ferry.log"), log_level);
    wait_for_responses(
        &mut host,
        &root.join("outbox"),
        1,
        "the first occurrence did not answer the first order",
    );
    host
}
