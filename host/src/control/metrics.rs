//! Metrics in Prometheus' text format at `GET /metrics` (a token of either
//! role), through the `metrics` facade and its Prometheus exporter — whose
//! own listener is off: the control API serves them.
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `ferry_messages_received_total` | counter | `port` — queued by gateway receive |
//! | `ferry_messages_queued_total` | counter | `direction`, `port`, `status` — every message put in the queue |
//! | `ferry_messages_processed_total` | counter | `direction`, `port`, `outcome` (`done`, `error`, `returned`) — taken by a service and finished |
//! | `ferry_messages_sent_total` | counter | `port` — sent by gateway send |
//! | `ferry_processing_duration_seconds` | histogram | `stage` (`inbound`, `outbound`, `send`) — from taking a message to committing its result |
//! | `ferry_commit_duration_seconds` | histogram | — one queue transaction |
//! | `ferry_commit_changes` | histogram | — changes in one transaction (its size) |
//! | `ferry_exceptions_total` | counter | `port`, `stage` |
//! | `ferry_plugin_calls_total` | counter | `plugin`, `function`, `outcome` (`ok`, `rejected`, `timeout`, …) |
//! | `ferry_plugin_call_duration_seconds` | histogram | `plugin`, `function` |
//! | `ferry_plugin_traps_total` | counter | `plugin`, `kind` — calls that discarded the instance |
//! | `ferry_queue_depth` | gauge | `direction`, `port`, `status` — at the scrape |
//! | `ferry_queue_oldest_message_age_seconds` | gauge | `status` — at the scrape |
//! | `ferry_retention_pruned_total` | counter | `log` (`message_log`, `history`, `exceptions`, `audit`) — records pruned (`queue/retention.rs`) |
//!
//! No label ever holds a `MessageId`, a `ConversationId` or a file name:
//! labels are the configuration's names and fixed words, so the number of
//! series stays bounded.
//!
//! The queue's counters come from [`MeteredQueue`], which wraps the queue
//! the services use and watches what they commit: a claimed message is
//! remembered (port, direction, when) until the commit that finishes it.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::queue::{
    Change, ClaimRequest, Direction, Exception, ExceptionFilter, Filter, GatewayQueue,
    HistoryEntry, Lease, MessageKey, QueueError, QueueManager, QueuedMessage, RecoveryReport,
    Status, Transaction,
};

/// Seconds: from a millisecond to two minutes.
const TIME_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
];

/// Changes per transaction.
const SIZE_BUCKETS: &[f64] = &[
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0,
];

/// The process's recorder (installed once; `None` if another recorder was
/// installed first).
pub fn install() -> Option<PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let built = PrometheusBuilder::new()
                .set_buckets(TIME_BUCKETS)
                .and_then(|b| {
                    b.set_buckets_for_metric(
                        Matcher::Full("ferry_commit_changes".into()),
                        SIZE_BUCKETS,
                    )
                })
                .and_then(|b| b.install_recorder());
            match built {
                Ok(h) => Some(h),
                Err(e) => {
                    tracing::warn!("metrics are off: {e}");
                    None
                }
            }
        })
        .clone()
}

fn direction_label(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::OutboundRequest => "outbound-request",
        Direction::Outbound => "outbound",
    }
}

fn stage_label(d: Direction) -> &'static str {
    match d {
        Direction::Inbound => "inbound",
        Direction::OutboundRequest => "outbound",
        Direction::Outbound => "send",
    }
}

/// The queue gauges, set from the queue at each scrape; label sets that
/// have gone are set to zero (a port's Error count falls to 0, not stays).
pub struct Gauges {
    seen: Mutex<BTreeSet<(Direction, String, Status)>>,
    seen_oldest: Mutex<BTreeSet<Status>>,
}

impl Default for Gauges {
    fn default() -> Self {
        Gauges {
            seen: Mutex::new(BTreeSet::new()),
            seen_oldest: Mutex::new(BTreeSet::new()),
        }
    }
}

impl Gauges {
    /// Sets the gauges from `queue` at `now_ms`.
    pub fn update(&self, queue: &dyn QueueManager, now_ms: u64) -> Result<(), QueueError> {
        let counts = queue.counts()?;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let now: BTreeSet<_> = counts
            .iter()
            .map(|(d, p, s, _)| (*d, p.clone(), *s))
            .collect();
        for (d, p, s) in seen.difference(&now) {
            metrics::gauge!("ferry_queue_depth", "direction" => direction_label(*d), "port" => p.clone(), "status" => s.kebab())
                .set(0.0);
        }
        for (d, p, s, n) in &counts {
            metrics::gauge!("ferry_queue_depth", "direction" => direction_label(*d), "port" => p.clone(), "status" => s.kebab())
                .set(*n as f64);
        }
        *seen = now;
        let oldest = queue.oldest()?;
        let mut seen = self.seen_oldest.lock().unwrap_or_else(|e| e.into_inner());
        let now_set: BTreeSet<_> = oldest.iter().map(|(s, _, _)| *s).collect();
        for s in seen.difference(&now_set) {
            metrics::gauge!("ferry_queue_oldest_message_age_seconds", "status" => s.kebab())
                .set(0.0);
        }
        for (s, _, created) in &oldest {
            metrics::gauge!("ferry_queue_oldest_message_age_seconds", "status" => s.kebab())
                .set(now_ms.saturating_sub(*created) as f64 / 1000.0);
        }
        *seen = now_set;
        Ok(())
    }
}

/// Messages taken by a service and finished (any outcome but returned)
/// since the host started: the console's messages per second.
static FINISHED: AtomicU64 = AtomicU64::new(0);

/// How many messages the services have finished since the host started
/// (those counted by `ferry_messages_processed_total` with an outcome of
/// `done` or `error`).
pub fn finished_total() -> u64 {
    FINISHED.load(Ordering::Relaxed)
}

/// A claimed message: which way, which port, since when.
type Claimed = (Direction, String, Instant);

/// The queue the services use, counting what they do (see the module
/// documentation). Everything is passed on unchanged.
pub struct MeteredQueue {
    inner: Arc<dyn GatewayQueue>,
    claimed: Mutex<HashMap<MessageKey, Claimed>>,
}

/// A bound on remembered claims: a leak (a claim never finished in this
/// process) cannot grow without end.
const MAX_CLAIMED: usize = 1 << 20;

impl MeteredQueue {
    /// Wraps `inner`.
    pub fn new(inner: Arc<dyn GatewayQueue>) -> MeteredQueue {
        MeteredQueue {
            inner,
            claimed: Mutex::new(HashMap::new()),
        }
    }

    fn claims(&self) -> std::sync::MutexGuard<'_, HashMap<MessageKey, Claimed>> {
        self.claimed.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// What a committed transaction did, counted.
    fn observe(&self, events: Vec<Event>, size: usize, elapsed: std::time::Duration) {
        metrics::histogram!("ferry_commit_duration_seconds").record(elapsed.as_secs_f64());
        metrics::histogram!("ferry_commit_changes").record(size as f64);
        let mut claimed = self.claims();
        let mut finish = |key: MessageKey, outcome: &'static str| {
            if let Some((d, port, since)) = claimed.remove(&key) {
                if outcome != "returned" {
                    FINISHED.fetch_add(1, Ordering::Relaxed);
                }
                metrics::counter!("ferry_messages_processed_total", "direction" => direction_label(d), "port" => port.clone(), "outcome" => outcome)
                    .increment(1);
                metrics::histogram!("ferry_processing_duration_seconds", "stage" => stage_label(d))
                    .record(since.elapsed().as_secs_f64());
                if d == Direction::Outbound && outcome == "done" {
                    metrics::counter!("ferry_messages_sent_total", "port" => port).increment(1);
                }
            }
        };
        for e in events {
            match e {
                Event::Inserted(direction, port, status) => {
                    if direction == Direction::Inbound {
                        metrics::counter!("ferry_messages_received_total", "port" => port.clone())
                            .increment(1);
                    }
                    metrics::counter!("ferry_messages_queued_total", "direction" => direction_label(direction), "port" => port, "status" => status.kebab())
                        .increment(1);
                }
                Event::Removed(key) => finish(key, "done"),
                Event::Failed(key) => finish(key, "error"),
                Event::Returned(key) => finish(key, "returned"),
                Event::Exception(port, stage) => {
                    metrics::counter!("ferry_exceptions_total", "port" => port, "stage" => stage)
                        .increment(1);
                }
            }
        }
    }
}

/// What one change means for the metrics (taken before the commit, without
/// copying any content).
enum Event {
    Inserted(Direction, String, Status),
    Removed(MessageKey),
    Failed(MessageKey),
    Returned(MessageKey),
    Exception(String, String),
}

fn events(changes: &[Change]) -> Vec<Event> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::Insert(m) => Some(Event::Inserted(m.direction, m.port.clone(), m.status)),
            Change::Remove { key } => Some(Event::Removed(*key)),
            Change::SetStatus { key, status, .. } => match status {
                Status::Error | Status::MalformedXml => Some(Event::Failed(*key)),
                Status::Ready | Status::Hold => Some(Event::Returned(*key)),
                _ => None,
            },
            Change::Exception(e) | Change::InsertedException(e) => {
                Some(Event::Exception(e.port.clone(), e.stage.clone()))
            }
            _ => None,
        })
        .collect()
}

impl GatewayQueue for MeteredQueue {
    fn commit(&self, tx: Transaction) -> Result<Vec<MessageKey>, QueueError> {
        let events = events(tx.changes());
        let size = tx.len();
        let started = Instant::now();
        let keys = self.inner.commit(tx)?;
        self.observe(events, size, started.elapsed());
        Ok(keys)
    }

    fn claim(
        &self,
        lease: &Lease,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        let got = self.inner.claim(lease, request)?;
        let (direction, port) = (request.direction, request.port);
        if !got.is_empty() {
            let now = Instant::now();
            let mut claimed = self.claims();
            if claimed.len() + got.len() > MAX_CLAIMED {
                claimed.clear();
            }
            for m in &got {
                claimed.insert(m.key, (direction, port.to_string(), now));
            }
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
        self.inner.ready(direction, port, limit, max_key)
    }

    fn last_key(&self) -> Result<MessageKey, QueueError> {
        self.inner.last_key()
    }

    fn get(&self, key: MessageKey) -> Result<Option<QueuedMessage>, QueueError> {
        self.inner.get(key)
    }

    fn list(&self, filter: &Filter) -> Result<Vec<QueuedMessage>, QueueError> {
        self.inner.list(filter)
    }

    fn counts(&self) -> Result<Vec<(Direction, String, Status, u64)>, QueueError> {
        self.inner.counts()
    }

    fn is_processed(&self, message_id: &str) -> Result<bool, QueueError> {
        self.inner.is_processed(message_id)
    }

    fn are_processed(&self, message_ids: &[&str]) -> Result<Vec<bool>, QueueError> {
        self.inner.are_processed(message_ids)
    }

    fn exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<Exception>, QueueError> {
        self.inner.exceptions(filter)
    }

    fn history(&self, message_id: &str) -> Result<Vec<HistoryEntry>, QueueError> {
        self.inner.history(message_id)
    }

    fn recover(&self, owner: &str) -> Result<(Lease, RecoveryReport), QueueError> {
        self.inner.recover(owner)
    }

    fn renew(&self, lease: &Lease) -> Result<(), QueueError> {
        self.inner.renew(lease)
    }

    fn lead(&self, lease: &Lease, task: &str, port: &str) -> Result<bool, QueueError> {
        self.inner.lead(lease, task, port)
    }

    fn work_signal(&self) -> &crate::queue::WorkSignal {
        self.inner.work_signal()
    }

    fn foreign_work_signal(&self) -> Option<&crate::queue::WorkSignal> {
        self.inner.foreign_work_signal()
    }

    fn hold(&self, key: MessageKey) -> Result<(), QueueError> {
        self.inner.hold(key)
    }

    fn release(&self, key: MessageKey) -> Result<(), QueueError> {
        self.inner.release(key)
    }

    fn delete(&self, key: MessageKey) -> Result<(), QueueError> {
        self.inner.delete(key)
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), QueueError> {
        self.inner.put_state(key, value)
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError> {
        self.inner.get_state(key)
    }

    fn delete_state(&self, key: &str) -> Result<bool, QueueError> {
        self.inner.delete_state(key)
    }

    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError> {
        self.inner.state_keys(prefix)
    }
}
