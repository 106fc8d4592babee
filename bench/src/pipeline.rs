//! Ferry's real pipeline, run in this process through the library: the
//! configuration is loaded, the queue opened, the plugins loaded, then the
//! four services run once each in AIF's order (what one occurrence of the
//! default job does under `ferry run --once`). The queue is wrapped in
//! [`Timed`], which measures the time spent in it per stage and the latency
//! from a request's receive commit to its response's send commit.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow};
use ferry::config::{Config, TaskKind};
use ferry::plugins::PluginSet;
use ferry::queue::{
    Change, ClaimRequest, Direction, Exception, ExceptionFilter, Filter, GatewayQueue,
    HistoryEntry, Lease, MessageKey, NewMessage, QueueError, QueuedMessage, RecoveryReport,
    RedbQueue, Status, Transaction, WorkSignal,
};
use ferry::runtime::{Runtime, RuntimeOptions};
use ferry::services::{Gateway, Sandboxes};
use serde::{Deserialize, Serialize};

use crate::orders;

/// The stages, in order; index into [`Timed`]'s counters.
pub const STAGES: [(TaskKind, &str); 4] = [
    (TaskKind::GatewayReceive, "receive"),
    (TaskKind::InboundProcessing, "inbound"),
    (TaskKind::OutboundProcessing, "outbound"),
    (TaskKind::GatewaySend, "send"),
];

/// A [`GatewayQueue`] that measures: nanoseconds spent in the queue per
/// stage, messages claimed per direction, and per request the instants of
/// its receive commit and of its response's send commit.
pub struct Timed {
    inner: RedbQueue,
    start: Instant,
    stage: AtomicUsize,
    queue_ns: [AtomicU64; 4],
    commits: [AtomicU64; 4],
    pub claimed_inbound: AtomicU64,
    track: Mutex<Track>,
}

#[derive(Default)]
struct Track {
    /// Request MessageId -> receive commit (ns since start).
    received: HashMap<String, u64>,
    /// Outbound message key -> the request it answers.
    outbound: HashMap<MessageKey, String>,
    /// Receive-commit-to-send-commit latencies (ns).
    latencies: Vec<u64>,
}

impl Timed {
    pub fn new(inner: RedbQueue) -> Timed {
        Timed {
            inner,
            start: Instant::now(),
            stage: AtomicUsize::new(0),
            queue_ns: Default::default(),
            commits: Default::default(),
            claimed_inbound: AtomicU64::new(0),
            track: Mutex::new(Track::default()),
        }
    }

    pub fn set_stage(&self, i: usize) {
        self.stage.store(i, Ordering::Relaxed);
    }

    fn timed<R>(&self, f: impl FnOnce() -> R) -> R {
        let t = Instant::now();
        let r = f();
        let i = self.stage.load(Ordering::Relaxed);
        self.queue_ns[i].fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }

    pub fn queue_ms(&self, i: usize) -> f64 {
        self.queue_ns[i].load(Ordering::Relaxed) as f64 / 1e6
    }

    pub fn commits(&self, i: usize) -> u64 {
        self.commits[i].load(Ordering::Relaxed)
    }

    pub fn latencies(&self) -> Vec<u64> {
        self.track.lock().unwrap().latencies.clone()
    }
}

impl GatewayQueue for Timed {
    fn commit(&self, tx: Transaction) -> Result<Vec<MessageKey>, QueueError> {
        // What to track, before the transaction is consumed.
        let mut inserts: Vec<Option<(Direction, String)>> = Vec::new();
        let mut removes: Vec<MessageKey> = Vec::new();
        for c in tx.changes() {
            match c {
                Change::Insert(m) => inserts.push(match m.direction {
                    Direction::Inbound => Some((Direction::Inbound, m.message_id.clone())),
                    Direction::Outbound => m
                        .request_message_id
                        .clone()
                        .map(|r| (Direction::Outbound, r)),
                    Direction::OutboundRequest => None,
                }),
                Change::Remove { key } => removes.push(*key),
                _ => {}
            }
        }
        let keys = self.timed(|| self.inner.commit(tx))?;
        let i = self.stage.load(Ordering::Relaxed);
        self.commits[i].fetch_add(1, Ordering::Relaxed);
        let now = self.start.elapsed().as_nanos() as u64;
        let mut track = self.track.lock().unwrap();
        // One entry in `inserts` per insert, in order, as `keys`.
        for (what, key) in inserts.into_iter().zip(&keys) {
            match what {
                Some((Direction::Inbound, id)) => {
                    track.received.insert(id, now);
                }
                Some((_, request)) => {
                    track.outbound.insert(*key, request);
                }
                None => {}
            }
        }
        for key in removes {
            if let Some(request) = track.outbound.remove(&key)
                && let Some(t) = track.received.remove(&request)
            {
                track.latencies.push(now - t);
            }
        }
        Ok(keys)
    }

    fn claim(
        &self,
        lease: &Lease,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        let got = self.timed(|| self.inner.claim(lease, request))?;
        if request.direction == Direction::Inbound {
            self.claimed_inbound
                .fetch_add(got.len() as u64, Ordering::Relaxed);
        }
        Ok(got)
    }

    fn ready(
        &self,
        direction: Direction,
        port: &str,
        limit: usize,
        max_key: Option<MessageKey>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        self.timed(|| self.inner.ready(direction, port, limit, max_key))
    }
    fn last_key(&self) -> Result<MessageKey, QueueError> {
        self.timed(|| self.inner.last_key())
    }
    fn get(&self, key: MessageKey) -> Result<Option<QueuedMessage>, QueueError> {
        self.timed(|| self.inner.get(key))
    }
    fn list(&self, filter: &Filter) -> Result<Vec<QueuedMessage>, QueueError> {
        self.timed(|| self.inner.list(filter))
    }
    fn counts(&self) -> Result<Vec<(Direction, String, Status, u64)>, QueueError> {
        self.timed(|| self.inner.counts())
    }
    fn is_processed(&self, message_id: &str) -> Result<bool, QueueError> {
        self.timed(|| self.inner.is_processed(message_id))
    }
    fn are_processed(&self, message_ids: &[&str]) -> Result<Vec<bool>, QueueError> {
        self.timed(|| self.inner.are_processed(message_ids))
    }
    fn exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<Exception>, QueueError> {
        self.timed(|| self.inner.exceptions(filter))
    }
    fn history(&self, message_id: &str) -> Result<Vec<HistoryEntry>, QueueError> {
        self.timed(|| self.inner.history(message_id))
    }
    fn recover(&self, owner: &str) -> Result<(Lease, RecoveryReport), QueueError> {
        self.timed(|| self.inner.recover(owner))
    }
    fn renew(&self, lease: &Lease) -> Result<(), QueueError> {
        self.timed(|| self.inner.renew(lease))
    }
    fn work_signal(&self) -> &WorkSignal {
        self.inner.work_signal()
    }
    fn hold(&self, key: MessageKey) -> Result<(), QueueError> {
        self.timed(|| self.inner.hold(key))
    }
    fn release(&self, key: MessageKey) -> Result<(), QueueError> {
        self.timed(|| self.inner.release(key))
    }
    fn delete(&self, key: MessageKey) -> Result<(), QueueError> {
        self.timed(|| self.inner.delete(key))
    }
    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), QueueError> {
        self.timed(|| self.inner.put_state(key, value))
    }
    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError> {
        self.timed(|| self.inner.get_state(key))
    }
    fn delete_state(&self, key: &str) -> Result<bool, QueueError> {
        self.timed(|| self.inner.delete_state(key))
    }
    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError> {
        self.timed(|| self.inner.state_keys(prefix))
    }
}

/// The port's processing mode.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
pub enum Mode {
    /// `parallel = true`, messages without ConversationId.
    Parallel,
    /// `parallel = false`.
    Sequential,
    /// `parallel = true`, messages in K conversations.
    Conversations,
}

/// Write the benchmark's configuration into `dir` (inbox, outbox, data
/// beside it) and return its path.
pub fn write_config(
    dir: &Path,
    plugin_dir: &Path,
    mode: Mode,
    group_commit: usize,
    workers: Option<usize>,
    logging: &str,
) -> Result<std::path::PathBuf> {
    let parallel = mode != Mode::Sequential;
    let workers = workers.map_or(String::new(), |w| format!("workers = {w}\n"));
    let toml = format!(
        r#"# Generated by ferry-bench: the benchmark's pipeline.
data_dir = "data"
plugin_dir = "{plugins}"
group_commit = {group_commit}
{workers}
[adapters.file]
component = "file-adapter"

# Two Rust rules in the inbound pipeline: value substitution, then a header stamp.
[rules.item-ids]
component = "value-map"
options = {{ elements = "ItemId", map = {map} }}

[rules.company]
component = "set-header"
options = {{ field = "Company", value = "{company}" }}

[services.sales-orders]
component = "sales-order-service"

[ports.orders-in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["item-ids", "company"]
services = [{{ action = "*/SalesOrderService/*", service = "sales-orders" }}]
logging = "{logging}"
parallel = {parallel}
max_parallel = 1000
"#,
        plugins = plugin_dir.display(),
        map = orders::item_map_toml(),
        company = orders::COMPANY,
    );
    let path = dir.join("ferry.toml");
    std::fs::write(&path, toml)?;
    Ok(path)
}

/// What one Ferry run measured.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FerryResult {
    /// Messages sent (responses written).
    pub messages: u64,
    pub failed: u64,
    pub seconds: f64,
    /// Per stage: wall ms, ms inside the queue, queue commits, messages done.
    pub stages: Vec<(String, f64, f64, u64, u64)>,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub peak_rss_mb: f64,
    pub queue_mb: f64,
    pub startup_ms: f64,
    /// This process's CPU over the timed part (start-up excluded), seconds.
    #[serde(default)]
    pub cpu_user_s: f64,
    #[serde(default)]
    pub cpu_system_s: f64,
}

/// This process's CPU time so far (user, system), seconds.
pub fn cpu_self() -> (f64, f64) {
    // SAFETY: rusage is plain data that getrusage fills in.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (secs(ru.ru_utime), secs(ru.ru_stime))
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i] as f64 / 1e6
}

/// Run the four services once over the configuration at `config_path`.
/// With `limit`, inbound processing stops claiming after that many
/// messages (the scale runs, whose backlog is already queued).
pub fn run_ferry(config_path: &Path, limit: Option<u64>) -> Result<FerryResult> {
    let t0 = Instant::now();
    let config =
        Arc::new(Config::load(config_path).map_err(|e| anyhow!("invalid configuration:\n{e}"))?);
    let queue = Arc::new(Timed::new(
        RedbQueue::open(&config.data_dir).context("cannot open the gateway queue")?,
    ));
    let (lease, _) = queue.recover("bench")?;
    let runtime = Runtime::new(RuntimeOptions {
        cache_dir: Some(config.data_dir.join("cache")),
        max_memory: config.max_memory(),
        ..RuntimeOptions::default()
    })?;
    let plugins = Arc::new(PluginSet::load(&runtime, &config).map_err(|errors| {
        anyhow!(
            "plugins could not be loaded: {}",
            errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("; ")
        )
    })?);
    let gw = Gateway::new(config.clone(), queue.clone(), runtime, plugins, lease);
    let mut sandboxes = Sandboxes::new();
    let startup_ms = t0.elapsed().as_secs_f64() * 1e3;

    let start = Instant::now();
    let cpu0 = cpu_self();
    let mut stages = Vec::new();
    let mut sent = 0;
    let mut failed = 0;
    for (i, (kind, name)) in STAGES.iter().enumerate() {
        queue.set_stage(i);
        let t = Instant::now();
        let limited = || limit.is_some_and(|l| queue.claimed_inbound.load(Ordering::Relaxed) >= l);
        let never = || false;
        let stop: &dyn Fn() -> bool = if *kind == TaskKind::InboundProcessing {
            &limited
        } else {
            &never
        };
        let counts = gw.run_task(*kind, &[], &mut sandboxes, stop)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        failed += counts.failed;
        if *kind == TaskKind::GatewaySend {
            sent = counts.done;
        }
        stages.push((
            name.to_string(),
            ms,
            queue.queue_ms(i),
            queue.commits(i),
            counts.done,
        ));
    }
    let seconds = start.elapsed().as_secs_f64();
    let cpu1 = cpu_self();
    let mut lat = queue.latencies();
    lat.sort_unstable();
    let queue_mb =
        std::fs::metadata(queue.inner.path()).map_or(0.0, |m| m.len() as f64 / (1 << 20) as f64);
    Ok(FerryResult {
        messages: sent,
        failed,
        seconds,
        stages,
        p50_ms: percentile(&lat, 0.50),
        p99_ms: percentile(&lat, 0.99),
        peak_rss_mb: peak_rss_mb(),
        queue_mb,
        startup_ms,
        cpu_user_s: cpu1.0 - cpu0.0,
        cpu_system_s: cpu1.1 - cpu0.1,
    })
}

/// Put `count` orders (numbers `first..first+count`) straight into the
/// queue of the configuration's data directory, Ready for inbound
/// processing on `orders-in`, as gateway receive would have queued them.
pub fn prequeue(data_dir: &Path, seed: u64, first: u64, count: u64, size: usize) -> Result<()> {
    let queue = RedbQueue::open(data_dir)?;
    let mut rng = orders::Rng::new(seed ^ first);
    let mut n = first;
    let end = first + count;
    while n < end {
        let mut tx = Transaction::new();
        let upto = (n + 5_000).min(end);
        for i in n..upto {
            let env = orders::order(&mut rng, seed, i, size, None);
            tx.insert(NewMessage {
                direction: Direction::Inbound,
                port: "orders-in".into(),
                status: Status::Ready,
                name: format!("order-{i:08}.xml"),
                position: 0,
                message_id: env.header.message_id.clone(),
                action: env.header.action.clone(),
                conversation_id: None,
                batch_id: None,
                request_message_id: None,
                content: env.to_xml(),
                error: None,
            });
        }
        queue.commit(tx)?;
        n = upto;
    }
    Ok(())
}

/// How long `f` took.
pub fn time<R>(f: impl FnOnce() -> R) -> (R, Duration) {
    let t = Instant::now();
    let r = f();
    (r, t.elapsed())
}
