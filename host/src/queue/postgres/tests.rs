//! Tests of [`PgQueue`]: the conformance suite, and what is particular to a
//! queue several hosts share (two `PgQueue`s on one schema: claims by
//! unit, fencing, failover after a lease expires, leaders of a task).
//!
//! They need a PostgreSQL server: `FERRY_TEST_POSTGRES_URL`, or one on
//! 127.0.0.1:5432 as the user `postgres`. `scripts/test` finds or starts
//! one and sets the variable. Each test works in a schema of its own,
//! dropped at the end.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use super::super::conformance::{Backend, conformance_suite, inbound, insert_all, keys};
use super::super::*;
use super::{PgOptions, PgQueue};

/// Where the tests' database is.
pub(crate) fn test_url() -> String {
    std::env::var("FERRY_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_string())
}

/// Drops the test's schema at the end.
pub(crate) struct Schema {
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        if let Ok(mut c) = ::postgres::Client::connect(&test_url(), ::postgres::NoTls) {
            let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name));
        }
    }
}

impl Backend for PgQueue {
    fn check_invariants(&self) {
        let mut c = self.pool.get().unwrap();
        // In flight if and only if claimed (also a CHECK of the table).
        let bad: i64 = c
            .query_one(
                "SELECT count(*) FROM messages WHERE (status IN (2, 5)) <> (owner IS NOT NULL)",
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(bad, 0, "in-flight status without a claim, or the reverse");
    }
}

static NEXT: AtomicU32 = AtomicU32::new(0);

/// A fresh schema's options (`lease` as given).
pub(crate) fn options(lease: Duration) -> (Schema, PgOptions) {
    let name = format!(
        "ferry_test_{}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    );
    let mut o = PgOptions::new(test_url());
    o.schema = name.clone();
    o.lease = lease;
    o.pool_size = 2;
    (Schema { name }, o)
}

fn open(o: &PgOptions) -> PgQueue {
    PgQueue::open(o.clone()).unwrap_or_else(|e| {
        panic!(
            "the PostgreSQL tests need a server (FERRY_TEST_POSTGRES_URL, or 127.0.0.1:5432; \
             scripts/test starts one): {e}"
        )
    })
}

fn fresh() -> (Schema, PgQueue) {
    let (schema, o) = options(Duration::from_secs(30));
    let q = open(&o);
    (schema, q)
}

conformance_suite!(fresh());

#[test]
fn a_second_open_finds_the_schema_migrated_and_a_newer_one_is_refused() {
    let (_schema, o) = options(Duration::from_secs(30));
    let a = open(&o);
    let k = insert_all(&a, [inbound("p", "a")]);
    let b = open(&o);
    assert_eq!(keys(&b.list(&Filter::default()).unwrap()), k);
    let mut c = a.pool.get().unwrap();
    c.execute(
        "INSERT INTO ferry_schema (version, applied_ms) VALUES (99, 0)",
        &[],
    )
    .unwrap();
    let e = PgQueue::open(o.clone()).unwrap_err().to_string();
    assert!(e.contains("has version 99"), "{e}");
}

#[test]
fn a_bad_url_or_schema_is_reported_clearly() {
    let mut o = PgOptions::new("postgres://nobody@127.0.0.1:1/none");
    o.schema = "Bad-Name".into();
    let e = PgQueue::open(o.clone()).unwrap_err().to_string();
    assert!(e.contains("cannot name the gateway queue's schema"), "{e}");
    o.schema = "ferry".into();
    let e = PgQueue::open(o).unwrap_err().to_string();
    assert!(
        e.contains(
            "cannot connect to the gateway queue's database postgres://nobody@127.0.0.1:1/none"
        ),
        "{e}"
    );
    assert_eq!(
        super::redact("postgres://u:secret@h:5432/d"),
        "postgres://u@h:5432/d"
    );
    assert_eq!(
        super::redact("host=h user=u password=secret"),
        "host=h user=u"
    );
}

/// Two hosts on one schema: units, fencing, failover.
#[test]
fn two_hosts_share_units_and_a_lost_lease_cannot_commit() {
    let (_schema, o) = options(Duration::from_millis(300));
    let a = open(&o);
    let b = open(&o);
    let conv = |name: &str, c: &str| {
        let mut m = inbound("par", name);
        m.conversation_id = Some(c.to_string());
        m
    };
    let k = insert_all(&a, [conv("1", "A"), conv("2", "A"), conv("3", "B")]);
    let (la, _) = a.recover("host-a").unwrap();
    let (lb, _) = b.recover("host-b").unwrap();
    let by_conv =
        |limit| ClaimRequest::new(Direction::Inbound, "par", limit).units(UnitBy::Conversation);
    assert_eq!(keys(&a.claim(&la, &by_conv(1)).unwrap()), vec![k[0]]);
    // B skips conversation A, held by host A, and takes B's.
    assert_eq!(keys(&b.claim(&lb, &by_conv(10)).unwrap()), vec![k[2]]);
    // Host A stops heartbeating; B's heartbeat, past A's lease, takes its
    // work back to Ready and fences A off.
    std::thread::sleep(Duration::from_millis(400));
    b.renew(&lb).unwrap();
    assert_eq!(b.get(k[0]).unwrap().unwrap().status, Status::Ready);
    assert_eq!(b.get(k[0]).unwrap().unwrap().attempts, 1);
    let mut tx = Transaction::under(la.clone());
    tx.remove(k[0]);
    let e = a.commit(tx).unwrap_err();
    assert!(matches!(e, QueueError::StaleLease { .. }), "{e}");
    assert!(matches!(
        a.renew(&la).unwrap_err(),
        QueueError::StaleLease { .. }
    ));
    // B now takes conversation A in order.
    assert_eq!(keys(&b.claim(&lb, &by_conv(10)).unwrap()), vec![k[0], k[1]]);
    // A starts again with a new lease and finds nothing of its own.
    let (la2, report) = a.recover("host-a").unwrap();
    assert_eq!(report.total(), 0);
    assert!(la2.epoch() > la.epoch());
    assert!(a.claim(&la2, &by_conv(10)).unwrap().is_empty());
    b.check_invariants();
}

/// Polls `done` until it holds, for 20 s at most (the caller asserts).
fn wait_until(mut done: impl FnMut() -> bool) {
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while !done() && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A transaction on `conn`, begun.
fn begin(conn: &mut super::Conn) -> super::Tx<'_> {
    let super::Conn { client, statements } = conn;
    super::Tx {
        on: super::On::Transaction(client.transaction().unwrap()),
        statements,
    }
}

/// A transaction on `conn` that has checked `lease` and not ended: a host
/// between its lease check and its commit.
fn checked<'c>(conn: &'c mut super::Conn, lease: &Lease) -> super::Tx<'c> {
    let mut t = begin(conn);
    super::check_lease(&mut t, lease).unwrap();
    t
}

/// The expiry `owners` holds for `owner` (None: NULL).
fn expiry(q: &PgQueue, owner: &str) -> Option<i64> {
    let mut c = q.pool.get().unwrap();
    c.query_one("SELECT expires_ms FROM owners WHERE owner = $1", &[&owner])
        .unwrap()
        .get(0)
}

/// A busy host keeps its lease: its heartbeat does not wait for the
/// transactions that checked its lease (claims, commits), while a fence
/// of the host does — nothing commits under an epoch already replaced.
#[test]
fn a_commit_in_flight_lets_the_lease_renew_and_holds_off_a_fence() {
    let (_schema, o) = options(Duration::from_secs(30));
    let a = open(&o);
    let b = open(&o);
    let (la, _) = a.recover("host-a").unwrap();
    let mut conn = a.pool.get().unwrap();
    let inflight = checked(&mut conn, &la);
    std::thread::scope(|s| {
        // The heartbeat goes through at once (it waited behind such
        // transactions when they held the row `FOR SHARE`).
        let renewed = s.spawn(|| a.renew(&la));
        wait_until(|| renewed.is_finished());
        assert!(
            renewed.is_finished(),
            "the lease's renewal waited for a transaction that checked the lease"
        );
        renewed.join().unwrap().unwrap();
        // Another host fencing A off (here: A starting again elsewhere)
        // waits until the transaction has ended.
        let fence = s.spawn(|| b.recover("host-a"));
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            !fence.is_finished(),
            "the fence did not wait for a transaction under the lease"
        );
        inflight.commit().unwrap();
        let (fresh, _) = fence.join().unwrap().unwrap();
        assert!(fresh.epoch() > la.epoch());
    });
    drop(conn);
    assert!(matches!(
        a.renew(&la).unwrap_err(),
        QueueError::StaleLease { .. }
    ));
}

#[test]
fn one_host_at_a_time_leads_a_task_of_a_port() {
    let (_schema, o) = options(Duration::from_millis(300));
    let a = open(&o);
    let b = open(&o);
    let (la, _) = a.recover("host-a").unwrap();
    let (lb, _) = b.recover("host-b").unwrap();
    assert!(a.lead(&la, "receive", "orders").unwrap());
    assert!(a.lead(&la, "receive", "orders").unwrap());
    assert!(!b.lead(&lb, "receive", "orders").unwrap());
    assert!(b.lead(&lb, "receive", "other").unwrap());
    // A's lease expires: B takes over its folder.
    std::thread::sleep(Duration::from_millis(400));
    b.renew(&lb).unwrap();
    assert!(b.lead(&lb, "receive", "orders").unwrap());
    assert!(matches!(
        a.lead(&la, "receive", "orders").unwrap_err(),
        QueueError::StaleLease { .. }
    ));
}

#[test]
fn the_listener_turns_another_hosts_commit_into_a_wake_up() {
    let (_schema, o) = options(Duration::from_secs(30));
    let a = open(&o);
    let b = open(&o);
    b.listen(Duration::from_secs(60));
    let signal = b.work_signal();
    // The listener bumps once when it starts listening.
    let mut seen = signal.wait(signal.seq(), Duration::from_secs(10));
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut woken = false;
    while std::time::Instant::now() < deadline {
        insert_all(&a, [inbound("p", "x")]);
        let now = signal.wait(seen, Duration::from_millis(500));
        if now > seen {
            woken = true;
            break;
        }
        seen = now;
    }
    assert!(woken, "no wake-up reached the other queue");
}

#[test]
fn pruning_removes_old_records_and_keeps_what_is_about_a_queued_message() {
    use super::super::retention::{Retention, pass};
    let (_schema, q) = fresh();
    let queued = insert_all(&q, [inbound("p", "a")])[0];
    let mut tx = Transaction::new();
    tx.log_processed("OLD", "p");
    let mut about_queued = super::super::conformance::exception("p", None, "kept");
    about_queued.message_key = Some(queued);
    let mut gone = super::super::conformance::exception("p", None, "gone");
    gone.message_key = Some(999_999);
    tx.exception(about_queued).exception(gone);
    let mut h = super::super::conformance::history("OLD", "service");
    h.message_key = None;
    tx.history(h);
    q.commit(tx).unwrap();
    let policy = Retention {
        message_log: Some(0),
        message_log_max: None,
        history: Some(0),
        history_max: None,
        exceptions: Some(0),
        exceptions_max: None,
        audit: Some(0),
        audit_max: None,
    };
    // Everything was written before "now + 1 s": old enough for an age of 0.
    let now = super::now_ms() + 1_000;
    let pruned = pass(&q, &policy, now, &|| false).unwrap();
    assert_eq!(pruned.message_log, 1);
    assert_eq!(pruned.history, 1);
    assert_eq!(pruned.exceptions, 1);
    assert!(!q.is_processed("OLD").unwrap());
    assert!(q.history("OLD").unwrap().is_empty());
    let left = q.exceptions(&ExceptionFilter::default()).unwrap();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0].text, "kept");
}

#[test]
fn retention_counts_keep_the_newest() {
    let (_schema, q) = fresh();
    super::super::conformance::counts_keep_the_newest(&q);
}

/// The database closes the pool's connection (a restart, an operator's
/// `pg_terminate_backend`): the pool does not test a connection when it is
/// taken, so the next read and the next commit find it closed — and run
/// again on a new connection instead of failing.
#[test]
fn a_connection_the_database_closed_is_replaced_not_reported() {
    let (_schema, mut o) = options(Duration::from_secs(30));
    o.pool_size = 1;
    let q = open(&o);
    let first = insert_all(&q, [inbound("p", "a")]);
    let backend = |q: &PgQueue| -> i32 {
        q.read(|c| c.query_one("SELECT pg_backend_pid()", &[]))
            .unwrap()
            .get(0)
    };
    let mut admin = ::postgres::Client::connect(&test_url(), ::postgres::NoTls).unwrap();
    for round in 0..2 {
        let pid = backend(&q);
        let gone: bool = admin
            .query_one("SELECT pg_terminate_backend($1)", &[&pid])
            .unwrap()
            .get(0);
        assert!(gone, "round {round}: backend {pid} not terminated");
        // Wait until the server has closed it.
        while admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .unwrap()
            .get::<_, i64>(0)
            > 0
        {
            std::thread::sleep(Duration::from_millis(10));
        }
        if round == 0 {
            // A read first.
            assert_eq!(keys(&q.list(&Filter::default()).unwrap()), first);
        } else {
            // A commit first.
            insert_all(&q, [inbound("p", "b")]);
        }
        assert_ne!(
            backend(&q),
            pid,
            "round {round}: still the closed connection"
        );
    }
    assert_eq!(q.list(&Filter::default()).unwrap().len(), 2);
}

/// A host frozen (stopped, swapped out) in the middle of a transaction,
/// past its lease, wakes while another host is fencing it off: it cannot
/// renew its way out. Its transaction, which checked the lease before,
/// still commits (the fence waited for it), and then its work goes back to
/// Ready.
#[test]
fn a_host_waking_past_its_lease_cannot_renew_once_a_fence_began() {
    let (_schema, o) = options(Duration::from_millis(300));
    let a = open(&o);
    let b = open(&o);
    let k = insert_all(&a, [inbound("p", "1"), inbound("p", "2")]);
    let (la, _) = a.recover("host-a").unwrap();
    let (lb, _) = b.recover("host-b").unwrap();
    let claimed = a
        .claim(&la, &ClaimRequest::new(Direction::Inbound, "p", 10))
        .unwrap();
    assert_eq!(keys(&claimed), k);
    let mut conn = a.pool.get().unwrap();
    let inflight = checked(&mut conn, &la);
    std::thread::sleep(Duration::from_millis(400));
    std::thread::scope(|s| {
        let fence = s.spawn(|| b.take_over("host-a"));
        wait_until(|| expiry(&b, "host-a") == Some(super::FENCING));
        assert_eq!(expiry(&b, "host-a"), Some(super::FENCING), "no mark");
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !fence.is_finished(),
            "the fence did not wait for a transaction under the lease"
        );
        // A wakes: its heartbeat is refused.
        assert!(matches!(
            a.renew(&la).unwrap_err(),
            QueueError::StaleLease { .. }
        ));
        // And so is any lease check after the mark.
        let mut other = a.pool.get().unwrap();
        let mut late = begin(&mut other);
        assert!(matches!(
            super::check_lease(&mut late, &la).unwrap_err(),
            QueueError::StaleLease { .. }
        ));
        drop(late);
        inflight.commit().unwrap();
        let report = fence.join().unwrap().unwrap().expect("fenced off");
        assert_eq!(report.total(), 2);
    });
    drop(conn);
    assert_eq!(expiry(&b, "host-a"), None);
    assert!(matches!(
        a.renew(&la).unwrap_err(),
        QueueError::StaleLease { .. }
    ));
    b.renew(&lb).unwrap();
    for key in k {
        assert_eq!(b.get(key).unwrap().unwrap().status, Status::Ready);
    }
    b.check_invariants();
}

/// A host that marked an owner as being fenced off and died before it
/// returned the owner's work: the next heartbeat of another host finishes
/// the job; an owner fenced off and released is not taken over again.
#[test]
fn a_fence_left_half_done_is_finished_by_the_next_heartbeat() {
    let (_schema, o) = options(Duration::from_secs(30));
    let a = open(&o);
    let b = open(&o);
    let k = insert_all(&a, [inbound("p", "1")]);
    let (la, _) = a.recover("host-a").unwrap();
    let (lb, _) = b.recover("host-b").unwrap();
    a.claim(&la, &ClaimRequest::new(Direction::Inbound, "p", 10))
        .unwrap();
    // The first step of a fence, and nothing more.
    let mut c = b.pool.get().unwrap();
    c.execute(
        "UPDATE owners SET expires_ms = $1 WHERE owner = 'host-a'",
        &[&super::FENCING],
    )
    .unwrap();
    drop(c);
    assert!(matches!(
        a.renew(&la).unwrap_err(),
        QueueError::StaleLease { .. }
    ));
    assert_eq!(b.get(k[0]).unwrap().unwrap().status, Status::InProcess);
    b.renew(&lb).unwrap();
    assert_eq!(b.get(k[0]).unwrap().unwrap().status, Status::Ready);
    assert_eq!(expiry(&b, "host-a"), None);
    assert_eq!(b.take_over("host-a").unwrap(), None);
    // A starts again: a new lease, which a heartbeat renews.
    let (la2, _) = a.recover("host-a").unwrap();
    assert!(la2.epoch() > la.epoch());
    a.renew(&la2).unwrap();
    b.check_invariants();
}
