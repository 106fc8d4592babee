//! Batched requests and the port's upon-error setting.
//!
//! The members of a batch file are queued as separate messages that share
//! the file's `BatchId` (and its name, so they are claimed one after the
//! other, in position order). When a member fails in inbound processing,
//! the port's `upon_error` decides what happens to the others:
//!
//! - **continue**: the failed member goes to Error, the rest proceed.
//! - **halt**: processing of the batch stops at the failed member. Members
//!   already processed stay committed; the failed one is in Error; the rest
//!   stay Ready and *wait*: no occurrence processes them while the failed
//!   member is still in Error. Resubmitting the failed member (or deleting
//!   it) lets the batch go on, in order.
//! - **rollback**: as halt, but the members of the batch processed before
//!   the failure are undone as well: their results (responses, Send API
//!   documents, message-log entries, history) are discarded before they are
//!   committed, so nothing of the batch is sent, and they stay queued and
//!   Ready. When the failed member is resubmitted, the whole batch runs
//!   again from its first member. To make this possible a rollback port
//!   claims a batch whole, so the port's cap may be exceeded by up to one
//!   batch's size.
//!
//! A failed member's batch is remembered in the queue's state area
//! (`batch-stop/<port>/<BatchId>` → the failed member's key), in the same
//! transaction that puts the member in Error, so the rule holds across runs
//! and restarts.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::config::{PortConfig, UponError};
use crate::queue::{
    ClaimRequest, Direction, MessageKey, QueueError, QueuedMessage, Status, Transaction, UnitBy,
};

use super::super::{Gateway, stage};

/// The state-area key remembering that `batch` on `port` stopped.
fn stop_key(port: &str, batch: &str) -> String {
    format!("batch-stop/{port}/{batch}")
}

/// Whether a message's upon-error setting matters: a batch member on a
/// halt or rollback port.
fn guarded<'m>(port: &PortConfig, msg: &'m QueuedMessage) -> Option<&'m str> {
    match port.upon_error {
        UponError::Continue => None,
        UponError::Halt | UponError::Rollback => msg.batch_id.as_deref(),
    }
}

/// Whether `msg` is a guarded batch member of the same batch file as one
/// of `batch`: then it must not join that batch of plugin calls, since
/// whether it waits depends on how its predecessor ends.
pub(crate) fn shares_guarded_batch(
    port: &PortConfig,
    batch: &[QueuedMessage],
    msg: &QueuedMessage,
) -> bool {
    guarded(port, msg).is_some_and(|b| batch.iter().any(|m| guarded(port, m) == Some(b)))
}

/// One run's view of a port's stopped batches. Shared by the run's workers.
pub(crate) struct BatchGuard {
    /// Batches that stopped during this run.
    stopped: Mutex<HashSet<String>>,
}

impl BatchGuard {
    pub fn new() -> BatchGuard {
        BatchGuard {
            stopped: Mutex::new(HashSet::new()),
        }
    }

    /// Whether `msg` must wait instead of being processed: its batch stopped
    /// in this run, or in an earlier one and the failed member is still in
    /// Error (or on Hold). A stale stop (the failed member was deleted) is
    /// cleared in `part`.
    pub fn must_wait(
        &self,
        gw: &Gateway,
        port: &PortConfig,
        msg: &QueuedMessage,
        part: &mut Transaction,
    ) -> Result<bool, QueueError> {
        let Some(batch) = guarded(port, msg) else {
            return Ok(false);
        };
        if self.lock().contains(batch) {
            return Ok(true);
        }
        let key = stop_key(&port.name, batch);
        let Some(failed) = gw.queue.get_state(&key)?.and_then(|v| decode_key(&v)) else {
            return Ok(false);
        };
        if failed == msg.key {
            // The failed member itself, resubmitted: it goes first.
            return Ok(false);
        }
        match gw.queue.get(failed)? {
            Some(m) if !matches!(m.status, Status::Ready | Status::InProcess) => Ok(true),
            Some(_) => Ok(false),
            None => {
                part.delete_state(key);
                Ok(false)
            }
        }
    }

    /// Record the outcome of processing `msg` in `part`: a failure stops its
    /// batch; the success of a batch's failed member (resubmitted) clears
    /// the stop.
    pub fn record(
        &self,
        gw: &Gateway,
        port: &PortConfig,
        msg: &QueuedMessage,
        ok: bool,
        part: &mut Transaction,
    ) -> Result<(), QueueError> {
        let Some(batch) = guarded(port, msg) else {
            return Ok(());
        };
        let key = stop_key(&port.name, batch);
        if !ok {
            self.lock().insert(batch.to_string());
            part.put_state(key, msg.key.to_be_bytes().to_vec());
            if port.upon_error == UponError::Halt {
                part.exception(Gateway::host_exception(
                    &port.name,
                    stage::BATCH,
                    Some(msg.key),
                    Some(&msg.message_id),
                    format!(
                        "batch {batch}: member {} failed; upon-error halt stopped the batch: \
                         the members after it wait until it is resubmitted or deleted",
                        msg.position
                    ),
                ));
            }
        } else if gw.queue.get_state(&key)?.and_then(|v| decode_key(&v)) == Some(msg.key) {
            part.delete_state(key);
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        self.stopped.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn decode_key(v: &[u8]) -> Option<MessageKey> {
    Some(MessageKey::from_be_bytes(v.try_into().ok()?))
}

/// Claim up to `limit` Ready inbound messages of `port`, extended on a
/// rollback port so that the last batch in the group is whole.
pub(crate) fn claim(
    gw: &Gateway,
    port: &PortConfig,
    limit: usize,
    snapshot: MessageKey,
) -> Result<Vec<QueuedMessage>, QueueError> {
    // A sequential port is one ordered unit; on a parallel port, each
    // conversation is.
    let units = if port.parallel {
        UnitBy::Conversation
    } else {
        UnitBy::Port
    };
    let request = |limit| {
        ClaimRequest::new(Direction::Inbound, &port.name, limit)
            .up_to(Some(snapshot))
            .units(units)
    };
    let mut group = gw.claim(&request(limit))?;
    if port.upon_error != UponError::Rollback {
        return Ok(group);
    }
    while let Some(batch) = group.last().and_then(|m| m.batch_id.clone()) {
        let Some(next) = gw.claim(&request(1))?.pop() else {
            break;
        };
        if next.batch_id.as_deref() == Some(batch.as_str()) {
            group.push(next);
        } else {
            // Not part of the batch: give it back for the next claim.
            gw.give_back(&[next.key])?;
            break;
        }
    }
    Ok(group)
}

/// The outcome of one claimed message.
pub(crate) enum Outcome {
    /// Processed; its results are in the transaction part.
    Done { part: Transaction, ok: bool },
    /// Not processed: its batch stopped. Stays In process until the end of
    /// the run, then goes back to Ready.
    Wait { part: Transaction },
}

/// What settling a message (or a whole batch) decided.
#[derive(Default)]
pub(crate) struct Settled {
    /// Changes to commit.
    pub changes: Transaction,
    /// Messages processed successfully / failed.
    pub done: u64,
    pub failed: u64,
    /// Messages to put back to Ready at the end of the run.
    pub waiting: Vec<MessageKey>,
    /// Log ids of processed messages whose results were discarded.
    pub undone: Vec<String>,
    /// Every message settled: their changes are in `changes`.
    pub keys: Vec<MessageKey>,
}

impl Settled {
    fn take(&mut self, key: MessageKey, outcome: Outcome) {
        self.keys.push(key);
        match outcome {
            Outcome::Done { part, ok } => {
                if ok {
                    self.done += 1;
                } else {
                    self.failed += 1;
                }
                append(&mut self.changes, part);
            }
            Outcome::Wait { part } => {
                self.waiting.push(key);
                append(&mut self.changes, part);
            }
        }
    }
}

fn append(tx: &mut Transaction, part: Transaction) {
    for change in part.into_changes() {
        tx.push(change);
    }
}

/// Holds a rollback port's batch members until their batch is complete,
/// then settles the batch as a whole; anything else is settled at once.
#[derive(Default)]
pub(crate) struct Settler {
    /// Per batch: members claimed and not yet settled, and outcomes so far.
    held: HashMap<String, HeldBatch>,
}

#[derive(Default)]
struct HeldBatch {
    expected: usize,
    outcomes: Vec<(QueuedMessage, Outcome)>,
}

impl Settler {
    /// Note a claimed message (before its outcome arrives).
    pub fn claimed(&mut self, port: &PortConfig, msg: &QueuedMessage) {
        if let Some(batch) = held_batch(port, msg) {
            self.held.entry(batch.to_string()).or_default().expected += 1;
        }
    }

    /// Take a message's outcome into `into`; a rollback port's batch member
    /// is held until its batch is complete.
    pub fn settle(
        &mut self,
        port: &PortConfig,
        msg: &QueuedMessage,
        outcome: Outcome,
        into: &mut Settled,
    ) {
        let Some(batch) = held_batch(port, msg) else {
            into.take(msg.key, outcome);
            return;
        };
        let held = self.held.entry(batch.to_string()).or_default();
        held.outcomes.push((msg.clone(), outcome));
        if held.outcomes.len() < held.expected {
            return;
        }
        let held = self.held.remove(batch).unwrap_or_default();
        rollback_or_commit(port, batch, held.outcomes, into);
    }
}

fn held_batch<'m>(port: &PortConfig, msg: &'m QueuedMessage) -> Option<&'m str> {
    match port.upon_error {
        UponError::Rollback => msg.batch_id.as_deref(),
        _ => None,
    }
}

/// Settle a complete batch of a rollback port: if a member failed, only the
/// failure is committed and every member processed successfully is undone.
fn rollback_or_commit(
    port: &PortConfig,
    batch: &str,
    mut outcomes: Vec<(QueuedMessage, Outcome)>,
    into: &mut Settled,
) {
    outcomes.sort_by_key(|(m, _)| m.position);
    let failed = outcomes
        .iter()
        .find(|(_, o)| matches!(o, Outcome::Done { ok: false, .. }))
        .map(|(m, _)| (m.key, m.message_id.clone(), m.position));
    let Some((failed_key, failed_id, failed_position)) = failed else {
        for (m, o) in outcomes {
            into.take(m.key, o);
        }
        return;
    };
    let mut undone = 0;
    for (m, o) in outcomes {
        match o {
            Outcome::Done { ok: true, .. } => {
                undone += 1;
                into.keys.push(m.key);
                into.waiting.push(m.key);
                into.undone.push(super::message_log_id(&m.message_id));
            }
            other => into.take(m.key, other),
        }
    }
    let text = format!(
        "batch {batch}: member {failed_position} failed; upon-error rollback undid \
         {undone} member(s) processed before it; the batch stays queued until the \
         failed member is resubmitted or deleted"
    );
    tracing::warn!(port = %port.name, "{text}");
    into.changes.exception(Gateway::host_exception(
        &port.name,
        stage::BATCH,
        Some(failed_key),
        Some(&failed_id),
        text,
    ));
}
