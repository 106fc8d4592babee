//! The batch scheduler (AX batch framework, for Ferry's jobs): each job runs
//! its tasks — the four AIF services — in order at each occurrence, every
//! `every`. An occurrence's task failure (e.g. the queue could not be
//! written) is recorded and the next tasks still run (their predecessor
//! condition is "Ended or error", AIF's default).

use std::time::{Duration, Instant};

use crate::config::{JobConfig, TaskKind};
use crate::services::{Gateway, Sandboxes, TaskCounts};

/// What one task of an occurrence did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskReport {
    /// The service it ran.
    pub kind: TaskKind,
    /// Its counts, or why it ended in Error.
    pub outcome: Result<TaskCounts, String>,
}

/// What one occurrence of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceReport {
    /// The job.
    pub job: String,
    /// Its tasks, in the order run.
    pub tasks: Vec<TaskReport>,
}

impl OccurrenceReport {
    /// True when every task Ended (none in Error).
    pub fn ended(&self) -> bool {
        self.tasks.iter().all(|t| t.outcome.is_ok())
    }
}

/// Run one occurrence of `job`.
pub fn run_occurrence(
    gw: &Gateway,
    job: &JobConfig,
    sandboxes: &mut Sandboxes,
    stop: &dyn Fn() -> bool,
) -> OccurrenceReport {
    let mut tasks = Vec::new();
    for task in &job.tasks {
        if stop() {
            break;
        }
        let outcome = gw
            .run_task(task.kind, &task.ports, sandboxes, stop)
            .map_err(|e| e.to_string());
        match &outcome {
            Ok(c) if c.done + c.failed > 0 => tracing::info!(
                job = %job.name, task = task.kind.name(), done = c.done, failed = c.failed,
                "task ended"
            ),
            Ok(_) => tracing::debug!(job = %job.name, task = task.kind.name(), "task ended"),
            Err(e) => {
                tracing::error!(job = %job.name, task = task.kind.name(), "task ended in error: {e}")
            }
        }
        tasks.push(TaskReport {
            kind: task.kind,
            outcome,
        });
    }
    OccurrenceReport {
        job: job.name.clone(),
        tasks,
    }
}

/// Run every job at its recurrence until `stop` says so.
pub fn run_forever(gw: &Gateway, sandboxes: &mut Sandboxes, stop: &dyn Fn() -> bool) {
    let jobs: Vec<&JobConfig> = gw.config.jobs.values().collect();
    let mut next: Vec<Instant> = jobs.iter().map(|_| Instant::now()).collect();
    while !stop() {
        let now = Instant::now();
        for (job, due) in jobs.iter().zip(next.iter_mut()) {
            if *due <= now && !stop() {
                run_occurrence(gw, job, sandboxes, stop);
                *due = now + job.every;
            }
        }
        let wait = next.iter().min().map_or(Duration::from_millis(100), |d| {
            d.saturating_duration_since(Instant::now())
        });
        // Sleep in short steps so a stop request is seen quickly.
        let until = Instant::now() + wait;
        while Instant::now() < until && !stop() {
            std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
        }
    }
}
