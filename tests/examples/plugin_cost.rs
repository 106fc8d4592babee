//! The CPU cost of a plugin call per document, for instruction counts
//! (BENCHMARKS.md, "Reproduce"): runs one case of `benches/rule_call.rs` on
//! batches of 256 documents, `ROUNDS` times, inside `measured`, so that
//!
//! ```text
//! valgrind --tool=callgrind --toggle-collect='*measured*' \
//!     target/release/examples/plugin_cost value_map 10
//! ```
//!
//! counts only the calls (not the plugin's compilation): the instructions
//! ÷ (rounds × 256) are the cost of one document, the same from run to run,
//! which a shared machine's timings are not. Without valgrind it prints the
//! time per document of the rounds (for runs interleaved with another
//! build's).
//!
//! Cases: `pass_through`, `value_map`, `set_header`, `native_replace`,
//! `service`.

use std::hint::black_box;
use std::sync::Arc;

use ferry::runtime::{
    Context, Direction, Document, Runtime, RuntimeOptions, Sandbox, SandboxConfig, ServiceHeader,
    ServiceRequest, Stage,
};

const BATCH: usize = 256;

fn sandbox(rt: &Runtime, plugin: &str, options: &[(&str, &str)]) -> Sandbox {
    let plugin = rt
        .load(&ferry_tests::plugin(plugin))
        .unwrap_or_else(|e| panic!("{e}"));
    Sandbox::new(
        plugin,
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

/// What one round runs.
enum Case {
    Rule(Sandbox),
    Native,
    Service(Sandbox, Vec<ServiceRequest>),
}

/// The rounds counted (callgrind's `--toggle-collect='*measured*'`).
#[inline(never)]
fn measured(case: &mut Case, ctx: &Context, batch: &[Document], rounds: usize) {
    run(case, ctx, batch, rounds)
}

#[inline(never)]
fn run(case: &mut Case, ctx: &Context, batch: &[Document], rounds: usize) {
    for _ in 0..rounds {
        match case {
            Case::Rule(sb) => {
                for r in sb.apply(ctx, batch.to_vec()) {
                    black_box(r.expect("the document passes"));
                }
            }
            Case::Native => {
                for d in batch.iter().cloned() {
                    black_box(
                        d.content
                            .replace("<ItemId>EXT-1</ItemId>", "<ItemId>1000</ItemId>"),
                    );
                }
            }
            Case::Service(sb, reqs) => {
                for r in sb.invoke(ctx, reqs) {
                    let (answer, _) = r.expect("the request is answered");
                    black_box(answer.expect("no fault"));
                }
            }
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (name, rounds) = match args.as_slice() {
        [_, name, rounds] => (name.as_str(), rounds.parse().expect("rounds: a number")),
        _ => panic!("usage: plugin_cost <case> <rounds>"),
    };
    // Few instances: each memory reserves 4 GiB of address space, and
    // valgrind gives a program far less than Linux does.
    let rt = Runtime::new(RuntimeOptions {
        max_instances: 2,
        ..RuntimeOptions::default()
    })
    .expect("runtime");
    let mut ctx = Context {
        port: "orders-in".into(),
        direction: Direction::Inbound,
        stage: Stage::Pipeline,
    };
    let doc = Document::new("001_order.xml", ferry_tests::sales_order(8));
    let batch: Vec<Document> = (0..BATCH).map(|_| doc.clone()).collect();
    let mut case = match name {
        "pass_through" => Case::Rule(sandbox(&rt, "test-pass", &[])),
        "value_map" => Case::Rule(sandbox(
            &rt,
            "value-map",
            &[("elements", "ItemId"), ("map.EXT-1", "1000")],
        )),
        "set_header" => Case::Rule(sandbox(
            &rt,
            "set-header",
            &[("field", "Company"), ("value", "dat")],
        )),
        "native_replace" => Case::Native,
        "service" => {
            ctx.stage = Stage::Service;
            let start = doc.content.find("<SalesOrder").expect("an order");
            let end = doc.content.find("</MessageParts>").expect("the body's end");
            let req = ServiceRequest {
                header: ServiceHeader {
                    message_id: "{5603D03A-4380-4A5A-9A74-5E8C0E3F0001}".into(),
                    action: "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create".into(),
                    company: Some("ceu".into()),
                    logon_as_user: None,
                    conversation_id: None,
                    partition_key: None,
                },
                body: doc.content[start..end].trim_end().to_string(),
            };
            Case::Service(sandbox(&rt, "sales-order-service", &[]), vec![req; BATCH])
        }
        other => panic!("no case {other}"),
    };
    // One round outside the count: instances made, memories grown.
    run(&mut case, &ctx, &batch, 1);
    let started = std::time::Instant::now();
    measured(&mut case, &ctx, &batch, rounds);
    let per_doc = started.elapsed().as_nanos() as f64 / (rounds * BATCH) as f64;
    println!("{name}: {rounds} rounds of {BATCH}: {per_doc:.0} ns per document");
}
