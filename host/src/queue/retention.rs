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
    /// At most this many `MessageId`s are kept in the message log (the
    /// oldest go first): the window of duplicate detection is also bounded
    /// by this count.
    pub message_log_max: Option<u64>,
    /// A `MessageId`'s history is pruned when its newest version is older
    /// than this (ms) and no message in the queue has it.
    pub history: Option<u64>,
    /// The histories of at most this many `MessageId`s are kept (those
    /// whose newest version is oldest go first; never one about a message
    /// still in the queue).
    pub history_max: Option<u64>,
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
            message_log_max: None,
            history: Some(30 * DAY_MS),
            history_max: None,
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
        message_log_max: None,
        history: None,
        history_max: None,
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
    /// The message log and the history, keyed by `MessageId` in no order
    /// of time, turn a count limit into a time: what is older than this
    /// (ms) is beyond the count. Worked out when the pass reaches the log
    /// (`None` then: not yet).
    #[serde(default)]
    pub count_cut: Option<u64>,
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
            PruneTable::MessageLog => {
                policy.message_log.is_none() && policy.message_log_max.is_none()
            }
            PruneTable::History => policy.history.is_none() && policy.history_max.is_none(),
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
        self.count_cut = None;
    }

    /// The time before which a log keyed by `MessageId` is pruned: the
    /// older of the age's cutoff and the count's (`count_cut`), `None` if
    /// neither applies. `count_cut` gives the time, or `None` when the log
    /// holds no more than `max`, once per pass of the log.
    pub fn cutoff_by_age_and_count<E>(
        &mut self,
        now_ms: u64,
        age: Option<u64>,
        max: Option<u64>,
        count_cut: impl FnOnce(u64) -> Result<Option<u64>, E>,
    ) -> Result<Option<u64>, E> {
        if let Some(max) = max
            && self.count_cut.is_none()
            && self.after_text.is_none()
        {
            // The start of the log's pass; `Some(0)` when within the count.
            self.count_cut = Some(count_cut(max)?.unwrap_or(0));
        }
        let by_age = age.map(|a| now_ms.saturating_sub(a));
        Ok(match (by_age, self.count_cut.filter(|&c| c > 0)) {
            (Some(a), Some(c)) => Some(a.max(c)),
            (a, c) => a.or(c),
        })
    }
}

/// The time that keeps at most `max` of `times` (newest first): one past
/// the newest of those beyond the count, or `None` when there are no more
/// than `max`. Holds no more than `max + 1` times at once.
pub fn count_cut(times: impl Iterator<Item = u64>, max: u64) -> Option<u64> {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    let keep = usize::try_from(max).unwrap_or(usize::MAX);
    // The newest `max + 1`, the oldest of them on top.
    let mut newest: BinaryHeap<Reverse<u64>> = BinaryHeap::new();
    for t in times {
        if newest.len() <= keep {
            newest.push(Reverse(t));
        } else if newest.peek().is_some_and(|Reverse(o)| t > *o) {
            newest.pop();
            newest.push(Reverse(t));
        }
    }
    if newest.len() <= keep {
        return None;
    }
    newest.peek().map(|Reverse(t)| t.saturating_add(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_count_becomes_the_time_of_the_first_beyond_it() {
        let times = [5, 1, 9, 7, 3];
        assert_eq!(count_cut(times.into_iter(), 5), None);
        assert_eq!(count_cut(times.into_iter(), 9), None);
        // Keep 9 and 7: what is older than 5 + 1 goes.
        assert_eq!(count_cut(times.into_iter(), 2), Some(6));
        assert_eq!(count_cut(times.into_iter(), 4), Some(2));
        // Ties at the boundary go too: never more than the count.
        assert_eq!(count_cut([4, 4, 4, 2].into_iter(), 2), Some(5));
        assert_eq!(count_cut(std::iter::empty(), 1), None);
    }

    #[test]
    fn age_and_count_the_stricter_wins_and_the_count_is_worked_out_once() {
        let mut cursor = PruneCursor::default();
        let asked = std::cell::Cell::new(0);
        let ask = |cut| {
            asked.set(asked.get() + 1);
            Ok::<_, ()>(cut)
        };
        // Age alone.
        assert_eq!(
            cursor.cutoff_by_age_and_count(100, Some(30), None, |_| ask(None)),
            Ok(Some(70))
        );
        // The count cuts later than the age: it wins; asked once a pass.
        assert_eq!(
            cursor.cutoff_by_age_and_count(100, Some(30), Some(3), |_| ask(Some(80))),
            Ok(Some(80))
        );
        cursor.after_text = Some("next".into());
        assert_eq!(
            cursor.cutoff_by_age_and_count(100, Some(30), Some(3), |_| ask(Some(1))),
            Ok(Some(80))
        );
        assert_eq!(asked.get(), 1);
        // Within the count: the age alone; no age: nothing.
        cursor.next_table();
        assert_eq!(
            cursor.cutoff_by_age_and_count(100, Some(30), Some(3), |_| ask(None)),
            Ok(Some(70))
        );
        cursor.next_table();
        assert_eq!(
            cursor.cutoff_by_age_and_count(100, None, Some(3), |_| ask(None)),
            Ok(None)
        );
    }
}
