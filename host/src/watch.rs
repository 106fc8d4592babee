//! Watching folders for changes, shared by hot loading ([`crate::reload`])
//! and input signals ([`crate::input`]): notify's recommended watcher
//! (inotify on Linux), or a polling watcher for a folder the recommended one
//! cannot start on or cannot watch. Folders are watched one level deep (not
//! recursively); every event that can mean new work goes to one handler
//! with the kind of watcher that saw it.
//!
//! Access events (a file or the folder itself opened, read, or closed after
//! reading) are never passed on: inotify reports them for every reader of
//! the folder — the watcher's own user listing it after an event included —
//! so a handler woken by them and reading the folder would wake itself
//! again, for ever (an idle `ferry run` once kept a core busy that way).
//! A file closed after writing is passed on: it is how new input arrives.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use notify::event::{AccessKind, AccessMode, EventKind};
use notify::{RecursiveMode, Watcher as _};

/// Which kind of watcher reported an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The platform's watcher (inotify on Linux, which also reports a file
    /// closed after writing).
    Native,
    /// Polling: the folder's listing compared every poll interval; it
    /// reports creations, changes and removals only.
    Polling,
}

type Handler = Arc<dyn Fn(notify::Result<notify::Event>, Backend) + Send + Sync>;

/// Whether an event can mean new work in a watched folder: anything but an
/// access (open, read, close after reading), which readers cause. An error
/// can (events may have been lost).
pub fn can_mean_work(event: &notify::Result<notify::Event>) -> bool {
    match event {
        Err(_) => true,
        Ok(e) => match e.kind {
            EventKind::Access(AccessKind::Close(AccessMode::Write)) => true,
            EventKind::Access(_) => false,
            _ => true,
        },
    }
}

/// Watches folders and calls one handler on every event. Dropping it stops
/// the watching.
pub struct FolderWatcher {
    what: &'static str,
    poll_interval: Duration,
    handler: Handler,
    native: Option<notify::RecommendedWatcher>,
    polling: Option<notify::PollWatcher>,
}

impl FolderWatcher {
    /// A watcher for folders described in its warnings as `what` (e.g. "the
    /// plugin directory"); a folder that needs polling is polled every
    /// `poll_interval`. Only events that [can mean work](can_mean_work)
    /// reach `handler`.
    pub fn new(
        what: &'static str,
        poll_interval: Duration,
        handler: impl Fn(notify::Result<notify::Event>, Backend) + Send + Sync + 'static,
    ) -> FolderWatcher {
        let handler: Handler = Arc::new(move |e, b| {
            if can_mean_work(&e) {
                handler(e, b)
            }
        });
        let h = handler.clone();
        let native = match notify::recommended_watcher(move |e| h(e, Backend::Native)) {
            Ok(w) => Some(w),
            Err(e) => {
                tracing::warn!("cannot watch {what} ({e}); polling it");
                None
            }
        };
        FolderWatcher {
            what,
            poll_interval,
            handler,
            native,
            polling: None,
        }
    }

    /// Start watching `dir`: with the recommended watcher, else by polling.
    /// False (with a warning) if neither can watch it.
    pub fn watch(&mut self, dir: &Path) -> bool {
        let what = self.what;
        if let Some(w) = &mut self.native {
            match w.watch(dir, RecursiveMode::NonRecursive) {
                Ok(()) => return true,
                Err(e) => tracing::warn!("cannot watch {what} {} ({e}); polling it", dir.display()),
            }
        }
        if self.polling.is_none() {
            let h = self.handler.clone();
            let cfg = notify::Config::default().with_poll_interval(self.poll_interval);
            match notify::PollWatcher::new(move |e| h(e, Backend::Polling), cfg) {
                Ok(w) => self.polling = Some(w),
                Err(e) => {
                    tracing::warn!("cannot poll {what} {} either ({e})", dir.display());
                    return false;
                }
            }
        }
        let w = self.polling.as_mut().expect("created above");
        match w.watch(dir, RecursiveMode::NonRecursive) {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!("cannot poll {what} {} either ({e})", dir.display());
                false
            }
        }
    }

    /// Stop watching `dir` (whichever watcher had it).
    pub fn unwatch(&mut self, dir: &Path) {
        if let Some(w) = &mut self.native {
            let _ = w.unwatch(dir);
        }
        if let Some(w) = &mut self.polling {
            let _ = w.unwatch(dir);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use notify::event::{CreateKind, ModifyKind, RemoveKind, RenameMode};

    fn event(kind: EventKind) -> notify::Result<notify::Event> {
        Ok(notify::Event::new(kind))
    }

    #[test]
    fn access_events_are_not_work_but_a_file_closed_after_writing_is() {
        for kind in [
            AccessKind::Open(AccessMode::Any),
            AccessKind::Open(AccessMode::Read),
            AccessKind::Read,
            AccessKind::Close(AccessMode::Read),
            AccessKind::Close(AccessMode::Any),
            AccessKind::Any,
        ] {
            assert!(!can_mean_work(&event(EventKind::Access(kind))), "{kind:?}");
        }
        for kind in [
            EventKind::Access(AccessKind::Close(AccessMode::Write)),
            EventKind::Create(CreateKind::File),
            EventKind::Modify(ModifyKind::Name(RenameMode::To)),
            EventKind::Remove(RemoveKind::File),
            EventKind::Any,
            EventKind::Other,
        ] {
            assert!(can_mean_work(&event(kind)), "{kind:?}");
        }
        assert!(can_mean_work(&Err(notify::Error::generic("lost events"))));
    }

    /// The loop that kept an idle host busy: a handler that lists the
    /// folder on every event. With access events filtered out, listing the
    /// folder raises nothing.
    #[test]
    fn listing_the_watched_folder_does_not_wake_the_watcher() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut w = FolderWatcher::new("a test folder", Duration::from_millis(50), move |e, b| {
            let _ = tx.send((e.map(|e| e.kind), b));
        });
        assert!(w.watch(dir.path()));
        std::fs::write(dir.path().join("a.xml"), "x").unwrap();
        // The write is seen (created, written, closed).
        let first = rx
            .recv_timeout(Duration::from_secs(5))
            .expect("no event for a new file");
        assert!(first.0.is_ok());
        std::thread::sleep(Duration::from_millis(300));
        rx.try_iter().for_each(drop);
        for _ in 0..20 {
            let _ = std::fs::read_dir(dir.path()).unwrap().count();
            let _ = std::fs::read(dir.path().join("a.xml")).unwrap();
        }
        let woken: Vec<_> = rx
            .recv_timeout(Duration::from_millis(300))
            .into_iter()
            .collect();
        assert!(
            woken.is_empty(),
            "reading the folder woke the watcher: {woken:?}"
        );
    }
}
