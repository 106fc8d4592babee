//! The queue manager on a busy host: `ferry queue list` while `ferry run`
//! processes 20,000 orders answers (through the running host's control
//! API), and processing goes on to the last order. No timing is asserted:
//! the deadline only turns a hang into a failure.

use std::path::Path;
use std::time::{Duration, Instant};

use ferry_tests::run;
use ferry_tests::running::{order, responses, start_hourly_orders};

const ORDERS: u32 = 20_000;

fn write_orders(inbox: &Path, from: u32, to: u32) {
    for n in from..=to {
        // Written aside and renamed in: the host never reads half a file.
        let tmp = inbox.join(format!(".order-{n}.tmp"));
        std::fs::write(&tmp, order(n)).unwrap();
        std::fs::rename(&tmp, inbox.join(format!("order-{n:05}.xml"))).unwrap();
    }
}

#[test]
fn queue_list_answers_while_the_host_processes_20000_orders() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    // Event-driven: new files start the job at once.
    let mut host = start_hourly_orders(root, "on_input = true", "warn");
    let config = root.join("ferry.toml");
    let config = config.to_str().unwrap();
    let outbox = root.join("outbox");
    write_orders(&root.join("inbox"), 2, ORDERS + 1);
    let total = ORDERS as usize + 1;
    let deadline = Instant::now() + Duration::from_secs(900);
    let (mut asked, mut while_busy) = (0, 0);
    while responses(&outbox) < total {
        host.assert_running();
        assert!(
            Instant::now() < deadline,
            "{} of {total} answered after 900 s\n{}",
            responses(&outbox),
            host.log()
        );
        let before = responses(&outbox);
        let r = run(&["queue", "list", "--limit", "5", "--config", config]);
        assert_eq!(r.code, Some(0), "queue list on the busy host: {}", r.both());
        asked += 1;
        if responses(&outbox) < total && before < total {
            while_busy += 1;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(
        while_busy > 0,
        "queue list was asked {asked} time(s), never while the host was busy"
    );
    // Every order answered; the queue is empty at the end.
    let r = run(&["queue", "list", "--config", config]);
    assert_eq!(r.code, Some(0), "{}", r.both());
    host.stop();
}
