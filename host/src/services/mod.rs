//! The four AIF services, each a batch task with AIF's role:
//!
//! 1. [`receive`] — gateway receive: adapters → transforms → gateway queue.
//! 2. [`inbound`] — inbound processing: queue → pipeline → service →
//!    responses and Send API documents as outbound requests.
//! 3. [`outbound`] — outbound processing: outbound requests → the outbound
//!    port's rules → queued, Ready to send.
//! 4. [`send`] — gateway send: queue → adapters.
//!
//! [`Gateway`] holds what they share; [`Sandboxes`] holds one worker's
//! plugin instances.

pub mod inbound;
pub mod outbound;
pub mod receive;
mod sandboxes;
pub mod send;

use std::collections::HashSet;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use std::time::{SystemTime, UNIX_EPOCH};

pub use sandboxes::{SandboxError, Sandboxes};

use crate::config::{Config, LoggingMode, PortConfig, TaskKind};
use crate::failpoint;
use crate::plugins::PluginSet;
use crate::queue::{
    ClaimRequest, GatewayQueue, HistoryEntry, Lease, MessageKey, NewException, QueueError,
    QueuedMessage, Status, Transaction,
};
use crate::runtime::{PluginFailure, Runtime};

/// The name of a stage's thread (short: Linux shows 15 characters).
fn stage_thread(kind: TaskKind) -> &'static str {
    match kind {
        TaskKind::GatewayReceive => "ferry-receive",
        TaskKind::InboundProcessing => "ferry-inbound",
        TaskKind::OutboundProcessing => "ferry-outbound",
        TaskKind::GatewaySend => "ferry-send",
    }
}

/// How long a stage of a pipelined occurrence waits for new work before it
/// looks again whether the stage before it has ended.
const STAGE_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// What the four services share: configuration, queue, plugins.
pub struct Gateway {
    /// The configuration and plugins in force, replaced as a whole when the
    /// configuration is reloaded or a plugin file changes.
    live: ArcSwap<Live>,
    /// The gateway queue.
    pub queue: Arc<dyn GatewayQueue>,
    /// This host's lease: what it claims, it claims under it, and it
    /// commits the results under it. Replaced when the host lost it (see
    /// [`LeaseKeeper::heartbeat`]).
    keeper: Arc<LeaseKeeper>,
    /// The component runtime.
    pub runtime: Runtime,
    /// Sources refused by an adapter that were already reported, so a file
    /// left in place is reported once, not at every occurrence.
    reported_refusals: Mutex<HashSet<(String, String, String)>>,
    /// Paused ports already reported, with the reason.
    reported_pauses: Mutex<HashSet<String>>,
    /// Envelopes gateway receive wrote into the queue (see [`Written`]).
    written: Written,
}

/// The envelopes gateway receive read and then wrote into the queue (with
/// [`Envelope::to_xml`](crate::envelope::Envelope::to_xml)), by a
/// fingerprint of the text: inbound processing finds an unchanged one here
/// and reads it with [`envelope::parse_written`](crate::envelope::parse_written)
/// — the header checked, the body not checked a second time. A text changed
/// since (by an operator, or written by another host) is not found and is
/// read in full. Kept in memory only; bounded (when full it starts again,
/// which only means reading some envelopes in full).
struct Written {
    seen: Mutex<HashSet<u64>>,
    /// Seeded per process: a changed text cannot be made to match.
    hasher: foldhash::quality::RandomState,
}

impl Written {
    /// Fingerprints kept at most.
    const MAX: usize = 1 << 16;

    fn new() -> Written {
        Written {
            seen: Mutex::new(HashSet::new()),
            hasher: foldhash::quality::RandomState::default(),
        }
    }

    fn note(&self, text: &str) {
        let h = self.hasher.hash_one(text);
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= Self::MAX {
            seen.clear();
        }
        seen.insert(h);
    }

    /// Whether `text` was noted (once: it is forgotten now).
    fn take(&self, text: &str) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        // Nothing noted (a port with rules, another host's receive): no hash.
        !seen.is_empty() && seen.remove(&self.hasher.hash_one(text))
    }
}

/// This host's lease, renewed by a heartbeat and replaced when lost.
pub struct LeaseKeeper {
    queue: Arc<dyn GatewayQueue>,
    lease: ArcSwap<Lease>,
    /// A task ended on a queue error: messages it had claimed may still
    /// be held under the lease (a commit that failed, e.g. while the
    /// database restarted). The next task returns them to Ready first.
    unsure: std::sync::atomic::AtomicBool,
}

impl LeaseKeeper {
    /// Keeps `lease` on `queue`.
    pub fn new(queue: Arc<dyn GatewayQueue>, lease: Lease) -> Arc<LeaseKeeper> {
        Arc::new(LeaseKeeper {
            queue,
            lease: ArcSwap::from_pointee(lease),
            unsure: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// A task ended on a queue error: what it claimed may be held still.
    pub fn after_failure(&self) {
        self.unsure.store(true, std::sync::atomic::Ordering::SeqCst);
    }

    /// Before a task: after a failed one, this host's messages still in
    /// flight go back to Ready under a new lease (nothing of this host runs
    /// between two tasks, so none of them is being worked on).
    pub fn make_sure(&self) -> Result<(), QueueError> {
        if !self.unsure.load(std::sync::atomic::Ordering::SeqCst) {
            return Ok(());
        }
        let lease = self.lease();
        let (fresh, report) = self.queue.recover(lease.owner())?;
        if report.total() > 0 {
            tracing::warn!(
                in_process = report.in_process,
                in_transport_process = report.in_transport_process,
                "messages taken by a task that failed are Ready again"
            );
        }
        self.lease.store(Arc::new(fresh));
        self.unsure
            .store(false, std::sync::atomic::Ordering::SeqCst);
        Ok(())
    }

    /// The lease now.
    pub fn lease(&self) -> Arc<Lease> {
        self.lease.load_full()
    }

    /// Renews this host's lease (and, on a shared queue, returns the work
    /// of hosts whose lease expired to Ready). When the lease was lost —
    /// the host was stopped or cut off from the database for longer than
    /// the lease, and another host took its work — the host starts again
    /// under a new lease: what it was doing under the old one cannot be
    /// committed and is done again. Returns whether the lease was renewed
    /// (false: a new one replaced it).
    pub fn heartbeat(&self) -> Result<bool, QueueError> {
        let lease = self.lease();
        match self.queue.renew(&lease) {
            Ok(()) => Ok(true),
            Err(QueueError::StaleLease { .. }) => {
                let (fresh, report) = self.queue.recover(lease.owner())?;
                tracing::warn!(
                    host = %lease.owner(),
                    old = lease.epoch(),
                    new = fresh.epoch(),
                    returned = report.total(),
                    "this host lost its lease (it was stopped or could not reach the queue for \
                     longer than the lease, and other hosts took its work); it goes on under \
                     a new lease, and results of the old one are not committed"
                );
                self.lease.store(Arc::new(fresh));
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// A configuration and the plugins loaded for it.
#[derive(Debug)]
pub struct Live {
    /// The configuration.
    pub config: Arc<Config>,
    /// Its plugins.
    pub plugins: Arc<PluginSet>,
}

/// What one run of a task did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TaskCounts {
    /// Messages handled successfully.
    pub done: u64,
    /// Messages that failed (now in Error or Malformed XML).
    pub failed: u64,
}

impl TaskCounts {
    fn add(&mut self, other: TaskCounts) {
        self.done += other.done;
        self.failed += other.failed;
    }
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// The stage names used in the exception log and the history.
pub mod stage {
    /// Gateway receive: the adapter.
    pub const RECEIVE: &str = "receive";
    /// Gateway receive: the port's inbound transforms.
    pub const TRANSFORM: &str = "transform";
    /// Gateway receive: reading the envelope.
    pub const PARSE: &str = "parse";
    /// Inbound processing: duplicate detection.
    pub const DUPLICATE: &str = "duplicate";
    /// Inbound or outbound processing: the port's pipeline.
    pub const PIPELINE: &str = "pipeline";
    /// Inbound processing: the service.
    pub const SERVICE: &str = "service";
    /// Outbound processing: the outbound transforms.
    pub const OUTBOUND_TRANSFORM: &str = "outbound-transform";
    /// Gateway send: the adapter.
    pub const SEND: &str = "send";
    /// Inbound processing: a batch stopped by the port's upon-error setting.
    pub const BATCH: &str = "batch";
    /// Inbound processing: a response or fault of a port without a response
    /// address (`responses = "discard"`), kept in the request's history.
    pub const RESPONSE_DISCARDED: &str = "response-discarded";
}

impl Gateway {
    /// Put the pieces together.
    pub fn new(
        config: Arc<Config>,
        queue: Arc<dyn GatewayQueue>,
        runtime: Runtime,
        plugins: Arc<PluginSet>,
        lease: Lease,
    ) -> Gateway {
        let keeper = LeaseKeeper::new(queue.clone(), lease);
        Gateway::with_keeper(config, queue, runtime, plugins, keeper)
    }

    /// [`Gateway::new`] with a lease already kept by a heartbeat (started
    /// before the plugins load, which may take longer than a lease).
    pub fn with_keeper(
        config: Arc<Config>,
        queue: Arc<dyn GatewayQueue>,
        runtime: Runtime,
        plugins: Arc<PluginSet>,
        keeper: Arc<LeaseKeeper>,
    ) -> Gateway {
        Gateway {
            live: ArcSwap::from_pointee(Live { config, plugins }),
            queue,
            keeper,
            runtime,
            reported_refusals: Mutex::new(HashSet::new()),
            reported_pauses: Mutex::new(HashSet::new()),
            written: Written::new(),
        }
    }

    /// Gateway receive wrote `text` (an envelope it read) into the queue.
    pub(crate) fn note_written(&self, text: &str) {
        self.written.note(text);
    }

    /// Reads queued `text` as one envelope: without checking its body
    /// again when gateway receive wrote it and it is unchanged.
    pub(crate) fn read_queued(
        &self,
        text: &str,
    ) -> Result<crate::envelope::Parsed, crate::envelope::EnvelopeError> {
        if self.written.take(text) {
            crate::envelope::parse_written(text)
        } else {
            crate::envelope::parse(text)
        }
    }

    /// This host's lease now.
    pub fn lease(&self) -> Arc<Lease> {
        self.keeper.lease()
    }

    /// Claims messages under this host's lease.
    pub fn claim(&self, request: &ClaimRequest<'_>) -> Result<Vec<QueuedMessage>, QueueError> {
        self.queue.claim(&self.lease(), request)
    }

    /// Commits `tx` — the results of messages this host claimed, or what
    /// it received — under this host's lease.
    pub fn settle(&self, mut tx: Transaction) -> Result<Vec<MessageKey>, QueueError> {
        tx.set_lease((*self.lease()).clone());
        self.queue.commit(tx)
    }

    /// Returns claimed messages to Ready without a result.
    pub fn give_back(&self, keys: &[MessageKey]) -> Result<(), QueueError> {
        self.queue.give_back(&self.lease(), keys)
    }

    /// Whether this host leads `task` of `port` now (one host at a time
    /// receives from a port's folder when several share the queue).
    pub fn lead(&self, task: &str, port: &str) -> Result<bool, QueueError> {
        self.queue.lead(&self.lease(), task, port)
    }

    /// The configuration in force.
    pub fn config(&self) -> Arc<Config> {
        self.live.load().config.clone()
    }

    /// The plugins in force.
    pub fn plugins(&self) -> Arc<PluginSet> {
        self.live.load().plugins.clone()
    }

    /// The configuration and plugins in force.
    pub fn live(&self) -> Arc<Live> {
        self.live.load_full()
    }

    /// Put a new configuration and plugin set in force. Tasks already
    /// running finish with the configuration they started with; plugin
    /// calls starting afterwards use the new plugins (see [`Sandboxes`]).
    pub fn replace(&self, live: Arc<Live>) {
        self.live.store(live);
    }

    /// Run one of the four services over `ports` (all ports when empty),
    /// using `sandboxes` for plugin calls.
    pub fn run_task(
        &self,
        kind: TaskKind,
        ports: &[String],
        sandboxes: &mut Sandboxes,
        stop: &dyn Fn() -> bool,
    ) -> Result<TaskCounts, QueueError> {
        self.keeper.make_sure()?;
        let result = self.run_ports(kind, ports, sandboxes, stop);
        if result.is_err() {
            self.keeper.after_failure();
        }
        result
    }

    /// Run several of the four services at once, as the stages of one
    /// flow (`stages` in AIF's order: receive, inbound processing, outbound
    /// processing, send): each stage starts at once and, while the stage
    /// before it runs, takes up what that stage commits, in passes that
    /// each cover the queue up to its start; once the stage before has
    /// ended, a last pass takes the rest and the stage ends. So every core
    /// works while messages flow, and each stage still sees the messages in
    /// the queue's order. One result per stage, in order; each stage uses
    /// one of `sandboxes` (lent by the caller's, see [`Sandboxes::lend`]).
    pub fn run_stages(
        &self,
        stages: &[(TaskKind, &[String])],
        sandboxes: &mut Sandboxes,
        stop: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Result<TaskCounts, QueueError>> {
        if let Err(e) = self.keeper.make_sure() {
            let text = e.to_string();
            return stages
                .iter()
                .map(|_| Err(QueueError::Storage(text.clone().into())))
                .collect();
        }
        let ended: Vec<AtomicBool> = stages.iter().map(|_| AtomicBool::new(false)).collect();
        let lent = sandboxes.lend(self, stages.len());
        let (results, back): (Vec<_>, Vec<_>) = std::thread::scope(|scope| {
            let handles: Vec<_> = stages
                .iter()
                .zip(lent)
                .enumerate()
                .map(|(i, (&(kind, ports), mut mine))| {
                    let ended = &ended;
                    std::thread::Builder::new()
                        .name(stage_thread(kind).to_string())
                        .spawn_scoped(scope, move || {
                            let before = |j: usize| ended[j].load(Ordering::SeqCst);
                            let upstream = || i > 0 && !before(i - 1);
                            let result = self.follow(kind, ports, &mut mine, stop, &upstream);
                            ended[i].store(true, Ordering::SeqCst);
                            tracing::debug!(
                                stage = kind.name(),
                                ok = result.is_ok(),
                                "stage ended"
                            );
                            (result, mine)
                        })
                        .expect("cannot start a stage thread")
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("a stage panicked"))
                .unzip()
        });
        sandboxes.give_back(back);
        if results.iter().any(Result::is_err) {
            self.keeper.after_failure();
        }
        results
    }

    /// One stage of [`Gateway::run_stages`]: passes over `ports` while
    /// `upstream` (the stage before) runs, waiting for new work between
    /// them, and a last pass after it ended.
    fn follow(
        &self,
        kind: TaskKind,
        ports: &[String],
        sandboxes: &mut Sandboxes,
        stop: &dyn Fn() -> bool,
        upstream: &dyn Fn() -> bool,
    ) -> Result<TaskCounts, QueueError> {
        let signal = self.queue.work_signal();
        let mut total = TaskCounts::default();
        loop {
            let last = !upstream();
            let seen = signal.seq();
            total.add(self.run_ports(kind, ports, sandboxes, stop)?);
            if last || stop() {
                return Ok(total);
            }
            // New work wakes the stage at once; the stage before ending is
            // seen within the wait.
            while signal.seq() == seen && upstream() && !stop() {
                signal.wait(seen, STAGE_WAIT);
            }
        }
    }

    fn run_ports(
        &self,
        kind: TaskKind,
        ports: &[String],
        sandboxes: &mut Sandboxes,
        stop: &dyn Fn() -> bool,
    ) -> Result<TaskCounts, QueueError> {
        let mut total = TaskCounts::default();
        let live = sandboxes.begin_task(self);
        let selected: Vec<&PortConfig> = live
            .config
            .ports
            .values()
            .filter(|p| ports.is_empty() || ports.contains(&p.name))
            .collect();
        for port in selected {
            if stop() {
                break;
            }
            if let Some(reason) = live.plugins.paused(&live.config, port, Some(kind)) {
                self.report_pause(&reason);
                continue;
            }
            let counts = match kind {
                TaskKind::GatewayReceive => receive::run(self, port, sandboxes, stop)?,
                TaskKind::InboundProcessing => inbound::run(self, port, sandboxes, stop)?,
                TaskKind::OutboundProcessing => outbound::run(self, port, sandboxes, stop)?,
                TaskKind::GatewaySend => send::run(self, port, sandboxes, stop)?,
            };
            total.add(counts);
        }
        Ok(total)
    }

    /// An exception entry for a plugin failure.
    pub fn plugin_exception(
        port: &str,
        stage: &str,
        key: Option<MessageKey>,
        message_id: Option<&str>,
        failure: &PluginFailure,
    ) -> NewException {
        NewException {
            time_ms: now_ms(),
            port: port.to_string(),
            stage: stage.to_string(),
            plugin: Some(failure.plugin.clone()),
            plugin_hash: Some(failure.hash.clone()),
            message_key: key,
            message_id: message_id.map(str::to_string),
            text: failure.to_string(),
        }
    }

    /// An exception entry for a failure to get a sandbox or a plugin's
    /// failure inside one.
    pub fn sandbox_exception(
        port: &str,
        stage: &str,
        key: Option<MessageKey>,
        message_id: Option<&str>,
        err: &SandboxError,
    ) -> NewException {
        match err {
            SandboxError::Plugin(f) => Gateway::plugin_exception(port, stage, key, message_id, f),
            other => Gateway::host_exception(port, stage, key, message_id, other.to_string()),
        }
    }

    /// Record in `tx` that `msg` failed at `stage`: status Error with the
    /// reason, and the exception entry.
    pub fn fail_message(
        tx: &mut Transaction,
        port: &str,
        stage: &str,
        msg: &QueuedMessage,
        err: &SandboxError,
    ) {
        let reason = format!("{stage}: {err}");
        tracing::warn!(port, message_id = %msg.message_id, "{reason}");
        tx.set_status(msg.key, Status::Error, Some(reason));
        tx.exception(Gateway::sandbox_exception(
            port,
            stage,
            Some(msg.key),
            Some(&msg.message_id),
            err,
        ));
    }

    /// An exception entry that no plugin caused.
    pub fn host_exception(
        port: &str,
        stage: &str,
        key: Option<MessageKey>,
        message_id: Option<&str>,
        text: String,
    ) -> NewException {
        NewException {
            time_ms: now_ms(),
            port: port.to_string(),
            stage: stage.to_string(),
            plugin: None,
            plugin_hash: None,
            message_key: key,
            message_id: message_id.map(str::to_string),
            text,
        }
    }

    /// A history entry for one document version, as the port's logging mode
    /// asks: `None` when this version is not to be kept.
    pub fn history(
        port: &PortConfig,
        stage: &str,
        message_id: &str,
        key: Option<MessageKey>,
        plugins: &[(String, String)],
        content: &str,
    ) -> Option<HistoryEntry> {
        let content = match port.logging {
            LoggingMode::Off => return None,
            LoggingMode::Original if stage != stage::RECEIVE => return None,
            LoggingMode::Original | LoggingMode::All => content.to_string(),
            LoggingMode::Header => header_only(content),
        };
        Some(HistoryEntry {
            time_ms: now_ms(),
            message_id: message_id.to_string(),
            message_key: key,
            port: port.name.clone(),
            stage: stage.to_string(),
            plugins: plugins.to_vec(),
            content,
        })
    }

    /// The history entry that records a response (or fault) `response` to
    /// `msg` that its port discards: the whole response, or only its header
    /// when the port logs headers or nothing — but always an entry, so no
    /// response vanishes without a trace.
    pub fn discarded_response(
        port: &PortConfig,
        msg: &QueuedMessage,
        plugins: &[(String, String)],
        response: &crate::envelope::Envelope,
    ) -> HistoryEntry {
        let content = match port.logging {
            LoggingMode::Original | LoggingMode::All => response.to_xml(),
            LoggingMode::Header | LoggingMode::Off => {
                let mut header = response.clone();
                header.body = String::new();
                header.to_xml()
            }
        };
        tracing::debug!(port = %port.name, message_id = %msg.message_id, "response discarded (the port has no response_address)");
        HistoryEntry {
            time_ms: now_ms(),
            message_id: msg.message_id.clone(),
            message_key: Some(msg.key),
            port: port.name.clone(),
            stage: stage::RESPONSE_DISCARDED.to_string(),
            plugins: plugins.to_vec(),
            content,
        }
    }

    /// Between messages or groups: take the plugins in force now, and
    /// whether `port` may go on (false: it is paused; that is logged).
    pub(crate) fn ready_to_run(
        &self,
        sandboxes: &mut Sandboxes,
        port: &PortConfig,
        kind: TaskKind,
    ) -> bool {
        sandboxes.refresh(self);
        match sandboxes.paused(self, port, kind) {
            Some(reason) => {
                self.report_pause(&reason);
                false
            }
            None => true,
        }
    }

    /// Log that a port is paused, once per reason.
    fn report_pause(&self, reason: &str) {
        let first = self
            .reported_pauses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(reason.to_string());
        if first {
            tracing::warn!("{reason}");
        }
    }

    /// Forget the reports of (port, name): the next problem is news.
    fn forget_reports(&self, port: &str, name: &str) {
        self.reported_refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(p, n, _)| !(p == port && n == name));
    }

    /// Report a refused source once per (port, name, reason).
    fn first_report(&self, port: &str, name: &str, reason: &str) -> bool {
        self.reported_refusals
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert((port.to_string(), name.to_string(), reason.to_string()))
    }
}

/// Claim the Ready messages of `port` in `direction` queued up to now, in
/// groups of `group_commit`, let `process` record each one's outcome in the
/// group's transaction (returning whether it succeeded), and commit each
/// group in one transaction. Each group runs on the plugins in force when it
/// starts; a port paused meanwhile stops taking messages.
pub(crate) fn in_groups(
    gw: &Gateway,
    direction: crate::queue::Direction,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    stop: &dyn Fn() -> bool,
    mut process: impl FnMut(
        &mut Sandboxes,
        &QueuedMessage,
        &mut Transaction,
    ) -> Result<bool, QueueError>,
) -> Result<TaskCounts, QueueError> {
    let mut counts = TaskCounts::default();
    let snapshot = gw.queue.last_key()?;
    while !stop() {
        if !gw.ready_to_run(sandboxes, port, TaskKind::OutboundProcessing) {
            break;
        }
        let group = gw.claim(
            &ClaimRequest::new(direction, &port.name, gw.config().group_commit)
                .up_to(Some(snapshot)),
        )?;
        if group.is_empty() {
            break;
        }
        let mut tx = Transaction::new();
        for msg in &group {
            if process(sandboxes, msg, &mut tx)? {
                counts.done += 1;
            } else {
                counts.failed += 1;
            }
        }
        let keys: Vec<_> = group.iter().map(|m| m.key).collect();
        failpoint::point("outbound.before-commit");
        inbound::commit_group(gw, &keys, tx)?;
        failpoint::point("outbound.after-commit");
    }
    Ok(counts)
}

/// The envelope without its body (for the `header` logging mode).
fn header_only(content: &str) -> String {
    match crate::envelope::parse(content) {
        Ok(crate::envelope::Parsed::Single(mut e)) => {
            e.body = String::new();
            e.to_xml()
        }
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::Written;

    #[test]
    fn a_written_text_is_found_once_and_a_changed_one_never() {
        let w = Written::new();
        w.note("<a>1</a>");
        assert!(!w.take("<a>2</a>"), "changed");
        assert!(w.take("<a>1</a>"));
        assert!(!w.take("<a>1</a>"), "found once");
        // Bounded: when full it starts again.
        for i in 0..=Written::MAX {
            w.note(&i.to_string());
        }
        assert!(w.seen.lock().unwrap().len() <= Written::MAX);
        assert!(w.take(&Written::MAX.to_string()));
    }
}
