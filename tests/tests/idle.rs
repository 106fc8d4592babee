//! An idle `ferry run` costs nothing: with the demo's set-up (a job that
//! recurs every second over a file port, an event-driven job watching
//! another inbox, the plugin directory and the requests folder watched),
//! the host's process CPU time (user + system, from `/proc/PID/stat`) over
//! an idle window of 5 s stays under 5 % of one core — after start-up, and
//! again after it has answered a few orders and a job command.
//!
//! This once failed: the job-request thread woke on the access events its
//! own listing of the requests folder raised, and kept a core busy for ever.
//! And once more on a PostgreSQL gateway queue: the thread listening for
//! the other hosts' wake-ups waited on a timer that, once expired, never
//! waited again. Both queue backends are checked.
//! The bound is generous (an occurrence per second of the recurring job
//! costs well under 1 %), so a loaded machine does not make it flaky: CPU
//! time is what the host consumed, not how long anything took.

use std::path::Path;
use std::time::Duration;

use ferry_tests::ferry;
use ferry_tests::running::{Host, order, wait_for_responses};

/// The idle window.
const IDLE: Duration = Duration::from_secs(5);

/// The share of one core an idle host may use.
const MAX_SHARE: f64 = 0.05;

fn demo_like_config() -> String {
    format!(
        r#"
data_dir = "data"
plugin_dir = "{plugins}"

[adapters.file]
component = "file-adapter"

[rules.item-ids]
component = "value-map"
options = {{ elements = "ItemId", map = {{ "PARTNER-CHAIR" = "1000" }} }}

[services.sales-orders]
component = "sales-order-service"

[ports.orders-in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["item-ids"]
services = [{{ action = "*/SalesOrderService/*", service = "sales-orders" }}]

[ports.events-in]
direction = "inbound"
adapter = "file"
address = "events"
response_address = "events-out"
services = [{{ action = "*/SalesOrderService/*", service = "sales-orders" }}]

[jobs.aif]
every = "1s"
tasks = {orders}

[jobs.events]
every = "1h"
on_input = true
min_interval = "100ms"
tasks = {events}
"#,
        plugins = ferry_tests::plugins_dir().display(),
        orders = four_services("orders-in"),
        events = four_services("events-in"),
    )
}

/// The four services as a job's tasks, on `port` only.
fn four_services(port: &str) -> String {
    let tasks: Vec<String> = [
        "gateway-receive",
        "inbound-processing",
        "outbound-processing",
        "gateway-send",
    ]
    .iter()
    .map(|s| format!("{{ service = \"{s}\", ports = [\"{port}\"] }}"))
    .collect();
    format!("[{}]", tasks.join(", "))
}

/// The process's CPU time (user, system) in seconds.
fn cpu(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc/PID/stat");
    // Fields after the command name (which may hold spaces): the state is
    // field 3, utime field 14, stime field 15.
    let rest = &stat[stat.rfind(')').expect("a stat line") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = clock_ticks();
    let t = |i: usize| f[i].parse::<f64>().expect("a number of ticks") / ticks;
    (t(11), t(12))
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// Measure the host's CPU over [`IDLE`]; fail (naming `when`) above
/// [`MAX_SHARE`] of one core.
fn assert_idle(host: &mut Host, when: &str) {
    let (u0, s0) = cpu(host.pid());
    let start = std::time::Instant::now();
    std::thread::sleep(IDLE);
    let (u1, s1) = cpu(host.pid());
    let wall = start.elapsed().as_secs_f64();
    host.assert_running();
    let (user, system) = (u1 - u0, s1 - s0);
    let share = (user + system) / wall;
    eprintln!(
        "idle {when}: {user:.2} s user + {system:.2} s system over {wall:.1} s = {:.1} % of a core",
        share * 100.0
    );
    assert!(
        share < MAX_SHARE,
        "an idle host {when} used {:.1} % of a core ({user:.2} s user + {system:.2} s system \
         over {wall:.1} s); at most {:.0} % expected\nlog:\n{}",
        share * 100.0,
        MAX_SHARE * 100.0,
        host.log()
    );
}

fn write_orders(dir: &Path, from: u32, to: u32) {
    std::fs::create_dir_all(dir).unwrap();
    for n in from..=to {
        std::fs::write(dir.join(format!("order-{n:03}.xml")), order(n)).unwrap();
    }
}

#[test]
fn an_idle_host_uses_almost_no_cpu() {
    idle_host("");
}

/// The same on a PostgreSQL gateway queue (`FERRY_TEST_POSTGRES_URL`, or
/// 127.0.0.1:5432: the README's test command finds or starts one).
#[test]
fn an_idle_host_on_postgresql_uses_almost_no_cpu() {
    let url = std::env::var("FERRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
    let schema = format!("ferry_idle_{}", std::process::id());
    struct Dropped(String, String);
    impl Drop for Dropped {
        fn drop(&mut self) {
            if let Ok(mut c) = postgres::Client::connect(&self.0, postgres::NoTls) {
                let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.1));
            }
        }
    }
    let _drop = Dropped(url.clone(), schema.clone());
    idle_host(&format!(
        "\n[queue]\nbackend = \"postgres\"\nurl = \"{url}\"\nschema = \"{schema}\"\n"
    ));
}

/// An idle host with the demo-like configuration and `extra` appended.
fn idle_host(extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = root.join("ferry.toml");
    std::fs::write(&config, demo_like_config() + extra).unwrap();
    let (inbox, events) = (root.join("inbox"), root.join("events"));
    write_orders(&inbox, 1, 1);
    std::fs::create_dir_all(&events).unwrap();
    let mut host = Host::start(&config, root.join("ferry.log"), "info");
    // Started: plugins loaded, the first occurrence has answered order 1.
    wait_for_responses(
        &mut host,
        &root.join("outbox"),
        1,
        "order 1 was not answered",
    );
    assert_idle(&mut host, "after start-up");

    // Some work on both ports, and a job command through the requests
    // folder; then idle again.
    write_orders(&inbox, 2, 5);
    write_orders(&events, 6, 8);
    wait_for_responses(
        &mut host,
        &root.join("outbox"),
        5,
        "orders 2-5 were not answered",
    );
    wait_for_responses(
        &mut host,
        &root.join("events-out"),
        3,
        "the events were not answered",
    );
    let list = ferry(&["job", "list", "--config", config.to_str().unwrap()]);
    assert!(
        list.status.success(),
        "ferry job list on the running host failed: {}",
        String::from_utf8_lossy(&list.stderr)
    );
    assert_idle(&mut host, "after answering orders and a job command");
    host.stop();
}
