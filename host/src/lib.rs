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
