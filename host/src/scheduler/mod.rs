//! The batch scheduler (the AX batch framework, for Ferry's jobs).
//!
//! A job is a set of tasks, each running one of the four AIF services
//! (optionally on some ports only). At each occurrence of its recurrence
//! ([`recurrence`]), a Waiting job runs its tasks one at a time: the first
//! task (in the job's order) whose conditions are met ([`conditions`]) runs
//! next; a task whose conditions can no longer be met is marked Didn't run.
//! A task that ends in Error is run again up to its `max_retries`; with
//! `ignore_failure` its Error counts as Ended for the tasks after it.
//!
//! A job with `on_input` also runs when new input arrives on the inbound
//! ports its receive tasks read: the input thread ([`crate::input`]) raises
//! [`Signals`], which wake the scheduler's nap, and the job is due at once
//! (trigger `input`), but no sooner than its `min_interval` after its
//! previous occurrence ended ([`due`]).
//!
//! An operator's hold, release, run-now and cancel reach a running
//! scheduler as requests ([`Controls`]), applied before each task and at
//! each tick; `ferry job` hands them to a running host through its control
//! API (`crate::control`).
//!
//! Job state and every occurrence's history are kept in the gateway queue's
//! state area ([`state`]); after a crash the occurrence that was executing
//! is recorded as Error and the job goes on with its next occurrence.
//!
//! Time comes from a [`Clock`] and tasks are run by a [`TaskRunner`], so the
//! whole scheduler is tested without a clock or WebAssembly.

pub mod conditions;
pub mod report;
pub mod state;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use crate::config::recurrence::{End, Recurrence, Start};
pub use crate::time::{
    Clock, ManualClock, SystemClock, format_duration_ms, format_interval, format_rfc3339,
    parse_rfc3339,
};
pub use conditions::TaskStatus;
pub use state::{
    Action, JobState, JobStatus, MemStore, Occurrence, QueueStore, SchedulerError, StateStore,
    TaskRecord, Trigger,
};

use crate::config::{JobConfig, TaskConfig};
pub use crate::input::Signals;
use crate::services::{Gateway, Sandboxes, TaskCounts};

/// Runs one task (one service over its ports) and says what it did, or why
/// it ended in Error.
pub trait TaskRunner {
    /// Run `task` once.
    fn run(&mut self, task: &TaskConfig) -> Result<TaskCounts, String>;

    /// Whether the runner runs tasks that follow each other along AIF's
    /// flow at once ([`TaskRunner::run_stages`]).
    fn stages(&self) -> bool {
        false
    }

    /// Run `tasks` — services in AIF's flow order, none waiting for
    /// another ([`conditions::flow_stages`]) — once each, as stages of one
    /// flow, until `cancel` says the occurrence is being canceled: one
    /// result per task, in order. By default one after another.
    fn run_stages(
        &mut self,
        tasks: &[&TaskConfig],
        _cancel: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Result<TaskCounts, String>> {
        tasks.iter().map(|t| self.run(t)).collect()
    }
}

/// The real [`TaskRunner`]: the gateway's services.
pub struct GatewayRunner<'a> {
    /// The gateway.
    pub gw: &'a Gateway,
    /// This worker's plugin instances.
    pub sandboxes: &'a mut Sandboxes,
    /// Whether the host was asked to stop.
    pub stop: &'a (dyn Fn() -> bool + Sync),
}

impl TaskRunner for GatewayRunner<'_> {
    fn run(&mut self, task: &TaskConfig) -> Result<TaskCounts, String> {
        self.gw
            .run_task(task.kind, &task.ports, self.sandboxes, self.stop)
            .map_err(|e| e.to_string())
    }

    fn stages(&self) -> bool {
        true
    }

    fn run_stages(
        &mut self,
        tasks: &[&TaskConfig],
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Result<TaskCounts, String>> {
        let stages: Vec<_> = tasks.iter().map(|t| (t.kind, &t.ports[..])).collect();
        let stop = self.stop;
        let stop = || stop() || cancel();
        self.gw
            .run_stages(&stages, self.sandboxes, &stop)
            .into_iter()
            .map(|r| r.map_err(|e| e.to_string()))
            .collect()
    }
}

/// Record what a task's last attempt did in its record; its new status.
fn record(
    job: &str,
    task: &TaskConfig,
    rec: &mut TaskRecord,
    outcome: Result<TaskCounts, String>,
) -> TaskStatus {
    match outcome {
        Ok(c) => {
            rec.counts = c;
            rec.error = None;
            if c.done + c.failed > 0 {
                tracing::info!(job = %job, task = %task.name, done = c.done, failed = c.failed, "task ended");
            } else {
                tracing::debug!(job = %job, task = %task.name, "task ended");
            }
            TaskStatus::Ended
        }
        Err(e) => {
            if task.ignore_failure {
                tracing::warn!(job = %job, task = %task.name, "task ended in error (ignored): {e}");
            } else {
                tracing::error!(job = %job, task = %task.name, "task ended in error: {e}");
            }
            rec.error = Some(e);
            TaskStatus::Error
        }
    }
}

/// What one occurrence of a job did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OccurrenceReport {
    /// The job.
    pub job: String,
    /// Its history record.
    pub occurrence: Occurrence,
}

impl OccurrenceReport {
    /// True when the occurrence Ended: no task in Error (except those that
    /// ignore failures) and none canceled.
    pub fn ended(&self) -> bool {
        self.occurrence.status == JobStatus::Ended
    }
}

/// What became of an operator request: the job's state after it, or why
/// it was refused (the text of the error).
pub type Outcome = Result<JobState, String>;

/// Says what became of one operator request, once. Dropped unanswered (the
/// host stopping with the request not applied yet), it answers so.
pub struct Responder(Option<Box<dyn FnOnce(Outcome) + Send>>);

impl Responder {
    /// A responder calling `f` with the outcome.
    pub fn new(f: impl FnOnce(Outcome) + Send + 'static) -> Responder {
        Responder(Some(Box::new(f)))
    }

    /// Answer.
    pub fn send(mut self, outcome: Outcome) {
        if let Some(f) = self.0.take() {
            f(outcome);
        }
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f(Err(
                "the host stopped before it applied the request; nothing was changed".into(),
            ));
        }
    }
}

impl std::fmt::Debug for Responder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Responder")
    }
}

#[derive(Debug)]
struct Request {
    job: String,
    action: Action,
    reply: Option<Responder>,
}

/// The name raised on [`Signals`] to end the scheduler's nap for an operator
/// request. No job has it (a job name holds letters, digits, '-', '_' and
/// '.'), so it starts nothing.
const WAKE: &str = "*operator-request";

/// Operator requests for a running scheduler (hold, release, run-now,
/// cancel), applied at its next step: before each task and at each tick. A
/// request ends the scheduler's nap at once. Clones share the requests.
#[derive(Debug, Clone, Default)]
pub struct Controls {
    pending: Arc<Mutex<Vec<Request>>>,
    wake: Signals,
}

impl Controls {
    /// Ask for `action` on `job`.
    pub fn request(&self, job: &str, action: Action) {
        self.push(job, action, None);
    }

    /// Ask for `action` on `job`; `reply` is told the job's state after it,
    /// or why it was refused (no such job, or what [`state::apply`] says).
    pub fn request_with_reply(&self, job: &str, action: Action, reply: Responder) {
        self.push(job, action, Some(reply));
    }

    /// Drop the requests not applied yet, answering each that the host
    /// stopped before applying it (at the host's stop).
    pub fn abandon(&self) {
        drop(self.take());
    }

    fn push(&self, job: &str, action: Action, reply: Option<Responder>) {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Request {
                job: job.to_string(),
                action,
                reply,
            });
        self.wake.raise(WAKE);
    }

    fn take(&self) -> Vec<Request> {
        std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Whether a request to cancel `job` waits to be applied: the stages
    /// of its running occurrence stop at their next step, and the request
    /// is applied when they have.
    fn cancel_pending(&self, job: &str) -> bool {
        self.pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .any(|r| r.job == job && r.action == Action::Cancel)
    }
}

/// Whether, and when, a job's next occurrence is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// Now: for this reason, for this slot.
    Now {
        /// Its recurrence, run-now, or new input.
        trigger: Trigger,
        /// The slot (or the time it was asked for; for input, the time it
        /// became due).
        scheduled_ms: u64,
    },
    /// At this time.
    At(u64),
    /// Its recurrence is over.
    Over,
    /// Not Waiting: held, canceled, executing, or already over.
    Idle,
}

/// When `job` (in `state`) is next due, at `now` (a pure function).
/// `input` is when the scheduler saw a signal of new input for the job that
/// no occurrence has started on since (None: no input pending).
///
/// Run-now comes first, then the recurrence; pending input (for a job with
/// `on_input`) makes the job due at `min_interval` after its last
/// occurrence ended, or at once if that has passed — never before the
/// recurrence's start, nor once the recurrence is over.
pub fn due(job: &JobConfig, state: &JobState, input: Option<u64>, now: u64) -> Due {
    if state.status != JobStatus::Waiting {
        return Due::Idle;
    }
    if state.run_now {
        return Due::Now {
            trigger: Trigger::RunNow,
            scheduled_ms: now,
        };
    }
    let rec = &job.recurrence;
    let anchor = rec.anchor(state.first_seen_ms);
    match rec.next_due(anchor, state.occurrences, state.last_end_ms) {
        None => Due::Over,
        Some(t) if t <= now => {
            if rec.may_start(now) {
                Due::Now {
                    trigger: Trigger::Schedule,
                    scheduled_ms: t,
                }
            } else {
                Due::Over
            }
        }
        Some(t) => match (job.on_input, input) {
            (Some(min_interval), Some(seen)) => {
                let rested = state
                    .last_end_ms
                    .map_or(anchor, |end| end.saturating_add(min_interval));
                let at = seen.max(rested).max(anchor);
                if at <= now && rec.may_start(now) {
                    Due::Now {
                        trigger: Trigger::Input,
                        scheduled_ms: at,
                    }
                } else {
                    Due::At(at.min(t))
                }
            }
            _ => Due::At(t),
        },
    }
}

/// How an occurrence ended, from its tasks: Canceled if a task was
/// canceled, Error if a task that does not ignore failures ended in Error,
/// else Ended.
pub fn occurrence_result(tasks: &[TaskRecord]) -> JobStatus {
    if tasks.iter().any(|t| t.status == TaskStatus::Canceled) {
        JobStatus::Canceled
    } else if tasks
        .iter()
        .any(|t| t.status == TaskStatus::Error && !t.ignore_failure)
    {
        JobStatus::Error
    } else {
        JobStatus::Ended
    }
}

/// Longest sleep of [`Scheduler::run_forever`], so operator requests and a
/// stop are seen quickly.
const MAX_NAP: Duration = Duration::from_millis(250);

/// The batch scheduler: the configured jobs, their state, a clock and a
/// store.
pub struct Scheduler {
    jobs: Vec<JobConfig>,
    states: Vec<JobState>,
    clock: Arc<dyn Clock>,
    store: Arc<dyn StateStore>,
    controls: Controls,
    signals: Signals,
    /// Per job: when the scheduler saw input that no occurrence has
    /// started on since.
    input: Vec<Option<u64>>,
}

impl Scheduler {
    /// Load (or create) every job's state; record an occurrence left
    /// Executing by a crash as Error, so the job goes on with its next one;
    /// trim each history to the job's `keep_history`.
    pub fn new(
        jobs: Vec<JobConfig>,
        clock: Arc<dyn Clock>,
        store: Arc<dyn StateStore>,
    ) -> Result<Scheduler, SchedulerError> {
        let now = clock.now_ms();
        let mut states = Vec::with_capacity(jobs.len());
        for job in &jobs {
            if let Some(r) = state::recover(store.as_ref(), &job.name, now)? {
                let seq = r.occurrence.as_ref().map(|o| o.seq.to_string());
                tracing::warn!(
                    job = %job.name,
                    occurrence = seq.as_deref().unwrap_or("-"),
                    "the host stopped during an occurrence of this job; it is recorded as Error \
                     and the job goes on with its next occurrence"
                );
            }
            let st = match state::load_state(store.as_ref(), &job.name)? {
                Some(s) => s,
                None => {
                    let s = JobState::new(now);
                    state::save(store.as_ref(), &job.name, &s, None, vec![])?;
                    s
                }
            };
            let prefix = state::history_prefix(&job.name);
            let keep_from = st.last_seq.saturating_sub(job.keep_history as u64);
            let old: Vec<u64> = store
                .scan(&prefix)?
                .into_iter()
                .filter_map(|(k, _)| k[prefix.len()..].parse::<u64>().ok())
                .filter(|&seq| seq <= keep_from)
                .collect();
            if !old.is_empty() {
                state::save(store.as_ref(), &job.name, &st, None, old)?;
            }
            states.push(st);
        }
        let signals = Signals::default();
        Ok(Scheduler {
            input: vec![None; jobs.len()],
            jobs,
            states,
            clock,
            store,
            controls: Controls {
                pending: Arc::default(),
                wake: signals.clone(),
            },
            signals,
        })
    }

    /// A handle to send operator requests to this scheduler while it runs.
    pub fn controls(&self) -> Controls {
        self.controls.clone()
    }

    /// A handle to signal new input for a job (one with `on_input`; others
    /// ignore it) and wake the scheduler.
    pub fn signals(&self) -> Signals {
        self.signals.clone()
    }

    /// The jobs.
    pub fn jobs(&self) -> &[JobConfig] {
        &self.jobs
    }

    /// A job's current state.
    pub fn state(&self, job: &str) -> Option<&JobState> {
        let i = self.jobs.iter().position(|j| j.name == job)?;
        Some(&self.states[i])
    }

    /// The earliest time a Waiting job is due (None: no job is waiting for
    /// a time).
    pub fn next_due(&self) -> Option<u64> {
        let now = self.clock.now_ms();
        self.jobs
            .iter()
            .zip(&self.states)
            .zip(&self.input)
            .filter_map(|((j, s), input)| match due(j, s, *input, now) {
                Due::Now { .. } => Some(now),
                Due::At(t) => Some(t),
                Due::Over | Due::Idle => None,
            })
            .min()
    }

    fn save_state(&self, i: usize) -> Result<(), SchedulerError> {
        state::save(
            self.store.as_ref(),
            &self.jobs[i].name,
            &self.states[i],
            None,
            vec![],
        )
    }

    /// Apply the operator requests received so far, answering each. A
    /// failure to record a job's state is answered and returned (after the
    /// other requests are applied).
    fn apply_controls(&mut self) -> Result<(), SchedulerError> {
        let mut failed = None;
        for Request { job, action, reply } in self.controls.take() {
            let outcome = match self.jobs.iter().position(|j| j.name == job) {
                None => {
                    let e = SchedulerError::unknown_job(
                        &job,
                        self.jobs.iter().map(|j| j.name.as_str()),
                    );
                    tracing::warn!(job = %job, action = action.name(), "no such job; request refused");
                    Err(e.to_string())
                }
                Some(i) => match state::apply(&job, &mut self.states[i], action) {
                    Ok(()) => {
                        tracing::info!(job = %job, action = action.name(), status = %self.states[i].status, "job request applied");
                        match self.save_state(i) {
                            Ok(()) => Ok(self.states[i].clone()),
                            Err(e) => {
                                let text = format!(
                                    "job {job} is {} now, but its state could not be recorded                                      ({e}); it is recorded with the job's next change",
                                    self.states[i].status
                                );
                                failed.get_or_insert(e);
                                Err(text)
                            }
                        }
                    }
                    Err(e) => {
                        tracing::warn!("request refused: {e}");
                        Err(e.to_string())
                    }
                },
            };
            if let Some(r) = reply {
                r.send(outcome);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Take the input signals received so far: each job with `on_input`
    /// signalled has input pending from now (or from its earlier pending
    /// input).
    fn take_signals(&mut self) {
        let now = self.clock.now_ms();
        for name in self.signals.take() {
            if name == WAKE {
                continue;
            }
            match self.jobs.iter().position(|j| j.name == name) {
                Some(i) if self.jobs[i].on_input.is_some() => {
                    self.input[i].get_or_insert(now);
                }
                _ => tracing::debug!(job = %name, "input signal ignored: the job has no on_input"),
            }
        }
    }

    /// A Waiting job whose recurrence is over takes the result of its last
    /// occurrence as its status (Ended, or Error).
    fn settle(&mut self, i: usize) -> Result<(), SchedulerError> {
        let now = self.clock.now_ms();
        if due(&self.jobs[i], &self.states[i], self.input[i], now) == Due::Over {
            let st = &mut self.states[i];
            st.status = match st.last_result {
                Some(JobStatus::Error) => JobStatus::Error,
                _ => JobStatus::Ended,
            };
            tracing::info!(job = %self.jobs[i].name, status = %st.status, "the job's recurrence is over");
            self.save_state(i)?;
        }
        Ok(())
    }

    /// Run every Waiting job that is due now (one occurrence each), in the
    /// AIF order of their first task (see [`Scheduler::once_order`]).
    pub fn run_due<R: TaskRunner + ?Sized>(
        &mut self,
        runner: &mut R,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<OccurrenceReport>, SchedulerError> {
        let mut reports = Vec::new();
        for i in self.once_order() {
            if stop() {
                break;
            }
            self.apply_controls()?;
            self.take_signals();
            self.settle(i)?;
            let now = self.clock.now_ms();
            if let Due::Now {
                trigger,
                scheduled_ms,
            } = due(&self.jobs[i], &self.states[i], self.input[i], now)
            {
                reports.push(self.run_occurrence(i, trigger, scheduled_ms, runner, stop)?);
                self.settle(i)?;
            }
        }
        Ok(reports)
    }

    /// `ferry run --once`: one occurrence of every Waiting job now, due or
    /// not (a job whose recurrence is over, or that is not Waiting, is
    /// skipped).
    pub fn run_once<R: TaskRunner + ?Sized>(
        &mut self,
        runner: &mut R,
        stop: &dyn Fn() -> bool,
    ) -> Result<Vec<OccurrenceReport>, SchedulerError> {
        let mut reports = Vec::new();
        for i in self.once_order() {
            if stop() {
                break;
            }
            self.apply_controls()?;
            self.settle(i)?;
            let now = self.clock.now_ms();
            let trigger = match due(&self.jobs[i], &self.states[i], self.input[i], now) {
                Due::Now {
                    trigger: Trigger::RunNow,
                    ..
                } => Trigger::RunNow,
                Due::Now { .. } | Due::At(_) => Trigger::Once,
                Due::Over | Due::Idle => {
                    tracing::info!(job = %self.jobs[i].name, status = %self.states[i].status, "job not run: it is not Waiting");
                    continue;
                }
            };
            reports.push(self.run_occurrence(i, trigger, now, runner, stop)?);
            self.settle(i)?;
        }
        Ok(reports)
    }

    /// The order in which [`Scheduler::run_once`] runs the jobs (and
    /// [`Scheduler::run_due`] the jobs due together): by the AIF
    /// order of their first task's service (receive, inbound processing,
    /// outbound processing, send), then by name — so jobs that split the
    /// four services between them pass a message all the way in one run.
    pub fn once_order(&self) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.jobs.len()).collect();
        order.sort_by_key(|&i| {
            let job = &self.jobs[i];
            (job.tasks.first().map(|t| t.kind), job.name.clone())
        });
        order
    }

    /// Run the jobs at their recurrence (and on input) until `stop` says
    /// so; a signal of new input, or an operator request ([`Controls`]),
    /// ends the nap between steps at once. A
    /// failure to write the job state (the queue's disk) is logged and
    /// retried.
    pub fn run_forever<R: TaskRunner + ?Sized>(&mut self, runner: &mut R, stop: &dyn Fn() -> bool) {
        while !stop() {
            let mut nap = MAX_NAP;
            match self.run_due(runner, stop) {
                Ok(_) => {
                    let now = self.clock.now_ms();
                    if let Some(t) = self.next_due() {
                        nap = nap.min(Duration::from_millis(t.saturating_sub(now)));
                    }
                }
                Err(e) => {
                    tracing::error!("batch scheduler: {e}; trying again in a second");
                    nap = Duration::from_secs(1);
                }
            }
            // Nap in short steps so a stop request is seen quickly; new input
            // and operator requests end it.
            let until = std::time::Instant::now() + nap;
            while !stop() {
                let left = until.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() || self.signals.wait(left.min(Duration::from_millis(20))) {
                    break;
                }
            }
        }
    }

    /// Run one occurrence of job `i`.
    fn run_occurrence<R: TaskRunner + ?Sized>(
        &mut self,
        i: usize,
        trigger: Trigger,
        scheduled_ms: u64,
        runner: &mut R,
        stop: &dyn Fn() -> bool,
    ) -> Result<OccurrenceReport, SchedulerError> {
        let job = self.jobs[i].clone();
        let store = self.store.clone();
        let start = self.clock.now_ms();
        let seq = self.states[i].last_seq + 1;
        {
            let st = &mut self.states[i];
            st.status = JobStatus::Executing;
            st.executing = Some(seq);
            st.last_seq = seq;
            st.run_now = false;
        }
        // The occurrence receives whatever input is there now; input that
        // arrives from here on makes the job due again.
        self.input[i] = None;
        let mut occ = Occurrence {
            seq,
            trigger,
            scheduled_ms,
            start_ms: start,
            end_ms: None,
            status: JobStatus::Executing,
            tasks: job
                .tasks
                .iter()
                .map(|t| TaskRecord {
                    name: t.name.clone(),
                    service: t.kind,
                    status: TaskStatus::Ready,
                    attempts: 0,
                    counts: TaskCounts::default(),
                    error: None,
                    ignore_failure: t.ignore_failure,
                })
                .collect(),
            note: None,
        };
        tracing::debug!(job = %job.name, occurrence = seq, %trigger, "occurrence starts");
        let mut statuses = vec![TaskStatus::Ready; job.tasks.len()];
        let sync = |occ: &mut Occurrence, statuses: &[TaskStatus]| {
            for (r, s) in occ.tasks.iter_mut().zip(statuses) {
                r.status = *s;
            }
        };
        loop {
            self.apply_controls()?;
            let canceling = self.states[i].status == JobStatus::Canceling;
            if canceling || stop() {
                for s in statuses.iter_mut() {
                    if *s == TaskStatus::Ready {
                        *s = TaskStatus::Canceled;
                    }
                }
                if statuses.contains(&TaskStatus::Canceled) {
                    occ.note = Some(if canceling {
                        "canceled by an operator".into()
                    } else {
                        "the host was asked to stop".into()
                    });
                }
                break;
            }
            let Some(t) = conditions::next_task(&job.tasks, &mut statuses) else {
                break;
            };
            // It and the tasks that can run at once with it, as stages.
            let stages = if runner.stages() {
                conditions::flow_stages(&job.tasks, &statuses, t)
            } else {
                vec![t]
            };
            for &s in &stages {
                statuses[s] = TaskStatus::Executing;
            }
            sync(&mut occ, &statuses);
            // The record says which tasks run, so a crash leaves it right.
            state::save(
                store.as_ref(),
                &job.name,
                &self.states[i],
                Some(&occ),
                vec![],
            )?;

            let tasks: Vec<&TaskConfig> = stages.iter().map(|&s| &job.tasks[s]).collect();
            let first = if tasks.len() > 1 {
                let controls = self.controls.clone();
                let name = job.name.clone();
                runner.run_stages(&tasks, &move || controls.cancel_pending(&name))
            } else {
                vec![runner.run(tasks[0])]
            };
            for (&s, outcome) in stages.iter().zip(first) {
                let task = &job.tasks[s];
                let rec = &mut occ.tasks[s];
                rec.attempts += 1;
                let mut outcome = outcome;
                // A task in Error runs again on its own, as often as it may.
                while let Err(e) = &outcome {
                    if rec.attempts > task.max_retries || stop() {
                        break;
                    }
                    tracing::warn!(
                        job = %job.name, task = %task.name, attempt = rec.attempts,
                        "task ended in error, retrying: {e}"
                    );
                    rec.attempts += 1;
                    outcome = runner.run(task);
                }
                statuses[s] = record(&job.name, task, rec, outcome);
            }
        }
        sync(&mut occ, &statuses);
        let end = self.clock.now_ms();
        occ.end_ms = Some(end);
        occ.status = occurrence_result(&occ.tasks);
        let st = &mut self.states[i];
        st.executing = None;
        st.occurrences += 1;
        st.last_end_ms = Some(end);
        st.last_result = Some(occ.status);
        st.status = match st.status {
            JobStatus::Canceling => JobStatus::Canceled,
            JobStatus::Executing => JobStatus::Waiting,
            other => other,
        };
        let drop = seq
            .checked_sub(job.keep_history as u64)
            .filter(|&s| s > 0)
            .into_iter()
            .collect();
        state::save(store.as_ref(), &job.name, &self.states[i], Some(&occ), drop)?;
        match occ.status {
            JobStatus::Ended => {
                tracing::debug!(job = %job.name, occurrence = seq, "occurrence ended")
            }
            s => {
                tracing::warn!(job = %job.name, occurrence = seq, status = %s, "occurrence did not end cleanly")
            }
        }
        Ok(OccurrenceReport {
            job: job.name,
            occurrence: occ,
        })
    }
}
