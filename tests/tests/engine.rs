//! The parallel/sequential engine, through the real binary. The `test-probe`
//! service sleeps as long as each message asks (`<DelayMs>`) and logs
//! `event=invoke` when called and `event=done` before it returns; the host's
//! JSON log timestamps those records, from which the tests compute order and
//! concurrency.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ferry_tests::{ferry_bin, plugins_dir, record_field, record_micros};

const ACTION: &str = "urn:test/ProbeService/run";

struct Event {
    micros: u64,
    invoke: bool,
    file: String,
}

fn setup(port_options: &str, workers: usize) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
plugin_dir = "{plugins}"
workers = {workers}

[adapters.file]
component = "file-adapter"

[services.probe]
component = "test-probe"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
services = [{{ action = "*", service = "probe" }}]
logging = "off"
# Every probe record is evidence here: no rate limit on the plugin's log.
log_rate = 1000000
{port_options}
"#,
            plugins = plugins_dir().display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(dir.path().join("inbox")).unwrap();
    (dir, config)
}

fn message(root: &Path, file: &str, n: u32, conversation: Option<&str>, delay_ms: u32) {
    let conv = conversation
        .map(|c| format!("<ConversationId>{c}</ConversationId>"))
        .unwrap_or_default();
    let xml = format!(
        "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{{00000000-0000-4000-8000-{n:012}}}</MessageId><Action>{ACTION}</Action>{conv}</Header>\
         <Body><MessageParts><Probe><File>{file}</File><DelayMs>{delay_ms}</DelayMs></Probe></MessageParts></Body></Envelope>"
    );
    std::fs::write(root.join("inbox").join(file), xml).unwrap();
}

/// Run one occurrence with JSON logs; return the probe's events in time order.
fn run_once(config: &Path) -> Vec<Event> {
    run_logged(config, false).0
}

/// [`run_once`], and when each stage of the occurrence ended (microseconds
/// within the day, by stage name) if `stages`.
fn run_logged(config: &Path, stages: bool) -> (Vec<Event>, BTreeMap<String, u64>) {
    let level = if stages {
        "warn,ferry::plugin=info,ferry::services=debug"
    } else {
        "warn,ferry::plugin=info"
    };
    let out = std::process::Command::new(ferry_bin())
        .args([
            "run",
            "--once",
            "--log-format",
            "json",
            "--log-level",
            level,
            "--config",
        ])
        .arg(config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut events = Vec::new();
    let mut ended = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stderr).lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if v["fields"]["message"] == "stage ended" {
            let stage = v["fields"]["stage"].as_str().unwrap_or_default();
            ended.insert(stage.to_string(), record_micros(&v));
            continue;
        }
        let Some(event) = record_field(&v, "event") else {
            continue;
        };
        events.push(Event {
            micros: record_micros(&v),
            invoke: event == "invoke",
            file: record_field(&v, "file").unwrap_or_default(),
        });
    }
    // On a tie, a `done` sorts before an `invoke`: a message that ends and the
    // next that starts in the same microsecond did not overlap.
    events.sort_by_key(|e| (e.micros, e.invoke));
    (events, ended)
}

/// The largest number of invocations running at the same moment.
fn max_concurrency(events: &[Event]) -> i32 {
    let (mut now, mut max) = (0, 0);
    for e in events {
        now += if e.invoke { 1 } else { -1 };
        max = max.max(now);
    }
    max
}

/// A deterministic pseudo-random sequence.
fn delays(n: usize, seed: u64, max: u32) -> Vec<u32> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % max as u64) as u32
        })
        .collect()
}

fn responses(root: &Path) -> usize {
    std::fs::read_dir(root.join("outbox")).map_or(0, |d| d.count())
}

#[test]
fn sequential_port_processes_in_file_name_order() {
    let (dir, config) = setup("parallel = false", 4);
    // Written in shuffled order.
    let mut order: Vec<u32> = (1..=500).collect();
    let d = delays(500, 7, 1000);
    order.sort_by_key(|n| d[*n as usize - 1]);
    for n in &order {
        message(dir.path(), &format!("{n:03}_msg.xml"), *n, None, 0);
    }
    let events = run_once(&config);
    let invoked: Vec<String> = events
        .iter()
        .filter(|e| e.invoke)
        .map(|e| e.file.clone())
        .collect();
    let expected: Vec<String> = (1..=500).map(|n| format!("{n:03}_msg.xml")).collect();
    assert_eq!(
        invoked, expected,
        "invocation order is alphabetical by file name"
    );
    assert_eq!(max_concurrency(&events), 1);
    assert_eq!(responses(dir.path()), 500);
}

/// The four services of an occurrence run at once, as stages: inbound
/// processing answers the first requests while gateway receive is still
/// reading later files, and send ends last — while a sequential port still
/// sees its messages one at a time in file-name order.
#[test]
fn the_services_of_an_occurrence_run_at_once_and_keep_the_order() {
    let (dir, config) = setup("parallel = false\nreceive_batch = 10", 2);
    let n = 600;
    for i in 0..n {
        message(dir.path(), &format!("{i:04}.xml"), i, None, 0);
    }
    let (events, ended) = run_logged(&config, true);
    let receive_end = ended["gateway-receive"];
    let invoked: Vec<&Event> = events.iter().filter(|e| e.invoke).collect();
    assert!(
        invoked[0].micros < receive_end,
        "inbound processing began only after gateway receive had ended"
    );
    let during = invoked.iter().filter(|e| e.micros < receive_end).count();
    println!("{during} of {n} invoked while gateway receive ran");
    assert!(ended["gateway-send"] >= ended["inbound-processing"]);
    assert!(ended["inbound-processing"] >= receive_end);
    let files: Vec<String> = invoked.iter().map(|e| e.file.clone()).collect();
    let expected: Vec<String> = (0..n).map(|i| format!("{i:04}.xml")).collect();
    assert_eq!(files, expected, "invocation order is file-name order");
    assert_eq!(max_concurrency(&events), 1);
    assert_eq!(responses(dir.path()), n as usize);
}

#[test]
fn parallel_port_reaches_and_never_exceeds_the_cap() {
    // workers >= cap: simultaneous invocations reach the cap, never more.
    let (dir, config) = setup("parallel = true\nmax_parallel = 3", 6);
    for (i, d) in delays(36, 11, 60).into_iter().enumerate() {
        message(dir.path(), &format!("{i:03}.xml"), i as u32, None, 20 + d);
    }
    let events = run_once(&config);
    assert_eq!(events.len(), 72);
    assert_eq!(max_concurrency(&events), 3);
    assert_eq!(responses(dir.path()), 36);

    // cap > workers: the workers bound the concurrent calls, all are used.
    let (dir, config) = setup("parallel = true\nmax_parallel = 50", 3);
    for (i, d) in delays(36, 13, 60).into_iter().enumerate() {
        message(dir.path(), &format!("{i:03}.xml"), i as u32, None, 20 + d);
    }
    let events = run_once(&config);
    assert_eq!(max_concurrency(&events), 3);
    assert_eq!(responses(dir.path()), 36);
}

#[test]
fn conversations_run_in_order_one_at_a_time_and_overlap_each_other() {
    let (dir, config) = setup("parallel = true", 4);
    let (conversations, per) = (50u32, 40u32);
    let d = delays((conversations * per) as usize, 17, 4);
    for c in 0..conversations {
        for i in 0..per {
            let n = c * per + i;
            message(
                dir.path(),
                &format!("c{c:02}_{i:03}.xml"),
                n,
                Some(&format!("conv-{c:02}")),
                d[n as usize],
            );
        }
    }
    let events = run_once(&config);
    assert_eq!(events.len(), (conversations * per * 2) as usize);
    let mut by_conv: BTreeMap<String, Vec<&Event>> = BTreeMap::new();
    for e in &events {
        by_conv.entry(e.file[..3].to_string()).or_default().push(e);
    }
    for (conv, evs) in &by_conv {
        // Never two at once: strictly alternating invoke/done.
        for (i, e) in evs.iter().enumerate() {
            assert_eq!(e.invoke, i % 2 == 0, "{conv}: overlapping invocations");
        }
        let files: Vec<&str> = evs
            .iter()
            .filter(|e| e.invoke)
            .map(|e| e.file.as_str())
            .collect();
        let mut sorted = files.clone();
        sorted.sort();
        assert_eq!(files, sorted, "{conv}: invocation order is file-name order");
    }
    assert!(
        max_concurrency(&events) > 1,
        "conversations overlap each other"
    );
    assert_eq!(responses(dir.path()), (conversations * per) as usize);
}

/// One slow conversation holds up only itself: its messages go one at a
/// time to whichever worker is free, and every other conversation runs on
/// the other worker meanwhile — none waits behind it, as it would if
/// conversations were tied to workers (half of them would then start only
/// after the slow one ended). The slow conversation's three messages take
/// 600 ms each; the twelve others a few milliseconds.
#[test]
fn a_slow_conversation_holds_up_only_itself() {
    let (dir, config) = setup("parallel = true", 2);
    for i in 0..3 {
        message(dir.path(), &format!("a-slow-{i}.xml"), i, Some("slow"), 600);
    }
    for c in 0..12 {
        message(
            dir.path(),
            &format!("b-quick-{c:02}.xml"),
            100 + c,
            Some(&format!("quick-{c:02}")),
            0,
        );
    }
    let events = run_once(&config);
    let slow_last_done = events
        .iter()
        .filter(|e| !e.invoke && e.file == "a-slow-2.xml")
        .map(|e| e.micros)
        .next()
        .expect("the slow conversation's last message ran");
    let late: Vec<&str> = events
        .iter()
        .filter(|e| e.invoke && e.file.starts_with("b-quick") && e.micros > slow_last_done)
        .map(|e| e.file.as_str())
        .collect();
    assert!(
        late.is_empty(),
        "these conversations started only after the slow one had ended: {late:?}"
    );
    assert_eq!(responses(dir.path()), 15);
}

/// In library: the configuration `text` of `config_path`, its queue (in
/// `dir`/data) and a gateway over them, for tests that drive inbound
/// processing directly.
fn library_gateway(
    dir: &Path,
    config_path: &Path,
    text: &str,
) -> (
    std::sync::Arc<ferry::config::Config>,
    std::sync::Arc<ferry::queue::RedbQueue>,
    ferry::services::Gateway,
) {
    use std::sync::Arc;

    use ferry::queue::GatewayQueue;

    let config = Arc::new(ferry::config::Config::parse(config_path, text).unwrap());
    let runtime = ferry::runtime::Runtime::new(Default::default()).unwrap();
    let plugins = Arc::new(ferry::plugins::PluginSet::load(&runtime, &config).unwrap());
    let queue = Arc::new(ferry::queue::RedbQueue::open(&dir.join("data")).unwrap());
    let (lease, _) = queue.recover("test").unwrap();
    let gw = ferry::services::Gateway::new(config.clone(), queue.clone(), runtime, plugins, lease);
    (config, queue, gw)
}

/// The inbound messages left in the queue: (name, status).
fn inbound_left(queue: &dyn ferry::queue::GatewayQueue) -> Vec<(String, ferry::queue::Status)> {
    queue
        .list(&ferry::queue::Filter::default())
        .unwrap()
        .into_iter()
        .filter(|m| m.direction == ferry::queue::Direction::Inbound)
        .map(|m| (m.name, m.status))
        .collect()
}

/// A Ready inbound message of port `in` named `name`, with MessageId `n`.
fn queued(name: &str, n: u32, content: String) -> ferry::queue::NewMessage {
    ferry::queue::NewMessage {
        direction: ferry::queue::Direction::Inbound,
        port: "in".into(),
        status: ferry::queue::Status::Ready,
        name: name.into(),
        position: 0,
        message_id: format!("{{00000000-0000-4000-8000-{n:012}}}"),
        action: ACTION.into(),
        conversation_id: None,
        batch_id: None,
        request_message_id: None,
        content,
        error: None,
    }
}

/// The envelope of message `n` with `parts` in its body.
fn envelope_of(n: u32, parts: &str) -> String {
    format!(
        "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{{00000000-0000-4000-8000-{n:012}}}</MessageId><Action>{ACTION}</Action></Header>\
         <Body><MessageParts>{parts}</MessageParts></Body></Envelope>"
    )
}

/// A message that reaches the queue after an occurrence's inbound
/// processing started waits for the next occurrence, even when its file name
/// sorts first.
#[test]
fn a_message_received_mid_occurrence_waits_for_the_next_one() {
    use std::cell::Cell;

    use ferry::queue::{Direction, Filter, GatewayQueue, Status, Transaction};
    use ferry::services::{Sandboxes, inbound};

    let (dir, config_path) = setup("parallel = false", 1);
    let text = std::fs::read_to_string(&config_path)
        .unwrap()
        .replace("workers = 1", "workers = 1\ngroup_commit = 1");
    let (config, queue, gw) = library_gateway(dir.path(), &config_path, &text);
    let entry = |name: &str, n: u32| queued(name, n, envelope_of(n, "<Probe/>"));
    let mut tx = Transaction::new();
    for n in 1..=3 {
        tx.insert(entry(&format!("{n:03}.xml"), n));
    }
    queue.commit(tx).unwrap();

    // After the first message is committed, a new one arrives.
    let arrived = Cell::new(false);
    let stop = || {
        if !arrived.get() {
            arrived.set(true);
            let mut tx = Transaction::new();
            tx.insert(entry("000_late.xml", 99));
            queue.commit(tx).unwrap();
        }
        false
    };
    let port = &config.ports["in"];
    let counts = inbound::run(&gw, port, &mut Sandboxes::new(), &stop).unwrap();
    assert_eq!(
        counts.done, 3,
        "the three messages queued before the occurrence"
    );
    let left = queue.list(&Filter::default()).unwrap();
    let inbound_left: Vec<_> = left
        .iter()
        .filter(|m| m.direction == Direction::Inbound)
        .map(|m| (m.name.as_str(), m.status))
        .collect();
    assert_eq!(inbound_left, vec![("000_late.xml", Status::Ready)]);

    // The next occurrence takes it.
    let counts = inbound::run(&gw, port, &mut Sandboxes::new(), &|| false).unwrap();
    assert_eq!(counts.done, 1);
}

/// On a port with a pipeline, inbound processing reads a message's envelope
/// once, after the rules: from what they returned, or from the queued
/// content when they left it alone. Content that is not an envelope still
/// fails in the parse stage with its reason, and a duplicate still gets its
/// fault (its envelope read for that), while the other messages of the
/// same batch are answered.
#[test]
fn a_pipeline_port_reads_each_envelope_once_and_still_refuses_what_is_not_one() {
    use ferry::queue::{Direction, ExceptionFilter, Filter, GatewayQueue, Status, Transaction};
    use ferry::services::{Sandboxes, inbound};

    let (dir, config_path) = setup(
        "parallel = false\npipeline = [\"pass\"]\n\n[rules.pass]\ncomponent = \"test-pass\"",
        1,
    );
    let text = std::fs::read_to_string(&config_path).unwrap();
    let (config, queue, gw) = library_gateway(dir.path(), &config_path, &text);
    let envelope = |n: u32| envelope_of(n, &format!("<Probe><File>{n}</File></Probe>"));
    let mut tx = Transaction::new();
    tx.insert(queued("1.xml", 1, envelope(1)));
    tx.insert(queued("2.xml", 2, "this is no envelope".into()));
    tx.insert(queued("3.xml", 1, envelope(1)));
    tx.insert(queued("4.xml", 4, envelope(4)));
    queue.commit(tx).unwrap();

    let port = &config.ports["in"];
    let counts = inbound::run(&gw, port, &mut Sandboxes::new(), &|| false).unwrap();
    assert_eq!((counts.done, counts.failed), (2, 2));
    let left = inbound_left(&*queue);
    assert_eq!(left, [("2.xml".to_string(), Status::Error)]);
    let exceptions = queue.exceptions(&ExceptionFilter::default()).unwrap();
    let seen: Vec<(&str, bool)> = exceptions
        .iter()
        .map(|e| {
            (
                e.stage.as_str(),
                e.text.contains("not a valid envelope") || e.text.contains("Duplicate"),
            )
        })
        .collect();
    assert_eq!(seen.len(), 2, "{exceptions:#?}");
    assert!(seen.contains(&("parse", true)), "{exceptions:#?}");
    assert!(seen.contains(&("duplicate", true)), "{exceptions:#?}");
    // The two answers went out, one each.
    let outgoing = queue
        .list(&Filter::default())
        .unwrap()
        .into_iter()
        .filter(|m| m.direction != Direction::Inbound)
        .count();
    assert_eq!(outgoing, 3, "two responses and the duplicate's fault");
}

/// On a port without rules, gateway receive reads each envelope and
/// inbound processing does not check its body a second time — unless the
/// queued text changed since: an operator's edit that broke the body is
/// read in full and fails in the parse stage with the reader's reason,
/// while the unchanged message of the same occurrence is answered.
#[test]
fn an_envelope_edited_after_receive_is_read_in_full_again() {
    use ferry::queue::{ExceptionFilter, Filter, GatewayQueue, Status, Transaction};
    use ferry::services::{Sandboxes, inbound, receive};

    let (dir, config_path) = setup("parallel = false", 1);
    let text = std::fs::read_to_string(&config_path).unwrap();
    let (config, queue, gw) = library_gateway(dir.path(), &config_path, &text);
    message(dir.path(), "001.xml", 1, None, 0);
    message(dir.path(), "002.xml", 2, None, 0);
    let port = &config.ports["in"];
    let counts = receive::run(&gw, port, &mut Sandboxes::new(), &|| false).unwrap();
    assert_eq!(counts.done, 2);
    let queued = queue.list(&Filter::default()).unwrap();
    let edited = queued.iter().find(|m| m.name == "002.xml").unwrap();
    // Still shaped as the writer writes an envelope; the body no longer
    // well-formed.
    let broken = edited.content.replace("</File>", "</Fiel>");
    assert_ne!(broken, edited.content);
    let mut tx = Transaction::new();
    tx.set_content(edited.key, broken);
    queue.commit(tx).unwrap();

    let counts = inbound::run(&gw, port, &mut Sandboxes::new(), &|| false).unwrap();
    assert_eq!((counts.done, counts.failed), (1, 1));
    let left = inbound_left(&*queue);
    assert_eq!(left, [("002.xml".to_string(), Status::Error)]);
    let exceptions = queue.exceptions(&ExceptionFilter::default()).unwrap();
    assert_eq!(exceptions.len(), 1, "{exceptions:#?}");
    assert_eq!(exceptions[0].stage, "parse");
    assert!(
        exceptions[0].text.contains("not a valid envelope")
            && exceptions[0].text.contains("</Fiel>"),
        "{exceptions:#?}"
    );
}
