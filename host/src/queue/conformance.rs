//! The gateway queue's contract as tests that any backend runs: the
//! conformance suite. A backend's tests call [`conformance_suite!`] with an
//! expression giving a fresh, empty queue (and a guard that keeps it alive,
//! e.g. its temporary directory); every function of this module then runs
//! against it as its own test.
//!
//! The suite speaks only through [`GatewayQueue`]: statuses and their
//! order, claims, leases and fencing, ordered units, recovery per owner,
//! wake-ups, transactions applied whole or not at all, the operator's
//! transitions, the message log, exceptions, history and the state area.

use std::cell::RefCell;
use std::ops::Deref;
use std::time::Duration;

use super::*;

/// A backend under test: a [`GatewayQueue`] that can check its own
/// internal consistency (indexes, counts) after a test.
pub(crate) trait Backend: GatewayQueue {
    /// Panics if the backend's internal state is inconsistent.
    fn check_invariants(&self) {}
}

/// The owner the suite claims as.
pub(crate) const OWNER: &str = "conformance";

/// A queue under test with the suite's lease: `claim`, `recover` and
/// `mark` as the services use them.
pub(crate) struct Tq<Q: GatewayQueue> {
    /// The queue.
    pub q: Q,
    lease: RefCell<Lease>,
}

impl<Q: GatewayQueue> Deref for Tq<Q> {
    type Target = Q;
    fn deref(&self) -> &Q {
        &self.q
    }
}

impl<Q: GatewayQueue> Tq<Q> {
    /// Recovers [`OWNER`] on `q` and keeps its lease.
    pub fn new(q: Q) -> Self {
        let (lease, _) = q.recover(OWNER).unwrap();
        Tq {
            q,
            lease: RefCell::new(lease),
        }
    }

    /// The suite's lease.
    pub fn lease(&self) -> Lease {
        self.lease.borrow().clone()
    }

    /// Claims under the suite's lease, every message its own unit.
    pub fn claim(
        &self,
        direction: Direction,
        port: &str,
        limit: usize,
        max_key: Option<MessageKey>,
    ) -> Result<Vec<QueuedMessage>, QueueError> {
        self.q.claim(
            &self.lease(),
            &ClaimRequest::new(direction, port, limit).up_to(max_key),
        )
    }

    /// Recovers [`OWNER`]; the suite's lease becomes the new one.
    pub fn recover(&self) -> Result<RecoveryReport, QueueError> {
        let (lease, report) = self.q.recover(OWNER)?;
        *self.lease.borrow_mut() = lease;
        Ok(report)
    }

    /// Commits under the suite's lease (a service's results).
    pub fn settle(&self, mut tx: Transaction) -> Result<Vec<MessageKey>, QueueError> {
        tx.set_lease(self.lease());
        self.q.commit(tx)
    }

    /// Sets the status of claimed messages under the suite's lease.
    pub fn mark(&self, keys: &[MessageKey], status: Status) -> Result<(), QueueError> {
        let mut tx = Transaction::under(self.lease());
        for &key in keys {
            tx.set_status(key, status, None);
        }
        self.q.commit(tx).map(|_| ())
    }
}

/// Runs the whole suite against a backend: `$fresh` is an expression giving
/// `(guard, queue)` for a fresh, empty queue.
macro_rules! conformance_suite {
    ($fresh:expr) => {
        $crate::queue::conformance::conformance_suite!(@each $fresh; commit_inserts_with_increasing_keys,
            new_message_fields_survive,
            claim_orders_by_name_position_key,
            claim_respects_limit_max_key_port_and_direction,
            claimed_messages_are_not_claimed_again_until_ready,
            remove_and_log_processed_make_it_a_duplicate,
            an_invalid_transaction_applies_nothing,
            set_content_and_error_reasons,
            recover_returns_unfinished_work_to_ready,
            operator_actions_follow_the_status_rules,
            list_filters_and_counts,
            exceptions_filter_newest_last,
            history_in_order_written_per_message_id,
            state_area,
            leases_fence_off_a_lost_claim,
            only_the_owner_settles_its_claims,
            ordered_units_are_held_by_one_owner,
            recovery_is_per_owner,
            a_commit_of_ready_work_wakes_waiters,
            in_flight_statuses_come_only_from_claims,
            the_received_version_is_stored_once,
            a_message_id_is_logged_once);
    };
    (@each $fresh:expr; $($name:ident),* $(,)?) => {$(
        #[test]
        fn $name() {
            let (_guard, q) = $fresh;
            $crate::queue::conformance::$name(&$crate::queue::conformance::Tq::new(q));
        }
    )*};
}
pub(crate) use conformance_suite;

pub(crate) fn msg(direction: Direction, port: &str, name: &str, position: u32) -> NewMessage {
    NewMessage {
        direction,
        port: port.to_string(),
        status: Status::Ready,
        name: name.to_string(),
        position,
        message_id: format!("{port}/{name}/{position}"),
        action: "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create"
            .to_string(),
        conversation_id: None,
        batch_id: None,
        request_message_id: None,
        content: format!("<Envelope>{name}#{position}</Envelope>"),
        error: None,
    }
}

pub(crate) fn inbound(port: &str, name: &str) -> NewMessage {
    msg(Direction::Inbound, port, name, 0)
}

pub(crate) fn insert_all(
    q: &dyn GatewayQueue,
    messages: impl IntoIterator<Item = NewMessage>,
) -> Vec<MessageKey> {
    let mut tx = Transaction::new();
    for m in messages {
        tx.insert(m);
    }
    q.commit(tx).unwrap()
}

pub(crate) fn keys(messages: &[QueuedMessage]) -> Vec<MessageKey> {
    messages.iter().map(|m| m.key).collect()
}

pub(crate) fn status_of(q: &dyn GatewayQueue, key: MessageKey) -> Status {
    q.get(key).unwrap().unwrap().status
}

pub(crate) fn set(q: &dyn GatewayQueue, key: MessageKey, status: Status) {
    let mut tx = Transaction::new();
    tx.set_status(key, status, None);
    q.commit(tx).unwrap();
}

pub(crate) fn exception(port: &str, message_id: Option<&str>, text: &str) -> NewException {
    NewException {
        time_ms: 1,
        port: port.to_string(),
        stage: "pipeline".to_string(),
        plugin: Some("value-substitution".to_string()),
        plugin_hash: Some("ab12cd34".to_string()),
        message_key: Some(7),
        message_id: message_id.map(str::to_string),
        text: text.to_string(),
    }
}

pub(crate) fn history(message_id: &str, stage: &str) -> HistoryEntry {
    HistoryEntry {
        time_ms: 5,
        message_id: message_id.to_string(),
        message_key: Some(1),
        port: "orders".to_string(),
        stage: stage.to_string(),
        plugins: vec![("xslt".to_string(), "h1".to_string())],
        content: format!("<doc stage='{stage}'/>"),
    }
}

#[test]
fn statuses_round_trip_display_and_from_str() {
    let words = [
        "Ready",
        "In process",
        "Hold",
        "Error",
        "In transport process",
        "Malformed XML",
    ];
    for (status, word) in Status::ALL.into_iter().zip(words) {
        assert_eq!(status.to_string(), word);
        assert_eq!(word.parse::<Status>().unwrap(), status);
        assert_eq!(word.to_uppercase().parse::<Status>().unwrap(), status);
        assert_eq!(word.to_lowercase().parse::<Status>().unwrap(), status);
        assert_eq!(status.kebab().parse::<Status>().unwrap(), status);
        assert_eq!(
            status.kebab().replace('-', "_").parse::<Status>().unwrap(),
            status
        );
        assert_eq!(Status::from_code(status.code()), Some(status));
    }
    assert_eq!("in-process".parse::<Status>().unwrap(), Status::InProcess);
    assert_eq!(
        "malformed-xml".parse::<Status>().unwrap(),
        Status::MalformedXml
    );
    let err = "done".parse::<Status>().unwrap_err().to_string();
    assert!(err.contains("unknown message status 'done'"), "{err}");
    assert!(err.contains("In transport process"), "{err}");
    assert!("inprocess".parse::<Status>().is_err());

    for d in Direction::ALL {
        assert_eq!(d.to_string().parse::<Direction>().unwrap(), d);
        assert_eq!(Direction::from_code(d.code()), Some(d));
    }
    assert_eq!("OUT".parse::<Direction>().unwrap(), Direction::Outbound);
    assert_eq!(
        "outbound-request".parse::<Direction>().unwrap(),
        Direction::OutboundRequest
    );
    assert_eq!(
        "Outbound_Request".parse::<Direction>().unwrap(),
        Direction::OutboundRequest
    );
    assert!("sideways".parse::<Direction>().is_err());
}

pub(crate) fn commit_inserts_with_increasing_keys<Q: Backend>(q: &Tq<Q>) {
    assert_eq!(q.last_key().unwrap(), 0);
    assert_eq!(
        q.commit(Transaction::new()).unwrap(),
        Vec::<MessageKey>::new()
    );
    let first = insert_all(
        &q.q,
        [inbound("orders", "b.xml"), inbound("orders", "a.xml")],
    );
    let second = insert_all(&q.q, [inbound("orders", "c.xml")]);
    let all: Vec<_> = first.iter().chain(&second).copied().collect();
    assert!(all.windows(2).all(|w| w[0] < w[1]), "{all:?}");
    assert_eq!(q.last_key().unwrap(), *all.last().unwrap());

    let m = q.get(first[0]).unwrap().unwrap();
    assert_eq!(m.key, first[0]);
    assert_eq!(m.name, "b.xml");
    assert_eq!(m.status, Status::Ready);
    assert_eq!(m.attempts, 0);
    assert_eq!(m.content, "<Envelope>b.xml#0</Envelope>");
    assert!(m.created_ms > 0 && m.updated_ms == m.created_ms);
    assert_eq!(q.get(9999).unwrap(), None);

    // Keys are never reused, even after the newest message is removed.
    let mut tx = Transaction::new();
    tx.remove(second[0]);
    q.commit(tx).unwrap();
    let third = insert_all(&q.q, [inbound("orders", "d.xml")]);
    assert!(third[0] > second[0]);
}

pub(crate) fn new_message_fields_survive<Q: Backend>(q: &Tq<Q>) {
    let mut m = msg(Direction::Outbound, "invoices", "résumé ✓.xml", 4);
    m.status = Status::MalformedXml;
    m.conversation_id = Some("conv-1".into());
    m.batch_id = Some("batch-9".into());
    m.request_message_id = Some("{req}".into());
    m.error = Some("line 3: unexpected end".into());
    m.content = "not <xml".into();
    let key = insert_all(&q.q, [m.clone()])[0];
    let got = q.get(key).unwrap().unwrap();
    let back = NewMessage {
        direction: got.direction,
        port: got.port,
        status: got.status,
        name: got.name,
        position: got.position,
        message_id: got.message_id,
        action: got.action,
        conversation_id: got.conversation_id,
        batch_id: got.batch_id,
        request_message_id: got.request_message_id,
        content: got.content,
        error: got.error,
    };
    assert_eq!(back, m);
}

pub(crate) fn claim_orders_by_name_position_key<Q: Backend>(q: &Tq<Q>) {
    // (name, position) in a fixed shuffled order, with repeats.
    let specs = [
        ("c.xml", 0),
        ("a.xml", 2),
        ("b.xml", 0),
        ("a.xml", 0),
        ("c.xml", 0),
        ("a.xml", 10),
        ("A.xml", 0),
        ("a.xml", 1),
        ("b.xml", 0),
        ("aa.xml", 0),
    ];
    let inserted = insert_all(
        &q.q,
        specs
            .iter()
            .map(|&(n, p)| msg(Direction::Inbound, "orders", n, p)),
    );
    let mut want: Vec<(&str, u32, MessageKey)> = specs
        .iter()
        .zip(&inserted)
        .map(|(&(n, p), &k)| (n, p, k))
        .collect();
    want.sort();
    let want: Vec<MessageKey> = want.into_iter().map(|(_, _, k)| k).collect();

    assert_eq!(
        keys(&q.ready(Direction::Inbound, "orders", 100, None).unwrap()),
        want
    );
    let claimed = q.claim(Direction::Inbound, "orders", 100, None).unwrap();
    assert_eq!(keys(&claimed), want);
    assert!(
        claimed
            .iter()
            .all(|m| m.status == Status::InProcess && m.attempts == 1)
    );
    q.check_invariants();
}

pub(crate) fn claim_respects_limit_max_key_port_and_direction<Q: Backend>(q: &Tq<Q>) {
    let early = insert_all(
        &q.q,
        [
            inbound("orders", "3.xml"),
            inbound("orders", "2.xml"),
            inbound("customers", "1.xml"),
            msg(Direction::Outbound, "orders", "0.xml", 0),
            inbound("orders2", "0.xml"),
            inbound("order", "0.xml"),
        ],
    );
    let snapshot = q.last_key().unwrap();
    let late = insert_all(&q.q, [inbound("orders", "1.xml")]);

    // Only keys <= snapshot: the later 1.xml is not taken although it sorts first.
    let peek = q
        .ready(Direction::Inbound, "orders", 10, Some(snapshot))
        .unwrap();
    assert_eq!(keys(&peek), vec![early[1], early[0]]);
    assert_eq!(
        keys(&q.ready(Direction::Inbound, "orders", 10, None).unwrap()),
        vec![late[0], early[1], early[0]]
    );

    let one = q
        .claim(Direction::Inbound, "orders", 1, Some(snapshot))
        .unwrap();
    assert_eq!(keys(&one), vec![early[1]]);
    assert!(
        q.claim(Direction::Inbound, "orders", 0, None)
            .unwrap()
            .is_empty()
    );
    let rest = q
        .claim(Direction::Inbound, "orders", 10, Some(snapshot))
        .unwrap();
    assert_eq!(keys(&rest), vec![early[0]]);
    assert!(
        q.claim(Direction::Inbound, "orders", 10, Some(snapshot))
            .unwrap()
            .is_empty()
    );

    // Other ports and the other direction were not touched.
    assert_eq!(status_of(&q.q, early[2]), Status::Ready);
    assert_eq!(status_of(&q.q, early[3]), Status::Ready);
    assert_eq!(status_of(&q.q, early[4]), Status::Ready);
    assert_eq!(status_of(&q.q, early[5]), Status::Ready);
    assert_eq!(status_of(&q.q, late[0]), Status::Ready);

    let out = q.claim(Direction::Outbound, "orders", 10, None).unwrap();
    assert_eq!(keys(&out), vec![early[3]]);
    assert_eq!(out[0].status, Status::InTransportProcess);

    // A response waiting for outbound processing is processed, not sent.
    let request = insert_all(&q.q, [msg(Direction::OutboundRequest, "orders", "r", 0)]);
    assert!(
        q.claim(Direction::Outbound, "orders", 10, None)
            .unwrap()
            .is_empty()
    );
    let taken = q
        .claim(Direction::OutboundRequest, "orders", 10, None)
        .unwrap();
    assert_eq!(keys(&taken), request);
    assert_eq!(taken[0].status, Status::InProcess);
    assert!(
        q.claim(Direction::Inbound, "nope", 10, None)
            .unwrap()
            .is_empty()
    );
    q.check_invariants();
}

pub(crate) fn claimed_messages_are_not_claimed_again_until_ready<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a"), inbound("p", "b")]);
    let first = q.claim(Direction::Inbound, "p", 1, None).unwrap();
    assert_eq!(keys(&first), vec![k[0]]);
    assert_eq!(status_of(&q.q, k[0]), Status::InProcess);
    let second = q.claim(Direction::Inbound, "p", 5, None).unwrap();
    assert_eq!(keys(&second), vec![k[1]]);
    assert!(
        q.claim(Direction::Inbound, "p", 5, None)
            .unwrap()
            .is_empty()
    );

    // A failure puts it back to Ready (e.g. a transient error): claimable again.
    let mut tx = Transaction::new();
    tx.set_status(k[0], Status::Ready, Some("timeout".into()));
    q.settle(tx).unwrap();
    let again = q.claim(Direction::Inbound, "p", 5, None).unwrap();
    assert_eq!(keys(&again), vec![k[0]]);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(again[0].error.as_deref(), Some("timeout"));

    // mark() is set_status for many, keeping the error.
    q.mark(&[k[0], k[1]], Status::Ready).unwrap();
    assert_eq!(
        q.get(k[0]).unwrap().unwrap().error.as_deref(),
        Some("timeout")
    );
    assert_eq!(keys(&q.ready(Direction::Inbound, "p", 5, None).unwrap()), k);
    let mut tx = Transaction::new();
    tx.set_status(k[0], Status::Hold, None)
        .set_status(12345, Status::Hold, None);
    assert!(matches!(
        q.commit(tx),
        Err(QueueError::Rejected { index: 1, .. })
    ));
    assert_eq!(status_of(&q.q, k[0]), Status::Ready);
    q.check_invariants();
}

pub(crate) fn remove_and_log_processed_make_it_a_duplicate<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a")])[0];
    let m = q.claim(Direction::Inbound, "p", 1, None).unwrap().remove(0);
    assert!(!q.is_processed(&m.message_id).unwrap());
    let mut tx = Transaction::new();
    tx.remove(k)
        .log_processed(m.message_id.clone(), "p")
        .history(history(&m.message_id, "service"));
    q.settle(tx).unwrap();
    assert!(q.is_processed(&m.message_id).unwrap());
    assert!(!q.is_processed("other").unwrap());
    // Asked for several at once: one answer per id, in the order asked,
    // an id asked twice answered twice.
    let id = m.message_id.as_str();
    assert_eq!(
        q.are_processed(&["other", id, "another", id]).unwrap(),
        [false, true, false, true]
    );
    assert!(q.are_processed(&[]).unwrap().is_empty());
    assert_eq!(q.get(k).unwrap(), None);
    assert!(q.counts().unwrap().is_empty());
    assert_eq!(q.history(&m.message_id).unwrap().len(), 1);
    q.check_invariants();
}

pub(crate) fn an_invalid_transaction_applies_nothing<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a")])[0];
    let before_counts = q.counts().unwrap();
    let before_last = q.last_key().unwrap();

    let mut tx = Transaction::new();
    tx.insert(inbound("p", "b"))
        .set_status(k, Status::Error, Some("bad".into()))
        .log_processed("m1", "p")
        .exception(exception("p", Some("m1"), "x"))
        .history(history("m1", "inbound"))
        .put_state("job/1", b"x".to_vec())
        .set_status(4242, Status::Ready, None);
    let err = q.commit(tx).unwrap_err();
    match &err {
        QueueError::Rejected {
            index,
            change,
            reason,
        } => {
            assert_eq!(*index, 6);
            assert_eq!(*change, "set status");
            assert!(matches!(**reason, QueueError::NotFound { key: 4242 }));
        }
        other => panic!("unexpected {other:?}"),
    }
    let text = err.to_string();
    assert!(text.contains("nothing in it was applied"), "{text}");
    assert!(
        text.contains("message 4242 is not in the gateway queue"),
        "{text}"
    );

    assert_eq!(q.counts().unwrap(), before_counts);
    assert_eq!(q.last_key().unwrap(), before_last);
    assert_eq!(status_of(&q.q, k), Status::Ready);
    assert!(!q.is_processed("m1").unwrap());
    assert!(
        q.exceptions(&ExceptionFilter::default())
            .unwrap()
            .is_empty()
    );
    assert!(q.history("m1").unwrap().is_empty());
    assert_eq!(q.get_state("job/1").unwrap(), None);

    // Removing twice in one transaction: the second sees the first.
    let mut tx = Transaction::new();
    tx.remove(k).remove(k);
    assert!(matches!(
        q.commit(tx),
        Err(QueueError::Rejected {
            index: 1,
            change: "remove",
            ..
        })
    ));
    let mut tx = Transaction::new();
    tx.set_content(999, "x".into());
    assert!(matches!(
        q.commit(tx),
        Err(QueueError::Rejected {
            change: "set content",
            ..
        })
    ));
    assert_eq!(status_of(&q.q, k), Status::Ready);
    // The next key continues after the last committed one.
    let next = insert_all(&q.q, [inbound("p", "c")])[0];
    assert_eq!(next, before_last + 1);
    q.check_invariants();
}

pub(crate) fn set_content_and_error_reasons<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a")])[0];
    let mut tx = Transaction::new();
    tx.set_status(k, Status::Error, Some("schema: missing SalesId".into()));
    q.commit(tx).unwrap();
    let mut tx = Transaction::new();
    tx.set_content(k, "<Envelope>fixed</Envelope>".into());
    q.commit(tx).unwrap();
    q.release(k).unwrap();
    let m = q.get(k).unwrap().unwrap();
    assert_eq!(m.status, Status::Ready);
    assert_eq!(m.content, "<Envelope>fixed</Envelope>");
    assert_eq!(m.error.as_deref(), Some("schema: missing SalesId"));
    q.check_invariants();
}

pub(crate) fn recover_returns_unfinished_work_to_ready<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(
        &q.q,
        [
            inbound("p", "a"),
            inbound("p", "b"),
            msg(Direction::Outbound, "p", "c", 0),
            inbound("p", "d"),
        ],
    );
    set(&q.q, k[3], Status::Error);
    q.claim(Direction::Inbound, "p", 2, None).unwrap();
    q.claim(Direction::Outbound, "p", 2, None).unwrap();
    let report = q.recover().unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            in_process: 2,
            in_transport_process: 1
        }
    );
    assert_eq!(report.total(), 3);
    for &key in &k[..3] {
        let m = q.get(key).unwrap().unwrap();
        assert_eq!(m.status, Status::Ready);
        assert_eq!(m.attempts, 1);
    }
    assert_eq!(status_of(&q.q, k[3]), Status::Error);
    assert_eq!(q.recover().unwrap(), RecoveryReport::default());
    q.check_invariants();
}

pub(crate) fn operator_actions_follow_the_status_rules<Q: Backend>(q: &Tq<Q>) {
    // One message in each status: the in-flight ones by claiming.
    let mut tx = Transaction::new();
    for status in Status::ALL {
        let mut m = match status {
            Status::InProcess => inbound("claimed", status.kebab()),
            Status::InTransportProcess => msg(Direction::Outbound, "claimed", status.kebab(), 0),
            _ => inbound("p", status.kebab()),
        };
        if !status.is_in_flight() {
            m.status = status;
        }
        tx.insert(m);
    }
    let inserted = q.commit(tx).unwrap();
    q.claim(Direction::Inbound, "claimed", 1, None).unwrap();
    q.claim(Direction::Outbound, "claimed", 1, None).unwrap();
    let key_of = |s: Status| inserted[Status::ALL.iter().position(|&x| x == s).unwrap()];
    for status in Status::ALL {
        assert_eq!(status_of(&q.q, key_of(status)), status);
    }

    // hold: Ready and Error -> Hold; Hold stays; the rest refused.
    for status in Status::ALL {
        let key = key_of(status);
        let result = q.hold(key);
        match status {
            Status::Ready | Status::Error | Status::Hold => {
                result.unwrap();
                assert_eq!(status_of(&q.q, key), Status::Hold);
            }
            _ => {
                let err = result.unwrap_err();
                assert!(
                    matches!(err, QueueError::NotAllowed { action: "hold", status: s, .. } if s == status),
                    "{err:?}"
                );
                assert!(
                    err.to_string()
                        .contains(&format!("cannot hold message {key}: it is {status}"))
                );
                assert_eq!(status_of(&q.q, key), status);
            }
        }
    }
    let err = q.hold(key_of(Status::InProcess)).unwrap_err().to_string();
    assert!(err.contains("wait until it finishes"), "{err}");

    // release: Hold / Error -> Ready, Ready stays; in flight and malformed refused.
    set(&q.q, key_of(Status::Error), Status::Error);
    for status in Status::ALL {
        let key = key_of(status);
        let before = status_of(&q.q, key);
        let result = q.release(key);
        match before {
            Status::Ready | Status::Hold | Status::Error => {
                result.unwrap();
                assert_eq!(status_of(&q.q, key), Status::Ready);
            }
            other => {
                let err = result.unwrap_err();
                assert!(matches!(
                    err,
                    QueueError::NotAllowed {
                        action: "release",
                        ..
                    }
                ));
                assert_eq!(status_of(&q.q, key), other);
            }
        }
    }
    let err = q
        .release(key_of(Status::MalformedXml))
        .unwrap_err()
        .to_string();
    assert!(err.contains("Malformed XML"), "{err}");

    // delete: all but in-flight.
    for status in Status::ALL {
        let key = key_of(status);
        let result = q.delete(key);
        if status.is_in_flight() {
            assert!(matches!(
                result,
                Err(QueueError::NotAllowed {
                    action: "delete",
                    ..
                })
            ));
            assert!(q.get(key).unwrap().is_some());
        } else {
            result.unwrap();
            assert!(q.get(key).unwrap().is_none());
        }
    }
    for action in [Q::hold, Q::release, Q::delete] {
        let err = action(&q.q, 777).unwrap_err();
        assert!(matches!(err, QueueError::NotFound { key: 777 }));
        assert!(
            err.to_string()
                .contains("message 777 is not in the gateway queue")
        );
    }
    q.check_invariants();
}

pub(crate) fn list_filters_and_counts<Q: Backend>(q: &Tq<Q>) {
    let mut with_conv = inbound("orders", "x");
    with_conv.conversation_id = Some("cust-1".into());
    let k = insert_all(
        &q.q,
        [
            inbound("orders", "a"),
            with_conv.clone(),
            inbound("customers", "b"),
            msg(Direction::Outbound, "orders", "c", 0),
            with_conv,
        ],
    );
    set(&q.q, k[2], Status::Error);
    set(&q.q, k[0], Status::Hold);

    let list = |f: Filter| keys(&q.list(&f).unwrap());
    assert_eq!(list(Filter::default()), k);
    assert_eq!(
        list(Filter {
            port: Some("orders".into()),
            ..Filter::default()
        }),
        vec![k[0], k[1], k[3], k[4]]
    );
    assert_eq!(
        list(Filter {
            direction: Some(Direction::Outbound),
            ..Filter::default()
        }),
        vec![k[3]]
    );
    assert_eq!(
        list(Filter {
            status: Some(Status::Ready),
            ..Filter::default()
        }),
        vec![k[1], k[3], k[4]]
    );
    assert_eq!(
        list(Filter {
            status: Some(Status::Ready),
            direction: Some(Direction::Inbound),
            limit: Some(1),
            ..Filter::default()
        }),
        vec![k[1]]
    );
    assert_eq!(
        list(Filter {
            conversation_id: Some("cust-1".into()),
            ..Filter::default()
        }),
        vec![k[1], k[4]]
    );
    assert_eq!(
        list(Filter {
            limit: Some(2),
            ..Filter::default()
        }),
        vec![k[0], k[1]]
    );
    assert!(
        list(Filter {
            limit: Some(0),
            ..Filter::default()
        })
        .is_empty()
    );
    assert_eq!(
        list(Filter {
            status: Some(Status::Error),
            port: Some("customers".into()),
            ..Filter::default()
        }),
        vec![k[2]]
    );

    assert_eq!(
        q.counts().unwrap(),
        vec![
            (
                Direction::Inbound,
                "customers".to_string(),
                Status::Error,
                1
            ),
            (Direction::Inbound, "orders".to_string(), Status::Ready, 2),
            (Direction::Inbound, "orders".to_string(), Status::Hold, 1),
            (Direction::Outbound, "orders".to_string(), Status::Ready, 1),
        ]
    );
}

pub(crate) fn exceptions_filter_newest_last<Q: Backend>(q: &Tq<Q>) {
    let mut tx = Transaction::new();
    tx.exception(exception("orders", Some("m1"), "first"))
        .exception(exception("customers", Some("m2"), "second"))
        .exception(exception("orders", Some("m2"), "third"));
    q.commit(tx).unwrap();
    let mut tx = Transaction::new();
    tx.exception(NewException {
        message_key: Some(99),
        ..exception("orders", None, "fourth")
    });
    q.commit(tx).unwrap();

    let texts = |f: ExceptionFilter| {
        q.exceptions(&f)
            .unwrap()
            .into_iter()
            .map(|e| e.text)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        texts(ExceptionFilter::default()),
        ["first", "second", "third", "fourth"]
    );
    assert_eq!(
        texts(ExceptionFilter {
            port: Some("orders".into()),
            ..Default::default()
        }),
        ["first", "third", "fourth"]
    );
    assert_eq!(
        texts(ExceptionFilter {
            message_id: Some("m2".into()),
            ..Default::default()
        }),
        ["second", "third"]
    );
    assert_eq!(
        texts(ExceptionFilter {
            message_key: Some(99),
            ..Default::default()
        }),
        ["fourth"]
    );
    assert_eq!(
        texts(ExceptionFilter {
            port: Some("orders".into()),
            limit: Some(2),
            ..Default::default()
        }),
        ["third", "fourth"]
    );
    let all = q.exceptions(&ExceptionFilter::default()).unwrap();
    assert!(all.windows(2).all(|w| w[0].id < w[1].id));
    assert_eq!(all[0].plugin_hash.as_deref(), Some("ab12cd34"));
    assert_eq!(all[0].message_key, Some(7));
}

pub(crate) fn history_in_order_written_per_message_id<Q: Backend>(q: &Tq<Q>) {
    let mut tx = Transaction::new();
    tx.history(history("m1", "transforms"))
        .history(history("m10", "transforms"))
        .history(history("m1", "pipeline"));
    q.commit(tx).unwrap();
    let mut tx = Transaction::new();
    tx.history(history("m1", "service"));
    q.commit(tx).unwrap();
    let h = q.history("m1").unwrap();
    let stages: Vec<_> = h.iter().map(|e| e.stage.as_str()).collect();
    assert_eq!(stages, ["transforms", "pipeline", "service"]);
    assert_eq!(h[0], history("m1", "transforms"));
    assert_eq!(q.history("m10").unwrap().len(), 1);
    assert!(q.history("m").unwrap().is_empty());
}

pub(crate) fn state_area<Q: Backend>(q: &Tq<Q>) {
    assert_eq!(q.get_state("job/a").unwrap(), None);
    q.put_state("job/a", b"1").unwrap();
    q.put_state("job/b", b"2").unwrap();
    q.put_state("jobs", b"3").unwrap();
    q.put_state("other", b"4").unwrap();
    q.put_state("job/a", b"10").unwrap();
    assert_eq!(q.get_state("job/a").unwrap().as_deref(), Some(&b"10"[..]));
    assert_eq!(
        q.state_keys("job/").unwrap(),
        vec![
            ("job/a".to_string(), b"10".to_vec()),
            ("job/b".to_string(), b"2".to_vec())
        ]
    );
    assert_eq!(q.state_keys("").unwrap().len(), 4);
    assert!(q.delete_state("job/a").unwrap());
    assert!(!q.delete_state("job/a").unwrap());

    let k = insert_all(&q.q, [inbound("p", "a")])[0];
    let mut tx = Transaction::new();
    tx.remove(k)
        .put_state("job/c", b"x".to_vec())
        .delete_state("job/b");
    q.commit(tx).unwrap();
    assert_eq!(
        q.state_keys("job/").unwrap(),
        vec![("job/c".to_string(), b"x".to_vec())]
    );
}

/// Claims of `owner` (a second host) on the suite's queue.
fn lease_of<Q: GatewayQueue>(q: &Tq<Q>, owner: &str) -> Lease {
    q.q.recover(owner).unwrap().0
}

fn claim_as<Q: GatewayQueue>(
    q: &Tq<Q>,
    lease: &Lease,
    request: ClaimRequest<'_>,
) -> Vec<MessageKey> {
    keys(&q.q.claim(lease, &request).unwrap())
}

pub(crate) fn leases_fence_off_a_lost_claim<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a"), inbound("p", "b")]);
    let old = q.lease();
    assert_eq!(
        keys(&q.claim(Direction::Inbound, "p", 1, None).unwrap()),
        vec![k[0]]
    );
    q.renew(&old).unwrap();
    // The owner restarts (or another host takes its work over): the claim
    // is lost, the message Ready again with its attempt counted.
    let report = q.recover().unwrap();
    assert_eq!(report.in_process, 1);
    let new = q.lease();
    assert_eq!(new.owner(), old.owner());
    assert!(new.epoch() > old.epoch());
    let m = q.get(k[0]).unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (Status::Ready, 1));

    // The old lease can neither commit its result nor claim again.
    let mut tx = Transaction::under(old.clone());
    tx.remove(k[0]).log_processed("late", "p");
    let err = q.commit(tx).unwrap_err();
    assert!(matches!(err, QueueError::StaleLease { .. }), "{err:?}");
    assert!(err.to_string().contains("is no longer valid"), "{err}");
    assert!(matches!(
        q.q.claim(&old, &ClaimRequest::new(Direction::Inbound, "p", 5)),
        Err(QueueError::StaleLease { .. })
    ));
    assert!(matches!(q.renew(&old), Err(QueueError::StaleLease { .. })));
    assert!(!q.is_processed("late").unwrap());

    // Claimed again under the new lease: a result for the message presented
    // under a lease that does not hold it is refused.
    assert_eq!(
        keys(&q.claim(Direction::Inbound, "p", 1, None).unwrap()),
        vec![k[0]]
    );
    let other = lease_of(q, "ferry-b");
    let mut tx = Transaction::under(other.clone());
    tx.remove(k[0]);
    let err = q.commit(tx).unwrap_err();
    assert!(
        matches!(&err, QueueError::Rejected { reason, .. } if matches!(**reason, QueueError::Claim { .. })),
        "{err:?}"
    );
    // Nor may a lease change a message it never claimed (k[1] is Ready).
    let mut tx = Transaction::under(other);
    tx.set_status(k[1], Status::Error, Some("x".into()));
    assert!(matches!(q.commit(tx), Err(QueueError::Rejected { .. })));
    assert_eq!(status_of(&q.q, k[1]), Status::Ready);
    // The holder settles it; its attempt is written with the result.
    let mut tx = Transaction::new();
    tx.set_status(k[0], Status::Error, Some("bad".into()));
    q.settle(tx).unwrap();
    let m = q.get(k[0]).unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (Status::Error, 2));
    q.check_invariants();
}

pub(crate) fn only_the_owner_settles_its_claims<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a")])[0];
    q.claim(Direction::Inbound, "p", 1, None).unwrap();
    // Without a lease (an operator, another part of the host): refused.
    for change in [
        {
            let mut tx = Transaction::new();
            tx.remove(k);
            tx
        },
        {
            let mut tx = Transaction::new();
            tx.set_status(k, Status::Ready, None);
            tx
        },
    ] {
        let err = q.commit(change).unwrap_err().to_string();
        assert!(
            err.contains(&format!("in process under {}", q.lease())),
            "{err}"
        );
    }
    assert!(matches!(q.delete(k), Err(QueueError::NotAllowed { .. })));
    assert!(matches!(q.hold(k), Err(QueueError::NotAllowed { .. })));
    assert_eq!(status_of(&q.q, k), Status::InProcess);
    // The owner gives it back: Ready, claimable again, the attempt kept.
    q.give_back(&q.lease(), &[k]).unwrap();
    let m = q.get(k).unwrap().unwrap();
    assert_eq!((m.status, m.attempts), (Status::Ready, 1));
    let again = q.claim(Direction::Inbound, "p", 1, None).unwrap();
    assert_eq!(again[0].attempts, 2);
    q.check_invariants();
}

pub(crate) fn ordered_units_are_held_by_one_owner<Q: Backend>(q: &Tq<Q>) {
    let conv = |name: &str, c: Option<&str>| {
        let mut m = inbound("par", name);
        m.conversation_id = c.map(str::to_string);
        m
    };
    let k = insert_all(
        &q.q,
        [
            conv("1", Some("A")),
            conv("2", Some("A")),
            conv("3", Some("B")),
            conv("4", None),
            conv("5", Some("B")),
            conv("6", Some("C")),
            inbound("seq", "1"),
            inbound("seq", "2"),
        ],
    );
    let a = q.lease();
    let b = lease_of(q, "ferry-b");
    let by_conv =
        |limit| ClaimRequest::new(Direction::Inbound, "par", limit).units(UnitBy::Conversation);
    // A takes conversation A's head message.
    assert_eq!(claim_as(q, &a, by_conv(1)), vec![k[0]]);
    // B skips all of conversation A (held by A) without counting it, and
    // takes the heads of the other units in order.
    assert_eq!(claim_as(q, &b, by_conv(2)), vec![k[2], k[3]]);
    // A may take more of its own unit; not B's conversation B.
    assert_eq!(claim_as(q, &a, by_conv(10)), vec![k[1], k[5]]);
    assert_eq!(claim_as(q, &b, by_conv(10)), vec![k[4]]);
    // Once A settled all of conversation A, B may take it.
    let mut tx = Transaction::under(a.clone());
    tx.remove(k[0]).remove(k[1]);
    q.commit(tx).unwrap();
    let late = insert_all(&q.q, [conv("7", Some("A"))]);
    assert_eq!(claim_as(q, &b, by_conv(10)), late);

    // The members of a batch file without a ConversationId are one unit.
    let member = |name: &str, position: u32| {
        let mut m = msg(Direction::Inbound, "par", name, position);
        m.batch_id = Some("B1".to_string());
        m
    };
    let batch = insert_all(&q.q, [member("b", 0), member("b", 1)]);
    assert_eq!(claim_as(q, &a, by_conv(1)), vec![batch[0]]);
    assert!(claim_as(q, &b, by_conv(10)).is_empty());
    q.give_back(&a, &[batch[0]]).unwrap();

    // A sequential port is one unit: while A holds any of it, B gets none.
    let by_port = |limit| ClaimRequest::new(Direction::Inbound, "seq", limit).units(UnitBy::Port);
    assert_eq!(claim_as(q, &a, by_port(1)), vec![k[6]]);
    assert!(claim_as(q, &b, by_port(10)).is_empty());
    // Every message its own unit: no order across owners.
    assert_eq!(
        claim_as(q, &b, ClaimRequest::new(Direction::Inbound, "seq", 10)),
        vec![k[7]]
    );
    q.give_back(&a, &[k[6]]).unwrap();
    q.give_back(&b, &[k[7]]).unwrap();
    assert_eq!(claim_as(q, &b, by_port(10)), vec![k[6], k[7]]);
    assert!(claim_as(q, &a, by_port(10)).is_empty());
    q.check_invariants();
}

pub(crate) fn recovery_is_per_owner<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(
        &q.q,
        [
            inbound("p", "a"),
            inbound("p", "b"),
            msg(Direction::Outbound, "p", "c", 0),
        ],
    );
    let b = lease_of(q, "ferry-b");
    q.claim(Direction::Inbound, "p", 1, None).unwrap();
    q.q.claim(&b, &ClaimRequest::new(Direction::Inbound, "p", 1))
        .unwrap();
    q.q.claim(&b, &ClaimRequest::new(Direction::Outbound, "p", 1))
        .unwrap();
    // B is recovered (restarted, or its lease expired): only its work.
    let (b2, report) = q.q.recover("ferry-b").unwrap();
    assert_eq!(
        report,
        RecoveryReport {
            in_process: 1,
            in_transport_process: 1
        }
    );
    assert!(b2.epoch() > b.epoch());
    assert_eq!(status_of(&q.q, k[0]), Status::InProcess);
    assert_eq!(status_of(&q.q, k[1]), Status::Ready);
    assert_eq!(status_of(&q.q, k[2]), Status::Ready);
    // A's lease still holds.
    q.renew(&q.lease()).unwrap();
    let mut tx = Transaction::new();
    tx.remove(k[0]);
    q.settle(tx).unwrap();
    q.check_invariants();
}

pub(crate) fn a_commit_of_ready_work_wakes_waiters<Q: Backend>(q: &Tq<Q>) {
    let signal = q.work_signal();
    let seen = signal.seq();
    // Nothing committed: the wait times out.
    assert_eq!(signal.wait(seen, Duration::from_millis(5)), seen);
    // State and exceptions alone are no new work.
    q.put_state("x", b"1").unwrap();
    let mut tx = Transaction::new();
    tx.exception(exception("p", None, "x"));
    q.commit(tx).unwrap();
    assert_eq!(signal.seq(), seen);
    // New Ready messages are.
    let k = insert_all(&q.q, [inbound("p", "a")])[0];
    let after_insert = signal.wait(seen, Duration::from_secs(5));
    assert!(after_insert > seen);
    // A message given back, or released by an operator, is too.
    q.claim(Direction::Inbound, "p", 1, None).unwrap();
    q.give_back(&q.lease(), &[k]).unwrap();
    let after_give_back = signal.seq();
    assert!(after_give_back > after_insert);
    set(&q.q, k, Status::Error);
    let after_error = signal.seq();
    q.release(k).unwrap();
    assert!(signal.seq() > after_error);
}

pub(crate) fn in_flight_statuses_come_only_from_claims<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a")])[0];
    for status in [Status::InProcess, Status::InTransportProcess] {
        let mut tx = Transaction::new();
        tx.set_status(k, status, None);
        let err = q.commit(tx).unwrap_err().to_string();
        assert!(err.contains("is given by claiming a message"), "{err}");
        let mut m = inbound("p", "b");
        m.status = status;
        let mut tx = Transaction::new();
        tx.insert(m);
        assert!(q.commit(tx).is_err());
    }
    assert_eq!(
        q.counts().unwrap(),
        vec![(Direction::Inbound, "p".to_string(), Status::Ready, 1)]
    );
    // What a claim shows: In process in every view, Ready again after.
    q.claim(Direction::Inbound, "p", 1, None).unwrap();
    assert_eq!(
        q.counts().unwrap(),
        vec![(Direction::Inbound, "p".to_string(), Status::InProcess, 1)]
    );
    let listed = q
        .list(&Filter {
            status: Some(Status::InProcess),
            ..Filter::default()
        })
        .unwrap();
    assert_eq!(keys(&listed), vec![k]);
    assert!(
        q.list(&Filter {
            status: Some(Status::Ready),
            ..Filter::default()
        })
        .unwrap()
        .is_empty()
    );
    assert!(
        q.ready(Direction::Inbound, "p", 10, None)
            .unwrap()
            .is_empty()
    );
    q.check_invariants();
}

pub(crate) fn the_received_version_is_stored_once<Q: Backend>(q: &Tq<Q>) {
    let received = |name: &str| {
        let mut h = history(&format!("id-{name}"), "receive");
        h.content = String::new();
        h.message_key = None;
        h
    };
    let mut tx = Transaction::new();
    tx.insert(inbound("p", "a"))
        .history_of_inserted(received("a"))
        .insert(inbound("p", "b"))
        .history_of_inserted(received("b"))
        .insert(inbound("p", "c"))
        .history_of_inserted(received("c"));
    let k = q.commit(tx).unwrap();
    let version = |name: &str| {
        let h = q.history(&format!("id-{name}")).unwrap();
        assert_eq!(h.len(), 1, "{h:?}");
        h.into_iter().next().unwrap()
    };
    let a = version("a");
    assert_eq!(a.content, "<Envelope>a#0</Envelope>");
    assert_eq!(a.message_key, Some(k[0]));
    assert_eq!(a.stage, "receive");
    assert_eq!(a.plugins, vec![("xslt".to_string(), "h1".to_string())]);
    // The message processed and removed: its received version stays.
    q.claim(Direction::Inbound, "p", 1, None).unwrap();
    let mut tx = Transaction::new();
    tx.remove(k[0]);
    q.settle(tx).unwrap();
    assert_eq!(q.get(k[0]).unwrap(), None);
    assert_eq!(version("a").content, "<Envelope>a#0</Envelope>");
    // The message edited (or transformed again): the version keeps the
    // document as received, the message has the new one.
    let mut tx = Transaction::new();
    tx.set_content(k[1], "<Envelope>edited</Envelope>".into())
        .set_envelope(
            k[2],
            "<Envelope>new</Envelope>".into(),
            "id-c2".into(),
            "x".into(),
        );
    q.commit(tx).unwrap();
    assert_eq!(version("b").content, "<Envelope>b#0</Envelope>");
    assert_eq!(
        q.get(k[1]).unwrap().unwrap().content,
        "<Envelope>edited</Envelope>"
    );
    assert_eq!(version("c").content, "<Envelope>c#0</Envelope>");
    assert_eq!(
        q.get(k[2]).unwrap().unwrap().content,
        "<Envelope>new</Envelope>"
    );
    q.delete(k[1]).unwrap();
    assert_eq!(version("b").content, "<Envelope>b#0</Envelope>");
    // With nothing inserted before it, the version has no document.
    let mut tx = Transaction::new();
    tx.history_of_inserted(received("d"));
    assert!(matches!(
        q.commit(tx),
        Err(QueueError::Rejected { index: 0, .. })
    ));
    assert!(q.history("id-d").unwrap().is_empty());
    q.check_invariants();
}

pub(crate) fn a_message_id_is_logged_once<Q: Backend>(q: &Tq<Q>) {
    let k = insert_all(&q.q, [inbound("p", "a"), inbound("p", "b")]);
    q.claim(Direction::Inbound, "p", 2, None).unwrap();
    let mut tx = Transaction::new();
    tx.remove(k[0]).log_processed("ID-1", "p");
    q.settle(tx).unwrap();
    // Another commit processing the same MessageId (another host's, say):
    // refused whole, nothing of it applied.
    let mut tx = Transaction::new();
    tx.remove(k[1])
        .exception(exception("p", Some("ID-1"), "x"))
        .log_processed("ID-1", "p");
    let err = q.settle(tx).unwrap_err();
    assert!(
        matches!(&err, QueueError::Rejected { index: 2, reason, .. }
            if matches!(&**reason, QueueError::Duplicate { message_id } if message_id == "ID-1")),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("already in the message log"),
        "{err}"
    );
    assert_eq!(status_of(&q.q, k[1]), Status::InProcess);
    assert!(
        q.exceptions(&ExceptionFilter::default())
            .unwrap()
            .is_empty()
    );
    q.check_invariants();
}

/// Retention by count, on any backend that prunes: the message log keeps
/// its newest `MessageId`s, the history the `MessageId`s whose newest
/// version is newest — and never one about a message still queued.
pub(crate) fn counts_keep_the_newest(q: &dyn super::QueueManager) {
    use super::retention::{Retention, pass};
    for i in 0..5 {
        let mut tx = Transaction::new();
        tx.log_processed(format!("LOG-{i}"), "p");
        q.commit(tx).unwrap();
        // Each logged at a later millisecond.
        std::thread::sleep(Duration::from_millis(3));
    }
    let old = 1_000_000;
    let mut tx = Transaction::new();
    // About a queued message, and the oldest of all: kept.
    let mut about_queued = history("QUEUED", "received");
    about_queued.time_ms = old - 100;
    about_queued.message_key = None;
    tx.insert(inbound("p", "queued"))
        .history_of_inserted(about_queued);
    for i in 0..5u64 {
        for v in 0..2 {
            let mut h = history(&format!("H-{i}"), "service");
            h.message_key = None;
            h.time_ms = old + 10 * i + v;
            tx.history(h);
        }
    }
    q.commit(tx).unwrap();
    let policy = Retention {
        message_log_max: Some(2),
        history_max: Some(2),
        ..Retention::FOREVER
    };
    let pruned = pass(q, &policy, old + 1_000, &|| false).unwrap();
    assert_eq!(pruned.message_log, 3, "{pruned:?}");
    let logged: Vec<bool> = (0..5)
        .map(|i| q.is_processed(&format!("LOG-{i}")).unwrap())
        .collect();
    assert_eq!(logged, [false, false, false, true, true]);
    // Six MessageIds, two kept by the count: H-3 and H-4 whole; QUEUED
    // because its message is queued.
    assert_eq!(pruned.history, 6, "{pruned:?}");
    for i in 0..3 {
        assert!(q.history(&format!("H-{i}")).unwrap().is_empty(), "H-{i}");
    }
    for i in 3..5 {
        assert_eq!(q.history(&format!("H-{i}")).unwrap().len(), 2, "H-{i}");
    }
    assert_eq!(q.history("QUEUED").unwrap().len(), 1);
    // Within the counts now: a second pass removes nothing.
    assert_eq!(pass(q, &policy, old + 1_000, &|| false).unwrap().total(), 0);
}
