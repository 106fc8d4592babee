//! The AIF envelope: parse, parse a written one (as inbound processing reads
//! what receive queued) and write at 1 KB, 10 KB and 1 MB bodies, and
//! splitting a batch file of 100 messages (parse, then write each message
//! as gateway receive queues it).
//!
//! `cargo bench -p ferry-tests --bench envelope -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ferry::envelope::{self, Batch, Envelope, Parsed};

/// A sales-order body of at least `size` bytes.
fn body(size: usize) -> String {
    let mut b = String::from(
        "<SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
         <SalesTable class=\"entity\"><CustAccount>1101</CustAccount><PurchOrderFormNum>PO-1</PurchOrderFormNum>",
    );
    let mut i = 0;
    while b.len() + 40 < size {
        i += 1;
        b.push_str(&format!(
            "<SalesLine class=\"entity\"><ItemId>EXT-{:03}</ItemId><SalesQty>{}</SalesQty>\
             <SalesUnit>ea</SalesUnit></SalesLine>",
            i % 8,
            i % 50 + 1
        ));
    }
    b.push_str("</SalesTable></SalesOrder>");
    b
}

fn message(size: usize) -> Envelope {
    let mut e = Envelope::new(
        "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create",
        body(size),
    );
    e.header.company = Some("dat".into());
    e
}

fn parse_and_write(c: &mut Criterion) {
    let mut group = c.benchmark_group("envelope");
    for (label, size) in [("1KB", 1 << 10), ("10KB", 10 << 10), ("1MB", 1 << 20)] {
        let env = message(size);
        let xml = env.to_xml();
        group.throughput(Throughput::Bytes(xml.len() as u64));
        if size > 100_000 {
            group.sample_size(20);
        } else {
            group.sample_size(100);
        }
        group.bench_with_input(BenchmarkId::new("parse", label), &xml, |b, xml| {
            b.iter(|| envelope::parse(black_box(xml)).expect("parse"))
        });
        // As inbound processing reads what gateway receive queued, unchanged.
        group.bench_with_input(BenchmarkId::new("parse_written", label), &xml, |b, xml| {
            b.iter(|| envelope::parse_written(black_box(xml)).expect("parse"))
        });
        group.bench_with_input(BenchmarkId::new("write", label), &env, |b, env| {
            b.iter(|| black_box(env).to_xml())
        });
    }
    group.finish();

    let mut group = c.benchmark_group("batch");
    let batch = Batch {
        batch_id: Some("batch-1".into()),
        conversation_id: None,
        messages: (0..100).map(|_| message(2 << 10)).collect(),
    };
    let xml = batch.to_xml();
    group.throughput(Throughput::Elements(100));
    group.bench_function("split_100x2KB", |b| {
        b.iter(|| {
            let Ok(Parsed::Batch(batch)) = envelope::parse(black_box(&xml)) else {
                panic!("not a batch")
            };
            batch
                .messages
                .iter()
                .map(|m| m.to_xml().len())
                .sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, parse_and_write);
criterion_main!(benches);
