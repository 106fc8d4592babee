//! The gateway queue: the durable table of inbound and outbound messages
//! between the adapters and the services, as in AIF's `AifGatewayQueue`, plus
//! the message log (duplicate detection), the exception log, the document
//! history and a small key/value area for other host parts.
//!
//! Everything goes through the [`GatewayQueue`] trait, so the services and
//! the engine do not depend on the storage. [`RedbQueue`] keeps it in one
//! redb file, `<data dir>/ferry.redb`; a PostgreSQL implementation can follow
//! for several hosts sharing one queue.
//!
//! Every change of state is one durable transaction. Work on many messages
//! can be grouped into one [`Transaction`] (group commit): it is applied
//! completely or not at all.
//!
//! Message keys ([`MessageKey`]) are assigned by the queue and strictly
//! increase in insertion order, so "everything received up to now" is
//! `key <= GatewayQueue::last_key()`. Within a port and direction, Ready
//! messages are taken in the order (name, position, key): alphabetical by the
//! name the adapter gave (e.g. the file name), then by the index inside a
//! batch file, then in order of arrival.

mod error;
pub mod manage;
pub mod postgres;
mod redb;
pub mod retention;
pub mod rules;
mod wake;

#[cfg(test)]
pub(crate) mod conformance;

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

pub use error::{ParseError, QueueError};
pub use manage::QueueManager;
pub use postgres::{PgOptions, PgQueue};
pub use redb::RedbQueue;

/// The redb queue's file name in the data directory.
pub fn redb_file() -> &'static str {
    redb::DB_FILE
}

/// The redb queue's format version this build writes.
pub fn redb_format() -> u64 {
    redb::DB_FORMAT
}
pub use wake::WorkSignal;

/// Identifies a message in the queue. Assigned by the queue; strictly
/// increasing in insertion order and never reused.
pub type MessageKey = u64;

/// Which way a message travels, i.e. which service takes it next.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Direction {
    /// Received by an adapter, waiting for inbound processing.
    Inbound,
    /// A response, fault or Send API document produced by inbound
    /// processing, waiting for outbound processing (AIF's outbound
    /// processing queue).
    OutboundRequest,
    /// Wrapped by outbound processing, waiting for an adapter to send it.
    Outbound,
}

impl Direction {
    /// Every direction.
    pub const ALL: [Direction; 3] = [
        Direction::Inbound,
        Direction::OutboundRequest,
        Direction::Outbound,
    ];

    /// Stable one-byte code used in storage.
    pub(crate) fn code(self) -> u8 {
        match self {
            Direction::Inbound => 1,
            Direction::Outbound => 2,
            Direction::OutboundRequest => 3,
        }
    }

    /// Inverse of [`Direction::code`].
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        match code {
            1 => Some(Direction::Inbound),
            2 => Some(Direction::Outbound),
            3 => Some(Direction::OutboundRequest),
            _ => None,
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Direction::Inbound => "Inbound",
            Direction::Outbound => "Outbound",
            Direction::OutboundRequest => "Outbound request",
        })
    }
}

impl FromStr for Direction {
    type Err = ParseError;

    /// Accepts `inbound`/`in`, `outbound-request`/`request` (also with a
    /// space or `_`) and `outbound`/`out`, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace([' ', '_'], "-")
            .as_str()
        {
            "inbound" | "in" => Ok(Direction::Inbound),
            "outbound" | "out" => Ok(Direction::Outbound),
            "outbound-request" | "request" => Ok(Direction::OutboundRequest),
            _ => Err(ParseError {
                what: "direction",
                given: s.to_string(),
                expected: "inbound, outbound-request, outbound",
            }),
        }
    }
}

/// The status of a queued message: AIF's gateway queue statuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Waiting to be processed (inbound) or sent (outbound).
    Ready,
    /// Taken by inbound processing; not yet committed.
    InProcess,
    /// Held by an operator; not processed until released.
    Hold,
    /// Processing failed; see the message's error and the exception log.
    /// Released (resubmitted) by an operator.
    Error,
    /// Taken by the gateway send service; not yet committed.
    InTransportProcess,
    /// Received, but the content is not a readable message; the raw text is
    /// kept as the content.
    MalformedXml,
}

impl Status {
    /// Every status, in AIF's order.
    pub const ALL: [Status; 6] = [
        Status::Ready,
        Status::InProcess,
        Status::Hold,
        Status::Error,
        Status::InTransportProcess,
        Status::MalformedXml,
    ];

    /// The kebab-case form, for command lines and file names
    /// (`in-process`, `malformed-xml`, ...).
    pub fn kebab(self) -> &'static str {
        match self {
            Status::Ready => "ready",
            Status::InProcess => "in-process",
            Status::Hold => "hold",
            Status::Error => "error",
            Status::InTransportProcess => "in-transport-process",
            Status::MalformedXml => "malformed-xml",
        }
    }

    /// Whether a service is working on the message (it was claimed and its
    /// result is not committed yet).
    pub fn is_in_flight(self) -> bool {
        matches!(self, Status::InProcess | Status::InTransportProcess)
    }

    /// Stable one-byte code used in storage.
    pub(crate) fn code(self) -> u8 {
        match self {
            Status::Ready => 1,
            Status::InProcess => 2,
            Status::Hold => 3,
            Status::Error => 4,
            Status::InTransportProcess => 5,
            Status::MalformedXml => 6,
        }
    }

    /// Inverse of [`Status::code`].
    pub(crate) fn from_code(code: u8) -> Option<Self> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }
}

impl fmt::Display for Status {
    /// AIF's words: "Ready", "In process", "Hold", "Error",
    /// "In transport process", "Malformed XML".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Status::Ready => "Ready",
            Status::InProcess => "In process",
            Status::Hold => "Hold",
            Status::Error => "Error",
            Status::InTransportProcess => "In transport process",
            Status::MalformedXml => "Malformed XML",
        })
    }
}

impl FromStr for Status {
    type Err = ParseError;

    /// Accepts AIF's words in any case ("In process", "malformed xml") and the
    /// kebab or snake forms (`in-process`, `malformed_xml`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let normalized: String = s
            .trim()
            .to_ascii_lowercase()
            .split(|c: char| c == '-' || c == '_' || c.is_whitespace())
            .filter(|w| !w.is_empty())
            .collect::<Vec<_>>()
            .join("-");
        Status::ALL
            .into_iter()
            .find(|st| st.kebab() == normalized)
            .ok_or_else(|| ParseError {
                what: "message status",
                given: s.to_string(),
                expected: "Ready, In process, Hold, Error, In transport process, Malformed XML",
            })
    }
}

/// The right of one owner — a Ferry host — to work on the messages it
/// claims, until it is fenced off.
///
/// An owner gets a lease from [`GatewayQueue::recover`]; every claim is made
/// under it and every commit that settles claimed messages presents it
/// ([`Transaction::under`]). Recovering the owner again (at its next start,
/// or, with several hosts, when its lease expired and another host took its
/// work) gives a new epoch: the old lease is then stale, and a commit
/// presenting it is refused, so a host that lost its claims can never write
/// the results of work that another host may be doing again.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Lease {
    owner: Arc<str>,
    epoch: u64,
}

impl Lease {
    /// The lease of `owner` in `epoch` (backends make them).
    pub fn new(owner: impl Into<Arc<str>>, epoch: u64) -> Lease {
        Lease {
            owner: owner.into(),
            epoch,
        }
    }

    /// Who holds it.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// The owner's name, shared.
    pub fn owner_arc(&self) -> Arc<str> {
        self.owner.clone()
    }

    /// Its fencing epoch: larger than that of every earlier lease of the
    /// same owner.
    pub fn epoch(&self) -> u64 {
        self.epoch
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (lease {})", self.owner, self.epoch)
    }
}

/// The name a host claims under by default: `<hostname>-<pid>`.
pub fn default_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "ferry".to_string());
    format!("{host}-{}", std::process::id())
}

/// What makes an ordered unit when messages are claimed: the messages of one
/// unit are processed one at a time, in the queue's order, by one owner.
/// While an owner holds a message of a unit, no other owner claims any
/// message of that unit; the owner itself may claim more of it (and must
/// then keep their order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UnitBy {
    /// Every message is its own unit: no order across owners.
    #[default]
    Message,
    /// The whole port (in this direction) is one unit: a sequential port.
    Port,
    /// Each conversation of the port is a unit ([`QueuedMessage::conversation`]:
    /// its `ConversationId`, or for the members of a batch file without
    /// one, the batch's `BatchId`); messages with neither are free.
    Conversation,
}

/// Which messages [`GatewayQueue::claim`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClaimRequest<'a> {
    /// The direction.
    pub direction: Direction,
    /// The port.
    pub port: &'a str,
    /// At most this many.
    pub limit: usize,
    /// Only keys up to this one ("received up to now"), if given.
    pub max_key: Option<MessageKey>,
    /// The ordered units to respect across owners.
    pub units: UnitBy,
}

impl<'a> ClaimRequest<'a> {
    /// Up to `limit` Ready messages of `port` in `direction`, every message
    /// its own unit.
    pub fn new(direction: Direction, port: &'a str, limit: usize) -> Self {
        ClaimRequest {
            direction,
            port,
            limit,
            max_key: None,
            units: UnitBy::Message,
        }
    }

    /// Only keys up to `max_key`, if given.
    pub fn up_to(mut self, max_key: Option<MessageKey>) -> Self {
        self.max_key = max_key;
        self
    }

    /// Respect these ordered units.
    pub fn units(mut self, by: UnitBy) -> Self {
        self.units = by;
        self
    }
}

/// A message in the gateway queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedMessage {
    /// Assigned by the queue; strictly increasing in insertion order.
    pub key: MessageKey,
    /// Inbound or outbound.
    pub direction: Direction,
    /// The integration port it belongs to.
    pub port: String,
    /// Its status.
    pub status: Status,
    /// The name the adapter gave it (e.g. the file name): the ordering key.
    pub name: String,
    /// Index inside a batch file; 0 for a message that came alone.
    pub position: u32,
    /// The envelope's `MessageId` (may be empty for Malformed XML).
    pub message_id: String,
    /// The envelope's `Action`.
    pub action: String,
    /// The envelope's `ConversationId`, if any.
    pub conversation_id: Option<String>,
    /// The `BatchId` of the batch file it came in, if any.
    pub batch_id: Option<String>,
    /// On a response: the `MessageId` of the request it answers.
    pub request_message_id: Option<String>,
    /// The envelope XML, or the raw text for Malformed XML.
    pub content: String,
    /// The last failure reason, if it ever failed.
    pub error: Option<String>,
    /// How many times it was taken for processing (or sending).
    pub attempts: u32,
    /// When it was queued, in milliseconds since the Unix epoch.
    pub created_ms: u64,
    /// When it last changed, in milliseconds since the Unix epoch.
    pub updated_ms: u64,
}

impl QueuedMessage {
    /// The conversation it belongs to, the ordered unit of a parallel port:
    /// its `ConversationId`, or for the member of a batch file without one,
    /// the batch's `BatchId` (AIF processes a batch's members in order).
    pub fn conversation(&self) -> Option<&str> {
        conversation_of(self.conversation_id.as_deref(), self.batch_id.as_deref())
    }
}

/// [`QueuedMessage::conversation`] from its two fields.
pub fn conversation_of<'a>(
    conversation_id: Option<&'a str>,
    batch_id: Option<&'a str>,
) -> Option<&'a str> {
    conversation_id.or(batch_id)
}

/// A message to put in the queue (see [`Transaction::insert`]): a
/// [`QueuedMessage`] without the fields the queue assigns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewMessage {
    /// Inbound or outbound.
    pub direction: Direction,
    /// The integration port it belongs to.
    pub port: String,
    /// Its initial status (usually Ready; Malformed XML for unreadable input).
    pub status: Status,
    /// The name the adapter gave it (e.g. the file name): the ordering key.
    pub name: String,
    /// Index inside a batch file; 0 for a message that came alone.
    pub position: u32,
    /// The envelope's `MessageId`.
    pub message_id: String,
    /// The envelope's `Action`.
    pub action: String,
    /// The envelope's `ConversationId`, if any.
    pub conversation_id: Option<String>,
    /// The `BatchId` of the batch file it came in, if any.
    pub batch_id: Option<String>,
    /// On a response: the `MessageId` of the request it answers.
    pub request_message_id: Option<String>,
    /// The envelope XML, or the raw text for Malformed XML.
    pub content: String,
    /// A failure reason to record with it (e.g. why it is Malformed XML).
    pub error: Option<String>,
}

/// An entry of the exception log: a failure, where it happened, who caused it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Exception {
    /// Assigned by the queue; increasing in the order written.
    pub id: u64,
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The integration port.
    pub port: String,
    /// The stage ("receive", "transforms", "pipeline", "service", "send", ...).
    pub stage: String,
    /// The plugin that failed or reported it, if any.
    pub plugin: Option<String>,
    /// That plugin's content hash (its version).
    pub plugin_hash: Option<String>,
    /// The queued message concerned, if it was in the queue.
    pub message_key: Option<MessageKey>,
    /// The `MessageId` concerned, if known.
    pub message_id: Option<String>,
    /// What went wrong.
    pub text: String,
}

/// An exception to log (see [`Transaction::exception`]): an [`Exception`]
/// without its id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewException {
    /// When it happened, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The integration port.
    pub port: String,
    /// The stage where it happened.
    pub stage: String,
    /// The plugin that failed or reported it, if any.
    pub plugin: Option<String>,
    /// That plugin's content hash (its version).
    pub plugin_hash: Option<String>,
    /// The queued message concerned, if it was in the queue.
    pub message_key: Option<MessageKey>,
    /// The `MessageId` concerned, if known.
    pub message_id: Option<String>,
    /// What went wrong.
    pub text: String,
}

/// One version of a document in a message's history: what it looked like
/// after a stage, and which plugins made it so.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When this version was produced, in milliseconds since the Unix epoch.
    pub time_ms: u64,
    /// The `MessageId` the history belongs to.
    pub message_id: String,
    /// The queued message, if it was in the queue.
    pub message_key: Option<MessageKey>,
    /// The integration port.
    pub port: String,
    /// The stage that produced this version.
    pub stage: String,
    /// (name, content hash) of each plugin that touched this version.
    pub plugins: Vec<(String, String)>,
    /// The document at this point.
    pub content: String,
}

/// One change of a [`Transaction`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// Put a new message in the queue.
    Insert(NewMessage),
    /// Change a message's status (and record a failure reason).
    SetStatus {
        /// The message.
        key: MessageKey,
        /// The new status.
        status: Status,
        /// A failure reason to record; `None` keeps the previous one.
        error: Option<String>,
    },
    /// Replace a message's content.
    SetContent {
        /// The message.
        key: MessageKey,
        /// The new content.
        content: String,
    },
    /// A message that was not an envelope became one (its inbound
    /// transforms ran again): its content and the header fields kept with it.
    SetEnvelope {
        /// The message.
        key: MessageKey,
        /// The envelope.
        content: String,
        /// Its `MessageId`.
        message_id: String,
        /// Its `Action`.
        action: String,
    },
    /// Take a message out of the queue (it was processed or sent).
    Remove {
        /// The message.
        key: MessageKey,
    },
    /// Record a `MessageId` in the message log (duplicate detection).
    LogProcessed {
        /// The `MessageId`.
        message_id: String,
        /// The port that processed it.
        port: String,
    },
    /// Add an entry to the exception log.
    Exception(NewException),
    /// Add an entry to the exception log about the message inserted last
    /// before it in the same transaction (whose key is known only at
    /// commit).
    InsertedException(NewException),
    /// Add a version to a message's history whose document is the content
    /// of the message inserted last before it in the same transaction: the
    /// queue stores that content once, for both (the entry's own `content`
    /// is not used; its `message_key` becomes that message's key).
    InsertedHistory(HistoryEntry),
    /// Add a version to a message's history.
    History(HistoryEntry),
    /// Set a value in the key/value state area.
    PutState {
        /// The key.
        key: String,
        /// The value.
        value: Vec<u8>,
    },
    /// Remove a key from the state area (no error if absent).
    DeleteState {
        /// The key.
        key: String,
    },
}

impl Change {
    /// A short name of the kind of change, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::Insert(_) => "insert",
            Change::SetStatus { .. } => "set status",
            Change::SetContent { .. } => "set content",
            Change::SetEnvelope { .. } => "set envelope",
            Change::Remove { .. } => "remove",
            Change::LogProcessed { .. } => "log processed",
            Change::Exception(_) | Change::InsertedException(_) => "exception",
            Change::History(_) | Change::InsertedHistory(_) => "history",
            Change::PutState { .. } => "put state",
            Change::DeleteState { .. } => "delete state",
        }
    }
}

/// An ordered set of changes, committed atomically by
/// [`GatewayQueue::commit`]: all of them or none.
///
/// Built by callers; it may hold the results of many messages at once
/// (group commit). Changes are applied in the order they were added, so a
/// later change sees the earlier ones (removing a message twice fails).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transaction {
    changes: Vec<Change>,
    lease: Option<Lease>,
}

impl Transaction {
    /// An empty transaction.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty transaction of the owner of `lease`: it may settle the
    /// messages claimed under it (and, of the messages in flight, only
    /// those). A commit presenting a lease that was fenced off is refused.
    pub fn under(lease: Lease) -> Self {
        Transaction {
            changes: Vec::new(),
            lease: Some(lease),
        }
    }

    /// Presents `lease` with this transaction (see [`Transaction::under`]).
    pub fn set_lease(&mut self, lease: Lease) -> &mut Self {
        self.lease = Some(lease);
        self
    }

    /// The lease it presents, if any.
    pub fn lease(&self) -> Option<&Lease> {
        self.lease.as_ref()
    }

    /// Puts a new message in the queue. [`GatewayQueue::commit`] returns the
    /// keys of the inserted messages, in the order of these calls.
    pub fn insert(&mut self, message: NewMessage) -> &mut Self {
        self.push(Change::Insert(message))
    }

    /// Changes a message's status. Moving to In process or In transport
    /// process counts an attempt. `error: Some(..)` records the failure
    /// reason; `None` keeps the previous one.
    pub fn set_status(
        &mut self,
        key: MessageKey,
        status: Status,
        error: Option<String>,
    ) -> &mut Self {
        self.push(Change::SetStatus { key, status, error })
    }

    /// Replaces a message's content (an edit before resubmitting it).
    pub fn set_content(&mut self, key: MessageKey, content: String) -> &mut Self {
        self.push(Change::SetContent { key, content })
    }

    /// Replaces the content of a message that was not an envelope with the
    /// envelope its transforms made, and takes its `MessageId` and
    /// `Action`.
    pub fn set_envelope(
        &mut self,
        key: MessageKey,
        content: String,
        message_id: String,
        action: String,
    ) -> &mut Self {
        self.push(Change::SetEnvelope {
            key,
            content,
            message_id,
            action,
        })
    }

    /// Takes a message out of the queue: it was processed or sent.
    pub fn remove(&mut self, key: MessageKey) -> &mut Self {
        self.push(Change::Remove { key })
    }

    /// Records `message_id` in the message log, so that a later message with
    /// the same id is detected as a duplicate ([`GatewayQueue::is_processed`]).
    /// An id already in the log makes the whole transaction fail with
    /// [`QueueError::Duplicate`]: of two commits processing the same id (on
    /// two hosts), only the first is applied.
    pub fn log_processed(
        &mut self,
        message_id: impl Into<String>,
        port: impl Into<String>,
    ) -> &mut Self {
        self.push(Change::LogProcessed {
            message_id: message_id.into(),
            port: port.into(),
        })
    }

    /// Adds an entry to the exception log.
    pub fn exception(&mut self, exception: NewException) -> &mut Self {
        self.push(Change::Exception(exception))
    }

    /// Adds an entry to the exception log linked to the message inserted
    /// last before it in this transaction.
    pub fn exception_for_inserted(&mut self, exception: NewException) -> &mut Self {
        self.push(Change::InsertedException(exception))
    }

    /// Adds a version to a message's document history.
    pub fn history(&mut self, entry: HistoryEntry) -> &mut Self {
        self.push(Change::History(entry))
    }

    /// Adds a version to a message's history whose document is the content
    /// of the message inserted last before it in this transaction (the
    /// document as received): stored once for both. `entry.content` is not
    /// used.
    pub fn history_of_inserted(&mut self, entry: HistoryEntry) -> &mut Self {
        self.push(Change::InsertedHistory(entry))
    }

    /// Sets a value in the key/value state area, atomically with the rest.
    pub fn put_state(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.push(Change::PutState {
            key: key.into(),
            value: value.into(),
        })
    }

    /// Removes a key from the state area (no error if it is absent).
    pub fn delete_state(&mut self, key: impl Into<String>) -> &mut Self {
        self.push(Change::DeleteState { key: key.into() })
    }

    /// Adds any change.
    pub fn push(&mut self, change: Change) -> &mut Self {
        self.changes.push(change);
        self
    }

    /// The changes, in order.
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    /// Consumes the transaction, giving its changes in order.
    pub fn into_changes(self) -> Vec<Change> {
        self.changes
    }

    /// Consumes the transaction, giving its lease and its changes in order.
    pub fn into_parts(self) -> (Option<Lease>, Vec<Change>) {
        (self.lease, self.changes)
    }

    /// Whether there is nothing to commit.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }

    /// The number of changes.
    pub fn len(&self) -> usize {
        self.changes.len()
    }
}

/// Which messages [`GatewayQueue::list`] returns. Empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this port.
    pub port: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only this conversation.
    pub conversation_id: Option<String>,
    /// At most this many (the oldest first).
    pub limit: Option<usize>,
}

/// Which entries [`GatewayQueue::exceptions`] returns. Empty fields match all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExceptionFilter {
    /// Only this port.
    pub port: Option<String>,
    /// Only this `MessageId`.
    pub message_id: Option<String>,
    /// Only this queued message.
    pub message_key: Option<MessageKey>,
    /// At most this many: the newest ones (still returned oldest first).
    pub limit: Option<usize>,
}

/// What [`GatewayQueue::recover`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecoveryReport {
    /// Messages found In process and returned to Ready.
    pub in_process: u64,
    /// Messages found In transport process and returned to Ready.
    pub in_transport_process: u64,
}

impl RecoveryReport {
    /// Counts `n` messages found in `status` and returned to Ready.
    pub fn count(&mut self, status: Status, n: u64) {
        match status {
            Status::InProcess => self.in_process += n,
            Status::InTransportProcess => self.in_transport_process += n,
            _ => {}
        }
    }

    /// All messages returned to Ready.
    pub fn total(&self) -> u64 {
        self.in_process + self.in_transport_process
    }
}

/// The gateway queue, whatever stores it.
///
/// Every method that changes something does so in one durable transaction:
/// when it returns `Ok`, the change survives a crash; when it returns `Err`,
/// nothing of it was applied.
pub trait GatewayQueue: Send + Sync {
    /// Applies all changes of `tx` in one durable transaction, in order, and
    /// returns the keys of the inserted messages in the order they were
    /// inserted. If any change is invalid (e.g. it names a message that is
    /// not in the queue), fails with [`QueueError::Rejected`] and applies
    /// nothing.
    fn commit(&self, tx: Transaction) -> Result<Vec<MessageKey>, QueueError>;

    /// Takes up to `request.limit` Ready messages of `request.port` and
    /// `request.direction` (only keys `<= max_key` if given), in the order
    /// (name, position, key), under `lease`: they are In process (inbound,
    /// outbound request) or In transport process (outbound), with an
    /// attempt counted, until a commit under the same lease settles them
    /// (or [`give_back`](GatewayQueue::give_back) returns them). Claimed
    /// messages are not claimed again until they are Ready again.
    ///
    /// Ordered units ([`UnitBy`]): a message whose unit another owner holds
    /// is skipped (it does not count towards the limit, so one blocked unit
    /// never starves the others); the owner holding a unit may take more of
    /// it. Fails with [`QueueError::StaleLease`] if `lease` was fenced off.
    fn claim(
        &self,
        lease: &Lease,
        request: &ClaimRequest<'_>,
    ) -> Result<Vec<QueuedMessage>, QueueError>;

    /// The messages [`claim`](GatewayQueue::claim) would take, in the same
    /// order, without taking them (ordered units are not considered).
    fn ready(
        &self,
        direction: Direction,
        port: &str,
        limit: usize,
        max_key: Option<MessageKey>,
    ) -> Result<Vec<QueuedMessage>, QueueError>;

    /// Returns claimed messages to Ready without a result (their attempt
    /// stays counted), in one transaction under `lease`.
    fn give_back(&self, lease: &Lease, keys: &[MessageKey]) -> Result<(), QueueError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut tx = Transaction::under(lease.clone());
        for &key in keys {
            tx.set_status(key, Status::Ready, None);
        }
        self.commit(tx).map(|_| ())
    }

    /// Confirms that `lease` is still its owner's (a heartbeat, for backends
    /// whose leases expire); fails with [`QueueError::StaleLease`] if it was
    /// fenced off.
    fn renew(&self, lease: &Lease) -> Result<(), QueueError>;

    /// The queue's wake-up: bumped whenever a commit makes work Ready.
    fn work_signal(&self) -> &WorkSignal;

    /// On a queue several hosts share: bumped when work became Ready that
    /// this process did not commit — another host's commit, a dead host's
    /// work taken over — so the event-driven jobs run for it. `None` on a
    /// queue one host opens at a time.
    fn foreign_work_signal(&self) -> Option<&WorkSignal> {
        None
    }

    /// Whether `lease` may run `task` (e.g. `"receive"`) for `port` now:
    /// with several hosts on one queue, one owner at a time leads it, so
    /// two hosts never receive the same file. The leader keeps it while its
    /// lease lives. A backend that one host opens at a time always says yes.
    fn lead(&self, lease: &Lease, task: &str, port: &str) -> Result<bool, QueueError> {
        let _ = (task, port);
        self.renew(lease).map(|()| true)
    }

    /// The highest key assigned so far (0 if none): a snapshot of "received
    /// up to now" for `max_key`.
    fn last_key(&self) -> Result<MessageKey, QueueError>;

    /// One message, if it is in the queue.
    fn get(&self, key: MessageKey) -> Result<Option<QueuedMessage>, QueueError>;

    /// The messages matching `filter`, by key (oldest first).
    fn list(&self, filter: &Filter) -> Result<Vec<QueuedMessage>, QueueError>;

    /// How many messages there are per direction, port and status (only
    /// non-zero counts), sorted by (direction, port, status).
    fn counts(&self) -> Result<Vec<(Direction, String, Status, u64)>, QueueError>;

    /// Whether a message with this `MessageId` was processed (is in the
    /// message log). Ids are compared as given: the services log and look
    /// up normalized ids (`services::inbound::message_log_id`: no braces,
    /// upper case), as AIF compares message ids as GUIDs.
    fn is_processed(&self, message_id: &str) -> Result<bool, QueueError>;

    /// [`GatewayQueue::is_processed`] for several ids at once, one answer
    /// per id in order: what inbound processing asks for each claimed
    /// group, in one read (one transaction, one round trip) rather than
    /// one per message. The default asks one by one.
    fn are_processed(&self, message_ids: &[&str]) -> Result<Vec<bool>, QueueError> {
        message_ids.iter().map(|id| self.is_processed(id)).collect()
    }

    /// The exception log entries matching `filter`, oldest first.
    fn exceptions(&self, filter: &ExceptionFilter) -> Result<Vec<Exception>, QueueError>;

    /// The document history of a `MessageId`, in the order written.
    fn history(&self, message_id: &str) -> Result<Vec<HistoryEntry>, QueueError>;

    /// Called when an owner (a host) starts, or when another host takes
    /// over the work of an owner whose lease expired: every message `owner`
    /// left In process or In transport process (its work was never
    /// committed) goes back to Ready, its earlier leases are fenced off, and
    /// it gets a new lease to claim under. On a backend that only one host
    /// opens at a time, messages left in flight by anybody go back to Ready.
    fn recover(&self, owner: &str) -> Result<(Lease, RecoveryReport), QueueError>;

    /// Operator action: puts a Ready or Error message on hold (no-op if it
    /// is already held). Refused for messages in process or malformed.
    fn hold(&self, key: MessageKey) -> Result<(), QueueError>;

    /// Operator action: makes a held message Ready again, or resubmits a
    /// failed (Error) one. Refused in other statuses.
    fn release(&self, key: MessageKey) -> Result<(), QueueError>;

    /// Operator action: deletes a message that is not in process (Ready,
    /// Hold, Error, Malformed XML).
    fn delete(&self, key: MessageKey) -> Result<(), QueueError>;

    /// Sets a value in the persistent key/value state area (for other host
    /// parts, e.g. the batch scheduler's job state).
    fn put_state(&self, key: &str, value: &[u8]) -> Result<(), QueueError>;

    /// A value of the state area.
    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError>;

    /// Removes a key of the state area; returns whether it was there.
    fn delete_state(&self, key: &str) -> Result<bool, QueueError>;

    /// All entries of the state area whose key starts with `prefix`, sorted
    /// by key.
    fn state_keys(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError>;
}
