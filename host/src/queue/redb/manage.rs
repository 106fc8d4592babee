//! [`QueueManager`] for [`RedbQueue`]: search over the existing tables, the
//! audited operator actions, and the audit log in two tables of its own.
//!
//! | table              | key                  | value |
//! |--------------------|----------------------|-------|
//! | `audit`            | audit id             | record: time, who, action, detail, keys |
//! | `audit_by_message` | (message key, id)    | `()`: the entries about a message |
//!
//! A search with a status walks `status_index` from the page's start, so
//! it reads only messages of that status; any other search walks
//! `messages` from the page's start. Both read metadata records only,
//! never content.

use redb::{Durability, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::super::manage::{
    AuditEntry, Chunk, Edit, MAX_PAGE, MessageSummary, NewAudit, Page, PageRequest, QueueManager,
    SCAN_BUDGET, Search,
};
use super::super::retention::{PruneCursor, Pruned, Retention};
use super::super::rules::{self, OperatorAction, Transition};
use super::claims::Claims;
use super::codec::{self, DecodeError, MessageMeta};
use super::{BY_STATUS, LAST_HISTORY_SEQ, MESSAGES, RedbQueue, Writer, corrupt, load_meta};
use crate::queue::{MessageKey, QueueError, Status};

pub(super) const AUDIT: TableDefinition<u64, &[u8]> = TableDefinition::new("audit");
pub(super) const AUDIT_BY_MESSAGE: TableDefinition<(u64, u64), ()> =
    TableDefinition::new("audit_by_message");
const LAST_AUDIT_ID: &str = "last_audit_id";

/// Creates the tables of this file (at open).
pub(super) fn init(txn: &WriteTransaction) -> Result<(), QueueError> {
    txn.open_table(AUDIT)?;
    txn.open_table(AUDIT_BY_MESSAGE)?;
    Ok(())
}

fn summary(key: MessageKey, m: MessageMeta) -> MessageSummary {
    MessageSummary {
        key,
        direction: m.direction,
        port: m.port,
        status: m.status,
        name: m.name,
        position: m.position,
        message_id: m.message_id,
        action: m.action,
        conversation_id: m.conversation_id,
        batch_id: m.batch_id,
        request_message_id: m.request_message_id,
        error: m.error,
        attempts: m.attempts,
        created_ms: m.created_ms,
        updated_ms: m.updated_ms,
    }
}

fn encode_audit(e: &AuditEntry) -> Vec<u8> {
    let mut w = codec::Writer::new(64 + e.detail.len() + 4 * e.messages.len());
    w.varint(e.time_ms);
    w.str(&e.who);
    w.str(&e.action);
    w.str(&e.detail);
    w.varint(e.messages.len() as u64);
    for &k in &e.messages {
        w.varint(k);
    }
    w.finish()
}

pub(super) fn decode_audit(id: u64, bytes: &[u8]) -> Result<AuditEntry, DecodeError> {
    let mut r = codec::Reader::new(bytes)?;
    let time_ms = r.varint()?;
    let who = r.str()?;
    let action = r.str()?;
    let detail = r.str()?;
    let n = r.varint()?;
    let mut messages = Vec::with_capacity(n.min(4096) as usize);
    for _ in 0..n {
        messages.push(r.varint()?);
    }
    r.end()?;
    Ok(AuditEntry {
        id,
        time_ms,
        who,
        action,
        messages,
        detail,
    })
}

/// Writes an audit entry in `txn` (whose [`Writer`] is `w`).
fn write_audit(
    txn: &WriteTransaction,
    w: &mut Writer<'_>,
    audit: &NewAudit,
    messages: Vec<MessageKey>,
) -> Result<u64, QueueError> {
    let id = w.counter(LAST_AUDIT_ID)? + 1;
    w.meta.insert(LAST_AUDIT_ID, id)?;
    let mut by_message = txn.open_table(AUDIT_BY_MESSAGE)?;
    for &k in &messages {
        by_message.insert((k, id), ())?;
    }
    let entry = AuditEntry {
        id,
        time_ms: w.now,
        who: audit.who.clone(),
        action: audit.action.clone(),
        messages,
        detail: audit.detail.clone(),
    };
    txn.open_table(AUDIT)?
        .insert(id, encode_audit(&entry).as_slice())?;
    Ok(id)
}

/// Applies `action` to message `key` in `w`: what the rules allow, or why
/// not.
fn apply(
    w: &mut Writer<'_>,
    claims: &Claims,
    key: MessageKey,
    meta: MessageMeta,
    action: OperatorAction,
) -> Result<Transition, QueueError> {
    // A claimed message is in flight, whatever its durable record says.
    let status = claims.get(key).map_or(meta.status, |c| c.status);
    let t = rules::operator(action, key, status)?;
    match t {
        Transition::Unchanged => {}
        Transition::Remove => w.remove(key)?,
        Transition::To(status) => {
            w.set_status(key, meta, status, None)?;
        }
    }
    Ok(t)
}

fn read_audit(
    table: &impl ReadableTable<u64, &'static [u8]>,
    id: u64,
) -> Result<Option<AuditEntry>, QueueError> {
    match table.get(id)? {
        None => Ok(None),
        Some(v) => decode_audit(id, v.value())
            .map(Some)
            .map_err(|e| corrupt("audit", id, e)),
    }
}

impl RedbQueue {
    /// Runs `f` with the [`Writer`] and the transaction (for the tables the
    /// writer does not hold) in one durable write transaction.
    fn write_txn<T>(
        &self,
        f: impl FnOnce(&WriteTransaction, &mut Writer<'_>, &Claims) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        // The claims are locked through the write, as for every operator
        // action: no claim comes between the check and the change.
        let claims = self.lock_claims();
        let txn = self.begin_write(Durability::Immediate)?;
        let out = {
            let mut w = Writer::open(&txn)?;
            let out = f(&txn, &mut w, &claims)?;
            w.finish()?;
            out
        };
        txn.commit()?;
        drop(claims);
        // A message released or resubmitted is Ready work.
        self.signal.bump();
        Ok(out)
    }
}

fn add_history(
    txn: &WriteTransaction,
    w: &mut Writer<'_>,
    h: &crate::queue::HistoryEntry,
) -> Result<(), QueueError> {
    // The writer holds the history table open (format 2).
    let _ = txn;
    let seq = w.counter(LAST_HISTORY_SEQ)? + 1;
    w.meta.insert(LAST_HISTORY_SEQ, seq)?;
    w.history.insert(
        (h.message_id.as_str(), seq),
        codec::encode_history(h).as_slice(),
    )?;
    Ok(())
}

impl QueueManager for RedbQueue {
    fn search(
        &self,
        search: &Search,
        page: &PageRequest,
    ) -> Result<Page<MessageSummary>, QueueError> {
        let limit = page.limit.clamp(1, MAX_PAGE);
        let start = page.after.map_or(0, |a| a.saturating_add(1));
        let end = page.max_key.unwrap_or(u64::MAX);
        let mut out = Page {
            items: Vec::new(),
            next: None,
            scanned: 0,
        };
        if start > end {
            return Ok(out);
        }
        let (txn, claims) = self.view()?;
        let messages = txn.open_table(MESSAGES)?;
        let mut last = None;
        let mut full = false;
        let mut consider = |key: MessageKey, mut meta: MessageMeta| {
            out.scanned += 1;
            last = Some(key);
            // A claimed message is in flight, whatever its durable record
            // says.
            if let Some(&(status, attempts)) = claims.messages.get(&key) {
                meta.status = status;
                meta.attempts = attempts;
            }
            let m = summary(key, meta);
            if search.matches(&m) {
                out.items.push(m);
            }
            out.items.len() < limit && out.scanned < SCAN_BUDGET
        };
        if let Some(status) = search.status.filter(|s| s.is_in_flight()) {
            // In flight: the claims (the durable record says Ready).
            let by_status = txn.open_table(BY_STATUS)?;
            let s = status.code();
            let mut keys = by_status
                .range((s, start)..=(s, end))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<Vec<_>, _>>()?;
            keys.extend(
                claims
                    .keys_with(status)
                    .into_iter()
                    .filter(|k| (start..=end).contains(k)),
            );
            keys.sort_unstable();
            keys.dedup();
            for key in keys {
                let Some(meta) = load_meta(&messages, key)? else {
                    continue;
                };
                if !consider(key, meta) {
                    full = true;
                    break;
                }
            }
        } else if let Some(status) = search.status {
            let by_status = txn.open_table(BY_STATUS)?;
            let s = status.code();
            for entry in by_status.range((s, start)..=(s, end))? {
                let key = entry?.0.value().1;
                let meta = load_meta(&messages, key)?.ok_or_else(|| {
                    corrupt(
                        "status_index",
                        key,
                        DecodeError("indexed message has no record".into()),
                    )
                })?;
                if !consider(key, meta) {
                    full = true;
                    break;
                }
            }
        } else {
            for entry in messages.range(start..=end)? {
                let (k, v) = entry?;
                let key = k.value();
                let meta =
                    codec::decode_meta(v.value()).map_err(|e| corrupt("messages", key, e))?;
                if !consider(key, meta) {
                    full = true;
                    break;
                }
            }
        }
        // Stopped early (a full page, or the budget): go on after the last
        // key looked at. Ran out of records: no more.
        if full && last != Some(end) {
            out.next = last;
        }
        Ok(out)
    }

    fn operate(
        &self,
        key: MessageKey,
        action: OperatorAction,
        edit: Option<Edit>,
        audit: &NewAudit,
    ) -> Result<Option<Status>, QueueError> {
        self.write_txn(|txn, w, claims| {
            let meta = w.load(key)?;
            let status = match apply(w, claims, key, meta, action)? {
                Transition::Unchanged => Some(w.load(key)?.status),
                Transition::Remove => None,
                Transition::To(s) => Some(s),
            };
            if let Some(edit) = edit {
                if status.is_none() {
                    return Err(QueueError::not_allowed(key, "edit", Status::Ready));
                }
                w.set_content(key, &edit.content, edit.header)?;
                add_history(txn, w, &edit.history)?;
            }
            write_audit(txn, w, audit, vec![key])?;
            Ok(status)
        })
    }

    fn operate_many(
        &self,
        keys: &[MessageKey],
        action: OperatorAction,
        unchanged_since: Option<u64>,
        audit: &NewAudit,
    ) -> Result<Chunk, QueueError> {
        self.write_txn(|txn, w, claims| {
            let mut chunk = Chunk::default();
            for &key in keys {
                let Some(meta) = load_meta(&w.messages, key)? else {
                    chunk.changed.push(key);
                    continue;
                };
                if unchanged_since.is_some_and(|t| meta.updated_ms > t) {
                    chunk.changed.push(key);
                    continue;
                }
                match apply(w, claims, key, meta, action) {
                    Ok(Transition::Unchanged) => chunk.unchanged.push(key),
                    Ok(_) => chunk.done.push(key),
                    Err(e @ QueueError::NotAllowed { .. }) => {
                        chunk.refused.push((key, e.to_string()))
                    }
                    Err(e) => return Err(e),
                }
            }
            if !chunk.done.is_empty() {
                write_audit(txn, w, audit, chunk.done.clone())?;
            }
            Ok(chunk)
        })
    }

    fn record_audit(&self, audit: &NewAudit) -> Result<u64, QueueError> {
        self.write_txn(|txn, w, _| write_audit(txn, w, audit, Vec::new()))
    }

    fn audit_log(&self, before: Option<u64>, limit: usize) -> Result<Page<AuditEntry>, QueueError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let txn = self.db.begin_read()?;
        let table = txn.open_table(AUDIT)?;
        let mut out = Page {
            items: Vec::new(),
            next: None,
            scanned: 0,
        };
        let end = before.unwrap_or(u64::MAX);
        for entry in table.range(..end)?.rev() {
            let (k, v) = entry?;
            let id = k.value();
            out.scanned += 1;
            if out.items.len() == limit {
                out.next = out.items.last().map(|e: &AuditEntry| e.id);
                break;
            }
            out.items
                .push(decode_audit(id, v.value()).map_err(|e| corrupt("audit", id, e))?);
        }
        Ok(out)
    }

    fn oldest(&self) -> Result<Vec<(Status, MessageKey, u64)>, QueueError> {
        let txn = self.db.begin_read()?;
        let by_status = txn.open_table(BY_STATUS)?;
        let messages = txn.open_table(MESSAGES)?;
        let mut out = Vec::new();
        for status in Status::ALL {
            let s = status.code();
            if let Some(entry) = by_status.range((s, 0)..=(s, u64::MAX))?.next() {
                let key = entry?.0.value().1;
                if let Some(meta) = load_meta(&messages, key)? {
                    out.push((status, key, meta.created_ms));
                }
            }
        }
        Ok(out)
    }

    fn prune(
        &self,
        policy: &Retention,
        now_ms: u64,
        cursor: &mut PruneCursor,
        budget: usize,
    ) -> Result<Pruned, QueueError> {
        self.prune_step(policy, now_ms, cursor, budget)
    }

    fn message_audit(&self, key: MessageKey) -> Result<Vec<AuditEntry>, QueueError> {
        let txn = self.db.begin_read()?;
        let index = txn.open_table(AUDIT_BY_MESSAGE)?;
        let table = txn.open_table(AUDIT)?;
        let mut out = Vec::new();
        for entry in index.range((key, 0)..=(key, u64::MAX))? {
            let id = entry?.0.value().1;
            // Pruned by retention meanwhile: the index entry outlived it.
            if let Some(e) = read_audit(&table, id)? {
                out.push(e);
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::manage::Cutoff;
    use crate::queue::{Direction, GatewayQueue, HistoryEntry, NewMessage, Transaction};

    fn open() -> (tempfile::TempDir, RedbQueue) {
        let dir = tempfile::tempdir().unwrap();
        let q = RedbQueue::open(dir.path()).unwrap();
        (dir, q)
    }

    fn new(port: &str, name: &str, status: Status, conv: Option<&str>) -> NewMessage {
        NewMessage {
            direction: Direction::Inbound,
            port: port.into(),
            status,
            name: name.into(),
            position: 0,
            message_id: format!("{{ID-{name}}}"),
            action: "a".into(),
            conversation_id: conv.map(str::to_string),
            batch_id: None,
            request_message_id: None,
            content: format!("<Envelope>{name}</Envelope>"),
            error: (status == Status::Error).then(|| format!("{name}: Plugin Trap in rule")),
        }
    }

    fn who(action: &str) -> NewAudit {
        NewAudit {
            who: "tester".into(),
            action: action.into(),
            detail: String::new(),
        }
    }

    /// 30 messages: ports a/b alternating, every third in Error, every
    /// fifth in conversation c1.
    fn fill(q: &RedbQueue) -> Vec<MessageKey> {
        let mut tx = Transaction::new();
        for i in 0..30 {
            let status = if i % 3 == 0 {
                Status::Error
            } else {
                Status::Ready
            };
            let port = if i % 2 == 0 { "a" } else { "b" };
            let conv = (i % 5 == 0).then_some("c1");
            tx.insert(new(port, &format!("order-{i:02}.xml"), status, conv));
        }
        q.commit(tx).unwrap()
    }

    fn all(q: &RedbQueue, s: &Search, limit: usize) -> Vec<MessageKey> {
        let mut out = Vec::new();
        let mut after = None;
        loop {
            let p = q
                .search(
                    s,
                    &PageRequest {
                        after,
                        limit,
                        max_key: None,
                    },
                )
                .unwrap();
            assert!(p.items.len() <= limit);
            out.extend(p.items.iter().map(|m| m.key));
            match p.next {
                Some(n) => after = Some(n),
                None => return out,
            }
        }
    }

    #[test]
    fn search_filters_and_pages_cover_every_match_once() {
        let (_d, q) = open();
        let keys = fill(&q);
        let by = |f: &dyn Fn(usize) -> bool| -> Vec<MessageKey> {
            keys.iter()
                .enumerate()
                .filter(|(i, _)| f(*i))
                .map(|(_, k)| *k)
                .collect()
        };
        for limit in [1, 4, 7, 100] {
            assert_eq!(all(&q, &Search::default(), limit), keys, "limit {limit}");
            let errors = Search {
                status: Some(Status::Error),
                ..Search::default()
            };
            assert_eq!(all(&q, &errors, limit), by(&|i| i % 3 == 0));
            let port_a_errors = Search {
                port: Some("a".into()),
                ..errors.clone()
            };
            assert_eq!(all(&q, &port_a_errors, limit), by(&|i| i % 6 == 0));
        }
        let conv = Search {
            conversation_id: Some("c1".into()),
            ..Search::default()
        };
        assert_eq!(all(&q, &conv, 2), by(&|i| i % 5 == 0));
        // MessageId as AIF compares them; names and errors by substring.
        let id = Search {
            message_id: Some("id-ORDER-07.xml".into()),
            ..Search::default()
        };
        assert_eq!(all(&q, &id, 10), vec![keys[7]]);
        let name = Search {
            name: Some("DER-1".into()),
            ..Search::default()
        };
        assert_eq!(all(&q, &name, 10), by(&|i| (10..20).contains(&i)));
        let error = Search {
            error: Some("plugin trap".into()),
            ..Search::default()
        };
        assert_eq!(all(&q, &error, 10), by(&|i| i % 3 == 0));
        let m = q.get(keys[0]).unwrap().unwrap();
        let later = Search {
            from_ms: Some(m.created_ms + 1),
            ..Search::default()
        };
        assert!(all(&q, &later, 10).is_empty());
        let before = Search {
            to_ms: Some(m.created_ms + 1),
            ..Search::default()
        };
        assert_eq!(all(&q, &before, 10), keys);
        // A cutoff: only keys up to it.
        let p = q
            .search(
                &Search::default(),
                &PageRequest {
                    after: None,
                    limit: 100,
                    max_key: Some(keys[4]),
                },
            )
            .unwrap();
        assert_eq!(p.items.len(), 5);
        assert_eq!(p.next, None);
    }

    #[test]
    fn operator_actions_follow_the_rules_and_are_audited() {
        let (_d, q) = open();
        let keys = fill(&q);
        let (err, ready) = (keys[0], keys[1]);
        assert_eq!(
            q.operate(ready, OperatorAction::Hold, None, &who("hold"))
                .unwrap(),
            Some(Status::Hold)
        );
        assert_eq!(
            q.operate(err, OperatorAction::Resubmit, None, &who("resubmit"))
                .unwrap(),
            Some(Status::Ready)
        );
        // Refused: nothing written, not even the audit entry.
        let e = q
            .operate(err, OperatorAction::Resubmit, None, &who("resubmit"))
            .unwrap_err();
        assert!(matches!(e, QueueError::NotAllowed { .. }), "{e}");
        assert_eq!(
            q.operate(ready, OperatorAction::Delete, None, &who("delete"))
                .unwrap(),
            None
        );
        assert!(q.get(ready).unwrap().is_none());
        let log = q.audit_log(None, 10).unwrap();
        let actions: Vec<_> = log.items.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["delete", "resubmit", "hold"]);
        assert_eq!(log.items[1].messages, vec![err]);
        assert_eq!(q.message_audit(err).unwrap().len(), 1);
        assert_eq!(q.message_audit(ready).unwrap().len(), 2);
        q.check_invariants();
    }

    #[test]
    fn an_edit_is_a_new_version_and_takes_the_new_header() {
        let (_d, q) = open();
        let keys = fill(&q);
        let k = keys[3];
        let content = "<Envelope>fixed</Envelope>".to_string();
        let edit = Edit {
            content: content.clone(),
            header: Some(("NEW-ID".into(), "new-action".into())),
            history: HistoryEntry {
                time_ms: 1,
                message_id: "NEW-ID".into(),
                message_key: Some(k),
                port: "b".into(),
                stage: "operator edit".into(),
                plugins: vec![],
                content: content.clone(),
            },
        };
        let st = q
            .operate(k, OperatorAction::Resubmit, Some(edit), &who("edit"))
            .unwrap();
        assert_eq!(st, Some(Status::Ready));
        let m = q.get(k).unwrap().unwrap();
        assert_eq!(m.content, content);
        assert_eq!(m.message_id, "NEW-ID");
        assert_eq!(m.action, "new-action");
        assert_eq!(q.history("NEW-ID").unwrap().len(), 1);
        // Ready again, and claimable.
        let (lease, _) = q.recover("test").unwrap();
        let claimed = q
            .claim(
                &lease,
                &crate::queue::ClaimRequest::new(Direction::Inbound, "b", 100),
            )
            .unwrap();
        assert!(claimed.iter().any(|c| c.key == k));
        q.check_invariants();
    }

    #[test]
    fn many_at_once_skip_what_changed_since_the_cutoff() {
        let (_d, q) = open();
        let keys = fill(&q);
        let errors: Vec<_> = keys.iter().step_by(3).copied().collect();
        let cutoff = Cutoff {
            key: q.last_key().unwrap(),
            time_ms: q.get(keys[0]).unwrap().unwrap().updated_ms,
        };
        // One of them changes after the look.
        std::thread::sleep(std::time::Duration::from_millis(5));
        q.operate(errors[1], OperatorAction::Hold, None, &who("hold"))
            .unwrap();
        // A Ready one: Resubmit is refused for it.
        let mut ask = errors.clone();
        ask.push(keys[1]);
        let chunk = q
            .operate_many(
                &ask,
                OperatorAction::Resubmit,
                Some(cutoff.time_ms),
                &who("bulk-resubmit"),
            )
            .unwrap();
        assert_eq!(chunk.changed, vec![errors[1]]);
        assert_eq!(chunk.refused.len(), 1);
        assert_eq!(chunk.refused[0].0, keys[1]);
        assert_eq!(chunk.done.len(), errors.len() - 1);
        assert_eq!(q.get(errors[1]).unwrap().unwrap().status, Status::Hold);
        for k in &chunk.done {
            assert_eq!(q.get(*k).unwrap().unwrap().status, Status::Ready);
        }
        let log = q.audit_log(None, 1).unwrap();
        assert_eq!(log.items[0].messages, chunk.done);
        assert!(log.next.is_some());
        q.check_invariants();
    }

    /// A benchmark, not a test (no time is asserted): a million queued
    /// messages, pages of 100 found by key, by status, and by a filter that
    /// matches one message in a million. Run with
    /// `cargo test -p ferry --lib -- --ignored --nocapture a_million`.
    #[test]
    #[ignore = "a benchmark: inserts a million messages"]
    fn a_million_messages_pages_and_searches() {
        use std::time::Instant;
        let (_d, q) = open();
        let started = Instant::now();
        let mut n = 0u32;
        for _ in 0..100 {
            let mut tx = Transaction::new();
            for _ in 0..10_000 {
                let status = if n.is_multiple_of(100) {
                    Status::Error
                } else {
                    Status::Ready
                };
                let port = ["orders", "invoices", "customers"][(n % 3) as usize];
                tx.insert(new(port, &format!("file-{n:07}.xml"), status, None));
                n += 1;
            }
            q.commit(tx).unwrap();
        }
        eprintln!("inserted {n} messages in {:?}", started.elapsed());
        let time = |what: &str, s: &Search, after: Option<u64>| {
            let t = Instant::now();
            let p = q
                .search(
                    s,
                    &PageRequest {
                        after,
                        limit: 100,
                        max_key: None,
                    },
                )
                .unwrap();
            eprintln!(
                "{what}: {} items, {} scanned, next {:?} in {:?}",
                p.items.len(),
                p.scanned,
                p.next,
                t.elapsed()
            );
            p
        };
        time("first page, no filter", &Search::default(), None);
        time(
            "page after 900000, no filter",
            &Search::default(),
            Some(900_000),
        );
        let errors = Search {
            status: Some(Status::Error),
            ..Search::default()
        };
        time("first page of Error (1%)", &errors, None);
        time("Error page after 500000", &errors, Some(500_000));
        let port = Search {
            port: Some("invoices".into()),
            ..Search::default()
        };
        time("first page of port invoices (1/3)", &port, None);
        let one = Search {
            message_id: Some("ID-file-0999999.xml".into()),
            ..Search::default()
        };
        let mut after = None;
        let t = Instant::now();
        let mut calls = 0;
        loop {
            let p = time("one MessageId in a million (one call)", &one, after);
            calls += 1;
            match p.next {
                Some(k) => after = Some(k),
                None => break,
            }
        }
        eprintln!(
            "one MessageId in a million: {calls} calls, {:?} in all",
            t.elapsed()
        );
        let t = Instant::now();
        let oldest = q.oldest().unwrap();
        eprintln!("oldest per status: {oldest:?} in {:?}", t.elapsed());
    }
}
