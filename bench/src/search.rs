//! `ferry-bench search`: the queue manager at a million queued messages,
//! through the real binary's control API — what an operator's `ferry queue
//! list` or the console's queue page waits for.
//!
//! The queue is filled through the library (not measured): `messages`
//! inbound messages of `size` bytes on three ports, 1 % in Error with an
//! error text, every 100th in a conversation. Then `ferry run` starts on
//! that queue (its one job only receives from an empty folder, so nothing
//! moves) and each search is asked `reps` times over HTTP with the operator
//! token; a search that names no indexed field is followed page after page
//! (`next`) until it has seen the whole queue, as a client does.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use serde::Serialize;

use ferry::queue::{Direction, NewMessage, Status, Transaction};
use ferry_tests::api::Api;

/// One search's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRow {
    /// What was asked.
    pub what: String,
    /// Requests of one search (pages followed to the end).
    pub requests: usize,
    /// Messages found.
    pub found: usize,
    /// Median time of the slowest request of a search, ms.
    pub slowest_page_ms: f64,
    /// Median time of a whole search (all its requests), ms.
    pub search_ms: f64,
}

/// One backend's figures.
#[derive(Debug, Clone, Serialize)]
pub struct SearchResult {
    /// `redb` or `postgres`.
    pub queue: String,
    /// Messages queued.
    pub messages: u64,
    /// Seconds the fill took (through the library, not measured).
    pub fill_seconds: f64,
    /// The searches.
    pub rows: Vec<SearchRow>,
}

/// The case's options.
pub struct Options<'a> {
    pub ferry: &'a Path,
    pub base: &'a Path,
    /// The database, for the PostgreSQL case.
    pub url: &'a str,
    pub messages: u64,
    pub size: usize,
    pub reps: usize,
}

const PORTS: [&str; 3] = ["orders", "invoices", "customers"];

fn name(n: u64) -> String {
    format!("file-{n:07}.xml")
}

fn message_id(n: u64) -> String {
    format!("{{00000000-0000-4000-8000-{n:012}}}")
}

fn config(case: &Path, queue: &str, ferry_plugins: &Path) -> Result<PathBuf> {
    let mut ports = String::new();
    for p in PORTS {
        fs::create_dir_all(case.join(format!("inbox-{p}")))?;
        ports.push_str(&format!(
            "[ports.{p}]\ndirection = \"inbound\"\nadapter = \"file\"\naddress = \"inbox-{p}\"\n\n"
        ));
    }
    let text = format!(
        "data_dir = \"data\"\nplugin_dir = \"{plugins}\"\n\n{queue}\n\n\
         [adapters.file]\ncomponent = \"file-adapter\"\n\n{ports}\
         [console]\nlisten = \"127.0.0.1:0\"\n\n\
         [jobs.receive]\nevery = \"1000h\"\ntasks = [{{ service = \"gateway-receive\" }}]\n",
        plugins = ferry_plugins.display()
    );
    let path = case.join("ferry.toml");
    fs::write(&path, text)?;
    Ok(path)
}

/// Fills the queue the configuration names; returns the seconds it took.
fn fill(config: &Path, messages: u64, size: usize) -> Result<f64> {
    let c = ferry::config::Config::load(config).map_err(|e| anyhow::anyhow!("{e}"))?;
    let data = config.parent().expect("a file").join("data");
    fs::create_dir_all(&data)?;
    let queue = c.queue.open(&data)?;
    let t = Instant::now();
    let body = "x".repeat(size.saturating_sub(200));
    let mut n = 0u64;
    while n < messages {
        let mut tx = Transaction::new();
        for _ in 0..10_000.min(messages - n) {
            let error = n.is_multiple_of(100);
            tx.insert(NewMessage {
                direction: Direction::Inbound,
                port: PORTS[(n % 3) as usize].to_string(),
                status: if error { Status::Error } else { Status::Ready },
                name: name(n),
                position: 0,
                message_id: message_id(n),
                action: "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create"
                    .to_string(),
                conversation_id: n.is_multiple_of(100).then(|| format!("conv-{}", n / 100 % 50)),
                batch_id: None,
                request_message_id: None,
                content: format!("<Envelope><n>{n}</n><Body>{body}</Body></Envelope>"),
                error: error.then(|| format!("plugin value-map failed on order {n:07}: no mapping")),
            });
            n += 1;
        }
        queue.commit(tx)?;
        if n.is_multiple_of(100_000) {
            eprintln!("  filled {n} in {:.0} s", t.elapsed().as_secs_f64());
        }
    }
    Ok(t.elapsed().as_secs_f64())
}

/// `ferry run` on the filled queue, until dropped.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let _ = self.0.wait();
    }
}

fn start(ferry: &Path, config: &Path) -> Result<(Running, Api)> {
    let data = config.parent().expect("a file").join("data");
    let _ = fs::remove_file(data.join("console").join("host.json"));
    let child = Command::new(ferry)
        .args(["run", "--log-level", "warn", "--config"])
        .arg(config)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .context("cannot start ferry run")?;
    let mut running = Running(child);
    let t = Instant::now();
    while !data.join("console").join("host.json").is_file() {
        if let Some(status) = running.0.try_wait()? {
            bail!("ferry run exited at start: {status}");
        }
        ensure!(
            t.elapsed() < Duration::from_secs(300),
            "ferry run did not serve its console in 5 minutes"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok((running, Api::new(&data)))
}

/// A search followed page after page: (requests, found, slowest request).
fn follow(api: &Api, query: &str, pages: usize) -> Result<(usize, usize, Duration)> {
    let mut after: Option<u64> = None;
    let (mut requests, mut found, mut slowest) = (0, 0, Duration::ZERO);
    loop {
        let path = match after {
            Some(a) => format!("/api/v1/queue?{query}&after={a}"),
            None => format!("/api/v1/queue?{query}"),
        };
        let t = Instant::now();
        let page = api.get(&path);
        slowest = slowest.max(t.elapsed());
        requests += 1;
        found += page["items"].as_array().map_or(0, Vec::len);
        match page["next"].as_u64() {
            Some(next) if requests < pages => after = Some(next),
            _ => return Ok((requests, found, slowest)),
        }
    }
}

/// Runs one backend's case.
pub fn case(o: &Options<'_>, postgres: bool) -> Result<SearchResult> {
    let label = if postgres { "postgres" } else { "redb" };
    let case = o.base.join(format!("ferry-bench-search-{label}"));
    let _ = fs::remove_dir_all(&case);
    fs::create_dir_all(&case)?;
    let schema = format!("ferry_bench_search_{}", std::process::id());
    let queue = crate::hosts::queue_section(postgres, o.url, &schema);
    let config = config(&case, &queue, &ferry_tests::plugins_dir())?;
    crate::hosts::check(o.ferry, &config)?;
    eprintln!("{label}: filling {} messages", o.messages);
    let fill_seconds = fill(&config, o.messages, o.size)?;
    let result = measure(o, &config, label, fill_seconds);
    if postgres {
        crate::hosts::drop_schema(o.url, &schema);
    }
    let _ = fs::remove_dir_all(&case);
    result
}

fn measure(o: &Options<'_>, config: &Path, label: &str, fill_seconds: f64) -> Result<SearchResult> {
    let (running, api) = start(o.ferry, config)?;
    let n = o.messages;
    let deep = n * 9 / 10;
    let last = n.saturating_sub(1);
    // The last message queued: found only at the end of a scan.
    let last_name = name(last);
    let last_id = message_id(last).replace('{', "%7B").replace('}', "%7D");
    let searches: Vec<(String, String, usize)> = vec![
        ("first page, no filter".into(), "limit=100".into(), 1),
        (
            format!("page after key {deep}, no filter"),
            format!("limit=100&after={deep}"),
            1,
        ),
        (
            "status Error (1 %), first page".into(),
            "status=error&limit=100".into(),
            1,
        ),
        (
            format!("status Error, page after key {}", n / 2),
            format!("status=error&limit=100&after={}", n / 2),
            1,
        ),
        (
            "port invoices (1/3), first page".into(),
            "port=invoices&limit=100".into(),
            1,
        ),
        (
            "conversation conv-7 (every 5,000th), to the end".into(),
            "conversation=conv-7&limit=100".into(),
            usize::MAX,
        ),
        (
            "one MessageId, to the end".into(),
            format!("message_id={last_id}&limit=100"),
            usize::MAX,
        ),
        (
            "one file name, to the end".into(),
            format!("name={last_name}&limit=100"),
            usize::MAX,
        ),
        (
            "error text, to the end".into(),
            format!("error=order%20{:07}&limit=100", last - last % 100),
            usize::MAX,
        ),
    ];
    let mut rows = Vec::new();
    for (what, query, pages) in searches {
        let mut slowest = Vec::new();
        let mut whole = Vec::new();
        let mut shape = (0, 0);
        for _ in 0..o.reps.max(1) {
            let t = Instant::now();
            let (requests, found, slow) = follow(&api, &query, pages)?;
            whole.push(t.elapsed().as_secs_f64() * 1e3);
            slowest.push(slow.as_secs_f64() * 1e3);
            shape = (requests, found);
        }
        let row = SearchRow {
            what,
            requests: shape.0,
            found: shape.1,
            slowest_page_ms: crate::median(slowest),
            search_ms: crate::median(whole),
        };
        eprintln!("  {row:?}");
        rows.push(row);
    }
    // The overview's depth by status and the console's queue page.
    for (what, path) in [
        ("counts by port and status (overview)", "/api/v1/counts"),
        ("console queue page, Error", "/console/queue?status=error"),
    ] {
        let mut times = Vec::new();
        for _ in 0..o.reps.max(1) {
            let t = Instant::now();
            let _ = if path.starts_with("/console") {
                api.page(path)
            } else {
                api.text(path)
            };
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        let ms = crate::median(times);
        rows.push(SearchRow {
            what: what.into(),
            requests: 1,
            found: 0,
            slowest_page_ms: ms,
            search_ms: ms,
        });
    }
    // The CLI, as an operator types it: process start, the API, printing.
    let mut times = Vec::new();
    for _ in 0..o.reps.max(1) {
        let t = Instant::now();
        let out = Command::new(o.ferry)
            .args(["queue", "list", "--status", "error", "--config"])
            .arg(config)
            .stderr(Stdio::null())
            .output()?;
        ensure!(out.status.success(), "ferry queue list failed");
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let ms = crate::median(times);
    rows.push(SearchRow {
        what: "`ferry queue list --status error` (whole command)".into(),
        requests: 1,
        found: 0,
        slowest_page_ms: ms,
        search_ms: ms,
    });
    drop(running);
    Ok(SearchResult {
        queue: label.into(),
        messages: n,
        fill_seconds,
        rows,
    })
}
