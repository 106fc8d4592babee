//! The job commands on a running host, end to end through the real binary:
//! `ferry run` holds the data directory, so `ferry job` asks the running
//! host through its control API (`DATA_DIR/console/host.json` and a token
//! file) and prints the host's reply. With a job that recurs every hour: `hold` is answered
//! Withhold and `list` shows it; `run-now` on the held job is refused;
//! `release`, then `run-now` starts an occurrence (an order dropped into the
//! inbox is answered, an hour before the next recurrence); an unknown job is
//! refused with a non-zero exit; after SIGTERM, `ferry job history` (on the
//! stopped host) shows the run-now occurrence.
//!
//! No timing is asserted: the deadlines only turn a hang into a failure.

use std::process::Output;
use std::time::{Duration, Instant};

use ferry_tests::ferry;
use ferry_tests::running::{DEADLINE, Host, order, start_hourly_orders, wait_for_responses};

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `ferry job ARGS... --config CFG` against the running host, which must
/// succeed (`ok`) or be refused; its (stdout, stderr).
fn job(host: &mut Host, cfg: &str, args: &[&str], ok: bool) -> (String, String) {
    let mut all = vec!["job"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", cfg]);
    let out = ferry(&all);
    let (stdout, stderr) = text(&out);
    host.assert_running();
    assert_eq!(
        out.status.success(),
        ok,
        "ferry {all:?} ({}; expected {}):\nstdout: {stdout}\nstderr: {stderr}\nlog:\n{}",
        out.status,
        if ok { "success" } else { "a refusal" },
        host.log()
    );
    (stdout, stderr)
}

/// `ferry job ...`, which must succeed; its stdout.
fn job_ok(host: &mut Host, cfg: &str, args: &[&str]) -> String {
    job(host, cfg, args, true).0
}

/// `ferry job ...`, which must be refused; its stderr.
fn job_refused(host: &mut Host, cfg: &str, args: &[&str]) -> String {
    job(host, cfg, args, false).1
}

/// The `orders` line of `ferry job list`.
fn orders_line(list: &str) -> String {
    list.lines()
        .find(|l| l.starts_with("orders "))
        .unwrap_or_else(|| panic!("no orders job in:\n{list}"))
        .to_string()
}

#[test]
fn job_commands_act_on_the_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The first occurrence answers order 1; from here on the host holds
    // the data directory.
    let mut host = start_hourly_orders(root, "", "info,ferry::scheduler=debug");
    let config = root.join("ferry.toml");
    let cfg = config.to_str().unwrap();
    let (inbox, outbox) = (root.join("inbox"), root.join("outbox"));
    // `list`, answered by the running host: wait until that occurrence has
    // ended (a job that is Executing cannot be held).
    let deadline = Instant::now() + DEADLINE;
    loop {
        let list = job_ok(&mut host, cfg, &["list"]);
        assert!(list.contains("1 job(s)"), "{list}");
        let line = orders_line(&list);
        if line.contains(" Waiting ") && line.contains("#1 Ended") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the first occurrence did not end:\n{list}\nlog:\n{}",
            host.log()
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    let out = job_ok(&mut host, cfg, &["hold", "orders"]);
    assert_eq!(out.trim(), "job orders is Withhold", "{out}");
    let line = orders_line(&job_ok(&mut host, cfg, &["list"]));
    assert!(line.contains(" Withhold "), "{line}");
    let why = job_refused(&mut host, cfg, &["run-now", "orders"]);
    assert!(
        why.contains("cannot run-now job \"orders\": it is Withhold; release it first"),
        "{why}"
    );

    let out = job_ok(&mut host, cfg, &["release", "orders"]);
    assert!(
        out.starts_with("job orders is Waiting; next run: "),
        "{out}"
    );

    // Order 2 is not received until an occurrence runs: the next recurrence
    // is an hour away, so only run-now answers it.
    std::fs::write(inbox.join("order-2.xml"), order(2)).unwrap();
    let out = job_ok(&mut host, cfg, &["run-now", "orders"]);
    assert!(
        out.contains("job orders is Waiting; its next occurrence starts at once"),
        "{out}"
    );
    wait_for_responses(
        &mut host,
        &outbox,
        2,
        "the second order was not answered: run-now did not start an occurrence",
    );

    let why = job_refused(&mut host, cfg, &["hold", "nope"]);
    assert!(
        why.contains("no job named \"nope\" in the configuration (its jobs: orders)"),
        "{why}"
    );
    let why = job_refused(&mut host, cfg, &["history", "nope"]);
    assert!(why.contains("no job named \"nope\""), "{why}");

    let log = host.log();
    host.stop();
    let history = job_ok_stopped(cfg, &["history", "orders"]);
    assert!(
        history
            .lines()
            .any(|l| l.starts_with('#') && l.contains(" Ended ") && l.contains("[run-now,")),
        "no run-now occurrence in the history:\n{history}\nlog:\n{log}"
    );
    // A clean stop removes the host's address (no command tries to reach a
    // host that is gone); the tokens stay, private to the host's user.
    let console = root.join("data").join("console");
    assert!(!console.join("host.json").exists());
    use std::os::unix::fs::PermissionsExt as _;
    for f in ["operator.token", "viewer.token"] {
        let mode = std::fs::metadata(console.join(f))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{f}");
    }
    // The job actions are in the audit log.
    let audit = job_ok_stopped_cmd(&["audit", "--config", cfg]);
    for action in ["job-hold", "job-release", "job-run-now"] {
        assert!(audit.contains(action), "{action} not in:\n{audit}");
    }
}

/// `ferry ARGS...` on a stopped host; its stdout.
fn job_ok_stopped_cmd(args: &[&str]) -> String {
    let out = ferry(args);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "ferry {args:?} failed: {stderr}");
    stdout
}

/// `ferry job ARGS... --config CFG` on a stopped host; its stdout.
fn job_ok_stopped(cfg: &str, args: &[&str]) -> String {
    let mut all = vec!["job"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--config", cfg]);
    let out = ferry(&all);
    let (stdout, stderr) = text(&out);
    assert!(out.status.success(), "ferry {all:?} failed: {stderr}");
    stdout
}
