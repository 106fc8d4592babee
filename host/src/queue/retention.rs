//! Retention: how long the queue keeps what it logs — the message log
//! (duplicate detection), the document history, the exception log and the
//! audit log — and the pruning of what is older, a bounded step at a time
//! ([`super::QueueManager::prune`]).
//!
//! **What is never pruned.** Whatever is about a message still in the
//! queue: its history (every version of every `MessageId` one of its
//! versions names), its exceptions, and the audit entries that name it.
//! They go once the message has left the queue and they are old enough.
//!
//! **Duplicate detection.** A `MessageId` pruned from the message log is no
//! longer known as processed: the same `MessageId` received again after
//! [`Retention::message_log`] is processed again. The window of duplicate
//! detection is that age.
//!
//! Nothing here names a storage type: a backend implements `prune` with
//! its own statements (SQL: `DELETE … WHERE time < $cutoff AND key >
//! $after … LIMIT $n`), resuming after the [`PruneCursor`]'s position.

use serde::{Deserialize, Serialize};

/// How long each log is kept (`None`: for ever).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// The message log's entries older than this (ms) are pruned: the
    /// window of duplicate detection.
    pub message_log: Option<u64>,
    /// A `MessageId`'s history is pruned when its newest version is older
    /// than this (ms) and no message in the queue has it.
    pub history: Option<u64>,
    /// Exceptions older than this (ms) are pruned.
    pub exceptions: Option<u64>,
    /// At most this many exceptions are kept (the oldest go first).
    pub exceptions_max: Option<u64>,
    /// Audit entries older than this (ms) are pruned.
    pub audit: Option<u64>,
    /// At most this many audit entries are kept (the oldest go first).
    pub audit_max: Option<u64>,
}

const DAY_MS: u64 = 86_400_000;

impl Default for Retention {
    /// 30 days of message log, history and exceptions, at most 100,000
    /// exceptions; a year of audit log.
    fn default() -> Self {
        Retention {
            message_log: Some(30 * DAY_MS),
            history: Some(30 * DAY_MS),
            exceptions: Some(30 * DAY_MS),
            exceptions_max: Some(100_000),
            audit: Some(365 * DAY_MS),
            audit_max: None,
        }
    }
}

impl Retention {
    /// Keeps everything (no pruning).
    pub const FOREVER: Retention = Retention {
        message_log: None,
        history: None,
        exceptions: None,
        exceptions_max: None,
        audit: None,
        audit_max: None,
    };

    /// Whether anything is ever pruned.
    pub fn prunes(&self) -> bool {
        *self != Retention::FOREVER
    }
}

/// Which log a pruning pass is at.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum PruneTable {
    /// The message log (by `MessageId`).
    #[default]
    MessageLog,
    /// The history (by `MessageId`, then sequence).
    History,
    /// The exception log (by id).
    Exceptions,
    /// The audit log (by id).
    Audit,
    /// The pass is over.
    Done,
}

/// Where a pruning pass is: the log, and the last record looked at in it.
/// Start a pass with `PruneCursor::default()`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PruneCursor {
    /// The log.
    pub table: PruneTable,
    /// The last `MessageId` looked at (message log, history).
    pub after_text: Option<String>,
    /// The last id looked at (exceptions, audit log).
    pub after_id: Option<u64>,
}

impl PruneCursor {
    /// Whether the pass is over.
    pub fn done(&self) -> bool {
        self.table == PruneTable::Done
    }

    /// Moves past the logs `policy` keeps for ever (nothing to prune in
    /// them), to the next one it prunes or to the end.
    pub fn skip_kept(&mut self, policy: &Retention) {
        let kept = |t: PruneTable| match t {
            PruneTable::MessageLog => policy.message_log.is_none(),
            PruneTable::History => policy.history.is_none(),
            PruneTable::Exceptions => {
                policy.exceptions.is_none() && policy.exceptions_max.is_none()
            }
            PruneTable::Audit => policy.audit.is_none() && policy.audit_max.is_none(),
            PruneTable::Done => false,
        };
        while kept(self.table) {
            self.next_table();
        }
    }

    /// Moves on to the next log.
    pub fn next_table(&mut self) {
        self.table = match self.table {
            PruneTable::MessageLog => PruneTable::History,
            PruneTable::History => PruneTable::Exceptions,
            PruneTable::Exceptions => PruneTable::Audit,
            PruneTable::Audit | PruneTable::Done => PruneTable::Done,
        };
        self.after_text = None;
        self.after_id = None;
    }
}

/// What pruning removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pruned {
    /// Message log entries.
    pub message_log: u64,
    /// History versions.
    pub history: u64,
    /// Exceptions.
    pub exceptions: u64,
    /// Audit entries.
    pub audit: u64,
}

impl Pruned {
    /// Adds another step's.
    pub fn add(&mut self, other: Pruned) {
        self.message_log += other.message_log;
        self.history += other.history;
        self.exceptions += other.exceptions;
        self.audit += other.audit;
    }

    /// How many records in all.
    pub fn total(&self) -> u64 {
        self.message_log + self.history + self.exceptions + self.audit
    }
}

/// Records one pruning transaction looks at, at most.
pub const STEP: usize = 500;

/// The pause between two steps of a pass, so the services' transactions
/// are never held back by more than one small step.
pub const PAUSE: std::time::Duration = std::time::Duration::from_millis(20);

/// One pruning pass over every log, a step at a time, until it is over or
/// `stopped()`.
pub fn pass(
    queue: &dyn super::QueueManager,
    policy: &Retention,
    now_ms: u64,
    stopped: &dyn Fn() -> bool,
) -> Result<Pruned, super::QueueError> {
    let mut cursor = PruneCursor::default();
    let mut total = Pruned::default();
    while !cursor.done() && !stopped() {
        let step = queue.prune(policy, now_ms, &mut cursor, STEP)?;
        total.add(step);
        if step.total() > 0 {
            std::thread::sleep(PAUSE);
        }
    }
    Ok(total)
}

/// The background pruning of `ferry run`: a pass every `every`, on a
/// thread of its own. Dropping it stops it (within one step).
pub struct Pruner {
    stop: std::sync::Arc<(std::sync::Mutex<bool>, std::sync::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Pruner {
    /// Starts pruning `queue` as `policy` says (`None` when it keeps
    /// everything: no thread then).
    pub fn start(
        queue: std::sync::Arc<dyn super::QueueManager>,
        policy: Retention,
        every: std::time::Duration,
    ) -> std::io::Result<Option<Pruner>> {
        if !policy.prunes() {
            return Ok(None);
        }
        let stop = std::sync::Arc::new((std::sync::Mutex::new(false), std::sync::Condvar::new()));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ferry-retention".into())
            .spawn(move || {
                let (lock, cv) = &*flag;
                let stopped = || *lock.lock().unwrap_or_else(|e| e.into_inner());
                loop {
                    // Wait `every` (or until stopped).
                    let guard = lock.lock().unwrap_or_else(|e| e.into_inner());
                    let (guard, _) = cv
                        .wait_timeout_while(guard, every, |s| !*s)
                        .unwrap_or_else(|e| e.into_inner());
                    if *guard {
                        return;
                    }
                    drop(guard);
                    let now = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
                    match pass(queue.as_ref(), &policy, now, &stopped) {
                        Ok(p) => {
                            for (log, n) in [
                                ("message_log", p.message_log),
                                ("history", p.history),
                                ("exceptions", p.exceptions),
                                ("audit", p.audit),
                            ] {
                                if n > 0 {
                                    metrics::counter!("ferry_retention_pruned_total", "log" => log)
                                        .increment(n);
                                }
                            }
                            if p.total() > 0 {
                                tracing::info!(
                                    message_log = p.message_log,
                                    history = p.history,
                                    exceptions = p.exceptions,
                                    audit = p.audit,
                                    "retention: pruned old records"
                                );
                            }
                        }
                        Err(e) => {
                            tracing::warn!("retention: pruning failed, tried again later: {e}")
                        }
                    }
                }
            })?;
        Ok(Some(Pruner {
            stop,
            thread: Some(thread),
        }))
    }
}

impl Drop for Pruner {
    fn drop(&mut self) {
        let (lock, cv) = &*self.stop;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
