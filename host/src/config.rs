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

use crate::runtime::Limits;

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
}

/// A plugin with its options.
#[derive(Debug, Clone, PartialEq)]
pub struct ComponentConfig {
    /// Plugin name: `plugin_dir/NAME.wasm`.
    pub component: String,
    /// Options, flattened to key/value pairs (`table.key` for nested tables).
    pub options: Vec<(String, String)>,
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
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

/// A task of a batch job.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskConfig {
    /// The service it runs.
    pub kind: TaskKind,
    /// Only these ports (all when empty).
    pub ports: Vec<String>,
}

/// A batch job: tasks run in order at each occurrence.
#[derive(Debug, Clone, PartialEq)]
pub struct JobConfig {
    /// The job's name.
    pub name: String,
    /// Time between occurrences.
    pub every: Duration,
    /// Its tasks, in order.
    pub tasks: Vec<TaskConfig>,
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
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawComponent {
    component: String,
    #[serde(default)]
    options: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdapter {
    component: String,
    #[serde(default)]
    options: toml::Table,
    #[serde(default)]
    grants: Vec<RawGrant>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawGrant {
    path: String,
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
    address: String,
    response_address: Option<String>,
    #[serde(default)]
    transforms: Vec<Spanned<String>>,
    #[serde(default)]
    pipeline: Vec<Spanned<String>>,
    #[serde(default)]
    services: Vec<RawRoute>,
    #[serde(default)]
    parallel: bool,
    max_parallel: Option<usize>,
    #[serde(default)]
    upon_error: UponError,
    #[serde(default)]
    logging: LoggingMode,
    send_faults: Option<bool>,
    receive_batch: Option<u32>,
    memory_limit_mb: Option<u64>,
    time_limit_ms: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    every: Option<String>,
    tasks: Option<Vec<RawTask>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTask {
    service: TaskKind,
    #[serde(default)]
    ports: Vec<Spanned<String>>,
}

/// The default batch job: the four services in AIF's order, every second.
pub const DEFAULT_JOB: &str = "aif";

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

/// `*` matches any run of characters (including none); all else literally.
pub fn glob_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || text.len() < first.len() + last.len() || !text.ends_with(last) {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for mid in &parts[1..parts.len() - 1] {
        match rest.find(mid) {
            Some(i) => rest = &rest[i + mid.len()..],
            None => return false,
        }
    }
    true
}

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
        let line_of = |offset: usize| text[..offset.min(text.len())].lines().count().max(1);
        let raw: RawConfig = toml::from_str(text).map_err(|e| {
            let at = e
                .span()
                .map(|s| format!(":{}", line_of(s.start)))
                .unwrap_or_default();
            ConfigError {
                problems: vec![format!("{file}{at}: {}", e.message().trim())],
            }
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

        let component = |c: RawComponent| ComponentConfig {
            component: c.component,
            options: flatten(&c.options),
        };
        let adapters: BTreeMap<String, AdapterConfig> = raw
            .adapters
            .into_iter()
            .map(|(name, a)| {
                let grants = a
                    .grants
                    .iter()
                    .map(|g| crate::runtime::Grant {
                        host: abs(&g.path),
                        guest: g.guest.clone(),
                        writable: g.writable,
                    })
                    .collect();
                let cfg = AdapterConfig {
                    plugin: ComponentConfig {
                        component: a.component,
                        options: flatten(&a.options),
                    },
                    grants,
                };
                (name, cfg)
            })
            .collect();
        let rules: BTreeMap<_, _> = raw
            .rules
            .into_iter()
            .map(|(n, c)| (n, component(c)))
            .collect();
        let services: BTreeMap<_, _> = raw
            .services
            .into_iter()
            .map(|(n, c)| (n, component(c)))
            .collect();

        let mut ports = BTreeMap::new();
        for (name, spanned) in raw.ports {
            let span = spanned.span();
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
                if p.response_address.is_some() {
                    problem(
                        span.clone(),
                        &key("response_address"),
                        "only inbound ports have a response address".into(),
                    );
                }
                if !p.services.is_empty() {
                    problem(
                        span.clone(),
                        &key("services"),
                        "only inbound ports dispatch to services".into(),
                    );
                }
            }
            if p.max_parallel == Some(0) {
                problem(
                    span.clone(),
                    &key("max_parallel"),
                    "must be at least 1".into(),
                );
            }
            if p.receive_batch == Some(0) {
                problem(
                    span.clone(),
                    &key("receive_batch"),
                    "must be at least 1".into(),
                );
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
            };
            ports.insert(
                name.clone(),
                PortConfig {
                    name: name.clone(),
                    direction: p.direction,
                    adapter: p.adapter.into_inner(),
                    address: abs(&p.address),
                    response_address: p.response_address.as_deref().map(abs),
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
                    max_parallel: p.max_parallel.unwrap_or(1000),
                    upon_error: p.upon_error,
                    logging: p.logging,
                    send_faults: p.send_faults.unwrap_or(true),
                    receive_batch: p.receive_batch.unwrap_or(100),
                    limits,
                },
            );
        }

        let mut jobs = BTreeMap::new();
        for (name, spanned) in raw.jobs {
            let span = spanned.span();
            let j = spanned.into_inner();
            let every = match j.every.as_deref().map(parse_duration) {
                None => Duration::from_secs(1),
                Some(Ok(d)) => d,
                Some(Err(e)) => {
                    problem(span.clone(), &format!("jobs.{name}.every"), e);
                    Duration::from_secs(1)
                }
            };
            let tasks = match j.tasks {
                None => default_tasks(),
                Some(tasks) => tasks
                    .into_iter()
                    .map(|t| {
                        for p in &t.ports {
                            if !ports.contains_key(p.get_ref()) {
                                problem(
                                    p.span(),
                                    &format!("jobs.{name}.tasks.ports"),
                                    format!("no port named {:?}", p.get_ref()),
                                );
                            }
                        }
                        TaskConfig {
                            kind: t.service,
                            ports: t.ports.into_iter().map(Spanned::into_inner).collect(),
                        }
                    })
                    .collect(),
            };
            jobs.insert(name.clone(), JobConfig { name, every, tasks });
        }
        if jobs.is_empty() {
            jobs.insert(
                DEFAULT_JOB.to_string(),
                JobConfig {
                    name: DEFAULT_JOB.to_string(),
                    every: Duration::from_secs(1),
                    tasks: default_tasks(),
                },
            );
        }

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
        })
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

fn default_tasks() -> Vec<TaskConfig> {
    TaskKind::ALL
        .iter()
        .map(|&kind| TaskConfig {
            kind,
            ports: vec![],
        })
        .collect()
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
            text.contains("f.toml:29: ports.copy.adapter: no adapter named \"ftp\""),
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
                .starts_with("f.toml:2: unknown field `workres`"),
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
}
