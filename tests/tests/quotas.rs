//! Quotas on what a plugin hands the host, through the real binary: a
//! service (`test-flood`) that floods the Send API, the log, its responses
//! and its stderr, each in its own message beside normal ones on a parallel
//! port. Each flood message ends in Error with a reason naming its quota
//! and the port key that raises it; every normal message is answered; no
//! Send API copy of a flood message is queued; and the host's peak RSS and
//! its stderr stay small (generous bounds, not timings).
//!
//! Before the quotas, the Send API flood alone took the host to 3.2 GB and
//! the log flood wrote 711 MB to stderr.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::{exception_with, ferry_bin, ferry_stdout, plugins_dir};

/// The host's peak RSS may not pass this.
const MAX_RSS_MB: f64 = 300.0;
/// Nor its stderr this.
const MAX_STDERR: u64 = 1 << 20;

/// The floods, with the quota key each must be stopped by.
/// Each flood and the port key its failure must name. Documents a 0.2
/// service sends travel with its answer: a finite flood of them reaches the
/// quota, one for ever reaches the guest's memory cap first.
const FLOODS: [(&str, &str); 5] = [
    ("send", "max_sent_documents"),
    ("send-forever", "memory_limit_mb"),
    ("log", "max_log_records"),
    ("responses", "max_responses"),
    ("stderr", "max_output_kb"),
];

fn flood_config(workers: usize) -> String {
    format!(
        r#"
data_dir = "data"
plugin_dir = "{plugins}"
workers = {workers}

[adapters.file]
component = "file-adapter"

[services.flood]
component = "test-flood"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
services = [{{ action = "*", service = "flood" }}]
parallel = true
max_parallel = {workers}

[ports.copies]
direction = "outbound"
adapter = "file"
address = "copies"
"#,
        plugins = plugins_dir().display()
    )
}

fn envelope(id: &str, body: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{id}</MessageId><Action>urn:ferry:test/flood</Action></Header>\
         <Body><MessageParts><Request xmlns=\"urn:ferry:test\">{body}</Request></MessageParts>\
         </Body></Envelope>"
    )
}

/// VmHWM of `pid` in MiB, if it still runs.
fn peak_rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Write `copies` flood messages of each kind (named so that the copies
/// of one kind are next to each other in file-name order, so they are in
/// flight together on a port with two workers) between normal ones; run one
/// occurrence; check everything.
fn floods_are_stopped(root: &Path, copies: usize, workers: usize) {
    let config = root.join("ferry.toml");
    std::fs::write(&config, flood_config(workers)).unwrap();
    let inbox = root.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    let mut normal = 0;
    for (i, (kind, _)) in FLOODS.iter().enumerate() {
        for n in 0..5 {
            normal += 1;
            let id = format!("normal-{i}-{n}");
            std::fs::write(
                inbox.join(format!("{i}-a-{n}.xml")),
                envelope(&id, "<Order>fine</Order>"),
            )
            .unwrap();
        }
        for c in 0..copies {
            std::fs::write(
                inbox.join(format!("{i}-b-{c}.xml")),
                envelope(&format!("flood-{kind}-{c}"), &format!("FLOOD:{kind}")),
            )
            .unwrap();
        }
    }

    // One occurrence, its peak RSS read while it runs (VmHWM only grows, so
    // the last reading is at most a few milliseconds short of the peak).
    let log = root.join("ferry.log");
    let mut child = Command::new(ferry_bin())
        .args(["run", "--once", "--config", config.to_str().unwrap()])
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let (pid, deadline) = (child.id(), Instant::now() + Duration::from_secs(300));
    let mut peak: f64 = 0.0;
    let status = loop {
        if let Some(mb) = peak_rss_mb(pid) {
            peak = peak.max(mb);
        }
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "ferry run --once did not end");
        std::thread::sleep(Duration::from_millis(5));
    };
    let stderr_bytes = std::fs::metadata(&log).unwrap().len();
    let log_text = std::fs::read_to_string(&log).unwrap_or_default();
    let shown = &log_text[..log_text.len().min(4000)];
    assert!(
        status.success(),
        "ferry run --once failed: {status}\n{shown}"
    );
    eprintln!(
        "{copies} flood message(s) of each kind, {workers} workers: peak RSS {peak:.0} MB, \
         stderr {stderr_bytes} bytes"
    );
    assert!(
        peak < MAX_RSS_MB,
        "the host's peak RSS was {peak:.0} MB (bound {MAX_RSS_MB} MB)"
    );
    assert!(
        stderr_bytes < MAX_STDERR,
        "the host wrote {stderr_bytes} bytes to stderr (bound {MAX_STDERR}):\n{shown}"
    );

    // Every normal message answered, no flood message answered or copied.
    let outbox: Vec<String> = std::fs::read_dir(root.join("outbox"))
        .unwrap()
        .flatten()
        .map(|e| std::fs::read_to_string(e.path()).unwrap())
        .collect();
    assert_eq!(outbox.len(), normal, "every normal message answered once");
    for id in (0..FLOODS.len()).flat_map(|i| (0..5).map(move |n| format!("normal-{i}-{n}"))) {
        assert!(
            outbox.iter().any(|r| r.contains(&format!(">{id}<"))),
            "no answer to {id}"
        );
    }
    let copies_dir = root.join("copies");
    let copied = std::fs::read_dir(&copies_dir).map_or(0, |d| d.count());
    assert_eq!(copied, 0, "a flood's Send API documents were queued");

    // Each flood message in Error, its reason naming the quota.
    let cfg = config.to_str().unwrap();
    let list = ferry_stdout(&["queue", "list", "--config", cfg]);
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", cfg]);
    for (kind, key) in FLOODS {
        for c in 0..copies {
            let id = format!("flood-{kind}-{c}");
            let line = list
                .lines()
                .find(|l| l.contains(&id))
                .unwrap_or_else(|| panic!("{id} is not in the queue:\n{list}"));
            assert!(line.contains("Error"), "{id} is not in Error: {line}");
            let e = exception_with(&exceptions, &format!("id={id}"));
            assert!(
                e.contains(&format!("`{key}`")) && e.contains("test-flood"),
                "{id}'s exception does not name the quota `{key}` and the plugin: {e}"
            );
        }
    }
    assert_eq!(
        list.lines().filter(|l| l.contains("normal-")).count(),
        0,
        "a normal message is still queued:\n{list}"
    );
}

#[test]
fn each_flood_is_stopped_by_its_quota() {
    let dir = tempfile::tempdir().unwrap();
    floods_are_stopped(dir.path(), 1, 2);
}

#[test]
fn two_floods_in_flight_at_once_are_stopped_too() {
    let dir = tempfile::tempdir().unwrap();
    floods_are_stopped(dir.path(), 2, 2);
}

/// An adapter's receive batch larger than `max_receive_mb` fails the receive
/// call with the quota named: nothing is queued, the sources stay where they
/// are, and the port is reported once.
#[test]
fn a_receive_batch_past_its_quota_is_refused_and_the_sources_stay() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let config = root.join("ferry.toml");
    let text = flood_config(1).replace(
        "max_parallel = 1\n",
        "max_parallel = 1\nmax_receive_mb = 0\n",
    );
    assert!(text.contains("max_receive_mb = 0"), "{text}");
    std::fs::write(&config, text).unwrap();
    let inbox = root.join("inbox");
    std::fs::create_dir_all(&inbox).unwrap();
    for n in 0..3 {
        std::fs::write(
            inbox.join(format!("{n}.xml")),
            envelope(&format!("m-{n}"), "<Order>fine</Order>"),
        )
        .unwrap();
    }
    let cfg = config.to_str().unwrap();
    ferry_stdout(&["run", "--once", "--config", cfg]);
    assert_eq!(
        std::fs::read_dir(&inbox).unwrap().count(),
        3,
        "sources removed"
    );
    let list = ferry_stdout(&["queue", "list", "--config", cfg]);
    assert!(
        list.contains("0 message(s)"),
        "something was queued:\n{list}"
    );
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", cfg]);
    let e = exception_with(&exceptions, "`max_receive_mb`");
    assert!(e.contains("file-adapter"), "the adapter is not named: {e}");
    assert!(exceptions.contains("1 exception(s)"), "{exceptions}");
}
