//! The cost of plugins per document, on a ~2 KB AIF sales-order envelope,
//! each figure in the same run as a native baseline:
//!
//! - group `rule-2KB-batch256` (throughput: documents): rules called with
//!   batches of 256 documents on a sandbox whose instance lives across
//!   calls, as a worker runs a port's rules — `pass_through` (the
//!   `test-pass` fixture: asks the host nothing, the runtime's own cost),
//!   `echo_rule` (the `test-hostile` fixture without a marker: it copies
//!   each document's text into the guest twice and looks for its markers),
//!   `value_map` (elements = ItemId, map.EXT-1 = 1000: four values mapped by
//!   edits the host applies), `set_header` (`Header/Company` = dat), and the
//!   `native_replace` baseline (the same substitution with `str::replace`,
//!   on the same clone of 256 documents);
//! - group `rule-2KB-one-per-call`: one document per call — value-map and
//!   the echo rule built against `ferry:plugin@0.1` (the fixtures of
//!   `tests/fixtures/plugins-0.1`, run through the adapter layer), and
//!   value-map 0.2 with batches of one, for the per-call cost of before;
//! - group `service-2KB`: the sales-order service (create), 0.2 in batches
//!   of 256 and the 0.1 fixture one request per call, per request;
//! - group `guest-languages-2KB`: the Python `data-policy` rule on the
//!   sales order and the JavaScript `csv-orders` transform on a ~2 KB CSV,
//!   per document in batches of 256 and one per call (the plugins are built
//!   by `scripts/build-guest-plugins`);
//! - group `file-adapter-2KB` (throughput: files), on tmpfs (`/dev/shm`):
//!   receive (begin, receive 256, commit: read and delete) and send (begin,
//!   send 256, commit: write synced and rename), the 0.2 adapter through the
//!   host's `files` interface and the 0.1 fixture through WASI, beside the
//!   same work done natively with `std::fs`.
//!
//! `cargo bench -p ferry-tests --bench rule_call -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ferry::runtime::{
    Context, Direction, Document, Plugin, Runtime, RuntimeOptions, Sandbox, SandboxConfig,
    ServiceHeader, ServiceRequest, Stage,
};

const BATCH: usize = 256;

fn native(content: &str) -> String {
    content.replace("<ItemId>EXT-1</ItemId>", "<ItemId>1000</ItemId>")
}

fn load(rt: &Runtime, file: &std::path::Path) -> Arc<Plugin> {
    rt.load(file).unwrap_or_else(|e| panic!("{e}"))
}

fn sandbox(plugin: &Arc<Plugin>, options: &[(&str, &str)]) -> Sandbox {
    Sandbox::new(
        plugin.clone(),
        Arc::new(SandboxConfig {
            port: "orders-in".into(),
            config: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            outbound_ports: Arc::new(["out".to_string()].into()),
            ..SandboxConfig::default()
        }),
    )
}

/// Apply `sb` to `docs`, every document passing.
fn apply_all(sb: &mut Sandbox, ctx: &Context, docs: Vec<Document>) -> Vec<Document> {
    sb.apply(ctx, docs)
        .into_iter()
        .map(|r| r.unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

const VALUE_MAP: &[(&str, &str)] = &[("elements", "ItemId"), ("map.EXT-1", "1000")];
const SET_HEADER: &[(&str, &str)] = &[("field", "Company"), ("value", "dat")];

fn rule_call(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let ctx = Context {
        port: "orders-in".into(),
        direction: Direction::Inbound,
        stage: Stage::Pipeline,
    };
    let doc = Document::new("001_order.xml", ferry_tests::sales_order(8));
    let size = doc.content.len();
    assert!((1800..=2300).contains(&size), "envelope is {size} bytes");
    let batch: Vec<Document> = (0..BATCH).map(|_| doc.clone()).collect();

    let value_map = load(&rt, &ferry_tests::plugin("value-map"));
    let echo = load(&rt, &ferry_tests::plugin("test-hostile"));
    let pass = load(&rt, &ferry_tests::plugin("test-pass"));
    let set_header = load(&rt, &ferry_tests::plugin("set-header"));
    let value_map_01 = load(&rt, &ferry_tests::plugin_0_1("value-map"));
    let echo_01 = load(&rt, &ferry_tests::plugin_0_1("test-hostile"));

    // The rules do what the baseline does, so they are comparable.
    let mut vm = sandbox(&value_map, VALUE_MAP);
    let out = apply_all(&mut vm, &ctx, batch.clone());
    assert!(out.iter().all(|d| d.content == native(&doc.content)));
    assert_ne!(out[0].content, doc.content);
    let mut vm01 = sandbox(&value_map_01, VALUE_MAP);
    assert_eq!(
        apply_all(&mut vm01, &ctx, vec![doc.clone()])[0].content,
        native(&doc.content)
    );
    let mut sh = sandbox(&set_header, SET_HEADER);
    assert!(
        apply_all(&mut sh, &ctx, vec![doc.clone()])[0]
            .content
            .contains("<Company>dat</Company>")
    );
    let mut ec = sandbox(&echo, &[]);
    let mut pt = sandbox(&pass, &[]);
    assert_eq!(apply_all(&mut pt, &ctx, batch.clone()), batch);
    let mut ec01 = sandbox(&echo_01, &[]);

    let mut group = c.benchmark_group("rule-2KB-batch256");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("pass_through", |b| {
        b.iter(|| pt.apply(black_box(&ctx), black_box(batch.clone())))
    });
    group.bench_function("echo_rule", |b| {
        b.iter(|| ec.apply(black_box(&ctx), black_box(batch.clone())))
    });
    // What the benchmark itself costs: the clone of the batch.
    group.bench_function("clone_only", |b| b.iter(|| black_box(batch.clone())));
    group.bench_function("value_map", |b| {
        b.iter(|| vm.apply(black_box(&ctx), black_box(batch.clone())))
    });
    group.bench_function("set_header", |b| {
        b.iter(|| sh.apply(black_box(&ctx), black_box(batch.clone())))
    });
    group.bench_function("native_replace", |b| {
        b.iter(|| {
            black_box(batch.clone())
                .into_iter()
                .map(|d| native(&d.content))
                .collect::<Vec<_>>()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("rule-2KB-one-per-call");
    group.throughput(Throughput::Elements(1));
    group.bench_function("echo_rule_0_1", |b| {
        b.iter(|| ec01.apply(black_box(&ctx), vec![black_box(&doc).clone()]))
    });
    group.bench_function("value_map_0_1", |b| {
        b.iter(|| vm01.apply(black_box(&ctx), vec![black_box(&doc).clone()]))
    });
    group.bench_function("value_map", |b| {
        b.iter(|| vm.apply(black_box(&ctx), vec![black_box(&doc).clone()]))
    });
    group.bench_function("value_map_fresh_instance", |b| {
        b.iter(|| {
            let mut sb = sandbox(&value_map, VALUE_MAP);
            sb.apply(black_box(&ctx), vec![black_box(&doc).clone()])
        })
    });
    group.finish();

    // The service: create, one response per request.
    let service = load(&rt, &ferry_tests::plugin("sales-order-service"));
    let service_01 = load(&rt, &ferry_tests::plugin_0_1("sales-order-service"));
    let body = {
        let start = doc.content.find("<SalesOrder").expect("an order");
        let end = doc.content.find("</MessageParts>").expect("the body's end");
        doc.content[start..end].trim_end().to_string()
    };
    let req = ServiceRequest {
        header: ServiceHeader {
            message_id: "{5603D03A-4380-4A5A-9A74-5E8C0E3F0001}".into(),
            action:
                "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create"
                    .into(),
            company: Some("ceu".into()),
            logon_as_user: None,
            conversation_id: None,
            partition_key: None,
        },
        body,
    };
    let reqs: Vec<ServiceRequest> = (0..BATCH).map(|_| req.clone()).collect();
    let sctx = Context {
        stage: Stage::Service,
        ..ctx.clone()
    };
    let mut so = sandbox(&service, &[]);
    let mut so01 = sandbox(&service_01, &[]);
    for sb in [&mut so, &mut so01] {
        let answers = sb.invoke(&sctx, std::slice::from_ref(&req));
        let (bodies, _) = answers[0].as_ref().unwrap_or_else(|e| panic!("{e}"));
        let bodies = bodies.as_ref().expect("no fault");
        assert!(bodies[0].contains("SO-PO-2026-0001-"), "{bodies:?}");
    }
    let mut group = c.benchmark_group("service-2KB");
    group.throughput(Throughput::Elements(BATCH as u64));
    group.bench_function("sales_order_batch256", |b| {
        b.iter(|| so.invoke(black_box(&sctx), black_box(&reqs)))
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("sales_order_0_1_one_per_call", |b| {
        b.iter(|| so01.invoke(black_box(&sctx), std::slice::from_ref(black_box(&req))))
    });
    group.finish();
}

/// A folder on tmpfs (else the system's temporary folder).
fn shm_dir() -> tempfile::TempDir {
    let shm = std::path::Path::new("/dev/shm");
    if shm.is_dir() {
        tempfile::tempdir_in(shm).expect("a folder in /dev/shm")
    } else {
        tempfile::tempdir().expect("a temporary folder")
    }
}

fn adapter_sandbox(plugin: &Arc<Plugin>, folder: &std::path::Path) -> Sandbox {
    Sandbox::new(
        plugin.clone(),
        Arc::new(SandboxConfig {
            port: "files".into(),
            grants: vec![ferry::runtime::Grant {
                host: folder.to_path_buf(),
                guest: "/port".into(),
                writable: true,
            }],
            ..SandboxConfig::default()
        }),
    )
}

fn file_adapter(c: &mut Criterion) {
    use ferry::runtime::{Message, Received};
    let rt = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let content = ferry_tests::sales_order(8).into_bytes();
    let names: Vec<String> = (0..BATCH).map(|i| format!("{i:05}_order.xml")).collect();
    let fill = |dir: &std::path::Path| {
        for n in &names {
            std::fs::write(dir.join(n), &content).unwrap();
        }
    };
    let mut group = c.benchmark_group("file-adapter-2KB");
    group.throughput(Throughput::Elements(BATCH as u64));
    for (label, file) in [
        ("", ferry_tests::plugin("file-adapter")),
        ("_0_1", ferry_tests::plugin_0_1("file-adapter")),
    ] {
        let plugin = load(&rt, &file);
        let dir = shm_dir();
        let mut sb = adapter_sandbox(&plugin, dir.path());
        group.bench_function(format!("receive{label}"), |b| {
            b.iter_batched(
                || fill(dir.path()),
                |()| {
                    sb.receive_begin("/port").unwrap();
                    let got = sb.receive(BATCH as u32).unwrap();
                    assert_eq!(got.len(), BATCH);
                    let taken: Vec<String> = got
                        .iter()
                        .map(|r| match r {
                            Received::Accepted(m) => m.name.clone(),
                            Received::Refused(r) => panic!("{}", r.reason),
                        })
                        .collect();
                    sb.receive_commit(&taken).unwrap();
                },
                criterion::BatchSize::PerIteration,
            )
        });
        let out = shm_dir();
        let mut sb = adapter_sandbox(&plugin, out.path());
        let msgs: Vec<Message> = names
            .iter()
            .map(|n| Message {
                name: n.trim_end_matches(".xml").to_string(),
                content: content.clone(),
            })
            .collect();
        let mut send_all = move || {
            sb.send_begin("/port").unwrap();
            for r in sb.send(&msgs).unwrap() {
                r.unwrap();
            }
            sb.send_commit().unwrap();
        };
        // The adapter does what the baseline does: every file in place.
        send_all();
        assert_eq!(std::fs::read_dir(out.path()).unwrap().count(), BATCH);
        group.bench_function(format!("send{label}"), |b| b.iter(&mut send_all));
    }
    // The same work natively: list, read each, delete each; write each
    // to a temporary name, sync, rename.
    let dir = shm_dir();
    group.bench_function("receive_native", |b| {
        b.iter_batched(
            || fill(dir.path()),
            |()| {
                let mut list: Vec<_> = std::fs::read_dir(dir.path())
                    .unwrap()
                    .map(|e| e.unwrap().path())
                    .collect();
                list.sort();
                for p in &list {
                    black_box(std::fs::read(p).unwrap());
                }
                for p in &list {
                    std::fs::remove_file(p).unwrap();
                }
            },
            criterion::BatchSize::PerIteration,
        )
    });
    let out = shm_dir();
    group.bench_function("send_native", |b| {
        b.iter(|| {
            for n in &names {
                let temp = out.path().join(format!(".{n}.tmp"));
                let mut f = std::fs::File::create(&temp).unwrap();
                std::io::Write::write_all(&mut f, &content).unwrap();
                f.sync_all().unwrap();
                std::fs::rename(&temp, out.path().join(n)).unwrap();
            }
        })
    });
    group.finish();
}

fn guest_languages(c: &mut Criterion) {
    let rt = Runtime::new(RuntimeOptions::default()).expect("runtime");
    let ctx = Context {
        port: "orders-in".into(),
        direction: Direction::Inbound,
        stage: Stage::Pipeline,
    };
    let order = Document::new("001_order.xml", ferry_tests::sales_order(8));
    let mut csv = String::from("CustAccount,PurchOrderFormNum,ItemId,SalesQty\n");
    while csv.len() < 2000 {
        csv.push_str(&format!("C-1000,PO-77,ITEM-{},2\n", csv.len() % 97));
    }
    let csv = Document::new("001_orders.csv", csv);
    /// Label, plugin, options, document.
    type Case<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], &'a Document);
    let cases: [Case; 2] = [
        (
            "python_data_policy",
            "data-policy",
            &[(
                "enabled",
                "SalesOrder,SalesTable,CustAccount,PurchOrderFormNum,ReceiptDateRequested,\
                 SalesLine,ItemId,SalesQty,SalesUnit",
            )],
            &order,
        ),
        (
            "js_csv_orders",
            "csv-orders",
            &[("action", "urn:x/SalesOrderService/create")],
            &csv,
        ),
    ];
    let mut group = c.benchmark_group("guest-languages-2KB");
    for (label, name, options, doc) in cases {
        let plugin = load(&rt, &ferry_tests::plugin(name));
        let mut sb = sandbox(&plugin, options);
        let batch: Vec<Document> = (0..BATCH).map(|_| doc.clone()).collect();
        let out = apply_all(&mut sb, &ctx, batch.clone());
        assert_eq!(out.len(), BATCH, "{label}");
        group.throughput(Throughput::Elements(BATCH as u64));
        group.bench_function(format!("{label}_batch256"), |b| {
            b.iter(|| sb.apply(black_box(&ctx), black_box(batch.clone())))
        });
        group.throughput(Throughput::Elements(1));
        group.bench_function(format!("{label}_one_per_call"), |b| {
            b.iter(|| sb.apply(black_box(&ctx), vec![black_box(doc).clone()]))
        });
    }
    group.finish();
}

criterion_group!(benches, rule_call, guest_languages, file_adapter);
criterion_main!(benches);
