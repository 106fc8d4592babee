//! The queue's wake-up: a counter of committed work that a service can wait
//! on instead of polling. A backend bumps it when a commit makes work Ready
//! (new messages, a message given back or released); the PostgreSQL backend
//! will bump it from `LISTEN/NOTIFY` too, so a host wakes for work another
//! host committed.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A counter of committed work, with waiting.
#[derive(Debug, Default)]
pub struct WorkSignal {
    seq: Mutex<u64>,
    changed: Condvar,
}

impl WorkSignal {
    /// Work was committed: wakes every waiter.
    pub fn bump(&self) {
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        *seq += 1;
        self.changed.notify_all();
    }

    /// The current count: pass it to [`wait`](Self::wait) later to learn
    /// whether work was committed since.
    pub fn seq(&self) -> u64 {
        *self.seq.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Waits until the count differs from `seen` or `timeout` passed;
    /// returns the count then.
    pub fn wait(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut seq = self.seq.lock().unwrap_or_else(|e| e.into_inner());
        while *seq == seen {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            seq = self
                .changed
                .wait_timeout(seq, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        *seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_waiter_wakes_when_work_is_committed() {
        let signal = Arc::new(WorkSignal::default());
        let seen = signal.seq();
        assert_eq!(signal.wait(seen, Duration::from_millis(10)), seen);
        let s = signal.clone();
        let waiter = std::thread::spawn(move || s.wait(seen, Duration::from_secs(30)));
        signal.bump();
        assert_eq!(waiter.join().unwrap(), seen + 1);
    }
}
