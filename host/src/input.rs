//! Input signals: the event-driven mode of batch jobs (`on_input = true`).
//!
//! While `ferry run` runs (not `--once`), an input thread watches the
//! folders of the inbound ports that the receive tasks of the jobs with
//! `on_input` read, and **signals** a job when new input arrives there. The
//! batch scheduler then starts an occurrence of the job at once (no sooner
//! than its `min_interval` after the previous one ended) instead of waiting
//! for its next recurrence; see [`crate::scheduler::due`].
//!
//! - **Where the signal comes from.** An inbound port's address is the
//!   folder the host grants its adapter (`services/sandboxes.rs`); for the
//!   file adapter a signal is a file-system event on that folder: a file
//!   written and closed, or renamed into it (inotify), or a file appearing
//!   or changing (the polling watcher of [`crate::watch`], used when inotify
//!   cannot watch the folder). Names starting with `.` are temporary files
//!   by convention (the file adapter skips them) and signal nothing until
//!   renamed; removals signal nothing (the adapter's own commit removes
//!   files). Adapters for networks, later, will signal through the host;
//!   the WIT contract does not change.
//! - **Nothing is missed.** When the thread starts watching a folder — at
//!   the start, when the folder appears (the adapter creates it at its first
//!   receive), when a configuration reload changes a port's address, or
//!   when the folder was removed and is back — the jobs reading it are
//!   signalled once, since input may have arrived unseen. Folders are
//!   checked against the configuration in force every [`RESYNC`]. A signal
//!   that arrives while the job is executing is kept: the job runs again
//!   afterwards.
//! - **Several hosts.** On a gateway queue several hosts share, work that
//!   another host made Ready — or a dead host's work this one took over —
//!   signals every job with `on_input` too (the queue's
//!   [`foreign_work_signal`](crate::queue::GatewayQueue::foreign_work_signal),
//!   fed by `LISTEN/NOTIFY`), so the hosts share the processing of what
//!   one of them received.
//! - **[`Signals`]** is all the scheduler sees: the set of signalled jobs,
//!   and a wake-up for its nap, so an occurrence starts within milliseconds
//!   of the event.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use notify::EventKind;
use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};

use crate::config::{Config, JobConfig};
use crate::services::Gateway;
use crate::watch::{Backend, FolderWatcher};

/// How often the watched folders are checked against the configuration in
/// force (a reload, a folder that appeared or went away).
pub const RESYNC: Duration = Duration::from_secs(1);

/// How often a folder is polled when it cannot be watched with inotify.
pub const POLL: Duration = Duration::from_millis(250);

/// The jobs signalled since the scheduler last looked, and a wake-up for the
/// scheduler's nap. Clones share them.
#[derive(Debug, Clone, Default)]
pub struct Signals(Arc<(Mutex<BTreeSet<String>>, Condvar)>);

impl Signals {
    /// New input for `job`.
    pub fn raise(&self, job: &str) {
        let (set, wake) = &*self.0;
        let mut set = set.lock().unwrap_or_else(|e| e.into_inner());
        if set.insert(job.to_string()) {
            wake.notify_all();
        }
    }

    /// The jobs signalled since the last call.
    pub fn take(&self) -> BTreeSet<String> {
        let (set, _) = &*self.0;
        std::mem::take(&mut *set.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Wait up to `timeout` for a signal; true when one is waiting to be
    /// taken.
    pub fn wait(&self, timeout: Duration) -> bool {
        let (set, wake) = &*self.0;
        let set = set.lock().unwrap_or_else(|e| e.into_inner());
        if !set.is_empty() {
            return true;
        }
        let (set, _) = wake
            .wait_timeout(set, timeout)
            .unwrap_or_else(|e| e.into_inner());
        !set.is_empty()
    }
}

/// Whether the native watcher reports a file closed after writing
/// (inotify does), so that creations and writes in progress can be left
/// out.
const NATIVE_REPORTS_CLOSE: bool = cfg!(any(target_os = "linux", target_os = "android"));

/// Whether an event of `kind`, seen by `backend`, means new input: a file
/// written and closed, or renamed into the folder; where closes are not
/// reported, a file created or changed. Removals, renames away, reads and
/// metadata changes are not input.
pub fn is_input(kind: &EventKind, backend: Backend) -> bool {
    let sees_close = backend == Backend::Native && NATIVE_REPORTS_CLOSE;
    match kind {
        EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
        EventKind::Modify(ModifyKind::Name(
            RenameMode::To | RenameMode::Both | RenameMode::Any,
        )) => true,
        EventKind::Modify(ModifyKind::Name(RenameMode::From)) => false,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Any | EventKind::Other => {
            !sees_close
        }
        EventKind::Access(_) | EventKind::Remove(_) => false,
    }
}

/// The folders to watch for `jobs` under `config`: each inbound port
/// address read by a job's receive tasks, with the jobs reading it. The
/// folders are absolute (a relative address is the adapter's folder under
/// the current directory), as the watcher's events name them.
pub fn folders(config: &Config, jobs: &[JobConfig]) -> BTreeMap<PathBuf, BTreeSet<String>> {
    let mut out: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    for job in jobs.iter().filter(|j| j.on_input.is_some()) {
        for port in job.receive_ports(&config.ports) {
            let dir = std::path::absolute(&port.address).unwrap_or_else(|_| port.address.clone());
            out.entry(dir).or_default().insert(job.name.clone());
        }
    }
    out
}

/// The running input threads; dropping it stops them.
pub struct InputWatch {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Drop for InputWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Start watching for the jobs with `on_input` among `jobs`, raising
/// `signals`; None when no job has it.
pub fn start(gw: Arc<Gateway>, jobs: Vec<JobConfig>, signals: Signals) -> Option<InputWatch> {
    let jobs: Vec<JobConfig> = jobs.into_iter().filter(|j| j.on_input.is_some()).collect();
    if jobs.is_empty() {
        return None;
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    if gw.queue.foreign_work_signal().is_some() {
        let (gw, flag, signals) = (gw.clone(), stop.clone(), signals.clone());
        let names: Vec<String> = jobs.iter().map(|j| j.name.clone()).collect();
        threads.push(
            std::thread::Builder::new()
                .name("ferry-input-queue".into())
                .spawn(move || foreign_work(&gw, &names, &signals, &flag))
                .expect("cannot start the input thread"),
        );
    }
    let flag = stop.clone();
    threads.push(
        std::thread::Builder::new()
            .name("ferry-input".into())
            .spawn(move || run(&gw, &jobs, &signals, &flag))
            .expect("cannot start the input thread"),
    );
    Some(InputWatch { stop, threads })
}

/// On a queue several hosts share, work another host made Ready (or a
/// dead host's work taken over) is input too: it signals every job with
/// `on_input`, so the hosts share what one of them received.
fn foreign_work(gw: &Gateway, jobs: &[String], signals: &Signals, stop: &AtomicBool) {
    let Some(work) = gw.queue.foreign_work_signal() else {
        return;
    };
    let mut seen = work.seq();
    while !stop.load(Ordering::Relaxed) {
        let now = work.wait(seen, Duration::from_millis(250));
        if now != seen {
            seen = now;
            for job in jobs {
                signals.raise(job);
            }
        }
    }
}

type Seen = (notify::Result<notify::Event>, Backend);

fn run(gw: &Gateway, jobs: &[JobConfig], signals: &Signals, stop: &AtomicBool) {
    let (tx, rx) = crossbeam_channel::unbounded::<Seen>();
    let mut watcher = FolderWatcher::new("the inbound folder", POLL, move |e, b| {
        let _ = tx.send((e, b));
    });
    // The folders watched now, each with the jobs reading it.
    let mut watched: BTreeMap<PathBuf, BTreeSet<String>> = BTreeMap::new();
    let mut next_sync = std::time::Instant::now();
    while !stop.load(Ordering::Relaxed) {
        if next_sync <= std::time::Instant::now() {
            sync(
                &mut watcher,
                &mut watched,
                &folders(&gw.config(), jobs),
                signals,
            );
            next_sync = std::time::Instant::now() + RESYNC;
        }
        let wait = next_sync.saturating_duration_since(std::time::Instant::now());
        let Ok(first) = rx.recv_timeout(wait.min(Duration::from_millis(250))) else {
            continue;
        };
        for (event, backend) in std::iter::once(first).chain(rx.try_iter()) {
            seen(&mut watcher, &mut watched, event, backend, signals);
        }
    }
}

/// Watch the folders `wanted` (signalling the jobs of each folder newly
/// watched), stop watching the others.
fn sync(
    watcher: &mut FolderWatcher,
    watched: &mut BTreeMap<PathBuf, BTreeSet<String>>,
    wanted: &BTreeMap<PathBuf, BTreeSet<String>>,
    signals: &Signals,
) {
    watched.retain(|dir, _| {
        let keep = wanted.contains_key(dir) && dir.is_dir();
        if !keep {
            watcher.unwatch(dir);
        }
        keep
    });
    for (dir, jobs) in wanted {
        if let Some(w) = watched.get_mut(dir) {
            w.clone_from(jobs);
            continue;
        }
        // A folder not there yet is created by the adapter's first receive.
        if dir.is_dir() && watcher.watch(dir) {
            tracing::debug!(folder = %dir.display(), jobs = ?jobs, "watching an inbound folder for new input");
            watched.insert(dir.clone(), jobs.clone());
            for job in jobs {
                signals.raise(job);
            }
        }
    }
}

/// Act on one watcher event.
fn seen(
    watcher: &mut FolderWatcher,
    watched: &mut BTreeMap<PathBuf, BTreeSet<String>>,
    event: notify::Result<notify::Event>,
    backend: Backend,
    signals: &Signals,
) {
    let event = match event {
        Ok(e) => e,
        Err(e) => {
            // Events may have been lost: every job may have input.
            tracing::debug!("input watcher: {e}");
            watched.values().flatten().for_each(|j| signals.raise(j));
            return;
        }
    };
    if event.need_rescan() {
        watched.values().flatten().for_each(|j| signals.raise(j));
        return;
    }
    // A watched folder removed or renamed: watched again when it is back.
    if matches!(
        event.kind,
        EventKind::Remove(_) | EventKind::Modify(ModifyKind::Name(_))
    ) {
        for p in &event.paths {
            if watched.remove(p).is_some() {
                watcher.unwatch(p);
            }
        }
    }
    // The file the event leaves in place: the last path (a rename's target).
    let Some(path) = event.paths.last() else {
        return;
    };
    if !is_input(&event.kind, backend) || is_temporary(path) {
        return;
    }
    if let Some(jobs) = path.parent().and_then(|dir| watched.get(dir)) {
        tracing::trace!(file = %path.display(), kind = ?event.kind, "new input");
        for job in jobs {
            signals.raise(job);
        }
    }
}

/// A name starting with `.`: a temporary file by convention.
fn is_temporary(path: &Path) -> bool {
    path.file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, DataChange, MetadataKind, RemoveKind};

    #[test]
    fn which_events_are_input() {
        let close = EventKind::Access(AccessKind::Close(AccessMode::Write));
        let renamed_in = EventKind::Modify(ModifyKind::Name(RenameMode::To));
        let both = EventKind::Modify(ModifyKind::Name(RenameMode::Both));
        let renamed_away = EventKind::Modify(ModifyKind::Name(RenameMode::From));
        let created = EventKind::Create(CreateKind::File);
        let written = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let touched = EventKind::Modify(ModifyKind::Metadata(MetadataKind::WriteTime));
        let removed = EventKind::Remove(RemoveKind::File);
        let read = EventKind::Access(AccessKind::Close(AccessMode::Read));
        for b in [Backend::Native, Backend::Polling] {
            assert!(is_input(&close, b));
            assert!(is_input(&renamed_in, b));
            assert!(is_input(&both, b));
            assert!(!is_input(&renamed_away, b));
            assert!(!is_input(&removed, b));
            assert!(!is_input(&read, b));
        }
        // Polling sees no close: a new or changed file is input.
        assert!(is_input(&created, Backend::Polling));
        assert!(is_input(&written, Backend::Polling));
        assert!(is_input(&touched, Backend::Polling));
        // inotify reports the close: a file being written is not input yet.
        if NATIVE_REPORTS_CLOSE {
            assert!(!is_input(&created, Backend::Native));
            assert!(!is_input(&written, Backend::Native));
        }
        assert!(is_temporary(Path::new("/in/.order.xml.tmp")));
        assert!(!is_temporary(Path::new("/in/order.xml")));
    }

    #[test]
    fn signals_are_taken_once_and_wake_a_waiter() {
        let s = Signals::default();
        assert!(!s.wait(Duration::ZERO));
        s.raise("a");
        s.raise("a");
        s.raise("b");
        assert!(s.wait(Duration::ZERO));
        assert_eq!(
            s.take().into_iter().collect::<Vec<_>>(),
            ["a".to_string(), "b".to_string()]
        );
        assert!(s.take().is_empty());
        // A raise from another thread ends the wait (without it, the wait
        // would last an hour).
        let other = s.clone();
        let t = std::thread::spawn(move || other.raise("c"));
        while !s.wait(Duration::from_secs(3600)) {}
        t.join().unwrap();
        assert!(s.take().contains("c"));
    }

    #[test]
    fn the_folders_of_the_jobs_receive_tasks() {
        let text = r#"
[adapters.file]
component = "file-adapter"

[ports.a]
direction = "inbound"
adapter = "file"
address = "in-a"

[ports.b]
direction = "inbound"
adapter = "file"
address = "in-b"

[ports.out]
direction = "outbound"
adapter = "file"
address = "out"

[jobs.fast]
on_input = true
tasks = [{ service = "gateway-receive", ports = ["a"] }, { service = "inbound-processing" }]

[jobs.all]
on_input = true

[jobs.plain]
tasks = [{ service = "gateway-receive" }]
"#;
        let cfg = Config::parse(Path::new("/t/ferry.toml"), text).unwrap();
        let jobs: Vec<JobConfig> = cfg.jobs.values().cloned().collect();
        let f = folders(&cfg, &jobs);
        let names =
            |d: &str| -> Vec<String> { f[Path::new(d)].iter().cloned().collect::<Vec<String>>() };
        assert_eq!(f.len(), 2, "{f:?}");
        assert_eq!(names("/t/in-a"), ["all", "fast"]);
        assert_eq!(names("/t/in-b"), ["all"]);
        // A configuration named by a relative path: the folders are
        // absolute all the same (the watcher's events name them so).
        let cfg = Config::parse(Path::new("ferry.toml"), text).unwrap();
        let f = folders(&cfg, &jobs);
        let cwd = std::env::current_dir().unwrap();
        assert!(f.contains_key(&cwd.join("in-a")), "{f:?}");
    }
}
