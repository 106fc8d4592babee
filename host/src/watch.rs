//! Watching folders for changes, shared by hot loading ([`crate::reload`])
//! and input signals ([`crate::input`]): notify's recommended watcher
//! (inotify on Linux), or a polling watcher for a folder the recommended one
//! cannot start on or cannot watch. Folders are watched one level deep (not
//! recursively); every event goes to one handler with the kind of watcher
//! that saw it.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

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
    /// `poll_interval`.
    pub fn new(
        what: &'static str,
        poll_interval: Duration,
        handler: impl Fn(notify::Result<notify::Event>, Backend) + Send + Sync + 'static,
    ) -> FolderWatcher {
        let handler: Handler = Arc::new(handler);
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
