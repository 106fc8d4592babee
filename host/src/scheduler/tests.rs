//! The scheduler's tests: a manual clock, an in-memory (or redb) state
//! store and a scripted task runner, so everything runs instantly and
//! deterministically.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use super::conditions::{Readiness, flow_stages, next_task, readiness};
use super::state::{self, StateStore};
use super::*;
use crate::config::{AfterStatus, Combine, Config, JobConfig, TaskConfig, TaskKind};
use crate::queue::{GatewayQueue, RedbQueue};

/// 2026-05-01T06:00:00Z.
const T0: u64 = 1_777_615_200_000;
const SEC: u64 = 1000;

/// One job `j` from a `[jobs.j]` body.
fn job(body: &str) -> JobConfig {
    let text = format!("[jobs.j]\n{body}\n");
    let cfg = Config::parse(Path::new("/t/ferry.toml"), &text)
        .unwrap_or_else(|e| panic!("config:\n{e}\n{text}"));
    cfg.jobs["j"].clone()
}

/// Called as each task runs (to cancel, crash, look at the store...).
type During = Box<dyn FnMut(&str)>;

/// A task runner following a script: per task name, the outcomes of its
/// next runs (when none is left: Ended, 1 done). Each run takes `takes_ms`
/// on the manual clock.
struct Script {
    plan: HashMap<String, VecDeque<Result<TaskCounts, String>>>,
    calls: Vec<String>,
    clock: ManualClock,
    takes_ms: u64,
    during: Option<During>,
    /// Runs tasks along the flow as stages (one after another here).
    stages: bool,
    /// What the scheduler's cancel check said after each stage.
    canceled: Vec<bool>,
}

impl Script {
    fn new(clock: &ManualClock) -> Script {
        Script {
            plan: HashMap::new(),
            calls: Vec::new(),
            clock: clock.clone(),
            takes_ms: 0,
            during: None,
            stages: false,
            canceled: Vec::new(),
        }
    }

    fn fail(mut self, task: &str, times: usize) -> Script {
        let q = self.plan.entry(task.to_string()).or_default();
        for _ in 0..times {
            q.push_back(Err(format!("{task} failed")));
        }
        self
    }

    fn counts(mut self, task: &str, done: u64, failed: u64) -> Script {
        self.plan
            .entry(task.to_string())
            .or_default()
            .push_back(Ok(TaskCounts { done, failed }));
        self
    }
}

impl TaskRunner for Script {
    fn stages(&self) -> bool {
        self.stages
    }

    fn run_stages(
        &mut self,
        tasks: &[&TaskConfig],
        cancel: &(dyn Fn() -> bool + Sync),
    ) -> Vec<Result<TaskCounts, String>> {
        tasks
            .iter()
            .map(|t| {
                let r = self.run(t);
                self.canceled.push(cancel());
                r
            })
            .collect()
    }

    fn run(&mut self, task: &TaskConfig) -> Result<TaskCounts, String> {
        self.calls.push(task.name.clone());
        self.clock.advance(self.takes_ms);
        if let Some(f) = &mut self.during {
            f(&task.name);
        }
        self.plan
            .get_mut(&task.name)
            .and_then(VecDeque::pop_front)
            .unwrap_or(Ok(TaskCounts { done: 1, failed: 0 }))
    }
}

fn never() -> bool {
    false
}

fn scheduler(jobs: Vec<JobConfig>, clock: &ManualClock, store: Arc<dyn StateStore>) -> Scheduler {
    Scheduler::new(jobs, Arc::new(clock.clone()), store).unwrap()
}

fn statuses(o: &Occurrence) -> Vec<(String, TaskStatus)> {
    o.tasks.iter().map(|t| (t.name.clone(), t.status)).collect()
}

fn st(pairs: &[(&str, TaskStatus)]) -> Vec<(String, TaskStatus)> {
    pairs.iter().map(|(n, s)| (n.to_string(), *s)).collect()
}

use TaskStatus::{Canceled, DidntRun, Ended, Error, Executing, Ready};

// ---- time ------------------------------------------------------------------

#[test]
fn rfc3339_parses_and_formats_exactly() {
    assert_eq!(parse_rfc3339("2026-05-01T06:00:00Z").unwrap(), T0);
    assert_eq!(parse_rfc3339("2026-05-01T08:00:00+02:00").unwrap(), T0);
    assert_eq!(parse_rfc3339("2026-05-01 06:00:00z").unwrap(), T0);
    assert_eq!(
        parse_rfc3339("2026-04-30T23:30:00-05:30").unwrap(),
        1_777_611_600_000
    );
    assert_eq!(
        parse_rfc3339("2024-02-29T23:59:59.25Z").unwrap(),
        1_709_251_199_250
    );
    assert_eq!(
        parse_rfc3339("2024-02-29T23:59:59.250999Z").unwrap(),
        1_709_251_199_250
    );
    assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z").unwrap(), 0);
    assert_eq!(
        parse_rfc3339("2000-03-01T00:00:00Z").unwrap(),
        951_868_800_000
    );
    for bad in [
        "2026-05-01T06:00:00",
        "2026-05-01",
        "2023-02-29T00:00:00Z",
        "2026-13-01T00:00:00Z",
        "2026-05-01T24:00:00Z",
        "1969-12-31T23:59:59Z",
        "soon",
        "2026-05-01T06:00:00Zextra",
        "2026-05-01T06:00:00.Z",
    ] {
        assert!(parse_rfc3339(bad).is_err(), "{bad} should be refused");
    }
    assert!(
        parse_rfc3339("2026-05-01T06:00:00")
            .unwrap_err()
            .contains("offset")
    );
    assert_eq!(format_rfc3339(T0), "2026-05-01T06:00:00Z");
    assert_eq!(
        format_rfc3339(1_709_251_199_250),
        "2024-02-29T23:59:59.250Z"
    );
    assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
    // Round trip over many days, including leap days and centuries.
    for day in (0..200_000u64).step_by(97) {
        let ms = day * 86_400_000 + day * 7_777 % 86_400_000;
        assert_eq!(parse_rfc3339(&format_rfc3339(ms)).unwrap(), ms);
    }
    assert_eq!(format_interval(86_400_000), "1d");
    assert_eq!(format_interval(90 * 60_000), "90m");
    assert_eq!(format_interval(1500), "1500ms");
    assert_eq!(format_interval(100), "100ms");
    assert_eq!(format_duration_ms(250), "250ms");
    assert_eq!(format_duration_ms(1500), "1.5s");
    assert_eq!(format_duration_ms(125_000), "2m05s");
    assert_eq!(format_duration_ms(3 * 3_600_000 + 120_000), "3h02m");
    assert_eq!(format_duration_ms(2 * 86_400_000 + 4 * 3_600_000), "2d04h");
}

#[test]
fn manual_clock_moves_only_when_told() {
    let c = ManualClock::new(T0);
    let shared = c.clone();
    assert_eq!(c.now_ms(), T0);
    shared.advance(1500);
    assert_eq!(c.now_ms(), T0 + 1500);
    c.set(5);
    assert_eq!(shared.now_ms(), 5);
    assert!(SystemClock.now_ms() > T0 - 365 * 86_400_000);
}

// ---- recurrence --------------------------------------------------------------

#[test]
fn recurrence_slots_are_exact() {
    let r = Recurrence {
        every_ms: 10 * SEC,
        start: Start::At(T0),
        end: End::Never,
    };
    assert_eq!(r.anchor(42), T0);
    assert_eq!(
        Recurrence::every(std::time::Duration::from_secs(1)).anchor(42),
        42
    );
    assert_eq!(r.slot(T0, 0), T0);
    assert_eq!(r.slot(T0, 3), T0 + 30 * SEC);
    assert_eq!(r.slot_after(T0, T0 - 1), T0);
    assert_eq!(r.slot_after(T0, T0), T0 + 10 * SEC);
    assert_eq!(r.slot_after(T0, T0 + 1), T0 + 10 * SEC);
    assert_eq!(r.slot_after(T0, T0 + 9_999), T0 + 10 * SEC);
    assert_eq!(r.slot_after(T0, T0 + 10 * SEC), T0 + 20 * SEC);
    assert_eq!(r.slot_after(T0, T0 + 25 * SEC), T0 + 30 * SEC);
    // First occurrence at the start; then the first slot after the last end.
    assert_eq!(r.next_due(T0, 0, None), Some(T0));
    assert_eq!(r.next_due(T0, 1, Some(T0 + 300)), Some(T0 + 10 * SEC));
    // An occurrence that overran two slots skips them (no burst).
    assert_eq!(r.next_due(T0, 1, Some(T0 + 25 * SEC)), Some(T0 + 30 * SEC));
    // A host stopped for a day: one late occurrence, due at once.
    assert_eq!(r.next_due(T0, 5, Some(T0 + 45 * SEC)), Some(T0 + 50 * SEC));
    // Days: 1d from 06:00 stays at 06:00.
    let daily = Recurrence {
        every_ms: 86_400_000,
        ..r
    };
    assert_eq!(
        format_rfc3339(daily.next_due(T0, 1, Some(T0 + 3_600_000)).unwrap()),
        "2026-05-02T06:00:00Z"
    );
    assert_eq!(r.describe(), "every 10s from 2026-05-01T06:00:00Z");
}

#[test]
fn recurrence_ends_after_k_occurrences() {
    let r = Recurrence {
        every_ms: 60 * SEC,
        start: Start::At(T0),
        end: End::After(3),
    };
    assert_eq!(r.next_due(T0, 0, None), Some(T0));
    assert_eq!(r.next_due(T0, 1, Some(T0 + 5)), Some(T0 + 60 * SEC));
    assert_eq!(
        r.next_due(T0, 2, Some(T0 + 60 * SEC + 5)),
        Some(T0 + 120 * SEC)
    );
    assert_eq!(r.next_due(T0, 3, Some(T0 + 120 * SEC + 5)), None);
    assert_eq!(
        r.describe(),
        "every 1m from 2026-05-01T06:00:00Z, 3 time(s)"
    );
}

#[test]
fn recurrence_ends_by_a_date_time() {
    let by = T0 + 25 * SEC;
    let r = Recurrence {
        every_ms: 10 * SEC,
        start: Start::At(T0),
        end: End::By(by),
    };
    assert_eq!(r.next_due(T0, 0, None), Some(T0));
    assert_eq!(
        r.next_due(T0, 2, Some(T0 + 10 * SEC + 1)),
        Some(T0 + 20 * SEC)
    );
    // The slot at T0+30s is after the end.
    assert_eq!(r.next_due(T0, 3, Some(T0 + 20 * SEC + 1)), None);
    assert!(r.may_start(by));
    assert!(!r.may_start(by + 1));
    // A slot exactly at the end still counts.
    let exact = Recurrence {
        end: End::By(T0 + 20 * SEC),
        ..r
    };
    assert_eq!(
        exact.next_due(T0, 2, Some(T0 + 15 * SEC)),
        Some(T0 + 20 * SEC)
    );
    // End before the start: nothing at all.
    let none = Recurrence {
        end: End::By(T0 - 1),
        ..r
    };
    assert_eq!(none.next_due(T0, 0, None), None);
}

// ---- conditions ------------------------------------------------------------

fn two_tasks(wanted: AfterStatus, ignore_failure: bool) -> Vec<TaskConfig> {
    let mut a = TaskConfig::new(TaskKind::GatewayReceive);
    a.name = "a".into();
    a.ignore_failure = ignore_failure;
    let mut b = TaskConfig::new(TaskKind::InboundProcessing);
    b.name = "b".into();
    b.after = vec![crate::config::After {
        task: "a".into(),
        status: wanted,
    }];
    vec![a, b]
}

#[test]
fn each_condition_against_each_status() {
    use AfterStatus as W;
    use Readiness::{Impossible as I, Met as M, Pending as P};
    // other task's status → (ended, error, ended-or-error)
    let table = [
        (Ready, [P, P, P]),
        (Executing, [P, P, P]),
        (Ended, [M, I, M]),
        (Error, [I, M, M]),
        (DidntRun, [I, I, I]),
        (Canceled, [I, I, I]),
    ];
    for (other, expected) in table {
        for (wanted, exp) in [W::Ended, W::Error, W::EndedOrError]
            .into_iter()
            .zip(expected)
        {
            let tasks = two_tasks(wanted, false);
            assert_eq!(
                readiness(&tasks, &[other, Ready], 1),
                exp,
                "{other:?} against {wanted:?}"
            );
        }
    }
    // With ignore_failure, an Error counts as Ended for the dependents.
    let tasks = two_tasks(W::Ended, true);
    assert_eq!(readiness(&tasks, &[Error, Ready], 1), M);
    let tasks = two_tasks(W::Error, true);
    assert_eq!(readiness(&tasks, &[Error, Ready], 1), I);
    // A task without conditions is always Met.
    assert_eq!(readiness(&tasks, &[Ready, Ready], 0), M);
}

#[test]
fn all_and_any_combine_conditions() {
    let j = |cond: &str| {
        job(&format!(
            r#"tasks = [
  {{ service = "gateway-receive", name = "x", after = [] }},
  {{ service = "gateway-receive", name = "y", after = [] }},
  {{ service = "gateway-send", name = "z", condition = "{cond}",
     after = [{{ task = "x", status = "ended" }}, {{ task = "y", status = "ended" }}] }},
]"#
        ))
        .tasks
    };
    use Readiness::{Impossible as I, Met as M, Pending as P};
    let all = j("all");
    let any = j("any");
    assert_eq!(all[2].condition, Combine::All);
    assert_eq!(any[2].condition, Combine::Any);
    let cases = [
        ((Ended, Ended), M, M),
        ((Ended, Ready), P, M),
        ((Ended, Executing), P, M),
        ((Ended, Error), I, M),
        ((Error, Ended), I, M),
        ((Error, Error), I, I),
        ((Error, Ready), I, P),
        ((Ready, Ready), P, P),
        ((DidntRun, Ended), I, M),
        ((Canceled, Canceled), I, I),
        ((DidntRun, Ready), I, P),
    ];
    for ((x, y), want_all, want_any) in cases {
        assert_eq!(
            readiness(&all, &[x, y, Ready], 2),
            want_all,
            "all {x:?} {y:?}"
        );
        assert_eq!(
            readiness(&any, &[x, y, Ready], 2),
            want_any,
            "any {x:?} {y:?}"
        );
    }
}

#[test]
fn next_task_follows_conditions_then_order_and_marks_didnt_run() {
    let tasks = job(r#"tasks = [
  { service = "gateway-receive", name = "a", after = [{ task = "b" }] },
  { service = "gateway-receive", name = "b", after = [] },
  { service = "inbound-processing", name = "ok", after = [{ task = "a", status = "ended" }] },
  { service = "inbound-processing", name = "on-error", after = [{ task = "a", status = "error" }] },
  { service = "gateway-send", name = "last" },
]"#)
    .tasks;
    let mut s = vec![Ready; 5];
    // "a" waits for "b", which is later in the list.
    assert_eq!(next_task(&tasks, &mut s), Some(1));
    s[1] = Ended;
    assert_eq!(next_task(&tasks, &mut s), Some(0));
    s[0] = Error;
    // "ok" can no longer run; "on-error" can; "last" follows "on-error".
    assert_eq!(next_task(&tasks, &mut s), Some(3));
    assert_eq!(s[2], DidntRun);
    s[3] = Ended;
    assert_eq!(next_task(&tasks, &mut s), Some(4));
    s[4] = Ended;
    assert_eq!(next_task(&tasks, &mut s), None);
    assert_eq!(s, [Error, Ended, DidntRun, Ended, Ended]);
}

#[test]
fn flow_stages_take_the_services_that_follow_along_the_flow() {
    // The four services with default conditions: one flow.
    let four = job(r#"tasks = [
  { service = "gateway-receive" },
  { service = "inbound-processing" },
  { service = "outbound-processing" },
  { service = "gateway-send" },
]"#)
    .tasks;
    assert_eq!(flow_stages(&four, &[Ready; 4], 0), [0, 1, 2, 3]);
    // Only Ready tasks join; a later start takes the rest.
    assert_eq!(
        flow_stages(&four, &[Ended, Ready, Ready, Ready], 1),
        [1, 2, 3]
    );
    assert_eq!(
        flow_stages(&four, &[Ready, Ready, Canceled, Ready], 0),
        [0, 1]
    );

    let tasks = job(r#"tasks = [
  { service = "gateway-receive", name = "r" },
  { service = "inbound-processing", name = "i", after = [{ task = "r", status = "ended" }] },
  { service = "gateway-send", name = "s", after = [] },
  { service = "gateway-receive", name = "r2" },
  { service = "inbound-processing", name = "i2", after = [{ task = "r2" }] },
  { service = "outbound-processing", name = "o2", max_retries = 2 },
  { service = "gateway-send", name = "s2" },
]"#)
    .tasks;
    let ready = [Ready; 7];
    // "i" runs only if "r" ends without error: not at once with it.
    assert_eq!(flow_stages(&tasks, &ready, 0), [0]);
    // "s" waits for nothing; "r2" goes back up the flow.
    assert_eq!(flow_stages(&tasks, &ready, 1), [1, 2]);
    // "o2" is run again on an Error: "s2" waits for its last attempt.
    assert_eq!(flow_stages(&tasks, &ready, 3), [3, 4, 5]);
    assert_eq!(flow_stages(&tasks, &ready, 6), [6]);
}

// ---- the scheduler -------------------------------------------------------------

#[test]
fn default_job_runs_the_four_services_in_aif_order() {
    let cfg = Config::parse(Path::new("/t/f.toml"), "").unwrap();
    let aif = cfg.jobs["aif"].clone();
    let names: Vec<String> = aif.tasks.iter().map(|t| t.name.clone()).collect();
    assert_eq!(
        names,
        [
            "gateway-receive",
            "inbound-processing",
            "outbound-processing",
            "gateway-send"
        ]
    );
    for w in aif.tasks.windows(2) {
        assert_eq!(w[1].after.len(), 1);
        assert_eq!(w[1].after[0].task, w[0].name);
        assert_eq!(w[1].after[0].status, AfterStatus::EndedOrError);
    }
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![aif], &clock, Arc::new(MemStore::default()));
    // Receive fails: the others still run (Ended or error), the occurrence
    // is Error.
    let mut run = Script::new(&clock).fail("gateway-receive", 1);
    let reports = s.run_due(&mut run, &never).unwrap();
    assert_eq!(run.calls, names);
    assert_eq!(reports.len(), 1);
    let o = &reports[0].occurrence;
    assert_eq!(o.status, JobStatus::Error);
    assert!(!reports[0].ended());
    assert_eq!(o.tasks[0].status, Error);
    assert_eq!(o.tasks[0].error.as_deref(), Some("gateway-receive failed"));
    assert!(o.tasks[1..].iter().all(|t| t.status == Ended));
    assert_eq!(s.state("aif").unwrap().status, JobStatus::Waiting);
}

#[test]
fn a_task_after_an_ended_task_does_not_run_when_it_failed() {
    let j = job(r#"tasks = [
  { service = "gateway-receive", name = "receive" },
  { service = "inbound-processing", name = "process", after = [{ task = "receive", status = "ended" }] },
  { service = "gateway-send", name = "send" },
  { service = "gateway-send", name = "alarm", after = [{ task = "receive", status = "error" }] },
]"#);
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![j], &clock, Arc::new(MemStore::default()));
    let mut run = Script::new(&clock).fail("receive", 1);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(run.calls, ["receive", "alarm"]);
    assert_eq!(
        statuses(&r[0].occurrence),
        st(&[
            ("receive", Error),
            ("process", DidntRun),
            ("send", DidntRun),
            ("alarm", Ended)
        ])
    );
    assert_eq!(r[0].occurrence.status, JobStatus::Error);

    // Next occurrence, all well: the error branch is the one that does not run.
    clock.advance(SEC);
    let mut run = Script::new(&clock);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(run.calls, ["receive", "process", "send"]);
    assert_eq!(
        statuses(&r[0].occurrence),
        st(&[
            ("receive", Ended),
            ("process", Ended),
            ("send", Ended),
            ("alarm", DidntRun)
        ])
    );
    // Didn't run does not make an occurrence fail.
    assert_eq!(r[0].occurrence.status, JobStatus::Ended);
}

#[test]
fn failed_tasks_are_retried_up_to_max_retries() {
    let j = job(r#"tasks = [
  { service = "gateway-receive", name = "r", max_retries = 2 },
  { service = "gateway-send", name = "s", max_retries = 1 },
]"#);
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![j], &clock, Arc::new(MemStore::default()));
    // r fails twice then ends (3 attempts); s fails twice: Error after 2.
    let mut run = Script::new(&clock)
        .fail("r", 2)
        .counts("r", 7, 1)
        .fail("s", 2);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(run.calls, ["r", "r", "r", "s", "s"]);
    let o = &r[0].occurrence;
    assert_eq!((o.tasks[0].status, o.tasks[0].attempts), (Ended, 3));
    assert_eq!(o.tasks[0].counts, TaskCounts { done: 7, failed: 1 });
    assert_eq!(o.tasks[0].error, None);
    assert_eq!((o.tasks[1].status, o.tasks[1].attempts), (Error, 2));
    assert_eq!(o.status, JobStatus::Error);
    assert_eq!(o.counts(), TaskCounts { done: 7, failed: 1 });
}

#[test]
fn an_ignored_failure_counts_as_ended() {
    let j = job(r#"tasks = [
  { service = "gateway-receive", name = "r", ignore_failure = true },
  { service = "inbound-processing", name = "p", after = [{ task = "r", status = "ended" }] },
]"#);
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![j], &clock, Arc::new(MemStore::default()));
    let mut run = Script::new(&clock).fail("r", 1);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(run.calls, ["r", "p"]);
    let o = &r[0].occurrence;
    assert_eq!(o.tasks[0].status, Error);
    assert!(o.tasks[0].ignore_failure);
    assert_eq!(o.tasks[1].status, Ended);
    assert_eq!(o.status, JobStatus::Ended);
    assert!(r[0].ended());
}

#[test]
fn only_a_waiting_job_runs_hold_release_cancel() {
    let j = job(r#"every = "10s""#);
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemStore::default());
    let mut s = scheduler(vec![j.clone()], &clock, store.clone());
    let ctl = s.controls();
    let mut run = Script::new(&clock);
    assert_eq!(s.run_due(&mut run, &never).unwrap().len(), 1);

    ctl.request("j", Action::Hold);
    clock.advance(60 * SEC);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(s.state("j").unwrap().status, JobStatus::Withhold);
    assert_eq!(s.next_due(), None);
    // Persisted.
    let saved = state::load_state(store.as_ref(), "j").unwrap().unwrap();
    assert_eq!(saved.status, JobStatus::Withhold);

    ctl.request("j", Action::Release);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1, "released: the late slot runs at once");
    assert_eq!(r[0].occurrence.scheduled_ms, T0 + 10 * SEC);
    assert_eq!(s.next_due(), Some(T0 + 70 * SEC));

    ctl.request("j", Action::Cancel);
    clock.advance(3600 * SEC);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(s.state("j").unwrap().status, JobStatus::Canceled);
    // run-now is refused on a canceled job; release, then it runs.
    ctl.request("j", Action::RunNow);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    ctl.request("j", Action::Release);
    assert_eq!(s.run_due(&mut run, &never).unwrap().len(), 1);
    assert_eq!(run.calls.len(), 3 * 4);

    // Every status other than Waiting is skipped.
    for status in JobStatus::ALL {
        let mut state = JobState::new(T0);
        state.status = status;
        let d = due(&j, &state, None, T0 + 3600 * SEC);
        assert_eq!(
            matches!(d, Due::Now { .. }),
            status == JobStatus::Waiting,
            "{status}"
        );
    }
}

#[test]
fn operator_transitions() {
    use JobStatus::*;
    let try_ = |from: JobStatus, a: Action| {
        let mut s = JobState::new(T0);
        s.status = from;
        state::apply("j", &mut s, a).map(|()| (s.status, s.run_now))
    };
    assert_eq!(try_(Waiting, Action::Hold).unwrap(), (Withhold, false));
    assert_eq!(try_(Withhold, Action::Hold).unwrap(), (Withhold, false));
    assert_eq!(try_(Ended, Action::Hold).unwrap(), (Withhold, false));
    assert!(try_(Executing, Action::Hold).is_err());
    assert!(try_(Canceled, Action::Hold).is_err());
    assert_eq!(try_(Withhold, Action::Release).unwrap(), (Waiting, false));
    assert_eq!(try_(Canceled, Action::Release).unwrap(), (Waiting, false));
    assert_eq!(try_(Error, Action::Release).unwrap(), (Waiting, false));
    assert!(try_(Executing, Action::Release).is_err());
    assert_eq!(try_(Waiting, Action::RunNow).unwrap(), (Waiting, true));
    assert_eq!(try_(Ended, Action::RunNow).unwrap(), (Waiting, true));
    let e = try_(Withhold, Action::RunNow).unwrap_err().to_string();
    assert!(
        e.contains("cannot run-now job \"j\": it is Withhold; release it first"),
        "{e}"
    );
    assert_eq!(try_(Waiting, Action::Cancel).unwrap(), (Canceled, false));
    assert_eq!(try_(Withhold, Action::Cancel).unwrap(), (Canceled, false));
    assert_eq!(try_(Executing, Action::Cancel).unwrap(), (Canceling, false));
}

#[test]
fn cancel_while_executing_is_canceling_then_canceled() {
    let j = job(r#"tasks = [
  { service = "gateway-receive", name = "a" },
  { service = "inbound-processing", name = "b" },
  { service = "gateway-send", name = "c" },
]"#);
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemStore::default());
    let mut s = scheduler(vec![j], &clock, store.clone());
    let ctl = s.controls();
    let mut run = Script::new(&clock);
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let (ctl2, store2, seen2) = (ctl.clone(), store.clone(), seen.clone());
    run.during = Some(Box::new(move |task: &str| {
        let st = state::load_state(store2.as_ref(), "j").unwrap().unwrap();
        seen2.lock().unwrap().push((task.to_string(), st.status));
        if task == "a" {
            ctl2.request("j", Action::Cancel);
        }
    }));
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(run.calls, ["a"]);
    assert_eq!(
        statuses(&r[0].occurrence),
        st(&[("a", Ended), ("b", Canceled), ("c", Canceled)])
    );
    assert_eq!(r[0].occurrence.status, JobStatus::Canceled);
    assert_eq!(
        r[0].occurrence.note.as_deref(),
        Some("canceled by an operator")
    );
    assert_eq!(
        seen.lock().unwrap()[0],
        ("a".to_string(), JobStatus::Executing)
    );
    assert_eq!(s.state("j").unwrap().status, JobStatus::Canceled);
    clock.advance(3600 * SEC);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
}

#[test]
fn a_stop_request_cancels_the_rest_and_the_job_goes_on() {
    let clock = ManualClock::new(T0);
    let mut s = scheduler(
        vec![job(r#"every = "1s""#)],
        &clock,
        Arc::new(MemStore::default()),
    );
    let mut run = Script::new(&clock);
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let f2 = flag.clone();
    run.during = Some(Box::new(move |t: &str| {
        if t == "inbound-processing" {
            f2.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }));
    let stopped = || flag.load(std::sync::atomic::Ordering::SeqCst);
    let r = s.run_due(&mut run, &stopped).unwrap();
    let o = &r[0].occurrence;
    assert_eq!(
        statuses(o),
        st(&[
            ("gateway-receive", Ended),
            ("inbound-processing", Ended),
            ("outbound-processing", Canceled),
            ("gateway-send", Canceled)
        ])
    );
    assert_eq!(o.status, JobStatus::Canceled);
    assert_eq!(
        r[0].occurrence.note.as_deref(),
        Some("the host was asked to stop")
    );
    assert_eq!(s.state("j").unwrap().status, JobStatus::Waiting);
}

#[test]
fn recurrence_drives_the_scheduler() {
    let j = job(r#"every = "10s"
start = "2026-05-01T06:00:00Z"
end_after = 3"#);
    assert_eq!(
        j.recurrence,
        Recurrence {
            every_ms: 10 * SEC,
            start: Start::At(T0),
            end: End::After(3)
        }
    );
    let clock = ManualClock::new(T0 - 1);
    let mut s = scheduler(vec![j], &clock, Arc::new(MemStore::default()));
    let mut run = Script::new(&clock);
    run.takes_ms = 100;
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(s.next_due(), Some(T0));
    clock.set(T0);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r[0].occurrence.scheduled_ms, T0);
    assert_eq!(r[0].occurrence.start_ms, T0);
    assert_eq!(r[0].occurrence.end_ms, Some(T0 + 400));
    assert_eq!(s.next_due(), Some(T0 + 10 * SEC));
    clock.set(T0 + 9_999);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    clock.set(T0 + 10 * SEC);
    // This one overruns: each task takes 6 s, so the slot at 30 s is next.
    run.takes_ms = 6 * SEC;
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r[0].occurrence.end_ms, Some(T0 + 34 * SEC));
    assert_eq!(s.next_due(), Some(T0 + 40 * SEC));
    run.takes_ms = 0;
    clock.set(T0 + 40 * SEC);
    assert_eq!(s.run_due(&mut run, &never).unwrap().len(), 1);
    // Three occurrences: the job has Ended.
    clock.set(T0 + 3600 * SEC);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    let state = s.state("j").unwrap();
    assert_eq!((state.status, state.occurrences), (JobStatus::Ended, 3));
    assert_eq!(s.next_due(), None);
    // run-now on an ended job runs it once more, then it is Ended again.
    s.controls().request("j", Action::RunNow);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r[0].occurrence.trigger, Trigger::RunNow);
    assert_eq!(s.state("j").unwrap().status, JobStatus::Ended);
}

#[test]
fn end_by_stops_the_recurrence_and_a_failed_last_occurrence_is_error() {
    let body = |end_by: &str| {
        job(&format!(
            "every = \"1m\"\nstart = 2026-05-01T06:00:00Z\nend_by = \"{end_by}\""
        ))
    };
    let j = body("2026-05-01T06:02:30Z");
    assert_eq!(j.recurrence.end, End::By(T0 + 150 * SEC));
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![j], &clock, Arc::new(MemStore::default()));
    let mut run = Script::new(&clock);
    for k in 0..3 {
        clock.set(T0 + k * 60 * SEC);
        assert_eq!(s.run_due(&mut run, &never).unwrap().len(), 1, "slot {k}");
    }
    // The slot at 06:03 is past the end: the job has Ended.
    assert_eq!(s.state("j").unwrap().status, JobStatus::Ended);
    clock.set(T0 + 180 * SEC);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());

    // A job whose last occurrence failed ends in Error.
    let clock = ManualClock::new(T0);
    let mut s = scheduler(
        vec![body("2026-05-01T06:00:30Z")],
        &clock,
        Arc::new(MemStore::default()),
    );
    let mut run = Script::new(&clock).fail("gateway-send", 1);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r[0].occurrence.status, JobStatus::Error);
    assert_eq!(s.state("j").unwrap().status, JobStatus::Error);

    // A slot that came due before the end but could not start until after
    // it (the host was stopped) does not run.
    let clock = ManualClock::new(T0 + 10 * 60 * SEC);
    let mut late = scheduler(
        vec![body("2026-05-01T06:02:30Z")],
        &clock,
        Arc::new(MemStore::default()),
    );
    assert!(late.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(late.state("j").unwrap().status, JobStatus::Ended);
}

#[test]
fn run_once_runs_every_waiting_job_due_or_not() {
    let a = job(r#"every = "1h""#);
    let mut b = a.clone();
    b.name = "held".into();
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemStore::default());
    let mut s = scheduler(vec![a, b], &clock, store.clone());
    let mut run = Script::new(&clock);
    s.run_due(&mut run, &never).unwrap();
    s.controls().request("held", Action::Hold);
    clock.advance(SEC);
    // Not due for an hour, but --once runs it; the held job is skipped.
    let r = s.run_once(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].job, "j");
    assert_eq!(r[0].occurrence.trigger, Trigger::Once);
    assert_eq!(s.state("j").unwrap().occurrences, 2);
}

#[test]
fn history_is_persisted_listed_and_trimmed() {
    let j = job(r#"every = "1s"
keep_history = 3
tasks = [{ service = "gateway-receive", ports = [] }, { service = "gateway-send" }]"#);
    let clock = ManualClock::new(T0);
    let store: Arc<MemStore> = Arc::new(MemStore::default());
    let mut s = scheduler(vec![j.clone()], &clock, store.clone());
    let mut run = Script::new(&clock);
    for k in 0..5u64 {
        run = run.counts("gateway-receive", k, 0);
        clock.set(T0 + k * SEC);
        s.run_due(&mut run, &never).unwrap();
    }
    let h = state::load_history(store.as_ref(), "j").unwrap();
    assert_eq!(h.iter().map(|o| o.seq).collect::<Vec<_>>(), [3, 4, 5]);
    let last = &h[2];
    assert_eq!(last.start_ms, T0 + 4 * SEC);
    assert_eq!(last.tasks[0].counts, TaskCounts { done: 4, failed: 0 });
    assert_eq!(last.tasks[0].service, TaskKind::GatewayReceive);
    assert_eq!(last.tasks[1].name, "gateway-send");
    assert_eq!(last.status, JobStatus::Ended);
    let saved = state::load_state(store.as_ref(), "j").unwrap().unwrap();
    assert_eq!((saved.last_seq, saved.occurrences), (5, 5));
    assert_eq!(saved.executing, None);

    // A smaller keep_history at the next start trims the rest.
    drop(s);
    let mut j1 = j;
    j1.keep_history = 1;
    let _s = scheduler(vec![j1], &clock, store.clone());
    let h = state::load_history(store.as_ref(), "j").unwrap();
    assert_eq!(h.iter().map(|o| o.seq).collect::<Vec<_>>(), [5]);
}

/// A runner that runs the services along the flow as stages: they are
/// Executing together (the saved record says so while they run), each
/// keeps its own result, and one in Error is run again on its own as often
/// as it may.
#[test]
fn stages_are_executing_together_and_each_keeps_its_result() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(r#"every = "10s"
tasks = [
  { service = "gateway-receive" },
  { service = "inbound-processing" },
  { service = "outbound-processing" },
  { service = "gateway-send", max_retries = 1 },
]"#);
    let clock = ManualClock::new(T0);
    let queue: Arc<dyn GatewayQueue> = Arc::new(RedbQueue::open(dir.path()).unwrap());
    let store = Arc::new(QueueStore::new(queue));
    let mut s = scheduler(vec![j], &clock, store.clone());
    let mut run = Script::new(&clock)
        .counts("gateway-receive", 5, 0)
        .fail("inbound-processing", 1)
        .fail("gateway-send", 1)
        .counts("gateway-send", 4, 1);
    run.stages = true;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (seen2, store2) = (seen.clone(), store.clone());
    run.during = Some(Box::new(move |t: &str| {
        let o = state::load_occurrence(store2.as_ref(), "j", 1)
            .unwrap()
            .unwrap();
        seen2.lock().unwrap().push((t.to_string(), statuses(&o)));
    }));
    let reports = s.run_due(&mut run, &never).unwrap();
    let executing = st(&[
        ("gateway-receive", Executing),
        ("inbound-processing", Executing),
        ("outbound-processing", Executing),
        ("gateway-send", Executing),
    ]);
    let seen = seen.lock().unwrap();
    // The four ran as one group, then the send task again alone.
    assert_eq!(seen.len(), 5);
    for (task, record) in &seen[..4] {
        assert_eq!(record, &executing, "while {task} ran");
    }
    assert_eq!(
        run.calls,
        [
            "gateway-receive",
            "inbound-processing",
            "outbound-processing",
            "gateway-send",
            "gateway-send"
        ]
    );
    let o = &reports[0].occurrence;
    assert_eq!(
        statuses(o),
        st(&[
            ("gateway-receive", Ended),
            ("inbound-processing", Error),
            ("outbound-processing", Ended),
            ("gateway-send", Ended),
        ])
    );
    let attempts: Vec<u32> = o.tasks.iter().map(|t| t.attempts).collect();
    assert_eq!(attempts, [1, 1, 1, 2]);
    assert_eq!(o.tasks[0].counts, TaskCounts { done: 5, failed: 0 });
    assert_eq!(o.tasks[3].counts, TaskCounts { done: 4, failed: 1 });
    assert_eq!(
        o.tasks[1].error.as_deref(),
        Some("inbound-processing failed")
    );
    assert_eq!(o.status, JobStatus::Error);
}

/// A cancel asked for while the stages run reaches them (they stop at
/// their next step), and is applied when they have ended.
#[test]
fn a_cancel_reaches_the_running_stages() {
    let clock = ManualClock::new(T0);
    let mut s = scheduler(
        vec![job(r#"every = "10s""#)],
        &clock,
        Arc::new(MemStore::default()),
    );
    let controls = s.controls();
    let mut run = Script::new(&clock);
    run.stages = true;
    run.during = Some(Box::new(move |t: &str| {
        if t == "inbound-processing" {
            controls.request("j", Action::Cancel);
        }
    }));
    let reports = s.run_due(&mut run, &never).unwrap();
    assert_eq!(run.canceled, [false, true, true, true]);
    assert_eq!(s.state("j").unwrap().status, JobStatus::Canceled);
    assert_eq!(reports.len(), 1);
}

#[test]
fn a_crash_during_an_occurrence_is_recorded_as_error_and_the_job_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let j = job(r#"every = "10s""#);
    let clock = ManualClock::new(T0);
    {
        let queue: Arc<dyn GatewayQueue> = Arc::new(RedbQueue::open(dir.path()).unwrap());
        let mut s = scheduler(
            vec![j.clone()],
            &clock,
            Arc::new(QueueStore::new(queue.clone())),
        );
        // The host "dies" in the middle of inbound processing.
        let mut run = Script::new(&clock).counts("gateway-receive", 5, 0);
        run.during = Some(Box::new(|t: &str| {
            if t == "inbound-processing" {
                panic!("simulated crash");
            }
        }));
        let crashed =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| s.run_due(&mut run, &never)));
        assert!(crashed.is_err());
        // What the disk says: Executing, with the running task.
        let store = QueueStore::new(queue);
        let saved = state::load_state(&store, "j").unwrap().unwrap();
        assert_eq!(
            (saved.status, saved.executing),
            (JobStatus::Executing, Some(1))
        );
        let o = state::load_occurrence(&store, "j", 1).unwrap().unwrap();
        assert_eq!(o.status, JobStatus::Executing);
        assert_eq!(
            statuses(&o),
            st(&[
                ("gateway-receive", Ended),
                ("inbound-processing", Executing),
                ("outbound-processing", Ready),
                ("gateway-send", Ready)
            ])
        );
    }
    // Restart a minute later.
    clock.set(T0 + 60 * SEC);
    let queue: Arc<dyn GatewayQueue> = Arc::new(RedbQueue::open(dir.path()).unwrap());
    let store = Arc::new(QueueStore::new(queue));
    let mut s = scheduler(vec![j], &clock, store.clone());
    let o = state::load_occurrence(store.as_ref(), "j", 1)
        .unwrap()
        .unwrap();
    assert_eq!(o.status, JobStatus::Error);
    assert_eq!(o.end_ms, None);
    assert!(o.note.as_deref().unwrap().starts_with("interrupted"));
    assert_eq!(
        statuses(&o),
        st(&[
            ("gateway-receive", Ended),
            ("inbound-processing", Error),
            ("outbound-processing", Canceled),
            ("gateway-send", Canceled)
        ])
    );
    assert_eq!(o.tasks[0].counts, TaskCounts { done: 5, failed: 0 });
    let state = s.state("j").unwrap().clone();
    assert_eq!(state.status, JobStatus::Waiting);
    assert_eq!(state.executing, None);
    assert_eq!(state.last_result, Some(JobStatus::Error));
    // The next occurrence runs at once and is #2.
    let mut run = Script::new(&clock);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].occurrence.seq, 2);
    assert_eq!(r[0].occurrence.status, JobStatus::Ended);
    let h = state::load_history(store.as_ref(), "j").unwrap();
    assert_eq!(
        h.iter().map(|o| (o.seq, o.status)).collect::<Vec<_>>(),
        [(1, JobStatus::Error), (2, JobStatus::Ended)]
    );
}

#[test]
fn a_canceling_job_left_by_a_crash_is_canceled() {
    let store = MemStore::default();
    let mut s = JobState::new(T0);
    s.status = JobStatus::Canceling;
    s.executing = Some(1);
    s.last_seq = 1;
    let o = Occurrence {
        seq: 1,
        trigger: Trigger::Schedule,
        scheduled_ms: T0,
        start_ms: T0,
        end_ms: None,
        status: JobStatus::Executing,
        tasks: vec![],
        note: None,
    };
    state::save(&store, "j", &s, Some(&o), vec![]).unwrap();
    let r = state::recover(&store, "j", T0 + 5).unwrap().unwrap();
    assert_eq!(r.was, JobStatus::Canceling);
    let s = state::load_state(&store, "j").unwrap().unwrap();
    assert_eq!(s.status, JobStatus::Canceled);
    assert_eq!(s.occurrences, 1);
    assert!(state::recover(&store, "j", T0 + 6).unwrap().is_none());
}

#[test]
fn state_keys_and_records_are_compact_json() {
    assert_eq!(state::state_key("aif"), "job/aif/state");
    assert_eq!(
        state::history_key("aif", 12),
        "job/aif/history/00000000000000000012"
    );
    let json = String::from_utf8(state::encode(&JobState::new(5))).unwrap();
    assert_eq!(
        json,
        r#"{"status":"waiting","first_seen_ms":5,"occurrences":0,"last_seq":0,"last_end_ms":null,"last_result":null,"run_now":false,"executing":null}"#
    );
    let store = MemStore::default();
    store
        .write(vec![(state::state_key("x"), b"{".to_vec())], vec![])
        .unwrap();
    let e = state::load_state(&store, "x").unwrap_err().to_string();
    assert!(
        e.starts_with("job record job/x/state cannot be read"),
        "{e}"
    );
}

// ---- the event-driven mode (on_input) ----------------------------------------

/// Job `j`: every hour from T0, on input with `min_interval`, receiving
/// from one inbound port.
fn input_job(min_interval: &str) -> JobConfig {
    let text = format!(
        r#"
[adapters.file]
component = "file-adapter"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"

[jobs.j]
every = "1h"
start = 2026-05-01T06:00:00Z
on_input = true
min_interval = "{min_interval}"
tasks = [{{ service = "gateway-receive" }}, {{ service = "inbound-processing" }}]
"#
    );
    let cfg = Config::parse(Path::new("/t/ferry.toml"), &text)
        .unwrap_or_else(|e| panic!("config:\n{e}\n{text}"));
    cfg.jobs["j"].clone()
}

#[test]
fn due_with_pending_input_is_a_pure_function() {
    let j = input_job("2s");
    assert_eq!(j.on_input, Some(2 * SEC));
    let mut st = JobState::new(T0 - 60 * SEC);
    // Before the recurrence's start, input waits for it.
    assert_eq!(
        due(&j, &st, Some(T0 - 30 * SEC), T0 - 30 * SEC),
        Due::At(T0)
    );
    // The first occurrence is the schedule's, input or not.
    let first = Due::Now {
        trigger: Trigger::Schedule,
        scheduled_ms: T0,
    };
    assert_eq!(due(&j, &st, Some(T0), T0), first);
    st.occurrences = 1;
    st.last_end_ms = Some(T0 + 100);
    // No input: the next slot.
    assert_eq!(due(&j, &st, None, T0 + 10 * SEC), Due::At(T0 + 3600 * SEC));
    // Input: at once once min_interval has passed since the end...
    assert_eq!(
        due(&j, &st, Some(T0 + 10 * SEC), T0 + 10 * SEC),
        Due::Now {
            trigger: Trigger::Input,
            scheduled_ms: T0 + 10 * SEC
        }
    );
    // ...else at the end + min_interval, not before.
    assert_eq!(due(&j, &st, Some(T0 + 500), T0 + 500), Due::At(T0 + 2100));
    assert_eq!(due(&j, &st, Some(T0 + 500), T0 + 2099), Due::At(T0 + 2100));
    assert_eq!(
        due(&j, &st, Some(T0 + 500), T0 + 2100),
        Due::Now {
            trigger: Trigger::Input,
            scheduled_ms: T0 + 2100
        }
    );
    // Run-now comes first; a job that is not Waiting is not started.
    st.run_now = true;
    assert!(matches!(
        due(&j, &st, Some(T0 + 10 * SEC), T0 + 10 * SEC),
        Due::Now {
            trigger: Trigger::RunNow,
            ..
        }
    ));
    st.run_now = false;
    st.status = JobStatus::Withhold;
    assert_eq!(due(&j, &st, Some(T0 + 10 * SEC), T0 + 10 * SEC), Due::Idle);
    // Input does not outlive the recurrence.
    let mut once = input_job("2s");
    once.recurrence.end = End::After(1);
    st.status = JobStatus::Waiting;
    assert_eq!(
        due(&once, &st, Some(T0 + 10 * SEC), T0 + 10 * SEC),
        Due::Over
    );
    // A job without on_input ignores input.
    let mut plain = input_job("2s");
    plain.on_input = None;
    assert_eq!(
        due(&plain, &st, Some(T0 + 10 * SEC), T0 + 10 * SEC),
        Due::At(T0 + 3600 * SEC)
    );
}

#[test]
fn a_signal_starts_an_occurrence_at_once_and_min_interval_spaces_them() {
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![input_job("2s")], &clock, Arc::new(MemStore::default()));
    let mut run = Script::new(&clock);
    run.takes_ms = 50;
    // Input at the first slot: one occurrence, the schedule's; the input
    // is consumed by it.
    s.signals().raise("j");
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].occurrence.trigger, Trigger::Schedule);
    assert_eq!(r[0].occurrence.end_ms, Some(T0 + 100));
    assert_eq!(s.next_due(), Some(T0 + 3600 * SEC));

    // New input ten seconds later: due at once.
    clock.set(T0 + 10 * SEC);
    s.signals().raise("j");
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    let o = &r[0].occurrence;
    assert_eq!(o.trigger, Trigger::Input);
    assert_eq!((o.scheduled_ms, o.start_ms), (T0 + 10 * SEC, T0 + 10 * SEC));
    assert_eq!(o.end_ms, Some(T0 + 10 * SEC + 100));
    assert_eq!(o.status, JobStatus::Ended);
    assert_eq!(s.next_due(), Some(T0 + 3600 * SEC));

    // A second signal within min_interval: due at end + 2 s, not before.
    clock.set(T0 + 10 * SEC + 500);
    s.signals().raise("j");
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(s.next_due(), Some(T0 + 12 * SEC + 100));
    clock.set(T0 + 12 * SEC + 99);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    // More signals meanwhile make it no earlier and no more often.
    s.signals().raise("j");
    clock.set(T0 + 12 * SEC + 100);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].occurrence.trigger, Trigger::Input);
    assert_eq!(r[0].occurrence.scheduled_ms, T0 + 12 * SEC + 100);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());

    // The recurrence goes on alongside: the next slot, then input again.
    assert_eq!(s.next_due(), Some(T0 + 3600 * SEC));
    clock.set(T0 + 3600 * SEC);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r[0].occurrence.trigger, Trigger::Schedule);
    assert_eq!(r[0].occurrence.scheduled_ms, T0 + 3600 * SEC);
    clock.set(T0 + 3700 * SEC);
    s.signals().raise("j");
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r[0].occurrence.trigger, Trigger::Input);
    // Every occurrence counts, whatever started it.
    assert_eq!(s.state("j").unwrap().occurrences, 5);
    assert_eq!(s.next_due(), Some(T0 + 7200 * SEC));
}

#[test]
fn a_signal_during_an_occurrence_runs_the_job_again_afterwards() {
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![input_job("1s")], &clock, Arc::new(MemStore::default()));
    let mut run = Script::new(&clock);
    run.takes_ms = 300;
    s.run_due(&mut run, &never).unwrap();
    clock.set(T0 + 60 * SEC);
    s.signals().raise("j");
    // Input arrives while the receive task runs (after it read its folder).
    let signals = s.signals();
    let once = std::cell::Cell::new(true);
    run.during = Some(Box::new(move |task| {
        if task == "gateway-receive" && once.replace(false) {
            signals.raise("j");
        }
    }));
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].occurrence.trigger, Trigger::Input);
    let end = r[0].occurrence.end_ms.unwrap();
    assert_eq!(end, T0 + 60 * SEC + 600);
    // Not lost: due again min_interval after that occurrence ended.
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(s.next_due(), Some(end + SEC));
    clock.set(end + SEC);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].occurrence.trigger, Trigger::Input);
    assert_eq!(r[0].occurrence.scheduled_ms, end + SEC);
    // And then nothing more until the next slot.
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(s.next_due(), Some(T0 + 3600 * SEC));
}

#[test]
fn a_held_job_is_not_started_by_a_signal_and_a_plain_job_ignores_one() {
    let clock = ManualClock::new(T0);
    let mut plain = job(r#"every = "1h""#);
    plain.name = "plain".into();
    let mut s = scheduler(
        vec![input_job("1s"), plain],
        &clock,
        Arc::new(MemStore::default()),
    );
    let mut run = Script::new(&clock);
    assert_eq!(s.run_due(&mut run, &never).unwrap().len(), 2);
    s.controls().request("j", Action::Hold);
    clock.set(T0 + 60 * SEC);
    s.signals().raise("j");
    s.signals().raise("plain");
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    assert_eq!(s.state("j").unwrap().status, JobStatus::Withhold);
    clock.set(T0 + 120 * SEC);
    assert!(s.run_due(&mut run, &never).unwrap().is_empty());
    // Released, it takes the input that is still there.
    s.controls().request("j", Action::Release);
    let r = s.run_due(&mut run, &never).unwrap();
    assert_eq!(r.len(), 1);
    assert_eq!(
        (r[0].job.as_str(), r[0].occurrence.trigger),
        ("j", Trigger::Input)
    );
    assert_eq!(s.state("plain").unwrap().occurrences, 1);
}

#[test]
fn run_forever_runs_an_occurrence_on_a_signal_from_another_thread() {
    // The next slot is an hour away; a signal from another thread (which
    // also ends the scheduler's nap) starts an occurrence. The stop is asked
    // for once it has run, so no timing is asserted.
    let clock = ManualClock::new(T0);
    let mut s = scheduler(vec![input_job("1s")], &clock, Arc::new(MemStore::default()));
    let mut run = Script::new(&clock);
    s.run_due(&mut run, &never).unwrap();
    clock.set(T0 + 60 * SEC);
    let signals = s.signals();
    let raiser = std::thread::spawn(move || signals.raise("j"));
    let store = s.store.clone();
    let stop = || {
        state::load_state(store.as_ref(), "j")
            .unwrap()
            .is_some_and(|st| st.occurrences == 2)
    };
    s.run_forever(&mut run, &stop);
    raiser.join().unwrap();
    let h = state::load_history(s.store.as_ref(), "j").unwrap();
    assert_eq!(h[1].trigger, Trigger::Input);
}

// ---------------------------------------------------------------------------
// Operator requests through the scheduler's controls (the control API's way
// in; `control::ops::Local::job_action` waits for the answer).

mod operator_requests {
    use super::*;
    use crate::scheduler::{Outcome, Responder};
    use std::sync::Mutex;

    /// A scheduler with job `j` (every hour, its first occurrence run).
    fn setup(clock: &ManualClock) -> (Scheduler, Script) {
        let mut s = scheduler(
            vec![job(r#"every = "1h""#)],
            clock,
            Arc::new(MemStore::default()),
        );
        let mut run = Script::new(clock);
        assert_eq!(s.run_due(&mut run, &never).unwrap().len(), 1);
        (s, run)
    }

    type Answers = Arc<Mutex<Vec<Outcome>>>;

    fn ask(s: &Scheduler, job: &str, action: Action, answers: &Answers) {
        let a = answers.clone();
        s.controls().request_with_reply(
            job,
            action,
            Responder::new(move |o| a.lock().unwrap().push(o)),
        );
    }

    fn take(answers: &Answers) -> Vec<Outcome> {
        std::mem::take(&mut *answers.lock().unwrap())
    }

    #[test]
    fn an_action_is_answered_when_the_scheduler_applies_it() {
        let clock = ManualClock::new(T0);
        let (mut s, mut run) = setup(&clock);
        let answers = Answers::default();
        ask(&s, "j", Action::Hold, &answers);
        // Not applied yet: the scheduler applies it at its next step.
        assert!(take(&answers).is_empty());
        assert_eq!(s.state("j").unwrap().status, JobStatus::Waiting);
        s.run_due(&mut run, &never).unwrap();
        let got = take(&answers);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].as_ref().unwrap().status, JobStatus::Withhold);
        assert_eq!(s.state("j").unwrap().status, JobStatus::Withhold);

        // Refused by the transition: the reason is state::apply's.
        ask(&s, "j", Action::RunNow, &answers);
        s.run_due(&mut run, &never).unwrap();
        let got = take(&answers);
        let e = got[0].as_ref().unwrap_err();
        assert!(
            e.contains("cannot run-now job \"j\": it is Withhold; release it first"),
            "{e}"
        );

        // Released, then run-now: Waiting, and the occurrence runs at once.
        ask(&s, "j", Action::Release, &answers);
        ask(&s, "j", Action::RunNow, &answers);
        let reports = s.run_due(&mut run, &never).unwrap();
        let got = take(&answers);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].as_ref().unwrap().status, JobStatus::Waiting);
        assert_eq!(reports.len(), 1);
        assert_eq!(reports[0].occurrence.trigger, Trigger::RunNow);

        // An unknown job: refused by the scheduler, naming the jobs.
        ask(&s, "nope", Action::Cancel, &answers);
        s.run_due(&mut run, &never).unwrap();
        assert_eq!(
            take(&answers)[0].as_ref().unwrap_err(),
            "no job named \"nope\" in the configuration (its jobs: j)"
        );
    }

    #[test]
    fn a_stopping_host_answers_the_requests_it_did_not_apply() {
        let clock = ManualClock::new(T0);
        let (s, _run) = setup(&clock);
        let answers = Answers::default();
        ask(&s, "j", Action::Hold, &answers);
        s.controls().abandon();
        let got = take(&answers);
        assert!(
            got[0]
                .as_ref()
                .unwrap_err()
                .contains("the host stopped before it applied the request")
        );
    }

    #[test]
    fn an_operator_request_ends_the_nap() {
        // The next slot is an hour away and no stop comes until the request
        // is applied: only the request's wake-up ends the nap in time (the
        // stop is asked for once it is applied, so no timing is asserted).
        let clock = ManualClock::new(T0);
        let (mut s, mut run) = setup(&clock);
        let ctl = s.controls();
        let asker = std::thread::spawn(move || ctl.request("j", Action::Hold));
        let store = s.store.clone();
        let stop = || {
            state::load_state(store.as_ref(), "j")
                .unwrap()
                .is_some_and(|st| st.status == JobStatus::Withhold)
        };
        s.run_forever(&mut run, &stop);
        asker.join().unwrap();
        assert_eq!(s.state("j").unwrap().status, JobStatus::Withhold);
        // The wake-up is no job's input.
        assert_eq!(s.state("j").unwrap().occurrences, 1);
    }
}

#[test]
fn jobs_run_in_the_aif_order_of_their_first_task_then_by_name() {
    // Named so that the name order is the wrong one.
    let mut send = job(r#"every = "1h"
tasks = [{ service = "gateway-send" }]"#);
    send.name = "a-send".into();
    let mut process = job(r#"every = "1h"
tasks = [{ service = "inbound-processing" }, { service = "outbound-processing" }]"#);
    process.name = "b-process".into();
    let mut receive = job(r#"every = "1h"
tasks = [{ service = "gateway-receive" }]"#);
    receive.name = "c-receive".into();
    let mut receive2 = receive.clone();
    receive2.name = "d-receive".into();
    let clock = ManualClock::new(T0);
    let store = Arc::new(MemStore::default());
    let s = scheduler(vec![send, process, receive, receive2], &clock, store);
    let names: Vec<&str> = s
        .once_order()
        .into_iter()
        .map(|i| s.jobs()[i].name.as_str())
        .collect();
    assert_eq!(names, ["c-receive", "d-receive", "b-process", "a-send"]);
}
