//! The event-driven mode of a batch job, end to end through the real
//! binary: `ferry run` with a job that recurs every hour and has
//! `on_input = true`. After its first occurrence (which answers a first
//! order), a second order dropped into the inbox is answered too — which
//! can only happen through an occurrence started by the input, since the
//! next recurrence is an hour away — and `ferry job history` shows that
//! occurrence with the trigger `input`.
//!
//! No timing is asserted: the deadlines only turn a hang into a failure.

use ferry_tests::ferry;
use ferry_tests::running::{order, start_hourly_orders, wait_for_responses};

#[test]
fn new_input_starts_an_occurrence_long_before_the_next_recurrence() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // The first occurrence answers order 1. Its send task runs after its
    // receive task, so order 2, written from here on, cannot be received by
    // it.
    let mut host = start_hourly_orders(
        root,
        "on_input = true\nmin_interval = \"100ms\"",
        "info,ferry::scheduler=debug,ferry::input=debug",
    );
    let config = root.join("ferry.toml");
    let cfg = config.to_str().unwrap();
    let check = ferry(&["check", "--config", cfg]);
    assert!(
        check.status.success(),
        "ferry check failed: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let (inbox, outbox) = (root.join("inbox"), root.join("outbox"));
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
