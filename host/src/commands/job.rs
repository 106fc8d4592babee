//! `ferry job ...`: the batch jobs on the command line — list, history, and
//! the operator's hold, release, run-now and cancel.
//!
//! On a **stopped host** these open the gateway queue directly (like
//! `ferry queue`); the changes take effect when `ferry run` starts.
//!
//! While **`ferry run` is running** it holds the queue locked; the command
//! then asks the running host through its control API
//! (`control::client`): hold, release, run-now and cancel are applied by
//! its scheduler at its next step (at once when it is idle, before the next
//! task while an occurrence runs), list and history are read from its job
//! state. A refusal (no such job, an action the job's status does not
//! allow) fails the command. When the scheduler does not answer within
//! `control::ops::JOB_TIMEOUT` (a long task is running), the command says
//! that the request is applied at the scheduler's next step, and fails.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

use crate::control::ops::Actor;
use crate::scheduler::Action;

use super::queue::target;

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

fn print(text: &str) {
    print!("{text}");
    if !text.ends_with('\n') {
        println!();
    }
}

/// Run a job command.
pub fn run(cmd: JobCommand) -> anyhow::Result<ExitCode> {
    let (config, name, action) = match cmd {
        JobCommand::List { config } => {
            print(&target(&config)?.manager().jobs()?);
            return Ok(ExitCode::SUCCESS);
        }
        JobCommand::History { config, last, name } => {
            print(&target(&config)?.manager().job_history(&name, last)?);
            return Ok(ExitCode::SUCCESS);
        }
        JobCommand::Hold { config, name } => (config, name, Action::Hold),
        JobCommand::Release { config, name } => (config, name, Action::Release),
        JobCommand::RunNow { config, name } => (config, name, Action::RunNow),
        JobCommand::Cancel { config, name } => (config, name, Action::Cancel),
    };
    let t = target(&config)?;
    let reply = t
        .manager()
        .job_action(&name, action, &Actor::local_user())
        .map_err(|e| {
            if t.is_remote() {
                anyhow::anyhow!("{e} (refused by the running host)")
            } else {
                e.into()
            }
        })?;
    print(&reply.text);
    Ok(ExitCode::SUCCESS)
}
