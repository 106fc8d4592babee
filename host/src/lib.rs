//! Ferry: an integration host in the manner of AIF (Dynamics AX 2012), whose
//! adapters, rules and services are sandboxed WebAssembly components.
//!
//! See ARCHITECTURE.md for the rooms and the flow of a message.

pub mod commands;
pub mod config;
pub mod control;
pub mod envelope;
pub mod failpoint;
pub mod glob;
pub mod input;
pub mod options;
pub mod plugins;
pub mod queue;
pub mod reload;
pub mod runtime;
pub mod scheduler;
pub mod schema;
pub mod services;
pub mod time;
pub mod watch;

use std::ffi::{c_int, c_long};

/// The allocator of every program built on this library (the `ferry`
/// binary, its tests and benchmarks): mimalloc, which serves the small
/// buffers the hot path allocates per document (texts, element lists,
/// edits) in about half the instructions of the system's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its `mimalloc.h`, v2): how many
/// milliseconds memory freed stays mapped before it is returned to the
/// system (10 by default).
const MI_OPTION_PURGE_DELAY: c_int = 15;

/// How long freed memory stays with the process: [`tune_allocator`].
pub const PURGE_DELAY_MS: c_long = 1000;

unsafe extern "C" {
    fn mi_option_set(option: c_int, value: c_long);
    fn mi_option_get(option: c_int) -> c_long;
}

/// Tune the allocator for a host that processes messages in groups: freed
/// memory is returned to the system after [`PURGE_DELAY_MS`] instead of
/// mimalloc's 10 ms. With 10 ms the buffers of one group were returned
/// before the next group asked for them again, and every fresh page cost a
/// page fault and the zeroing of a (huge) page: ~2.5 % of the host's CPU in
/// a profile of a run (BENCHMARKS.md). An idle host still gives its memory
/// back a second later. Called first thing by the `ferry` binary.
pub fn tune_allocator() {
    // SAFETY: mimalloc's options are plain integers it reads atomically;
    // setting one is allowed at any time.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}

/// The allocator's purge delay now, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    // SAFETY: reading an option, as above.
    unsafe { mi_option_get(MI_OPTION_PURGE_DELAY) }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_option_tuned_is_mimallocs_purge_delay() {
        // Untuned, the option holds mimalloc's documented default for the
        // purge delay (10 ms): the number names the right option.
        assert_eq!(super::purge_delay_ms(), 10);
        super::tune_allocator();
        assert_eq!(super::purge_delay_ms(), super::PURGE_DELAY_MS);
    }
}
