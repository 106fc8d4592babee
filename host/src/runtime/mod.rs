//! The component runtime: runs plugins (WebAssembly components targeting the
//! worlds of `wit/ferry.wit`) in sandboxes.
//!
//! - One [`wasmtime::Engine`] per [`Runtime`], with the pooling allocator
//!   (memories capped at the largest memory cap, each in a 4 GiB
//!   reservation so guest code runs without bounds checks) and epoch interruption (a ticker
//!   thread advances the epoch every [`TICK`]).
//! - [`Runtime::load`] compiles a component once (or loads it from the on-disk
//!   compile cache), checks which world it targets and that it imports nothing
//!   the host does not provide, and keeps an `InstancePre` for it: a
//!   [`Plugin`].
//! - A [`Sandbox`] runs one plugin for one port: its own memory cap, time
//!   limit, granted folders and configuration; the instance is initialised
//!   once with its configuration, reused across calls (batches of
//!   documents, one result per item) and replaced by a fresh one after any
//!   trap.
//! - [`contract`]: the version of `ferry:plugin` the host implements, read
//!   from `wit/ferry.wit`, and the compatibility rule; plugins built against
//!   0.1 run through an adapter layer (`legacy.rs`).
//!
//! Deny by default: a sandbox has no environment variables, no arguments, no
//! stdin, no sockets, no name lookup, a wall clock stuck at the Unix epoch,
//! and no file system except the folders its configuration grants.

mod bindings;
mod cache;
pub mod contract;
mod document;
mod error;
mod files;
mod host;
mod legacy;
mod output;
mod plugin;
mod quota;
mod sandbox;

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::Context as _;
use wasmtime::component::Linker;
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use bindings::adapter::exports::ferry::plugin::receive::{Received, Refusal};
pub use bindings::service::exports::ferry::plugin::service::{
    Fault, Header as ServiceHeader, Request as ServiceRequest, ServiceError,
};
pub use bindings::{Configuration, Context, Direction, Level, Message, PluginError, Stage};
pub use contract::Contract;
pub use document::Document;
pub use error::{FailureKind, LoadError, PluginFailure};
pub use files::{FileError, Grants};
pub use plugin::{Inspection, Plugin, content_hash};
pub use quota::QuotaExceeded;
pub use sandbox::{Answered, Grant, Sandbox, SandboxConfig, SentDocument};

/// How often the epoch advances; time limits are rounded up to this.
pub const TICK: Duration = Duration::from_millis(10);

/// The world a plugin targets.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum World {
    /// Receive and send sides of an adapter.
    Adapter,
    /// One document in, one document out.
    Rule,
    /// A document service dispatched by `Action`.
    Service,
}

impl World {
    /// "an adapter", "a rule", "a service".
    pub fn with_article(self) -> &'static str {
        match self {
            World::Adapter => "an adapter",
            World::Rule => "a rule",
            World::Service => "a service",
        }
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            World::Adapter => "adapter",
            World::Rule => "rule",
            World::Service => "service",
        })
    }
}

/// Resource limits of one sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Linear memory cap in bytes (default 64 MiB).
    pub memory: u64,
    /// Time limit of one call (default 5 s).
    pub time: Duration,
    /// What one call may hand the host.
    pub quotas: Quotas,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 64 << 20,
            time: Duration::from_secs(5),
            quotas: Quotas::default(),
        }
    }
}

/// What a plugin may make the host hold: the memory cap and time limit bound
/// the guest, these bound what it hands over. Each is per item (one
/// document of a rule's batch, one request of a service's, one adapter
/// call): the responses, Send API documents and edited text of each item
/// are checked on their own; log records may reach the quota times the
/// items of the call; stderr/stdout output and the time limit are per call.
/// Reaching one stops the call like a trap (a batch is then run item by
/// item, so only the item that reaches it fails): the message goes to Error
/// with a reason that names the quota and its port key, and nothing it
/// emitted is kept.
/// Log records are the exception: a record longer than
/// [`log_record_bytes`](Quotas::log_record_bytes) is cut, and records past
/// the plugin's [`log_rate`](Quotas::log_rate) are dropped with one line
/// that counts them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quotas {
    /// Documents sent through the Send API (`max_sent_documents`, 1000).
    pub sent_documents: u32,
    /// Their bytes in all (`max_sent_mb`, 16 MiB).
    pub sent_bytes: u64,
    /// Responses returned by a service (`max_responses`, 1000).
    pub responses: u32,
    /// Their bytes in all (`max_response_mb`, 16 MiB).
    pub response_bytes: u64,
    /// Log records (`max_log_records`, 1000); only records at a level the
    /// host writes count.
    pub log_records: u32,
    /// Bytes of one log record, message and fields (`max_log_record_kb`,
    /// 2 KiB); a longer one is cut.
    pub log_record_bytes: usize,
    /// Log records per second per plugin on a port, across calls
    /// (`log_rate`, 100; bursts up to 2 s worth).
    pub log_rate: u32,
    /// Bytes the guest writes to stderr/stdout (`max_output_kb`, 64 KiB).
    pub output_bytes: usize,
    /// Files (or messages) one adapter `receive` call returns
    /// (`max_receive_messages`, 1000).
    pub receive_messages: u32,
    /// Their bytes in all (`max_receive_mb`, 64 MiB).
    pub receive_bytes: u64,
}

impl Default for Quotas {
    fn default() -> Self {
        Quotas {
            sent_documents: 1000,
            sent_bytes: 16 << 20,
            responses: 1000,
            response_bytes: 16 << 20,
            log_records: 1000,
            log_record_bytes: 2 << 10,
            log_rate: 100,
            output_bytes: 64 << 10,
            receive_messages: 1000,
            receive_bytes: 64 << 20,
        }
    }
}

/// Options of the runtime as a whole.
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where compiled components are cached; `None` compiles every time.
    pub cache_dir: Option<PathBuf>,
    /// The largest memory cap any sandbox will get: the size of a pool slot.
    pub max_memory: u64,
    /// How many instances may be alive at once (pool size).
    pub max_instances: u32,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        RuntimeOptions {
            cache_dir: None,
            max_memory: Limits::default().memory,
            max_instances: 1000,
        }
    }
}

/// The component runtime. Cheap to clone; the epoch ticker stops when the
/// last clone is dropped.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    linker: Linker<host::HostState>,
    options: RuntimeOptions,
    _ticker: Ticker,
}

struct Ticker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Runtime {
    /// Build the engine, the linker (WASI p2 + Ferry's host interfaces) and
    /// start the epoch ticker.
    pub fn new(options: RuntimeOptions) -> anyhow::Result<Runtime> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // For profiling guests (BENCHMARKS.md): name their compiled code
        // in /tmp/perf-PID.map, which `perf report` reads.
        if std::env::var_os("FERRY_WASM_PERFMAP").is_some() {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let slot = options.max_memory.max(1 << 20).next_multiple_of(64 << 10);
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(options.max_instances)
            .total_core_instances(options.max_instances.saturating_mul(4))
            .total_memories(options.max_instances.saturating_mul(2))
            .total_tables(options.max_instances.saturating_mul(4))
            .total_stacks(options.max_instances)
            .max_memory_size(slot as usize)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_core_instances_per_component(64)
            .max_core_instance_size(16 << 20)
            .max_component_instance_size(16 << 20)
            .table_elements(100_000);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        // Each memory's slot reserves the whole 32-bit address range plus a
        // guard (address space only, nothing committed: ~8 TiB of the
        // 128 TiB a process has, for 1000 instances), so the compiled
        // guest code needs no bounds check on its loads and stores; the
        // memory still cannot grow past `slot` (the pool) nor past the
        // sandbox's cap (its store limits). With a reservation of `slot`
        // every access was checked: the sales-order service took 1.34x
        // the instructions (BENCHMARKS.md).
        config.memory_reservation(4 << 30);
        config.memory_guard_size(32 << 20);
        config.memory_reservation_for_growth(0);
        let engine = Engine::new(&config)
            .map_err(anyhow::Error::from)
            .context("cannot start the WebAssembly engine")?;

        let mut linker = Linker::new(&engine);
        host::add_to_linker(&mut linker)?;

        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let engine = engine.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("ferry-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(TICK);
                        engine.increment_epoch();
                    }
                })
                .context("cannot start the epoch ticker thread")?
        };
        Ok(Runtime {
            inner: Arc::new(Inner {
                engine,
                linker,
                options,
                _ticker: Ticker {
                    stop,
                    thread: Some(thread),
                },
            }),
        })
    }

    /// The engine (for benchmarks and tests).
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The largest memory cap a sandbox may be given.
    pub fn max_memory(&self) -> u64 {
        self.inner.options.max_memory
    }

    fn linker(&self) -> &Linker<host::HostState> {
        &self.inner.linker
    }

    fn cache_dir(&self) -> Option<&std::path::Path> {
        self.inner.options.cache_dir.as_deref()
    }
}
