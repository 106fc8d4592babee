//! The engine of inbound processing: a dispatcher that claims and commits,
//! and workers that run the plugins. On a port with "process requests in
//! parallel" on:
//!
//! - At most `max_parallel` messages of the port are In process at once (AIF's
//!   `MaximumInboundParallelMessages`, default 1000): the dispatcher claims
//!   only as many as there are free places, and a place is freed when the
//!   message's result is committed.
//! - Plugin calls run on `workers` threads (default: one per core), never on
//!   the dispatcher; each worker has its own sandboxes, reused across
//!   messages and recycled after a trap.
//! - Conversations: messages with the same `ConversationId` (a batch's members
//!   without one share the batch's id) form an ordered unit. The dispatcher
//!   keeps one FIFO per unit, in the queue's order (file name, then
//!   position), and hands a unit's next message to the workers only when its
//!   previous one is back: a conversation is processed one message at a
//!   time, in file-name order, by whichever worker is free, while other
//!   conversations and conversation-less messages run on the other workers.
//!   A unit's messages go ahead of conversation-less ones, and one slow
//!   conversation holds up only itself (no worker is tied to it).
//! - Results are committed by the dispatcher in groups of up to
//!   `group_commit`, as soon as the group is full, every message in flight
//!   is back, or no further result came for 2 ms. A
//!   crash loses no committed work: uncommitted messages are In process and
//!   go back to Ready at the next start; because a conversation's messages
//!   are claimed and committed in order, the next run resumes it in order.
//!
//! A sequential port has one worker, which takes its messages from one FIFO
//! in the queue's order (file name, then position) and processes them one
//! at a time, as AIF's sequential processing asks, while the dispatcher
//! commits the results of earlier ones — the plugin work and the queue's
//! work overlap. The dispatcher claims up to two groups (`group_commit`)
//! ahead.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Mutex;

use crossbeam_channel::{Receiver, Sender, select, unbounded};

use super::upon_error::{self, BatchGuard, Outcome, Settled, Settler};
use super::{commit_group, forget, handle_batch, release_waiting};
use crate::config::PortConfig;
use crate::failpoint;
use crate::queue::{QueueError, QueuedMessage, Transaction};
use crate::services::{Gateway, Sandboxes, TaskCounts};

/// How long the dispatcher waits for one more result before it commits
/// what it has: one durable commit costs about a millisecond, so gathering
/// results for up to this long makes commits far fewer under load while a
/// lone message waits at most this much longer.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// The conversation a message belongs to, if any.
fn conversation(msg: &QueuedMessage) -> Option<&str> {
    msg.conversation()
}

/// The ordered unit a message belongs to on a parallel `port`, if any: its
/// conversation. A sequential port needs none: its one worker takes every
/// message from one FIFO in order (handing them over one at a time would
/// cost two thread wake-ups per message).
fn unit<'m>(port: &PortConfig, msg: &'m QueuedMessage) -> Option<&'m str> {
    if port.parallel {
        conversation(msg)
    } else {
        None
    }
}

/// The ordered units (conversations) with a message at the workers, each
/// with its claimed messages waiting for that one to come back, in claim
/// order.
#[derive(Default)]
struct Units {
    waiting: HashMap<String, VecDeque<QueuedMessage>>,
}

impl Units {
    /// A claimed message of unit `unit`: to the workers now (`Some`) when
    /// the unit has none there, else kept until its turn.
    fn claimed(&mut self, unit: &str, msg: QueuedMessage) -> Option<QueuedMessage> {
        match self.waiting.get_mut(unit) {
            Some(queue) => {
                queue.push_back(msg);
                None
            }
            None => {
                self.waiting.insert(unit.to_string(), VecDeque::new());
                Some(msg)
            }
        }
    }

    /// A message of `unit` came back: the unit's next message, if any.
    fn returned(&mut self, unit: &str) -> Option<QueuedMessage> {
        let queue = self.waiting.get_mut(unit)?;
        let next = queue.pop_front();
        if next.is_none() {
            self.waiting.remove(unit);
        }
        next
    }
}

type Result_ = (QueuedMessage, Result<Outcome, QueueError>);

/// The most messages a worker hands its plugins in one batch.
const MAX_BATCH: usize = 64;

/// The next message for a worker, waiting for one: a conversation's first
/// (later ones of the same conversation, and maybe a rollback batch's
/// result, wait for it), else any. `None` when both channels are closed.
fn next_message(
    units: &Receiver<QueuedMessage>,
    shared: &Receiver<QueuedMessage>,
    open: &mut (bool, bool),
) -> Option<QueuedMessage> {
    let never = crossbeam_channel::never::<QueuedMessage>();
    if let Ok(m) = units.try_recv() {
        return Some(m);
    }
    while open.0 || open.1 {
        select! {
            recv(if open.0 { units } else { &never }) -> m => match m {
                Ok(m) => return Some(m),
                Err(_) => open.0 = false,
            },
            recv(if open.1 { shared } else { &never }) -> m => match m {
                Ok(m) => return Some(m),
                Err(_) => open.1 = false,
            },
        }
    }
    None
}

/// How many messages a worker takes into its next batch: its share of
/// what is waiting (so the other workers get theirs), at most
/// [`MAX_BATCH`].
fn batch_size(waiting: usize, workers: usize) -> usize {
    waiting.div_ceil(workers.max(1)).clamp(1, MAX_BATCH)
}

#[allow(clippy::too_many_arguments)]
fn worker(
    gw: &Gateway,
    port: &PortConfig,
    workers: usize,
    sandboxes: &mut Sandboxes,
    units: Receiver<QueuedMessage>,
    shared: Receiver<QueuedMessage>,
    results: Sender<Result_>,
    seen: &Mutex<HashSet<String>>,
    guard: &BatchGuard,
) {
    let mut open = (true, true);
    // A message taken that could not join the batch before: the next
    // batch's first.
    let mut held: Option<QueuedMessage> = None;
    loop {
        let Some(first) = held
            .take()
            .or_else(|| next_message(&units, &shared, &mut open))
        else {
            return;
        };
        let take = batch_size(1 + units.len() + shared.len(), workers);
        let mut batch = vec![first];
        while batch.len() < take {
            let Ok(m) = units.try_recv().or_else(|_| shared.try_recv()) else {
                break;
            };
            if upon_error::shares_guarded_batch(port, &batch, &m) {
                held = Some(m);
                break;
            }
            batch.push(m);
        }
        let outcomes = handle_batch(gw, port, sandboxes, &batch, seen, guard);
        for result in batch.into_iter().zip(outcomes) {
            if results.send(result).is_err() {
                return;
            }
        }
    }
}

/// Process the Ready inbound messages of `port` received up to now, on
/// worker sandboxes lent by `sandboxes` (and given back at the end).
pub fn run(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    stop: &dyn Fn() -> bool,
) -> Result<TaskCounts, QueueError> {
    let (workers, cap) = if port.parallel {
        (gw.config().workers.max(1), port.max_parallel.max(1))
    } else {
        (1, 2 * gw.config().group_commit.max(1))
    };
    let snapshot = gw.queue.last_key()?;
    let seen = Mutex::new(HashSet::new());
    let guard = BatchGuard::new();
    let (shared_tx, shared_rx) = unbounded::<QueuedMessage>();
    let (units_tx, units_rx) = unbounded::<QueuedMessage>();
    let (results_tx, results_rx) = unbounded::<Result_>();
    let mut lent = sandboxes.lend(gw, workers);
    for worker in &mut lent {
        worker.keep_only(&port.name);
    }

    let (result, back) = std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(workers);
        for (i, mut mine) in lent.into_iter().enumerate() {
            let (rx, shared, results, seen, guard) = (
                units_rx.clone(),
                shared_rx.clone(),
                results_tx.clone(),
                &seen,
                &guard,
            );
            let handle = std::thread::Builder::new()
                .name(format!("ferry-worker-{}-{i}", port.name))
                .spawn_scoped(scope, move || {
                    worker(
                        gw, port, workers, &mut mine, rx, shared, results, seen, guard,
                    );
                    mine
                })
                .expect("cannot start a worker thread");
            handles.push(handle);
        }
        drop(results_tx);
        let result = dispatch(
            gw,
            port,
            cap,
            snapshot,
            stop,
            &shared_tx,
            &units_tx,
            &results_rx,
            &seen,
        );
        // Closing the channels ends the workers.
        drop(shared_tx);
        drop(units_tx);
        let back: Vec<Sandboxes> = handles.into_iter().filter_map(|h| h.join().ok()).collect();
        (result, back)
    });
    sandboxes.give_back(back);
    result
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    gw: &Gateway,
    port: &PortConfig,
    cap: usize,
    snapshot: u64,
    stop: &dyn Fn() -> bool,
    shared: &Sender<QueuedMessage>,
    to_units: &Sender<QueuedMessage>,
    results: &Receiver<Result_>,
    seen: &Mutex<HashSet<String>>,
) -> Result<TaskCounts, QueueError> {
    let mut counts = TaskCounts::default();
    let mut settler = Settler::default();
    let mut waiting = Vec::new();
    let mut in_flight = 0usize;
    let mut exhausted = false;
    let mut failure: Option<QueueError> = None;
    let mut units = Units::default();
    let send = |tx: &Sender<QueuedMessage>, msg| {
        tx.send(msg).expect("workers outlive the dispatcher");
    };
    loop {
        if !exhausted && failure.is_none() && !stop() && in_flight < cap {
            let group = match upon_error::claim(gw, port, cap - in_flight, snapshot) {
                Ok(g) => g,
                Err(e) => {
                    failure = Some(e);
                    continue;
                }
            };
            if group.is_empty() {
                exhausted = true;
            }
            for msg in group {
                in_flight += 1;
                settler.claimed(port, &msg);
                match unit(port, &msg).map(str::to_string) {
                    Some(c) => {
                        if let Some(m) = units.claimed(&c, msg) {
                            send(to_units, m);
                        }
                    }
                    None => send(shared, msg),
                }
            }
        }
        if in_flight == 0 {
            break;
        }
        // Wait for a result, then gather more for one commit: until the
        // group is full, every message in flight is back, or none came for
        // GATHER (so a lone message is not held up).
        // A unit's next message goes to the workers as soon as its previous
        // one is back.
        let mut back = |r: Result_| {
            if let Some(next) = unit(port, &r.0).and_then(|c| units.returned(c)) {
                send(to_units, next);
            }
            r
        };
        let mut done = vec![back(
            results
                .recv()
                .expect("a worker is alive while messages are in flight"),
        )];
        let group_commit = gw.config().group_commit;
        while done.len() < group_commit && done.len() < in_flight {
            match results.recv_timeout(GATHER) {
                Ok(r) => done.push(back(r)),
                Err(_) => break,
            }
        }
        let mut settled = Settled::default();
        for (msg, outcome) in done {
            let outcome = outcome.unwrap_or_else(|e| {
                // The queue failed under it: it goes back to Ready with the
                // waiting ones, and the run ends with the error.
                failure = Some(e);
                Outcome::Wait {
                    part: Transaction::new(),
                }
            });
            settler.settle(port, &msg, outcome, &mut settled);
        }
        in_flight -= settled.keys.len();
        forget(seen, &settled.undone);
        counts.done += settled.done;
        counts.failed += settled.failed;
        waiting.extend_from_slice(&settled.waiting);
        if !settled.keys.is_empty() {
            failpoint::point("inbound.before-commit");
            match commit_group(gw, &settled.keys, settled.changes) {
                Ok(()) => failpoint::point("inbound.after-commit"),
                Err(e) => failure = Some(e),
            }
        }
    }
    release_waiting(gw, port, &waiting);
    match failure {
        Some(e) => Err(e),
        None => Ok(counts),
    }
}
