//! Pruning of the logs of a [`RedbQueue`] (see `queue/retention.rs`): one
//! step is one write transaction that looks at no more than `budget`
//! records of one table, from where the previous step stopped.
//!
//! The message log and the history are keyed by `MessageId`, in no order
//! of time, so a pass reads them whole, a step at a time; the exception and
//! audit logs are in the order written, so a pass stops at the first entry
//! young enough to keep (and not beyond a count limit).

use std::ops::Bound;

use redb::{
    Durability, ReadTransaction, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    WriteTransaction,
};

use super::manage::{AUDIT, AUDIT_BY_MESSAGE, decode_audit};
use super::{
    CONTENTS, EXCEPTIONS, HISTORY, KEPT, MESSAGE_LOG, MESSAGES, RedbQueue, codec, corrupt,
};
use crate::queue::QueueError;
use crate::queue::retention::{self, PruneCursor, PruneTable, Pruned, Retention};

/// Whether message `key` is in the queue.
fn queued(messages: &impl ReadableTable<u64, &'static [u8]>, key: u64) -> Result<bool, QueueError> {
    Ok(messages.get(key)?.is_some())
}

impl RedbQueue {
    /// One step of a pruning pass.
    pub(super) fn prune_step(
        &self,
        policy: &Retention,
        now_ms: u64,
        cursor: &mut PruneCursor,
        budget: usize,
    ) -> Result<Pruned, QueueError> {
        let budget = budget.max(1);
        let mut pruned = Pruned::default();
        cursor.skip_kept(policy);
        if cursor.done() {
            return Ok(pruned);
        }
        // A count limit of the logs keyed by MessageId becomes a time, read
        // in a read transaction: it never holds up the services' writes.
        let by_id = match cursor.table {
            PruneTable::MessageLog => cursor.cutoff_by_age_and_count(
                now_ms,
                policy.message_log,
                policy.message_log_max,
                |max| log_count_cut(&self.db.begin_read()?, max),
            )?,
            PruneTable::History => cursor.cutoff_by_age_and_count(
                now_ms,
                policy.history,
                policy.history_max,
                |max| history_count_cut(&self.db.begin_read()?, max),
            )?,
            _ => None,
        };
        let txn = self.begin_write(Durability::Immediate)?;
        let cutoff = |age: Option<u64>| age.map(|a| now_ms.saturating_sub(a));
        match cursor.table {
            PruneTable::MessageLog => pruned.message_log = prune_log(&txn, by_id, cursor, budget)?,
            PruneTable::History => pruned.history = prune_history(&txn, by_id, cursor, budget)?,
            PruneTable::Exceptions => {
                pruned.exceptions = prune_exceptions(
                    &txn,
                    cutoff(policy.exceptions),
                    policy.exceptions_max,
                    cursor,
                    budget,
                )?
            }
            PruneTable::Audit => {
                pruned.audit =
                    prune_audit(&txn, cutoff(policy.audit), policy.audit_max, cursor, budget)?
            }
            PruneTable::Done => {}
        }
        txn.commit()?;
        Ok(pruned)
    }
}

/// The time that keeps at most `max` entries of the message log.
fn log_count_cut(txn: &ReadTransaction, max: u64) -> Result<Option<u64>, QueueError> {
    let log = txn.open_table(MESSAGE_LOG)?;
    if log.len()? <= max {
        return Ok(None);
    }
    let mut failed = None;
    let cut = {
        let times = log.iter()?.map_while(|entry| {
            let read = entry.map_err(QueueError::from).and_then(|(k, v)| {
                codec::decode_processed_time(v.value())
                    .map_err(|e| corrupt("message_log", k.value(), e))
            });
            read.map_err(|e| failed = Some(e)).ok()
        });
        retention::count_cut(times, max)
    };
    failed.map_or(Ok(cut), Err)
}

/// The time that keeps the histories of at most `max` `MessageId`s, by
/// the time of each one's newest version.
fn history_count_cut(txn: &ReadTransaction, max: u64) -> Result<Option<u64>, QueueError> {
    let history = txn.open_table(HISTORY)?;
    if history.len()? <= max {
        return Ok(None);
    }
    let mut failed = None;
    let cut = {
        let mut versions = history.iter()?.map_while(|entry| {
            let read = entry.map_err(QueueError::from).and_then(|(k, v)| {
                let (id, seq) = k.value();
                codec::decode_history(id, v.value())
                    .map(|(h, _)| (id.to_string(), h.time_ms))
                    .map_err(|e| corrupt("history", format!("{id}/{seq}"), e))
            });
            read.map_err(|e| failed = Some(e)).ok()
        });
        // Each MessageId's newest time (its versions are next to each other).
        let mut current = versions.next();
        let newest = std::iter::from_fn(|| {
            let (id, mut time) = current.take()?;
            for (next, t) in versions.by_ref() {
                if next != id {
                    current = Some((next, t));
                    break;
                }
                time = time.max(t);
            }
            Some(time)
        });
        retention::count_cut(newest, max)
    };
    failed.map_or(Ok(cut), Err)
}

/// The message log: entries logged before `cutoff`.
fn prune_log(
    txn: &WriteTransaction,
    cutoff: Option<u64>,
    cursor: &mut PruneCursor,
    budget: usize,
) -> Result<u64, QueueError> {
    let Some(cutoff) = cutoff else {
        cursor.next_table();
        return Ok(0);
    };
    let mut log = txn.open_table(MESSAGE_LOG)?;
    let mut old = Vec::new();
    let mut last = None;
    let mut seen = 0;
    {
        let after = cursor.after_text.clone();
        let range = match &after {
            Some(a) => log.range::<&str>((Bound::Excluded(a.as_str()), Bound::Unbounded))?,
            None => log.range::<&str>(..)?,
        };
        for entry in range {
            let (k, v) = entry?;
            let id = k.value().to_string();
            let time = codec::decode_processed_time(v.value())
                .map_err(|e| corrupt("message_log", &id, e))?;
            if time < cutoff {
                old.push(id.clone());
            }
            last = Some(id);
            seen += 1;
            if seen == budget {
                break;
            }
        }
    }
    for id in &old {
        log.remove(id.as_str())?;
    }
    if seen < budget {
        cursor.next_table();
    } else {
        cursor.after_text = last;
    }
    Ok(old.len() as u64)
}

/// The history: a `MessageId`'s versions, all at once, when the newest is
/// older than `cutoff` and none is about a message still queued.
fn prune_history(
    txn: &WriteTransaction,
    cutoff: Option<u64>,
    cursor: &mut PruneCursor,
    budget: usize,
) -> Result<u64, QueueError> {
    let Some(cutoff) = cutoff else {
        cursor.next_table();
        return Ok(0);
    };
    let mut history = txn.open_table(HISTORY)?;
    let mut kept = txn.open_table(KEPT)?;
    let mut contents = txn.open_table(CONTENTS)?;
    let messages = txn.open_table(MESSAGES)?;
    // (MessageId, [(seq, content key)], newest time, about a queued message)
    type Group = (String, Vec<(u64, Option<u64>)>, u64, bool);
    let mut groups: Vec<Group> = Vec::new();
    let mut seen = 0;
    let mut ended = true;
    {
        let after = cursor.after_text.clone();
        let range = match &after {
            Some(a) => history.range::<(&str, u64)>((
                Bound::Excluded((a.as_str(), u64::MAX)),
                Bound::Unbounded,
            ))?,
            None => history.range::<(&str, u64)>(..)?,
        };
        for entry in range {
            let (k, v) = entry?;
            let (id, seq) = k.value();
            // A group is finished before the budget ends a step.
            if seen >= budget && groups.last().is_none_or(|g| g.0 != id) {
                ended = false;
                break;
            }
            let (h, content_key) = codec::decode_history(id, v.value())
                .map_err(|e| corrupt("history", format!("{id}/{seq}"), e))?;
            let about_queued = match h.message_key.or(content_key) {
                Some(key) => queued(&messages, key)?,
                None => false,
            };
            match groups.last_mut() {
                Some(g) if g.0 == id => {
                    g.1.push((seq, content_key));
                    g.2 = g.2.max(h.time_ms);
                    g.3 |= about_queued;
                }
                _ => groups.push((
                    id.to_string(),
                    vec![(seq, content_key)],
                    h.time_ms,
                    about_queued,
                )),
            }
            seen += 1;
        }
    }
    let mut removed = 0;
    for (id, versions, newest, about_queued) in &groups {
        if *newest >= cutoff || *about_queued {
            continue;
        }
        for (seq, content_key) in versions {
            history.remove((id.as_str(), *seq))?;
            removed += 1;
            // The content record this version referred to (its message has
            // left the queue) goes with it.
            let Some(key) = content_key else { continue };
            let refers = kept
                .get(*key)?
                .is_some_and(|v| v.value() == (id.as_str(), *seq));
            if refers {
                kept.remove(*key)?;
                if !queued(&messages, *key)? {
                    contents.remove(*key)?;
                }
            }
        }
    }
    if ended {
        cursor.next_table();
    } else {
        cursor.after_text = groups.last().map(|g| g.0.clone());
    }
    Ok(removed)
}

/// The exception log: entries older than `cutoff`, and the oldest beyond
/// `max`, unless about a message still queued.
fn prune_exceptions(
    txn: &WriteTransaction,
    cutoff: Option<u64>,
    max: Option<u64>,
    cursor: &mut PruneCursor,
    budget: usize,
) -> Result<u64, QueueError> {
    let mut table = txn.open_table(EXCEPTIONS)?;
    let messages = txn.open_table(MESSAGES)?;
    let mut excess = max.map_or(0, |m| table.len().unwrap_or(0).saturating_sub(m));
    let mut old = Vec::new();
    let mut last = None;
    let mut seen = 0;
    let mut ended = true;
    {
        let start = cursor.after_id.map_or(Bound::Unbounded, Bound::Excluded);
        for entry in table.range::<u64>((start, Bound::Unbounded))? {
            let (k, v) = entry?;
            let id = k.value();
            let e =
                codec::decode_exception(id, v.value()).map_err(|e| corrupt("exceptions", id, e))?;
            let too_old = cutoff.is_some_and(|c| e.time_ms < c);
            if !too_old && excess == 0 {
                // The rest is younger and within the count.
                break;
            }
            let keep = match e.message_key {
                Some(key) => queued(&messages, key)?,
                None => false,
            };
            if !keep {
                old.push(id);
                excess = excess.saturating_sub(1);
            }
            last = Some(id);
            seen += 1;
            if seen == budget {
                ended = false;
                break;
            }
        }
    }
    for id in &old {
        table.remove(*id)?;
    }
    if ended {
        cursor.next_table();
    } else {
        cursor.after_id = last;
    }
    Ok(old.len() as u64)
}

/// The audit log: entries older than `cutoff`, and the oldest beyond
/// `max`, unless they name a message still queued.
fn prune_audit(
    txn: &WriteTransaction,
    cutoff: Option<u64>,
    max: Option<u64>,
    cursor: &mut PruneCursor,
    budget: usize,
) -> Result<u64, QueueError> {
    let mut table = txn.open_table(AUDIT)?;
    let mut by_message = txn.open_table(AUDIT_BY_MESSAGE)?;
    let messages = txn.open_table(MESSAGES)?;
    let mut excess = max.map_or(0, |m| table.len().unwrap_or(0).saturating_sub(m));
    let mut old = Vec::new();
    let mut last = None;
    let mut seen = 0;
    let mut ended = true;
    {
        let start = cursor.after_id.map_or(Bound::Unbounded, Bound::Excluded);
        for entry in table.range::<u64>((start, Bound::Unbounded))? {
            let (k, v) = entry?;
            let id = k.value();
            let a = decode_audit(id, v.value()).map_err(|e| corrupt("audit", id, e))?;
            let too_old = cutoff.is_some_and(|c| a.time_ms < c);
            if !too_old && excess == 0 {
                break;
            }
            let mut keep = false;
            for &key in &a.messages {
                if queued(&messages, key)? {
                    keep = true;
                    break;
                }
            }
            if !keep {
                old.push((id, a.messages));
                excess = excess.saturating_sub(1);
            }
            last = Some(id);
            seen += 1;
            if seen == budget {
                ended = false;
                break;
            }
        }
    }
    let removed = old.len() as u64;
    for (id, keys) in old {
        table.remove(id)?;
        for key in keys {
            by_message.remove((key, id))?;
        }
    }
    if ended {
        cursor.next_table();
    } else {
        cursor.after_id = last;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::manage::{NewAudit, QueueManager};
    use crate::queue::rules::OperatorAction;
    use crate::queue::{
        Direction, ExceptionFilter, GatewayQueue, HistoryEntry, MessageKey, NewException,
        NewMessage, Status, Transaction,
    };

    const DAY: u64 = 86_400_000;

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64
    }

    fn message(name: &str) -> NewMessage {
        NewMessage {
            direction: Direction::Inbound,
            port: "in".into(),
            status: Status::Ready,
            name: name.into(),
            position: 0,
            message_id: format!("{{ID-{name}}}"),
            action: "a".into(),
            conversation_id: None,
            batch_id: None,
            request_message_id: None,
            content: format!("<Envelope>{name}</Envelope>"),
            error: None,
        }
    }

    fn exception(time_ms: u64, key: Option<MessageKey>) -> NewException {
        NewException {
            time_ms,
            port: "in".into(),
            stage: "service".into(),
            plugin: None,
            plugin_hash: None,
            message_key: key,
            message_id: None,
            text: "failed".into(),
        }
    }

    fn history(name: &str, time_ms: u64) -> HistoryEntry {
        HistoryEntry {
            time_ms,
            message_id: format!("{{ID-{name}}}"),
            message_key: None,
            port: "in".into(),
            stage: "received".into(),
            plugins: Vec::new(),
            content: String::new(),
        }
    }

    fn audit() -> NewAudit {
        NewAudit {
            who: "tester".into(),
            action: "x".into(),
            detail: String::new(),
        }
    }

    /// Every step of a pass, at most `budget` records each.
    fn pass(q: &RedbQueue, policy: &Retention, now_ms: u64, budget: usize) -> (Pruned, usize) {
        let mut cursor = PruneCursor::default();
        let mut total = Pruned::default();
        let mut steps = 0;
        while !cursor.done() {
            total.add(q.prune(policy, now_ms, &mut cursor, budget).unwrap());
            steps += 1;
            assert!(steps < 10_000, "the pass never ends");
        }
        (total, steps)
    }

    /// A queued message `a`, a message `b` that has left the queue, three
    /// processed MessageIds and four exceptions about nothing queued, all
    /// written two days before `now`.
    fn fill(q: &RedbQueue, old: u64) -> (MessageKey, MessageKey) {
        let mut tx = Transaction::new();
        tx.insert(message("a"))
            .history_of_inserted(history("a", old))
            .exception_for_inserted(exception(old, None));
        tx.insert(message("b"))
            .history_of_inserted(history("b", old))
            .exception_for_inserted(exception(old, None));
        for i in 0..3 {
            tx.log_processed(format!("{{DONE-{i}}}"), "in");
        }
        for _ in 0..4 {
            tx.exception(exception(old, None));
        }
        tx.history(history("gone", old));
        let keys = q.commit(tx).unwrap();
        let (a, b) = (keys[0], keys[1]);
        q.operate(a, OperatorAction::Hold, None, &audit()).unwrap();
        q.operate(b, OperatorAction::Hold, None, &audit()).unwrap();
        q.operate(b, OperatorAction::Delete, None, &audit())
            .unwrap();
        (a, b)
    }

    #[test]
    fn old_records_go_and_what_is_about_a_queued_message_stays() {
        let dir = tempfile::tempdir().unwrap();
        let q = RedbQueue::open(dir.path()).unwrap();
        let (a, b) = fill(&q, now() - 2 * DAY);
        q.check_invariants();
        let policy = Retention {
            message_log: Some(DAY),
            message_log_max: None,
            history: Some(DAY),
            history_max: None,
            exceptions: Some(DAY),
            exceptions_max: None,
            audit: Some(DAY),
            audit_max: None,
        };
        // The message log's entries were written now: two days later they
        // are old. Small steps: the cursor carries the pass along.
        let (p, steps) = pass(&q, &policy, now() + 2 * DAY, 2);
        assert!(steps > 4, "{steps}");
        assert_eq!(p.message_log, 3);
        assert_eq!(p.history, 2, "b's and gone's");
        assert_eq!(p.exceptions, 5, "b's and the four about nothing");
        assert_eq!(p.audit, 2, "b's hold and delete");
        q.check_invariants();
        // a: untouched.
        let m = q.get(a).unwrap().unwrap();
        assert_eq!(m.content, "<Envelope>a</Envelope>");
        assert_eq!(q.history("{ID-a}").unwrap().len(), 1);
        assert_eq!(q.history("{ID-a}").unwrap()[0].content, m.content);
        let left = q.exceptions(&ExceptionFilter::default()).unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].message_key, Some(a));
        assert_eq!(q.message_audit(a).unwrap().len(), 1);
        // b and the rest: gone.
        assert!(q.history("{ID-b}").unwrap().is_empty());
        assert!(q.history("{ID-gone}").unwrap().is_empty());
        assert!(q.message_audit(b).unwrap().is_empty());
        assert!(!q.is_processed("{DONE-0}").unwrap());
        // A second pass finds nothing more.
        assert_eq!(pass(&q, &policy, now() + 2 * DAY, 2).0, Pruned::default());
        // Once a has left the queue, its records go too.
        q.operate(a, OperatorAction::Delete, None, &audit())
            .unwrap();
        let (p, _) = pass(&q, &policy, now() + 2 * DAY, 1000);
        assert_eq!((p.history, p.exceptions, p.audit), (1, 1, 2));
        q.check_invariants();
    }

    #[test]
    fn young_records_stay_and_counts_keep_the_newest() {
        let dir = tempfile::tempdir().unwrap();
        let q = RedbQueue::open(dir.path()).unwrap();
        let old = now() - 2 * DAY;
        fill(&q, old);
        // Nothing is old at a week's retention, or with none at all.
        let week = Retention {
            message_log: Some(7 * DAY),
            message_log_max: None,
            history: Some(7 * DAY),
            history_max: None,
            exceptions: Some(7 * DAY),
            exceptions_max: None,
            audit: Some(7 * DAY),
            audit_max: None,
        };
        assert_eq!(pass(&q, &week, now(), 3).0, Pruned::default());
        assert_eq!(
            pass(&q, &Retention::FOREVER, now(), 3),
            (Pruned::default(), 1)
        );
        assert!(q.is_processed("{DONE-2}").unwrap());
        // Ten more exceptions, newer ones: a count of 4 keeps the newest
        // four (and a's, which is about a queued message).
        let mut tx = Transaction::new();
        for i in 0..10 {
            tx.exception(exception(old + 1000 + i, None));
        }
        q.commit(tx).unwrap();
        let counted = Retention {
            exceptions_max: Some(4),
            audit_max: Some(1),
            ..Retention::FOREVER
        };
        let (p, _) = pass(&q, &counted, now(), 3);
        let left = q.exceptions(&ExceptionFilter::default()).unwrap();
        assert_eq!(p.exceptions, 12, "{left:?}");
        assert_eq!(left.len(), 4);
        assert!(left.iter().any(|e| e.message_key.is_some()));
        assert_eq!(
            left.iter()
                .filter(|e| e.message_key.is_none())
                .map(|e| e.time_ms)
                .collect::<Vec<_>>(),
            vec![old + 1007, old + 1008, old + 1009]
        );
        // The audit log: a's entry stays (a is queued), b's two go.
        assert_eq!(p.audit, 2);
        assert_eq!(q.audit_log(None, 10).unwrap().items.len(), 1);
        q.check_invariants();
    }
}
