//! The queue manager's side of the gateway queue: search with keyset
//! paging, operator actions that are audited (hold, release, delete,
//! resubmit, edit-and-resubmit, the same on many messages at once), and the
//! audit log.
//!
//! [`QueueManager`] extends [`GatewayQueue`] with these; the services never
//! need them. A backend implements both (`RedbQueue` does in
//! `redb_queue/manage.rs`); nothing here names a storage type, so a
//! PostgreSQL backend implements the same methods with SQL
//! (`WHERE key > $after ... ORDER BY key LIMIT $n`).
//!
//! **Paging.** Pages are in key order (oldest first). A page names the key
//! to resume after ([`Page::next`]); no offset is ever counted, so the 1000th
//! page costs what the first one does. One call looks at no more than
//! [`SCAN_BUDGET`] messages: a search that matches few of many messages
//! returns a short (even empty) page with a `next` to go on from, instead of
//! reading the whole queue in one request.
//!
//! **Cutoffs.** A bulk action acts only on the messages that matched when
//! the operator looked: those with a key up to [`Cutoff::key`] (received
//! by then) that have not changed since [`Cutoff::time_ms`]. A message that
//! changed in between (taken, failed, released by someone else) is left
//! alone and counted as changed.

use serde::{Deserialize, Serialize};

use super::retention::{PruneCursor, Pruned, Retention};
use super::rules::OperatorAction;
use super::{Direction, GatewayQueue, HistoryEntry, MessageKey, QueueError, QueuedMessage, Status};

/// The most messages one [`QueueManager::search`] call looks at.
pub const SCAN_BUDGET: u64 = 100_000;

/// The largest page a search returns.
pub const MAX_PAGE: usize = 1000;

/// Which messages a search (or a bulk action) is about. Empty fields match
/// all; the others must all match.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Search {
    /// Only this direction.
    pub direction: Option<Direction>,
    /// Only this port.
    pub port: Option<String>,
    /// Only this status.
    pub status: Option<Status>,
    /// Only this `ConversationId` (exactly).
    pub conversation_id: Option<String>,
    /// Only this `MessageId`, compared as AIF compares them: without braces,
    /// in any case.
    pub message_id: Option<String>,
    /// Only names (file names) containing this, in any case.
    pub name: Option<String>,
    /// Only messages received at or after this time (ms since the epoch).
    pub from_ms: Option<u64>,
    /// Only messages received before this time (ms since the epoch).
    pub to_ms: Option<u64>,
    /// Only messages whose error text contains this, in any case.
    pub error: Option<String>,
}

/// A `MessageId` as AIF compares them: no braces, upper case.
fn id_form(id: &str) -> String {
    id.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_uppercase()
}

impl Search {
    /// Whether this search has no condition.
    pub fn is_empty(&self) -> bool {
        *self == Search::default()
    }

    /// Whether `m` matches (every given field).
    pub fn matches(&self, m: &MessageSummary) -> bool {
        let contains =
            |hay: &str, needle: &str| hay.to_lowercase().contains(needle.to_lowercase().as_str());
        self.direction.is_none_or(|d| d == m.direction)
            && self.port.as_deref().is_none_or(|p| p == m.port)
            && self.status.is_none_or(|s| s == m.status)
            && self
                .conversation_id
                .as_deref()
                .is_none_or(|c| m.conversation_id.as_deref() == Some(c))
            && self
                .message_id
                .as_deref()
                .is_none_or(|id| id_form(id) == id_form(&m.message_id))
            && self.name.as_deref().is_none_or(|n| contains(&m.name, n))
            && self.from_ms.is_none_or(|t| m.created_ms >= t)
            && self.to_ms.is_none_or(|t| m.created_ms < t)
            && self
                .error
                .as_deref()
                .is_none_or(|e| m.error.as_deref().is_some_and(|text| contains(text, e)))
    }
}

/// Where a page starts and how long it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRequest {
    /// Only keys greater than this (the previous page's [`Page::next`]).
    pub after: Option<MessageKey>,
    /// At most this many items (capped at [`MAX_PAGE`]).
    pub limit: usize,
    /// Only keys up to this (a cutoff: "received by the time I looked").
    pub max_key: Option<MessageKey>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest {
            after: None,
            limit: 100,
            max_key: None,
        }
    }
}

/// One page of results, in key order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Resume after this key for the next page; `None`: there is no more.
    pub next: Option<u64>,
    /// How many records were looked at for this page.
    pub scanned: u64,
}

/// A queued message without its content: what a list shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageSummary {
    /// The queue's key.
    pub key: MessageKey,
    /// Its direction.
    pub direction: Direction,
    /// Its port.
    pub port: String,
    /// Its status.
    pub status: Status,
    /// The name the adapter gave it.
    pub name: String,
    /// Index inside a batch file.
    pub position: u32,
    /// Its `MessageId`.
    pub message_id: String,
    /// Its `Action`.
    pub action: String,
    /// Its `ConversationId`.
    pub conversation_id: Option<String>,
    /// Its `BatchId`.
    pub batch_id: Option<String>,
    /// On a response, the request's `MessageId`.
    pub request_message_id: Option<String>,
    /// The last failure reason.
    pub error: Option<String>,
    /// How many times it was taken.
    pub attempts: u32,
    /// When it was queued (ms since the epoch).
    pub created_ms: u64,
    /// When it last changed (ms since the epoch).
    pub updated_ms: u64,
}

impl From<&QueuedMessage> for MessageSummary {
    fn from(m: &QueuedMessage) -> Self {
        MessageSummary {
            key: m.key,
            direction: m.direction,
            port: m.port.clone(),
            status: m.status,
            name: m.name.clone(),
            position: m.position,
            message_id: m.message_id.clone(),
            action: m.action.clone(),
            conversation_id: m.conversation_id.clone(),
            batch_id: m.batch_id.clone(),
            request_message_id: m.request_message_id.clone(),
            error: m.error.clone(),
            attempts: m.attempts,
            created_ms: m.created_ms,
            updated_ms: m.updated_ms,
        }
    }
}

/// "What the operator saw": messages received up to `key` and unchanged
/// since `time_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cutoff {
    /// The highest key there was ([`GatewayQueue::last_key`]).
    pub key: MessageKey,
    /// When (ms since the epoch).
    pub time_ms: u64,
}

/// A new content for a message (edit-and-resubmit), with what the queue
/// keeps beside it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The new content.
    pub content: String,
    /// The new `MessageId` and `Action`, when the content is an envelope
    /// (a malformed message that the edit made readable gets its header).
    pub header: Option<(String, String)>,
    /// The history version that records the edit.
    pub history: HistoryEntry,
}

/// An entry of the audit log: an operator's action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// Assigned by the queue; increasing.
    pub id: u64,
    /// When (ms since the epoch).
    pub time_ms: u64,
    /// Who: the token's name and role, or the local user of the CLI.
    pub who: String,
    /// What: `hold`, `release`, `resubmit`, `edit-and-resubmit`, `delete`,
    /// `bulk-…`, `job-hold`, …
    pub action: String,
    /// The messages it changed.
    pub messages: Vec<MessageKey>,
    /// More: the job, the filter and cutoff of a bulk action, counts.
    pub detail: String,
}

/// An audit entry to write: an [`AuditEntry`] without id and time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewAudit {
    /// Who.
    pub who: String,
    /// What.
    pub action: String,
    /// More.
    pub detail: String,
}

/// What [`QueueManager::operate_many`] did with each key, in one
/// transaction.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// Changed (or removed).
    pub done: Vec<MessageKey>,
    /// Already as asked (a held message held again).
    pub unchanged: Vec<MessageKey>,
    /// Changed since the cutoff's time, or gone: left alone.
    pub changed: Vec<MessageKey>,
    /// Refused by the status rules: (key, why).
    pub refused: Vec<(MessageKey, String)>,
}

/// The gateway queue with the operator's tools: what a queue manager (the
/// CLI, the control API, the console) needs beyond what the services use.
pub trait QueueManager: GatewayQueue {
    /// The messages matching `search`, one page in key order, without their
    /// content. Looks at no more than [`SCAN_BUDGET`] messages (see the
    /// module documentation).
    fn search(
        &self,
        search: &Search,
        page: &PageRequest,
    ) -> Result<Page<MessageSummary>, QueueError>;

    /// An operator's action on one message, as [`super::rules::operator`]
    /// decides it, in one transaction with its audit entry. With `edit`, the
    /// content is replaced and the edit recorded as a history version first
    /// (edit-and-resubmit). Returns the message's status afterwards (None:
    /// deleted).
    fn operate(
        &self,
        key: MessageKey,
        action: OperatorAction,
        edit: Option<Edit>,
        audit: &NewAudit,
    ) -> Result<Option<Status>, QueueError>;

    /// The same action on several messages in one transaction, skipping
    /// those changed since `unchanged_since` (ms), with one audit entry
    /// listing the messages changed. A message the rules refuse is reported,
    /// not an error.
    fn operate_many(
        &self,
        keys: &[MessageKey],
        action: OperatorAction,
        unchanged_since: Option<u64>,
        audit: &NewAudit,
    ) -> Result<Chunk, QueueError>;

    /// Writes an audit entry on its own (an action on something else than
    /// messages: a job). Returns its id.
    fn record_audit(&self, audit: &NewAudit) -> Result<u64, QueueError>;

    /// The audit log, newest first: entries with an id below `before` (all
    /// when None), at most `limit`. [`Page::next`] is the `before` of the
    /// next page.
    fn audit_log(&self, before: Option<u64>, limit: usize) -> Result<Page<AuditEntry>, QueueError>;

    /// The audit entries about one message, oldest first.
    fn message_audit(&self, key: MessageKey) -> Result<Vec<AuditEntry>, QueueError>;

    /// For each status that has messages: the oldest one's key and when it
    /// was queued (ms since the epoch) — the age of the oldest waiting
    /// message for metrics and the console's overview.
    fn oldest(&self) -> Result<Vec<(Status, MessageKey, u64)>, QueueError>;

    /// One step of a pruning pass (see [`super::retention`]): in one short
    /// transaction, looks at no more than `budget` records of the log
    /// `cursor` is at, from where it stopped, removes those `policy` says
    /// are too old (or too many) at `now_ms` and that are about no message
    /// still in the queue, and moves `cursor` on (to the next log when this
    /// one is done). Call it again until `cursor.done()`.
    fn prune(
        &self,
        policy: &Retention,
        now_ms: u64,
        cursor: &mut PruneCursor,
        budget: usize,
    ) -> Result<Pruned, QueueError>;
}
