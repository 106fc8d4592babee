//! The text of `ferry job list`, `ferry job history` and of an operator
//! action's result, shared by the command (on a stopped host's data
//! directory) and the running host (which answers the same commands through
//! [`super::requests`]).
//!
//! `running` says whether the state is the running host's own: then an
//! Executing job is executing, and a job that is due runs now; on a stopped
//! host's data directory an Executing job was interrupted, and a due job
//! runs when the host starts.

use std::fmt::Write as _;

use super::state::{self, StateStore};
use super::{
    Action, Due, JobState, JobStatus, Occurrence, SchedulerError, Start, TaskStatus, Trigger, due,
    format_duration_ms, format_interval, format_rfc3339,
};
use crate::config::JobConfig;

/// The status as shown: a job left Executing by a stopped host says so.
pub fn status_text(st: &JobState, running: bool) -> String {
    match st.status {
        JobStatus::Executing | JobStatus::Canceling if !running => {
            format!("{} (interrupted)", st.status)
        }
        s => s.to_string(),
    }
}

/// When the job runs next, in words.
pub fn next_text(job: &JobConfig, st: Option<&JobState>, now: u64, running: bool) -> String {
    let at_start = if running {
        "now"
    } else {
        "when the host starts"
    };
    let Some(st) = st else {
        return match job.recurrence.start {
            Start::Now => at_start.into(),
            Start::At(t) if t <= now => at_start.into(),
            Start::At(t) => format_rfc3339(t),
        };
    };
    if st.executing.is_some() {
        return if running {
            "- (executing)".into()
        } else {
            "when the host starts (after recovery)".into()
        };
    }
    match due(job, st, None, now) {
        Due::Now {
            trigger: Trigger::RunNow,
            ..
        } => "at once (run-now)".into(),
        Due::Now { .. } => format!("{at_start} (due)"),
        Due::At(t) => format_rfc3339(t),
        Due::Over => "- (recurrence over)".into(),
        Due::Idle => "-".into(),
    }
}

/// The recurrence in words, and the event-driven mode if the job has it.
pub fn schedule_text(job: &JobConfig) -> String {
    let mut s = job.recurrence.describe();
    if let Some(ms) = job.on_input {
        s.push_str(&format!(
            ", and on input (min interval {})",
            format_interval(ms)
        ));
    }
    s
}

/// One occurrence on one line (the last occurrence in `ferry job list`).
pub fn occurrence_line(o: &Occurrence) -> String {
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

/// `ferry job list`: a table of the jobs, one line each, and a count.
pub fn list<'j>(
    jobs: impl ExactSizeIterator<Item = &'j JobConfig>,
    store: &dyn StateStore,
    now: u64,
    running: bool,
) -> Result<String, SchedulerError> {
    let mut out = String::new();
    let count = jobs.len();
    let _ = writeln!(
        out,
        "{:<20} {:<24} {:<32} {:>6}  {:<60} SCHEDULE",
        "JOB", "STATUS", "NEXT RUN", "RUNS", "LAST OCCURRENCE"
    );
    for job in jobs {
        let st = state::load_state(store, &job.name)?;
        let last = match &st {
            Some(s) if s.last_seq > 0 => {
                state::load_occurrence(store, &job.name, s.last_seq)?.map(|o| occurrence_line(&o))
            }
            _ => None,
        };
        let _ = writeln!(
            out,
            "{:<20} {:<24} {:<32} {:>6}  {:<60} {}",
            job.name,
            st.as_ref()
                .map_or("Waiting (new)".to_string(), |s| status_text(s, running)),
            next_text(job, st.as_ref(), now, running),
            st.as_ref().map_or(0, |s| s.occurrences),
            last.unwrap_or_else(|| "-".into()),
            schedule_text(job)
        );
    }
    let _ = writeln!(out, "{count} job(s)");
    Ok(out)
}

/// `ferry job history`: each occurrence (the last `last` only, if given),
/// each task's status and counts, and a count.
pub fn history(
    job: &JobConfig,
    store: &dyn StateStore,
    last: Option<usize>,
) -> Result<String, SchedulerError> {
    let mut history = state::load_history(store, &job.name)?;
    if let Some(n) = last {
        let skip = history.len().saturating_sub(n);
        history.drain(..skip);
    }
    let mut out = String::new();
    let width = job.tasks.iter().map(|t| t.name.len()).max().unwrap_or(4);
    for o in &history {
        let end = o.end_ms.map_or("-".to_string(), format_rfc3339);
        let took = o
            .end_ms
            .map(|e| format!(" ({})", format_duration_ms(e.saturating_sub(o.start_ms))))
            .unwrap_or_default();
        let _ = writeln!(
            out,
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
            if t.ignore_failure && t.status == TaskStatus::Error {
                line.push_str(" (failure ignored)");
            }
            if let Some(e) = &t.error {
                line.push_str(&format!(" error: {e}"));
            }
            let _ = writeln!(out, "{}", line.trim_end());
        }
        if let Some(n) = &o.note {
            let _ = writeln!(out, "    note: {n}");
        }
    }
    let _ = writeln!(out, "{} occurrence(s)", history.len());
    Ok(out)
}

/// What an operator action did to a job (its new state `st`), in one line.
pub fn action_text(
    job: &JobConfig,
    st: &JobState,
    action: Action,
    now: u64,
    running: bool,
) -> String {
    let name = &job.name;
    match action {
        Action::RunNow if running => format!(
            "job {name} is {}; its next occurrence starts at once",
            st.status
        ),
        Action::RunNow => format!(
            "job {name} is {}; its next occurrence runs at once when `ferry run` starts",
            st.status
        ),
        Action::Cancel if st.status == JobStatus::Canceling => format!(
            "job {name} is Canceling: the task running now finishes, the rest of the occurrence \
             is canceled, then the job is Canceled"
        ),
        _ if st.status == JobStatus::Waiting => format!(
            "job {name} is Waiting; next run: {}",
            next_text(job, Some(st), now, running)
        ),
        _ => format!("job {name} is {}", st.status),
    }
}
