//! `ferry job ...`: the batch jobs on the command line — list, history, and
//! the operator's hold, release, run-now and cancel.
//!
//! Like `ferry queue`, these open the gateway queue directly, so they act on
//! a stopped host's data directory (a running `ferry run` holds it locked,
//! and the command says so). The changes take effect when `ferry run`
//! starts again.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::Subcommand;

use crate::config::{Config, JobConfig};
use crate::queue::RedbQueue;
use crate::scheduler::state::{self, StateStore};
use crate::scheduler::{
    Action, Clock, Due, JobState, JobStatus, Occurrence, QueueStore, Start, SystemClock, due,
    format_duration_ms, format_rfc3339,
};

use super::run::load_config;

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

fn open(config: &Path) -> anyhow::Result<(Config, QueueStore)> {
    let cfg = load_config(config)?;
    let queue = RedbQueue::open(&cfg.data_dir).context(
        "cannot open the gateway queue (the job commands act on a stopped host: stop `ferry run` \
         first)",
    )?;
    Ok((cfg, QueueStore(Arc::new(queue))))
}

fn find<'c>(cfg: &'c Config, name: &str) -> anyhow::Result<&'c JobConfig> {
    cfg.jobs.get(name).ok_or_else(|| {
        state::SchedulerError::UnknownJob {
            job: name.to_string(),
            known: cfg.jobs.keys().cloned().collect::<Vec<_>>().join(", "),
        }
        .into()
    })
}

/// The status as shown: a job left Executing by a stopped host says so.
fn status_text(st: &JobState) -> String {
    match st.status {
        JobStatus::Executing | JobStatus::Canceling => {
            format!("{} (interrupted)", st.status)
        }
        s => s.to_string(),
    }
}

/// When the job runs next, in words.
fn next_text(job: &JobConfig, st: Option<&JobState>, now: u64) -> String {
    let Some(st) = st else {
        return match job.recurrence.start {
            Start::Now => "when the host starts".into(),
            Start::At(t) if t <= now => "when the host starts".into(),
            Start::At(t) => format_rfc3339(t),
        };
    };
    if st.executing.is_some() {
        return "when the host starts (after recovery)".into();
    }
    match due(job, st, None, now) {
        Due::Now {
            trigger: crate::scheduler::Trigger::RunNow,
            ..
        } => "at once (run-now)".into(),
        Due::Now { .. } => "when the host starts (due)".into(),
        Due::At(t) => format_rfc3339(t),
        Due::Over => "- (recurrence over)".into(),
        Due::Idle => "-".into(),
    }
}

/// The recurrence in words, and the event-driven mode if the job has it.
fn schedule_text(job: &JobConfig) -> String {
    let mut s = job.recurrence.describe();
    if let Some(ms) = job.on_input {
        s.push_str(&format!(
            ", and on input (min interval {})",
            crate::scheduler::format_interval(ms)
        ));
    }
    s
}

fn occurrence_line(o: &Occurrence) -> String {
    let c = o.counts();
    let took = o
        .end_ms
        .map(|e| format!(", {}", format_duration_ms(e.saturating_sub(o.start_ms))))
        .unwrap_or_default();
    format!(
        "#{} {} at {}{took}, done {} failed {}",
        o.seq,
        o.status,
        format_rfc3339(o.start_ms),
        c.done,
        c.failed
    )
}

/// Run a job command.
pub fn run(cmd: JobCommand) -> anyhow::Result<ExitCode> {
    let now = SystemClock.now_ms();
    match cmd {
        JobCommand::List { config } => {
            let (cfg, store) = open(&config)?;
            println!(
                "{:<20} {:<24} {:<32} {:>6}  {:<60} SCHEDULE",
                "JOB", "STATUS", "NEXT RUN", "RUNS", "LAST OCCURRENCE"
            );
            for job in cfg.jobs.values() {
                let st = state::load_state(&store, &job.name)?;
                let last = match &st {
                    Some(s) if s.last_seq > 0 => {
                        state::load_occurrence(&store, &job.name, s.last_seq)?
                            .map(|o| occurrence_line(&o))
                    }
                    _ => None,
                };
                println!(
                    "{:<20} {:<24} {:<32} {:>6}  {:<60} {}",
                    job.name,
                    st.as_ref().map_or("Waiting (new)".to_string(), status_text),
                    next_text(job, st.as_ref(), now),
                    st.as_ref().map_or(0, |s| s.occurrences),
                    last.unwrap_or_else(|| "-".into()),
                    schedule_text(job)
                );
            }
            println!("{} job(s)", cfg.jobs.len());
        }
        JobCommand::History { config, last, name } => {
            let (cfg, store) = open(&config)?;
            let job = find(&cfg, &name)?;
            let mut history = state::load_history(&store, &job.name)?;
            if let Some(n) = last {
                let skip = history.len().saturating_sub(n);
                history.drain(..skip);
            }
            let width = job.tasks.iter().map(|t| t.name.len()).max().unwrap_or(4);
            for o in &history {
                let end = o.end_ms.map_or("-".to_string(), format_rfc3339);
                let took = o
                    .end_ms
                    .map(|e| format!(" ({})", format_duration_ms(e.saturating_sub(o.start_ms))))
                    .unwrap_or_default();
                println!(
                    "#{} {}  start {}  end {}{took}  [{}, scheduled {}]",
                    o.seq,
                    o.status,
                    format_rfc3339(o.start_ms),
                    end,
                    o.trigger,
                    format_rfc3339(o.scheduled_ms)
                );
                for t in &o.tasks {
                    let mut line = format!(
                        "    {:<width$}  {:<20} {:<10}",
                        t.name,
                        t.service.name(),
                        t.status.to_string()
                    );
                    if t.attempts > 0 {
                        line.push_str(&format!(
                            " done {} failed {}",
                            t.counts.done, t.counts.failed
                        ));
                    }
                    if t.attempts > 1 {
                        line.push_str(&format!(" attempts {}", t.attempts));
                    }
                    if t.ignore_failure && t.status == crate::scheduler::TaskStatus::Error {
                        line.push_str(" (failure ignored)");
                    }
                    if let Some(e) = &t.error {
                        line.push_str(&format!(" error: {e}"));
                    }
                    println!("{}", line.trim_end());
                }
                if let Some(n) = &o.note {
                    println!("    note: {n}");
                }
            }
            println!("{} occurrence(s)", history.len());
        }
        JobCommand::Hold { config, name } => return act(&config, &name, Action::Hold, now),
        JobCommand::Release { config, name } => return act(&config, &name, Action::Release, now),
        JobCommand::RunNow { config, name } => return act(&config, &name, Action::RunNow, now),
        JobCommand::Cancel { config, name } => return act(&config, &name, Action::Cancel, now),
    }
    Ok(ExitCode::SUCCESS)
}

/// Apply an operator action to a stopped host's job state.
fn act(config: &Path, name: &str, action: Action, now: u64) -> anyhow::Result<ExitCode> {
    let (cfg, store) = open(config)?;
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
    let next = next_text(job, Some(&st), now);
    match action {
        Action::RunNow => println!(
            "job {name} is {}; its next occurrence runs at once when `ferry run` starts",
            st.status
        ),
        _ if st.status == JobStatus::Waiting => {
            println!("job {name} is Waiting; next run: {next}")
        }
        _ => println!("job {name} is {}", st.status),
    }
    Ok(ExitCode::SUCCESS)
}
