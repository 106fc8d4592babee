//! Recurrence, as in AX's batch job recurrence dialog: every N milliseconds
//! (seconds, minutes, hours, days) from a start time, with no end, an end
//! after K occurrences, or an end by a date-time.
//!
//! Everything here is a pure function of integers (milliseconds since the
//! Unix epoch), so it is tested with exact arithmetic.
//!
//! The occurrences are the *slots* `anchor + k × every` (k = 0, 1, ...).
//! The first occurrence is due at the anchor (the start time); each next one
//! at the first slot strictly after the previous occurrence ended. So an
//! occurrence that runs longer than the interval, or a host that was stopped
//! for a while, does not cause a burst of catch-up runs: at most one late
//! occurrence runs at once, and the job is back on its grid.

use std::time::Duration;

/// When a job's recurrence starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// When the scheduler first sees the job (kept in the job's state, so
    /// the grid survives restarts).
    Now,
    /// At this time (ms since the Unix epoch).
    At(u64),
}

/// When a job's recurrence ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Never.
    Never,
    /// After this many occurrences.
    After(u64),
    /// No occurrence starts after this time (ms since the Unix epoch).
    By(u64),
}

/// A job's recurrence.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Recurrence {
    /// Time between occurrences, in milliseconds (at least 1).
    pub every_ms: u64,
    /// From when.
    pub start: Start,
    /// Until when.
    pub end: End,
}

impl Recurrence {
    /// Every `every` from now on, for ever.
    pub fn every(every: Duration) -> Recurrence {
        Recurrence {
            every_ms: (every.as_millis() as u64).max(1),
            start: Start::Now,
            end: End::Never,
        }
    }

    /// The time the grid of slots starts from: the start time, or
    /// `first_seen` when the start is "now".
    pub fn anchor(&self, first_seen: u64) -> u64 {
        match self.start {
            Start::Now => first_seen,
            Start::At(t) => t,
        }
    }

    /// The `k`-th slot (k = 0 is the anchor).
    pub fn slot(&self, anchor: u64, k: u64) -> u64 {
        anchor.saturating_add(k.saturating_mul(self.every_ms))
    }

    /// The first slot strictly after `t` (the anchor itself if `t` is
    /// before it).
    pub fn slot_after(&self, anchor: u64, t: u64) -> u64 {
        if t < anchor {
            return anchor;
        }
        self.slot(anchor, (t - anchor) / self.every_ms.max(1) + 1)
    }

    /// When the next occurrence is due, after `done` occurrences of which
    /// the last ended at `last_end` (None: none ran yet); None when the
    /// recurrence is over (end after K reached, or the next slot is past the
    /// end-by time).
    pub fn next_due(&self, anchor: u64, done: u64, last_end: Option<u64>) -> Option<u64> {
        if let End::After(k) = self.end
            && done >= k
        {
            return None;
        }
        let due = match last_end {
            None => anchor,
            Some(end) => self.slot_after(anchor, end),
        };
        match self.end {
            End::By(by) if due > by => None,
            _ => Some(due),
        }
    }

    /// Whether an occurrence may still start at `now` (not after the end-by
    /// time): a slot that came due before the end but could not start until
    /// after it (the host was stopped) does not run.
    pub fn may_start(&self, now: u64) -> bool {
        match self.end {
            End::By(by) => now <= by,
            _ => true,
        }
    }

    /// A short description: `every 10s from 2026-05-01T06:00:00Z, 3 times`.
    pub fn describe(&self) -> String {
        let mut s = format!("every {}", crate::time::format_interval(self.every_ms));
        if let Start::At(t) = self.start {
            s.push_str(&format!(" from {}", crate::time::format_rfc3339(t)));
        }
        match self.end {
            End::Never => {}
            End::After(k) => s.push_str(&format!(", {k} time(s)")),
            End::By(t) => s.push_str(&format!(", until {}", crate::time::format_rfc3339(t))),
        }
        s
    }
}
