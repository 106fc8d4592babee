//! Several `ferry run` hosts on one PostgreSQL gateway queue, through the
//! real binary: they share the work of one inbox, every request is answered
//! once, each conversation's messages run one at a time in file-name order
//! whichever host runs them, and a sequential port keeps its order across
//! hosts. A host killed with SIGKILL loses nothing: its lease expires, the
//! others take its unfinished work.
//!
//! The `test-probe` service logs `event=invoke` / `event=done` with the
//! file name; the hosts' JSON logs (one clock: one machine) give the order.
//! Needs PostgreSQL: `FERRY_TEST_POSTGRES_URL` or 127.0.0.1:5432 (the README's
//! test command finds or starts one).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use ferry_tests::{ferry_bin, plugins_dir, record_field, record_micros};

const ACTION: &str = "urn:test/ProbeService/run";
const DEADLINE: Duration = Duration::from_secs(180);

fn pg_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// A schema of its own for the test, dropped at the end.
struct Schema(String);

impl Schema {
    fn new() -> Schema {
        static N: AtomicU32 = AtomicU32::new(0);
        Schema(format!(
            "ferry_e2e_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ))
    }

    fn client(&self) -> postgres::Client {
        postgres::Client::connect(&pg_url(), postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "these tests need PostgreSQL (FERRY_TEST_POSTGRES_URL, or 127.0.0.1:5432; \
                 scripts/test starts one): {e}"
            )
        })
    }

    fn count(&self, sql: &str) -> i64 {
        let sql = sql.replace("SCHEMA", &self.0);
        self.client().query_one(&sql, &[]).unwrap().get(0)
    }

    /// Waits (up to `within`) for the queue to empty, then checks that
    /// every order was answered once: nothing left, each `MessageId` in the
    /// message log once (a second commit of a request or a response would
    /// have been refused and redone, not logged twice), one response per
    /// order.
    fn assert_each_answered_once(&self, root: &Path, files: &BTreeSet<String>, within: Duration) {
        let until = Instant::now() + within;
        while self.count("SELECT count(*) FROM SCHEMA.messages") > 0 && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        assert_eq!(self.count("SELECT count(*) FROM SCHEMA.messages"), 0);
        assert_eq!(
            self.count("SELECT count(*) FROM SCHEMA.message_log"),
            files.len() as i64
        );
        assert_eq!(responses(root), files.len());
    }

    /// `count`, or 0 while the hosts have not created the schema yet.
    fn count_once_created(&self, sql: &str) -> i64 {
        let sql = sql.replace("SCHEMA", &self.0);
        self.client().query_one(&sql, &[]).map_or(0, |r| r.get(0))
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&pg_url(), postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.0));
        }
    }
}

/// The hosts' lease where a test kills, stops or cuts off a host (or the
/// database): the others take its work over soon.
const SHORT_LEASE: &str = "2s";

/// The hosts' lease where a test checks that each order runs exactly once:
/// long enough never to run out while a host works on a machine slowed by
/// other tests (a lost lease rightly runs the host's unfinished work again).
const LEASE: &str = "20s";

/// Hosts `names` on `schema` with `lease`, not started.
fn hosts(root: &Path, schema: &Schema, names: &[&str], lease: &str) -> Vec<Host> {
    names
        .iter()
        .map(|h| Host::new(h, host_config(root, schema, h, lease)))
        .collect()
}

/// One host's configuration: its own data directory, the shared queue
/// (with `lease`), the shared folders.
fn host_config(root: &Path, schema: &Schema, host: &str, lease: &str) -> PathBuf {
    let dir = root.join(host);
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
plugin_dir = "{plugins}"
workers = 2
group_commit = 4

[queue]
backend = "postgres"
url = "{url}"
schema = "{schema}"
host_id = "{host}"
lease = "{lease}"

[console]
listen = ""

[adapters.file]
component = "file-adapter"

[services.probe]
component = "test-probe"

[ports.in]
direction = "inbound"
adapter = "file"
address = "{root}/inbox"
response_address = "{root}/outbox"
services = [{{ action = "*", service = "probe" }}]
parallel = true
logging = "off"
log_rate = 1000000

[ports.seq]
direction = "inbound"
adapter = "file"
address = "{root}/inbox-seq"
response_address = "{root}/outbox"
services = [{{ action = "*", service = "probe" }}]
parallel = false
logging = "off"
log_rate = 1000000

[jobs.all]
every = "1s"
"#,
            plugins = plugins_dir().display(),
            url = pg_url(),
            schema = schema.0,
            root = root.display(),
            lease = lease,
        ),
    )
    .unwrap();
    config
}

struct Host {
    name: String,
    config: PathBuf,
    child: Option<Child>,
    logs: Vec<PathBuf>,
}

impl Host {
    fn new(name: &str, config: PathBuf) -> Host {
        Host {
            name: name.to_string(),
            config,
            child: None,
            logs: Vec::new(),
        }
    }

    fn start(&mut self) {
        let log = self
            .config
            .with_file_name(format!("ferry-{}.log", self.logs.len()));
        let child = Command::new(ferry_bin())
            .args(["run", "--log-format", "json", "--log-level"])
            .arg("warn,ferry::plugin=info,ferry::commands=info")
            .arg("--config")
            .arg(&self.config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("cannot start ferry run");
        self.logs.push(log);
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    fn log(&self) -> String {
        self.logs
            .iter()
            .map(|l| std::fs::read_to_string(l).unwrap_or_default())
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn assert_running(&mut self) {
        if let Some(c) = self.child.as_mut()
            && let Some(status) = c.try_wait().unwrap()
        {
            panic!("host {} exited ({status}):\n{}", self.name, self.log());
        }
    }
}

impl Drop for Host {
    fn drop(&mut self) {
        self.kill();
    }
}

fn message(dir: &Path, file: &str, n: u32, conversation: Option<&str>, delay_ms: u32) {
    let conv = conversation
        .map(|c| format!("<ConversationId>{c}</ConversationId>"))
        .unwrap_or_default();
    let xml = format!(
        "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{{00000000-0000-4000-8000-{n:012}}}</MessageId><Action>{ACTION}</Action>{conv}</Header>\
         <Body><MessageParts><Probe><File>{file}</File><DelayMs>{delay_ms}</DelayMs></Probe></MessageParts></Body></Envelope>"
    );
    std::fs::create_dir_all(dir).unwrap();
    let tmp = dir.join(format!(".{file}.tmp"));
    std::fs::write(&tmp, xml).unwrap();
    std::fs::rename(tmp, dir.join(file)).unwrap();
}

/// Every line the hosts logged, with the host run that logged it
/// (`name#n`, its n-th start) and the line as JSON when it is JSON.
fn log_lines(hosts: &[Host], mut each: impl FnMut(&str, &str, Option<&serde_json::Value>)) {
    for h in hosts {
        for (n, log) in h.logs.iter().enumerate() {
            let run = format!("{}#{n}", h.name);
            for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
                let v = serde_json::from_str::<serde_json::Value>(line).ok();
                each(&run, line, v.as_ref());
            }
        }
    }
}

/// Every warning and error the hosts logged (for failures: a lost lease, a
/// commit the database refused, a task that failed), and any line that is
/// not JSON, a line each.
fn warnings(hosts: &[Host]) -> String {
    let mut out = Vec::new();
    log_lines(hosts, |run, line, v| {
        if v.is_none_or(|v| matches!(v["level"].as_str(), Some("WARN" | "ERROR"))) {
            out.push(format!("  {run}: {line}"));
        }
    });
    if out.is_empty() {
        "  (none)".to_string()
    } else {
        out.join("\n")
    }
}

/// (time in µs of the day, invoke?, file, host run) of every probe record;
/// a host run is `name#n`, its n-th start.
fn events(hosts: &[Host]) -> Vec<(u64, bool, String, String)> {
    let mut out = Vec::new();
    log_lines(hosts, |run, _, v| {
        let Some(v) = v else { return };
        let Some(event) = record_field(v, "event") else {
            return;
        };
        out.push((
            record_micros(v),
            event == "invoke",
            record_field(v, "file").unwrap_or_default(),
            run.to_string(),
        ));
    });
    // A `done` before an `invoke` of the same microsecond: no overlap.
    out.sort_by_key(|e| (e.0, e.1));
    out
}

/// The unit of a file: `c07-…` → conversation 7; `s-…` → the sequential
/// port; `f-…` → free (no conversation).
fn unit(file: &str) -> Option<String> {
    let (prefix, _) = file.split_once('-')?;
    (prefix != "f").then(|| prefix.to_string())
}

/// The records of one unit, a line each (for failures).
fn trace(events: &[(u64, bool, String, String)], unit_name: &str) -> String {
    events
        .iter()
        .filter(|e| unit(&e.2).as_deref() == Some(unit_name))
        .map(|(t, invoke, file, run)| {
            format!(
                "  {t} {} {file} on {run}",
                if *invoke { "invoke" } else { "done  " }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A test's folder: kept for a look with `FERRY_TEST_KEEP=1`.
enum Kept {
    Temp(tempfile::TempDir),
    Path(PathBuf),
}

impl Kept {
    fn path(&self) -> &Path {
        match self {
            Kept::Temp(t) => t.path(),
            Kept::Path(p) => p,
        }
    }
}

fn host_of(run: &str) -> String {
    run.split('#').next().unwrap_or(run).to_string()
}

fn responses(root: &Path) -> usize {
    std::fs::read_dir(root.join("outbox")).map_or(0, |d| {
        d.flatten()
            .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
            .count()
    })
}

/// How long the probe works on each order.
#[derive(Clone, Copy)]
enum Pace {
    /// 20 to 60 ms: runs of one unit on different hosts would overlap if
    /// anything let them.
    Slow,
    /// 1 ms: many orders.
    Fast,
}

/// Writes the orders: `conversations` × `per` in conversations (file names
/// in their order), `free` without one, `sequential` on the sequential port.
/// Returns every file name.
fn write_orders(
    root: &Path,
    conversations: u32,
    per: u32,
    free: u32,
    sequential: u32,
    pace: Pace,
) -> BTreeSet<String> {
    let ms = |slow: u32| match pace {
        Pace::Slow => slow,
        Pace::Fast => 1,
    };
    let mut files = BTreeSet::new();
    let mut n = 0;
    let mut next = || {
        n += 1;
        n
    };
    for i in 0..per {
        for c in 0..conversations {
            let file = format!("c{c:02}-{i:05}.xml");
            message(
                &root.join("inbox"),
                &file,
                next(),
                Some(&format!("conv-{c}")),
                ms(20 + (i * 7 + c * 3) % 40),
            );
            files.insert(file);
        }
    }
    for i in 0..free {
        let file = format!("f-{i:05}.xml");
        message(&root.join("inbox"), &file, next(), None, ms(30));
        files.insert(file);
    }
    for i in 0..sequential {
        let file = format!("s-{i:05}.xml");
        message(&root.join("inbox-seq"), &file, next(), None, ms(20));
        files.insert(file);
    }
    files
}

fn wait_for(hosts: &mut [Host], root: &Path, n: usize) {
    // Longer for many orders (a hang still ends).
    let deadline = Instant::now() + DEADLINE + Duration::from_millis(30 * n as u64);
    while responses(root) < n {
        for h in hosts.iter_mut() {
            h.assert_running();
        }
        if Instant::now() > deadline {
            let logs: Vec<String> = hosts
                .iter()
                .map(|h| format!("--- {}:\n{}", h.name, h.log()))
                .collect();
            panic!(
                "{} of {n} responses in time\n{}",
                responses(root),
                logs.join("\n")
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checks the probe's records: each unit's messages one at a time, in
/// file-name order, across all hosts; returns who processed how many.
/// Without `once`, hosts were killed: a message whose run was cut short by
/// a kill (or whose result was lost with it) runs again — and so does every
/// message of the batch it was in, which a killed host ran in order but
/// never committed: the unit then starts again from the first of them.
fn check_order(hosts: &[Host], files: &BTreeSet<String>, once: bool) -> BTreeMap<String, usize> {
    let killed = |run: &str| !once && run.starts_with("ferry-a#");
    let events = events(hosts);
    let mut running: BTreeMap<String, (String, String)> = BTreeMap::new();
    let mut last_done: BTreeMap<String, String> = BTreeMap::new();
    // Each unit's runs that ended, in order: (file, run).
    let mut done: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut invoked: BTreeMap<String, usize> = BTreeMap::new();
    let mut by_host: BTreeMap<String, usize> = BTreeMap::new();
    for (_, invoke, file, host) in &events {
        let Some(u) = unit(file) else {
            if *invoke {
                *invoked.entry(file.clone()).or_default() += 1;
                *by_host.entry(host_of(host)).or_default() += 1;
            }
            continue;
        };
        if *invoke {
            *invoked.entry(file.clone()).or_default() += 1;
            *by_host.entry(host_of(host)).or_default() += 1;
            if let Some((other, on)) = running.get(&u)
                && !killed(on)
            {
                panic!(
                    "{file} started on {host} while {other} of the same unit ran on {on}; the \
                     hosts' warnings:\n{}\nthe unit's records:\n{}",
                    warnings(hosts),
                    trace(&events, &u)
                );
            }
            if let Some(prev) = last_done.get(&u) {
                // Run again after a kill: every run of this file or a later
                // one so far was on a killed host (its batch was lost).
                let again = !once
                    && done.get(&u).is_some_and(|runs| {
                        runs.iter()
                            .filter(|(f, _)| f >= file)
                            .all(|(_, on)| killed(on))
                    });
                assert!(
                    prev < file || (!once && prev == file) || again,
                    "{file} ran after {prev}: not in file-name order ({host}); the hosts' \
                     warnings:\n{}\nthe unit's records:\n{}",
                    warnings(hosts),
                    trace(&events, &u)
                );
            }
            running.insert(u, (file.clone(), host.clone()));
        } else if running.get(&u).is_some_and(|(f, _)| f == file) {
            running.remove(&u);
            done.entry(u.clone())
                .or_default()
                .push((file.clone(), host.clone()));
            last_done.insert(u, file.clone());
        }
    }
    let seen: BTreeSet<String> = invoked.keys().cloned().collect();
    assert_eq!(&seen, files, "every message was processed");
    if once {
        let twice: Vec<_> = invoked.iter().filter(|(_, n)| **n > 1).collect();
        assert!(
            twice.is_empty(),
            "processed more than once: {twice:?}\nthe hosts' warnings:\n{}",
            warnings(hosts)
        );
    }
    by_host
}

#[test]
fn three_hosts_share_one_queue_and_keep_every_order() {
    let schema = Schema::new();
    let root = tempfile::tempdir().unwrap();
    if std::env::var_os("FERRY_TEST_KEEP").is_some() {
        eprintln!("keeping {}", root.path().display());
        let _ = root.path().to_path_buf();
        std::mem::forget(Schema(schema.0.clone()));
    }
    let root = if std::env::var_os("FERRY_TEST_KEEP").is_some() {
        Kept::Path(root.keep())
    } else {
        Kept::Temp(root)
    };
    let mut hosts = hosts(
        root.path(),
        &schema,
        &["ferry-a", "ferry-b", "ferry-c"],
        LEASE,
    );
    // Every order is in place before a host lists the inbox: a file renamed
    // into a folder while it is being listed may be missed by that listing
    // and received later, after a file of its conversation named after it.
    let files = write_orders(root.path(), 10, 12, 20, 30, Pace::Slow);
    for h in &mut hosts {
        h.start();
    }
    wait_for(&mut hosts, root.path(), files.len());
    let by_host = check_order(&hosts, &files, true);
    // The work was shared (how much each host takes depends on when its
    // occurrences run).
    assert!(by_host.len() >= 2, "work per host: {by_host:?}");
    // Nothing left in the queue, each request logged once, none failed.
    schema.assert_each_answered_once(root.path(), &files, Duration::from_secs(30));
    assert_eq!(schema.count("SELECT count(*) FROM SCHEMA.exceptions"), 0);
    // The operator's commands work on the shared queue from any host's
    // configuration (no console here: straight to the database).
    let config = hosts[2].config.clone();
    let c = config.to_str().unwrap();
    let out = ferry_tests::ferry(&["queue", "migrate", "--config", c]);
    assert!(out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains(&format!("gateway queue schema {} is at version", schema.0)),
        "{out:?}"
    );
    let out = ferry_tests::ferry(&[
        "history",
        "{00000000-0000-4000-8000-000000000001}",
        "--config",
        c,
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("processed:  yes"),
        "{out:?}"
    );
    let out = ferry_tests::ferry(&["queue", "list", "--config", c]);
    assert!(out.status.success(), "{out:?}");
}

/// At scale: 20,000 orders — 50 conversations of 300, 4,000 free, 1,000 on
/// the sequential port — answered by three hosts, each exactly once, every
/// unit one at a time in file-name order.
#[test]
fn three_hosts_answer_twenty_thousand_orders_in_order() {
    let schema = Schema::new();
    let root = tempfile::tempdir().unwrap();
    let mut hosts = hosts(
        root.path(),
        &schema,
        &["ferry-a", "ferry-b", "ferry-c"],
        LEASE,
    );
    // Every order is in place before a host lists the inbox: a file renamed
    // into a folder while it is being listed may be missed by that listing
    // and received later, after a file of its conversation named after it.
    let files = write_orders(root.path(), 50, 300, 4_000, 1_000, Pace::Fast);
    for h in &mut hosts {
        h.start();
    }
    assert_eq!(files.len(), 20_000);
    wait_for(&mut hosts, root.path(), files.len());
    let by_host = check_order(&hosts, &files, true);
    assert_eq!(by_host.len(), 3, "work per host: {by_host:?}");
    schema.assert_each_answered_once(root.path(), &files, Duration::from_secs(60));
    assert_eq!(schema.count("SELECT count(*) FROM SCHEMA.exceptions"), 0);
}

#[test]
fn a_killed_host_loses_nothing_and_the_others_take_its_work() {
    let schema = Schema::new();
    let root = tempfile::tempdir().unwrap();
    let mut hosts = hosts(root.path(), &schema, &["ferry-a", "ferry-b"], SHORT_LEASE);
    // Every order is in place before a host lists the inbox: a file renamed
    // into a folder while it is being listed may be missed by that listing
    // and received later, after a file of its conversation named after it.
    let files = write_orders(root.path(), 6, 25, 20, 30, Pace::Slow);
    for h in &mut hosts {
        h.start();
    }
    // Kill host A ten times at random moments while it works (the seed is
    // printed; FERRY_TEST_SEED repeats a run): restarted at once as the
    // same host (it recovers its own claims), once only after its lease
    // has run out (B takes its work over), and the last time left dead.
    let seed = std::env::var("FERRY_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .subsec_nanos() as u64
        });
    eprintln!("FERRY_TEST_SEED={seed}");
    let mut state = seed | 1;
    let mut random = |below: u64| {
        // xorshift64
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state % below
    };
    const KILLS: usize = 10;
    for round in 0..KILLS {
        let target = (round + 1) * files.len() / (KILLS + 2);
        let deadline = Instant::now() + DEADLINE;
        while responses(root.path()) < target && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(random(250)));
        hosts[0].kill();
        match round {
            r if r + 1 == KILLS => {}
            4 => {
                std::thread::sleep(Duration::from_millis(3_500));
                hosts[0].start();
            }
            _ => {
                std::thread::sleep(Duration::from_millis(50 + random(500)));
                hosts[0].start();
            }
        }
    }
    wait_for(&mut hosts[1..], root.path(), files.len());
    // Order holds across the kills (a message whose work was lost runs
    // again, after its unit was freed).
    check_order(&hosts, &files, false);
    // Every request processed once and every response sent once.
    schema.assert_each_answered_once(root.path(), &files, Duration::from_secs(30));
    let b = hosts[1].log();
    assert!(
        b.contains("did not renew its lease in time"),
        "host B took over A's work:\n{b}"
    );
}

/// The event-driven mode across hosts: host B's only job runs on input
/// (and otherwise once an hour) and reads a folder nobody writes to; host A
/// only receives, from the shared inbox. What A queues wakes B through the
/// database, and B answers every order.
#[test]
fn an_event_driven_job_runs_for_work_another_host_received() {
    let schema = Schema::new();
    let root = tempfile::tempdir().unwrap();
    let rewrite = |host: &str, f: &dyn Fn(String) -> String| {
        let config = host_config(root.path(), &schema, host, LEASE);
        let text = std::fs::read_to_string(&config).unwrap();
        std::fs::write(&config, f(text)).unwrap();
        Host::new(host, config)
    };
    let jobs = "[jobs.all]\nevery = \"1s\"\n";
    let mut a = rewrite("ferry-a", &|t| {
        t.replace(
            jobs,
            "[jobs.receive]\nevery = \"100ms\"\ntasks = [{ service = \"gateway-receive\" }]\n",
        )
    });
    let quiet = root.path().join("inbox-b");
    std::fs::create_dir_all(&quiet).unwrap();
    let b = rewrite("ferry-b", &|t| {
        t.replace(
            &format!("address = \"{}/inbox\"", root.path().display()),
            &format!("address = \"{}\"", quiet.display()),
        )
        .replace(jobs, "[jobs.all]\nevery = \"1h\"\non_input = true\n")
    });
    // A leads the receiving of both ports before B starts.
    a.start();
    let deadline = Instant::now() + DEADLINE;
    while schema.count_once_created("SELECT count(*) FROM SCHEMA.leaders WHERE owner = 'ferry-a'")
        < 2
    {
        a.assert_running();
        assert!(Instant::now() < deadline, "A never received:\n{}", a.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut hosts = vec![a, b];
    hosts[1].start();
    // B's occurrence at its start (its folder newly watched) finds nothing.
    std::thread::sleep(Duration::from_secs(2));
    let files = write_orders(root.path(), 0, 0, 20, 0, Pace::Slow);
    wait_for(&mut hosts, root.path(), files.len());
    assert_eq!(responses(root.path()), files.len());
    let by = events(&hosts);
    assert_eq!(by.len(), 2 * files.len(), "an invoke and a done per order");
    assert!(
        by.iter().all(|e| host_of(&e.3) == "ferry-b"),
        "only B processes: {by:?}"
    );
}

#[test]
fn a_host_stopped_past_its_lease_cannot_commit_its_stale_work() {
    let schema = Schema::new();
    let root = tempfile::tempdir().unwrap();
    let mut hosts = hosts(root.path(), &schema, &["ferry-a", "ferry-b"], SHORT_LEASE);
    // Every order is in place before a host lists the inbox: a file renamed
    // into a folder while it is being listed may be missed by that listing
    // and received later, after a file of its conversation named after it.
    let files = write_orders(root.path(), 6, 15, 10, 20, Pace::Slow);
    for h in &mut hosts {
        h.start();
    }
    let deadline = Instant::now() + DEADLINE;
    while responses(root.path()) < files.len() / 4 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    // Host A freezes for longer than its lease (2s), then goes on.
    let pid = hosts[0].child.as_ref().unwrap().id().to_string();
    assert!(
        Command::new("kill")
            .args(["-STOP", &pid])
            .status()
            .unwrap()
            .success()
    );
    std::thread::sleep(Duration::from_secs(4));
    assert!(
        Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .unwrap()
            .success()
    );
    wait_for(&mut hosts, root.path(), files.len());
    // Whatever A was doing when it froze was done again by B, and A's
    // results of it were refused: each MessageId is in the message log
    // once, every request answered, nothing left.
    schema.assert_each_answered_once(root.path(), &files, Duration::from_secs(30));
    // Poll for A's heartbeat after it woke (a third of its lease).
    let until = Instant::now() + Duration::from_secs(10);
    while !hosts[0].log().contains("this host lost its lease") && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        hosts[0].log().contains("this host lost its lease"),
        "host A noticed:\n{}",
        hosts[0].log()
    );
    assert!(
        hosts[1]
            .log()
            .contains("host ferry-a did not renew its lease in time"),
        "host B fenced A off:\n{}",
        hosts[1].log()
    );
    for h in &mut hosts {
        h.assert_running();
    }
}

/// A PostgreSQL cluster of the test's own, in a temporary folder, on a
/// free port: the test restarts it. Stopped when dropped.
struct Cluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
}

impl Cluster {
    fn start() -> Cluster {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .ok()
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .find(|b| b.join("initdb").is_file())
            .expect(
                "this test needs PostgreSQL's server binaries (Debian: apt-get install \
                 postgresql; scripts/test installs them when it can)",
            );
        let dir = tempfile::tempdir().unwrap();
        let root = unsafe_is_root();
        if root {
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres"])
                    .arg(dir.path())
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Cluster { bin, dir, port };
        let data = c.dir.path().join("data");
        c.pg("initdb", |cmd| {
            cmd.arg("-D")
                .arg(&data)
                .args(["-U", "postgres", "--auth=trust", "-E", "UTF8"]);
        });
        c.ctl("start");
        c
    }

    fn pg(&self, tool: &str, args: impl FnOnce(&mut Command)) {
        let mut cmd = if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        };
        args(&mut cmd);
        let out = cmd.output().unwrap();
        assert!(
            out.status.success(),
            "{tool} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn ctl(&self, action: &str) {
        let data = self.dir.path().join("data");
        let log = self.dir.path().join("server.log");
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        self.pg("pg_ctl", |cmd| {
            cmd.arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-w", "-t", "60", "-m", "fast", "-o", &opts, action]);
        });
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let data = self.dir.path().join("data");
        let mut cmd = if unsafe_is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"])
                .arg(self.bin.join("pg_ctl"));
            c
        } else {
            Command::new(self.bin.join("pg_ctl"))
        };
        let _ = cmd
            .arg("-D")
            .arg(&data)
            .args(["-m", "immediate", "stop"])
            .output();
    }
}

/// Whether this process runs as root (initdb refuses to).
fn unsafe_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("0")
    })
}

#[test]
fn the_database_restarted_under_load_loses_nothing() {
    let cluster = Cluster::start();
    let url = cluster.url();
    let schema = Schema::new();
    let root = tempfile::tempdir().unwrap();
    let mut hosts: Vec<Host> = ["ferry-a", "ferry-b"]
        .iter()
        .map(|h| {
            let config = host_config(root.path(), &schema, h, SHORT_LEASE);
            let text = std::fs::read_to_string(&config)
                .unwrap()
                .replace(&pg_url(), &url);
            std::fs::write(&config, text).unwrap();
            Host::new(h, config)
        })
        .collect();
    // Every order is in place before a host lists the inbox: a file renamed
    // into a folder while it is being listed may be missed by that listing
    // and received later, after a file of its conversation named after it.
    let files = write_orders(root.path(), 6, 15, 10, 20, Pace::Slow);
    for h in &mut hosts {
        h.start();
    }
    let deadline = Instant::now() + DEADLINE;
    while responses(root.path()) < files.len() / 3 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    cluster.ctl("restart");
    wait_for(&mut hosts, root.path(), files.len());
    let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count = |c: &mut postgres::Client, sql: &str| -> i64 {
        c.query_one(&sql.replace("SCHEMA", &schema.0), &[])
            .unwrap()
            .get(0)
    };
    let until = Instant::now() + Duration::from_secs(60);
    while count(&mut c, "SELECT count(*) FROM SCHEMA.messages") > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM SCHEMA.messages"),
        0,
        "left in the queue"
    );
    assert_eq!(
        count(&mut c, "SELECT count(*) FROM SCHEMA.message_log"),
        files.len() as i64
    );
    assert_eq!(responses(root.path()), files.len());
    // The hosts said what happened, and went on.
    let logs: String = hosts.iter().map(Host::log).collect();
    assert!(
        logs.contains("PostgreSQL gateway queue:"),
        "the restart was reported:\n{logs}"
    );
    for h in &mut hosts {
        h.assert_running();
    }
}
