//! A sandbox: one plugin running for one port, with its own memory cap,
//! time limit, granted folders and configuration. The instance is reused
//! across calls and replaced by a fresh one after any trap.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::{HasSelf, Linker, ResourceTable};
use wasmtime::{Store, StoreLimits, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};

use super::bindings::{adapter, rule, service};
use super::output::CapturedOutput;
use super::plugin::PluginPre;
use super::quota::{self, LogBucket, QuotaExceeded};
use super::{
    Context, Document, FailureKind, Level, Limits, Message, Plugin, PluginError, PluginFailure,
    Received, ServiceError, ServiceRequest, TICK, World,
};

/// How much of the stderr is attached to an error.
const STDERR_SHOWN: usize = 4 << 10;

/// A host folder made visible inside a sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Grant {
    /// The folder on the host.
    pub host: PathBuf,
    /// Where the guest sees it, e.g. `/port`.
    pub guest: String,
    /// Whether the guest may create, change and delete files there.
    pub writable: bool,
}

/// Everything a sandbox is given besides its plugin.
#[derive(Debug, Clone, Default)]
pub struct SandboxConfig {
    /// The port (or service) it serves; tags its log records.
    pub port: String,
    /// Its configuration, read-only, as the `host.config` import returns it.
    pub config: Vec<(String, String)>,
    /// Folders it may see. Nothing else of the file system is visible.
    pub grants: Vec<Grant>,
    /// Memory cap and time limit.
    pub limits: Limits,
    /// Outbound ports a service may address through the Send API.
    pub outbound_ports: Arc<BTreeSet<String>>,
}

/// A document a service emitted through the Send API during one call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDocument {
    /// The outbound port it is for.
    pub port: String,
    /// The `Action` of its envelope.
    pub action: String,
    /// The XML inside `Body/MessageParts`.
    pub body: String,
}

/// The state of one wasmtime `Store`.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    limits: StoreLimits,
    plugin: String,
    hash: String,
    setup: Arc<SandboxConfig>,
    sent: Vec<SentDocument>,
    /// Bytes of `sent`.
    sent_bytes: u64,
    /// Log records written during the current call.
    logged: u32,
    /// The plugin's log rate limiter on this port.
    log_bucket: Arc<Mutex<LogBucket>>,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl rule::ferry::plugin::types::Host for HostState {}

impl HostState {
    /// Count a log record the host would write against the call's quota,
    /// then ask the plugin's rate limiter: `Ok(true)` to write it (after
    /// reporting the records dropped before it), `Ok(false)` when it is
    /// dropped, `Err` when the call reached its quota.
    fn admit_log(&mut self) -> wasmtime::Result<bool> {
        let q = &self.setup.limits.quotas;
        self.logged += 1;
        if self.logged > q.log_records {
            return Err(QuotaExceeded::new(
                format_args!("wrote more than {} log records in one call", q.log_records),
                "max_log_records",
                q.log_records,
                &self.setup.port,
            )
            .into());
        }
        let admitted = self
            .log_bucket
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .admit(q.log_rate, Instant::now());
        match admitted {
            Ok(dropped) => {
                self.report_dropped(dropped);
                Ok(true)
            }
            Err(()) => Ok(false),
        }
    }

    /// The one line that says how many of this plugin's log records the
    /// rate limiter dropped.
    fn report_dropped(&self, dropped: u64) {
        if dropped > 0 {
            let (plugin, hash, port) = (&self.plugin, &self.hash[..12], &self.setup.port);
            tracing::warn!(
                target: "ferry::plugin",
                plugin, hash, port,
                "{dropped} log records of this plugin dropped: it logged faster than its rate \
                 (`log_rate` = {}/s on the port)",
                self.setup.limits.quotas.log_rate
            );
        }
    }
}

impl rule::ferry::plugin::host::Host for HostState {
    fn log(
        &mut self,
        level: Level,
        message: String,
        fields: Vec<(String, String)>,
    ) -> wasmtime::Result<()> {
        // Records filtered out cost nothing more than the call: they are
        // neither counted nor formatted.
        macro_rules! emit {
            ($lvl:expr) => {
                if tracing::enabled!(target: "ferry::plugin", $lvl) && self.admit_log()? {
                    let max = self.setup.limits.quotas.log_record_bytes;
                    let fields = fields
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ");
                    let fields = quota::cut(&fields, max.saturating_sub(message.len().min(max)));
                    let message = quota::cut(&message, max);
                    let (plugin, hash, port) = (&self.plugin, &self.hash[..12], &self.setup.port);
                    tracing::event!(target: "ferry::plugin", $lvl, plugin, hash, port, %fields, "{message}")
                }
            };
        }
        match level {
            Level::Trace => emit!(tracing::Level::TRACE),
            Level::Debug => emit!(tracing::Level::DEBUG),
            Level::Info => emit!(tracing::Level::INFO),
            Level::Warn => emit!(tracing::Level::WARN),
            Level::Error => emit!(tracing::Level::ERROR),
        }
        Ok(())
    }

    fn config(&mut self) -> Vec<(String, String)> {
        self.setup.config.clone()
    }

    fn config_get(&mut self, key: String) -> Option<String> {
        self.setup
            .config
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
    }
}

impl service::ferry::plugin::send_api::Host for HostState {
    fn send(
        &mut self,
        port: String,
        action: String,
        body: String,
    ) -> wasmtime::Result<Result<(), PluginError>> {
        let q = &self.setup.limits.quotas;
        if self.sent.len() >= q.sent_documents as usize {
            return Err(QuotaExceeded::new(
                format_args!(
                    "sent more than {} documents through the Send API in one call",
                    q.sent_documents
                ),
                "max_sent_documents",
                q.sent_documents,
                &self.setup.port,
            )
            .into());
        }
        let bytes = (port.len() + action.len() + body.len()) as u64;
        if self.sent_bytes + bytes > q.sent_bytes {
            return Err(QuotaExceeded::new(
                format_args!(
                    "sent more than {} MiB through the Send API in one call",
                    q.sent_bytes >> 20
                ),
                "max_sent_mb",
                q.sent_bytes >> 20,
                &self.setup.port,
            )
            .into());
        }
        if !self.setup.outbound_ports.contains(&port) {
            return Ok(Err(PluginError::Rejected(format!(
                "no outbound port named {port:?} is configured (known: {})",
                self.setup
                    .outbound_ports
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))));
        }
        self.sent_bytes += bytes;
        self.sent.push(SentDocument { port, action, body });
        Ok(Ok(()))
    }
}

/// Link WASI 0.2 and Ferry's host interfaces into `linker`.
pub(super) fn add_to_linker(linker: &mut Linker<HostState>) -> anyhow::Result<()> {
    wasmtime_wasi::p2::add_to_linker_sync(linker)?;
    rule::ferry::plugin::types::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    rule::ferry::plugin::host::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    service::ferry::plugin::send_api::add_to_linker::<_, HasSelf<_>>(linker, |s| s)?;
    Ok(())
}

/// A wall clock stuck at the Unix epoch: plugins see no real time.
struct EpochClock;

impl wasmtime_wasi::HostWallClock for EpochClock {
    fn resolution(&self) -> Duration {
        Duration::from_secs(1)
    }
    fn now(&self) -> Duration {
        Duration::ZERO
    }
}

enum Bindings {
    Rule(rule::RulePlugin),
    Adapter(adapter::Adapter),
    Service(service::ServicePlugin),
}

struct Live {
    store: Store<HostState>,
    bindings: Bindings,
    stderr: CapturedOutput,
}

/// One plugin instantiated for one port. Not `Sync`: a worker thread owns it.
pub struct Sandbox {
    plugin: Arc<Plugin>,
    setup: Arc<SandboxConfig>,
    live: Option<Live>,
}

impl Sandbox {
    /// A sandbox for `plugin` with `setup`. Nothing is instantiated until the
    /// first call.
    pub fn new(plugin: Arc<Plugin>, setup: Arc<SandboxConfig>) -> Sandbox {
        Sandbox {
            plugin,
            setup,
            live: None,
        }
    }

    /// The plugin this sandbox runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Instantiate now rather than at the first call: a trial a new
    /// version must pass before it goes live (hot loading).
    pub fn warm_up(&mut self) -> Result<(), PluginFailure> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        Ok(())
    }

    /// Whether an instance is alive (false before the first call and after
    /// a trap).
    pub fn is_live(&self) -> bool {
        self.live.is_some()
    }

    fn failure(&self, function: &'static str, kind: FailureKind, message: String) -> PluginFailure {
        PluginFailure {
            plugin: self.plugin.name().to_string(),
            hash: self.plugin.hash().to_string(),
            world: self.plugin.world(),
            function,
            kind,
            message,
            stderr: String::new(),
        }
    }

    fn instantiate(&self) -> Result<Live, PluginFailure> {
        let fail = |stderr: &CapturedOutput, e: wasmtime::Error| {
            let mut f = self.failure("instantiate", FailureKind::Instantiate, format!("{e:#}"));
            f.stderr = shown(&stderr.text());
            if let Some(kind) = trap_kind(&e, &f.stderr) {
                f.message = format!("{} ({kind})", f.message);
            }
            f
        };
        let stderr = CapturedOutput::new(self.setup.limits.quotas.output_bytes);
        let mut wasi = WasiCtxBuilder::new();
        wasi.stderr(stderr.clone())
            .stdout(stderr.clone())
            .wall_clock(EpochClock)
            .allow_blocking_current_thread(true)
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        for g in &self.setup.grants {
            let perms = if g.writable {
                FsPerms::ReadWrite
            } else {
                FsPerms::ReadOnly
            };
            wasi.preopened_dir(&g.host, &g.guest, perms).map_err(|e| {
                self.failure(
                    "instantiate",
                    FailureKind::Instantiate,
                    format!("cannot open granted folder {}: {e:#}", g.host.display()),
                )
            })?;
        }
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.setup.limits.memory as usize)
            .trap_on_grow_failure(true)
            .instances(64)
            .build();
        let state = HostState {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limits,
            plugin: self.plugin.name().to_string(),
            hash: self.plugin.hash().to_string(),
            setup: self.setup.clone(),
            sent: Vec::new(),
            sent_bytes: 0,
            logged: 0,
            log_bucket: quota::log_bucket(
                &self.setup.port,
                self.plugin.name(),
                self.setup.limits.quotas.log_rate,
            ),
        };
        let mut store = Store::new(self.plugin_engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(self.setup.limits.time));
        let bindings = match &self.plugin.pre {
            PluginPre::Rule(p) => p.instantiate(&mut store).map(Bindings::Rule),
            PluginPre::Adapter(p) => p.instantiate(&mut store).map(Bindings::Adapter),
            PluginPre::Service(p) => p.instantiate(&mut store).map(Bindings::Service),
        }
        .map_err(|e| fail(&stderr, e))?;
        Ok(Live {
            store,
            bindings,
            stderr,
        })
    }

    fn plugin_engine(&self) -> &wasmtime::Engine {
        match &self.plugin.pre {
            PluginPre::Rule(p) => p.engine(),
            PluginPre::Adapter(p) => p.engine(),
            PluginPre::Service(p) => p.engine(),
        }
    }

    /// Run one call on the live instance (instantiating it first if needed).
    /// A trap discards the instance; a guest-reported error keeps it.
    fn call<R>(
        &mut self,
        function: &'static str,
        f: impl FnOnce(&mut Store<HostState>, &Bindings) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Result<R, PluginFailure> {
        let output_quota = self.setup.limits.quotas.output_bytes;
        let mut live = match self.live.take() {
            Some(l) => l,
            None => self.instantiate()?,
        };
        live.stderr.begin_call(output_quota);
        live.store.set_epoch_deadline(ticks(self.setup.limits.time));
        let state = live.store.data_mut();
        state.sent.clear();
        state.sent_bytes = 0;
        state.logged = 0;
        let outcome = f(&mut live.store, &live.bindings);
        let said = || shown(&live.stderr.text());
        {
            // Records the rate limiter dropped are reported once it has
            // refilled, without waiting for the plugin's next record.
            let state = live.store.data();
            let rate = state.setup.limits.quotas.log_rate;
            let n = state
                .log_bucket
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .report_due(rate, Instant::now());
            state.report_dropped(n);
        }
        if live.stderr.exceeded() {
            // The write past the quota trapped; the instance is poisoned.
            return Err(self.quota_failure(
                function,
                QuotaExceeded::new(
                    format_args!(
                        "wrote more than {} KiB to stderr/stdout in one call",
                        output_quota >> 10
                    ),
                    "max_output_kb",
                    output_quota >> 10,
                    &self.setup.port,
                ),
                said(),
            ));
        }
        if let Err(e) = &outcome
            && let Some(q) = e.downcast_ref::<QuotaExceeded>()
        {
            // Stopped from inside a host function: the instance is
            // poisoned like after any trap.
            return Err(self.quota_failure(function, q.clone(), said()));
        }
        match outcome {
            Ok(Ok(r)) => {
                self.live = Some(live);
                Ok(r)
            }
            Ok(Err(e)) => {
                let (kind, message) = match e {
                    PluginError::Rejected(m) => (FailureKind::Rejected, m),
                    PluginError::Failed(m) => (FailureKind::Failed, m),
                };
                let mut failure = self.failure(function, kind, message);
                failure.stderr = said();
                self.live = Some(live);
                Err(failure)
            }
            Err(e) => {
                let stderr = said();
                let kind = trap_kind(&e, &stderr).unwrap_or(FailureKind::Trap);
                let mut failure = self.failure(function, kind, describe(kind, &e, &self.setup));
                failure.stderr = stderr;
                // `live` is dropped here: the instance is poisoned.
                Err(failure)
            }
        }
    }

    fn quota_failure(
        &self,
        function: &'static str,
        q: QuotaExceeded,
        stderr: String,
    ) -> PluginFailure {
        let mut f = self.failure(function, FailureKind::Quota, q.0);
        f.stderr = stderr;
        f
    }

    fn world_mismatch(&self, function: &'static str) -> PluginFailure {
        self.failure(
            function,
            FailureKind::Trap,
            format!(
                "{function} is not part of the {} world",
                self.plugin.world()
            ),
        )
    }

    /// `rule.apply`.
    pub fn apply(&mut self, ctx: &Context, doc: &Document) -> Result<Document, PluginFailure> {
        if self.plugin.world() != World::Rule {
            return Err(self.world_mismatch("apply"));
        }
        self.call("apply", |store, b| match b {
            Bindings::Rule(r) => r.ferry_plugin_rule().call_apply(store, ctx, doc),
            _ => unreachable!("world checked above"),
        })
    }

    /// `service.invoke`: the response bodies and the documents the service
    /// sent through the Send API, or the fault it answered with.
    #[allow(clippy::type_complexity)]
    pub fn invoke(
        &mut self,
        ctx: &Context,
        req: &ServiceRequest,
    ) -> Result<(Result<Vec<String>, super::Fault>, Vec<SentDocument>), PluginFailure> {
        if self.plugin.world() != World::Service {
            return Err(self.world_mismatch("invoke"));
        }
        let result = self.call("invoke", |store, b| match b {
            Bindings::Service(s) => Ok(
                match s
                    .ferry_plugin_service()
                    .call_invoke(&mut *store, ctx, req)?
                {
                    Ok(bodies) => Ok(Ok(bodies)),
                    Err(ServiceError::Fault(f)) => Ok(Err(f)),
                    Err(ServiceError::Plugin(e)) => Err(e),
                },
            ),
            _ => unreachable!("world checked above"),
        })?;
        if let Ok(bodies) = &result {
            let q = &self.setup.limits.quotas;
            let bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
            let over = if bodies.len() > q.responses as usize {
                Some(QuotaExceeded::new(
                    format_args!(
                        "returned {} responses to one request, more than {}",
                        bodies.len(),
                        q.responses
                    ),
                    "max_responses",
                    q.responses,
                    &self.setup.port,
                ))
            } else if bytes > q.response_bytes {
                Some(QuotaExceeded::new(
                    format_args!(
                        "returned {} bytes of responses to one request, more than {} MiB",
                        bytes,
                        q.response_bytes >> 20
                    ),
                    "max_response_mb",
                    q.response_bytes >> 20,
                    &self.setup.port,
                ))
            } else {
                None
            };
            if let Some(q) = over {
                // Nothing it emitted is kept.
                if let Some(l) = &mut self.live {
                    l.store.data_mut().sent.clear();
                }
                return Err(self.quota_failure("invoke", q, String::new()));
            }
        }
        let sent = match &mut self.live {
            // A fault answers the request; documents sent before it stand
            // only with a successful answer.
            Some(l) if result.is_ok() => std::mem::take(&mut l.store.data_mut().sent),
            _ => Vec::new(),
        };
        Ok((result, sent))
    }

    fn adapter_call<R>(
        &mut self,
        function: &'static str,
        f: impl FnOnce(
            &adapter::Adapter,
            &mut Store<HostState>,
        ) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Result<R, PluginFailure> {
        if self.plugin.world() != World::Adapter {
            return Err(self.world_mismatch(function));
        }
        self.call(function, |store, b| match b {
            Bindings::Adapter(a) => f(a, store),
            _ => unreachable!("world checked above"),
        })
    }

    /// `receive.begin`.
    pub fn receive_begin(&mut self, address: &str) -> Result<(), PluginFailure> {
        self.adapter_call("receive.begin", |a, s| {
            a.ferry_plugin_receive().call_begin(s, address)
        })
    }
    /// `receive.receive`: at most `max` messages (and the port's receive
    /// quotas).
    pub fn receive(&mut self, max: u32) -> Result<Vec<Received>, PluginFailure> {
        let q = self.setup.limits.quotas;
        let max = max.min(q.receive_messages);
        let got = self.adapter_call("receive.receive", |a, s| {
            a.ferry_plugin_receive().call_receive(s, max)
        })?;
        let bytes: u64 = got
            .iter()
            .map(|r| match r {
                Received::Accepted(m) => (m.name.len() + m.content.len()) as u64,
                Received::Refused(r) => (r.name.len() + r.reason.len()) as u64,
            })
            .sum();
        let over = if got.len() > max as usize {
            Some(QuotaExceeded::new(
                format_args!(
                    "returned {} messages from one receive call, more than the {max} asked for",
                    got.len()
                ),
                "max_receive_messages",
                q.receive_messages,
                &self.setup.port,
            ))
        } else if bytes > q.receive_bytes {
            Some(QuotaExceeded::new(
                format_args!(
                    "returned {bytes} bytes from one receive call, more than {} MiB",
                    q.receive_bytes >> 20
                ),
                "max_receive_mb",
                q.receive_bytes >> 20,
                &self.setup.port,
            ))
        } else {
            None
        };
        match over {
            Some(q) => Err(self.quota_failure("receive.receive", q, String::new())),
            None => Ok(got),
        }
    }
    /// `receive.commit`.
    pub fn receive_commit(&mut self, names: &[String]) -> Result<(), PluginFailure> {
        self.adapter_call("receive.commit", |a, s| {
            a.ferry_plugin_receive().call_commit(s, names)
        })
    }
    /// `receive.rollback`.
    pub fn receive_rollback(&mut self, names: &[String]) -> Result<(), PluginFailure> {
        self.adapter_call("receive.rollback", |a, s| {
            a.ferry_plugin_receive().call_rollback(s, names)
        })
    }
    /// `send.begin`.
    pub fn send_begin(&mut self, address: &str) -> Result<(), PluginFailure> {
        self.adapter_call("send.begin", |a, s| {
            a.ferry_plugin_send().call_begin(s, address)
        })
    }
    /// `send.send`.
    pub fn send(&mut self, msg: &Message) -> Result<(), PluginFailure> {
        self.adapter_call("send.send", |a, s| a.ferry_plugin_send().call_send(s, msg))
    }
    /// `send.commit`.
    pub fn send_commit(&mut self) -> Result<(), PluginFailure> {
        self.adapter_call("send.commit", |a, s| a.ferry_plugin_send().call_commit(s))
    }
    /// `send.rollback`.
    pub fn send_rollback(&mut self) -> Result<(), PluginFailure> {
        self.adapter_call("send.rollback", |a, s| {
            a.ferry_plugin_send().call_rollback(s)
        })
    }
}

/// Epoch ticks for a time limit, rounded up, at least one.
fn ticks(limit: Duration) -> u64 {
    (limit.as_nanos().div_ceil(TICK.as_nanos()) as u64).max(1) + 1
}

/// The tail of what the guest wrote, trimmed to about [`STDERR_SHOWN`]
/// bytes.
fn shown(text: &str) -> String {
    let mut start = text.len().saturating_sub(STDERR_SHOWN);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].trim().to_string()
}

/// Classify a trap. `None` when it is no trap the runtime knows.
fn trap_kind(e: &wasmtime::Error, stderr: &str) -> Option<FailureKind> {
    if let Some(trap) = e.downcast_ref::<Trap>() {
        return Some(match trap {
            Trap::Interrupt => FailureKind::Timeout,
            Trap::StackOverflow => FailureKind::StackOverflow,
            Trap::UnreachableCodeReached if is_panic(stderr) => FailureKind::Panic,
            Trap::UnreachableCodeReached if stderr.contains("memory allocation of") => {
                FailureKind::OutOfMemory
            }
            _ => FailureKind::Trap,
        });
    }
    let text = format!("{e:#}");
    if text.contains("forcing trap when growing memory") {
        return Some(FailureKind::OutOfMemory);
    }
    if is_panic(stderr) {
        return Some(FailureKind::Panic);
    }
    None
}

fn is_panic(stderr: &str) -> bool {
    stderr.contains("panicked at")
        || stderr.contains("Traceback (most recent call last)")
        || stderr.contains("Uncaught")
}

fn describe(kind: FailureKind, e: &wasmtime::Error, setup: &SandboxConfig) -> String {
    match kind {
        FailureKind::Timeout => format!(
            "stopped after the time limit of {:?} (set `time_limit_ms` on the port to change it)",
            setup.limits.time
        ),
        FailureKind::OutOfMemory => format!(
            "stopped at the memory cap of {} MiB (set `memory_limit_mb` on the port to change it)",
            setup.limits.memory >> 20
        ),
        _ => {
            let root = e.root_cause().to_string();
            let full = format!("{e:#}");
            let text = if full.len() > 600 { root } else { full };
            if text.contains("out of bounds memory access") {
                format!(
                    "{text} (in a guest compiled from Rust or C this is most often its own \
                     stack overflowing: deep recursion)"
                )
            } else {
                text
            }
        }
    }
}
