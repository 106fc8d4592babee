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

/// The allocator of every program built on this library (the `ferry`
/// binary, its tests and benchmarks): mimalloc, which serves the small
/// buffers the hot path allocates per document (texts, element lists,
/// edits) in about half the instructions of the system's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
