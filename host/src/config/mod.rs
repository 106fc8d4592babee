//! The configuration file (TOML): data and plugin directories, adapters,
//! rules, services, integration ports and batch jobs.
//!
//! Errors name the file, the line and the key. Paths in the file are relative
//! to the file's own folder. Unknown keys are errors (a typo must not be
//! silently ignored). [`Config::load`] collects every problem it can find
//! before failing, so `ferry check` shows them all at once.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::runtime::{Limits, Quotas};
pub mod recurrence;

pub use recurrence::{End, Recurrence, Start};

mod console;
mod queue;
pub use console::{ConsoleConfig, DEFAULT_LISTEN, NamedToken, Role};
pub use queue::{QueueBackend, QueueConfig};
mod retention;
pub use retention::RetentionConfig;

/// A configuration file that could not be used: every problem found, each
/// with file, line and key.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    /// The problems, in file order.
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, p) in self.problems.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            f.write_str(p)?;
        }
        Ok(())
    }
}

/// A loaded and checked configuration, with paths made absolute.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// Where the gateway queue and the compile cache live.
    pub data_dir: PathBuf,
    /// Where plugins (`NAME.wasm`) are found.
    pub plugin_dir: PathBuf,
    /// Worker threads for plugin calls.
    pub workers: usize,
    /// Messages committed to the queue per transaction.
    pub group_commit: usize,
    /// Adapters by name.
    pub adapters: BTreeMap<String, AdapterConfig>,
    /// Rules by name.
    pub rules: BTreeMap<String, ComponentConfig>,
    /// Services by name.
    pub services: BTreeMap<String, ComponentConfig>,
    /// Integration ports by name.
    pub ports: BTreeMap<String, PortConfig>,
    /// Batch jobs by name.
    pub jobs: BTreeMap<String, JobConfig>,
    /// `[console]`: the control API and web console.
    pub console: ConsoleConfig,
    /// `[queue]`: where the gateway queue is kept.
    pub queue: QueueConfig,
    /// `[retention]`: how long the queue keeps its logs.
    pub retention: RetentionConfig,
}

/// A plugin with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentConfig {
    /// Plugin name: `plugin_dir/NAME.wasm`.
    pub component: String,
    /// Options, flattened to key/value pairs (`table.key` for nested tables).
    pub options: Vec<(String, String)>,
    /// `FILE:LINE: KEY` of the options, for problems found once the plugin
    /// is loaded (options it does not declare).
    pub options_at: String,
}

/// An adapter: its plugin, options and any folders granted beyond its
/// ports' addresses.
#[derive(Debug, Clone, PartialEq)]
pub struct AdapterConfig {
    /// Plugin and options.
    pub plugin: ComponentConfig,
    /// Extra folders (e.g. an archive folder for `on_commit = "move"`).
    pub grants: Vec<crate::runtime::Grant>,
}

/// Which way a port moves documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PortDirection {
    /// From an adapter to a service.
    Inbound,
    /// From a service (Send API) to an adapter.
    Outbound,
}

/// What to do with the other members of a batch when one fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UponError {
    /// Failed members go to Error; the rest proceed.
    #[default]
    Continue,
    /// Stop at the first failure; members already processed stay done; the
    /// rest stay Ready.
    Halt,
    /// Stop and undo the members already processed; all stay queued.
    Rollback,
}

/// How much of each document the history keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LoggingMode {
    /// The document as received (AIF "Original document").
    #[default]
    Original,
    /// Every version, after every stage.
    All,
    /// The header of every version only.
    Header,
    /// No history.
    Off,
}

/// A service binding: messages whose `Action` matches `action` go to
/// `service`.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRoute {
    /// An Action pattern; `*` matches any run of characters.
    pub action: String,
    /// The service name.
    pub service: String,
}

/// An integration port.
#[derive(Debug, Clone, PartialEq)]
pub struct PortConfig {
    /// The port's name.
    pub name: String,
    /// Inbound or outbound.
    pub direction: PortDirection,
    /// The adapter's name.
    pub adapter: String,
    /// The folder (for the file adapter) messages come from / go to.
    pub address: PathBuf,
    /// Inbound only: where responses go, through the same adapter.
    pub response_address: Option<PathBuf>,
    /// Inbound only: `responses = "discard"` — a port without a response
    /// address drops its responses and faults, each recorded in the
    /// message's history.
    pub discard_responses: bool,
    /// Rules run before the queue (inbound) / after processing (outbound).
    pub transforms: Vec<String>,
    /// Rules run after the queue.
    pub pipeline: Vec<String>,
    /// Action → service routes, first match wins.
    pub services: Vec<ServiceRoute>,
    /// Process requests in parallel.
    pub parallel: bool,
    /// At most this many messages in process at once (parallel ports).
    pub max_parallel: usize,
    /// Batched requests: what a failing member does to the others.
    pub upon_error: UponError,
    /// What the document history keeps.
    pub logging: LoggingMode,
    /// Whether faults are sent to the response address.
    pub send_faults: bool,
    /// Messages per receive call.
    pub receive_batch: u32,
    /// Limits of this port's plugins.
    pub limits: Limits,
}

impl PortConfig {
    /// The service for `action`, by the first matching route.
    pub fn route(&self, action: &str) -> Option<&str> {
        self.services
            .iter()
            .find(|r| glob_match(&r.action, action))
            .map(|r| r.service.as_str())
    }

    /// The folder gateway send writes this port's outbound messages to: the
    /// address of an outbound port, the response address of an inbound one.
    pub fn send_address(&self) -> Option<&Path> {
        match self.direction {
            PortDirection::Outbound => Some(&self.address),
            PortDirection::Inbound => self.response_address.as_deref(),
        }
    }
}

/// One of the four AIF services a batch task runs.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize, serde::Serialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum TaskKind {
    /// AIFGatewayReceiveService.
    GatewayReceive,
    /// AIFInboundProcessingService.
    InboundProcessing,
    /// AIFOutboundProcessingService.
    OutboundProcessing,
    /// AIFGatewaySendService.
    GatewaySend,
}

impl TaskKind {
    /// The four in AIF's order.
    pub const ALL: [TaskKind; 4] = [
        TaskKind::GatewayReceive,
        TaskKind::InboundProcessing,
        TaskKind::OutboundProcessing,
        TaskKind::GatewaySend,
    ];

    /// The kebab-case name used in configuration and output.
    pub fn name(self) -> &'static str {
        match self {
            TaskKind::GatewayReceive => "gateway-receive",
            TaskKind::InboundProcessing => "inbound-processing",
            TaskKind::OutboundProcessing => "outbound-processing",
            TaskKind::GatewaySend => "gateway-send",
        }
    }
}

/// The status of another task that a task's condition asks for (AX's
/// "Expected status" of a batch task dependency).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AfterStatus {
    /// The other task ended without error (or with an error it ignores).
    Ended,
    /// The other task ended in error.
    Error,
    /// The other task finished, either way (AIF's default between its
    /// services).
    #[default]
    #[serde(alias = "ended_or_error")]
    EndedOrError,
}

impl AfterStatus {
    /// The kebab-case name used in configuration and output.
    pub fn name(self) -> &'static str {
        match self {
            AfterStatus::Ended => "ended",
            AfterStatus::Error => "error",
            AfterStatus::EndedOrError => "ended-or-error",
        }
    }
}

/// One condition of a task: another task of the same job and the status it
/// must end with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct After {
    /// The other task's name.
    pub task: String,
    /// The status it must end with.
    pub status: AfterStatus,
}

/// How a task's conditions combine (AX's "Condition type").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Combine {
    /// Every condition must be met.
    #[default]
    All,
    /// One met condition is enough.
    Any,
}

/// A task of a batch job.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    /// Its name, unique in the job (default: the service's name).
    pub name: String,
    /// The service it runs.
    pub kind: TaskKind,
    /// Only these ports (all when empty).
    pub ports: Vec<String>,
    /// Its conditions: it runs once they are met (empty: at once).
    pub after: Vec<After>,
    /// How the conditions combine.
    pub condition: Combine,
    /// An Error of this task counts as Ended for the tasks that depend on
    /// it, and does not make the occurrence end in Error.
    pub ignore_failure: bool,
    /// How many times the task is run again after an Error.
    pub max_retries: u32,
}

impl TaskConfig {
    /// A task running `kind` on every port, with no condition.
    pub fn new(kind: TaskKind) -> TaskConfig {
        TaskConfig {
            name: kind.name().to_string(),
            kind,
            ports: vec![],
            after: vec![],
            condition: Combine::All,
            ignore_failure: false,
            max_retries: 0,
        }
    }
}

/// A batch job: tasks run at each occurrence of its recurrence, in the order
/// their conditions allow.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The job's name.
    pub name: String,
    /// When it runs.
    pub recurrence: Recurrence,
    /// Its tasks, in the order given (ties between tasks that may run are
    /// broken by this order).
    pub tasks: Vec<TaskConfig>,
    /// How many occurrences its history keeps.
    pub keep_history: usize,
    /// The event-driven mode (`on_input = true`): new input on the inbound
    /// ports of its receive tasks starts an occurrence at once, but no
    /// sooner than this many milliseconds (`min_interval`) after the
    /// previous occurrence ended. None: only its recurrence (and operators)
    /// start it.
    pub on_input: Option<u64>,
}

impl JobConfig {
    /// A job of `tasks` running every `every`, from now on, for ever.
    pub fn new(name: &str, every: Duration, tasks: Vec<TaskConfig>) -> JobConfig {
        JobConfig {
            name: name.to_string(),
            recurrence: Recurrence::every(every),
            tasks,
            keep_history: DEFAULT_KEEP_HISTORY,
            on_input: None,
        }
    }

    /// The inbound ports its gateway-receive tasks read (the ports of
    /// `ports` they name, or all of them), in name order.
    pub fn receive_ports<'c>(
        &self,
        ports: &'c BTreeMap<String, PortConfig>,
    ) -> Vec<&'c PortConfig> {
        ports
            .values()
            .filter(|p| p.direction == PortDirection::Inbound)
            .filter(|p| {
                self.tasks.iter().any(|t| {
                    t.kind == TaskKind::GatewayReceive
                        && (t.ports.is_empty() || t.ports.contains(&p.name))
                })
            })
            .collect()
    }

    /// The task named `name`.
    pub fn task(&self, name: &str) -> Option<&TaskConfig> {
        self.tasks.iter().find(|t| t.name == name)
    }
}

// ---- the file as written -------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: Option<Spanned<String>>,
    plugin_dir: Option<Spanned<String>>,
    workers: Option<usize>,
    group_commit: Option<usize>,
    #[serde(default)]
    adapters: BTreeMap<String, RawAdapter>,
    #[serde(default)]
    rules: BTreeMap<String, RawComponent>,
    #[serde(default)]
    services: BTreeMap<String, RawComponent>,
    #[serde(default)]
    ports: BTreeMap<String, Spanned<RawPort>>,
    #[serde(default)]
    jobs: BTreeMap<String, Spanned<RawJob>>,
    console: Option<Spanned<console::RawConsole>>,
    queue: Option<Spanned<queue::RawQueue>>,
    retention: Option<Spanned<retention::RawRetention>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    component: String,
    options: Option<Spanned<toml::Table>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapter {
    component: String,
    options: Option<Spanned<toml::Table>>,
    #[serde(default)]
    grants: Vec<RawGrant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    path: Spanned<String>,
    guest: String,
    #[serde(default)]
    writable: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRoute {
    action: String,
    service: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPort {
    direction: PortDirection,
    adapter: Spanned<String>,
    address: Spanned<String>,
    response_address: Option<Spanned<String>>,
    responses: Option<Spanned<Responses>>,
    #[serde(default)]
    transforms: Vec<Spanned<String>>,
    #[serde(default)]
    pipeline: Vec<Spanned<String>>,
    #[serde(default)]
    services: Vec<RawRoute>,
    #[serde(default)]
    parallel: bool,
    max_parallel: Option<Spanned<usize>>,
    #[serde(default)]
    upon_error: UponError,
    #[serde(default)]
    logging: LoggingMode,
    send_faults: Option<bool>,
    receive_batch: Option<Spanned<u32>>,
    memory_limit_mb: Option<u64>,
    time_limit_ms: Option<u64>,
    // Quotas: what one plugin call may hand the host.
    max_sent_documents: Option<u32>,
    max_sent_mb: Option<u64>,
    max_responses: Option<u32>,
    max_response_mb: Option<u64>,
    max_log_records: Option<u32>,
    max_log_record_kb: Option<usize>,
    log_rate: Option<u32>,
    max_output_kb: Option<usize>,
    max_receive_messages: Option<u32>,
    max_receive_mb: Option<u64>,
}

impl RawPort {
    /// The port's [`Quotas`]: its keys, else the defaults.
    fn quotas(&self) -> Quotas {
        let d = Quotas::default();
        Quotas {
            sent_documents: self.max_sent_documents.unwrap_or(d.sent_documents),
            sent_bytes: self.max_sent_mb.map_or(d.sent_bytes, |m| m << 20),
            responses: self.max_responses.unwrap_or(d.responses),
            response_bytes: self.max_response_mb.map_or(d.response_bytes, |m| m << 20),
            log_records: self.max_log_records.unwrap_or(d.log_records),
            log_record_bytes: self
                .max_log_record_kb
                .map_or(d.log_record_bytes, |k| k << 10),
            log_rate: self.log_rate.unwrap_or(d.log_rate),
            output_bytes: self.max_output_kb.map_or(d.output_bytes, |k| k << 10),
            receive_messages: self.max_receive_messages.unwrap_or(d.receive_messages),
            receive_bytes: self.max_receive_mb.map_or(d.receive_bytes, |m| m << 20),
        }
    }
}

/// What an inbound port does with its services' responses.
#[derive(Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum Responses {
    /// To the response address (which the port must have).
    Send,
    /// Nowhere: each is recorded in the message's history instead.
    Discard,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    every: Option<Spanned<String>>,
    start: Option<Spanned<toml::Value>>,
    end_after: Option<Spanned<i64>>,
    end_by: Option<Spanned<toml::Value>>,
    keep_history: Option<Spanned<i64>>,
    on_input: Option<Spanned<bool>>,
    min_interval: Option<Spanned<String>>,
    tasks: Option<Vec<Spanned<RawTask>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    service: TaskKind,
    name: Option<Spanned<String>>,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
    after: Option<Vec<Spanned<RawAfter>>>,
    #[serde(default)]
    condition: Combine,
    #[serde(default)]
    ignore_failure: bool,
    max_retries: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAfter {
    task: String,
    #[serde(default)]
    status: AfterStatus,
}

/// The default batch job: the four services in AIF's order, every second.
pub const DEFAULT_JOB: &str = "aif";

/// How many occurrences a job's history keeps unless `keep_history` says.
pub const DEFAULT_KEEP_HISTORY: usize = 1000;

/// The least time between the end of an occurrence and an occurrence
/// started by new input, unless `min_interval` says.
pub const DEFAULT_MIN_INTERVAL: Duration = Duration::from_secs(1);

/// Parse `5s`, `250ms`, `10m`, `1h`, `1d`.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{text:?} is not a duration like 500ms, 10s, 5m, 1h or 1d"))?;
    let secs = match unit.trim() {
        "ms" => n / 1000.0,
        "s" | "" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        u => {
            return Err(format!(
                "unknown unit {u:?} in {text:?} (use ms, s, m, h or d)"
            ));
        }
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("{text:?} is not a valid duration"));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub use crate::glob::glob_match;

/// Flatten a TOML table to `key = value` pairs: strings as they are, other
/// scalars as TOML text, nested tables as `outer.inner`, arrays as TOML.
pub fn flatten(table: &toml::Table) -> Vec<(String, String)> {
    fn walk(prefix: &str, table: &toml::Table, out: &mut Vec<(String, String)>) {
        for (k, v) in table {
            let key = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            match v {
                toml::Value::Table(t) => walk(&key, t, out),
                toml::Value::String(s) => out.push((key, s.clone())),
                other => out.push((key, other.to_string())),
            }
        }
    }
    let mut out = Vec::new();
    walk("", table, &mut out);
    out
}

impl Config {
    /// Read and check the configuration file at `path`.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            problems: vec![format!("{}: cannot read: {e}", path.display())],
        })?;
        Config::parse(path, &text)
    }

    /// Check the configuration `text`, as if read from `path`.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let file = path.display().to_string();
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let raw: RawConfig = crate::schema::deserialize(text).map_err(|list| ConfigError {
            problems: list
                .into_iter()
                .map(|p| {
                    let at = p.span.map(|s| format!(":{}", line_of(s.start)));
                    let key = Some(p.key)
                        .filter(|k| !k.is_empty())
                        .map(|k| format!(" {k}:"));
                    let (at, key) = (at.unwrap_or_default(), key.unwrap_or_default());
                    format!("{file}{at}:{key} {}", p.message)
                })
                .collect(),
        })?;
        let base = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        let abs = |p: &str| {
            let p = Path::new(p);
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let mut problems = Vec::new();
        let mut problem = |span: std::ops::Range<usize>, key: &str, msg: String| {
            problems.push(format!("{file}:{}: {key}: {msg}", line_of(span.start)));
        };

        let component = |section: &str, name: &str, component, options: Option<Spanned<_>>| {
            let line = options.as_ref().map_or(0, |o| line_of(o.span().start));
            ComponentConfig {
                component,
                options: options.map(|o| flatten(o.get_ref())).unwrap_or_default(),
                options_at: format!("{file}:{line}: {section}.{name}.options"),
            }
        };
        let adapters: BTreeMap<String, AdapterConfig> = raw
            .adapters
            .into_iter()
            .map(|(name, a)| {
                for g in &a.grants {
                    let key = format!("adapters.{name}.grants");
                    let (folder, span) = (abs(g.path.get_ref()), g.path.span());
                    if !folder.is_dir() {
                        let msg = format!(
                            "folder {} does not exist; create it (Ferry creates only the ports' \
                             folders)",
                            folder.display()
                        );
                        problem(span, &key, msg);
                    }
                }
                let grants = a
                    .grants
                    .iter()
                    .map(|g| crate::runtime::Grant {
                        host: abs(g.path.get_ref()),
                        guest: g.guest.clone(),
                        writable: g.writable,
                    })
                    .collect();
                let cfg = AdapterConfig {
                    plugin: component("adapters", &name, a.component, a.options),
                    grants,
                };
                (name, cfg)
            })
            .collect();
        let rules: BTreeMap<_, _> = raw
            .rules
            .into_iter()
            .map(|(n, c)| (n.clone(), component("rules", &n, c.component, c.options)))
            .collect();
        let services: BTreeMap<_, _> = raw
            .services
            .into_iter()
            .map(|(n, c)| (n.clone(), component("services", &n, c.component, c.options)))
            .collect();

        let mut ports = BTreeMap::new();
        for (name, spanned) in raw.ports {
            let p = spanned.into_inner();
            let key = |k: &str| format!("ports.{name}.{k}");
            if !adapters.contains_key(p.adapter.get_ref()) {
                problem(
                    p.adapter.span(),
                    &key("adapter"),
                    format!(
                        "no adapter named {:?} (define it under [adapters.{}])",
                        p.adapter.get_ref(),
                        p.adapter.get_ref()
                    ),
                );
            }
            for (stage, list) in [("transforms", &p.transforms), ("pipeline", &p.pipeline)] {
                for r in list {
                    if !rules.contains_key(r.get_ref()) {
                        problem(
                            r.span(),
                            &key(stage),
                            format!("no rule named {:?} (define it under [rules])", r.get_ref()),
                        );
                    }
                }
            }
            for r in &p.services {
                if !services.contains_key(r.service.get_ref()) {
                    problem(
                        r.service.span(),
                        &key("services"),
                        format!(
                            "no service named {:?} (define it under [services])",
                            r.service.get_ref()
                        ),
                    );
                }
            }
            if p.direction == PortDirection::Outbound {
                if let Some(r) = &p.response_address {
                    problem(
                        r.span(),
                        &key("response_address"),
                        "only inbound ports have a response address".into(),
                    );
                }
                if let Some(r) = p.services.first() {
                    problem(
                        r.service.span(),
                        &key("services"),
                        "only inbound ports dispatch to services".into(),
                    );
                }
            }
            check_responses(&p, &mut |s, k, m| problem(s, &key(k), m));
            let folders = [Some(&p.address), p.response_address.as_ref()];
            for (k, a) in ["address", "response_address"].iter().zip(folders) {
                if let Some(blocked) = a.and_then(|a| uncreatable(&abs(a.get_ref()))) {
                    problem(a.expect("some").span(), &key(k), blocked);
                }
            }
            if let Some(m) = p.max_parallel.as_ref().filter(|m| *m.get_ref() == 0) {
                problem(m.span(), &key("max_parallel"), "must be at least 1".into());
            }
            if let Some(b) = p.receive_batch.as_ref().filter(|b| *b.get_ref() == 0) {
                problem(b.span(), &key("receive_batch"), "must be at least 1".into());
            }
            let limits = Limits {
                memory: p
                    .memory_limit_mb
                    .map(|m| m << 20)
                    .unwrap_or(Limits::default().memory),
                time: p
                    .time_limit_ms
                    .map(Duration::from_millis)
                    .unwrap_or(Limits::default().time),
                quotas: p.quotas(),
            };
            ports.insert(
                name.clone(),
                PortConfig {
                    name: name.clone(),
                    direction: p.direction,
                    adapter: p.adapter.into_inner(),
                    address: abs(p.address.get_ref()),
                    response_address: p.response_address.as_ref().map(|r| abs(r.get_ref())),
                    discard_responses: p
                        .responses
                        .as_ref()
                        .is_some_and(|r| *r.get_ref() == Responses::Discard),
                    transforms: p.transforms.into_iter().map(Spanned::into_inner).collect(),
                    pipeline: p.pipeline.into_iter().map(Spanned::into_inner).collect(),
                    services: p
                        .services
                        .into_iter()
                        .map(|r| ServiceRoute {
                            action: r.action,
                            service: r.service.into_inner(),
                        })
                        .collect(),
                    parallel: p.parallel,
                    max_parallel: p.max_parallel.map_or(1000, Spanned::into_inner),
                    upon_error: p.upon_error,
                    logging: p.logging,
                    send_faults: p.send_faults.unwrap_or(true),
                    receive_batch: p.receive_batch.map_or(100, Spanned::into_inner),
                    limits,
                },
            );
        }

        let mut jobs = BTreeMap::new();
        for (name, spanned) in raw.jobs {
            let span = spanned.span();
            let j = spanned.into_inner();
            let job = parse_job(&name, span, j, &ports, &mut problem);
            jobs.insert(name, job);
        }
        if jobs.is_empty() {
            jobs.insert(
                DEFAULT_JOB.to_string(),
                JobConfig::new(DEFAULT_JOB, Duration::from_secs(1), default_tasks()),
            );
        }

        let console = console::parse(raw.console, &mut problem);
        let queue = queue::parse(raw.queue, &mut problem);
        let retention = retention::parse(raw.retention, &mut problem);
        if raw.workers == Some(0) {
            problems.push(format!("{file}: workers: must be at least 1"));
        }
        if raw.group_commit == Some(0) {
            problems.push(format!("{file}: group_commit: must be at least 1"));
        }
        if !problems.is_empty() {
            return Err(ConfigError { problems });
        }
        Ok(Config {
            file: path.to_path_buf(),
            data_dir: abs(raw.data_dir.as_ref().map_or("data", |s| s.get_ref())),
            plugin_dir: abs(raw.plugin_dir.as_ref().map_or("plugins", |s| s.get_ref())),
            workers: raw
                .workers
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
            group_commit: raw.group_commit.unwrap_or(256),
            adapters,
            rules,
            services,
            ports,
            jobs,
            console,
            queue,
            retention,
        })
    }

    /// Every key of the file's schema, as dotted paths with `NAME` for the
    /// names the user chooses (`ports.NAME.time_limit_ms`).
    pub fn keys() -> Vec<String> {
        crate::schema::keys::<RawConfig>(&[
            ("", "__probe__ = 1"),
            ("adapters.NAME", "[adapters.a]\n__probe__ = 1"),
            (
                "adapters.NAME.grants",
                "[adapters.a]\ngrants = [{ __probe__ = 1 }]",
            ),
            ("rules.NAME", "[rules.a]\n__probe__ = 1"),
            ("services.NAME", "[services.a]\n__probe__ = 1"),
            ("ports.NAME", "[ports.a]\n__probe__ = 1"),
            (
                "ports.NAME.services",
                "[ports.a]\nservices = [{ __probe__ = 1 }]",
            ),
            ("jobs.NAME", "[jobs.a]\n__probe__ = 1"),
            ("console", "[console]\n__probe__ = 1"),
            ("console.tokens.NAME", "[console.tokens.a]\n__probe__ = 1"),
            ("queue", "[queue]\n__probe__ = 1"),
            ("retention", "[retention]\n__probe__ = 1"),
            ("jobs.NAME.tasks", "[jobs.a]\ntasks = [{ __probe__ = 1 }]"),
            (
                "jobs.NAME.tasks.after",
                "[jobs.a]\ntasks = [{ after = [{ __probe__ = 1 }] }]",
            ),
        ])
    }

    /// The outbound port names (targets of the Send API).
    pub fn outbound_ports(&self) -> BTreeSet<String> {
        self.ports
            .values()
            .filter(|p| p.direction == PortDirection::Outbound)
            .map(|p| p.name.clone())
            .collect()
    }

    /// The largest memory cap any port asks for.
    pub fn max_memory(&self) -> u64 {
        self.ports
            .values()
            .map(|p| p.limits.memory)
            .max()
            .unwrap_or(Limits::default().memory)
            .max(Limits::default().memory)
    }

    /// The plugin file for a plugin name.
    pub fn plugin_path(&self, component: &str) -> PathBuf {
        self.plugin_dir.join(format!("{component}.wasm"))
    }
}

/// Why the port folder `dir` cannot be created (Ferry creates a missing
/// one): something on its path that is not a folder.
fn uncreatable(dir: &Path) -> Option<String> {
    let existing = dir.ancestors().find(|a| a.exists())?;
    (!existing.is_dir()).then(|| {
        format!(
            "folder {} cannot be created: {} is not a folder",
            dir.display(),
            existing.display()
        )
    })
}

/// An inbound port whose services answer needs somewhere to answer: a
/// `response_address`, or `responses = "discard"` said out loud.
fn check_responses(p: &RawPort, problem: &mut dyn FnMut(std::ops::Range<usize>, &str, String)) {
    let inbound = p.direction == PortDirection::Inbound;
    match (&p.responses, &p.response_address) {
        (Some(r), _) if !inbound => problem(
            r.span(),
            "responses",
            "only inbound ports have responses".into(),
        ),
        (Some(r), Some(_)) if *r.get_ref() == Responses::Discard => problem(
            r.span(),
            "responses",
            "\"discard\" with a response_address: remove one of the two".into(),
        ),
        (Some(r), None) if *r.get_ref() == Responses::Send => problem(
            r.span(),
            "responses",
            "\"send\" needs a response_address to send to".into(),
        ),
        (None, None) if inbound => {
            if let Some(route) = p.services.first() {
                problem(
                    route.service.span(),
                    "services",
                    "this port's services answer, but it has no response_address: \
                     set `response_address` (a folder), or `responses = \"discard\"` to drop \
                     the responses (each is then recorded in the message's history)"
                        .into(),
                );
            }
        }
        _ => {}
    }
}

/// AIF's job: the four services in order, each after its predecessor
/// (Ended or error).
pub fn default_tasks() -> Vec<TaskConfig> {
    let mut tasks: Vec<TaskConfig> = TaskKind::ALL.iter().map(|&k| TaskConfig::new(k)).collect();
    for i in 1..tasks.len() {
        tasks[i].after = vec![After {
            task: tasks[i - 1].name.clone(),
            status: AfterStatus::EndedOrError,
        }];
    }
    tasks
}

/// A date-time of the `[jobs]` section: `start` may be `"now"`, both may be
/// an RFC 3339 string or a TOML offset date-time.
fn job_time(value: &toml::Value, allow_now: bool) -> Result<Option<u64>, String> {
    let text = match value {
        toml::Value::String(s) => s.clone(),
        toml::Value::Datetime(d) => d.to_string(),
        other => {
            return Err(format!(
                "expected a date-time such as \"2026-05-01T06:00:00Z\"{}, not {}",
                if allow_now { " or \"now\"" } else { "" },
                other.type_str()
            ));
        }
    };
    if allow_now && text.trim().eq_ignore_ascii_case("now") {
        return Ok(None);
    }
    crate::time::parse_rfc3339(&text).map(Some)
}

/// Job names become part of state keys (`job/NAME/...`), so they are kept
/// to letters, digits, `-`, `_` and `.`.
fn valid_job_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Check and convert one `[jobs.NAME]` table.
fn parse_job(
    name: &str,
    span: std::ops::Range<usize>,
    j: RawJob,
    ports: &BTreeMap<String, PortConfig>,
    problem: &mut dyn FnMut(std::ops::Range<usize>, &str, String),
) -> JobConfig {
    let key = |k: &str| format!("jobs.{name}.{k}");
    if !valid_job_name(name) {
        problem(
            span.clone(),
            &format!("jobs.{name}"),
            "a job name may only hold letters, digits, '-', '_' and '.'".into(),
        );
    }
    let every = match &j.every {
        None => Duration::from_secs(1),
        Some(e) => match parse_duration(e.get_ref()) {
            Ok(d) if d.as_millis() >= 1 => d,
            Ok(_) => {
                problem(e.span(), &key("every"), "must be at least 1ms".into());
                Duration::from_secs(1)
            }
            Err(msg) => {
                problem(e.span(), &key("every"), msg);
                Duration::from_secs(1)
            }
        },
    };
    let mut recurrence = Recurrence::every(every);
    if let Some(s) = &j.start {
        match job_time(s.get_ref(), true) {
            Ok(None) => {}
            Ok(Some(ms)) => recurrence.start = Start::At(ms),
            Err(msg) => problem(s.span(), &key("start"), msg),
        }
    }
    match (&j.end_after, &j.end_by) {
        (Some(_), Some(b)) => problem(
            b.span(),
            &key("end_by"),
            "give either end_after (a number of occurrences) or end_by (a date-time), not both"
                .into(),
        ),
        (Some(k), None) => match u64::try_from(*k.get_ref()) {
            Ok(n) if n >= 1 => recurrence.end = End::After(n),
            _ => problem(k.span(), &key("end_after"), "must be at least 1".into()),
        },
        (None, Some(b)) => match job_time(b.get_ref(), false) {
            Ok(Some(ms)) => {
                if let Start::At(start) = recurrence.start
                    && ms < start
                {
                    problem(b.span(), &key("end_by"), "is before start".into());
                }
                recurrence.end = End::By(ms);
            }
            Ok(None) => {}
            Err(msg) => problem(b.span(), &key("end_by"), msg),
        },
        (None, None) => {}
    }
    let keep_history = match &j.keep_history {
        None => DEFAULT_KEEP_HISTORY,
        Some(k) => match usize::try_from(*k.get_ref()) {
            Ok(n) if n >= 1 => n,
            _ => {
                problem(k.span(), &key("keep_history"), "must be at least 1".into());
                DEFAULT_KEEP_HISTORY
            }
        },
    };
    let tasks = match j.tasks {
        None => default_tasks(),
        Some(raw) => parse_tasks(name, raw, ports, problem),
    };
    if tasks.is_empty() {
        problem(span, &key("tasks"), "a job needs at least one task".into());
    }
    let mut job = JobConfig {
        name: name.to_string(),
        recurrence,
        tasks,
        keep_history,
        on_input: None,
    };
    let min_interval = match &j.min_interval {
        None => DEFAULT_MIN_INTERVAL,
        Some(m) => match parse_duration(m.get_ref()) {
            Ok(d) if d.as_millis() >= 1 => d,
            Ok(_) => {
                problem(
                    m.span(),
                    &key("min_interval"),
                    "must be at least 1ms".into(),
                );
                DEFAULT_MIN_INTERVAL
            }
            Err(msg) => {
                problem(m.span(), &key("min_interval"), msg);
                DEFAULT_MIN_INTERVAL
            }
        },
    };
    match &j.on_input {
        Some(on) if *on.get_ref() => {
            if !job.tasks.iter().any(|t| t.kind == TaskKind::GatewayReceive) {
                problem(
                    on.span(),
                    &key("on_input"),
                    "this job has no gateway-receive task, so it has no inbound port to \
                     notice new input on; add one, or set on_input on the job that receives"
                        .into(),
                );
            } else if job.receive_ports(ports).is_empty() {
                problem(
                    on.span(),
                    &key("on_input"),
                    "the gateway-receive task(s) of this job read no inbound port, so there \
                     is no input to notice"
                        .into(),
                );
            }
            job.on_input = Some(min_interval.as_millis() as u64);
        }
        _ => {
            if let Some(m) = &j.min_interval {
                problem(
                    m.span(),
                    &key("min_interval"),
                    "applies only with on_input = true".into(),
                );
            }
        }
    }
    job
}

/// Check and convert the tasks of job `job`: names, ports, conditions (known
/// tasks, no task after itself, no cycle).
fn parse_tasks(
    job: &str,
    raw: Vec<Spanned<RawTask>>,
    ports: &BTreeMap<String, PortConfig>,
    problem: &mut dyn FnMut(std::ops::Range<usize>, &str, String),
) -> Vec<TaskConfig> {
    let key = |k: &str| format!("jobs.{job}.tasks.{k}");
    let mut tasks: Vec<TaskConfig> = Vec::new();
    let mut spans = Vec::new();
    let mut explicit_after = Vec::new();
    let mut after_spans: Vec<Vec<std::ops::Range<usize>>> = Vec::new();
    for spanned in raw {
        let span = spanned.span();
        let t = spanned.into_inner();
        for p in &t.ports {
            if !ports.contains_key(p.get_ref()) {
                problem(
                    p.span(),
                    &key("ports"),
                    format!("no port named {:?}", p.get_ref()),
                );
            }
        }
        let name = match &t.name {
            Some(n) if n.get_ref().trim().is_empty() => {
                problem(n.span(), &key("name"), "must not be empty".into());
                t.service.name().to_string()
            }
            Some(n) => n.get_ref().clone(),
            None => t.service.name().to_string(),
        };
        if tasks.iter().any(|o| o.name == name) {
            let at = t.name.as_ref().map_or(span.clone(), |n| n.span());
            problem(
                at,
                &key("name"),
                format!(
                    "two tasks are named {name:?}; give each task of a job its own name \
                     (name = \"...\"; the default is the service's name)"
                ),
            );
        }
        let max_retries = match &t.max_retries {
            None => 0,
            Some(m) => match u32::try_from(*m.get_ref()) {
                Ok(n) => n,
                Err(_) => {
                    problem(m.span(), &key("max_retries"), "must be 0 or more".into());
                    0
                }
            },
        };
        explicit_after.push(t.after.is_some());
        let (after, a_spans): (Vec<After>, Vec<_>) = t
            .after
            .unwrap_or_default()
            .into_iter()
            .map(|a| {
                let s = a.span();
                let a = a.into_inner();
                (
                    After {
                        task: a.task,
                        status: a.status,
                    },
                    s,
                )
            })
            .unzip();
        after_spans.push(a_spans);
        spans.push(span);
        tasks.push(TaskConfig {
            name,
            kind: t.service,
            ports: t.ports.into_iter().map(Spanned::into_inner).collect(),
            after,
            condition: t.condition,
            ignore_failure: t.ignore_failure,
            max_retries,
        });
    }
    // A task without `after` follows the one before it (AIF's chain).
    for i in 1..tasks.len() {
        if !explicit_after[i] {
            tasks[i].after = vec![After {
                task: tasks[i - 1].name.clone(),
                status: AfterStatus::EndedOrError,
            }];
        }
    }
    let names: Vec<String> = tasks.iter().map(|t| t.name.clone()).collect();
    for (i, t) in tasks.iter().enumerate() {
        for (a, s) in t.after.iter().zip(&after_spans[i]) {
            if a.task == t.name {
                problem(
                    s.clone(),
                    &key("after"),
                    format!("task {:?} cannot wait for itself", t.name),
                );
            } else if !names.contains(&a.task) {
                problem(
                    s.clone(),
                    &key("after"),
                    format!(
                        "no task named {:?} in job {job:?} (its tasks: {})",
                        a.task,
                        names.join(", ")
                    ),
                );
            }
        }
    }
    if let Some(cycle) = find_cycle(&tasks) {
        let first = tasks.iter().position(|t| t.name == cycle[0]).unwrap_or(0);
        problem(
            spans[first].clone(),
            &key("after"),
            format!(
                "the conditions form a cycle ({}), so none of these tasks could ever run",
                cycle.join(" → ")
            ),
        );
    }
    tasks
}

/// A cycle of conditions (task names, the first repeated at the end), if any.
fn find_cycle(tasks: &[TaskConfig]) -> Option<Vec<String>> {
    fn visit(
        i: usize,
        tasks: &[TaskConfig],
        mark: &mut [u8],
        path: &mut Vec<usize>,
    ) -> Option<Vec<String>> {
        mark[i] = 1;
        path.push(i);
        for a in &tasks[i].after {
            let Some(j) = tasks.iter().position(|t| t.name == a.task) else {
                continue;
            };
            if j == i {
                continue; // reported on its own
            }
            if mark[j] == 1 {
                let from = path.iter().position(|&p| p == j).unwrap_or(0);
                let mut names: Vec<String> = path[from..]
                    .iter()
                    .map(|&p| tasks[p].name.clone())
                    .collect();
                names.push(tasks[j].name.clone());
                return Some(names);
            }
            if mark[j] == 0
                && let Some(c) = visit(j, tasks, mark, path)
            {
                return Some(c);
            }
        }
        path.pop();
        mark[i] = 2;
        None
    }
    let mut mark = vec![0u8; tasks.len()];
    for i in 0..tasks.len() {
        if mark[i] == 0
            && let Some(c) = visit(i, tasks, &mut mark, &mut Vec::new())
        {
            return Some(c);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
data_dir = "data"
plugin_dir = "../plugins"

[adapters.file]
component = "file-adapter"
options = { max_file_size = 1000 }

[rules.map]
component = "value-map"
options = { elements = "ItemId", map = { "EXT-1" = "1000" } }

[services.sales]
component = "sales-order-service"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["map"]
services = [{ action = "*/SalesOrderService/*", service = "sales" }]

[ports.copy]
direction = "outbound"
adapter = "file"
address = "copies"
"#;

    #[test]
    fn good_file_loads_with_defaults_and_absolute_paths() {
        let c = Config::parse(Path::new("/etc/ferry/ferry.toml"), GOOD).unwrap();
        assert_eq!(c.data_dir, Path::new("/etc/ferry/data"));
        assert_eq!(c.plugin_dir, Path::new("/etc/ferry/../plugins"));
        let p = &c.ports["in"];
        assert_eq!(p.address, Path::new("/etc/ferry/inbox"));
        assert_eq!(p.max_parallel, 1000);
        assert!(!p.parallel);
        assert_eq!(p.limits, Limits::default());
        assert_eq!(
            p.route(
                "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create"
            ),
            Some("sales")
        );
        assert_eq!(p.route("x/CustomerService/create"), None);
        assert_eq!(
            c.rules["map"].options,
            vec![
                ("elements".to_string(), "ItemId".to_string()),
                ("map.EXT-1".to_string(), "1000".to_string())
            ]
        );
        assert_eq!(c.adapters["file"].plugin.options[0].1, "1000");
        assert_eq!(c.jobs[DEFAULT_JOB].tasks.len(), 4);
        assert_eq!(c.outbound_ports().into_iter().collect::<Vec<_>>(), ["copy"]);
    }

    #[test]
    fn every_dangling_reference_is_reported_with_line_and_key() {
        let bad = GOOD
            .replace(
                "adapter = \"file\"\naddress = \"copies\"",
                "adapter = \"ftp\"\naddress = \"copies\"",
            )
            .replace("pipeline = [\"map\"]", "pipeline = [\"nope\"]");
        let err = Config::parse(Path::new("f.toml"), &bad).unwrap_err();
        assert_eq!(err.problems.len(), 2, "{err}");
        let text = err.to_string();
        assert!(
            text.contains("f.toml:26: ports.copy.adapter: no adapter named \"ftp\""),
            "{text}"
        );
        assert!(
            text.contains("f.toml:21: ports.in.pipeline: no rule named \"nope\""),
            "{text}"
        );
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_line() {
        let err =
            Config::parse(Path::new("f.toml"), "data_dir = \"d\"\nworkres = 2\n").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("f.toml:2: workres: unknown field `workres`"),
            "{err}"
        );
        let err = Config::parse(
            Path::new("f.toml"),
            "[ports.x]\ndirection = \"sideways\"\nadapter = \"a\"\naddress = \"x\"\n",
        )
        .unwrap_err();
        assert!(err.to_string().starts_with("f.toml:2:"), "{err}");
        assert!(err.to_string().contains("sideways"), "{err}");
    }

    #[test]
    fn port_value_problems_name_the_key_line() {
        let bad = GOOD.replace(
            "address = \"copies\"",
            "address = \"copies\"\nresponse_address = \"back\"\nmax_parallel = 0",
        );
        let err = Config::parse(Path::new("f.toml"), &bad).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("f.toml:28: ports.copy.response_address: only inbound"),
            "{text}"
        );
        assert!(
            text.contains("f.toml:29: ports.copy.max_parallel: must be at least 1"),
            "{text}"
        );
    }

    #[test]
    fn durations_and_globs() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1d").unwrap(), Duration::from_secs(86400));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5 fortnights").is_err());
        assert!(glob_match("*", "anything"));
        assert!(glob_match("a*c", "abc"));
        assert!(glob_match("a*c", "ac"));
        assert!(!glob_match("a*c", "ab"));
        assert!(glob_match(
            "*/Sales*/create",
            "http://x/SalesOrderService/create"
        ));
        assert!(!glob_match("exact", "exactly"));
    }

    fn jobs_of(text: &str) -> Result<BTreeMap<String, JobConfig>, String> {
        Config::parse(Path::new("f.toml"), &format!("{GOOD}{text}"))
            .map(|c| c.jobs)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn existing_job_syntax_still_works() {
        let jobs = jobs_of(
            r#"
[jobs.receive]
every = "1s"
tasks = [{ service = "gateway-receive", ports = ["in"] }]

[jobs.rest]
every = "250ms"
tasks = [
  { service = "inbound-processing" },
  { service = "outbound-processing" },
  { service = "gateway-send", ports = ["in", "copy"] },
]
"#,
        )
        .unwrap();
        let r = &jobs["receive"];
        assert_eq!(r.recurrence, Recurrence::every(Duration::from_secs(1)));
        assert_eq!(r.keep_history, DEFAULT_KEEP_HISTORY);
        assert_eq!(r.tasks.len(), 1);
        assert_eq!(r.tasks[0].name, "gateway-receive");
        assert_eq!(r.tasks[0].ports, ["in"]);
        assert!(r.tasks[0].after.is_empty());
        let rest = &jobs["rest"];
        assert_eq!(rest.recurrence.every_ms, 250);
        // Without `after`, each task follows the one before it.
        assert_eq!(
            rest.tasks[2].after,
            [After {
                task: "outbound-processing".into(),
                status: AfterStatus::EndedOrError
            }]
        );
        assert_eq!(rest.tasks[2].condition, Combine::All);
        assert!(!rest.tasks[2].ignore_failure);
        assert_eq!(rest.tasks[2].max_retries, 0);
        // A job without tasks is AIF's: the four services chained.
        let jobs = jobs_of("[jobs.aif]\nevery = \"100ms\"\n").unwrap();
        assert_eq!(jobs["aif"].tasks, default_tasks());
        assert_eq!(jobs["aif"].recurrence.every_ms, 100);
    }

    #[test]
    fn full_job_syntax() {
        let jobs = jobs_of(
            r#"
[jobs.nightly]
every = "1d"
start = 2026-05-01T02:00:00+02:00
end_after = 30
keep_history = 50
tasks = [
  { service = "gateway-receive", name = "receive", ports = ["in"], max_retries = 3 },
  { service = "inbound-processing", name = "process", after = [{ task = "receive", status = "ended" }], ignore_failure = true },
  { service = "gateway-send", name = "alarm", after = [{ task = "receive", status = "error" }, { task = "process", status = "error" }], condition = "any" },
  { service = "gateway-send", name = "send", after = [] },
]

[jobs.window]
every = "30m"
end_by = "2026-06-01T00:00:00Z"
"#,
        )
        .unwrap();
        let n = &jobs["nightly"];
        assert_eq!(
            n.recurrence,
            Recurrence {
                every_ms: 86_400_000,
                start: Start::At(crate::time::parse_rfc3339("2026-05-01T00:00:00Z").unwrap()),
                end: End::After(30),
            }
        );
        assert_eq!(n.keep_history, 50);
        let names: Vec<_> = n.tasks.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["receive", "process", "alarm", "send"]);
        assert_eq!(n.tasks[0].max_retries, 3);
        assert!(n.tasks[1].ignore_failure);
        assert_eq!(n.tasks[1].after[0].status, AfterStatus::Ended);
        assert_eq!(n.tasks[2].condition, Combine::Any);
        assert_eq!(n.tasks[2].after.len(), 2);
        assert!(n.tasks[3].after.is_empty(), "after = [] means no condition");
        assert_eq!(n.task("alarm").unwrap().kind, TaskKind::GatewaySend);
        let w = &jobs["window"];
        assert_eq!(w.recurrence.start, Start::Now);
        assert_eq!(
            w.recurrence.end,
            End::By(crate::time::parse_rfc3339("2026-06-01T00:00:00Z").unwrap())
        );
    }

    #[test]
    fn job_mistakes_are_reported_with_line_and_key() {
        let err = jobs_of(
            r#"
[jobs.a]
every = "0s"
start = "tomorrow"
end_after = 0
tasks = [
  { service = "gateway-receive" },
  { service = "gateway-receive", ports = ["nope"] },
  { service = "gateway-send", name = "s", after = [{ task = "ghost" }, { task = "s" }] },
]

[jobs.b]
end_after = 2
end_by = "2026-01-01T00:00:00Z"
tasks = [
  { service = "gateway-receive", name = "x", after = [{ task = "y" }] },
  { service = "gateway-send", name = "y" },
]

[jobs."c/d"]
start = "2026-05-01T06:00:00"
tasks = []
"#,
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        let has = |s: &str| assert!(lines.iter().any(|l| l.contains(s)), "{s} not in:\n{err}");
        has("f.toml:30: jobs.a.every: must be at least 1ms");
        has("f.toml:31: jobs.a.start: \"tomorrow\" is not a date-time");
        has("f.toml:32: jobs.a.end_after: must be at least 1");
        has("f.toml:35: jobs.a.tasks.ports: no port named \"nope\"");
        has("f.toml:35: jobs.a.tasks.name: two tasks are named \"gateway-receive\"");
        has("f.toml:36: jobs.a.tasks.after: no task named \"ghost\" in job \"a\"");
        has("f.toml:36: jobs.a.tasks.after: task \"s\" cannot wait for itself");
        has("f.toml:41: jobs.b.end_by: give either end_after");
        has("f.toml:43: jobs.b.tasks.after: the conditions form a cycle (x → y → x)");
        has("f.toml:47: jobs.c/d: a job name may only hold letters");
        has("f.toml:48: jobs.c/d.start: \"2026-05-01T06:00:00\" is not a date-time");
        has("UTC offset is needed");
        has("f.toml:47: jobs.c/d.tasks: a job needs at least one task");
        let bad_status = jobs_of(
            "[jobs.a]\ntasks = [{ service = \"gateway-send\", after = [{ task = \"x\", status = \"done\" }] }]\n",
        )
        .unwrap_err();
        assert!(bad_status.contains("done"), "{bad_status}");
        assert!(bad_status.contains("ended-or-error"), "{bad_status}");
    }

    #[test]
    fn on_input_and_min_interval() {
        let jobs = jobs_of(
            r#"
[jobs.fast]
every = "1h"
on_input = true
tasks = [{ service = "gateway-receive", ports = ["in"] }, { service = "inbound-processing" }]

[jobs.tuned]
on_input = true
min_interval = "250ms"

[jobs.off]
on_input = false
tasks = [{ service = "gateway-send" }]
"#,
        )
        .unwrap();
        assert_eq!(jobs["fast"].on_input, Some(1000), "default min_interval 1s");
        assert_eq!(DEFAULT_MIN_INTERVAL, Duration::from_secs(1));
        assert_eq!(jobs["tuned"].on_input, Some(250));
        assert_eq!(jobs["off"].on_input, None);
        let ports = |j: &JobConfig| -> Vec<String> {
            let cfg = Config::parse(Path::new("f.toml"), GOOD).unwrap();
            j.receive_ports(&cfg.ports)
                .iter()
                .map(|p| p.name.clone())
                .collect()
        };
        assert_eq!(ports(&jobs["fast"]), ["in"]);
        assert_eq!(ports(&jobs["tuned"]), ["in"], "outbound ports are not read");
        assert!(ports(&jobs["off"]).is_empty());
        // No [jobs]: AIF's default job, without on_input.
        let c = Config::parse(Path::new("f.toml"), GOOD).unwrap();
        assert_eq!(c.jobs[DEFAULT_JOB].on_input, None);
    }

    #[test]
    fn on_input_mistakes_are_reported_with_line_and_key() {
        let err = jobs_of(
            r#"
[jobs.send]
on_input = true
tasks = [{ service = "gateway-send" }]

[jobs.copies]
on_input = true
tasks = [{ service = "gateway-receive", ports = ["copy"] }]

[jobs.bad]
on_input = true
min_interval = "soon"

[jobs.zero]
on_input = true
min_interval = "0ms"

[jobs.lonely]
min_interval = "2s"
"#,
        )
        .unwrap_err();
        let lines: Vec<&str> = err.lines().collect();
        let has = |s: &str| assert!(lines.iter().any(|l| l.contains(s)), "{s} not in:\n{err}");
        has("f.toml:30: jobs.send.on_input: this job has no gateway-receive task");
        has(
            "f.toml:34: jobs.copies.on_input: the gateway-receive task(s) of this job read no inbound port",
        );
        has("f.toml:39: jobs.bad.min_interval: \"soon\" is not a duration");
        has("f.toml:43: jobs.zero.min_interval: must be at least 1ms");
        has("f.toml:46: jobs.lonely.min_interval: applies only with on_input = true");
        assert_eq!(lines.len(), 5, "{err}");
        let not_bool = jobs_of("[jobs.a]\non_input = \"yes\"\n").unwrap_err();
        assert!(not_bool.starts_with("f.toml:29:"), "{not_bool}");
        assert!(not_bool.contains("bool"), "{not_bool}");
    }
}
