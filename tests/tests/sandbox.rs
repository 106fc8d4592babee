//! The component runtime contains hostile guests: each failure is an error
//! value naming the plugin, and the same plugin works again on the next call.

use std::sync::Arc;
use std::time::Duration;

use ferry::runtime::{
    Context, Direction, Document, FailureKind, Grant, Limits, LoadError, Runtime, RuntimeOptions,
    Sandbox, SandboxConfig, Stage, World,
};

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
    let rt = runtime();
    let plugin = rt.load(&ferry_tests::plugin("test-hostile")).unwrap();
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

/// After any failure the same sandbox echoes a harmless document.
fn assert_recovers(sb: &mut Sandbox) {
    let out = sb
        .apply(&ctx(), &doc("<ok/>"))
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
    let e = sb.apply(&ctx(), &doc("HOSTILE:loop")).unwrap_err();
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
    let e = sb.apply(&ctx(), &doc("HOSTILE:alloc")).unwrap_err();
    assert_eq!(e.kind, FailureKind::OutOfMemory, "{e}");
    assert!(e.to_string().contains("memory cap of 32 MiB"), "{e}");
    assert_recovers(&mut sb);
}

#[test]
fn deep_recursion_overflows_the_stack() {
    let mut sb = hostile(Limits::default(), vec![]);
    let e = sb.apply(&ctx(), &doc("HOSTILE:recurse")).unwrap_err();
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
    let e = sb.apply(&ctx(), &doc("HOSTILE:panic")).unwrap_err();
    assert_eq!(e.kind, FailureKind::Panic, "{e}");
    assert!(e.stderr.contains("hostile panic"), "stderr: {:?}", e.stderr);
    assert!(e.to_string().contains("hostile panic"), "{e}");
    assert_recovers(&mut sb);
}

#[test]
fn paths_outside_granted_folders_are_denied() {
    let granted = tempfile::tempdir().unwrap();
    std::fs::write(granted.path().join("visible.txt"), "inside").unwrap();
    let outside = tempfile::tempdir().unwrap();
    let secret = outside.path().join("secret.txt");
    std::fs::write(&secret, "secret").unwrap();
    let mut sb = hostile(
        Limits::default(),
        vec![Grant {
            host: granted.path().to_path_buf(),
            guest: "/data".into(),
            writable: false,
        }],
    );
    // Inside the grant: readable.
    let ok = sb
        .apply(&ctx(), &doc("HOSTILE:open:/data/visible.txt"))
        .unwrap();
    assert_eq!(ok.content, "inside");
    // The host path of another folder, and escapes from the grant: denied.
    for path in [
        secret.display().to_string(),
        "/data/../secret.txt".to_string(),
        "/etc/passwd".to_string(),
    ] {
        let e = sb
            .apply(&ctx(), &doc(&format!("HOSTILE:open:{path}")))
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::Failed, "{e}");
        assert!(e.message.contains(&format!("open {path}")), "{e}");
    }
    assert_recovers(&mut sb);
}

#[test]
fn rejected_and_failed_are_told_apart_and_keep_the_instance() {
    let mut sb = hostile(Limits::default(), vec![]);
    let e = sb.apply(&ctx(), &doc("HOSTILE:reject")).unwrap_err();
    assert_eq!(e.kind, FailureKind::Rejected);
    assert_eq!(e.message, "hostile rejects");
    assert!(sb.is_live(), "a rejection does not poison the instance");
    let e = sb.apply(&ctx(), &doc("HOSTILE:fail")).unwrap_err();
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
        .apply(&ctx(), &doc("<x/>"))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(out.content, "<x/>");
}
