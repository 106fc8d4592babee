//! The operations of the queue manager — the same for the CLI on a stopped
//! host, the control API of a running one, and the console — behind one
//! trait, [`Manager`].
//!
//! [`Local`] does them on a queue this process holds: the CLI's when no
//! host runs, the running host's own when it serves the API. The CLI's
//! client of a running host (`control::client::Remote`) implements the same
//! trait over HTTP, so every command is written once and the user never has
//! to know which one answered.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::config::{JobConfig, Role};
use crate::envelope::{self, Parsed};
use crate::queue::manage::{
    AuditEntry, Cutoff, Edit, MessageSummary, NewAudit, Page, PageRequest, Search,
};
use crate::queue::rules::OperatorAction;
use crate::queue::{
    Exception, ExceptionFilter, HistoryEntry, MessageKey, QueueError, QueueManager, QueuedMessage,
    Status,
};
use crate::scheduler::state::{self, StateStore};
use crate::scheduler::{
    Action, Clock, Controls, JobState, JobStatus, QueueStore, Responder, SchedulerError,
    SystemClock, format_rfc3339, report,
};

/// How long a job action waits for the running scheduler to apply it.
pub const JOB_TIMEOUT: Duration = Duration::from_secs(10);

/// The largest edited content accepted (AIF's limit for one message).
pub const MAX_CONTENT: usize = 10 << 20;

/// How many messages a bulk action changes per transaction.
pub const BULK_CHUNK: usize = 500;

/// The history stage of an operator's edit.
pub const EDIT_STAGE: &str = "operator edit";

/// Why an operation failed: the kind decides the HTTP status, the text is
/// what the user reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "kind", content = "error", rename_all = "kebab-case")]
pub enum OpError {
    /// No such message, job or version (404).
    #[error("{0}")]
    NotFound(String),
    /// Not allowed in the current state (409): a status rule, a job's state.
    #[error("{0}")]
    Refused(String),
    /// The request itself is wrong (400).
    #[error("{0}")]
    BadRequest(String),
    /// No token, or one the host does not know (401).
    #[error("{0}")]
    Unauthorized(String),
    /// The token does not allow it (403): a viewer's change.
    #[error("{0}")]
    Forbidden(String),
    /// The host could not do it now (503): its scheduler did not answer.
    #[error("{0}")]
    Unavailable(String),
    /// Something broke (500): storage, a corrupt record.
    #[error("{0}")]
    Internal(String),
}

impl OpError {
    /// The HTTP status for it.
    pub fn http_status(&self) -> u16 {
        match self {
            OpError::NotFound(_) => 404,
            OpError::Refused(_) => 409,
            OpError::BadRequest(_) => 400,
            OpError::Unauthorized(_) => 401,
            OpError::Forbidden(_) => 403,
            OpError::Unavailable(_) => 503,
            OpError::Internal(_) => 500,
        }
    }
}

impl From<QueueError> for OpError {
    fn from(e: QueueError) -> Self {
        match e {
            QueueError::NotFound { key } => {
                OpError::NotFound(format!("no message with queue id {key}"))
            }
            e @ QueueError::NotAllowed { .. } => OpError::Refused(e.to_string()),
            e => OpError::Internal(e.to_string()),
        }
    }
}

impl From<SchedulerError> for OpError {
    fn from(e: SchedulerError) -> Self {
        OpError::Internal(e.to_string())
    }
}

/// Who acts, as the audit log names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The name: a token's, or `cli:USER` on a stopped host.
    pub who: String,
    /// What they may do.
    pub role: Role,
}

impl Actor {
    /// The user running this command on this machine (stopped host: the
    /// queue is opened directly, with the user's file permissions).
    pub fn local_user() -> Actor {
        Actor {
            who: format!("cli:{}", local_user_name()),
            role: Role::Operator,
        }
    }

    fn audit(&self, action: &str, detail: String) -> NewAudit {
        NewAudit {
            who: self.who.clone(),
            action: action.to_string(),
            detail,
        }
    }
}

/// The login name of this process's user (`$USER`, `$LOGNAME`, or the uid).
pub fn local_user_name() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .ok()
        .filter(|u| !u.is_empty())
        // SAFETY: getuid has no preconditions and cannot fail.
        .unwrap_or_else(|| format!("uid {}", unsafe { libc::getuid() }))
}

/// One version of a message's document: a history entry, or the content
/// queued now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Version {
    /// 1, 2, ...: the order written.
    pub number: usize,
    /// When it was written (ms since the epoch).
    pub time_ms: u64,
    /// The stage that produced it ("queued now" for the current content).
    pub stage: String,
    /// The port.
    pub port: String,
    /// (name, sha256) of each plugin that produced it.
    pub plugins: Vec<(String, String)>,
    /// The document.
    pub content: String,
}

/// One message as the manager shows it: header, status and content, every
/// version of its document, its exceptions and the operators' actions on it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageView {
    /// The message (with its content).
    pub message: QueuedMessage,
    /// Its document's versions: its history, then the content queued now
    /// when that differs from the last one.
    pub versions: Vec<Version>,
    /// The exception log entries about it.
    pub exceptions: Vec<Exception>,
    /// The audit entries about it (who held, resubmitted, edited it, when).
    pub audit: Vec<AuditEntry>,
}

impl MessageView {
    /// How many times it was resubmitted (with or without an edit).
    pub fn resubmits(&self) -> usize {
        self.audit
            .iter()
            .filter(|a| a.action == "resubmit" || a.action.ends_with("resubmit"))
            .count()
    }

    /// Version `n` (1-based).
    pub fn version(&self, n: usize) -> Result<&Version, OpError> {
        self.versions.iter().find(|v| v.number == n).ok_or_else(|| {
            OpError::NotFound(format!(
                "message {} has no version {n} (it has {})",
                self.message.key,
                self.versions.len()
            ))
        })
    }

    /// A unified diff from version `a` to version `b`; by default the last
    /// two.
    pub fn diff(&self, a: Option<usize>, b: Option<usize>) -> Result<String, OpError> {
        let n = self.versions.len();
        let b = b.unwrap_or(n);
        let a = a.unwrap_or(b.saturating_sub(1));
        if n < 2 && (a == 0 || b == 0) {
            return Err(OpError::NotFound(format!(
                "message {} has {n} version(s): nothing to compare",
                self.message.key
            )));
        }
        let (va, vb) = (self.version(a)?, self.version(b)?);
        let diff = similar::TextDiff::from_lines(&va.content, &vb.content);
        Ok(diff
            .unified_diff()
            .context_radius(3)
            .header(
                &format!("version {a} ({})", va.stage),
                &format!("version {b} ({})", vb.stage),
            )
            .to_string())
    }
}

/// `ferry history`: a `MessageId`'s document history wherever it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    /// The versions kept, in order.
    pub history: Vec<HistoryEntry>,
    /// Whether the message log has it (processed).
    pub processed: bool,
    /// The messages with this `MessageId` queued now.
    pub queued: Vec<MessageSummary>,
}

/// Which exceptions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExceptionQuery {
    /// Only this port.
    pub port: Option<String>,
    /// Only this `MessageId`.
    pub message_id: Option<String>,
    /// Only this queued message.
    pub message_key: Option<MessageKey>,
    /// Only the newest N.
    pub limit: Option<usize>,
}

/// The result of an action on one message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionReply {
    /// The message.
    pub key: MessageKey,
    /// Its status now (`None`: deleted).
    pub status: Option<Status>,
    /// One line for people.
    pub text: String,
}

/// A bulk action's verb.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum BulkAction {
    /// Hold every match.
    Hold,
    /// Release every match.
    Release,
    /// Resubmit every match.
    Resubmit,
    /// Delete every match.
    Delete,
}

impl BulkAction {
    /// The operator action.
    pub fn operator(self) -> OperatorAction {
        match self {
            BulkAction::Hold => OperatorAction::Hold,
            BulkAction::Release => OperatorAction::Release,
            BulkAction::Resubmit => OperatorAction::Resubmit,
            BulkAction::Delete => OperatorAction::Delete,
        }
    }

    /// The word.
    pub fn word(self) -> &'static str {
        self.operator().word()
    }
}

impl std::str::FromStr for BulkAction {
    type Err = OpError;
    fn from_str(s: &str) -> Result<Self, OpError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hold" => Ok(BulkAction::Hold),
            "release" => Ok(BulkAction::Release),
            "resubmit" => Ok(BulkAction::Resubmit),
            "delete" => Ok(BulkAction::Delete),
            _ => Err(OpError::BadRequest(format!(
                "unknown bulk action {s:?}; expected hold, release, resubmit or delete"
            ))),
        }
    }
}

/// A bulk action: on every message matching `search` that matched at
/// `cutoff` (now, when not given).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BulkRequest {
    /// What to do.
    pub action: BulkAction,
    /// On which messages.
    #[serde(default)]
    pub search: Search,
    /// As the operator saw them; `None`: as they are now.
    #[serde(default)]
    pub cutoff: Option<Cutoff>,
    /// Only count: change nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What a bulk action did (or, in a dry run, would do).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BulkReport {
    /// The cutoff it used: pass it to act on exactly these messages.
    pub cutoff: Option<Cutoff>,
    /// Whether nothing was changed.
    pub dry_run: bool,
    /// The messages that matched at the cutoff.
    pub matched: u64,
    /// Changed.
    pub done: u64,
    /// Already as asked.
    pub unchanged: u64,
    /// Changed by someone or something else since the cutoff: left alone.
    pub changed: u64,
    /// Refused by the status rules.
    pub refused: u64,
    /// The first refusals' reasons.
    pub refusals: Vec<(MessageKey, String)>,
}

/// The reply to a job action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobReply {
    /// The job's status afterwards.
    pub status: Option<JobStatus>,
    /// One line for people.
    pub text: String,
}

/// The queue manager's operations, wherever they run.
pub trait Manager {
    /// One page of messages matching `search`.
    fn search(&self, search: &Search, page: &PageRequest) -> Result<Page<MessageSummary>, OpError>;

    /// One message with its versions, exceptions and audit entries.
    fn show(&self, key: MessageKey) -> Result<MessageView, OpError>;

    /// Hold, release, delete, or resubmit unchanged.
    fn act(
        &self,
        key: MessageKey,
        action: OperatorAction,
        actor: &Actor,
    ) -> Result<ActionReply, OpError>;

    /// Edit-and-resubmit: `content` becomes a new version of the document
    /// and the message is Ready.
    fn resubmit_edited(
        &self,
        key: MessageKey,
        content: String,
        actor: &Actor,
    ) -> Result<ActionReply, OpError>;

    /// A bulk action (or its dry run).
    fn bulk(&self, request: &BulkRequest, actor: &Actor) -> Result<BulkReport, OpError>;

    /// The exception log, oldest first.
    fn exceptions(&self, query: &ExceptionQuery) -> Result<Vec<Exception>, OpError>;

    /// A `MessageId`'s history.
    fn history(&self, message_id: &str) -> Result<HistoryView, OpError>;

    /// The audit log, newest first.
    fn audit(&self, before: Option<u64>, limit: usize) -> Result<Page<AuditEntry>, OpError>;

    /// `ferry job list`'s table.
    fn jobs(&self) -> Result<String, OpError>;

    /// `ferry job history`'s text.
    fn job_history(&self, job: &str, last: Option<usize>) -> Result<String, OpError>;

    /// Hold, release, run-now or cancel a job.
    fn job_action(&self, job: &str, action: Action, actor: &Actor) -> Result<JobReply, OpError>;

    /// The hot-loading status of the running host (`None`: none written).
    fn plugins(&self) -> Result<Option<crate::reload::Status>, OpError>;

    /// How many messages per direction, port and status.
    fn counts(&self) -> Result<Vec<(crate::queue::Direction, String, Status, u64)>, OpError>;
}

/// Every message matching `search` (page after page), up to `max`.
pub fn search_all(
    m: &dyn Manager,
    search: &Search,
    max: usize,
) -> Result<Vec<MessageSummary>, OpError> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = m.search(
            search,
            &PageRequest {
                after,
                limit: crate::queue::manage::MAX_PAGE,
                max_key: None,
            },
        )?;
        out.extend(page.items);
        if out.len() >= max {
            out.truncate(max);
            return Ok(out);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The running scheduler, for a [`Local`] inside `ferry run`.
#[derive(Clone)]
pub struct Scheduler {
    /// Its controls.
    pub controls: Controls,
    /// Its clock.
    pub clock: Arc<dyn Clock>,
}

/// The operations on a queue this process holds.
#[derive(Clone)]
pub struct Local {
    /// The queue.
    pub queue: Arc<dyn QueueManager>,
    /// The jobs of the configuration.
    pub jobs: Vec<JobConfig>,
    /// The data directory (the hot-loading status file).
    pub data_dir: PathBuf,
    /// The scope of this host's job state in the queue's state area
    /// ([`crate::config::QueueConfig::job_scope`]).
    pub job_scope: String,
    /// The running scheduler, inside `ferry run`; `None` on a stopped host
    /// (job actions change the stored state, applied at the next start).
    pub scheduler: Option<Scheduler>,
    /// The configuration's ports (the console's overview lists them).
    pub ports: Vec<PortInfo>,
}

/// A configured port, as the console's overview lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PortInfo {
    /// Its name.
    pub name: String,
    /// `inbound` or `outbound`.
    pub direction: String,
    /// Its adapter.
    pub adapter: String,
    /// Its address (a folder for the file adapter).
    pub address: String,
}

impl PortInfo {
    /// The ports of a configuration.
    pub fn of(config: &crate::config::Config) -> Vec<PortInfo> {
        config
            .ports
            .values()
            .map(|p| PortInfo {
                name: p.name.clone(),
                direction: match p.direction {
                    crate::config::PortDirection::Inbound => "inbound".into(),
                    crate::config::PortDirection::Outbound => "outbound".into(),
                },
                adapter: p.adapter.clone(),
                address: p.address.display().to_string(),
            })
            .collect()
    }
}

fn now_ms() -> u64 {
    SystemClock.now_ms()
}

impl Local {
    fn store(&self) -> QueueStore {
        let q: Arc<dyn crate::queue::GatewayQueue> = self.queue.clone();
        QueueStore(q, self.job_scope.clone())
    }

    fn job(&self, name: &str) -> Result<&JobConfig, OpError> {
        self.jobs.iter().find(|j| j.name == name).ok_or_else(|| {
            OpError::NotFound(
                SchedulerError::unknown_job(name, self.jobs.iter().map(|j| j.name.as_str()))
                    .to_string(),
            )
        })
    }

    fn message(&self, key: MessageKey) -> Result<QueuedMessage, OpError> {
        self.queue
            .get(key)?
            .ok_or_else(|| OpError::NotFound(format!("no message with queue id {key}")))
    }

    /// The edit of `msg` to `content`: checked, with its header and history
    /// version.
    fn edit(msg: &QueuedMessage, content: String) -> Result<Edit, OpError> {
        if content.len() > MAX_CONTENT {
            return Err(OpError::BadRequest(format!(
                "the edited content is {} bytes; at most {MAX_CONTENT} are accepted",
                content.len()
            )));
        }
        // A message that failed in its port's transforms keeps its raw
        // input, which the transforms read again; everything else is an
        // envelope.
        let header = if crate::services::receive::failed_in_transform(msg) {
            None
        } else {
            match envelope::parse(&content) {
                Ok(Parsed::Single(e)) => Some((e.header.message_id, e.header.action)),
                Ok(Parsed::Batch(_)) => {
                    return Err(OpError::BadRequest(
                        "the edited content is a batch; resubmit one envelope per message".into(),
                    ));
                }
                Err(e) => {
                    return Err(OpError::BadRequest(format!(
                        "the edited content is not a message envelope: {e}"
                    )));
                }
            }
        };
        let message_id = header
            .as_ref()
            .map_or(msg.message_id.clone(), |(id, _)| id.clone());
        Ok(Edit {
            history: HistoryEntry {
                time_ms: now_ms(),
                message_id,
                message_key: Some(msg.key),
                port: msg.port.clone(),
                stage: EDIT_STAGE.to_string(),
                plugins: Vec::new(),
                content: content.clone(),
            },
            content,
            header,
        })
    }

    fn reply(key: MessageKey, status: Option<Status>, action: OperatorAction) -> ActionReply {
        let text = match (action, status) {
            (_, None) => format!("message {key} deleted"),
            (OperatorAction::Hold, Some(_)) => format!("message {key} is on hold"),
            (OperatorAction::Resubmit, Some(s)) => format!("message {key} resubmitted: it is {s}"),
            (_, Some(s)) => format!("message {key} is {s}"),
        };
        ActionReply { key, status, text }
    }

    fn require_operator(actor: &Actor) -> Result<(), OpError> {
        match actor.role {
            Role::Operator => Ok(()),
            Role::Viewer => Err(OpError::Forbidden(format!(
                "{} is a viewer: viewers cannot change anything",
                actor.who
            ))),
        }
    }
}

/// A search in words, as the audit log records it (`port=in status=error`).
pub fn describe(search: &Search) -> String {
    let mut parts = Vec::new();
    if let Some(d) = search.direction {
        parts.push(format!("direction={d}"));
    }
    if let Some(p) = &search.port {
        parts.push(format!("port={p}"));
    }
    if let Some(s) = search.status {
        parts.push(format!("status={s}"));
    }
    if let Some(c) = &search.conversation_id {
        parts.push(format!("conversation={c}"));
    }
    if let Some(m) = &search.message_id {
        parts.push(format!("message-id={m}"));
    }
    if let Some(n) = &search.name {
        parts.push(format!("name~{n}"));
    }
    if let Some(t) = search.from_ms {
        parts.push(format!("from={}", format_rfc3339(t)));
    }
    if let Some(t) = search.to_ms {
        parts.push(format!("to={}", format_rfc3339(t)));
    }
    if let Some(e) = &search.error {
        parts.push(format!("error~{e}"));
    }
    if parts.is_empty() {
        "every message".into()
    } else {
        parts.join(" ")
    }
}

impl Manager for Local {
    fn search(&self, search: &Search, page: &PageRequest) -> Result<Page<MessageSummary>, OpError> {
        Ok(self.queue.search(search, page)?)
    }

    fn show(&self, key: MessageKey) -> Result<MessageView, OpError> {
        let message = self.message(key)?;
        let mut versions: Vec<Version> = if message.message_id.is_empty() {
            Vec::new()
        } else {
            self.queue
                .history(&message.message_id)?
                .into_iter()
                // Another message with the same MessageId (a duplicate, a
                // response) has its own versions.
                .filter(|h| h.message_key.is_none_or(|k| k == key))
                .enumerate()
                .map(|(i, h)| Version {
                    number: i + 1,
                    time_ms: h.time_ms,
                    stage: h.stage,
                    port: h.port,
                    plugins: h.plugins,
                    content: h.content,
                })
                .collect()
        };
        if versions.last().is_none_or(|v| v.content != message.content) {
            versions.push(Version {
                number: versions.len() + 1,
                time_ms: message.updated_ms,
                stage: "queued now".into(),
                port: message.port.clone(),
                plugins: Vec::new(),
                content: message.content.clone(),
            });
        }
        let exceptions = self.queue.exceptions(&ExceptionFilter {
            message_key: Some(key),
            ..ExceptionFilter::default()
        })?;
        let audit = self.queue.message_audit(key)?;
        Ok(MessageView {
            message,
            versions,
            exceptions,
            audit,
        })
    }

    fn act(
        &self,
        key: MessageKey,
        action: OperatorAction,
        actor: &Actor,
    ) -> Result<ActionReply, OpError> {
        Self::require_operator(actor)?;
        if action == OperatorAction::Resubmit {
            let m = self.message(key)?;
            if m.status == Status::MalformedXml {
                return Err(OpError::Refused(format!(
                    "message {key} is Malformed XML: resubmitted unchanged it would fail again; \
                     correct it with `ferry queue resubmit ID --content FILE` (or in the \
                     console's editor)"
                )));
            }
        }
        let status = self.queue.operate(
            key,
            action,
            None,
            &actor.audit(action.word(), String::new()),
        )?;
        Ok(Self::reply(key, status, action))
    }

    fn resubmit_edited(
        &self,
        key: MessageKey,
        content: String,
        actor: &Actor,
    ) -> Result<ActionReply, OpError> {
        Self::require_operator(actor)?;
        let msg = self.message(key)?;
        let edit = Self::edit(&msg, content)?;
        let detail = format!("{} bytes", edit.content.len());
        let status = self.queue.operate(
            key,
            OperatorAction::Resubmit,
            Some(edit),
            &actor.audit("edit-and-resubmit", detail),
        )?;
        let mut r = Self::reply(key, status, OperatorAction::Resubmit);
        r.text = format!("message {key} edited and resubmitted: it is Ready");
        Ok(r)
    }

    fn bulk(&self, request: &BulkRequest, actor: &Actor) -> Result<BulkReport, OpError> {
        if !request.dry_run {
            Self::require_operator(actor)?;
        }
        let cutoff = match request.cutoff {
            Some(c) => c,
            None => Cutoff {
                key: self.queue.last_key()?,
                time_ms: now_ms(),
            },
        };
        let action = request.action.operator();
        let audit = actor.audit(
            &format!("bulk-{}", request.action.word()),
            format!(
                "{}; cutoff: received up to #{} and unchanged since {}",
                describe(&request.search),
                cutoff.key,
                format_rfc3339(cutoff.time_ms)
            ),
        );
        let mut report = BulkReport {
            cutoff: Some(cutoff),
            dry_run: request.dry_run,
            ..BulkReport::default()
        };
        let mut after = None;
        loop {
            let page = self.queue.search(
                &request.search,
                &PageRequest {
                    after,
                    limit: BULK_CHUNK,
                    max_key: Some(cutoff.key),
                },
            )?;
            let mut keys = Vec::with_capacity(page.items.len());
            for m in &page.items {
                if m.updated_ms > cutoff.time_ms {
                    // It changed after the operator looked: it may not have
                    // matched then.
                    continue;
                }
                report.matched += 1;
                if action == OperatorAction::Resubmit && m.status == Status::MalformedXml {
                    report.refused += 1;
                    if report.refusals.len() < 20 {
                        report.refusals.push((
                            m.key,
                            format!(
                                "message {} is Malformed XML: resubmit it with corrected content",
                                m.key
                            ),
                        ));
                    }
                    continue;
                }
                keys.push(m.key);
            }
            if !request.dry_run && !keys.is_empty() {
                let chunk = self
                    .queue
                    .operate_many(&keys, action, Some(cutoff.time_ms), &audit)?;
                report.done += chunk.done.len() as u64;
                report.unchanged += chunk.unchanged.len() as u64;
                report.changed += chunk.changed.len() as u64;
                report.matched -= chunk.changed.len() as u64;
                report.refused += chunk.refused.len() as u64;
                for r in chunk.refused {
                    if report.refusals.len() < 20 {
                        report.refusals.push(r);
                    }
                }
            }
            match page.next {
                Some(n) => after = Some(n),
                None => break,
            }
        }
        Ok(report)
    }

    fn exceptions(&self, query: &ExceptionQuery) -> Result<Vec<Exception>, OpError> {
        Ok(self.queue.exceptions(&ExceptionFilter {
            port: query.port.clone(),
            message_id: query.message_id.clone(),
            message_key: query.message_key,
            limit: query.limit,
        })?)
    }

    fn history(&self, message_id: &str) -> Result<HistoryView, OpError> {
        let history = self.queue.history(message_id)?;
        let log_id = crate::services::inbound::message_log_id(message_id);
        let processed = self.queue.is_processed(&log_id)?;
        let queued = search_all(
            self,
            &Search {
                message_id: Some(message_id.to_string()),
                ..Search::default()
            },
            1000,
        )?;
        Ok(HistoryView {
            history,
            processed,
            queued,
        })
    }

    fn audit(&self, before: Option<u64>, limit: usize) -> Result<Page<AuditEntry>, OpError> {
        Ok(self.queue.audit_log(before, limit)?)
    }

    fn jobs(&self) -> Result<String, OpError> {
        let store = self.store();
        let running = self.scheduler.is_some();
        Ok(report::list(self.jobs.iter(), &store, now_ms(), running)?)
    }

    fn job_history(&self, job: &str, last: Option<usize>) -> Result<String, OpError> {
        let job = self.job(job)?;
        Ok(report::history(job, &self.store(), last)?)
    }

    fn job_action(&self, name: &str, action: Action, actor: &Actor) -> Result<JobReply, OpError> {
        Self::require_operator(actor)?;
        let job = self.job(name)?.clone();
        let audit = actor.audit(&format!("job-{}", action.name()), format!("job {name}"));
        let reply = match &self.scheduler {
            Some(s) => {
                let (tx, rx) = std::sync::mpsc::sync_channel::<Result<JobState, String>>(1);
                s.controls.request_with_reply(
                    name,
                    action,
                    Responder::new(move |outcome| {
                        let _ = tx.send(outcome);
                    }),
                );
                match rx.recv_timeout(JOB_TIMEOUT) {
                    Ok(Ok(st)) => JobReply {
                        status: Some(st.status),
                        text: report::action_text(&job, &st, action, s.clock.now_ms(), true),
                    },
                    Ok(Err(text)) => return Err(OpError::Refused(text)),
                    Err(_) => {
                        return Err(OpError::Unavailable(format!(
                            "the running host took the request but its scheduler did not \
                             answer within {}s: it is busy (a task is running, or the host is \
                             still loading its plugins). The request is applied at the \
                             scheduler's next step, unless the host stops first; see `ferry \
                             job list`",
                            JOB_TIMEOUT.as_secs()
                        )));
                    }
                }
            }
            None => {
                let store = self.store();
                let now = now_ms();
                let mut text = String::new();
                // As at the next start: an occurrence a crash left Executing
                // is Error.
                if let Some(r) = state::recover(&store, name, now)?
                    && let Some(o) = r.occurrence
                {
                    text.push_str(&format!(
                        "occurrence #{} was interrupted by a host stop; it is now recorded as \
                         Error\n",
                        o.seq
                    ));
                }
                let mut st = state::load_state(&store, name)?.unwrap_or_else(|| JobState::new(now));
                state::apply(name, &mut st, action).map_err(|e| OpError::Refused(e.to_string()))?;
                state::save(&store as &dyn StateStore, name, &st, None, vec![])?;
                text.push_str(&report::action_text(&job, &st, action, now, false));
                JobReply {
                    status: Some(st.status),
                    text,
                }
            }
        };
        self.queue.record_audit(&audit)?;
        Ok(reply)
    }

    fn plugins(&self) -> Result<Option<crate::reload::Status>, OpError> {
        crate::reload::Status::read(&self.data_dir).map_err(|e| OpError::Internal(e.to_string()))
    }

    fn counts(&self) -> Result<Vec<(crate::queue::Direction, String, Status, u64)>, OpError> {
        Ok(self.queue.counts()?)
    }
}
