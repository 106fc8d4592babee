//! The parallel engine: inbound processing of a port with "process requests
//! in parallel" on.
//!
//! - At most `max_parallel` messages of the port are In process at once (AIF's
//!   `MaximumInboundParallelMessages`, default 1000): the dispatcher claims
//!   only as many as there are free places, and a place is freed when the
//!   message's result is committed.
//! - Plugin calls run on `workers` threads (default: one per core), never on
//!   the dispatcher; each worker has its own sandboxes, reused across
//!   messages and recycled after a trap.
//! - Conversations: messages with the same `ConversationId` (a batch's members
//!   without one share the batch's id) are pinned to one worker, chosen by a
//!   hash of the conversation, and queued to it in the queue's order (file
//!   name, then position). A worker handles its messages one at a time in
//!   arrival order, so a conversation is processed one message at a time, in
//!   file-name order, while other conversations and conversation-less
//!   messages run on the other workers.
//! - Results are committed by the dispatcher in groups of up to
//!   `group_commit`, as soon as the group is full, every message in flight
//!   is back, or no further result came for 2 ms. A
//!   crash loses no committed work: uncommitted messages are In process and
//!   go back to Ready at the next start; because a conversation's messages
//!   are claimed and committed in order, the next run resumes it in order.

use std::collections::HashSet;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender, select, unbounded};

use crate::config::PortConfig;
use crate::queue::{QueueError, QueuedMessage, Transaction};
use crate::services::batch::{self, BatchGuard, Outcome, Settled, Settler};
use crate::services::inbound::{commit_group, forget, handle, release_waiting};
use crate::services::{Gateway, Live, Sandboxes, TaskCounts};

/// How long the dispatcher waits for one more result before it commits
/// what it has: one durable commit costs about a millisecond, so gathering
/// results for up to this long makes commits far fewer under load while a
/// lone message waits at most this much longer.
const GATHER: std::time::Duration = std::time::Duration::from_millis(2);

/// The conversation a message belongs to, if any.
fn conversation(msg: &QueuedMessage) -> Option<&str> {
    msg.conversation_id.as_deref().or(msg.batch_id.as_deref())
}

/// The worker a conversation is pinned to.
fn worker_for(conversation: &str, workers: usize) -> usize {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    conversation.hash(&mut h);
    (h.finish() % workers as u64) as usize
}

type Result_ = (QueuedMessage, Result<Outcome, QueueError>);

#[allow(clippy::too_many_arguments)]
fn worker(
    gw: &Gateway,
    port: &PortConfig,
    mut sandboxes: Sandboxes,
    pinned: Receiver<QueuedMessage>,
    shared: Receiver<QueuedMessage>,
    results: Sender<Result_>,
    seen: &Mutex<HashSet<String>>,
    guard: &BatchGuard,
) {
    let never = crossbeam_channel::never::<QueuedMessage>();
    let (mut pinned_open, mut shared_open) = (true, true);
    while pinned_open || shared_open {
        // Pinned (conversation) messages first: they may be waited for.
        let msg = match pinned.try_recv() {
            Ok(m) => m,
            Err(_) => select! {
                recv(if pinned_open { &pinned } else { &never }) -> m => match m {
                    Ok(m) => m,
                    Err(_) => { pinned_open = false; continue; }
                },
                recv(if shared_open { &shared } else { &never }) -> m => match m {
                    Ok(m) => m,
                    Err(_) => { shared_open = false; continue; }
                },
            },
        };
        let outcome = handle(gw, port, &mut sandboxes, &msg, seen, guard);
        if results.send((msg, outcome)).is_err() {
            return;
        }
    }
}

/// Process the Ready inbound messages of parallel port `port` received up
/// to now.
pub fn run_parallel(
    gw: &Gateway,
    port: &PortConfig,
    live: Arc<Live>,
    stop: &dyn Fn() -> bool,
) -> Result<TaskCounts, QueueError> {
    let workers = gw.config().workers.max(1);
    let cap = port.max_parallel.max(1);
    let snapshot = gw.queue.last_key()?;
    let seen = Mutex::new(HashSet::new());
    let guard = BatchGuard::new();
    let (shared_tx, shared_rx) = unbounded::<QueuedMessage>();
    let pinned: Vec<(Sender<QueuedMessage>, Receiver<QueuedMessage>)> =
        (0..workers).map(|_| unbounded()).collect();
    let (results_tx, results_rx) = unbounded::<Result_>();

    std::thread::scope(|scope| {
        for (i, (_, rx)) in pinned.iter().enumerate() {
            let (rx, shared, results, seen, guard) = (
                rx.clone(),
                shared_rx.clone(),
                results_tx.clone(),
                &seen,
                &guard,
            );
            let sandboxes = Sandboxes::for_task(live.clone());
            std::thread::Builder::new()
                .name(format!("ferry-worker-{}-{i}", port.name))
                .spawn_scoped(scope, move || {
                    worker(gw, port, sandboxes, rx, shared, results, seen, guard)
                })
                .expect("cannot start a worker thread");
        }
        drop(results_tx);
        let result = dispatch(
            gw,
            port,
            cap,
            snapshot,
            stop,
            &shared_tx,
            &pinned,
            &results_rx,
            &seen,
        );
        // Closing the channels ends the workers.
        drop(shared_tx);
        drop(pinned);
        result
    })
}

#[allow(clippy::too_many_arguments)]
fn dispatch(
    gw: &Gateway,
    port: &PortConfig,
    cap: usize,
    snapshot: u64,
    stop: &dyn Fn() -> bool,
    shared: &Sender<QueuedMessage>,
    pinned: &[(Sender<QueuedMessage>, Receiver<QueuedMessage>)],
    results: &Receiver<Result_>,
    seen: &Mutex<HashSet<String>>,
) -> Result<TaskCounts, QueueError> {
    let mut counts = TaskCounts::default();
    let mut settler = Settler::default();
    let mut waiting = Vec::new();
    let mut in_flight = 0usize;
    let mut exhausted = false;
    let mut failure: Option<QueueError> = None;
    loop {
        if !exhausted && failure.is_none() && !stop() && in_flight < cap {
            let group = match batch::claim(gw, port, cap - in_flight, snapshot) {
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
                let sent = match conversation(&msg) {
                    Some(c) => pinned[worker_for(c, pinned.len())].0.send(msg),
                    None => shared.send(msg),
                };
                sent.expect("workers outlive the dispatcher");
            }
        }
        if in_flight == 0 {
            break;
        }
        // Wait for a result, then gather more for one commit: until the
        // group is full, every message in flight is back, or none came for
        // GATHER (so a lone message is not held up).
        let mut done = vec![
            results
                .recv()
                .expect("a worker is alive while messages are in flight"),
        ];
        let group_commit = gw.config().group_commit;
        while done.len() < group_commit && done.len() < in_flight {
            match results.recv_timeout(GATHER) {
                Ok(r) => done.push(r),
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
        if !settled.keys.is_empty()
            && let Err(e) = commit_group(gw, &settled.keys, settled.changes)
        {
            failure = Some(e);
        }
    }
    release_waiting(gw, port, &waiting);
    match failure {
        Some(e) => Err(e),
        None => Ok(counts),
    }
}
