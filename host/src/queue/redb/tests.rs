//! Tests of [`RedbQueue`]: the conformance suite, and what is particular to
//! one redb file (reopening, the file lock, its format, the model-based
//! test with reopening).

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use proptest::prelude::*;

use super::super::conformance::{
    Backend, Tq, conformance_suite, exception, history, inbound, insert_all, keys, msg, set,
    status_of,
};
use super::super::*;
use super::{DB_FORMAT, FORMAT, META, RedbQueue};
use ::redb::ReadableDatabase;

impl Backend for RedbQueue {
    fn check_invariants(&self) {
        RedbQueue::check_invariants(self);
    }
}

fn fresh() -> (tempfile::TempDir, RedbQueue) {
    let dir = tempfile::tempdir().unwrap();
    let q = RedbQueue::open(dir.path()).unwrap();
    (dir, q)
}

fn open_temp() -> (tempfile::TempDir, Tq<RedbQueue>) {
    let (dir, q) = fresh();
    (dir, Tq::new(q))
}

conformance_suite!(fresh());

#[test]
fn reopen_keeps_everything() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("nested").join("data");
    let (k, counts) = {
        let q = RedbQueue::open(&data).unwrap();
        let k = insert_all(
            &q,
            [inbound("p", "a"), inbound("p", "b"), inbound("p", "c")],
        );
        let (lease, _) = q.recover("test").unwrap();
        q.claim(&lease, &ClaimRequest::new(Direction::Inbound, "p", 1))
            .unwrap();
        set(&q, k[2], Status::Error);
        let mut tx = Transaction::new();
        tx.log_processed("m-done", "p")
            .exception(exception("p", Some("m-done"), "boom"))
            .history(history("m-done", "service"));
        q.commit(tx).unwrap();
        q.put_state("job", b"state").unwrap();
        assert_eq!(status_of(&q, k[0]), Status::InProcess);
        (k, q.counts().unwrap())
    };
    assert!(data.join("ferry.redb").is_file());
    let q = RedbQueue::open(&data).unwrap();
    // A claim is not written: after a crash (or a stop) the claimed message
    // is Ready, as recovery would leave it, its attempt not counted.
    let ready_again: Vec<_> = counts
        .iter()
        .map(|(d, p, s, n)| match s {
            Status::InProcess => (*d, p.clone(), Status::Ready, *n),
            _ => (*d, p.clone(), *s, *n),
        })
        .fold(
            Vec::new(),
            |mut acc: Vec<(Direction, String, Status, u64)>, c| {
                match acc
                    .iter_mut()
                    .find(|a| (a.0, &a.1, a.2) == (c.0, &c.1, c.2))
                {
                    Some(a) => a.3 += c.3,
                    None => acc.push(c),
                }
                acc
            },
        );
    let mut now = q.counts().unwrap();
    now.sort();
    let mut want = ready_again;
    want.sort();
    assert_eq!(now, want);
    let m = q.get(k[0]).unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (Status::Ready, 0));
    assert_eq!(
        q.get(k[1]).unwrap().unwrap().content,
        "<Envelope>b#0</Envelope>"
    );
    assert!(q.is_processed("m-done").unwrap());
    assert_eq!(q.exceptions(&ExceptionFilter::default()).unwrap().len(), 1);
    assert_eq!(q.history("m-done").unwrap().len(), 1);
    assert_eq!(q.get_state("job").unwrap().as_deref(), Some(&b"state"[..]));
    assert_eq!(q.last_key().unwrap(), k[2]);
    assert_eq!(q.recover("test").unwrap().1, RecoveryReport::default());
    assert_eq!(insert_all(&q, [inbound("p", "d")])[0], k[2] + 1);
    q.check_invariants();
}

fn assert_in_use(err: QueueError, dir: &Path) {
    assert!(matches!(err, QueueError::InUse { .. }), "{err:?}");
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "data directory {} is in use by another Ferry host (ferry.redb is locked); \
             stop the other host, or use a configuration whose `data_dir` is another folder",
            dir.display()
        )
    );
}

#[test]
fn a_second_open_in_the_same_process_is_refused() {
    let (dir, q) = open_temp();
    assert_in_use(RedbQueue::open(dir.path()).unwrap_err(), dir.path());
    drop(q);
    RedbQueue::open(dir.path()).unwrap();
}

/// Helper run in a child process by `a_second_process_is_refused`: opens the
/// queue of `$FERRY_QUEUE_LOCK_HOLDER`, says so, and holds it until its stdin
/// closes. Without the variable it does nothing.
#[test]
fn lock_holder_child() {
    let Some(dir) = std::env::var_os("FERRY_QUEUE_LOCK_HOLDER") else {
        return;
    };
    let q = RedbQueue::open(Path::new(&dir)).unwrap();
    println!("FERRY_QUEUE_LOCK_HELD");
    std::io::stdout().flush().unwrap();
    let mut rest = Vec::new();
    std::io::stdin().read_to_end(&mut rest).unwrap();
    drop(q);
}

#[test]
fn a_second_process_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = module_path!();
    let test_path = path.split_once("::").map_or(path, |(_, rest)| rest);
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            &format!("{test_path}::lock_holder_child"),
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FERRY_QUEUE_LOCK_HOLDER", dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut seen = Vec::new();
    loop {
        match lines.next() {
            Some(line) => {
                let line = line.unwrap();
                if line.contains("FERRY_QUEUE_LOCK_HELD") {
                    break;
                }
                seen.push(line);
            }
            None => panic!("the child never opened the queue; it printed: {seen:?}"),
        }
    }
    assert_in_use(RedbQueue::open(dir.path()).unwrap_err(), dir.path());
    drop(child.stdin.take());
    // Drain the rest so the child never blocks on a full pipe.
    for line in lines {
        line.unwrap();
    }
    assert!(child.wait().unwrap().success());
    RedbQueue::open(dir.path()).unwrap();
}

#[test]
fn a_newer_database_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(RedbQueue::open(dir.path()).unwrap());
    {
        let db = redb::Database::create(dir.path().join("ferry.redb")).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(redb::TableDefinition::<&str, u64>::new("meta"))
            .unwrap()
            .insert("format", 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = RedbQueue::open(dir.path()).unwrap_err();
    assert!(
        matches!(err, QueueError::NewerFormat { found: 99, .. }),
        "{err:?}"
    );
}

#[test]
fn an_unusable_data_dir_is_explained() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain-file");
    std::fs::write(&file, b"x").unwrap();
    let err = RedbQueue::open(&file).unwrap_err();
    assert!(matches!(err, QueueError::Open { .. }), "{err:?}");
    assert!(
        err.to_string().contains("cannot create the data directory"),
        "{err}"
    );
}

#[test]
fn the_queue_is_shareable() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<RedbQueue>();
    // `?` into anyhow needs this.
    fn assert_std_error<E: std::error::Error + Send + Sync + 'static>() {}
    assert_std_error::<QueueError>();
    let (_dir, q) = fresh();
    let (lease, _) = q.recover("test").unwrap();
    let q: std::sync::Arc<dyn GatewayQueue> = std::sync::Arc::new(q);
    insert_all_dyn(&*q, 200);
    let claimed: Vec<Vec<MessageKey>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (q, lease) = (q.clone(), lease.clone());
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = q
                            .claim(&lease, &ClaimRequest::new(Direction::Inbound, "p", 7))
                            .unwrap();
                        if got.is_empty() {
                            return mine;
                        }
                        mine.extend(keys(&got));
                    }
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<_> = claimed.into_iter().flatten().collect();
    all.sort();
    all.dedup();
    assert_eq!(all.len(), 200, "every message claimed exactly once");
}

fn insert_all_dyn(q: &dyn GatewayQueue, n: usize) -> Vec<MessageKey> {
    let mut tx = Transaction::new();
    for i in 0..n {
        tx.insert(inbound("p", &format!("{i:05}.xml")));
    }
    q.commit(tx).unwrap()
}

/// Quick measurement (run with `--ignored --nocapture`, preferably in
/// release): enqueue and claim cost per 2 KB message.
#[test]
#[ignore]
fn measure_enqueue_and_claim() {
    let (_dir, q) = open_temp();
    let body = "x".repeat(2048);
    let batch = |from: usize, n: usize| {
        let mut tx = Transaction::new();
        for i in from..from + n {
            let mut m = inbound("orders", &format!("{i:08}.xml"));
            m.content = body.clone();
            tx.insert(m);
        }
        tx
    };
    // The floor on this machine: plain redb, one table, 1000 x 2 KB values.
    let bare_dir = tempfile::tempdir().unwrap();
    let bare = redb::Database::create(bare_dir.path().join("bare.redb")).unwrap();
    let table = redb::TableDefinition::<u64, &[u8]>::new("t");
    let mut best_bare = std::time::Duration::MAX;
    let mut best = std::time::Duration::MAX;
    for round in 0..5u64 {
        let t = Instant::now();
        let txn = bare.begin_write().unwrap();
        {
            let mut tab = txn.open_table(table).unwrap();
            for i in 0..1000 {
                tab.insert(round * 1000 + i, body.as_bytes()).unwrap();
            }
        }
        txn.commit().unwrap();
        best_bare = best_bare.min(t.elapsed());

        let tx = batch(round as usize * 1000, 1000);
        let t = Instant::now();
        q.commit(tx).unwrap();
        best = best.min(t.elapsed());
    }
    println!(
        "enqueue 1000 x 2 KB in one transaction, best of 5: {best:?} ({:?}/message); \
         bare redb on the same machine: {best_bare:?} ({:?}/message)",
        best / 1000,
        best_bare / 1000
    );
    let t = Instant::now();
    let mut tx = Transaction::new();
    tx.insert(inbound("orders", "single.xml"));
    q.commit(tx).unwrap();
    println!("enqueue 1 message (one durable commit): {:?}", t.elapsed());

    // A backlog on another port must not slow claiming on this one.
    for chunk in 0..50 {
        let mut tx = Transaction::new();
        for i in 0..1000 {
            let mut m = inbound("backlog", &format!("{:08}.xml", chunk * 1000 + i));
            m.content = body.clone();
            tx.insert(m);
        }
        q.commit(tx).unwrap();
    }
    let t = Instant::now();
    let claimed = q.claim(Direction::Inbound, "orders", 1000, None).unwrap();
    let e = t.elapsed();
    println!(
        "claim {} of 55k queued in one transaction: {e:?} ({:?}/message)",
        claimed.len(),
        e / claimed.len() as u32
    );
    let t = Instant::now();
    let one = q.claim(Direction::Inbound, "orders", 1, None).unwrap();
    println!(
        "claim {} (one durable commit): {:?}",
        one.len(),
        t.elapsed()
    );
    let t = Instant::now();
    let mut tx = Transaction::new();
    for m in &claimed {
        tx.remove(m.key)
            .log_processed(m.message_id.clone(), "orders");
    }
    q.commit(tx).unwrap();
    let e = t.elapsed();
    println!(
        "remove + log 1000 in one transaction: {e:?} ({:?}/message)",
        e / 1000
    );
    let t = Instant::now();
    let c = q.counts().unwrap();
    println!("counts with 55k queued: {:?} {c:?}", t.elapsed());
    let t = Instant::now();
    let r = q.recover().unwrap();
    println!("recover with 55k queued: {:?} {r:?}", t.elapsed());
    q.check_invariants();
}

// ---------------------------------------------------------------------------
// Model-based property test: RedbQueue against a simple in-memory model.

#[derive(Debug, Clone)]
enum Op {
    Insert(Vec<(Direction, u8, u8, u8, bool)>),
    Claim {
        direction: Direction,
        port: u8,
        limit: u8,
        back: Option<u8>,
    },
    Peek {
        direction: Direction,
        port: u8,
        limit: u8,
        back: Option<u8>,
    },
    SetStatus(u16, Status),
    Remove(u16),
    /// A result committed under the lease: a status, or removal (`None`).
    Settle(u16, Option<Status>),
    Hold(u16),
    Release(u16),
    Delete(u16),
    Recover,
    BadTx,
    Reopen,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct ModelMsg {
    direction: Direction,
    port: String,
    name: String,
    position: u32,
    status: Status,
    attempts: u32,
}

#[derive(Default)]
struct Model {
    messages: BTreeMap<MessageKey, ModelMsg>,
    last: MessageKey,
}

/// Outcome of an operator action, comparable between model and queue.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    Ok,
    NotFound,
    NotAllowed,
    Claim,
}

fn outcome(r: Result<(), QueueError>) -> Outcome {
    match r {
        Ok(()) => Outcome::Ok,
        Err(QueueError::NotFound { .. }) => Outcome::NotFound,
        Err(QueueError::Rejected { reason, .. })
            if matches!(*reason, QueueError::NotFound { .. }) =>
        {
            Outcome::NotFound
        }
        Err(QueueError::Rejected { reason, .. }) if matches!(*reason, QueueError::Claim { .. }) => {
            Outcome::Claim
        }
        Err(QueueError::NotAllowed { .. }) => Outcome::NotAllowed,
        Err(e) => panic!("unexpected error {e:?}"),
    }
}

impl Model {
    fn pick(&self, i: u16) -> MessageKey {
        if self.messages.is_empty() {
            return 1_000_000;
        }
        *self
            .messages
            .keys()
            .nth(usize::from(i) % self.messages.len())
            .unwrap()
    }

    /// A transaction's change of a message: without the lease only of one
    /// not in flight, with it only of one claimed; never to an in-flight
    /// status; `None` removes it.
    fn change(&mut self, key: MessageKey, to: Option<Status>, leased: bool) -> Outcome {
        if to.is_some_and(Status::is_in_flight) {
            return Outcome::Claim;
        }
        match self.messages.get(&key) {
            None if leased => Outcome::Claim,
            None => Outcome::NotFound,
            Some(m) if m.status.is_in_flight() != leased => Outcome::Claim,
            Some(_) => {
                match to {
                    Some(status) => self.messages.get_mut(&key).unwrap().status = status,
                    None => {
                        self.messages.remove(&key);
                    }
                }
                Outcome::Ok
            }
        }
    }

    /// Claims end: in flight back to Ready. `counted`: the attempt stays
    /// counted (a recovery writes it); otherwise the claim is forgotten
    /// (the file was reopened: claims are not written).
    fn drop_claims(&mut self, counted: bool) -> RecoveryReport {
        let mut report = RecoveryReport::default();
        for m in self.messages.values_mut() {
            if m.status.is_in_flight() {
                report.count(m.status, 1);
                m.status = Status::Ready;
                if !counted {
                    m.attempts -= 1;
                }
            }
        }
        report
    }

    fn ready(
        &self,
        direction: Direction,
        port: &str,
        limit: usize,
        max: Option<MessageKey>,
    ) -> Vec<MessageKey> {
        let mut v: Vec<_> = self
            .messages
            .iter()
            .filter(|(k, m)| {
                m.status == Status::Ready
                    && m.direction == direction
                    && m.port == port
                    && max.is_none_or(|max| **k <= max)
            })
            .map(|(k, m)| (m.name.clone(), m.position, *k))
            .collect();
        v.sort();
        v.into_iter().take(limit).map(|(_, _, k)| k).collect()
    }

    fn operator(&mut self, key: MessageKey, action: &str) -> Outcome {
        let Some(m) = self.messages.get(&key) else {
            return Outcome::NotFound;
        };
        let new = match (action, m.status) {
            ("hold", Status::Ready | Status::Error | Status::Hold) => Some(Status::Hold),
            ("release", Status::Ready | Status::Error | Status::Hold) => Some(Status::Ready),
            ("delete", s) if !s.is_in_flight() => None,
            _ => return Outcome::NotAllowed,
        };
        match new {
            Some(s) => self.messages.get_mut(&key).unwrap().status = s,
            None => {
                self.messages.remove(&key);
            }
        }
        Outcome::Ok
    }

    fn counts(&self) -> Vec<(Direction, String, Status, u64)> {
        let mut c: BTreeMap<(Direction, String, Status), u64> = BTreeMap::new();
        for m in self.messages.values() {
            *c.entry((m.direction, m.port.clone(), m.status))
                .or_default() += 1;
        }
        c.into_iter().map(|((d, p, s), n)| (d, p, s, n)).collect()
    }
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let status = prop::sample::select(Status::ALL.to_vec());
    let direction = || prop::sample::select(Direction::ALL.to_vec());
    let dir_port = (direction(), 0u8..3);
    prop_oneof![
        3 => prop::collection::vec((direction(), 0u8..3, 0u8..6, 0u8..3, prop::bool::weighted(0.1)), 1..8)
            .prop_map(Op::Insert),
        3 => (dir_port.clone(), 0u8..6, prop::option::of(0u8..4))
            .prop_map(|((direction, port), limit, back)| Op::Claim { direction, port, limit, back }),
        1 => (dir_port, 0u8..6, prop::option::of(0u8..4))
            .prop_map(|((direction, port), limit, back)| Op::Peek { direction, port, limit, back }),
        2 => (any::<u16>(), status.clone()).prop_map(|(i, s)| Op::SetStatus(i, s)),
        1 => any::<u16>().prop_map(Op::Remove),
        3 => (any::<u16>(), prop::option::of(status)).prop_map(|(i, s)| Op::Settle(i, s)),
        1 => any::<u16>().prop_map(Op::Hold),
        1 => any::<u16>().prop_map(Op::Release),
        1 => any::<u16>().prop_map(Op::Delete),
        1 => Just(Op::Recover),
        1 => Just(Op::BadTx),
        1 => Just(Op::Reopen),
    ]
}

const PORTS: [&str; 3] = ["orders", "order", "customers"];

fn run_ops(ops: Vec<Op>) {
    let dir = tempfile::tempdir().unwrap();
    let mut q = Some(RedbQueue::open(dir.path()).unwrap());
    let mut lease = q.as_ref().unwrap().recover("model").unwrap().0;
    let mut model = Model::default();
    for op in ops {
        let queue = q.as_ref().unwrap();
        match op {
            Op::Insert(specs) => {
                let mut tx = Transaction::new();
                let mut expected = Vec::new();
                for (direction, port, name, position, malformed) in specs {
                    let mut m = msg(
                        direction,
                        PORTS[usize::from(port)],
                        &format!("n{name}"),
                        u32::from(position),
                    );
                    if malformed {
                        m.status = Status::MalformedXml;
                    }
                    expected.push(ModelMsg {
                        direction,
                        port: m.port.clone(),
                        name: m.name.clone(),
                        position: m.position,
                        status: m.status,
                        attempts: 0,
                    });
                    tx.insert(m);
                }
                let keys = queue.commit(tx).unwrap();
                assert_eq!(keys.len(), expected.len());
                for (k, m) in keys.into_iter().zip(expected) {
                    model.last += 1;
                    assert_eq!(k, model.last);
                    model.messages.insert(k, m);
                }
            }
            Op::Claim {
                direction,
                port,
                limit,
                back,
            }
            | Op::Peek {
                direction,
                port,
                limit,
                back,
            } => {
                let claim = matches!(op, Op::Claim { .. });
                let port = PORTS[usize::from(port)];
                let max = back.map(|b| model.last.saturating_sub(u64::from(b)));
                let want = model.ready(direction, port, usize::from(limit), max);
                let got = if claim {
                    queue
                        .claim(
                            &lease,
                            &ClaimRequest::new(direction, port, usize::from(limit)).up_to(max),
                        )
                        .unwrap()
                } else {
                    queue
                        .ready(direction, port, usize::from(limit), max)
                        .unwrap()
                };
                assert_eq!(keys(&got), want);
                if claim {
                    let target = match direction {
                        Direction::Inbound | Direction::OutboundRequest => Status::InProcess,
                        Direction::Outbound => Status::InTransportProcess,
                    };
                    for (k, m) in want.iter().zip(&got) {
                        let claimed = model.messages.get_mut(k).unwrap();
                        claimed.status = target;
                        claimed.attempts += 1;
                        assert_eq!(m.status, target);
                        assert_eq!(m.attempts, model.messages[k].attempts);
                    }
                }
            }
            Op::SetStatus(i, status) => {
                let key = model.pick(i);
                let mut tx = Transaction::new();
                tx.set_status(key, status, None);
                let got = outcome(queue.commit(tx).map(|_| ()));
                assert_eq!(got, model.change(key, Some(status), false));
            }
            Op::Remove(i) => {
                let key = model.pick(i);
                let mut tx = Transaction::new();
                tx.remove(key);
                let got = outcome(queue.commit(tx).map(|_| ()));
                assert_eq!(got, model.change(key, None, false));
            }
            Op::Settle(i, to) => {
                let key = model.pick(i);
                let mut tx = Transaction::under(lease.clone());
                match to {
                    Some(status) => tx.set_status(key, status, None),
                    None => tx.remove(key),
                };
                let got = outcome(queue.commit(tx).map(|_| ()));
                assert_eq!(got, model.change(key, to, true));
            }
            Op::Hold(i) => {
                let key = model.pick(i);
                assert_eq!(outcome(queue.hold(key)), model.operator(key, "hold"));
            }
            Op::Release(i) => {
                let key = model.pick(i);
                assert_eq!(outcome(queue.release(key)), model.operator(key, "release"));
            }
            Op::Delete(i) => {
                let key = model.pick(i);
                assert_eq!(outcome(queue.delete(key)), model.operator(key, "delete"));
            }
            Op::Recover => {
                let want = model.drop_claims(true);
                let (new, report) = queue.recover("model").unwrap();
                assert_eq!(report, want);
                assert!(new.epoch() > lease.epoch());
                lease = new;
            }
            Op::BadTx => {
                let mut tx = Transaction::new();
                tx.insert(inbound("orders", "bad"));
                if let Some((&k, _)) = model
                    .messages
                    .iter()
                    .find(|(_, m)| !m.status.is_in_flight())
                {
                    tx.set_status(k, Status::Hold, None).remove(k);
                }
                tx.set_status(model.last + 100, Status::Ready, None);
                assert_eq!(outcome(queue.commit(tx).map(|_| ())), Outcome::NotFound);
            }
            Op::Reopen => {
                drop(q.take());
                let reopened = RedbQueue::open(dir.path()).unwrap();
                model.drop_claims(false);
                let (new, report) = reopened.recover("model").unwrap();
                assert_eq!(report, RecoveryReport::default());
                lease = new;
                q = Some(reopened);
            }
        }
        let queue = q.as_ref().unwrap();
        assert_eq!(queue.counts().unwrap(), model.counts());
        assert_eq!(queue.last_key().unwrap(), model.last);
        let listed: Vec<(MessageKey, ModelMsg)> = queue
            .list(&Filter::default())
            .unwrap()
            .into_iter()
            .map(|m| {
                (
                    m.key,
                    ModelMsg {
                        direction: m.direction,
                        port: m.port,
                        name: m.name,
                        position: m.position,
                        status: m.status,
                        attempts: m.attempts,
                    },
                )
            })
            .collect();
        let want: Vec<_> = model
            .messages
            .iter()
            .map(|(k, m)| (*k, m.clone()))
            .collect();
        assert_eq!(listed, want);
    }
    q.unwrap().check_invariants();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn behaves_like_the_model(ops in prop::collection::vec(op_strategy(), 1..40)) {
        run_ops(ops);
    }
}

/// The layout version the file records (`meta/format`).
fn format_of(q: &RedbQueue) -> u64 {
    let txn = q.db.begin_read().unwrap();
    let meta = txn.open_table(META).unwrap();
    meta.get(FORMAT).unwrap().unwrap().value()
}

/// The bytes of message `key`'s content record, as stored.
fn content_record(q: &RedbQueue, key: MessageKey) -> Vec<u8> {
    let txn = q.db.begin_read().unwrap();
    let contents = txn.open_table(super::CONTENTS).unwrap();
    contents.get(key).unwrap().unwrap().value().to_vec()
}

/// A queue file of format 1 — every history version holding its document,
/// claims written to disk — with messages in every status: opened by this
/// build it is format 2, nothing is lost, the messages left in flight are
/// Ready after recovery, and new messages store their received version
/// once.
#[test]
fn a_format_1_queue_is_upgraded_on_open() {
    let dir = tempfile::tempdir().unwrap();
    let keys_by_status = {
        let q = RedbQueue::open(dir.path()).unwrap();
        let mut tx = Transaction::new();
        for status in Status::ALL {
            let mut m = inbound("p", status.kebab());
            if !status.is_in_flight() {
                m.status = status;
            }
            tx.insert(m);
            tx.history(history(&format!("id-{}", status.kebab()), "receive"));
        }
        tx.log_processed("done-1", "p");
        let k = q.commit(tx).unwrap();
        // What format 1 wrote: claims as statuses on disk, and its mark.
        q.write(|w| {
            for (i, status) in Status::ALL.into_iter().enumerate() {
                if status.is_in_flight() {
                    let meta = w.load(k[i])?;
                    w.set_status(k[i], meta, status, None)?;
                }
            }
            w.meta.insert(FORMAT, 1)?;
            Ok(())
        })
        .unwrap();
        k
    };
    let q = RedbQueue::open(dir.path()).unwrap();
    assert_eq!(format_of(&q), DB_FORMAT);
    for (i, status) in Status::ALL.into_iter().enumerate() {
        let m = q.get(keys_by_status[i]).unwrap().unwrap();
        assert_eq!(m.status, status);
        let h = q.history(&format!("id-{}", status.kebab())).unwrap();
        assert_eq!(h[0].content, "<doc stage='receive'/>");
    }
    let (_, report) = q.recover("after-upgrade").unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            in_process: 1,
            in_transport_process: 1
        }
    );
    for (i, status) in Status::ALL.into_iter().enumerate() {
        let want = if status.is_in_flight() {
            Status::Ready
        } else {
            status
        };
        assert_eq!(q.get(keys_by_status[i]).unwrap().unwrap().status, want);
    }
    assert!(q.is_processed("done-1").unwrap());
    let mut h = history("id-new", "receive");
    h.content = String::new();
    let mut tx = Transaction::new();
    tx.insert(inbound("p", "new")).history_of_inserted(h);
    q.commit(tx).unwrap();
    assert_eq!(
        q.history("id-new").unwrap()[0].content,
        "<Envelope>new#0</Envelope>"
    );
    q.check_invariants();
}

/// A queue file of format 2 — content stored as it is, however long — is
/// format 3 once opened: its documents read back unchanged (the received
/// version in the history too), and what is written from then on is
/// stored compressed and reads back the same.
#[test]
fn a_format_2_queue_keeps_its_uncompressed_content() {
    let dir = tempfile::tempdir().unwrap();
    let long = format!("<Envelope>{}</Envelope>", "<Line>1000</Line>".repeat(100));
    let key = {
        let q = RedbQueue::open(dir.path()).unwrap();
        let mut m = inbound("p", "old");
        m.content = long.clone();
        let mut h = history("id-old", "receive");
        h.content = String::new();
        let mut tx = Transaction::new();
        tx.insert(m).history_of_inserted(h);
        let k = q.commit(tx).unwrap()[0];
        // What format 2 wrote: the format byte and the text.
        q.write(|w| {
            let mut record = vec![super::codec::FORMAT_V1];
            record.extend_from_slice(long.as_bytes());
            w.contents.insert(k, record.as_slice())?;
            w.meta.insert(FORMAT, 2)?;
            Ok(())
        })
        .unwrap();
        k
    };
    let q = RedbQueue::open(dir.path()).unwrap();
    assert_eq!(format_of(&q), DB_FORMAT);
    assert_eq!(content_record(&q, key)[0], super::codec::FORMAT_V1);
    assert_eq!(q.get(key).unwrap().unwrap().content, long);
    assert_eq!(q.history("id-old").unwrap()[0].content, long);
    let mut m = inbound("p", "new");
    m.content = long.replace("1000", "2000");
    let mut tx = Transaction::new();
    tx.insert(m);
    let k = q.commit(tx).unwrap()[0];
    let record = content_record(&q, k);
    assert_eq!(record[0], super::codec::FORMAT_CONTENT_LZ4);
    assert!(record.len() < long.len() / 4);
    assert_eq!(
        q.get(k).unwrap().unwrap().content,
        long.replace("1000", "2000")
    );
    q.check_invariants();
}

#[test]
fn retention_counts_keep_the_newest() {
    let (_dir, q) = fresh();
    super::super::conformance::counts_keep_the_newest(&q);
    q.check_invariants();
}
