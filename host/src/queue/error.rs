//! Errors of the gateway queue. Every message says what went wrong and what
//! the operator (or the calling code) can do about it.

use std::path::PathBuf;

use super::{MessageKey, Status};

/// Why a gateway queue operation failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// Another Ferry host (another process, or another open in this one)
    /// already has the queue database of this data directory open.
    #[error(
        "data directory {} is in use by another Ferry host (ferry.redb is locked); \
         stop the other host, or use a configuration whose `data_dir` is another folder",
        dir.display()
    )]
    InUse {
        /// The data directory.
        dir: PathBuf,
    },

    /// The data directory could not be created or the database file could not
    /// be opened.
    #[error(
        "cannot open the gateway queue database {}: {reason}; check that the data \
         directory exists, is writable by this user, and is on a local disk",
        path.display()
    )]
    Open {
        /// The database file (or the directory that could not be created).
        path: PathBuf,
        /// What the operating system or redb said.
        reason: String,
    },

    /// The database file was written by a newer version of Ferry whose format
    /// this version cannot read.
    #[error(
        "the gateway queue database {} has format version {found}, but this Ferry \
         reads versions up to {supported}; run the newer Ferry that wrote it, or \
         set `data_dir` to another folder",
        path.display()
    )]
    NewerFormat {
        /// The database file.
        path: PathBuf,
        /// The format version found in the file.
        found: u64,
        /// The newest format version this build understands.
        supported: u64,
    },

    /// A read or write of the database failed (disk full, I/O error, ...).
    #[error(
        "gateway queue storage error: {0}; check free disk space and the health \
         of the disk holding the data directory, then restart the host"
    )]
    Storage(#[source] Box<dyn std::error::Error + Send + Sync>),

    /// A stored record could not be decoded.
    #[error(
        "gateway queue record {table}/{key} cannot be read ({reason}); the database \
         was written by a newer Ferry or is damaged: restore the data directory \
         from a backup or run the Ferry version that wrote it"
    )]
    Corrupt {
        /// The table holding the record.
        table: &'static str,
        /// The record's key.
        key: String,
        /// What is wrong with it.
        reason: String,
    },

    /// The message is not (or no longer) in the queue.
    #[error(
        "message {key} is not in the gateway queue (it was processed, deleted, or \
         never existed); list the queue to find the message you mean"
    )]
    NotFound {
        /// The message key asked for.
        key: MessageKey,
    },

    /// An operator action is not allowed in the message's current status.
    #[error("cannot {action} message {key}: it is {status}; {hint}")]
    NotAllowed {
        /// The message.
        key: MessageKey,
        /// What was attempted ("hold", "release", "delete").
        action: &'static str,
        /// The message's status.
        status: Status,
        /// What to do instead.
        hint: &'static str,
    },

    /// A claim or commit presented a lease that was fenced off: the owner's
    /// work was returned to Ready (at its restart, or by another host when
    /// the lease expired), so it may not claim or commit under it.
    #[error(
        "the lease {epoch} of {owner} is no longer valid ({}): its claimed messages \
         were returned to Ready and will be processed again; nothing was written \
         under this lease",
        match current {
            Some(c) => format!("the owner's current lease is {c}"),
            None => "the owner has no lease now".to_string(),
        }
    )]
    StaleLease {
        /// The owner.
        owner: String,
        /// The epoch presented.
        epoch: u64,
        /// The owner's current epoch, if it has one.
        current: Option<u64>,
    },

    /// A transaction logged a `MessageId` that is already in the message
    /// log: another commit (another host) processed a message with that id
    /// first. Nothing of the transaction was applied; its messages go back
    /// to Ready, and processed again they are found to be duplicates.
    #[error(
        "MessageId {message_id} is already in the message log (a message with this id \
         was processed meanwhile); the messages of this commit are processed again"
    )]
    Duplicate {
        /// The normalised `MessageId`.
        message_id: String,
    },

    /// A change to a message in flight (or meant for one) was refused:
    /// another owner holds its claim, the claim was lost, or the change
    /// tried to set a status only claiming gives.
    #[error(
        "PostgreSQL gateway queue: {0}; check that the database server runs and is \
         reachable (the host keeps retrying)"
    )]
    Database(String),

    /// A conflict between two transactions (a deadlock, a serialization
    /// failure): nothing was applied and running it again may succeed.
    #[error("PostgreSQL gateway queue: {0}; nothing was applied, the transaction is retried")]
    Retry(String),

    #[error("message {key}: {reason}")]
    Claim {
        /// The message.
        key: MessageKey,
        /// Why.
        reason: String,
    },

    /// A [`Transaction`](super::Transaction) was refused as a whole: one of
    /// its changes was invalid, so none of them was applied.
    #[error(
        "transaction rejected, nothing in it was applied: change {index} ({change}): \
         {reason}"
    )]
    Rejected {
        /// Index of the offending change in the transaction (0-based).
        index: usize,
        /// Which kind of change it was.
        change: &'static str,
        /// Why it was refused.
        reason: Box<QueueError>,
    },
}

impl QueueError {
    /// The error an operator action gets when the message's status forbids it.
    pub(crate) fn not_allowed(key: MessageKey, action: &'static str, status: Status) -> Self {
        let hint = match status {
            Status::InProcess | Status::InTransportProcess => {
                "a service is working on it; wait until it finishes (or, if the host \
                 stopped, restart it: start-up returns unfinished messages to Ready)"
            }
            Status::MalformedXml => {
                "its content is not a valid message: see why with `ferry queue show ID`, \
                 then correct it with `ferry queue resubmit ID --content FILE` (or delete \
                 it with `ferry queue delete ID`)"
            }
            Status::Ready if action == "resubmit" => {
                "it is waiting already; hold it first to edit it"
            }
            Status::Ready => "only held or failed messages can be released",
            Status::Hold | Status::Error => "this action does not apply to it",
        };
        QueueError::NotAllowed {
            key,
            action,
            status,
            hint,
        }
    }
}

impl QueueError {
    /// A storage error of a backend (its own error type stays inside it).
    pub fn storage(e: impl std::error::Error + Send + Sync + 'static) -> Self {
        QueueError::Storage(Box::new(e))
    }
}

/// A status (or direction) name that is not one of the known words.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} '{given}'; expected one of: {expected}")]
pub struct ParseError {
    /// What was being parsed ("message status", "direction").
    pub what: &'static str,
    /// The text given.
    pub given: String,
    /// The accepted words.
    pub expected: &'static str,
}
