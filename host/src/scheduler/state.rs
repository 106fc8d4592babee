//! Job state and history, persisted in the gateway queue's key/value state
//! area (compact JSON):
//!
//! | key | value |
//! |---|---|
//! | `job/NAME/state` | [`JobState`]: status, occurrences so far, last run, run-now flag, the occurrence in progress |
//! | `job/NAME/history/SEQ` (SEQ: 20 digits) | [`Occurrence`]: start, end, status, each task's status and counts |
//!
//! A job's state and the history record of its occurrence are always
//! written in one transaction. The operator actions (hold, release, run-now,
//! cancel) are pure transitions of [`JobState`].

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use super::conditions::TaskStatus;
use crate::config::TaskKind;
use crate::queue::{GatewayQueue, QueueError, Transaction};
use crate::services::TaskCounts;

/// A batch job's status (AX's batch job statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JobStatus {
    /// Held by an operator: not run until released.
    Withhold,
    /// Waiting for its next occurrence: the only status the scheduler runs.
    Waiting,
    /// An occurrence is running.
    Executing,
    /// Its recurrence is over and its last occurrence ended in error. (For an
    /// occurrence: a task ended in Error, or the host stopped during it.)
    Error,
    /// Its recurrence is over and its last occurrence ended without error.
    /// (For an occurrence: every task ended, ignored failures aside.)
    Ended,
    /// An operator canceled it while it was executing; it becomes Canceled
    /// when the current task ends.
    Canceling,
    /// Canceled by an operator: never run again until released. (For an
    /// occurrence: canceled, or the host was asked to stop, before its
    /// tasks were all done.)
    Canceled,
}

impl JobStatus {
    /// Every status, in AX's order.
    pub const ALL: [JobStatus; 7] = [
        JobStatus::Withhold,
        JobStatus::Waiting,
        JobStatus::Executing,
        JobStatus::Error,
        JobStatus::Ended,
        JobStatus::Canceling,
        JobStatus::Canceled,
    ];
}

impl fmt::Display for JobStatus {
    /// AX's words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            JobStatus::Withhold => "Withhold",
            JobStatus::Waiting => "Waiting",
            JobStatus::Executing => "Executing",
            JobStatus::Error => "Error",
            JobStatus::Ended => "Ended",
            JobStatus::Canceling => "Canceling",
            JobStatus::Canceled => "Canceled",
        })
    }
}

/// What started an occurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Trigger {
    /// Its recurrence.
    Schedule,
    /// `ferry job run-now`.
    RunNow,
    /// `ferry run --once`.
    Once,
    /// New input on an inbound port (a job with `on_input`).
    Input,
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::Schedule => "schedule",
            Trigger::RunNow => "run-now",
            Trigger::Once => "run --once",
            Trigger::Input => "input",
        })
    }
}

/// A job's persistent state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobState {
    /// Its status.
    pub status: JobStatus,
    /// When the scheduler first saw the job: the start of its recurrence
    /// when `start = "now"`.
    pub first_seen_ms: u64,
    /// Occurrences run so far (they count towards `end_after`).
    #[serde(default)]
    pub occurrences: u64,
    /// The number of the newest history record (0: none).
    #[serde(default)]
    pub last_seq: u64,
    /// When the last occurrence ended (or, if it was interrupted, started).
    #[serde(default)]
    pub last_end_ms: Option<u64>,
    /// How the last occurrence ended.
    #[serde(default)]
    pub last_result: Option<JobStatus>,
    /// `run-now` asked for: the next occurrence is due at once.
    #[serde(default)]
    pub run_now: bool,
    /// The occurrence in progress, if any (its history number).
    #[serde(default)]
    pub executing: Option<u64>,
}

impl JobState {
    /// The state of a job seen for the first time: Waiting.
    pub fn new(now_ms: u64) -> JobState {
        JobState {
            status: JobStatus::Waiting,
            first_seen_ms: now_ms,
            occurrences: 0,
            last_seq: 0,
            last_end_ms: None,
            last_result: None,
            run_now: false,
            executing: None,
        }
    }
}

/// What one task did in one occurrence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// The task's name.
    pub name: String,
    /// The service it runs.
    pub service: TaskKind,
    /// Its status.
    pub status: TaskStatus,
    /// How many times it was run (1 + retries).
    #[serde(default)]
    pub attempts: u32,
    /// Messages handled and failed (by the attempt that ended).
    #[serde(default)]
    pub counts: TaskCounts,
    /// Why it ended in Error (the last attempt's error).
    #[serde(default)]
    pub error: Option<String>,
    /// Its failures are ignored (an Error counts as Ended).
    #[serde(default)]
    pub ignore_failure: bool,
}

/// One occurrence of a job: its history record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Occurrence {
    /// Its number, from 1, per job.
    pub seq: u64,
    /// What started it.
    pub trigger: Trigger,
    /// The slot of the recurrence it ran for (for run-now and --once: when
    /// it was asked for).
    pub scheduled_ms: u64,
    /// When it started.
    pub start_ms: u64,
    /// When it ended (None while executing, or if the host stopped during
    /// it).
    pub end_ms: Option<u64>,
    /// Executing, Ended, Error or Canceled.
    pub status: JobStatus,
    /// Its tasks, in the job's order.
    pub tasks: Vec<TaskRecord>,
    /// A remark (e.g. that the host stopped during it).
    #[serde(default)]
    pub note: Option<String>,
}

impl Occurrence {
    /// Sum of the counts of its tasks.
    pub fn counts(&self) -> TaskCounts {
        let mut c = TaskCounts::default();
        for t in &self.tasks {
            c.done += t.counts.done;
            c.failed += t.counts.failed;
        }
        c
    }
}

/// Why a scheduler or job-command operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SchedulerError {
    /// Reading or writing the state area failed.
    #[error(transparent)]
    Store(#[from] QueueError),
    /// A stored record could not be decoded.
    #[error(
        "job record {key} cannot be read ({reason}); it was written by a newer Ferry or is \
         damaged: delete the key with a newer Ferry, or restore the data directory"
    )]
    Corrupt {
        /// The key.
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// The configuration has no such job.
    #[error("no job named {job:?} in the configuration (its jobs: {known})")]
    UnknownJob {
        /// The name asked for.
        job: String,
        /// The configured names.
        known: String,
    },
    /// An operator action does not apply in the job's status.
    #[error("cannot {action} job {job:?}: it is {status}; {hint}")]
    NotAllowed {
        /// The job.
        job: String,
        /// What was attempted.
        action: &'static str,
        /// Its status.
        status: JobStatus,
        /// What to do instead.
        hint: &'static str,
    },
}

impl SchedulerError {
    /// No job named `job` among the configured `names`.
    pub fn unknown_job<'a>(job: &str, names: impl IntoIterator<Item = &'a str>) -> SchedulerError {
        SchedulerError::UnknownJob {
            job: job.to_string(),
            known: names.into_iter().collect::<Vec<_>>().join(", "),
        }
    }
}

/// An operator action on a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Withhold: not run until released.
    Hold,
    /// Waiting again (from Withhold, Canceled, Ended or Error).
    Release,
    /// The next occurrence is due at once.
    RunNow,
    /// Canceled (Canceling while executing): never run until released.
    Cancel,
}

impl Action {
    /// The command word.
    pub fn name(self) -> &'static str {
        match self {
            Action::Hold => "hold",
            Action::Release => "release",
            Action::RunNow => "run-now",
            Action::Cancel => "cancel",
        }
    }
}

/// Apply an operator action to a job's state (a pure transition):
///
/// | action | from | to |
/// |---|---|---|
/// | hold | Waiting, Ended, Error | Withhold |
/// | release | Withhold, Canceled, Ended, Error | Waiting |
/// | run-now | Waiting, Ended, Error | Waiting, due at once |
/// | cancel | Waiting, Withhold, Ended, Error | Canceled |
/// | cancel | Executing | Canceling (Canceled when its current task ends) |
///
/// Doing what is already so (hold a held job, ...) is accepted and changes
/// nothing; the rest is refused with a hint.
pub fn apply(job: &str, state: &mut JobState, action: Action) -> Result<(), SchedulerError> {
    use JobStatus::*;
    let refuse = |hint: &'static str| SchedulerError::NotAllowed {
        job: job.to_string(),
        action: action.name(),
        status: state.status,
        hint,
    };
    match (action, state.status) {
        (Action::Hold, Withhold) => {}
        (Action::Hold, Waiting | Ended | Error) => state.status = Withhold,
        (Action::Hold, Executing | Canceling) => {
            return Err(refuse(
                "an occurrence is running; cancel it, or hold the job once it is Waiting",
            ));
        }
        (Action::Hold, Canceled) => return Err(refuse("release it first")),
        (Action::Release, Waiting) => {}
        (Action::Release, Withhold | Canceled | Ended | Error) => state.status = Waiting,
        (Action::Release, Executing | Canceling) => {
            return Err(refuse("an occurrence is running; it is not held"));
        }
        (Action::RunNow, Waiting | Ended | Error) => {
            state.status = Waiting;
            state.run_now = true;
        }
        (Action::RunNow, Withhold | Canceled) => {
            return Err(refuse("release it first (ferry job release)"));
        }
        (Action::RunNow, Executing | Canceling) => {
            return Err(refuse("an occurrence is already running"));
        }
        (Action::Cancel, Canceled | Canceling) => {}
        (Action::Cancel, Waiting | Withhold | Ended | Error) => {
            state.status = Canceled;
            state.run_now = false;
        }
        (Action::Cancel, Executing) => {
            state.status = Canceling;
            state.run_now = false;
        }
    }
    Ok(())
}

/// The key/value store the scheduler keeps job state and history in.
pub trait StateStore: Send + Sync {
    /// One value.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError>;
    /// Every entry whose key starts with `prefix`, sorted by key.
    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError>;
    /// Set `puts` and remove `deletes`, all or nothing.
    fn write(&self, puts: Vec<(String, Vec<u8>)>, deletes: Vec<String>) -> Result<(), QueueError>;
}

/// The gateway queue's state area as a [`StateStore`], under a scope:
/// the keys of one host's jobs when several hosts share the queue
/// (`host/NAME/`), none on a queue of one host.
#[derive(Clone)]
pub struct QueueStore(pub Arc<dyn GatewayQueue>, pub String);

impl QueueStore {
    /// The whole state area (one host).
    pub fn new(queue: Arc<dyn GatewayQueue>) -> QueueStore {
        QueueStore(queue, String::new())
    }
}

impl StateStore for QueueStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError> {
        self.0.get_state(&format!("{}{key}", self.1))
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError> {
        let scope = self.1.len();
        Ok(self
            .0
            .state_keys(&format!("{}{prefix}", self.1))?
            .into_iter()
            .map(|(k, v)| (k[scope..].to_string(), v))
            .collect())
    }

    fn write(&self, puts: Vec<(String, Vec<u8>)>, deletes: Vec<String>) -> Result<(), QueueError> {
        let mut tx = Transaction::new();
        for (k, v) in puts {
            tx.put_state(format!("{}{k}", self.1), v);
        }
        for k in deletes {
            tx.delete_state(format!("{}{k}", self.1));
        }
        if tx.is_empty() {
            return Ok(());
        }
        self.0.commit(tx).map(|_| ())
    }
}

/// An in-memory [`StateStore`] (tests, tools).
#[derive(Debug, Default)]
pub struct MemStore(Mutex<BTreeMap<String, Vec<u8>>>);

impl StateStore for MemStore {
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, QueueError> {
        Ok(self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(key)
            .cloned())
    }

    fn scan(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, QueueError> {
        let map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        Ok(map
            .range(prefix.to_string()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn write(&self, puts: Vec<(String, Vec<u8>)>, deletes: Vec<String>) -> Result<(), QueueError> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for (k, v) in puts {
            map.insert(k, v);
        }
        for k in deletes {
            map.remove(&k);
        }
        Ok(())
    }
}

/// The key of a job's state.
pub fn state_key(job: &str) -> String {
    format!("job/{job}/state")
}

/// The prefix of a job's history records.
pub fn history_prefix(job: &str) -> String {
    format!("job/{job}/history/")
}

/// The key of one history record.
pub fn history_key(job: &str, seq: u64) -> String {
    format!("job/{job}/history/{seq:020}")
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, SchedulerError> {
    serde_json::from_slice(bytes).map_err(|e| SchedulerError::Corrupt {
        key: key.to_string(),
        reason: e.to_string(),
    })
}

/// Compact JSON of a record.
pub fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("job records always serialize")
}

/// A job's stored state, if it has one.
pub fn load_state(store: &dyn StateStore, job: &str) -> Result<Option<JobState>, SchedulerError> {
    let key = state_key(job);
    store.get(&key)?.map(|b| decode(&key, &b)).transpose()
}

/// One history record.
pub fn load_occurrence(
    store: &dyn StateStore,
    job: &str,
    seq: u64,
) -> Result<Option<Occurrence>, SchedulerError> {
    let key = history_key(job, seq);
    store.get(&key)?.map(|b| decode(&key, &b)).transpose()
}

/// A job's history, oldest first.
pub fn load_history(store: &dyn StateStore, job: &str) -> Result<Vec<Occurrence>, SchedulerError> {
    store
        .scan(&history_prefix(job))?
        .into_iter()
        .map(|(k, v)| decode(&k, &v))
        .collect()
}

/// Save a job's state (and, in the same transaction, an occurrence record
/// and the removal of history records).
pub fn save(
    store: &dyn StateStore,
    job: &str,
    state: &JobState,
    occurrence: Option<&Occurrence>,
    drop_history: Vec<u64>,
) -> Result<(), SchedulerError> {
    let mut puts = vec![(state_key(job), encode(state))];
    if let Some(o) = occurrence {
        puts.push((history_key(job, o.seq), encode(o)));
    }
    let deletes = drop_history
        .into_iter()
        .map(|s| history_key(job, s))
        .collect();
    store.write(puts, deletes)?;
    Ok(())
}

/// What start-up recovery found for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The interrupted occurrence, now recorded as Error.
    pub occurrence: Option<Occurrence>,
    /// The job's status before recovery.
    pub was: JobStatus,
}

/// After a crash: the occurrence a job was executing is recorded as Error
/// (its running task as Error, its tasks not started as Canceled), and the
/// job goes on with its next occurrence (Waiting; Canceled if it was being
/// canceled). Returns None when there was nothing to recover.
pub fn recover(
    store: &dyn StateStore,
    job: &str,
    now_ms: u64,
) -> Result<Option<Recovered>, SchedulerError> {
    let Some(mut state) = load_state(store, job)? else {
        return Ok(None);
    };
    let interrupted_status = matches!(state.status, JobStatus::Executing | JobStatus::Canceling);
    if state.executing.is_none() && !interrupted_status {
        return Ok(None);
    }
    let was = state.status;
    let mut occurrence = None;
    if let Some(seq) = state.executing.take()
        && let Some(mut o) = load_occurrence(store, job, seq)?
    {
        if o.status == JobStatus::Executing {
            o.status = JobStatus::Error;
            for t in &mut o.tasks {
                match t.status {
                    TaskStatus::Executing => {
                        t.status = TaskStatus::Error;
                        t.error = Some("interrupted: the host stopped while it ran".into());
                    }
                    TaskStatus::Ready => t.status = TaskStatus::Canceled,
                    _ => {}
                }
            }
            o.note = Some(format!(
                "interrupted: the host stopped during this occurrence (recorded as Error at \
                 start-up, {})",
                super::format_rfc3339(now_ms)
            ));
            state.occurrences += 1;
            state.last_end_ms = Some(o.start_ms);
            state.last_result = Some(JobStatus::Error);
        }
        occurrence = Some(o);
    }
    state.status = match state.status {
        JobStatus::Executing => JobStatus::Waiting,
        JobStatus::Canceling => JobStatus::Canceled,
        other => other,
    };
    save(store, job, &state, occurrence.as_ref(), vec![])?;
    Ok(Some(Recovered { occurrence, was }))
}
