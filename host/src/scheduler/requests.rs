//! Operator requests to a running host: how `ferry job` reaches the
//! scheduler of a `ferry run` that holds the data directory.
//!
//! A running host holds the gateway queue (`ferry.redb`) locked, so the job
//! commands cannot open it. Instead, the command writes a **request file**
//! into `DATA_DIR/requests/` and waits for the host's **reply file**:
//!
//! - **Request.** `ID.request`, compact JSON
//!   `{"id":"ID","action":"hold","job":"orders"}` (actions: `hold`,
//!   `release`, `run-now`, `cancel`, `list`, `history` with an optional
//!   `"last":N`). It is written under a name starting with `.` and renamed
//!   into place, so the host never reads half a file. ID is unique (time,
//!   process id, counter).
//! - **Handling.** A thread of `ferry run` watches the folder (the shared
//!   [`crate::watch::FolderWatcher`]: inotify, or polling where inotify
//!   cannot watch; and a rescan every [`RESCAN`] in any case). It takes a
//!   request by removing its file, then: `list` and `history` are answered
//!   at once from the job state in the queue (read-only); `hold`, `release`,
//!   `run-now` and `cancel` go to the scheduler's [`Controls`], which wake
//!   its nap and are applied at its next step — at once when it is idle,
//!   before the next task while an occurrence runs. The outcome is the
//!   job's new status, or the reason it was refused (no such job, or what
//!   [`state::apply`] says).
//! - **Reply.** `ID.reply`, compact JSON `{"id":"ID","ok":true,
//!   "status":"withhold","text":"job orders is Withhold"}`, written the same
//!   way (temporary name, rename). A malformed request file is answered
//!   with the reason (`ok: false`); it never stops the host. The command
//!   prints the text, removes the reply, and fails when `ok` is false.
//! - **No answer.** The command waits [`TIMEOUT`]. Then it **withdraws** the
//!   request by removing its file: if that works, the host never took it
//!   and nothing was changed. If the file is gone, the host took it and
//!   applies it at its scheduler's next step (a long task is running); the
//!   command says so and fails. Either way it does not wait longer.
//! - **Left over.** Requests written before the host started (for a host
//!   that has stopped since, or whose command was killed) are **discarded**
//!   at the start with a warning: their command has given up, and holding
//!   or running a job long after it was asked would surprise. Replies nobody
//!   collected are removed after [`STALE`]; so are stray temporary files.
//!   When the host stops, a request taken but not applied yet is answered
//!   that the host stopped and nothing was changed.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use super::state::StateStore;
use super::{Action, Clock, Controls, JobStatus, Responder, SchedulerError, report};
use crate::config::JobConfig;
use crate::watch::FolderWatcher;

/// The folder of requests and replies, in the data directory.
pub const FOLDER: &str = "requests";

/// How long a command waits for the host's reply.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// How often the host looks at the folder without a watcher event.
pub const RESCAN: Duration = Duration::from_secs(1);

/// How long an uncollected reply (or a stray temporary file) is kept.
pub const STALE: Duration = Duration::from_secs(600);

/// The largest request file read; a larger one is refused as malformed.
const MAX_REQUEST: u64 = 64 * 1024;

/// What a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ask {
    /// `ferry job hold`.
    Hold,
    /// `ferry job release`.
    Release,
    /// `ferry job run-now`.
    RunNow,
    /// `ferry job cancel`.
    Cancel,
    /// `ferry job list`.
    List,
    /// `ferry job history`.
    History,
}

impl From<Action> for Ask {
    fn from(a: Action) -> Ask {
        match a {
            Action::Hold => Ask::Hold,
            Action::Release => Ask::Release,
            Action::RunNow => Ask::RunNow,
            Action::Cancel => Ask::Cancel,
        }
    }
}

impl Ask {
    /// The operator action, for hold, release, run-now and cancel.
    pub fn action(self) -> Option<Action> {
        match self {
            Ask::Hold => Some(Action::Hold),
            Ask::Release => Some(Action::Release),
            Ask::RunNow => Some(Action::RunNow),
            Ask::Cancel => Some(Action::Cancel),
            Ask::List | Ask::History => None,
        }
    }
}

/// A request file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Request {
    /// Its id: also the file's name (`ID.request`, `ID.reply`).
    pub id: String,
    /// What it asks for.
    pub action: Ask,
    /// The job (every action but `list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub job: Option<String>,
    /// `history`: the last N occurrences only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last: Option<usize>,
}

/// A reply file's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    /// The request's id.
    pub id: String,
    /// Applied (or answered); false: refused.
    pub ok: bool,
    /// The job's status after an applied action.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<JobStatus>,
    /// What to print: the action's result, the list or history, or why the
    /// request was refused.
    pub text: String,
}

impl Reply {
    fn refused(id: &str, text: impl Into<String>) -> Reply {
        Reply {
            id: id.to_string(),
            ok: false,
            status: None,
            text: text.into(),
        }
    }

    fn answered(id: &str, status: Option<JobStatus>, text: String) -> Reply {
        Reply {
            id: id.to_string(),
            ok: true,
            status,
            text,
        }
    }
}

/// The requests folder of a data directory.
pub fn folder(data_dir: &Path) -> PathBuf {
    data_dir.join(FOLDER)
}

fn request_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.request"))
}

fn reply_path(dir: &Path, id: &str) -> PathBuf {
    dir.join(format!("{id}.reply"))
}

/// Write `bytes` to `path` under a temporary name starting with `.`, then
/// rename it into place.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, bytes)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// A new unique request id: time, process id, counter.
pub fn new_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!(
        "{nanos:x}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

// ---------------------------------------------------------------------------
// The command's side.

/// Why a request got no reply.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The request or reply file could not be written or read.
    #[error("cannot hand the request to the running host through {}: {source}", dir.display())]
    Io {
        /// The requests folder.
        dir: PathBuf,
        /// What failed.
        source: std::io::Error,
    },
    /// No reply in time; the host had not taken the request, which is
    /// withdrawn.
    #[error(
        "the running host did not answer within {}s; the request was withdrawn and nothing was \
         changed (the data directory is locked by a Ferry host that is not reading {}: an older \
         version, or one that is starting or stopping)",
        waited.as_secs(), dir.display()
    )]
    Withdrawn {
        /// The requests folder.
        dir: PathBuf,
        /// How long the command waited.
        waited: Duration,
    },
    /// No reply in time, but the host had taken the request: it is applied
    /// at the scheduler's next step.
    #[error(
        "the running host took the request but did not answer within {}s: its scheduler is \
         busy (a task is running, or the host is still loading its plugins). The request is \
         applied at the scheduler's next step, unless the host stops first; see `ferry job list`",
        waited.as_secs()
    )]
    Pending {
        /// How long the command waited.
        waited: Duration,
    },
    /// The reply file could not be read as a reply.
    #[error("the running host's reply {} cannot be read: {reason}", path.display())]
    BadReply {
        /// The reply file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// Hand a request to the host running on `data_dir` and wait up to
/// `timeout` for its reply (see the module documentation for what happens
/// when there is none).
pub fn submit(
    data_dir: &Path,
    action: Ask,
    job: Option<&str>,
    last: Option<usize>,
    timeout: Duration,
) -> Result<Reply, SubmitError> {
    let dir = folder(data_dir);
    let io = |source| SubmitError::Io {
        dir: dir.clone(),
        source,
    };
    std::fs::create_dir_all(&dir).map_err(io)?;
    let req = Request {
        id: new_id(),
        action,
        job: job.map(str::to_string),
        last,
    };
    let request = request_path(&dir, &req.id);
    let reply = reply_path(&dir, &req.id);
    write_atomically(
        &request,
        &serde_json::to_vec(&req).expect("a request serializes"),
    )
    .map_err(io)?;
    let deadline = Instant::now() + timeout;
    loop {
        match std::fs::read(&reply) {
            Ok(bytes) => {
                let _ = std::fs::remove_file(&reply);
                let r: Reply =
                    serde_json::from_slice(&bytes).map_err(|e| SubmitError::BadReply {
                        path: reply.clone(),
                        reason: e.to_string(),
                    })?;
                return Ok(r);
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(io(e)),
        }
        if Instant::now() >= deadline {
            return Err(match std::fs::remove_file(&request) {
                // Still there: the host never took it.
                Ok(()) => SubmitError::Withdrawn {
                    dir,
                    waited: timeout,
                },
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    SubmitError::Pending { waited: timeout }
                }
                Err(e) => io(e),
            });
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// The host's side.

/// What the host answers requests with: its jobs, their state, the
/// scheduler's controls and clock.
#[derive(Clone)]
pub struct Host {
    /// The scheduler's jobs.
    pub jobs: Vec<JobConfig>,
    /// The job state (read-only here; the scheduler writes it).
    pub store: Arc<dyn StateStore>,
    /// The scheduler's controls.
    pub controls: Controls,
    /// The scheduler's clock.
    pub clock: Arc<dyn Clock>,
}

impl Host {
    fn job(&self, name: &str) -> Option<&JobConfig> {
        self.jobs.iter().find(|j| j.name == name)
    }

    fn unknown(&self, name: &str) -> String {
        SchedulerError::unknown_job(name, self.jobs.iter().map(|j| j.name.as_str())).to_string()
    }
}

fn write_reply(dir: &Path, reply: &Reply) {
    let path = reply_path(dir, &reply.id);
    let bytes = serde_json::to_vec(reply).expect("a reply serializes");
    if let Err(e) = write_atomically(&path, &bytes) {
        tracing::warn!(file = %path.display(), "cannot write the reply to a job request: {e}");
    }
}

/// Handle one request: `id` from its file name, `bytes` its content. The
/// reply is written at once (list, history, a refusal) or when the
/// scheduler has applied the action.
pub fn handle(dir: &Path, id: &str, bytes: &[u8], host: &Host) {
    let req: Request = match serde_json::from_slice(bytes) {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(id, "malformed job request: {e}");
            return write_reply(dir, &Reply::refused(id, format!("malformed request: {e}")));
        }
    };
    if req.id != id {
        tracing::warn!(id, "malformed job request: its id is {:?}", req.id);
        return write_reply(
            dir,
            &Reply::refused(
                id,
                format!(
                    "malformed request: its id {:?} is not its file name's",
                    req.id
                ),
            ),
        );
    }
    let now = host.clock.now_ms();
    let job = match (req.action, req.job.as_deref()) {
        (Ask::List, _) => None,
        (_, Some(j)) => Some(j),
        (_, None) => {
            return write_reply(
                dir,
                &Reply::refused(id, "malformed request: it names no job".to_string()),
            );
        }
    };
    tracing::debug!(id, action = ?req.action, job, "job request");
    match (req.action.action(), job) {
        (None, None) => {
            let reply = match report::list(host.jobs.iter(), host.store.as_ref(), now, true) {
                Ok(text) => Reply::answered(id, None, text),
                Err(e) => Reply::refused(id, e.to_string()),
            };
            write_reply(dir, &reply);
        }
        (None, Some(name)) => {
            let reply = match host.job(name) {
                None => Reply::refused(id, host.unknown(name)),
                Some(job) => match report::history(job, host.store.as_ref(), req.last) {
                    Ok(text) => Reply::answered(id, None, text),
                    Err(e) => Reply::refused(id, e.to_string()),
                },
            };
            write_reply(dir, &reply);
        }
        (Some(action), name) => {
            let name = name.unwrap_or_default().to_string();
            let (dir, id, job, clock) = (
                dir.to_path_buf(),
                id.to_string(),
                host.job(&name).cloned(),
                host.clock.clone(),
            );
            let responder = Responder::new(move |outcome| {
                let reply = match (outcome, job) {
                    (Ok(st), Some(job)) => Reply::answered(
                        &id,
                        Some(st.status),
                        report::action_text(&job, &st, action, clock.now_ms(), true),
                    ),
                    (Ok(st), None) => {
                        Reply::answered(&id, Some(st.status), format!("job is {}", st.status))
                    }
                    (Err(text), _) => Reply::refused(&id, text),
                };
                write_reply(&dir, &reply);
            });
            host.controls.request_with_reply(&name, action, responder);
        }
    }
}

/// Take the request file `path`: its content, and the file removed. None
/// when it is gone (withdrawn by its command meanwhile).
fn take(path: &Path) -> std::io::Result<Option<Vec<u8>>> {
    let mut bytes = Vec::new();
    match std::fs::File::open(path) {
        Ok(f) => {
            f.take(MAX_REQUEST + 1).read_to_end(&mut bytes)?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    }
    match std::fs::remove_file(path) {
        Ok(()) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Older than `than` (by modification time); false when unknown.
fn older(path: &Path, than: SystemTime) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t < than)
}

/// Handle every request waiting in `dir`, oldest name first; remove
/// replies and temporary files older than [`STALE`].
pub fn handle_waiting(dir: &Path, host: &Host) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut names: Vec<(String, PathBuf)> = Vec::new();
    let stale = SystemTime::now()
        .checked_sub(STALE)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    for e in entries.flatten() {
        let path = e.path();
        let Some(name) = e.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if name.starts_with('.') || name.ends_with(".reply") {
            if older(&path, stale) {
                let _ = std::fs::remove_file(&path);
            }
            continue;
        }
        if let Some(id) = name.strip_suffix(".request") {
            names.push((id.to_string(), path));
        }
    }
    names.sort();
    for (id, path) in names {
        match take(&path) {
            Ok(Some(bytes)) if bytes.len() as u64 > MAX_REQUEST => write_reply(
                dir,
                &Reply::refused(
                    &id,
                    format!("malformed request: larger than {MAX_REQUEST} bytes"),
                ),
            ),
            Ok(Some(bytes)) => handle(dir, &id, &bytes, host),
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(file = %path.display(), "cannot read a job request: {e}");
                let _ = std::fs::remove_file(&path);
                write_reply(
                    dir,
                    &Reply::refused(&id, format!("the host cannot read the request: {e}")),
                );
            }
        }
    }
}

/// Remove the requests (and replies, temporary files) in `dir` written
/// before `started`, with a warning per request; returns how many requests
/// were discarded.
pub fn discard_leftovers(dir: &Path, started: SystemTime) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut discarded = 0;
    for e in entries.flatten() {
        let path = e.path();
        if !older(&path, started) {
            continue;
        }
        let name = e.file_name().to_string_lossy().into_owned();
        let ours = name.starts_with('.') || name.ends_with(".reply");
        let request = (!name.starts_with('.'))
            .then(|| name.strip_suffix(".request"))
            .flatten();
        if !(ours || request.is_some()) || std::fs::remove_file(&path).is_err() {
            continue;
        }
        if let Some(id) = request {
            tracing::warn!(
                id,
                "discarded a job request left from before this host started (its command has \
                 given up); ask again if it is still wanted"
            );
            discarded += 1;
        }
    }
    discarded
}

/// The running request thread; dropping it stops the thread.
pub struct RequestWatch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for RequestWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start answering requests in `data_dir`'s requests folder (created if
/// needed), after discarding those written before `started`.
pub fn start(data_dir: &Path, host: Host, started: SystemTime) -> std::io::Result<RequestWatch> {
    let dir = folder(data_dir);
    std::fs::create_dir_all(&dir)?;
    discard_leftovers(&dir, started);
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ferry-requests".into())
        .spawn(move || run(&dir, &host, &flag))?;
    Ok(RequestWatch {
        stop,
        thread: Some(thread),
    })
}

/// Whether a watcher event can be a new request: one that leaves a
/// `*.request` file in place (or a lost event). The thread's own work — a
/// request taken and removed, a reply written, stale files removed — never
/// wakes it again.
pub(crate) fn wakes(event: &notify::Result<notify::Event>) -> bool {
    use notify::EventKind;
    use notify::event::ModifyKind;
    let Ok(e) = event else {
        return true;
    };
    if e.need_rescan() {
        return true;
    }
    let left_in_place = !matches!(
        e.kind,
        EventKind::Remove(_)
            | EventKind::Access(_)
            | EventKind::Modify(ModifyKind::Name(notify::event::RenameMode::From))
    );
    left_in_place
        && e.paths.last().and_then(|p| p.file_name()).is_some_and(|n| {
            let n = n.to_string_lossy();
            !n.starts_with('.') && n.ends_with(".request")
        })
}

fn run(dir: &Path, host: &Host, stop: &AtomicBool) {
    let (tx, rx) = crossbeam_channel::unbounded::<()>();
    let mut watcher = FolderWatcher::new(
        "the job requests folder",
        crate::input::POLL,
        move |e, _| {
            if wakes(&e) {
                let _ = tx.send(());
            }
        },
    );
    // Without a watcher the rescan still finds every request.
    watcher.watch(dir);
    while !stop.load(Ordering::Relaxed) {
        handle_waiting(dir, host);
        // Until an event (a request renamed into place), the rescan, or a
        // stop.
        let rescan = Instant::now() + RESCAN;
        while !stop.load(Ordering::Relaxed) {
            let left = rescan.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            if rx
                .recv_timeout(left.min(Duration::from_millis(250)))
                .is_ok()
            {
                rx.try_iter().for_each(drop);
                break;
            }
        }
    }
}
