//! Crash safety of `ferry run`: the host is killed with SIGKILL at
//! pseudo-random moments while it processes 2,000 AIF sales orders (some in
//! batch files, some dropped into the inbox while it runs), restarted each
//! time, and finally run to completion with `ferry run --once`.
//!
//! Whatever moment a kill lands on — between a receive commit and the
//! adapter's commit (receipts absorb the redelivery), in the middle of a
//! group of inbound or outbound processing (recovery puts the group back to
//! Ready), between the file adapter's send commit and the queue's (the
//! response file is rewritten under the same MessageId name) — every request
//! must end with exactly one response (by `RequestMessageId`), exactly one
//! forwarded copy, no fault, an empty inbox, an empty queue and an empty
//! exception log.
//!
//! The delays come from a fixed seed, so only the timing of the machine
//! decides where the kills land; the assertions do not depend on it.
//!
//! On failure the temporary directory (printed at the start) is kept, with
//! the log of every run under `logs/`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use ferry::queue::{ExceptionFilter, GatewayQueue, RedbQueue};

/// Requests in total.
const MESSAGES: usize = 2000;
/// The requests are written in this many waves: the first before the first
/// start, then alternately one just before a start (so the run begins with
/// a long receive) and one while a `ferry run` is running.
const WAVES: usize = 5;
/// Batch files per wave (so 20 in all).
const BATCH_FILES_PER_WAVE: usize = 4;
/// Members of each batch file.
const BATCH_SIZE: usize = 5;
/// SIGKILLs (at least 20).
const KILLS: usize = 48;
/// Shortest and longest time a `ferry run` lives before it is killed.
const MIN_DELAY_MS: u64 = 30;
const MAX_DELAY_MS: u64 = 400;
/// The seed of the delays.
const SEED: u64 = 0x5EED_C0FF_EE15_2026;
/// Most `ferry run --once` rounds for the final, clean run.
const MAX_CLEAN_RUNS: usize = 20;
/// Messages per queue transaction.
const GROUP_COMMIT: usize = 25;
/// Files per receive transaction: small, so that many kills can land
/// between a receive's queue commit and the adapter's commit.
const RECEIVE_BATCH: usize = 20;

const ACTION: &str =
    "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create";
const MESSAGE_NS: &str = "http://schemas.microsoft.com/dynamics/2011/01/documents/Message";
const BATCH_NS: &str = "http://schemas.microsoft.com/dynamics/2009/06/documents/Batch";
const SALES_ORDER_NS: &str = "http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder";

/// xorshift64*: small, fixed, good enough for delays.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform enough in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// The MessageId of request `n` (1-based).
fn message_id(n: usize) -> String {
    format!("{{00000000-0000-4000-8000-{n:012}}}")
}

/// The (unique) purchase order number of request `n`.
fn po_number(n: usize) -> String {
    format!("PO-CRASH-{n:04}")
}

/// The partner item of request `n` and the internal id the port's
/// `value-map` pipeline rule turns it into.
fn item(n: usize) -> (&'static str, &'static str) {
    if n % 2 == 1 {
        ("PARTNER-CHAIR", "1000")
    } else {
        ("PARTNER-DESK", "1001")
    }
}

/// The envelope of request `n` (no XML declaration).
fn envelope(n: usize) -> String {
    let (partner_item, _) = item(n);
    format!(
        r#"<Envelope xmlns="{MESSAGE_NS}">
  <Header>
    <MessageId>{id}</MessageId>
    <Company>ceu</Company>
    <Action>{ACTION}</Action>
  </Header>
  <Body><MessageParts><SalesOrder xmlns="{SALES_ORDER_NS}"><SalesTable class="entity"><CustAccount>1101</CustAccount><PurchOrderFormNum>{po}</PurchOrderFormNum><ReceiptDateRequested>2026-12-01</ReceiptDateRequested><SalesLine class="entity"><ItemId>{partner_item}</ItemId><SalesQty>{qty}</SalesQty><SalesUnit>ea</SalesUnit></SalesLine></SalesTable></SalesOrder></MessageParts></Body>
</Envelope>"#,
        id = message_id(n),
        po = po_number(n),
        qty = n % 17 + 1,
    )
}

const XML_DECL: &str = r#"<?xml version="1.0" encoding="utf-8"?>"#;

/// Write `content` to `dir/name` the way a partner should: written in the
/// staging folder `dir/../staging` (same file system) and renamed into
/// place, so `ferry run` never reads a half-written file.
///
/// (Not a dot-file in `dir` itself, although the file adapter skips those:
/// a dot-file renamed away while the adapter lists the folder makes the
/// listing fail — see the report of this test.)
fn drop_file(dir: &Path, name: &str, content: &str) {
    let temp = dir.parent().unwrap().join("staging").join(name);
    fs::write(&temp, content).unwrap();
    fs::rename(&temp, dir.join(name)).unwrap();
}

/// Write wave `wave` of the requests into `inbox`: the ids
/// `wave * per_wave + 1 ..= (wave + 1) * per_wave`, `BATCH_FILES_PER_WAVE`
/// batch files of `BATCH_SIZE` members spread over the wave, the rest single
/// files. File names sort in MessageId order. Returns the files written.
fn write_wave(inbox: &Path, wave: usize) -> usize {
    let per_wave = MESSAGES / WAVES;
    let first = wave * per_wave + 1;
    let stride = per_wave / BATCH_FILES_PER_WAVE;
    let mut files = 0;
    let mut n = first;
    while n < first + per_wave {
        let offset = n - first;
        if offset.is_multiple_of(stride) && offset / stride < BATCH_FILES_PER_WAVE {
            let batch = wave * BATCH_FILES_PER_WAVE + offset / stride + 1;
            let mut xml = format!(
                r#"{XML_DECL}<Batch xmlns="{BATCH_NS}" BatchId="{{7A1B2C3D-0000-4000-8000-{batch:012}}}" ConversationId="crash-batch-{batch}">"#
            );
            for m in n..n + BATCH_SIZE {
                xml.push_str(&envelope(m));
            }
            xml.push_str("</Batch>");
            drop_file(inbox, &format!("w{wave}-{n:04}-batch.xml"), &xml);
            n += BATCH_SIZE;
        } else {
            drop_file(
                inbox,
                &format!("w{wave}-{n:04}.xml"),
                &format!("{XML_DECL}\n{}", envelope(n)),
            );
            n += 1;
        }
        files += 1;
    }
    files
}

/// The visible and the hidden (dot) file names of `dir`, sorted.
fn listing(dir: &Path) -> (Vec<String>, Vec<String>) {
    let mut visible = Vec::new();
    let mut hidden = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with('.') {
            hidden.push(name);
        } else {
            visible.push(name);
        }
    }
    visible.sort();
    hidden.sort();
    (visible, hidden)
}

/// The text of the first `<tag>…</tag>` in `xml`.
fn element_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = xml.find(&open)? + open.len();
    let end = start + xml[start..].find(&close)?;
    Some(&xml[start..end])
}

/// The number in the last line of `ferry queue list` / `ferry exceptions
/// list` ("N message(s)", "N exception(s)").
fn listed(out: &Output) -> usize {
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "ferry failed: {}\n{stdout}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let last = stdout.lines().last().unwrap_or_default();
    last.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("unexpected listing:\n{stdout}"))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The part both crash tests' configurations share: data and plugin
/// folders, the group commit, the file adapter, the ItemId rule and the
/// sales-order service that forwards a copy to `order-copies`.
fn config_head(group_commit: usize) -> String {
    format!(
        r#"data_dir = "data"
plugin_dir = "{plugins}"
group_commit = {group_commit}

[adapters.file]
component = "file-adapter"

[rules.item-ids]
component = "value-map"
options = {{ elements = "ItemId", map = {{ "PARTNER-CHAIR" = "1000", "PARTNER-DESK" = "1001" }} }}

[services.sales-orders]
component = "sales-order-service"
options = {{ forward_port = "order-copies" }}
"#,
        plugins = ferry_tests::plugins_dir().display()
    )
}

/// What one killed run looked like.
struct Run {
    delay_ms: u64,
    /// A wave of requests was written "before" its start or "while" it ran.
    wave: &'static str,
    /// The task it was in when killed, from its log.
    phase: &'static str,
    lived_ms: u128,
    /// It got past opening the queue, recovery and loading the plugins.
    started: bool,
    /// Work was left when it was killed (inbox not empty, or fewer
    /// responses or copies than requests written so far).
    work_left: bool,
    /// At its start it found messages left in flight by the run before.
    recovered_in_flight: bool,
    /// Sources it received again that were already queued before (receipts).
    redelivered: usize,
    /// Staged (not yet committed) files of the file adapter's send at the kill.
    staged_files: usize,
    inbox: usize,
    responses: usize,
    copies: usize,
}

#[test]
fn sigkill_at_random_moments_loses_and_duplicates_nothing() {
    let t0 = Instant::now();
    let mut temp = tempfile::Builder::new()
        .prefix("ferry-crash-")
        .tempdir()
        .unwrap();
    // Kept unless the test gets to its end.
    temp.disable_cleanup(true);
    let root = temp.path().to_path_buf();
    println!("crash test directory: {}", root.display());
    let inbox = root.join("inbox");
    let outbox = root.join("outbox");
    let copies = root.join("copies");
    let logs = root.join("logs");
    for d in [&inbox, &outbox, &copies, &logs, &root.join("staging")] {
        fs::create_dir_all(d).unwrap();
    }
    // Two configurations of the same host (same data directory, ports and
    // plugins), used by turns: the default job sends the ports in name order
    // (order-copies, then orders-in), the other sends only the responses.
    // Otherwise the copies alone would keep every killed run's send task
    // busy, and no kill would land in the sending of a response.
    let config = root.join("ferry.toml");
    let config_responses = root.join("ferry-responses-only.toml");
    let common = format!(
        r#"{head}
[ports.orders-in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
receive_batch = {RECEIVE_BATCH}
pipeline = ["item-ids"]
services = [{{ action = "*/SalesOrderService/*", service = "sales-orders" }}]

[ports.order-copies]
direction = "outbound"
adapter = "file"
address = "copies"

[jobs.aif]
every = "100ms"
"#,
        head = config_head(GROUP_COMMIT)
    );
    fs::write(&config, &common).unwrap();
    fs::write(
        &config_responses,
        format!(
            r#"{common}tasks = [
  {{ service = "gateway-receive" }},
  {{ service = "inbound-processing" }},
  {{ service = "outbound-processing" }},
  {{ service = "gateway-send", ports = ["orders-in"] }},
]
"#
        ),
    )
    .unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let config_responses_arg = config_responses.to_str().unwrap().to_string();
    let bin = ferry_tests::ferry_bin();

    // Validate the configuration and fill the compile cache, so the kills
    // land on message processing rather than on compiling the plugins.
    for c in [&config_arg, &config_responses_arg] {
        let check = ferry_tests::ferry(&["check", "--config", c]);
        assert!(check.status.success(), "ferry check {c}:\n{}", text(&check));
    }
    let setup = t0.elapsed();

    let mut written = 0;
    let mut files = write_wave(&inbox, 0);
    written += MESSAGES / WAVES;
    let wave_at: Vec<usize> = (1..WAVES).map(|w| w * KILLS / WAVES).collect();
    let tasks = [
        "gateway-receive",
        "inbound-processing",
        "outbound-processing",
        "gateway-send",
    ];

    let mut rng = Rng(SEED);
    let mut runs: Vec<Run> = Vec::new();
    let loop_start = Instant::now();
    for i in 0..KILLS {
        let delay_ms = rng.between(MIN_DELAY_MS, MAX_DELAY_MS);
        let log = logs.join(format!("run-{i:02}.log"));
        let wave = wave_at.iter().position(|&k| k == i).map(|w| w + 1);
        let mut wave_when = "";
        if let Some(w) = wave.filter(|w| w % 2 == 1) {
            // Requests waiting at the start.
            files += write_wave(&inbox, w);
            written += MESSAGES / WAVES;
            wave_when = "before";
        }
        let spawned = Instant::now();
        let mut child = Command::new(&bin)
            .args([
                "run",
                "--config",
                if i % 2 == 0 {
                    &config_arg
                } else {
                    &config_responses_arg
                },
                "--log-level",
                "info,ferry::scheduler=debug",
            ])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start ferry run");
        if let Some(w) = wave.filter(|w| w % 2 == 0) {
            // More requests arrive while ferry is running.
            files += write_wave(&inbox, w);
            written += MESSAGES / WAVES;
            wave_when = "while";
        }
        let deadline = spawned + Duration::from_millis(delay_ms);
        if let Some(left) = deadline.checked_duration_since(Instant::now()) {
            sleep(left);
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!(
                "ferry run {i} exited by itself ({status}) before the kill:\n{}",
                fs::read_to_string(&log).unwrap_or_default()
            );
        }
        child.kill().unwrap(); // SIGKILL
        let lived_ms = spawned.elapsed().as_millis();
        let status = child.wait().unwrap();
        assert_eq!(
            status.signal(),
            Some(9),
            "ferry run {i} was not ended by the SIGKILL: {status}"
        );

        let log_text = fs::read_to_string(&log).unwrap_or_default();
        let (in_files, _) = listing(&inbox);
        let (responses, out_hidden) = listing(&outbox);
        let (copied, copies_hidden) = listing(&copies);
        let started = log_text.contains("ferry is running");
        let work_left = !in_files.is_empty() || responses.len() < written || copied.len() < written;
        // The task after the last one that ended (tasks run in AIF's order).
        let phase = match log_text
            .lines()
            .rfind(|l| l.contains("task ended"))
            .and_then(|l| tasks.iter().position(|t| l.contains(t)))
        {
            _ if !started => "startup",
            _ if !work_left => "idle",
            None => tasks[0],
            Some(t) => tasks[(t + 1) % tasks.len()],
        };
        let run = Run {
            delay_ms,
            wave: wave_when,
            phase,
            lived_ms,
            started,
            work_left,
            recovered_in_flight: log_text.contains("left in flight by the previous run"),
            redelivered: log_text.matches("already queued before a restart").count(),
            staged_files: out_hidden.len() + copies_hidden.len(),
            inbox: in_files.len(),
            responses: responses.len(),
            copies: copied.len(),
        };
        assert!(
            run.responses <= written && run.copies <= written,
            "after kill {i}: {} responses and {} copies for {written} requests",
            run.responses,
            run.copies
        );
        runs.push(run);
    }
    let kill_phase = loop_start.elapsed();
    assert_eq!(written, MESSAGES);

    // The final, clean run: one occurrence at a time until nothing is left.
    let clean_start = Instant::now();
    let mut clean_runs = 0;
    let mut clean_failures = Vec::new();
    loop {
        assert!(
            clean_runs < MAX_CLEAN_RUNS,
            "work still left after {MAX_CLEAN_RUNS} `ferry run --once`"
        );
        clean_runs += 1;
        let out = ferry_tests::ferry(&["run", "--once", "--config", &config_arg]);
        if !out.status.success() {
            clean_failures.push(format!(
                "round {clean_runs}: {}\n{}",
                out.status,
                text(&out)
            ));
        }
        let busy: usize = ["ready", "in-process", "in-transport-process"]
            .iter()
            .map(|status| {
                listed(&ferry_tests::ferry(&[
                    "queue",
                    "list",
                    "--config",
                    &config_arg,
                    "--status",
                    status,
                ]))
            })
            .sum();
        if busy == 0 && listing(&inbox).0.is_empty() {
            break;
        }
    }
    let clean_phase = clean_start.elapsed();

    // ---- what is left ----------------------------------------------------
    let (inbox_left, inbox_hidden) = listing(&inbox);
    let (response_files, outbox_hidden) = listing(&outbox);
    let (copy_files, copies_hidden) = listing(&copies);
    let queue_list = ferry_tests::ferry(&["queue", "list", "--config", &config_arg]);
    let queued = listed(&queue_list);
    let exceptions_list = ferry_tests::ferry(&["exceptions", "list", "--config", &config_arg]);
    let exceptions = listed(&exceptions_list);
    let exceptions_text = text(&exceptions_list);
    let duplicate_faults = exceptions_text.matches("DuplicateMessage").count();

    // Responses, by the request they answer.
    let mut answers: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut bad_responses = Vec::new();
    for name in &response_files {
        let xml = fs::read_to_string(outbox.join(name)).unwrap();
        let id = element_text(&xml, "MessageId").unwrap_or_default();
        if *name != format!("{id}.xml") {
            bad_responses.push(format!("{name}: named differently from its MessageId {id}"));
        }
        let Some(request) = element_text(&xml, "RequestMessageId") else {
            bad_responses.push(format!("{name}: no RequestMessageId"));
            continue;
        };
        answers
            .entry(request.to_string())
            .or_default()
            .push(name.clone());
        if xml.contains("Fault") {
            bad_responses.push(format!("{name}: a fault for {request}"));
        }
    }
    let mut missing = Vec::new();
    let mut twice = Vec::new();
    for n in 1..=MESSAGES {
        let id = message_id(n);
        match answers.remove(&id) {
            None => missing.push(id),
            Some(names) => {
                if names.len() > 1 {
                    twice.push(format!("{id}: {names:?}"));
                }
                let xml = fs::read_to_string(outbox.join(&names[0])).unwrap();
                let key = format!("<Value>SO-{}-", po_number(n));
                if !xml.contains(&key) {
                    bad_responses.push(format!("{}: answers {id} without {key}", names[0]));
                }
            }
        }
    }
    let unknown: Vec<String> = answers
        .iter()
        .map(|(id, names)| format!("{id}: {names:?}"))
        .collect();

    // Forwarded copies, by purchase order number.
    let mut copies_of: BTreeMap<String, usize> = BTreeMap::new();
    let mut bad_copies = Vec::new();
    for name in &copy_files {
        let xml = fs::read_to_string(copies.join(name)).unwrap();
        let po = element_text(&xml, "PurchOrderFormNum").unwrap_or_default();
        *copies_of.entry(po.to_string()).or_default() += 1;
        let n: Option<usize> = po.strip_prefix("PO-CRASH-").and_then(|n| n.parse().ok());
        match n {
            Some(n) if (1..=MESSAGES).contains(&n) => {
                if element_text(&xml, "ItemId") != Some(item(n).1) {
                    bad_copies.push(format!("{name}: ItemId not mapped to {}", item(n).1));
                }
            }
            _ => bad_copies.push(format!("{name}: unknown order {po:?}")),
        }
    }
    let copies_missing = (1..=MESSAGES)
        .filter(|&n| !copies_of.contains_key(&po_number(n)))
        .count();
    let copies_twice: Vec<String> = copies_of
        .iter()
        .filter(|&(_, &c)| c > 1)
        .map(|(po, c)| format!("{po} x{c}"))
        .collect();

    // The queue itself (no ferry process is running now).
    let (counts, not_logged, receipts, exception_log) = {
        let queue = RedbQueue::open(&root.join("data")).unwrap();
        let counts = queue.counts().unwrap();
        // The message log may keep the id as sent or in a normalized form
        // (GUID without braces, upper case).
        let not_logged = (1..=MESSAGES)
            .filter(|&n| {
                let id = message_id(n);
                let guid = id.trim_matches(['{', '}']).to_ascii_uppercase();
                !(queue.is_processed(&id).unwrap() || queue.is_processed(&guid).unwrap())
            })
            .count();
        let receipts = queue.state_keys("receipt/").unwrap();
        let exceptions = queue.exceptions(&ExceptionFilter::default()).unwrap();
        (counts, not_logged, receipts, exceptions)
    };

    // ---- summary -----------------------------------------------------------
    let started = runs.iter().filter(|r| r.started).count();
    let mid = runs.iter().filter(|r| r.started && r.work_left).count();
    println!(
        "\n== crash test: {MESSAGES} requests in {files} files ({} batch files of {BATCH_SIZE}), \
         {KILLS} SIGKILLs (delays {MIN_DELAY_MS}-{MAX_DELAY_MS} ms, seed {SEED:#x}), group_commit {GROUP_COMMIT}",
        WAVES * BATCH_FILES_PER_WAVE
    );
    println!(
        "{:>4} {:>6} {:<5} {:>6} {:>6} {:<20} {:>4} {:>9} {:>7} {:>5} {:>9} {:>6} {:>6}",
        "kill",
        "wave",
        "sends",
        "delay",
        "lived",
        "killed in",
        "work",
        "recovered",
        "redeliv",
        "inbox",
        "responses",
        "copies",
        "staged"
    );
    for (i, r) in runs.iter().enumerate() {
        println!(
            "{:>4} {:>6} {:<5} {:>4}ms {:>4}ms {:<20} {:>4} {:>9} {:>7} {:>5} {:>9} {:>6} {:>6}",
            i,
            r.wave,
            if i % 2 == 0 { "all" } else { "resp" },
            r.delay_ms,
            r.lived_ms,
            r.phase,
            if r.work_left { "left" } else { "done" },
            if r.recovered_in_flight {
                "in flight"
            } else {
                "-"
            },
            r.redelivered,
            r.inbox,
            r.responses,
            r.copies,
            r.staged_files
        );
    }
    println!(
        "(killed in: the task running at the kill, from the run's log; work: requests not yet \
         answered or forwarded at the kill; recovered: the run's start put messages left in \
         flight back to Ready; redeliv: sources received again and absorbed by receipts; \
         staged: the file adapter's .tmp send files at the kill)"
    );
    println!(
        "kills: {KILLS}; after startup: {started}; mid-processing (work left at the kill): {mid}; \
         restarts that recovered in-flight messages: {}; sources redelivered and absorbed by receipts: {}",
        runs.iter().filter(|r| r.recovered_in_flight).count(),
        runs.iter().map(|r| r.redelivered).sum::<usize>()
    );
    println!(
        "final clean run: {clean_runs} x `ferry run --once` in {:.1}s{}",
        clean_phase.as_secs_f64(),
        if clean_failures.is_empty() {
            String::new()
        } else {
            format!(" ({} ended in error)", clean_failures.len())
        }
    );
    println!(
        "final: inbox {} (+{} hidden), responses {} (+{} hidden), copies {} (+{} hidden), \
         queued {queued}, exceptions {exceptions} ({duplicate_faults} DuplicateMessage), \
         message log missing {not_logged}, leftover receipts {}",
        inbox_left.len(),
        inbox_hidden.len(),
        response_files.len(),
        outbox_hidden.len(),
        copy_files.len(),
        copies_hidden.len(),
        receipts.len()
    );
    println!(
        "elapsed: {:.1}s (setup {:.1}s, kill loop {:.1}s, clean run {:.1}s)",
        t0.elapsed().as_secs_f64(),
        setup.as_secs_f64(),
        kill_phase.as_secs_f64(),
        clean_phase.as_secs_f64()
    );
    if !receipts.is_empty() {
        println!(
            "NOTE: {} receipt(s) left in the state area after every source was committed \
             (a kill between the adapter's commit and the receipts' deletion): {:?}",
            receipts.len(),
            receipts.iter().map(|(k, _)| k).collect::<Vec<_>>()
        );
    }

    // ---- assertions --------------------------------------------------------
    assert!(started >= 1, "no run got past its start");
    assert!(
        missing.is_empty(),
        "{} request(s) never answered: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    assert!(
        twice.is_empty(),
        "{} request(s) answered more than once: {twice:?}",
        twice.len()
    );
    assert!(
        unknown.is_empty(),
        "responses to unknown requests: {unknown:?}"
    );
    assert!(bad_responses.is_empty(), "bad responses: {bad_responses:?}");
    assert_eq!(response_files.len(), MESSAGES, "response files");
    assert!(
        outbox_hidden.is_empty(),
        "temporary files left in the outbox: {outbox_hidden:?}"
    );
    assert_eq!(copies_missing, 0, "orders never forwarded");
    assert!(
        copies_twice.is_empty(),
        "orders forwarded more than once: {copies_twice:?}"
    );
    assert!(bad_copies.is_empty(), "bad copies: {bad_copies:?}");
    assert_eq!(copy_files.len(), MESSAGES, "copy files");
    assert!(
        copies_hidden.is_empty(),
        "temporary files left in the copies folder: {copies_hidden:?}"
    );
    assert!(
        inbox_left.is_empty() && inbox_hidden.is_empty(),
        "inbox not empty: {inbox_left:?} {inbox_hidden:?}"
    );
    assert_eq!(queued, 0, "queue not empty:\n{}", text(&queue_list));
    assert!(counts.is_empty(), "queue counts not empty: {counts:?}");
    assert_eq!(not_logged, 0, "requests missing from the message log");
    assert_eq!(
        duplicate_faults, 0,
        "a redelivery after a crash was turned into DuplicateMessage:\n{exceptions_text}"
    );
    assert!(
        exception_log.is_empty() && exceptions == 0,
        "exception log not empty:\n{exceptions_text}"
    );
    assert!(
        clean_failures.is_empty(),
        "`ferry run --once` ended in error:\n{}",
        clean_failures.join("\n")
    );

    temp.disable_cleanup(false);
}

/// Every kill point of the host (`ferry::failpoint`): the steps between
/// two writes that must not lose or double a message.
const KILL_POINTS: [&str; 9] = [
    "receive.after-commit",
    "receive.after-adapter-commit",
    "inbound.before-commit",
    "inbound.after-commit",
    "outbound.before-commit",
    "outbound.after-commit",
    "send.after-adapter-write",
    "send.after-adapter-commit",
    "send.after-commit",
];

/// Requests per port and run in the kill-point test: enough for three
/// commits of every stage (receive commits every 9 files there, the others
/// every 7 messages).
const KILL_POINT_MESSAGES: usize = 24;

/// The host killed (SIGKILL) at every kill point, at its first, second and
/// third pass, with fresh work on a parallel port and on a sequential one
/// (both busy at once) before every run: afterwards every request of both
/// ports is answered exactly once, forwarded exactly once, and nothing is
/// left in the inbox, the queue, the exception log or as a temporary file.
#[test]
fn sigkill_at_every_step_between_two_writes_loses_and_duplicates_nothing() {
    let mut temp = tempfile::Builder::new()
        .prefix("ferry-kill-points-")
        .tempdir()
        .unwrap();
    temp.disable_cleanup(true);
    let root = temp.path().to_path_buf();
    println!("kill-point test directory: {}", root.display());
    let ports = [("par", "true"), ("seq", "false")];
    let (outbox, copies) = (root.join("outbox"), root.join("copies"));
    for d in [&outbox, &copies, &root.join("staging")] {
        fs::create_dir_all(d).unwrap();
    }
    let mut config_text = format!(
        r#"{head}
[ports.order-copies]
direction = "outbound"
adapter = "file"
address = "copies"
# A rule, so the copies pass outbound processing (and its kill points).
pipeline = ["item-ids"]

[jobs.aif]
every = "1h"
"#,
        head = config_head(7)
    );
    for (port, parallel) in ports {
        fs::create_dir_all(root.join(port)).unwrap();
        config_text.push_str(&format!(
            r#"
[ports.{port}]
direction = "inbound"
adapter = "file"
address = "{port}"
response_address = "outbox"
receive_batch = 9
parallel = {parallel}
pipeline = ["item-ids"]
services = [{{ action = "*/SalesOrderService/*", service = "sales-orders" }}]
"#
        ));
    }
    let config = root.join("ferry.toml");
    fs::write(&config, config_text).unwrap();
    let config_arg = config.to_str().unwrap().to_string();
    let check = ferry_tests::ferry(&["check", "--config", &config_arg]);
    assert!(check.status.success(), "ferry check:\n{}", text(&check));

    // Before each run, fresh requests on both ports (single files, and one
    // batch file per port), so that every stage has work in every run: the
    // stages of an occurrence run at once, and a run killed at a late point
    // has usually done its earlier stages' work by then.
    let runs: Vec<(&str, usize)> = [1, 3, 2, 1]
        .into_iter()
        .flat_map(|pass| KILL_POINTS.iter().map(move |&p| (p, pass)))
        .collect();
    let write = |run: usize| {
        for (p, (port, _)) in ports.iter().enumerate() {
            let dir = root.join(port);
            let first = (run * ports.len() + p) * KILL_POINT_MESSAGES + 1;
            let part: Vec<usize> = (first..first + KILL_POINT_MESSAGES).collect();
            let (batch, singles) = part.split_at(4);
            let mut xml = format!(
                r#"{XML_DECL}<Batch xmlns="{BATCH_NS}" BatchId="{{7A1B2C3D-0000-4000-8000-{:012}}}">"#,
                batch[0]
            );
            for &n in batch {
                xml.push_str(&envelope(n));
            }
            xml.push_str("</Batch>");
            drop_file(&dir, &format!("{:04}-batch.xml", batch[0]), &xml);
            for &n in singles {
                drop_file(
                    &dir,
                    &format!("{n:04}.xml"),
                    &format!("{XML_DECL}\n{}", envelope(n)),
                );
            }
        }
    };

    // One run killed at each point in turn (the points in the order a
    // message passes them), at the passes given.
    let mut kills = 0;
    let mut not_reached = Vec::new();
    for (run, (point, pass)) in runs.iter().enumerate() {
        write(run);
        let at = format!("{point}:{pass}");
        let out = Command::new(ferry_tests::ferry_bin())
            .args(["run", "--once", "--config", &config_arg])
            .env("NO_COLOR", "1")
            .env(ferry::failpoint::KILL_AT, &at)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        match out.status.signal() {
            Some(9) => kills += 1,
            _ if out.status.success() => not_reached.push(at),
            _ => panic!("ferry run with {at} failed:\n{}", text(&out)),
        }
    }
    println!("{kills} kills; kill points not reached: {not_reached:?}");
    assert!(
        kills >= 20,
        "only {kills} kills landed; not reached: {not_reached:?}"
    );
    for point in KILL_POINTS {
        assert!(
            !not_reached
                .iter()
                .any(|p| p.starts_with(&format!("{point}:1"))),
            "kill point {point} was never reached: {not_reached:?}"
        );
    }

    // Clean runs until nothing is left.
    for round in 0.. {
        assert!(round < 10, "work still left after 10 clean runs");
        let out = ferry_tests::ferry(&["run", "--once", "--config", &config_arg]);
        assert!(out.status.success(), "clean run {round}:\n{}", text(&out));
        let queue = ferry_tests::ferry(&["queue", "list", "--config", &config_arg]);
        if listed(&queue) == 0
            && ports
                .iter()
                .all(|(p, _)| listing(&root.join(p)).0.is_empty())
        {
            break;
        }
    }

    // Exactly once, nothing left behind.
    let mut answers: BTreeMap<String, usize> = BTreeMap::new();
    let (responses, outbox_hidden) = listing(&outbox);
    for name in &responses {
        let xml = fs::read_to_string(outbox.join(name)).unwrap();
        assert!(!xml.contains("Fault"), "{name} is a fault:\n{xml}");
        let request = element_text(&xml, "RequestMessageId").unwrap_or_default();
        *answers.entry(request.to_string()).or_default() += 1;
    }
    let (copy_files, copies_hidden) = listing(&copies);
    let mut copied: BTreeMap<String, usize> = BTreeMap::new();
    for name in &copy_files {
        let xml = fs::read_to_string(copies.join(name)).unwrap();
        let po = element_text(&xml, "PurchOrderFormNum").unwrap_or_default();
        *copied.entry(po.to_string()).or_default() += 1;
    }
    let all = 1..=runs.len() * ports.len() * KILL_POINT_MESSAGES;
    let wrong_answers: Vec<String> = all
        .clone()
        .filter(|&n| answers.get(&message_id(n)) != Some(&1))
        .map(|n| format!("{}: {:?}", message_id(n), answers.get(&message_id(n))))
        .collect();
    let wrong_copies: Vec<String> = all
        .clone()
        .filter(|&n| copied.get(&po_number(n)) != Some(&1))
        .map(|n| format!("{}: {:?}", po_number(n), copied.get(&po_number(n))))
        .collect();
    assert!(
        wrong_answers.is_empty(),
        "responses not exactly once: {wrong_answers:?}"
    );
    assert!(
        wrong_copies.is_empty(),
        "copies not exactly once: {wrong_copies:?}"
    );
    assert_eq!(
        responses.len(),
        all.clone().count(),
        "responses nobody asked for"
    );
    assert_eq!(copy_files.len(), all.count(), "copies nobody asked for");
    assert!(
        outbox_hidden.is_empty() && copies_hidden.is_empty(),
        "temporary files left: {outbox_hidden:?} {copies_hidden:?}"
    );
    let exceptions = ferry_tests::ferry(&["exceptions", "list", "--config", &config_arg]);
    assert_eq!(listed(&exceptions), 0, "{}", text(&exceptions));
    let queue = RedbQueue::open(&root.join("data")).unwrap();
    assert!(queue.counts().unwrap().is_empty());
    assert!(
        queue
            .exceptions(&ExceptionFilter::default())
            .unwrap()
            .is_empty()
    );
    drop(queue);
    temp.disable_cleanup(false);
}
