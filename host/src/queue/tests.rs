//! Tests of the gateway queue, run against [`RedbQueue`].

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use proptest::prelude::*;

use super::*;

fn open_temp() -> (tempfile::TempDir, RedbQueue) {
    let dir = tempfile::tempdir().unwrap();
    let q = RedbQueue::open(dir.path()).unwrap();
    (dir, q)
}

fn msg(direction: Direction, port: &str, name: &str, position: u32) -> NewMessage {
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

fn inbound(port: &str, name: &str) -> NewMessage {
    msg(Direction::Inbound, port, name, 0)
}

fn insert_all(q: &RedbQueue, messages: impl IntoIterator<Item = NewMessage>) -> Vec<MessageKey> {
    let mut tx = Transaction::new();
    for m in messages {
        tx.insert(m);
    }
    q.commit(tx).unwrap()
}

fn keys(messages: &[QueuedMessage]) -> Vec<MessageKey> {
    messages.iter().map(|m| m.key).collect()
}

fn status_of(q: &RedbQueue, key: MessageKey) -> Status {
    q.get(key).unwrap().unwrap().status
}

fn set(q: &RedbQueue, key: MessageKey, status: Status) {
    let mut tx = Transaction::new();
    tx.set_status(key, status, None);
    q.commit(tx).unwrap();
}

fn exception(port: &str, message_id: Option<&str>, text: &str) -> NewException {
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

fn history(message_id: &str, stage: &str) -> HistoryEntry {
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

#[test]
fn commit_inserts_with_increasing_keys() {
    let (_dir, q) = open_temp();
    assert_eq!(q.last_key().unwrap(), 0);
    assert_eq!(
        q.commit(Transaction::new()).unwrap(),
        Vec::<MessageKey>::new()
    );
    let first = insert_all(&q, [inbound("orders", "b.xml"), inbound("orders", "a.xml")]);
    let second = insert_all(&q, [inbound("orders", "c.xml")]);
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
    let third = insert_all(&q, [inbound("orders", "d.xml")]);
    assert!(third[0] > second[0]);
}

#[test]
fn new_message_fields_survive() {
    let (_dir, q) = open_temp();
    let mut m = msg(Direction::Outbound, "invoices", "résumé ✓.xml", 4);
    m.status = Status::MalformedXml;
    m.conversation_id = Some("conv-1".into());
    m.batch_id = Some("batch-9".into());
    m.request_message_id = Some("{req}".into());
    m.error = Some("line 3: unexpected end".into());
    m.content = "not <xml".into();
    let key = insert_all(&q, [m.clone()])[0];
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

#[test]
fn claim_orders_by_name_position_key() {
    let (_dir, q) = open_temp();
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
        &q,
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

#[test]
fn claim_respects_limit_max_key_port_and_direction() {
    let (_dir, q) = open_temp();
    let early = insert_all(
        &q,
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
    let late = insert_all(&q, [inbound("orders", "1.xml")]);

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
    assert_eq!(status_of(&q, early[2]), Status::Ready);
    assert_eq!(status_of(&q, early[3]), Status::Ready);
    assert_eq!(status_of(&q, early[4]), Status::Ready);
    assert_eq!(status_of(&q, early[5]), Status::Ready);
    assert_eq!(status_of(&q, late[0]), Status::Ready);

    let out = q.claim(Direction::Outbound, "orders", 10, None).unwrap();
    assert_eq!(keys(&out), vec![early[3]]);
    assert_eq!(out[0].status, Status::InTransportProcess);

    // A response waiting for outbound processing is processed, not sent.
    let request = insert_all(&q, [msg(Direction::OutboundRequest, "orders", "r", 0)]);
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

#[test]
fn claimed_messages_are_not_claimed_again_until_ready() {
    let (_dir, q) = open_temp();
    let k = insert_all(&q, [inbound("p", "a"), inbound("p", "b")]);
    let first = q.claim(Direction::Inbound, "p", 1, None).unwrap();
    assert_eq!(keys(&first), vec![k[0]]);
    assert_eq!(status_of(&q, k[0]), Status::InProcess);
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
    q.commit(tx).unwrap();
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
    assert!(matches!(
        q.mark(&[k[0], 12345], Status::Hold),
        Err(QueueError::Rejected { index: 1, .. })
    ));
    assert_eq!(status_of(&q, k[0]), Status::Ready);
    q.check_invariants();
}

#[test]
fn remove_and_log_processed_make_it_a_duplicate() {
    let (_dir, q) = open_temp();
    let k = insert_all(&q, [inbound("p", "a")])[0];
    let m = q.claim(Direction::Inbound, "p", 1, None).unwrap().remove(0);
    assert!(!q.is_processed(&m.message_id).unwrap());
    let mut tx = Transaction::new();
    tx.remove(k)
        .log_processed(m.message_id.clone(), "p")
        .history(history(&m.message_id, "service"));
    q.commit(tx).unwrap();
    assert!(q.is_processed(&m.message_id).unwrap());
    assert!(!q.is_processed("other").unwrap());
    assert_eq!(q.get(k).unwrap(), None);
    assert!(q.counts().unwrap().is_empty());
    assert_eq!(q.history(&m.message_id).unwrap().len(), 1);
    q.check_invariants();
}

#[test]
fn an_invalid_transaction_applies_nothing() {
    let (_dir, q) = open_temp();
    let k = insert_all(&q, [inbound("p", "a")])[0];
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
    assert_eq!(status_of(&q, k), Status::Ready);
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
    assert_eq!(status_of(&q, k), Status::Ready);
    // The next key continues after the last committed one.
    let next = insert_all(&q, [inbound("p", "c")])[0];
    assert_eq!(next, before_last + 1);
    q.check_invariants();
}

#[test]
fn set_content_and_error_reasons() {
    let (_dir, q) = open_temp();
    let k = insert_all(&q, [inbound("p", "a")])[0];
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

#[test]
fn recover_returns_unfinished_work_to_ready() {
    let (_dir, q) = open_temp();
    let k = insert_all(
        &q,
        [
            inbound("p", "a"),
            inbound("p", "b"),
            msg(Direction::Outbound, "p", "c", 0),
            inbound("p", "d"),
        ],
    );
    set(&q, k[3], Status::Error);
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
    assert_eq!(status_of(&q, k[3]), Status::Error);
    assert_eq!(q.recover().unwrap(), RecoveryReport::default());
    q.check_invariants();
}

#[test]
fn operator_actions_follow_the_status_rules() {
    let (_dir, q) = open_temp();
    let mut tx = Transaction::new();
    for status in Status::ALL {
        let mut m = inbound("p", status.kebab());
        m.status = status;
        tx.insert(m);
    }
    let inserted = q.commit(tx).unwrap();
    let key_of = |s: Status| inserted[Status::ALL.iter().position(|&x| x == s).unwrap()];

    // hold: Ready and Error -> Hold; Hold stays; the rest refused.
    for status in Status::ALL {
        let key = key_of(status);
        let result = q.hold(key);
        match status {
            Status::Ready | Status::Error | Status::Hold => {
                result.unwrap();
                assert_eq!(status_of(&q, key), Status::Hold);
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
                assert_eq!(status_of(&q, key), status);
            }
        }
    }
    let err = q.hold(key_of(Status::InProcess)).unwrap_err().to_string();
    assert!(err.contains("wait until it finishes"), "{err}");

    // release: Hold / Error -> Ready, Ready stays; in flight and malformed refused.
    set(&q, key_of(Status::Error), Status::Error);
    for status in Status::ALL {
        let key = key_of(status);
        let before = status_of(&q, key);
        let result = q.release(key);
        match before {
            Status::Ready | Status::Hold | Status::Error => {
                result.unwrap();
                assert_eq!(status_of(&q, key), Status::Ready);
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
                assert_eq!(status_of(&q, key), other);
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
    for action in [RedbQueue::hold, RedbQueue::release, RedbQueue::delete] {
        let err = action(&q, 777).unwrap_err();
        assert!(matches!(err, QueueError::NotFound { key: 777 }));
        assert!(
            err.to_string()
                .contains("message 777 is not in the gateway queue")
        );
    }
    q.check_invariants();
}

#[test]
fn list_filters_and_counts() {
    let (_dir, q) = open_temp();
    let mut with_conv = inbound("orders", "x");
    with_conv.conversation_id = Some("cust-1".into());
    let k = insert_all(
        &q,
        [
            inbound("orders", "a"),
            with_conv.clone(),
            inbound("customers", "b"),
            msg(Direction::Outbound, "orders", "c", 0),
            with_conv,
        ],
    );
    set(&q, k[2], Status::Error);
    set(&q, k[0], Status::Hold);

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

#[test]
fn exceptions_filter_newest_last() {
    let (_dir, q) = open_temp();
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

#[test]
fn history_in_order_written_per_message_id() {
    let (_dir, q) = open_temp();
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

#[test]
fn state_area() {
    let (_dir, q) = open_temp();
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

    let k = insert_all(&q, [inbound("p", "a")])[0];
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
        q.claim(Direction::Inbound, "p", 1, None).unwrap();
        set(&q, k[2], Status::Error);
        let mut tx = Transaction::new();
        tx.log_processed("m-done", "p")
            .exception(exception("p", Some("m-done"), "boom"))
            .history(history("m-done", "service"));
        q.commit(tx).unwrap();
        q.put_state("job", b"state").unwrap();
        (k, q.counts().unwrap())
    };
    assert!(data.join("ferry.redb").is_file());
    let q = RedbQueue::open(&data).unwrap();
    assert_eq!(q.counts().unwrap(), counts);
    assert_eq!(status_of(&q, k[0]), Status::InProcess);
    assert_eq!(
        q.get(k[1]).unwrap().unwrap().content,
        "<Envelope>b#0</Envelope>"
    );
    assert!(q.is_processed("m-done").unwrap());
    assert_eq!(q.exceptions(&ExceptionFilter::default()).unwrap().len(), 1);
    assert_eq!(q.history("m-done").unwrap().len(), 1);
    assert_eq!(q.get_state("job").unwrap().as_deref(), Some(&b"state"[..]));
    assert_eq!(q.last_key().unwrap(), k[2]);
    assert_eq!(q.recover().unwrap().in_process, 1);
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
    let (_dir, q) = open_temp();
    let q: std::sync::Arc<dyn GatewayQueue> = std::sync::Arc::new(q);
    insert_all_dyn(&*q, 200);
    let claimed: Vec<Vec<MessageKey>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let q = q.clone();
                s.spawn(move || {
                    let mut mine = Vec::new();
                    loop {
                        let got = q.claim(Direction::Inbound, "p", 7, None).unwrap();
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

    fn set_status(&mut self, key: MessageKey, status: Status) -> Outcome {
        match self.messages.get_mut(&key) {
            None => Outcome::NotFound,
            Some(m) => {
                m.status = status;
                if status.is_in_flight() {
                    m.attempts += 1;
                }
                Outcome::Ok
            }
        }
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
        2 => (any::<u16>(), status).prop_map(|(i, s)| Op::SetStatus(i, s)),
        1 => any::<u16>().prop_map(Op::Remove),
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
                        .claim(direction, port, usize::from(limit), max)
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
                        model.set_status(*k, target);
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
                assert_eq!(got, model.set_status(key, status));
            }
            Op::Remove(i) => {
                let key = model.pick(i);
                let mut tx = Transaction::new();
                tx.remove(key);
                let got = outcome(queue.commit(tx).map(|_| ()));
                let want = match model.messages.remove(&key) {
                    Some(_) => Outcome::Ok,
                    None => Outcome::NotFound,
                };
                assert_eq!(got, want);
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
                let mut want = RecoveryReport::default();
                for m in model.messages.values_mut() {
                    match m.status {
                        Status::InProcess => want.in_process += 1,
                        Status::InTransportProcess => want.in_transport_process += 1,
                        _ => continue,
                    }
                    m.status = Status::Ready;
                }
                assert_eq!(queue.recover().unwrap(), want);
            }
            Op::BadTx => {
                let mut tx = Transaction::new();
                tx.insert(inbound("orders", "bad"));
                if let Some((&k, _)) = model.messages.iter().next() {
                    tx.set_status(k, Status::Hold, None).remove(k);
                }
                tx.set_status(model.last + 100, Status::Ready, None);
                assert_eq!(outcome(queue.commit(tx).map(|_| ())), Outcome::NotFound);
            }
            Op::Reopen => {
                drop(q.take());
                q = Some(RedbQueue::open(dir.path()).unwrap());
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
