//! The component runtime contains hostile guests: each failure is an error
//! value naming the plugin, and the same plugin works again on the next call.

use std::sync::Arc;
use std::time::Duration;

use ferry::runtime::{
    Context, Direction, Document, FailureKind, Grant, Limits, LoadError, PluginFailure, Runtime,
    RuntimeOptions, Sandbox, SandboxConfig, Stage, World,
};

/// One document at a time, as most of these tests apply rules.
trait One {
    fn apply1(&mut self, ctx: &Context, doc: &Document) -> Result<Document, PluginFailure>;
}

impl One for Sandbox {
    fn apply1(&mut self, ctx: &Context, doc: &Document) -> Result<Document, PluginFailure> {
        self.apply(ctx, vec![doc.clone()])
            .pop()
            .expect("one result for one document")
    }
}

fn runtime() -> Runtime {
    Runtime::new(RuntimeOptions::default()).unwrap()
}

fn ctx() -> Context {
    Context {
        port: "test-port".into(),
        direction: Direction::Inbound,
        stage: Stage::Pipeline,
    }
}

fn doc(content: &str) -> Document {
    Document {
        name: "001_test.xml".into(),
        content: content.into(),
    }
}

fn hostile(limits: Limits, grants: Vec<Grant>) -> Sandbox {
    hostile_from(&ferry_tests::plugin("test-hostile"), limits, grants)
}

fn hostile_from(file: &std::path::Path, limits: Limits, grants: Vec<Grant>) -> Sandbox {
    let rt = runtime();
    let plugin = rt.load(file).unwrap();
    assert_eq!(plugin.world(), World::Rule);
    Sandbox::new(
        plugin,
        Arc::new(SandboxConfig {
            port: "test-port".into(),
            limits,
            grants,
            ..SandboxConfig::default()
        }),
    )
}

/// A rule of `file` on port `test-port`, with plugin options `options`.
fn configured(file: &std::path::Path, options: &[(&str, &str)]) -> Sandbox {
    let plugin = runtime().load(file).unwrap();
    Sandbox::new(
        plugin,
        Arc::new(SandboxConfig {
            port: "test-port".into(),
            config: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..SandboxConfig::default()
        }),
    )
}

/// After any failure the same sandbox echoes a harmless document.
fn assert_recovers(sb: &mut Sandbox) {
    let out = sb
        .apply1(&ctx(), &doc("<ok/>"))
        .expect("works again after the failure");
    assert_eq!(out.content, "<ok/>");
}

#[test]
fn infinite_loop_hits_the_time_limit() {
    let mut sb = hostile(
        Limits {
            time: Duration::from_millis(200),
            ..Limits::default()
        },
        vec![],
    );
    let e = sb.apply1(&ctx(), &doc("HOSTILE:loop")).unwrap_err();
    assert_eq!(e.kind, FailureKind::Timeout, "{e}");
    assert_eq!(e.plugin, "test-hostile");
    assert_eq!(e.hash.len(), 64);
    assert!(e.to_string().contains("test-hostile (sha256:"), "{e}");
    assert!(e.to_string().contains("time limit"), "{e}");
    assert!(!sb.is_live(), "a trapped instance is discarded");
    assert_recovers(&mut sb);
}

#[test]
fn huge_allocation_hits_the_memory_cap() {
    let mut sb = hostile(
        Limits {
            memory: 32 << 20,
            ..Limits::default()
        },
        vec![],
    );
    let e = sb.apply1(&ctx(), &doc("HOSTILE:alloc")).unwrap_err();
    assert_eq!(e.kind, FailureKind::OutOfMemory, "{e}");
    assert!(e.to_string().contains("memory cap of 32 MiB"), "{e}");
    assert_recovers(&mut sb);
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let mut sb = hostile(Limits::default(), vec![]);
    let e = sb.apply1(&ctx(), &doc("HOSTILE:recurse")).unwrap_err();
    // A Rust guest keeps its frames on a shadow stack in linear memory; when
    // that runs out first, the trap is an out-of-bounds access, not wasm's
    // own call-stack exhaustion. Either way it is contained and explained.
    match e.kind {
        FailureKind::StackOverflow => {}
        FailureKind::Trap => assert!(e.message.contains("stack"), "{e}"),
        other => panic!("unexpected {other}: {e}"),
    }
    assert_recovers(&mut sb);
}

#[test]
fn panic_message_reaches_the_error() {
    let mut sb = hostile(Limits::default(), vec![]);
    let e = sb.apply1(&ctx(), &doc("HOSTILE:panic")).unwrap_err();
    assert_eq!(e.kind, FailureKind::Panic, "{e}");
    assert!(e.stderr.contains("hostile panic"), "stderr: {:?}", e.stderr);
    assert!(e.to_string().contains("hostile panic"), "{e}");
    assert_recovers(&mut sb);
}

#[test]
fn a_0_2_plugin_has_no_file_system_through_wasi_even_with_grants() {
    // Granted folders reach a 0.2 plugin through `files` only (adapters);
    // WASI has no preopened folder at all.
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("visible.txt"), "inside").unwrap();
    let mut sb = hostile(
        Limits::default(),
        vec![Grant {
            host: granted.path().to_path_buf(),
            guest: "/data".into(),
            writable: false,
        }],
    );
    for path in ["/data/visible.txt", "/etc/passwd"] {
        let e = sb
            .apply1(&ctx(), &doc(&format!("HOSTILE:open:{path}")))
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::Failed, "{e}");
        assert!(e.message.contains(&format!("open {path}")), "{e}");
    }
    assert_recovers(&mut sb);
}

#[test]
fn paths_outside_granted_folders_are_denied_to_a_0_1_plugin() {
    // A 0.1 plugin still sees its grants as WASI preopens.
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("visible.txt"), "inside").unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let mut sb = hostile_from(
        &ferry_tests::plugin_0_1("test-hostile"),
        Limits::default(),
        vec![Grant {
            host: granted.path().to_path_buf(),
            guest: "/data".into(),
            writable: false,
        }],
    );
    // Inside the grant: readable.
    let ok = sb
        .apply1(&ctx(), &doc("HOSTILE:open:/data/visible.txt"))
        .unwrap();
    assert_eq!(ok.content, "inside");
    // The host path of another folder, and escapes from the grant: denied.
    for path in [
        secret.display().to_string(),
        "/data/../secret.txt".to_string(),
        "/etc/passwd".to_string(),
    ] {
        let e = sb
            .apply1(&ctx(), &doc(&format!("HOSTILE:open:{path}")))
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::Failed, "{e}");
        assert!(e.message.contains(&format!("open {path}")), "{e}");
    }
    assert_recovers(&mut sb);
}

#[test]
fn rejected_and_failed_are_told_apart_and_keep_the_instance() {
    let mut sb = hostile(Limits::default(), vec![]);
    let e = sb.apply1(&ctx(), &doc("HOSTILE:reject")).unwrap_err();
    assert_eq!(e.kind, FailureKind::Rejected);
    assert_eq!(e.message, "hostile rejects");
    assert!(sb.is_live(), "a rejection does not poison the instance");
    let e = sb.apply1(&ctx(), &doc("HOSTILE:fail")).unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed);
    assert!(sb.is_live());
    assert_recovers(&mut sb);
}

#[test]
fn wrong_world_is_refused_at_load() {
    let rt = runtime();
    let e = rt
        .load(&ferry_tests::plugin("test-wrong-world"))
        .unwrap_err();
    assert!(matches!(e, LoadError::WrongWorld { .. }), "{e}");
    assert!(
        e.to_string().contains("does not target a Ferry world"),
        "{e}"
    );
}

#[test]
fn non_components_are_refused_at_load() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let core = dir.path().join("core.wasm");
    std::fs::write(&core, b"\0asm\x01\0\0\0").unwrap();
    let e = rt.load(&core).unwrap_err();
    assert!(e.to_string().contains("core WebAssembly module"), "{e}");
    let junk = dir.path().join("junk.wasm");
    std::fs::write(&junk, b"not wasm at all").unwrap();
    let e = rt.load(&junk).unwrap_err();
    assert!(matches!(e, LoadError::NotAComponent { .. }), "{e}");
}

#[test]
fn shipped_plugins_target_their_worlds() {
    let rt = runtime();
    for (name, world) in [
        ("file-adapter", World::Adapter),
        ("value-map", World::Rule),
        ("sales-order-service", World::Service),
        ("test-probe", World::Service),
    ] {
        let p = rt.load(&ferry_tests::plugin(name)).unwrap();
        assert_eq!(p.world(), world, "{name}");
    }
}

#[test]
fn compile_cache_is_used_on_the_second_load() {
    let cache = tempfile::tempdir().unwrap();
    let opts = RuntimeOptions {
        cache_dir: Some(cache.path().to_path_buf()),
        ..RuntimeOptions::default()
    };
    let first = Runtime::new(opts.clone()).unwrap();
    let p1 = first.load(&ferry_tests::plugin("test-hostile")).unwrap();
    let entries: Vec<_> = std::fs::read_dir(cache.path()).unwrap().collect();
    assert_eq!(entries.len(), 1, "one cache entry written");
    let name = entries[0].as_ref().unwrap().file_name();
    assert!(
        name.to_string_lossy().starts_with(p1.hash()),
        "keyed by content hash: {name:?}"
    );
    let second = Runtime::new(opts).unwrap();
    let p2 = second.load(&ferry_tests::plugin("test-hostile")).unwrap();
    assert_eq!(p1.hash(), p2.hash());
    // And the cached component runs.
    let mut sb = Sandbox::new(p2, Arc::new(SandboxConfig::default()));
    let out = sb
        .apply1(&ctx(), &doc("<x/>"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.content, "<x/>");
}

// ---- ferry:plugin@0.2: batches ------------------------------------------

fn docs(texts: &[&str]) -> Vec<Document> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Document::new(format!("{i:03}.xml"), *t))
        .collect()
}

/// Apply a batch; the outcome of each document: its text, or the kind and
/// message of its failure.
fn outcomes(sb: &mut Sandbox, texts: &[&str]) -> Vec<Result<String, (FailureKind, String)>> {
    let out = sb.apply(&ctx(), docs(texts));
    assert_eq!(out.len(), texts.len(), "one result per document");
    out.into_iter()
        .map(|r| r.map(|d| d.content).map_err(|f| (f.kind, f.to_string())))
        .collect()
}

#[test]
fn a_trap_in_the_middle_of_a_batch_fails_only_its_document() {
    let mut sb = hostile(
        Limits {
            time: Duration::from_millis(300),
            ..Limits::default()
        },
        vec![],
    );
    for (marker, kind) in [
        ("HOSTILE:panic", FailureKind::Panic),
        ("HOSTILE:loop", FailureKind::Timeout),
        ("HOSTILE:alloc", FailureKind::OutOfMemory),
        ("HOSTILE:recurse", FailureKind::StackOverflow),
    ] {
        let bad = format!("<bad>{marker}</bad>");
        let texts = [
            "<a/>",
            "<b/>",
            bad.as_str(),
            "<d>HOSTILE:reject</d>",
            "<e/>",
        ];
        let got = outcomes(&mut sb, &texts);
        assert_eq!(got[0], Ok("<a/>".to_string()), "{marker}");
        assert_eq!(got[1], Ok("<b/>".to_string()), "{marker}");
        let (k, text) = got[2].clone().unwrap_err();
        // A Rust guest's stack overflow may surface as its shadow stack
        // running out of bounds (see deep_recursion_overflows_the_stack).
        let same = k == kind || (kind == FailureKind::StackOverflow && k == FailureKind::Trap);
        assert!(same, "{marker}: {k:?}: {text}");
        assert!(text.contains("test-hostile (sha256:"), "{text}");
        if kind == FailureKind::Panic {
            assert!(
                text.contains("hostile panic: the document asked for it"),
                "{text}"
            );
        }
        assert_eq!(
            got[3].clone().unwrap_err().0,
            FailureKind::Rejected,
            "{marker}"
        );
        assert_eq!(got[4], Ok("<e/>".to_string()), "{marker}");
    }
    assert_recovers(&mut sb);
}

#[test]
fn a_result_count_that_is_not_the_batch_length_is_a_clear_error_on_that_document() {
    let mut sb = hostile(Limits::default(), vec![]);
    for marker in ["HOSTILE:fewer", "HOSTILE:more"] {
        let bad = format!("<bad>{marker}</bad>");
        let got = outcomes(&mut sb, &["<a/>", bad.as_str(), "<c/>"]);
        assert_eq!(got[0], Ok("<a/>".to_string()));
        assert_eq!(got[2], Ok("<c/>".to_string()));
        let (kind, text) = got[1].clone().unwrap_err();
        assert_eq!(kind, FailureKind::Contract, "{text}");
        assert!(
            text.contains("for a batch of 1; the contract is one result per item"),
            "{text}"
        );
    }
    assert_recovers(&mut sb);
}

#[test]
fn huge_output_reaches_the_quota_on_its_document_only() {
    let mut sb = hostile(Limits::default(), vec![]);
    let got = outcomes(&mut sb, &["<a/>", "<b>HOSTILE:huge</b>"]);
    assert_eq!(got[0], Ok("<a/>".to_string()));
    let (kind, text) = got[1].clone().unwrap_err();
    assert_eq!(kind, FailureKind::Quota, "{text}");
    assert!(text.contains("max_response_mb"), "{text}");
    assert_recovers(&mut sb);
}

#[test]
fn edits_are_applied_by_the_host_and_configuration_is_given_once() {
    let mut sb = configured(
        &ferry_tests::plugin("value-map"),
        &[
            ("elements", "ItemId"),
            ("map.EXT-1", "1000"),
            ("strict", "true"),
        ],
    );
    let env = |item: &str| {
        format!(
            "<Envelope><Header><Action>a</Action></Header><Body><MessageParts><O>\
             <ItemId>{item}</ItemId></O></MessageParts></Body></Envelope>"
        )
    };
    let (one, two) = (env("EXT-1"), env("EXT-9"));
    let got = outcomes(&mut sb, &[&one, &two, "not xml"]);
    assert_eq!(got[0], Ok(env("1000")));
    let (kind, text) = got[1].clone().unwrap_err();
    assert_eq!(kind, FailureKind::Rejected);
    assert!(
        text.contains("value EXT-9 of element ItemId has no mapping"),
        "{text}"
    );
    assert_eq!(got[2].clone().unwrap_err().0, FailureKind::Rejected);

    // A configuration the plugin refuses at init fails the call's
    // documents with its reason, and the instance is not kept.
    let mut bad = configured(&ferry_tests::plugin("value-map"), &[]);
    let got = outcomes(&mut bad, &[&one, &one]);
    for g in got {
        let (kind, text) = g.unwrap_err();
        assert_eq!(kind, FailureKind::Failed);
        assert!(text.contains("nothing to map"), "{text}");
    }
    assert!(!bad.is_live());
}

/// Edits reach the host in the order the rule made them: many `set-text`
/// edits of one document all apply; edits made before `replace` are
/// dropped, an edit after it fails the document.
#[test]
fn edits_reach_the_host_in_the_order_the_rule_made_them() {
    let mut sb = hostile(Limits::default(), vec![]);
    let got = outcomes(
        &mut sb,
        &[
            "<d><T>a</T><x><T>b</T></x><T>c</T>HOSTILE:texts</d>",
            "<d><T>one</T>HOSTILE:texts</d>",
            "<d><T>a</T>HOSTILE:edit-replace</d>",
            "<d><T>a</T>HOSTILE:replace-edit</d>",
            "<d><T>a</T></d>",
        ],
    );
    assert_eq!(
        got[0],
        Ok("<d><T>T1</T><x><T>T2</T></x><T>T3</T>HOSTILE:texts</d>".to_string())
    );
    assert_eq!(got[1], Ok("<d><T>T1</T>HOSTILE:texts</d>".to_string()));
    assert_eq!(got[2], Ok("<replaced/>".to_string()));
    let (kind, text) = got[3].clone().unwrap_err();
    assert_eq!(kind, FailureKind::Failed);
    assert!(
        text.contains("the rule edited the document after replacing its text"),
        "{text}"
    );
    assert_eq!(got[4], Ok("<d><T>a</T></d>".to_string()));
}

/// `documents.path(id)` through the host: set-header asks for the path of
/// each `Header` element to tell the envelope's header from one elsewhere.
#[test]
fn an_element_path_is_given_by_the_host_when_asked_for() {
    let mut sb = configured(
        &ferry_tests::plugin("set-header"),
        &[("field", "Company"), ("value", "dat")],
    );
    let in_header = "<Envelope><Header><Action>a</Action></Header><Body><MessageParts>\
                     <O/></MessageParts></Body></Envelope>";
    let in_body = "<Envelope><Body><Header/><MessageParts><O/></MessageParts></Body></Envelope>";
    let got = outcomes(&mut sb, &[in_header, in_body]);
    assert_eq!(
        got[0],
        Ok(
            "<Envelope><Header><Action>a</Action><Company>dat</Company></Header><Body>\
            <MessageParts><O/></MessageParts></Body></Envelope>"
                .to_string()
        )
    );
    let (kind, text) = got[1].clone().unwrap_err();
    assert_eq!(kind, FailureKind::Rejected);
    assert!(
        text.contains("the envelope has no <Header> before <Body>"),
        "{text}"
    );
}

#[test]
fn a_0_1_plugin_runs_through_the_adapter_layer() {
    let mut sb = configured(
        &ferry_tests::plugin_0_1("value-map"),
        &[("elements", "ItemId"), ("map.EXT-1", "1000")],
    );
    assert_eq!(sb.plugin().contract(), ferry::runtime::Contract::Legacy);
    assert_eq!(sb.plugin().contract_version(), "0.1.0");
    let got = outcomes(
        &mut sb,
        &[
            "<O><ItemId>EXT-1</ItemId></O>",
            "<O><ItemId>EXT-2</ItemId></O>",
        ],
    );
    assert_eq!(got[0], Ok("<O><ItemId>1000</ItemId></O>".to_string()));
    assert_eq!(got[1], Ok("<O><ItemId>EXT-2</ItemId></O>".to_string()));

    // Its traps land on their own document too.
    let mut sb = hostile_from(
        &ferry_tests::plugin_0_1("test-hostile"),
        Limits::default(),
        vec![],
    );
    let got = outcomes(&mut sb, &["<a/>", "<b>HOSTILE:panic</b>", "<c/>"]);
    assert_eq!(got[0], Ok("<a/>".to_string()));
    assert_eq!(got[1].clone().unwrap_err().0, FailureKind::Panic);
    assert_eq!(got[2], Ok("<c/>".to_string()));
}

#[test]
fn services_answer_a_batch_one_result_per_request_in_both_contracts() {
    use ferry::runtime::{ServiceHeader, ServiceRequest};
    let rt = runtime();
    let req = |body: &str| ServiceRequest {
        header: ServiceHeader {
            message_id: "m1".into(),
            action: "urn:x/SalesOrderService/create".into(),
            company: None,
            logon_as_user: None,
            conversation_id: None,
            partition_key: None,
        },
        body: body.into(),
    };
    let order = "<SalesOrder><SalesTable><CustAccount>C1</CustAccount></SalesTable></SalesOrder>";
    let reqs = [req(order), req("<CustTable/>"), req(order)];
    let sctx = Context {
        stage: Stage::Service,
        ..ctx()
    };
    for file in [
        ferry_tests::plugin("sales-order-service"),
        ferry_tests::plugin_0_1("sales-order-service"),
    ] {
        let plugin = rt.load(&file).unwrap();
        let setup = |forward: &str| {
            Arc::new(SandboxConfig {
                port: "test-port".into(),
                config: vec![("forward_port".into(), forward.into())],
                outbound_ports: Arc::new(["copies".to_string()].into()),
                ..SandboxConfig::default()
            })
        };
        let mut sb = Sandbox::new(plugin.clone(), setup("copies"));
        let got = sb.invoke(&sctx, &reqs);
        assert_eq!(got.len(), 3);
        for i in [0, 2] {
            let (bodies, sent) = got[i].as_ref().unwrap_or_else(|e| panic!("{e}"));
            assert!(bodies.as_ref().unwrap()[0].contains("SO-C1-"), "{bodies:?}");
            assert_eq!(sent.len(), 1, "the forwarded copy of request {i}");
            assert_eq!(sent[0].port, "copies");
        }
        let e = got[1].as_ref().unwrap_err();
        assert_eq!(e.kind, FailureKind::Rejected, "{e}");
        // A document for a port that is not configured rejects its request.
        let mut sb = Sandbox::new(plugin, setup("nowhere"));
        let got = sb.invoke(&sctx, &reqs[..1]);
        let e = got[0].as_ref().unwrap_err();
        assert_eq!(e.kind, FailureKind::Rejected, "{e}");
        assert!(e.message.contains("nowhere"), "{e}");
    }
}
