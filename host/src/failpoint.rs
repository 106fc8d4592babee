//! Kill points for the crash tests. With `FERRY_KILL_AT=POINT[:N][,...]` in
//! its environment the host kills itself with SIGKILL — exactly what
//! `kill -9` does — the N-th time (default: the first) it passes `POINT`,
//! one of the steps between two writes that must not lose or double a
//! message:
//!
//! | point | between |
//! |---|---|
//! | `receive.after-commit` | the queue commit of received messages and the adapter's commit (which deletes the sources) |
//! | `receive.after-adapter-commit` | the adapter's commit and the transaction that clears the receipts |
//! | `inbound.before-commit` | a group processed and its commit (in the middle of a group) |
//! | `inbound.after-commit` | a group's commit and the next claim |
//! | `outbound.before-commit` / `outbound.after-commit` | the same for outbound processing |
//! | `send.after-adapter-write` | the adapter writing the files of a group and its commit (the rename into place) |
//! | `send.after-adapter-commit` | the rename into place and the queue commit that removes the sent messages |
//! | `send.after-commit` | the queue commit of a sent group and the next claim |
//!
//! Without the variable (always, outside the tests) a point costs one check
//! of an initialised empty list.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The environment variable naming the kill points.
pub const KILL_AT: &str = "FERRY_KILL_AT";

/// The kill points in force: (point, at which pass, passes so far).
static PLAN: OnceLock<Vec<(String, u64, AtomicU64)>> = OnceLock::new();

fn plan() -> &'static [(String, u64, AtomicU64)] {
    PLAN.get_or_init(|| {
        std::env::var(KILL_AT)
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| match p.split_once(':') {
                Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1), AtomicU64::new(0)),
                None => (p.to_string(), 1, AtomicU64::new(0)),
            })
            .collect()
    })
}

/// Passes kill point `name`: kills the process if this is the pass
/// `FERRY_KILL_AT` names.
pub fn point(name: &str) {
    for (point, at, passes) in plan() {
        if point == name && passes.fetch_add(1, Ordering::Relaxed) + 1 == *at {
            eprintln!("ferry: kill point {name} (pass {at}): killing this process");
            // SAFETY: getpid and kill have no preconditions.
            unsafe {
                libc::kill(libc::getpid(), libc::SIGKILL);
            }
        }
    }
}
