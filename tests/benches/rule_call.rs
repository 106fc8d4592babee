//! The cost of one rule call: the shipped `value-map` rule (elements =
//! ItemId, map.EXT-1 = 1000) on a ~2 KB AIF sales-order envelope,
//!
//! - `reused_instance`: on one sandbox whose instance lives across calls (as
//!   a worker runs a port's rules);
//! - `fresh_instance`: on a new sandbox, so a new instance, every call (from
//!   the same loaded plugin);
//! - `native_replace`: the same substitution done natively with
//!   `str::replace`, as a baseline.
//!
//! - `set_header_*`: the second rule of `ferry-bench`'s pipeline
//!   (`Header/Company` = dat), reused and fresh.
//!
//! `cargo bench -p ferry-tests --bench rule_call -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry::runtime::{
    Context, Direction, Document, Plugin, Runtime, RuntimeOptions, Sandbox, SandboxConfig, Stage,
};

/// A sales order with `lines` lines, every other item `EXT-1`.
fn envelope(lines: usize) -> String {
    let mut body = String::new();
    for i in 0..lines {
        let item = if i % 2 == 0 { "EXT-1" } else { "EXT-2" };
        body.push_str(&format!(
            "          <SalesLine class=\"entity\">\n            <ItemId>{item}</ItemId>\n            \
             <SalesQty>{}</SalesQty>\n            <SalesUnit>ea</SalesUnit>\n          </SalesLine>\n",
            i + 1
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <Header>
    <MessageId>{{5603D03A-4380-4A5A-9A74-5E8C0E3F0001}}</MessageId>
    <Company>ceu</Company>
    <Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action>
  </Header>
  <Body>
    <MessageParts>
      <SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder">
        <SalesTable class="entity">
          <CustAccount>1101</CustAccount>
          <PurchOrderFormNum>PO-2026-0001</PurchOrderFormNum>
          <ReceiptDateRequested>2026-12-01</ReceiptDateRequested>
{body}        </SalesTable>
      </SalesOrder>
    </MessageParts>
  </Body>
</Envelope>
"#
    )
}

fn native(content: &str) -> String {
    content.replace("<ItemId>EXT-1</ItemId>", "<ItemId>1000</ItemId>")
}

fn rule_call(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let plugin: Arc<Plugin> = rt
        .load(&ferry_tests::plugin("value-map"))
        .unwrap_or_else(|e| panic!("{e}"));
    let setup = Arc::new(SandboxConfig {
        port: "orders-in".into(),
        config: vec![
            ("elements".into(), "ItemId".into()),
            ("map.EXT-1".into(), "1000".into()),
        ],
        ..SandboxConfig::default()
    });
    let ctx = Context {
        port: "orders-in".into(),
        direction: Direction::Inbound,
        stage: Stage::Pipeline,
    };
    let doc = Document {
        name: "001_order.xml".into(),
        content: envelope(8),
    };
    let size = doc.content.len();
    assert!((1800..=2300).contains(&size), "envelope is {size} bytes");

    // The rule does what the baseline does, so they are comparable.
    let mut reused = Sandbox::new(plugin.clone(), setup.clone());
    let out = reused.apply(&ctx, &doc).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.content, native(&doc.content));
    assert_ne!(out.content, doc.content);

    let mut group = c.benchmark_group("value-map-2KB");
    group.throughput(Throughput::Bytes(size as u64));
    group.bench_function("reused_instance", |b| {
        b.iter(|| {
            reused
                .apply(black_box(&ctx), black_box(&doc))
                .expect("apply")
        })
    });
    group.bench_function("fresh_instance", |b| {
        b.iter(|| {
            let mut sb = Sandbox::new(plugin.clone(), setup.clone());
            sb.apply(black_box(&ctx), black_box(&doc)).expect("apply")
        })
    });
    group.bench_function("native_replace", |b| {
        b.iter(|| native(black_box(&doc.content)))
    });
    // The runtime's own cost per call: a rule that returns the document
    // unchanged (the test-hostile fixture without a HOSTILE marker), so the
    // difference to `reused_instance` is value-map's own XML work.
    let echo = rt
        .load(&ferry_tests::plugin("test-hostile"))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut echo = Sandbox::new(echo, setup.clone());
    group.bench_function("echo_rule_reused_instance", |b| {
        b.iter(|| echo.apply(black_box(&ctx), black_box(&doc)).expect("apply"))
    });
    // The second rule of ferry-bench's pipeline: set-header stamps
    // Header/Company, reading only the header.
    let stamp = rt
        .load(&ferry_tests::plugin("set-header"))
        .unwrap_or_else(|e| panic!("{e}"));
    let stamp_setup = Arc::new(SandboxConfig {
        port: "orders-in".into(),
        config: vec![
            ("field".into(), "Company".into()),
            ("value".into(), "dat".into()),
        ],
        ..SandboxConfig::default()
    });
    let mut stamp_reused = Sandbox::new(stamp.clone(), stamp_setup.clone());
    let out = stamp_reused
        .apply(&ctx, &doc)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(out.content.contains("<Company>dat</Company>"));
    group.bench_function("set_header_reused_instance", |b| {
        b.iter(|| {
            stamp_reused
                .apply(black_box(&ctx), black_box(&doc))
                .expect("apply")
        })
    });
    group.bench_function("set_header_fresh_instance", |b| {
        b.iter(|| {
            let mut sb = Sandbox::new(stamp.clone(), stamp_setup.clone());
            sb.apply(black_box(&ctx), black_box(&doc)).expect("apply")
        })
    });
    group.finish();
}

criterion_group!(benches, rule_call);
criterion_main!(benches);
