//! The command line (clap): one file per command group.

mod job;
mod plugin;
mod queue;
mod run;

pub use run::{load_config, load_for_host};

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// Ferry moves business documents between systems through a durable gateway
/// queue, as AIF did for Dynamics AX 2012. Adapters, rules and services are
/// sandboxed WebAssembly components loaded from a plugin directory.
#[derive(Debug, Parser)]
#[command(name = "ferry", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    /// Logging options.
    #[command(flatten)]
    pub log: LogArgs,
    /// The command.
    #[command(subcommand)]
    pub command: Command,
}

/// Logging options, shared by every command.
#[derive(Debug, Args)]
pub struct LogArgs {
    /// Log level or filter (error, warn, info, debug, trace, or a RUST_LOG
    /// filter such as `ferry=debug`). RUST_LOG is used when this is not given.
    #[arg(long, global = true, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// How log records are written (to stderr).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Ferry's commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect and list plugins (WebAssembly components).
    #[command(subcommand)]
    Plugin(plugin::PluginCommand),
    /// Run the batch jobs: receive, process and send messages until Ctrl-C
    /// or SIGTERM (or one occurrence with --once).
    Run(run::RunArgs),
    /// Validate a configuration file and every plugin it references,
    /// without running anything.
    Check(run::CheckArgs),
    /// The queue manager: list and search, show, diff, export, hold,
    /// release, resubmit (with edited content), delete, bulk actions. A
    /// running host is asked through its control API.
    #[command(subcommand)]
    Queue(queue::QueueCommand),
    /// The exception log.
    #[command(subcommand)]
    Exceptions(queue::ExceptionsCommand),
    /// The document history of a message by its MessageId (queued or
    /// processed): every version kept, with stage and plugin hashes.
    History(queue::HistoryArgs),
    /// The batch jobs: list, history, hold, release, run-now, cancel (a
    /// running host is asked through its control API).
    #[command(subcommand)]
    Job(job::JobCommand),
    /// The audit log: every operator action (who, what, which messages,
    /// when), newest first.
    Audit(queue::AuditArgs),
}

/// Set up tracing on stderr from `--log-level` or `RUST_LOG` (default: info).
pub fn init_logging(args: &LogArgs) {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let given = args.log_level.clone().or_else(|| {
        std::env::var("RUST_LOG")
            .ok()
            .filter(|f| !f.trim().is_empty())
    });
    let filter = match given.as_deref().map(with_base_level) {
        Some(f) => EnvFilter::try_new(&f).unwrap_or_else(|e| {
            eprintln!("warning: invalid log filter {f:?} ({e}); using info");
            EnvFilter::new("info")
        }),
        None => EnvFilter::new("info"),
    };
    // Colours only on a terminal, and never when NO_COLOR is set
    // (https://no-color.org).
    let colour = std::io::stderr().is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(colour)
        .with_writer(std::io::stderr);
    let _ = match args.log_format {
        LogFormat::Text => builder.try_init(),
        // The thread names which worker did what (`ferry-worker-PORT-N`).
        LogFormat::Json => builder.json().with_thread_names(true).try_init(),
    };
}

/// A filter that only names targets (`ferry::plugin=debug`) keeps the
/// default level (info) for everything else, so the host's own warnings
/// about what the plugin did are not hidden.
fn with_base_level(filter: &str) -> String {
    let levels = ["off", "error", "warn", "info", "debug", "trace"];
    let has_base = filter
        .split(',')
        .any(|d| levels.contains(&d.trim().to_ascii_lowercase().as_str()));
    if has_base || filter.trim().is_empty() {
        filter.to_string()
    } else {
        format!("info,{filter}")
    }
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Plugin(c) => plugin::run(c),
        Command::Run(a) => run::run(a),
        Command::Check(a) => run::check(a),
        Command::Queue(c) => queue::run(c),
        Command::Exceptions(c) => queue::run_exceptions(c),
        Command::History(a) => queue::run_history(a),
        Command::Job(c) => job::run(c),
        Command::Audit(a) => queue::run_audit(a),
    }
}
