//! Task conditions, as in AX's batch tasks: a task waits for other tasks of
//! the same job to end with a given status (Ended, Error, Ended or error),
//! combined as All or Any. A task whose conditions can no longer be met is
//! marked Didn't run. Pure functions of the task statuses.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::config::{AfterStatus, Combine, TaskConfig};

/// The status of a task within one occurrence (AX's batch task statuses).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    /// Waiting for its conditions.
    Ready,
    /// Running.
    Executing,
    /// Finished without error.
    Ended,
    /// Failed (after its retries).
    Error,
    /// Its conditions could no longer be met, so it was not run.
    DidntRun,
    /// Not run because the occurrence was canceled (or the host stopped).
    Canceled,
}

impl TaskStatus {
    /// Whether the task is done for this occurrence.
    pub fn is_final(self) -> bool {
        !matches!(self, TaskStatus::Ready | TaskStatus::Executing)
    }
}

impl fmt::Display for TaskStatus {
    /// AX's words.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TaskStatus::Ready => "Ready",
            TaskStatus::Executing => "Executing",
            TaskStatus::Ended => "Ended",
            TaskStatus::Error => "Error",
            TaskStatus::DidntRun => "Didn't run",
            TaskStatus::Canceled => "Canceled",
        })
    }
}

/// Where a task's conditions stand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    /// Met: the task may run.
    Met,
    /// Not decided yet: some task it waits for has not finished.
    Pending,
    /// Can never be met any more: the task will not run.
    Impossible,
}

/// The status a task shows to the tasks that wait for it: an Error of a task
/// that ignores its failures counts as Ended.
pub fn effective(task: &TaskConfig, status: TaskStatus) -> TaskStatus {
    if status == TaskStatus::Error && task.ignore_failure {
        TaskStatus::Ended
    } else {
        status
    }
}

/// Whether one condition is met by the other task's (effective) status.
fn condition(wanted: AfterStatus, other: TaskStatus) -> Readiness {
    if !other.is_final() {
        return Readiness::Pending;
    }
    let met = match wanted {
        AfterStatus::Ended => other == TaskStatus::Ended,
        AfterStatus::Error => other == TaskStatus::Error,
        AfterStatus::EndedOrError => matches!(other, TaskStatus::Ended | TaskStatus::Error),
    };
    if met {
        Readiness::Met
    } else {
        Readiness::Impossible
    }
}

/// Where the conditions of `tasks[i]` stand, given every task's status.
/// A task without conditions is always Met. A condition naming an unknown
/// task (the configuration rejects that) can never be met.
pub fn readiness(tasks: &[TaskConfig], statuses: &[TaskStatus], i: usize) -> Readiness {
    let task = &tasks[i];
    if task.after.is_empty() {
        return Readiness::Met;
    }
    let each = task
        .after
        .iter()
        .map(|a| match tasks.iter().position(|t| t.name == a.task) {
            Some(j) => condition(a.status, effective(&tasks[j], statuses[j])),
            None => Readiness::Impossible,
        });
    let (mut met, mut pending, mut impossible) = (0, 0, 0);
    for r in each {
        match r {
            Readiness::Met => met += 1,
            Readiness::Pending => pending += 1,
            Readiness::Impossible => impossible += 1,
        }
    }
    match task.condition {
        Combine::All if impossible > 0 => Readiness::Impossible,
        Combine::All if pending > 0 => Readiness::Pending,
        Combine::All => Readiness::Met,
        Combine::Any if met > 0 => Readiness::Met,
        Combine::Any if pending > 0 => Readiness::Pending,
        Combine::Any => Readiness::Impossible,
    }
}

/// The next task to run: marks every Ready task whose conditions can no
/// longer be met Didn't run, then returns the first Ready task (in the
/// job's order) whose conditions are met. None when the occurrence is over;
/// any task still Ready then (only possible with a cycle, which the
/// configuration rejects) is marked Didn't run.
pub fn next_task(tasks: &[TaskConfig], statuses: &mut [TaskStatus]) -> Option<usize> {
    loop {
        let mut changed = false;
        for i in 0..tasks.len() {
            if statuses[i] == TaskStatus::Ready
                && readiness(tasks, statuses, i) == Readiness::Impossible
            {
                statuses[i] = TaskStatus::DidntRun;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let next = (0..tasks.len()).find(|&i| {
        statuses[i] == TaskStatus::Ready && readiness(tasks, statuses, i) == Readiness::Met
    });
    if next.is_none() && !statuses.contains(&TaskStatus::Executing) {
        for s in statuses.iter_mut() {
            if *s == TaskStatus::Ready {
                *s = TaskStatus::DidntRun;
            }
        }
    }
    next
}

/// The tasks that run at once, as the stages of one flow, starting with
/// task `first` (about to run): it and the tasks right after it in the
/// job's order that are Ready, run services further along AIF's flow
/// (receive → inbound processing → outbound processing → send), and wait
/// for nothing but the task before them ending, however it ends (no
/// `after`, or `after = []`); the task before must not be one that is run
/// again on an Error. Run one after another, such tasks do the same work;
/// run at once, each takes up what the one before commits and ends after
/// it (see `services::Gateway::run_stages`). Just `[first]` when no task
/// follows that way.
pub fn flow_stages(tasks: &[TaskConfig], statuses: &[TaskStatus], first: usize) -> Vec<usize> {
    let mut stages = vec![first];
    for j in first + 1..tasks.len() {
        let prev = &tasks[j - 1];
        let t = &tasks[j];
        let waits_for_prev_only = match &t.after[..] {
            [] => true,
            [only] => only.task == prev.name && only.status == AfterStatus::EndedOrError,
            _ => false,
        };
        if statuses[j] != TaskStatus::Ready
            || !waits_for_prev_only
            || t.kind <= prev.kind
            || prev.max_retries > 0
        {
            break;
        }
        stages.push(j);
    }
    stages
}
