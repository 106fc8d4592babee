//! [`RedbQueue`]: the gateway queue in one redb file, `<data dir>/ferry.redb`.
//!
//! # Tables
//!
//! | table          | key                                         | value |
//! |----------------|---------------------------------------------|-------|
//! | `meta`         | name (`format`, `last_message_key`, ...)    | `u64` |
//! | `messages`     | message key                                 | metadata record (codec) |
//! | `contents`     | message key                                 | format byte + UTF-8 content, LZ4-compressed from 512 bytes |
//! | `ready_index`  | (direction, port, name, position, key)      | `()`: one entry per Ready message |
//! | `status_index` | (status, key)                               | `()`: one entry per message |
//! | `counts`       | (direction, port, status)                   | number of messages (no zero rows) |
//! | `message_log`  | `MessageId`                                 | record: time, port |
//! | `exceptions`   | exception id                                | exception record |
//! | `history`      | (`MessageId`, sequence)                     | history record |
//! | `kept_contents`| message key                                 | (`MessageId`, sequence) of the history record whose document is that message's content record |
//! | `state`        | key                                         | the caller's bytes |
//!
//! Content is kept apart from the small metadata record, so a status change
//! rewrites a few dozen bytes, not the document. `ready_index` makes claiming
//! proportional to the messages taken, not to the backlog; `status_index`
//! makes recovery and listing by status independent of the other statuses;
//! `counts` makes status summaries free. Every status change maintains all
//! three in the same write transaction.
//!
//! The queue manager's search, audited actions and audit log are in
//! `manage.rs` beside this file.

mod manage;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use redb::{
    Database, DatabaseError, Durability, ReadTransaction, ReadableDatabase, ReadableTable, Table,
    TableDefinition, WriteTransaction,
};

mod claims;
mod codec;
mod retention;
#[cfg(test)]
mod tests;

use super::rules::{self, OperatorAction, Transition};
use claims::{ClaimView, Claimed, Claims};
use codec::{DecodeError, MessageMeta};

// redb's errors become storage errors of the queue: no redb type leaves
// this module.
macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for QueueError {
            fn from(e: $t) -> Self {
                QueueError::storage(redb::Error::from(e))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::StorageError,
    redb::TableError,
    redb::TransactionError,
    redb::CommitError,
    redb::SetDurabilityError
);
use super::{
    Change, ClaimRequest, Direction, Exception, ExceptionFilter, Filter, GatewayQueue,
    HistoryEntry, Lease, MessageKey, NewMessage, QueueError, QueuedMessage, RecoveryReport, Status,
    Transaction, UnitBy, WorkSignal, conversation_of,
};

/// The database file inside the data directory.
pub const DB_FILE: &str = "ferry.redb";

/// The database layout this build writes (stored under `meta/format`).
///
/// 1: every history version holds its document. 2: the version a message
/// was received as refers to the message's content record (`kept_contents`),
/// which outlives the message. 3: content of 512 bytes or more is stored
/// LZ4-compressed. An older file is read as it is and marked format 3 when
/// opened: its records stay valid (content records say in their first byte
/// whether they are compressed).
pub(crate) const DB_FORMAT: u64 = 3;

/// redb's page cache (reads and the write buffer). redb's default, 1 GiB,
/// lets the host's memory grow with the queue: a backlog of 1M messages of
/// 2 KB is a 2+ GB file, and every page read stays cached. 64 MiB holds the
/// B-tree's branch pages and the working set of a group commit.
pub const CACHE_BYTES: usize = 64 << 20;

type ReadyKey = (u8, &'static str, &'static str, u32, u64);

const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");
const CONTENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("contents");
const READY: TableDefinition<ReadyKey, ()> = TableDefinition::new("ready_index");
const BY_STATUS: TableDefinition<(u8, u64), ()> = TableDefinition::new("status_index");
const COUNTS: TableDefinition<(u8, &str, u8), u64> = TableDefinition::new("counts");
const MESSAGE_LOG: TableDefinition<&str, &[u8]> = TableDefinition::new("message_log");
const EXCEPTIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("exceptions");
const HISTORY: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("history");
const STATE: TableDefinition<&str, &[u8]> = TableDefinition::new("state");
const KEPT: TableDefinition<u64, (&str, u64)> = TableDefinition::new("kept_contents");

const LAST_MESSAGE_KEY: &str = "last_message_key";
const LAST_EXCEPTION_ID: &str = "last_exception_id";
const LAST_HISTORY_SEQ: &str = "last_history_seq";
const LAST_EPOCH: &str = "last_lease_epoch";
const FORMAT: &str = "format";

/// The gateway queue stored in a redb database file, `<data dir>/ferry.redb`.
///
/// Only one `RedbQueue` (in any process) can have a data directory open at a
/// time; a second [`open`](RedbQueue::open) fails with [`QueueError::InUse`].
/// It is `Send + Sync`: share it with an `Arc`. Write transactions are
/// serialized by redb; reads run concurrently with them on a snapshot.
pub struct RedbQueue {
    db: Database,
    path: PathBuf,
    /// What is in flight: claims are kept in memory, not written.
    claims: Mutex<Claims>,
    /// Bumped when a commit makes work Ready.
    signal: WorkSignal,
}

impl std::fmt::Debug for RedbQueue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbQueue")
            .field("path", &self.path)
            .finish()
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn corrupt(table: &'static str, key: impl ToString, e: DecodeError) -> QueueError {
    QueueError::Corrupt {
        table,
        key: key.to_string(),
        reason: e.0,
    }
}

fn message_from(key: MessageKey, m: MessageMeta, content: String) -> QueuedMessage {
    QueuedMessage {
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
        content,
        error: m.error,
        attempts: m.attempts,
        created_ms: m.created_ms,
        updated_ms: m.updated_ms,
    }
}

fn load_meta(
    messages: &impl ReadableTable<u64, &'static [u8]>,
    key: MessageKey,
) -> Result<Option<MessageMeta>, QueueError> {
    match messages.get(key)? {
        None => Ok(None),
        Some(v) => codec::decode_meta(v.value())
            .map(Some)
            .map_err(|e| corrupt("messages", key, e)),
    }
}

fn load_content(
    contents: &impl ReadableTable<u64, &'static [u8]>,
    key: MessageKey,
) -> Result<String, QueueError> {
    match contents.get(key)? {
        None => Err(corrupt(
            "contents",
            key,
            DecodeError("the message has no content record".into()),
        )),
        Some(v) => codec::decode_content(v.value()).map_err(|e| corrupt("contents", key, e)),
    }
}

fn load_message(
    messages: &impl ReadableTable<u64, &'static [u8]>,
    contents: &impl ReadableTable<u64, &'static [u8]>,
    key: MessageKey,
) -> Result<Option<QueuedMessage>, QueueError> {
    match load_meta(messages, key)? {
        None => Ok(None),
        Some(meta) => Ok(Some(message_from(key, meta, load_content(contents, key)?))),
    }
}

/// Keys of the Ready messages of (direction, port), in claim order.
fn scan_ready(
    ready: &impl ReadableTable<ReadyKey, ()>,
    direction: Direction,
    port: &str,
    limit: usize,
    max_key: Option<MessageKey>,
    claims: &Claims,
) -> Result<Vec<MessageKey>, QueueError> {
    let mut keys = Vec::new();
    if limit == 0 {
        return Ok(keys);
    }
    let d = direction.code();
    let start: (u8, &str, &str, u32, u64) = (d, port, "", 0, 0);
    for entry in ready.range(start..)? {
        let (k, _) = entry?;
        let (d2, port2, _name, _position, key) = k.value();
        if d2 != d || port2 != port {
            break;
        }
        if max_key.is_some_and(|max| key > max) || claims.get(key).is_some() {
            continue;
        }
        keys.push(key);
        if keys.len() == limit {
            break;
        }
    }
    Ok(keys)
}

/// The queue tables of one write transaction, with the pending changes of the
/// counters and of the `counts` table (written by [`Writer::finish`]).
struct Writer<'t> {
    meta: Table<'t, &'static str, u64>,
    messages: Table<'t, u64, &'static [u8]>,
    contents: Table<'t, u64, &'static [u8]>,
    ready: Table<'t, ReadyKey, ()>,
    by_status: Table<'t, (u8, u64), ()>,
    counts: Table<'t, (u8, &'static str, u8), u64>,
    kept: Table<'t, u64, (&'static str, u64)>,
    history: Table<'t, (&'static str, u64), &'static [u8]>,
    count_deltas: BTreeMap<(u8, String, u8), i64>,
    last_key: Option<u64>,
    now: u64,
}

impl<'t> Writer<'t> {
    fn open(txn: &'t WriteTransaction) -> Result<Self, QueueError> {
        Ok(Writer {
            meta: txn.open_table(META)?,
            messages: txn.open_table(MESSAGES)?,
            contents: txn.open_table(CONTENTS)?,
            ready: txn.open_table(READY)?,
            by_status: txn.open_table(BY_STATUS)?,
            counts: txn.open_table(COUNTS)?,
            kept: txn.open_table(KEPT)?,
            history: txn.open_table(HISTORY)?,
            count_deltas: BTreeMap::new(),
            last_key: None,
            now: now_ms(),
        })
    }

    fn counter(&self, name: &str) -> Result<u64, QueueError> {
        Ok(self.meta.get(name)?.map_or(0, |v| v.value()))
    }

    fn load(&self, key: MessageKey) -> Result<MessageMeta, QueueError> {
        load_meta(&self.messages, key)?.ok_or(QueueError::NotFound { key })
    }

    fn count(&mut self, meta: &MessageMeta, delta: i64) {
        *self
            .count_deltas
            .entry((meta.direction.code(), meta.port.clone(), meta.status.code()))
            .or_insert(0) += delta;
    }

    /// Adds the index entries of a message in its current status.
    fn index(&mut self, key: MessageKey, meta: &MessageMeta) -> Result<(), QueueError> {
        self.by_status.insert((meta.status.code(), key), ())?;
        if meta.status == Status::Ready {
            self.ready.insert(
                (
                    meta.direction.code(),
                    meta.port.as_str(),
                    meta.name.as_str(),
                    meta.position,
                    key,
                ),
                (),
            )?;
        }
        self.count(meta, 1);
        Ok(())
    }

    /// Removes the index entries of a message in its current status.
    fn unindex(&mut self, key: MessageKey, meta: &MessageMeta) -> Result<(), QueueError> {
        self.by_status.remove((meta.status.code(), key))?;
        if meta.status == Status::Ready {
            self.ready.remove((
                meta.direction.code(),
                meta.port.as_str(),
                meta.name.as_str(),
                meta.position,
                key,
            ))?;
        }
        self.count(meta, -1);
        Ok(())
    }

    fn store(&mut self, key: MessageKey, meta: &MessageMeta) -> Result<(), QueueError> {
        self.messages
            .insert(key, codec::encode_meta(meta).as_slice())?;
        Ok(())
    }

    fn insert(&mut self, m: NewMessage) -> Result<MessageKey, QueueError> {
        let key = match self.last_key {
            Some(k) => k,
            None => self.counter(LAST_MESSAGE_KEY)?,
        } + 1;
        self.last_key = Some(key);
        let meta = MessageMeta {
            direction: m.direction,
            status: m.status,
            port: m.port,
            name: m.name,
            position: m.position,
            message_id: m.message_id,
            action: m.action,
            conversation_id: m.conversation_id,
            batch_id: m.batch_id,
            request_message_id: m.request_message_id,
            error: m.error,
            attempts: 0,
            created_ms: self.now,
            updated_ms: self.now,
        };
        self.store(key, &meta)?;
        self.contents
            .insert(key, codec::encode_content(&m.content).as_slice())?;
        self.index(key, &meta)?;
        Ok(key)
    }

    /// Moves a message to `status`. Returns the updated metadata.
    fn set_status(
        &mut self,
        key: MessageKey,
        mut meta: MessageMeta,
        status: Status,
        error: Option<String>,
    ) -> Result<MessageMeta, QueueError> {
        self.unindex(key, &meta)?;
        meta.status = status;
        if error.is_some() {
            meta.error = error;
        }
        meta.updated_ms = self.now;
        self.index(key, &meta)?;
        self.store(key, &meta)?;
        Ok(meta)
    }

    fn set_content(
        &mut self,
        key: MessageKey,
        content: &str,
        header: Option<(String, String)>,
    ) -> Result<(), QueueError> {
        let mut meta = self.load(key)?;
        meta.updated_ms = self.now;
        if let Some((message_id, action)) = header {
            meta.message_id = message_id;
            meta.action = action;
        }
        self.store(key, &meta)?;
        self.release_content(key)?;
        self.contents
            .insert(key, codec::encode_content(content).as_slice())?;
        Ok(())
    }

    /// The history version that refers to the content record of `key` gets
    /// its own copy of the document, before the record changes.
    fn release_content(&mut self, key: MessageKey) -> Result<(), QueueError> {
        let Some(entry) = self.kept.remove(key)? else {
            return Ok(());
        };
        let (message_id, seq) = entry.value();
        let message_id = message_id.to_string();
        drop(entry);
        let content = load_content(&self.contents, key)?;
        let record = self
            .history
            .get((message_id.as_str(), seq))?
            .map(|v| v.value().to_vec());
        if let Some(record) = record {
            let (mut h, _) = codec::decode_history(&message_id, &record)
                .map_err(|e| corrupt("history", format!("{message_id}/{seq}"), e))?;
            h.content = content;
            self.history.insert(
                (message_id.as_str(), seq),
                codec::encode_history(&h).as_slice(),
            )?;
        }
        Ok(())
    }

    fn remove(&mut self, key: MessageKey) -> Result<(), QueueError> {
        let meta = self.load(key)?;
        self.unindex(key, &meta)?;
        self.messages.remove(key)?;
        // A content record a history version refers to stays with it.
        if self.kept.get(key)?.is_none() {
            self.contents.remove(key)?;
        }
        Ok(())
    }

    /// Writes the counters and counts changed by this transaction.
    fn finish(mut self) -> Result<(), QueueError> {
        if let Some(k) = self.last_key {
            self.meta.insert(LAST_MESSAGE_KEY, k)?;
        }
        for ((d, port, s), delta) in std::mem::take(&mut self.count_deltas) {
            if delta == 0 {
                continue;
            }
            let key = (d, port.as_str(), s);
            let current = self.counts.get(key)?.map_or(0, |v| v.value());
            let new = current.checked_add_signed(delta).ok_or_else(|| {
                corrupt(
                    "counts",
                    format!("{d}/{port}/{s}"),
                    DecodeError(format!("count {current} cannot change by {delta}")),
                )
            })?;
            if new == 0 {
                self.counts.remove(key)?;
            } else {
                self.counts.insert(key, new)?;
            }
        }
        Ok(())
    }
}

impl RedbQueue {
    /// Opens (creating if needed) the queue of a data directory: creates the
    /// directory and `ferry.redb` inside it.
    ///
    /// Fails with [`QueueError::InUse`] if another Ferry host (or another
    /// `RedbQueue` in this process) has it open.
    pub fn open(data_dir: &Path) -> Result<RedbQueue, QueueError> {
        fs::create_dir_all(data_dir).map_err(|e| QueueError::Open {
            path: data_dir.to_path_buf(),
            reason: format!("cannot create the data directory: {e}"),
        })?;
        let path = data_dir.join(DB_FILE);
        let db = match Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&path)
        {
            Ok(db) => db,
            Err(DatabaseError::DatabaseAlreadyOpen) => {
                return Err(QueueError::InUse {
                    dir: data_dir.to_path_buf(),
                });
            }
            Err(e) => {
                return Err(QueueError::Open {
                    path,
                    reason: e.to_string(),
                });
            }
        };
        let queue = RedbQueue {
            db,
            path,
            claims: Mutex::new(Claims::default()),
            signal: WorkSignal::default(),
        };
        queue.init()?;
        Ok(queue)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates the tables and checks (or records) the layout version.
    fn init(&self) -> Result<(), QueueError> {
        let txn = self.begin_write(Durability::Immediate)?;
        {
            let mut meta = txn.open_table(META)?;
            let found = meta.get(FORMAT)?.map(|v| v.value());
            match found {
                None => {
                    meta.insert(FORMAT, DB_FORMAT)?;
                }
                Some(f) if f > DB_FORMAT => {
                    return Err(QueueError::NewerFormat {
                        path: self.path.clone(),
                        found: f,
                        supported: DB_FORMAT,
                    });
                }
                Some(f) if f < DB_FORMAT => {
                    // Format 1 or 2 to 3: its records are read as they
                    // are (a history version holding its document stays
                    // valid, uncompressed content too), and its messages
                    // left In process by a claim written to disk go back to
                    // Ready at the host's recovery.
                    tracing::info!(
                        path = %self.path.display(),
                        "gateway queue format {f} upgraded to {DB_FORMAT}"
                    );
                    meta.insert(FORMAT, DB_FORMAT)?;
                }
                Some(_) => {}
            }
            txn.open_table(MESSAGES)?;
            txn.open_table(CONTENTS)?;
            txn.open_table(READY)?;
            txn.open_table(BY_STATUS)?;
            txn.open_table(COUNTS)?;
            txn.open_table(MESSAGE_LOG)?;
            txn.open_table(EXCEPTIONS)?;
            txn.open_table(HISTORY)?;
            txn.open_table(STATE)?;
            txn.open_table(KEPT)?;
            manage::init(&txn)?;
        }
        txn.commit()?;
        Ok(())
    }

    fn begin_write(&self, durability: Durability) -> Result<WriteTransaction, QueueError> {
        let mut txn = self.db.begin_write()?;
        txn.set_durability(durability)?;
        Ok(txn)
    }

    /// Runs `f` on the queue tables in one durable write transaction,
    /// committing if it succeeds (and aborting otherwise).
    fn write<T>(
        &self,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        self.write_with(Durability::Immediate, f)
    }

    /// [`write`](Self::write) with the given durability.
    fn write_with<T>(
        &self,
        durability: Durability,
        f: impl FnOnce(&mut Writer<'_>) -> Result<T, QueueError>,
    ) -> Result<T, QueueError> {
        let txn = self.begin_write(durability)?;
        let out = {
            let mut w = Writer::open(&txn)?;
            let out = f(&mut w)?;
            w.finish()?;
            out
        };
        txn.commit()?;
        Ok(out)
    }

    fn lock_claims(&self) -> MutexGuard<'_, Claims> {
        self.claims.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A read snapshot and the claims in force at that moment (taken
    /// together, so a view never shows a message both Ready and claimed).
    fn view(&self) -> Result<(ReadTransaction, ClaimView), QueueError> {
        let claims = self.lock_claims();
        let txn = self.db.begin_read()?;
        Ok((txn, ClaimView::of(&claims)))
    }

    /// An operator action on one message, as [`rules::operator`] decides
    /// it, in one transaction.
    fn operator(&self, key: MessageKey, action: OperatorAction) -> Result<(), QueueError> {
        let claims = self.lock_claims();
        let released = self.write(|w| {
            let meta = w.load(key)?;
            let status = claims.get(key).map_or(meta.status, |c| c.status);
            match rules::operator(action, key, status)? {
                Transition::Unchanged => Ok(false),
                Transition::Remove => w.remove(key).map(|()| false),
                Transition::To(status) => w
                    .set_status(key, meta, status, None)
                    .map(|_| status == Status::Ready),
            }
        })?;
        drop(claims);
        if released {
            self.signal.bump();
        }
        Ok(())
    }

    /// Checks that the indexes and counts agree with the messages (tests).
    #[cfg(test)]
    pub(crate) fn check_invariants(&self) {
        use redb::ReadableTableMetadata as _;
        let txn = self.db.begin_read().unwrap();
        let messages = txn.open_table(MESSAGES).unwrap();
        let contents = txn.open_table(CONTENTS).unwrap();
        let ready = txn.open_table(READY).unwrap();
        let by_status = txn.open_table(BY_STATUS).unwrap();
        let counts = txn.open_table(COUNTS).unwrap();
        let mut want_ready = Vec::new();
        let mut want_status = Vec::new();
        let mut want_counts: BTreeMap<(u8, String, u8), u64> = BTreeMap::new();
        for e in messages.iter().unwrap() {
            let (k, v) = e.unwrap();
            let m = codec::decode_meta(v.value()).unwrap();
            let key = k.value();
            assert!(contents.get(key).unwrap().is_some(), "content of {key}");
            if m.status == Status::Ready {
                want_ready.push((
                    m.direction.code(),
                    m.port.clone(),
                    m.name.clone(),
                    m.position,
                    key,
                ));
            }
            want_status.push((m.status.code(), key));
            *want_counts
                .entry((m.direction.code(), m.port.clone(), m.status.code()))
                .or_default() += 1;
        }
        want_ready.sort();
        want_status.sort();
        let got_ready: Vec<_> = ready
            .iter()
            .unwrap()
            .map(|e| {
                let (key, _) = e.unwrap();
                let (d, p, n, pos, k) = key.value();
                (d, p.to_string(), n.to_string(), pos, k)
            })
            .collect();
        let got_status: Vec<_> = by_status
            .iter()
            .unwrap()
            .map(|e| e.unwrap().0.value())
            .collect();
        let got_counts: BTreeMap<_, _> = counts
            .iter()
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                let (d, p, s) = k.value();
                ((d, p.to_string(), s), v.value())
            })
            .collect();
        assert_eq!(got_ready, want_ready, "ready_index");
        assert_eq!(got_status, want_status, "status_index");
        assert_eq!(got_counts, want_counts, "counts");
        // Every content record belongs to a message, or to the history
        // version that refers to it (after the message was removed).
        let kept = txn.open_table(KEPT).unwrap();
        let history = txn.open_table(HISTORY).unwrap();
        let mut kept_alone = 0;
        for entry in kept.iter().unwrap() {
            let (k, v) = entry.unwrap();
            let key = k.value();
            let (message_id, seq) = v.value();
            assert!(
                contents.get(key).unwrap().is_some(),
                "kept content of {key}"
            );
            let record = history
                .get((message_id, seq))
                .unwrap()
                .expect("kept for a history version");
            let (_, content_key) = codec::decode_history(message_id, record.value()).unwrap();
            assert_eq!(
                content_key,
                Some(key),
                "history {message_id}/{seq} refers to {key}"
            );
            if messages.get(key).unwrap().is_none() {
                kept_alone += 1;
            }
        }
        assert_eq!(
            contents.len().unwrap(),
            messages.len().unwrap() + kept_alone,
            "contents"
        );
    }
}

impl GatewayQueue for RedbQueue {
    fn commit(&self, tx: Transaction) -> Result<Vec<MessageKey>, QueueError> {
        if tx.is_empty() {
            return Ok(Vec::new());
        }
        let (lease, changes) = tx.into_parts();
        // The claims are locked through the commit, so no claim, recovery
        // or operator action comes between the checks and the write.
        let mut claims = self.lock_claims();
        if let Some(lease) = &lease {
            claims.check_lease(lease)?;
        }
        // Which claims this commit settles, checked before anything is
        // written: only the holder of a claim changes a message in flight.
        let mut settled = Vec::new();
        let mut wakes = false;
        for (index, change) in changes.iter().enumerate() {
            let reject = |reason: QueueError| QueueError::Rejected {
                index,
                change: change.kind(),
                reason: Box::new(reason),
            };
            let (key, settles) = match change {
                Change::Insert(m) => {
                    rules::settable(0, m.status).map_err(reject)?;
                    wakes |= m.status == Status::Ready;
                    continue;
                }
                Change::SetStatus { key, status, .. } => {
                    rules::settable(*key, *status).map_err(reject)?;
                    wakes |= *status == Status::Ready;
                    (*key, true)
                }
                Change::Remove { key } => (*key, true),
                Change::SetContent { key, .. } | Change::SetEnvelope { key, .. } => (*key, false),
                _ => continue,
            };
            let claim = claims.get(key);
            rules::fence(key, claim.map(|c| &c.lease), lease.as_ref()).map_err(reject)?;
            if let Some(c) = claim
                && settles
            {
                settled.push((key, c.attempts));
            }
        }
        let attempts: BTreeMap<MessageKey, u32> = settled.iter().copied().collect();
        let txn = self.begin_write(Durability::Immediate)?;
        let keys = {
            let mut w = Writer::open(&txn)?;
            let mut log = None;
            let mut exceptions = None;
            let mut state = None;
            let mut keys = Vec::new();
            for (index, change) in changes.into_iter().enumerate() {
                let kind = change.kind();
                let reject = |reason: QueueError| match reason {
                    QueueError::NotFound { .. } => QueueError::Rejected {
                        index,
                        change: kind,
                        reason: Box::new(reason),
                    },
                    other => other,
                };
                let change = match change {
                    Change::InsertedException(mut e) => {
                        e.message_key = keys.last().copied();
                        Change::Exception(e)
                    }
                    c => c,
                };
                match change {
                    Change::Insert(m) => keys.push(w.insert(m)?),
                    Change::SetStatus { key, status, error } => {
                        let mut meta = w.load(key).map_err(reject)?;
                        if let Some(&n) = attempts.get(&key) {
                            // The claim's attempt is made durable with its
                            // result.
                            meta.attempts = n;
                        }
                        w.set_status(key, meta, status, error)?;
                    }
                    Change::SetContent { key, content } => {
                        w.set_content(key, &content, None).map_err(reject)?
                    }
                    Change::SetEnvelope {
                        key,
                        content,
                        message_id,
                        action,
                    } => w
                        .set_content(key, &content, Some((message_id, action)))
                        .map_err(reject)?,
                    Change::Remove { key } => w.remove(key).map_err(reject)?,
                    Change::LogProcessed { message_id, port } => {
                        let t = match &mut log {
                            Some(t) => t,
                            None => log.insert(txn.open_table(MESSAGE_LOG)?),
                        };
                        let before = t.insert(
                            message_id.as_str(),
                            codec::encode_processed(w.now, &port).as_slice(),
                        )?;
                        if before.is_some() {
                            // Duplicate detection inside the commit: the
                            // first to log an id wins.
                            return Err(QueueError::Rejected {
                                index,
                                change: kind,
                                reason: Box::new(QueueError::Duplicate { message_id }),
                            });
                        }
                    }
                    Change::Exception(e) | Change::InsertedException(e) => {
                        let t = match &mut exceptions {
                            Some(t) => t,
                            None => exceptions.insert(txn.open_table(EXCEPTIONS)?),
                        };
                        let id = w.counter(LAST_EXCEPTION_ID)? + 1;
                        w.meta.insert(LAST_EXCEPTION_ID, id)?;
                        let e = Exception {
                            id,
                            time_ms: e.time_ms,
                            port: e.port,
                            stage: e.stage,
                            plugin: e.plugin,
                            plugin_hash: e.plugin_hash,
                            message_key: e.message_key,
                            message_id: e.message_id,
                            text: e.text,
                        };
                        t.insert(id, codec::encode_exception(&e).as_slice())?;
                    }
                    Change::History(h) => {
                        let seq = w.counter(LAST_HISTORY_SEQ)? + 1;
                        w.meta.insert(LAST_HISTORY_SEQ, seq)?;
                        w.history.insert(
                            (h.message_id.as_str(), seq),
                            codec::encode_history(&h).as_slice(),
                        )?;
                    }
                    Change::InsertedHistory(mut h) => {
                        let Some(&key) = keys.last() else {
                            return Err(QueueError::Rejected {
                                index,
                                change: kind,
                                reason: Box::new(QueueError::storage(std::io::Error::other(
                                    "a history version of the inserted message comes \
                                     before any insert in its transaction",
                                ))),
                            });
                        };
                        h.message_key = Some(key);
                        let seq = w.counter(LAST_HISTORY_SEQ)? + 1;
                        w.meta.insert(LAST_HISTORY_SEQ, seq)?;
                        w.history.insert(
                            (h.message_id.as_str(), seq),
                            codec::encode_history_ref(&h, key).as_slice(),
                        )?;
                        w.kept.insert(key, (h.message_id.as_str(), seq))?;
                    }
                    Change::PutState { key, value } => {
                        let t = match &mut state {
                            Some(t) => t,
                            None => state.insert(txn.open_table(STATE)?),
                        };
                        t.insert(key.as_str(), value.as_slice())?;
                    }
                    Change::DeleteState { key } => {
                        let t = match &mut state {
                            Some(t) => t,
                            None => state.insert(txn.open_table(STATE)?),
                        };
                        t.remove(key.as_str())?;
                    }
                }
            }
            w.finish()?;
            keys
        };
        txn.commit()?;
        for (key, _) in settled {
            claims.settle(key);
        }
        drop(claims);
        if wakes {
            self.signal.bump();
        }
        Ok(keys)
    }

    fn claim(
        &self,
        lease: &Lease,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        let &ClaimRequest {
            direction,
            port,
            limit,
            max_key,
            units,
        } = request;
        let mut claims = self.lock_claims();
        claims.check_lease(lease)?;
        if limit == 0
            || (units == UnitBy::Port
                && !claims.may_take(lease, UnitBy::Port, direction, port, None))
        {
            return Ok(Vec::new());
        }
        let target = match direction {
            Direction::Inbound | Direction::OutboundRequest => Status::InProcess,
            Direction::Outbound => Status::InTransportProcess,
        };
        // A claim writes nothing: the file is locked to this process, and
        // after a crash every claimed message is Ready again anyway — which
        // is what its durable record still says. The commit that settles it
        // writes its attempt with its result.
        let txn = self.db.begin_read()?;
        let ready = txn.open_table(READY)?;
        let messages = txn.open_table(MESSAGES)?;
        let contents = txn.open_table(CONTENTS)?;
        let port_arc: Arc<str> = Arc::from(port);
        let d = direction.code();
        let mut out = Vec::new();
        for entry in ready.range((d, port, "", 0, 0)..)? {
            let (k, _) = entry?;
            let (d2, port2, _name, _position, key) = k.value();
            if d2 != d || port2 != port {
                break;
            }
            if max_key.is_some_and(|max| key > max) || claims.get(key).is_some() {
                continue;
            }
            let meta = load_meta(&messages, key)?.ok_or_else(|| {
                corrupt(
                    "ready_index",
                    key,
                    DecodeError("indexed message has no record".into()),
                )
            })?;
            let conversation =
                conversation_of(meta.conversation_id.as_deref(), meta.batch_id.as_deref());
            if units == UnitBy::Conversation
                && !claims.may_take(lease, units, direction, port, conversation)
            {
                continue;
            }
            let attempts = meta.attempts.saturating_add(1);
            claims.insert(
                key,
                Claimed {
                    lease: lease.clone(),
                    status: target,
                    attempts,
                    direction,
                    port: port_arc.clone(),
                    conversation: conversation.map(Arc::from),
                },
            );
            let content = load_content(&contents, key)?;
            let mut m = message_from(key, meta, content);
            m.status = target;
            m.attempts = attempts;
            out.push(m);
            if out.len() == limit {
                break;
            }
        }
        Ok(out)
    }

    fn ready(
        &self,
        direction: Direction,
        port: &str,
        limit: usize,
        max_key: Option<MessageKey>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        let claims = self.lock_claims();
        let txn = self.db.begin_read()?;
        let ready = txn.open_table(READY)?;
        let messages = txn.open_table(MESSAGES)?;
        let contents = txn.open_table(CONTENTS)?;
        let keys = scan_ready(&ready, direction, port, limit, max_key, &claims)?;
        drop(claims);
        let mut out = Vec::with_capacity(keys.len());
        for key in keys {
            match load_message(&messages, &contents, key)? {
                Some(m) => out.push(m),
                None => {
                    return Err(corrupt(
                        "ready_index",
                        key,
                        DecodeError("indexed message has no record".into()),
                    ));
                }
            }
        }
        Ok(out)
    }

    fn renew(&self, lease: &Lease) -> Result<(), QueueError> {
        self.lock_claims().check_lease(lease)
    }

    fn work_signal(&self) -> &WorkSignal {
        &self.signal
    }

    fn last_key(&self) -> Result<MessageKey, QueueError> {
        let txn = self.db.begin_read()?;
        let meta = txn.open_table(META)?;
        Ok(meta.get(LAST_MESSAGE_KEY)?.map_or(0, |v| v.value()))
    }

    fn get(&self, key: MessageKey) -> Result<Option<QueuedMessage>, QueueError> {
        let claims = self.lock_claims();
        let txn = self.db.begin_read()?;
        let claim = claims.get(key).map(|c| (c.status, c.attempts));
        drop(claims);
        let messages = txn.open_table(MESSAGES)?;
        let contents = txn.open_table(CONTENTS)?;
        let mut m = load_message(&messages, &contents, key)?;
        if let (Some(m), Some((status, attempts))) = (m.as_mut(), claim) {
            m.status = status;
            m.attempts = attempts;
        }
        Ok(m)
    }

    fn list(&self, filter: &Filter) -> Result<Vec<QueuedMessage>, QueueError> {
        let (txn, claims) = self.view()?;
        let messages = txn.open_table(MESSAGES)?;
        let contents = txn.open_table(CONTENTS)?;
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        // Every message with its status as a user sees it: a claimed
        // message is in flight, whatever its durable record says.
        let mut consider = |key: MessageKey, mut meta: MessageMeta| -> Result<bool, QueueError> {
            if let Some(&(status, attempts)) = claims.messages.get(&key) {
                meta.status = status;
                meta.attempts = attempts;
            }
            let matches = filter.direction.is_none_or(|d| d == meta.direction)
                && filter.port.as_deref().is_none_or(|p| p == meta.port)
                && filter.status.is_none_or(|s| s == meta.status)
                && filter
                    .conversation_id
                    .as_deref()
                    .is_none_or(|c| meta.conversation_id.as_deref() == Some(c));
            if matches {
                let content = load_content(&contents, key)?;
                out.push(message_from(key, meta, content));
            }
            Ok(out.len() < limit)
        };
        if let Some(status) = filter.status {
            // The durable status index, and for the in-flight statuses the
            // claims (whose durable record still says Ready).
            let by_status = txn.open_table(BY_STATUS)?;
            let s = status.code();
            let mut keys = by_status
                .range((s, 0)..=(s, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value().1))
                .collect::<Result<Vec<_>, _>>()?;
            if status.is_in_flight() {
                keys.extend(claims.keys_with(status));
                keys.sort_unstable();
                keys.dedup();
            }
            for key in keys {
                let meta = load_meta(&messages, key)?.ok_or_else(|| {
                    corrupt(
                        "status_index",
                        key,
                        DecodeError("indexed message has no record".into()),
                    )
                })?;
                if !consider(key, meta)? {
                    break;
                }
            }
        } else {
            for entry in messages.iter()? {
                let (k, v) = entry?;
                let key = k.value();
                let meta =
                    codec::decode_meta(v.value()).map_err(|e| corrupt("messages", key, e))?;
                if !consider(key, meta)? {
                    break;
                }
            }
        }
        Ok(out)
    }

    fn counts(&self) -> Result<Vec<(Direction, String, Status, u64)>, QueueError> {
        let claims = self.lock_claims();
        let txn = self.db.begin_read()?;
        let in_flight = claims.counts();
        drop(claims);
        let counts = txn.open_table(COUNTS)?;
        let mut all: BTreeMap<(Direction, String, Status), u64> = BTreeMap::new();
        for entry in counts.iter()? {
            let (k, v) = entry?;
            let (d, port, s) = k.value();
            let bad = || {
                corrupt(
                    "counts",
                    format!("{d}/{port}/{s}"),
                    DecodeError("unknown direction or status code".into()),
                )
            };
            let direction = Direction::from_code(d).ok_or_else(bad)?;
            let status = Status::from_code(s).ok_or_else(bad)?;
            all.insert((direction, port.to_string(), status), v.value());
        }
        // A claimed message is counted Ready on disk and in flight here.
        for ((direction, port, status), n) in in_flight {
            let ready = all
                .entry((direction, port.to_string(), Status::Ready))
                .or_insert(0);
            *ready = ready.saturating_sub(n);
            *all.entry((direction, port.to_string(), status))
                .or_insert(0) += n;
        }
        Ok(all
            .into_iter()
            .filter(|(_, n)| *n > 0)
            .map(|((d, p, s), n)| (d, p, s, n))
            .collect())
    }

    fn is_processed(&self, message_id: &str) -> Result<bool, QueueError> {
        self.are_processed(&[message_id]).map(|found| found[0])
    }

    fn are_processed(&self, message_ids: &[&str]) -> Result<Vec<bool>, QueueError> {
        let txn = self.db.begin_read()?;
        let log = txn.open_table(MESSAGE_LOG)?;
        message_ids
            .iter()
            .map(|id| Ok(log.get(*id)?.is_some()))
            .collect()
    }

    fn exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<Exception>, QueueError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(EXCEPTIONS)?;
        let limit = filter.limit.unwrap_or(usize::MAX);
        let mut out = Vec::new();
        if limit == 0 {
            return Ok(out);
        }
        for entry in table.iter()?.rev() {
            let (k, v) = entry?;
            let id = k.value();
            let e =
                codec::decode_exception(id, v.value()).map_err(|e| corrupt("exceptions", id, e))?;
            let matches = filter.port.as_deref().is_none_or(|p| p == e.port)
                && filter
                    .message_id
                    .as_deref()
                    .is_none_or(|m| e.message_id.as_deref() == Some(m))
                && filter.message_key.is_none_or(|k| e.message_key == Some(k));
            if matches {
                out.push(e);
                if out.len() == limit {
                    break;
                }
            }
        }
        out.reverse();
        Ok(out)
    }

    fn history(&self, message_id: &str) -> Result<Vec<HistoryEntry>, QueueError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(HISTORY)?;
        let contents = txn.open_table(CONTENTS)?;
        let mut out = Vec::new();
        for entry in table.range((message_id, 0)..=(message_id, u64::MAX))? {
            let (k, v) = entry?;
            let (_, seq) = k.value();
            let (mut h, content_key) = codec::decode_history(message_id, v.value())
                .map_err(|e| corrupt("history", format!("{message_id}/{seq}"), e))?;
            if let Some(key) = content_key {
                h.content = load_content(&contents, key)?;
            }
            out.push(h);
        }
        Ok(out)
    }

    fn recover(&self, owner: &str) -> Result<(Lease, RecoveryReport), QueueError> {
        let mut claims = self.lock_claims();
        let (lease, report) = self.write(|w| {
            let mut report = RecoveryReport::default();
            // Left in flight on disk by an earlier version (whose claims were
            // written): the file is locked to this process, so nobody works
            // on them.
            for status in [Status::InProcess, Status::InTransportProcess] {
                let s = status.code();
                let keys = w
                    .by_status
                    .range((s, 0)..=(s, u64::MAX))?
                    .map(|e| e.map(|(k, _)| k.value().1))
                    .collect::<Result<Vec<_>, _>>()?;
                for &key in &keys {
                    let meta = w.load(key)?;
                    w.set_status(key, meta, Status::Ready, None)?;
                }
                report.count(status, keys.len() as u64);
            }
            let epoch = w.counter(LAST_EPOCH)? + 1;
            w.meta.insert(LAST_EPOCH, epoch)?;
            // The owner's claims in this process: back to Ready, the attempt
            // counted.
            let (lease, released) = claims.renew_owner(owner, epoch);
            for (key, claimed) in released {
                let mut meta = w.load(key)?;
                meta.attempts = claimed.attempts;
                meta.updated_ms = w.now;
                w.store(key, &meta)?;
                report.count(claimed.status, 1);
            }
            Ok((lease, report))
        })?;
        drop(claims);
        if report.total() > 0 {
            self.signal.bump();
        }
        Ok((lease, report))
    }

    fn hold(&self, key: MessageKey) -> Result<(), QueueError> {
        self.operator(key, OperatorAction::Hold)
    }

    fn release(&self, key: MessageKey) -> Result<(), QueueError> {
        self.operator(key, OperatorAction::Release)
    }

    fn delete(&self, key: MessageKey) -> Result<(), QueueError> {
        self.operator(key, OperatorAction::Delete)
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), QueueError> {
        let txn = self.begin_write(Durability::Immediate)?;
        txn.open_table(STATE)?.insert(key, value)?;
        txn.commit()?;
        Ok(())
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE)?;
        Ok(table.get(key)?.map(|v| v.value().to_vec()))
    }

    fn delete_state(&self, key: &str) -> Result<bool, QueueError> {
        let txn = self.begin_write(Durability::Immediate)?;
        let existed = txn.open_table(STATE)?.remove(key)?.is_some();
        txn.commit()?;
        Ok(existed)
    }

    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError> {
        let txn = self.db.begin_read()?;
        let table = txn.open_table(STATE)?;
        let mut out = Vec::new();
        for entry in table.range(prefix..)? {
            let (k, v) = entry?;
            let key = k.value();
            if !key.starts_with(prefix) {
                break;
            }
            out.push((key.to_string(), v.value().to_vec()));
        }
        Ok(out)
    }
}
