//! The gateway queue (redb): enqueue and dequeue per message, at group
//! commit sizes 1, 100 and 1000 (messages per durable transaction), with
//! ~2 KB messages. Throughput is per message, so the time criterion
//! reports divided by the group size is the cost of one message.
//!
//! - `enqueue/G`: one durable commit inserting G Ready messages;
//! - `dequeue/G`: claim G messages (one commit) and remove them, logging
//!   each MessageId as processed (a second commit), as inbound processing
//!   does.
//!
//! The queue lives in a temporary folder on /dev/shm when there is one (the
//! software cost; set FERRY_BENCH_DIR to measure another disk).
//!
//! `cargo bench -p ferry-tests --bench queue -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{BatchSize, BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry::queue::{
    ClaimRequest, Direction, GatewayQueue, Lease, NewMessage, RedbQueue, Status, Transaction,
};

fn base() -> PathBuf {
    match std::env::var_os("FERRY_BENCH_DIR") {
        Some(d) => PathBuf::from(d),
        None if std::path::Path::new("/dev/shm").is_dir() => PathBuf::from("/dev/shm"),
        None => std::env::temp_dir(),
    }
}

fn content(n: u64) -> String {
    let mut s = format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?><Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\"><Header><MessageId>{{00000000-0000-4000-8000-{n:012X}}}</MessageId><Action>urn:x/SalesOrderService/create</Action></Header><Body><MessageParts><SalesOrder>"
    );
    while s.len() < 2000 {
        s.push_str("<SalesLine><ItemId>EXT-001</ItemId><SalesQty>1</SalesQty></SalesLine>");
    }
    s.push_str("</SalesOrder></MessageParts></Body></Envelope>");
    s
}

fn insert(tx: &mut Transaction, n: u64) {
    tx.insert(NewMessage {
        direction: Direction::Inbound,
        port: "orders-in".into(),
        status: Status::Ready,
        name: format!("order-{n:08}.xml"),
        position: 0,
        message_id: format!("{{00000000-0000-4000-8000-{n:012X}}}"),
        action: "urn:x/SalesOrderService/create".into(),
        conversation_id: None,
        batch_id: None,
        request_message_id: None,
        content: content(n),
        error: None,
    });
}

fn queue_ops(c: &mut Criterion) {
    let dir = tempfile::Builder::new()
        .prefix("ferry-queue-bench")
        .tempdir_in(base())
        .expect("temp dir");
    let queue = RedbQueue::open(dir.path()).expect("queue");
    let (lease, _) = queue.recover("bench").expect("recover");
    let mut next = 0u64;
    let mut group = c.benchmark_group("queue");
    for g in [1u64, 100, 1000] {
        group.throughput(Throughput::Elements(g));
        group.sample_size(if g == 1000 { 10 } else { 30 });
        group.bench_function(BenchmarkId::new("enqueue", g), |b| {
            b.iter_batched(
                || {
                    let mut tx = Transaction::new();
                    for _ in 0..g {
                        insert(&mut tx, next);
                        next += 1;
                    }
                    tx
                },
                |tx| queue.commit(black_box(tx)).expect("commit"),
                BatchSize::PerIteration,
            )
        });
        // Keep the backlog from growing without bound between groups.
        drain(&queue, &lease);
        group.bench_function(BenchmarkId::new("dequeue", g), |b| {
            b.iter_batched(
                || {
                    let mut tx = Transaction::new();
                    for _ in 0..g {
                        insert(&mut tx, next);
                        next += 1;
                    }
                    queue.commit(tx).expect("fill");
                },
                |()| {
                    let taken = queue
                        .claim(
                            &lease,
                            &ClaimRequest::new(Direction::Inbound, "orders-in", g as usize),
                        )
                        .expect("claim");
                    let mut tx = Transaction::under(lease.clone());
                    for m in &taken {
                        tx.log_processed(m.message_id.clone(), "orders-in");
                        tx.remove(m.key);
                    }
                    queue.commit(tx).expect("commit");
                    taken.len()
                },
                BatchSize::PerIteration,
            )
        });
    }
    group.finish();
}

fn drain(queue: &RedbQueue, lease: &Lease) {
    loop {
        let taken = queue
            .claim(
                lease,
                &ClaimRequest::new(Direction::Inbound, "orders-in", 5000),
            )
            .expect("claim");
        if taken.is_empty() {
            break;
        }
        let mut tx = Transaction::under(lease.clone());
        for m in &taken {
            tx.remove(m.key);
        }
        queue.commit(tx).expect("drain");
    }
}

criterion_group!(benches, queue_ops);
criterion_main!(benches);
