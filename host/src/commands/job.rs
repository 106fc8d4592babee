//! `ferry job ...`: the batch jobs on the command line — list, history, and
//! the operator's hold, release, run-now and cancel.
//!
//! On a **stopped host** these open the gateway queue directly (like
//! `ferry queue`); the changes take effect when `ferry run` starts.
//!
//! While **`ferry run` is running** it holds the queue locked; the command
//! then hands the request to the running host instead, through a request
//! file in `DATA_DIR/requests/`, and prints the host's reply
//! ([`crate::scheduler::requests`]): hold, release, run-now and cancel are
//! applied by its scheduler at its next step (at once when it is idle,
//! before the next task while an occurrence runs), list and history are
//! read from its job state. A refusal (no such job, an action the job's
//! status does not allow) fails the command. With no reply within
//! [`requests::TIMEOUT`] the command withdraws the request (or, if the host
//! has already taken it, says that it is applied at the scheduler's next
//! step) and fails.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::{Config, JobConfig};
use crate::queue::{QueueError, RedbQueue};
use crate::scheduler::requests::{self, Ask};
use crate::scheduler::state::{self, StateStore};
use crate::scheduler::{Action, Clock, JobState, QueueStore, SystemClock, report};

use super::run::load_for_host;

/// Batch job commands.
#[derive(Debug, Subcommand)]
pub enum JobCommand {
    /// List the jobs: status, next run, occurrences, last result, schedule.
    List {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
    },
    /// Show a job's occurrences: start, end, status, each task's status and
    /// counts.
    History {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// Only the last N occurrences.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
        /// The job.
        name: String,
    },
    /// Withhold a job: it is not run until released.
    Hold {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The job.
        name: String,
    },
    /// Make a held, canceled, ended or failed job Waiting again.
    Release {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The job.
        name: String,
    },
    /// Make the job's next occurrence due at once.
    RunNow {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The job.
        name: String,
    },
    /// Cancel a job: it is not run again until released.
    Cancel {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The job.
        name: String,
    },
}

/// The data directory: a stopped host's (the queue opened here), or a
/// running host's (it holds the queue).
enum Host {
    Stopped(Config, QueueStore),
    /// Running on this data directory.
    Running(PathBuf),
}

fn open(config: &Path) -> anyhow::Result<Host> {
    // A running host is asked even when the file on disk no longer loads
    // (it refused the file and keeps the configuration in force).
    let (cfg, data_dir) = load_for_host(config)?;
    let Some(cfg) = cfg else {
        return Ok(Host::Running(data_dir));
    };
    match RedbQueue::open(&data_dir) {
        Ok(queue) => Ok(Host::Stopped(cfg, QueueStore(Arc::new(queue)))),
        Err(QueueError::InUse { .. }) => Ok(Host::Running(data_dir)),
        Err(e) => Err(e).context("cannot open the gateway queue"),
    }
}

fn find<'c>(cfg: &'c Config, name: &str) -> anyhow::Result<&'c JobConfig> {
    cfg.jobs.get(name).ok_or_else(|| {
        state::SchedulerError::unknown_job(name, cfg.jobs.keys().map(String::as_str)).into()
    })
}

/// Hand a request to the host running on `cfg`'s data directory and print
/// its answer; a refusal is an error.
fn ask_host(
    data_dir: &Path,
    action: Ask,
    job: Option<&str>,
    last: Option<usize>,
) -> anyhow::Result<ExitCode> {
    tracing::debug!(data_dir = %data_dir.display(), "the data directory is in use by a running host; asking it");
    let reply = requests::submit(data_dir, action, job, last, requests::TIMEOUT)?;
    if !reply.ok {
        anyhow::bail!("{} (refused by the running host)", reply.text);
    }
    print!("{}", reply.text);
    if !reply.text.ends_with('\n') {
        println!();
    }
    Ok(ExitCode::SUCCESS)
}

/// Run a job command.
pub fn run(cmd: JobCommand) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now_ms();
    match cmd {
        JobCommand::List { config } => match open(&config)? {
            Host::Running(dir) => ask_host(&dir, Ask::List, None, None),
            Host::Stopped(cfg, store) => {
                print!("{}", report::list(cfg.jobs.values(), &store, now, false)?);
                Ok(ExitCode::SUCCESS)
            }
        },
        JobCommand::History { config, last, name } => match open(&config)? {
            Host::Running(dir) => ask_host(&dir, Ask::History, Some(&name), last),
            Host::Stopped(cfg, store) => {
                let job = find(&cfg, &name)?;
                print!("{}", report::history(job, &store, last)?);
                Ok(ExitCode::SUCCESS)
            }
        },
        JobCommand::Hold { config, name } => act(&config, &name, Action::Hold, now),
        JobCommand::Release { config, name } => act(&config, &name, Action::Release, now),
        JobCommand::RunNow { config, name } => act(&config, &name, Action::RunNow, now),
        JobCommand::Cancel { config, name } => act(&config, &name, Action::Cancel, now),
    }
}

/// Apply an operator action: through the running host, or to a stopped
/// host's job state.
fn act(config: &Path, name: &str, action: Action, now: u64) -> anyhow::Result<ExitCode> {
    let (cfg, store) = match open(config)? {
        Host::Running(dir) => return ask_host(&dir, action.into(), Some(name), None),
        Host::Stopped(cfg, store) => (cfg, store),
    };
    let job = find(&cfg, name)?;
    // As at the next start: an occurrence a crash left Executing is Error.
    if let Some(r) = state::recover(&store, name, now)?
        && let Some(o) = r.occurrence
    {
        println!(
            "occurrence #{} was interrupted by a host stop; it is now recorded as Error",
            o.seq
        );
    }
    let mut st = state::load_state(&store, name)?.unwrap_or_else(|| JobState::new(now));
    state::apply(name, &mut st, action)?;
    state::save(&store as &dyn StateStore, name, &st, None, vec![])?;
    println!("{}", report::action_text(job, &st, action, now, false));
    Ok(ExitCode::SUCCESS)
}
