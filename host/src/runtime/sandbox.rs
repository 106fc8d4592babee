//! A sandbox: one plugin running for one port, with its own memory cap,
//! time limit, granted folders and configuration. The instance is
//! initialised once (its world's `init`, the configuration), reused across
//! calls, and replaced by a fresh one after any trap.
//!
//! Rules and services are called with batches, one result per item. A call
//! that fails as a whole — a trap, the time limit, the memory cap, a quota,
//! or a result count that is not the batch's length — is run again item by
//! item on a fresh instance, so only the item that causes it fails, with
//! the reason; the others get their own results.
//!
//! Plugins built against `ferry:plugin@0.1` are served through the same
//! methods by the adapter layer (`legacy.rs`): one item per call.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use wasmtime::component::{Resource, ResourceTable};
use wasmtime::{Store, StoreLimitsBuilder, Trap};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use super::bindings::{adapter, rule, service, v01};
use super::contract::Contract;
use super::document::{Batch, DocRef, Document};
use super::files::Grants;
use super::host::{self, HostState};
use super::output::CapturedOutput;
use super::plugin::PluginPre;
use super::quota::{self, QuotaExceeded};
use super::{
    Configuration, Context, Direction, FailureKind, Fault, Limits, Message, Plugin, PluginError,
    PluginFailure, Received, ServiceError, ServiceRequest, TICK, World, legacy,
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
#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// The port (or service) it serves; tags its log records.
    pub port: String,
    /// The port's direction (given to the plugin at `init`).
    pub direction: Direction,
    /// Its configuration, given once to its world's `init` (0.1 plugins:
    /// returned by the `host.config` import).
    pub config: Vec<(String, String)>,
    /// Folders it may see. Nothing else of the file system is visible.
    pub grants: Vec<Grant>,
    /// Memory cap and time limit.
    pub limits: Limits,
    /// Outbound ports a service may send documents to.
    pub outbound_ports: Arc<BTreeSet<String>>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            port: String::new(),
            direction: Direction::Inbound,
            config: Vec::new(),
            grants: Vec::new(),
            limits: Limits::default(),
            outbound_ports: Arc::default(),
        }
    }
}

/// A document a service emitted for an outbound port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentDocument {
    /// The outbound port it is for.
    pub port: String,
    /// The `Action` of its envelope.
    pub action: String,
    /// The XML inside `Body/MessageParts`.
    pub body: String,
}

/// What a service answered one request with: its response bodies (or the
/// fault it answered with), and the documents it sends.
pub type Answered = (Result<Vec<String>, Fault>, Vec<SentDocument>);

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
    Rule01(v01::rule::RulePlugin),
    Adapter01(v01::adapter::Adapter),
    Service01(v01::service::ServicePlugin),
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
    /// The documents of a rule call whose instance was discarded.
    salvaged: Option<Batch>,
}

impl Sandbox {
    /// A sandbox for `plugin` with `setup`. Nothing is instantiated until the
    /// first call.
    pub fn new(plugin: Arc<Plugin>, setup: Arc<SandboxConfig>) -> Sandbox {
        Sandbox {
            plugin,
            setup,
            live: None,
            salvaged: None,
        }
    }

    /// The plugin this sandbox runs.
    pub fn plugin(&self) -> &Arc<Plugin> {
        &self.plugin
    }

    /// Instantiate (and initialise) now rather than at the first call: a
    /// trial a new version must pass before it goes live (hot loading).
    pub fn warm_up(&mut self) -> Result<(), PluginFailure> {
        if self.live.is_none() {
            self.live = Some(self.instantiate()?);
        }
        Ok(())
    }

    /// Instantiate without `init` and discard the instance: whether the
    /// plugin can start at all within this sandbox's limits (the trial of a
    /// new version, before its configuration is given).
    pub fn try_start(&mut self) -> Result<(), PluginFailure> {
        self.start(false).map(drop)
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

    /// The failure of one item the plugin answered with an error.
    fn item_failure(&self, function: &'static str, e: PluginError) -> PluginFailure {
        let (kind, message) = match e {
            PluginError::Rejected(m) => (FailureKind::Rejected, m),
            PluginError::Failed(m) => (FailureKind::Failed, m),
        };
        let mut f = self.failure(function, kind, message);
        f.stderr = self
            .live
            .as_ref()
            .map(|l| shown(&l.stderr.text()))
            .unwrap_or_default();
        f
    }

    fn instantiate(&self) -> Result<Live, PluginFailure> {
        self.start(true)
    }

    /// A new instance, initialised with the configuration when `init`.
    fn start(&self, init: bool) -> Result<Live, PluginFailure> {
        let fail = |function: &'static str, stderr: &CapturedOutput, e: wasmtime::Error| {
            let said = shown(&stderr.text());
            let kind = trap_kind(&e, &said);
            let mut f = match (function, kind) {
                ("init", Some(kind)) => self.failure("init", kind, describe(kind, &e, &self.setup)),
                _ => {
                    let mut f = self.failure(function, FailureKind::Instantiate, format!("{e:#}"));
                    if let Some(kind) = kind {
                        f.message = format!("{} ({kind})", f.message);
                    }
                    f
                }
            };
            f.stderr = said;
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
        let cannot_open = |g: &Grant, e: &dyn std::fmt::Display| {
            self.failure(
                "instantiate",
                FailureKind::Instantiate,
                format!("cannot open granted folder {}: {e}", g.host.display()),
            )
        };
        // A 0.2 adapter reaches its folders through `files`; a 0.1 adapter
        // through WASI.
        let grants = if self.plugin.contract() == Contract::Current {
            Grants::open(&self.setup.grants).map_err(|e| {
                let g = self.setup.grants.first().expect("a grant failed to open");
                cannot_open(g, &e)
            })?
        } else {
            for g in &self.setup.grants {
                let perms = if g.writable {
                    FsPerms::ReadWrite
                } else {
                    FsPerms::ReadOnly
                };
                wasi.preopened_dir(&g.host, &g.guest, perms)
                    .map_err(|e| cannot_open(g, &e))?;
            }
            Grants::default()
        };
        let limits = StoreLimitsBuilder::new()
            .memory_size(self.setup.limits.memory as usize)
            .trap_on_grow_failure(true)
            .instances(64)
            .build();
        let q = self.setup.limits.quotas;
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
            log_allowance: q.log_records,
            log_bucket: quota::log_bucket(&self.setup.port, self.plugin.name(), q.log_rate),
            batch: Batch::default(),
            grants,
        };
        let mut store = Store::new(self.plugin.engine(), state);
        store.limiter(|s| &mut s.limits);
        store.epoch_deadline_trap();
        store.set_epoch_deadline(ticks(self.setup.limits.time));
        let bindings = match &self.plugin.pre {
            PluginPre::Rule(p) => p.instantiate(&mut store).map(Bindings::Rule),
            PluginPre::Adapter(p) => p.instantiate(&mut store).map(Bindings::Adapter),
            PluginPre::Service(p) => p.instantiate(&mut store).map(Bindings::Service),
            PluginPre::Rule01(p) => p.instantiate(&mut store).map(Bindings::Rule01),
            PluginPre::Adapter01(p) => p.instantiate(&mut store).map(Bindings::Adapter01),
            PluginPre::Service01(p) => p.instantiate(&mut store).map(Bindings::Service01),
        }
        .map_err(|e| fail("instantiate", &stderr, e))?;

        // The configuration, once per instance.
        let config = Configuration {
            port: self.setup.port.clone(),
            direction: self.setup.direction,
            options: self.setup.config.clone(),
            log_level: host::log_level(),
            outbound_ports: self.setup.outbound_ports.iter().cloned().collect(),
        };
        let init = match &bindings {
            _ if !init => None,
            Bindings::Rule(b) => Some(b.call_init(&mut store, &config)),
            Bindings::Adapter(b) => Some(b.call_init(&mut store, &config)),
            Bindings::Service(b) => Some(b.call_init(&mut store, &config)),
            _ => None,
        };
        match init {
            None | Some(Ok(Ok(()))) => {}
            Some(Ok(Err(e))) => {
                let (kind, reason) = match e {
                    PluginError::Rejected(m) => (FailureKind::Rejected, m),
                    PluginError::Failed(m) => (FailureKind::Failed, m),
                };
                let mut f = self.failure("init", kind, format!("its configuration: {reason}"));
                f.stderr = shown(&stderr.text());
                return Err(f);
            }
            Some(Err(e)) => return Err(fail("init", &stderr, e)),
        }
        Ok(Live {
            store,
            bindings,
            stderr,
        })
    }

    /// Run one call on the live instance (instantiating it first if needed).
    /// `items`: how many items the call carries (the log quota is per
    /// item). A trap discards the instance (keeping a rule call's documents
    /// in `salvaged`); a guest-reported error keeps it. Each call is counted
    /// and timed for the metrics (`ferry_plugin_calls_total`,
    /// `ferry_plugin_call_duration_seconds`, `ferry_plugin_traps_total`).
    fn call<R>(
        &mut self,
        function: &'static str,
        items: usize,
        f: impl FnOnce(&mut Store<HostState>, &Bindings) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Result<R, PluginFailure> {
        let started = Instant::now();
        let result = self.call_once(function, items, f);
        let plugin = self.plugin.name().to_string();
        let outcome = result.as_ref().err().map_or("ok", |e| e.kind.label());
        metrics::histogram!("ferry_plugin_call_duration_seconds", "plugin" => plugin.clone(), "function" => function)
            .record(started.elapsed().as_secs_f64());
        metrics::counter!("ferry_plugin_calls_total", "plugin" => plugin.clone(), "function" => function, "outcome" => outcome)
            .increment(1);
        if let Err(e) = &result
            && e.kind.poisons()
        {
            metrics::counter!("ferry_plugin_traps_total", "plugin" => plugin, "kind" => e.kind.label())
                .increment(1);
        }
        result
    }

    fn call_once<R>(
        &mut self,
        function: &'static str,
        items: usize,
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
        state.log_allowance = state
            .setup
            .limits
            .quotas
            .log_records
            .saturating_mul(items.max(1) as u32);
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
        let poisoned = live.stderr.exceeded() || outcome.is_err();
        if poisoned {
            self.salvaged = Some(std::mem::take(&mut live.store.data_mut().batch));
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
                let stderr = said();
                self.live = Some(live);
                let mut failure = self.item_failure(function, e);
                failure.stderr = stderr;
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

    /// A call answered with a result count that is not the batch's length:
    /// the instance is discarded (the plugin is not doing what the contract
    /// says) and the failure names both counts.
    fn count_failure(&mut self, function: &'static str, got: usize, items: usize) -> PluginFailure {
        if let Some(mut live) = self.live.take() {
            self.salvaged = Some(std::mem::take(&mut live.store.data_mut().batch));
        }
        self.failure(
            function,
            FailureKind::Contract,
            format!(
                "returned {got} results for a batch of {items}; the contract is one result per \
                 item, in order"
            ),
        )
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

    /// Whether a failure of a whole call is worth running each item alone:
    /// not when the plugin cannot even start.
    fn retry_alone(f: &PluginFailure) -> bool {
        !matches!(f.function, "instantiate" | "init")
    }

    fn warn_retry(&self, function: &str, items: usize, f: &PluginFailure) {
        tracing::warn!(
            plugin = %self.plugin.name(),
            hash = %self.plugin.short_hash(),
            port = %self.setup.port,
            "a batch of {items} failed as a whole in {function} ({}); running each item alone \
             on a fresh instance",
            f.kind
        );
    }

    // ---- rules ---------------------------------------------------------

    /// `rule.apply` over a batch: one result per document, in order — the
    /// document as the rule passes it on, or why it did not.
    pub fn apply(
        &mut self,
        ctx: &Context,
        docs: Vec<Document>,
    ) -> Vec<Result<Document, PluginFailure>> {
        if self.plugin.world() != World::Rule {
            let f = self.world_mismatch("apply");
            return docs.iter().map(|_| Err(f.clone())).collect();
        }
        if self.plugin.contract() == Contract::Legacy {
            return docs.into_iter().map(|d| self.apply_01(ctx, d)).collect();
        }
        let n = docs.len();
        if n == 0 {
            return Vec::new();
        }
        match self.apply_once(ctx, docs) {
            Ok(results) => results,
            Err((f, docs)) if n > 1 && Self::retry_alone(&f) => {
                self.warn_retry("apply", n, &f);
                docs.into_iter()
                    .map(|d| match self.apply_once(ctx, vec![d]) {
                        Ok(mut r) => r.pop().expect("one result for one document"),
                        Err((f, _)) => Err(f),
                    })
                    .collect()
            }
            Err((f, _)) => (0..n).map(|_| Err(f.clone())).collect(),
        }
    }

    /// One `rule.apply` call; on a failure of the whole call, the failure
    /// and the documents (as handed over) for a retry.
    #[allow(clippy::type_complexity, clippy::result_large_err)]
    fn apply_once(
        &mut self,
        ctx: &Context,
        docs: Vec<Document>,
    ) -> Result<Vec<Result<Document, PluginFailure>>, (PluginFailure, Vec<Document>)> {
        let n = docs.len();
        if self.live.is_none() {
            match self.instantiate() {
                Ok(l) => self.live = Some(l),
                Err(f) => return Err((f, docs)),
            }
        }
        let live = self.live.as_mut().expect("instantiated above");
        live.store.data_mut().batch = Batch::new(docs);
        let handles: Vec<Resource<DocRef>> = (0..n).map(|i| Resource::new_own(i as u32)).collect();
        let outcome = self.call("apply", n, |store, b| match b {
            Bindings::Rule(r) => r
                .ferry_plugin_rule()
                .call_apply(store, ctx, &handles)
                .map(Ok),
            _ => unreachable!("world and contract checked above"),
        });
        let results = match outcome {
            Ok(r) => r,
            Err(f) => return Err((f, self.take_salvaged())),
        };
        if results.len() != n {
            let f = self.count_failure("apply", results.len(), n);
            return Err((f, self.take_salvaged()));
        }
        let batch = match &mut self.live {
            Some(l) => std::mem::take(&mut l.store.data_mut().batch),
            None => Batch::default(),
        };
        Ok(results
            .into_iter()
            .zip(batch.into_entries())
            .map(|(r, entry)| match r {
                Ok(()) => entry.finish().map_err(|m| {
                    self.failure("apply", FailureKind::Failed, format!("its edits: {m}"))
                }),
                Err(e) => Err(self.item_failure("apply", e)),
            })
            .collect())
    }

    fn take_salvaged(&mut self) -> Vec<Document> {
        self.salvaged
            .take()
            .map(|b| {
                b.into_entries()
                    .into_iter()
                    .map(|e| e.into_original())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A 0.1 rule: one document per call.
    fn apply_01(&mut self, ctx: &Context, doc: Document) -> Result<Document, PluginFailure> {
        use v01::rule::ferry::plugin::types as t01;
        let ctx = legacy::context(ctx);
        let doc = t01::Document {
            name: doc.name,
            content: doc.content,
        };
        self.call("apply", 1, |store, b| match b {
            Bindings::Rule01(r) => Ok(r
                .ferry_plugin_rule()
                .call_apply(store, &ctx, &doc)?
                .map(|d| Document {
                    name: d.name,
                    content: d.content,
                })
                .map_err(legacy::error)),
            _ => unreachable!("world and contract checked above"),
        })
    }

    // ---- services ------------------------------------------------------

    /// `service.invoke` over a batch: one result per request, in order —
    /// the response bodies (or the fault it answered with) and the
    /// documents it sends, or why it did not answer.
    pub fn invoke(
        &mut self,
        ctx: &Context,
        reqs: &[ServiceRequest],
    ) -> Vec<Result<Answered, PluginFailure>> {
        if self.plugin.world() != World::Service {
            let f = self.world_mismatch("invoke");
            return reqs.iter().map(|_| Err(f.clone())).collect();
        }
        if self.plugin.contract() == Contract::Legacy {
            return reqs.iter().map(|r| self.invoke_01(ctx, r)).collect();
        }
        let n = reqs.len();
        if n == 0 {
            return Vec::new();
        }
        match self.invoke_once(ctx, reqs) {
            Ok(results) => results,
            Err(f) if n > 1 && Self::retry_alone(&f) => {
                self.warn_retry("invoke", n, &f);
                reqs.chunks(1)
                    .map(|one| match self.invoke_once(ctx, one) {
                        Ok(mut r) => r.pop().expect("one result for one request"),
                        Err(f) => Err(f),
                    })
                    .collect()
            }
            Err(f) => (0..n).map(|_| Err(f.clone())).collect(),
        }
    }

    fn invoke_once(
        &mut self,
        ctx: &Context,
        reqs: &[ServiceRequest],
    ) -> Result<Vec<Result<Answered, PluginFailure>>, PluginFailure> {
        let n = reqs.len();
        let results = self.call("invoke", n, |store, b| match b {
            Bindings::Service(s) => s
                .ferry_plugin_service()
                .call_invoke(store, ctx, reqs)
                .map(Ok),
            _ => unreachable!("world and contract checked above"),
        })?;
        if results.len() != n {
            return Err(self.count_failure("invoke", results.len(), n));
        }
        Ok(results
            .into_iter()
            .map(|r| match r {
                Ok(answer) => self.check_answer(
                    answer.responses,
                    answer
                        .send
                        .into_iter()
                        .map(|o| SentDocument {
                            port: o.port,
                            action: o.action,
                            body: o.body,
                        })
                        .collect(),
                ),
                Err(ServiceError::Fault(f)) => Ok((Err(f), Vec::new())),
                Err(ServiceError::Plugin(e)) => Err(self.item_failure("invoke", e)),
            })
            .collect())
    }

    /// One request's answer within the quotas, its documents for configured
    /// ports only.
    fn check_answer(
        &self,
        bodies: Vec<String>,
        sent: Vec<SentDocument>,
    ) -> Result<Answered, PluginFailure> {
        let q = &self.setup.limits.quotas;
        let port = &self.setup.port;
        let bytes: u64 = bodies.iter().map(|b| b.len() as u64).sum();
        let sent_bytes: u64 = sent
            .iter()
            .map(|d| (d.port.len() + d.action.len() + d.body.len()) as u64)
            .sum();
        let over = if bodies.len() > q.responses as usize {
            Some(QuotaExceeded::new(
                format_args!(
                    "returned {} responses to one request, more than {}",
                    bodies.len(),
                    q.responses
                ),
                "max_responses",
                q.responses,
                port,
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
                port,
            ))
        } else if sent.len() > q.sent_documents as usize {
            Some(QuotaExceeded::new(
                format_args!(
                    "sent more than {} documents through the Send API for one request",
                    q.sent_documents
                ),
                "max_sent_documents",
                q.sent_documents,
                port,
            ))
        } else if sent_bytes > q.sent_bytes {
            Some(QuotaExceeded::new(
                format_args!(
                    "sent more than {} MiB through the Send API for one request",
                    q.sent_bytes >> 20
                ),
                "max_sent_mb",
                q.sent_bytes >> 20,
                port,
            ))
        } else {
            None
        };
        if let Some(q) = over {
            // Nothing it emitted for this request is kept.
            return Err(self.quota_failure("invoke", q, String::new()));
        }
        if let Some(d) = sent
            .iter()
            .find(|d| !self.setup.outbound_ports.contains(&d.port))
        {
            return Err(self.item_failure("invoke", host::unknown_port(&d.port, &self.setup)));
        }
        Ok((Ok(bodies), sent))
    }

    /// A 0.1 service: one request per call, sends through `send-api`.
    fn invoke_01(
        &mut self,
        ctx: &Context,
        req: &ServiceRequest,
    ) -> Result<Answered, PluginFailure> {
        use v01::service::exports::ferry::plugin::service::ServiceError as E01;
        let ctx = legacy::context(ctx);
        let req = legacy::request(req);
        let result = self.call("invoke", 1, |store, b| match b {
            Bindings::Service01(s) => Ok(
                match s
                    .ferry_plugin_service()
                    .call_invoke(&mut *store, &ctx, &req)?
                {
                    Ok(bodies) => Ok(Ok(bodies)),
                    Err(E01::Fault(f)) => Ok(Err(Fault {
                        code: f.code,
                        reason: f.reason,
                    })),
                    Err(E01::Plugin(e)) => Err(legacy::error(e)),
                },
            ),
            _ => unreachable!("world and contract checked above"),
        })?;
        let sent = match &mut self.live {
            // A fault answers the request; documents sent before it stand
            // only with a successful answer.
            Some(l) if result.is_ok() => std::mem::take(&mut l.store.data_mut().sent),
            _ => Vec::new(),
        };
        match result {
            Ok(bodies) => self.check_answer(bodies, sent),
            Err(fault) => Ok((Err(fault), Vec::new())),
        }
    }

    // ---- adapters ------------------------------------------------------

    fn adapter_call<R>(
        &mut self,
        function: &'static str,
        items: usize,
        f: impl FnOnce(&Bindings, &mut Store<HostState>) -> wasmtime::Result<Result<R, PluginError>>,
    ) -> Result<R, PluginFailure> {
        if self.plugin.world() != World::Adapter {
            return Err(self.world_mismatch(function));
        }
        self.call(function, items, |store, b| f(b, store))
    }

    /// `receive.begin`.
    pub fn receive_begin(&mut self, address: &str) -> Result<(), PluginFailure> {
        self.adapter_call("receive.begin", 1, |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_receive().call_begin(s, address),
            Bindings::Adapter01(a) => Ok(a
                .ferry_plugin_receive()
                .call_begin(s, address)?
                .map_err(legacy::error)),
            _ => unreachable!("world checked"),
        })
    }

    /// `receive.receive`: at most `max` messages (and the port's receive
    /// quotas).
    pub fn receive(&mut self, max: u32) -> Result<Vec<Received>, PluginFailure> {
        let q = self.setup.limits.quotas;
        let max = max.min(q.receive_messages);
        let got = self.adapter_call("receive.receive", max as usize, |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_receive().call_receive(s, max),
            Bindings::Adapter01(a) => Ok(a
                .ferry_plugin_receive()
                .call_receive(s, max)?
                .map(|v| v.into_iter().map(legacy::received).collect())
                .map_err(legacy::error)),
            _ => unreachable!("world checked"),
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
        self.adapter_call("receive.commit", names.len(), |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_receive().call_commit(s, names),
            Bindings::Adapter01(a) => Ok(a
                .ferry_plugin_receive()
                .call_commit(s, names)?
                .map_err(legacy::error)),
            _ => unreachable!("world checked"),
        })
    }

    /// `receive.rollback`.
    pub fn receive_rollback(&mut self, names: &[String]) -> Result<(), PluginFailure> {
        self.adapter_call("receive.rollback", names.len(), |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_receive().call_rollback(s, names),
            Bindings::Adapter01(a) => Ok(a
                .ferry_plugin_receive()
                .call_rollback(s, names)?
                .map_err(legacy::error)),
            _ => unreachable!("world checked"),
        })
    }

    /// `send.begin`.
    pub fn send_begin(&mut self, address: &str) -> Result<(), PluginFailure> {
        self.adapter_call("send.begin", 1, |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_send().call_begin(s, address),
            Bindings::Adapter01(a) => Ok(a
                .ferry_plugin_send()
                .call_begin(s, address)?
                .map_err(legacy::error)),
            _ => unreachable!("world checked"),
        })
    }

    /// `send.send` of a batch: one result per message, or the failure of
    /// the whole call (the session is then gone: the instance trapped).
    /// A 0.1 adapter gets the messages one call each; a trap on one ends
    /// the session like a trap of a batch.
    pub fn send(
        &mut self,
        msgs: &[Message],
    ) -> Result<Vec<Result<(), PluginFailure>>, PluginFailure> {
        if self.plugin.world() != World::Adapter {
            return Err(self.world_mismatch("send.send"));
        }
        if self.plugin.contract() == Contract::Legacy {
            let mut out = Vec::with_capacity(msgs.len());
            for m in msgs {
                let m = legacy::message(m);
                let r = self.adapter_call("send.send", 1, |b, s| match b {
                    Bindings::Adapter01(a) => Ok(a
                        .ferry_plugin_send()
                        .call_send(s, &m)?
                        .map_err(legacy::error)),
                    _ => unreachable!("world and contract checked"),
                });
                match r {
                    Err(f) if f.kind.poisons() => return Err(f),
                    r => out.push(r),
                }
            }
            return Ok(out);
        }
        let n = msgs.len();
        let results = self.adapter_call("send.send", n, |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_send().call_send(s, msgs).map(Ok),
            _ => unreachable!("world and contract checked"),
        })?;
        if results.len() != n {
            return Err(self.count_failure("send.send", results.len(), n));
        }
        Ok(results
            .into_iter()
            .map(|r| r.map_err(|e| self.item_failure("send.send", e)))
            .collect())
    }

    /// `send.commit`.
    pub fn send_commit(&mut self) -> Result<(), PluginFailure> {
        self.adapter_call("send.commit", 1, |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_send().call_commit(s),
            Bindings::Adapter01(a) => {
                Ok(a.ferry_plugin_send().call_commit(s)?.map_err(legacy::error))
            }
            _ => unreachable!("world checked"),
        })
    }

    /// `send.rollback`.
    pub fn send_rollback(&mut self) -> Result<(), PluginFailure> {
        self.adapter_call("send.rollback", 1, |b, s| match b {
            Bindings::Adapter(a) => a.ferry_plugin_send().call_rollback(s),
            Bindings::Adapter01(a) => Ok(a
                .ferry_plugin_send()
                .call_rollback(s)?
                .map_err(legacy::error)),
            _ => unreachable!("world checked"),
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
        // componentize-js aborts on an exception its export did not catch.
        || stderr.contains("Redirecting call to abort()")
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
