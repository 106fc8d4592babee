//! The shipped `file-adapter` component, driven through the public runtime
//! API as the host drives it: the port's folder granted read-write at
//! `/port`, the adapter's options passed as the sandbox's configuration.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use ferry::runtime::{
    FailureKind, Grant, Limits, Message, Plugin, PluginFailure, Received, Runtime, RuntimeOptions,
    Sandbox, SandboxConfig, World,
};
use tempfile::TempDir;

/// Where the host grants an adapter its port's folder
/// (`host/src/services/sandboxes.rs`, `PORT_FOLDER`).
const PORT: &str = "/port";

/// One message at a time, as these tests send.
trait One {
    fn send1(&mut self, msg: &Message) -> Result<(), PluginFailure>;
}

impl One for Sandbox {
    fn send1(&mut self, msg: &Message) -> Result<(), PluginFailure> {
        self.send(std::slice::from_ref(msg))?
            .pop()
            .expect("one result for one message")
    }
}

/// The file adapter, loaded (compiled) once for every test of this file.
fn file_adapter() -> Arc<Plugin> {
    static PLUGIN: OnceLock<Arc<Plugin>> = OnceLock::new();
    PLUGIN
        .get_or_init(|| {
            let rt = Runtime::new(RuntimeOptions::default()).unwrap();
            let p = rt
                .load(&ferry_tests::plugin("file-adapter"))
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(p.world(), World::Adapter);
            p
        })
        .clone()
}

fn grant(host: &Path, guest: &str, writable: bool) -> Grant {
    Grant {
        host: host.to_path_buf(),
        guest: guest.to_string(),
        writable,
    }
}

/// A sandbox of the file adapter with `port` granted read-write at `/port`,
/// the `extra` grants, and the options `options`.
fn sandbox_with(
    port: &Path,
    extra: Vec<Grant>,
    options: &[(&str, &str)],
    limits: Limits,
) -> Sandbox {
    let mut grants = vec![grant(port, PORT, true)];
    grants.extend(extra);
    Sandbox::new(
        file_adapter(),
        Arc::new(SandboxConfig {
            port: "files".into(),
            config: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            grants,
            limits,
            ..SandboxConfig::default()
        }),
    )
}

fn sandbox(port: &Path, options: &[(&str, &str)]) -> Sandbox {
    sandbox_with(port, vec![], options, Limits::default())
}

fn ok<T>(r: Result<T, PluginFailure>) -> T {
    r.unwrap_or_else(|e| panic!("{e}"))
}

/// The names in a host folder, sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn write(dir: &Path, name: &str, content: &[u8]) {
    std::fs::write(dir.join(name), content).unwrap();
}

fn names(batch: &[Received]) -> Vec<String> {
    batch
        .iter()
        .map(|r| match r {
            Received::Accepted(m) => m.name.clone(),
            Received::Refused(r) => r.name.clone(),
        })
        .collect()
}

fn accepted(entry: &Received) -> &Message {
    match entry {
        Received::Accepted(m) => m,
        Received::Refused(r) => panic!("{} was refused: {}", r.name, r.reason),
    }
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Receive everything waiting, `max` per call, until the empty list.
fn receive_all(sb: &mut Sandbox, max: u32) -> Vec<Vec<Received>> {
    let mut batches = Vec::new();
    loop {
        let batch = ok(sb.receive(max));
        assert!(batch.len() <= max as usize, "{} > max {max}", batch.len());
        if batch.is_empty() {
            return batches;
        }
        batches.push(batch);
        assert!(batches.len() < 100, "receive never returns the empty list");
    }
}

#[test]
fn receives_in_file_name_order_max_per_call_skipping_dot_files() {
    let port = TempDir::new().unwrap();
    // Created in an order unrelated to the names' order.
    for name in [
        "c.xml",
        ".hidden.xml",
        "a.xml",
        "2.xml",
        ".b.xml.tmp",
        "B.xml",
        "10.xml",
        "b.xml",
    ] {
        write(port.path(), name, format!("<doc>{name}</doc>").as_bytes());
    }
    std::fs::create_dir(port.path().join("a-folder.xml")).unwrap();

    let mut sb = sandbox(port.path(), &[]);
    ok(sb.receive_begin(PORT));
    let batches = receive_all(&mut sb, 2);
    let got: Vec<Vec<String>> = batches.iter().map(|b| names(b)).collect();
    // Byte order of the names: digits < upper case < lower case.
    assert_eq!(
        got,
        vec![
            strings(&["10.xml", "2.xml"]),
            strings(&["B.xml", "a.xml"]),
            strings(&["b.xml", "c.xml"]),
        ]
    );
    for entry in batches.iter().flatten() {
        let m = accepted(entry);
        assert_eq!(m.content, format!("<doc>{}</doc>", m.name).into_bytes());
    }
    // Still empty when asked again; nothing was removed by receiving.
    assert!(ok(sb.receive(10)).is_empty());
    assert_eq!(listing(port.path()).len(), 9);

    // A bigger `max` gets them all at once, in the same order.
    ok(sb.receive_begin(PORT));
    let all = ok(sb.receive(100));
    assert_eq!(
        names(&all),
        strings(&["10.xml", "2.xml", "B.xml", "a.xml", "b.xml", "c.xml"])
    );
    assert!(ok(sb.receive(100)).is_empty());
}

#[test]
fn pattern_option_selects_file_names() {
    let port = TempDir::new().unwrap();
    for name in ["z.txt", "a.csv", "m.xml", "order.xml.bak"] {
        write(port.path(), name, b"x");
    }
    let mut sb = sandbox(port.path(), &[("pattern", "*.xml, *.txt")]);
    ok(sb.receive_begin(PORT));
    assert_eq!(names(&ok(sb.receive(10))), strings(&["m.xml", "z.txt"]));
}

#[test]
fn a_file_over_max_file_size_is_refused_with_size_and_limit_without_being_read() {
    let port = TempDir::new().unwrap();
    write(port.path(), "a_small.xml", b"<a/>");
    write(port.path(), "b_exact.xml", &[b'x'; 1024]);
    write(port.path(), "c_over.xml", &[b'x'; 1025]);
    // 1 GiB, sparse: reading it would need far more than the 16 MiB the
    // sandbox may use, so it must be refused from its metadata alone.
    let huge = std::fs::File::create(port.path().join("d_huge.xml")).unwrap();
    huge.set_len(1 << 30).unwrap();
    drop(huge);
    write(port.path(), "e_after.xml", b"<e/>");

    let mut sb = sandbox_with(
        port.path(),
        vec![],
        &[("max_file_size", "1024")],
        Limits {
            memory: 16 << 20,
            ..Limits::default()
        },
    );
    ok(sb.receive_begin(PORT));
    let batch = ok(sb.receive(10));
    assert_eq!(
        names(&batch),
        strings(&[
            "a_small.xml",
            "b_exact.xml",
            "c_over.xml",
            "d_huge.xml",
            "e_after.xml"
        ])
    );
    assert_eq!(accepted(&batch[0]).content, b"<a/>");
    assert_eq!(
        accepted(&batch[1]).content.len(),
        1024,
        "a file of exactly max_file_size is accepted"
    );
    for (entry, size) in [(&batch[2], "1025"), (&batch[3], "1073741824")] {
        match entry {
            Received::Refused(r) => {
                assert!(
                    r.reason.contains(&format!("{size} bytes")),
                    "size missing: {}",
                    r.reason
                );
                assert!(
                    r.reason.contains("limit of 1024 bytes"),
                    "limit missing: {}",
                    r.reason
                );
                assert!(r.reason.contains("max_file_size"), "{}", r.reason);
                assert!(r.reason.contains(&r.name), "{}", r.reason);
            }
            Received::Accepted(m) => panic!("{} was accepted ({} bytes)", m.name, m.content.len()),
        }
    }
    assert_eq!(accepted(&batch[4]).content, b"<e/>");
    assert!(sb.is_live(), "refusing is no failure");
    assert!(ok(sb.receive(10)).is_empty());

    // The host rolls refused files back: they stay where they are.
    ok(sb.receive_rollback(&strings(&["c_over.xml", "d_huge.xml"])));
    assert_eq!(
        std::fs::metadata(port.path().join("d_huge.xml"))
            .unwrap()
            .len(),
        1 << 30
    );
    assert!(port.path().join("c_over.xml").is_file());

    // The premise: had the adapter asked for d_huge.xml, it would have been
    // stopped. With a limit above its size, it asks, and the host stops the
    // read at the receive quota, before 1 GiB reaches host or guest memory.
    let mut reader = sandbox_with(
        port.path(),
        vec![],
        &[("max_file_size", "4294967296"), ("pattern", "d_*")],
        Limits {
            memory: 16 << 20,
            ..Limits::default()
        },
    );
    ok(reader.receive_begin(PORT));
    // The host reads files for the adapter (`files.read`): what one call
    // reads is bounded by the receive quota before it reaches the guest.
    let e = reader.receive(1).unwrap_err();
    assert_eq!(e.kind, FailureKind::Quota, "{e}");
    assert!(e.message.contains("max_receive_mb"), "{e}");
}

#[test]
fn commit_deletes_exactly_the_committed_files() {
    let port = TempDir::new().unwrap();
    for name in ["1.xml", "2.xml", "3.xml", "4.xml", ".5.xml"] {
        write(port.path(), name, name.as_bytes());
    }
    let mut sb = sandbox(port.path(), &[]);
    ok(sb.receive_begin(PORT));
    let batch = ok(sb.receive(3));
    assert_eq!(names(&batch), strings(&["1.xml", "2.xml", "3.xml"]));
    // Commit two of the three received; 4.xml was never received.
    ok(sb.receive_commit(&strings(&["1.xml", "3.xml"])));
    assert_eq!(listing(port.path()), strings(&[".5.xml", "2.xml", "4.xml"]));
    assert_eq!(std::fs::read(port.path().join("2.xml")).unwrap(), b"2.xml");
    // A name already gone is no error, and removes nothing else.
    ok(sb.receive_commit(&strings(&["1.xml"])));
    assert_eq!(listing(port.path()), strings(&[".5.xml", "2.xml", "4.xml"]));
    // A name that would leave the folder is refused.
    let e = sb
        .receive_commit(&strings(&["../outside.xml"]))
        .unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed, "{e}");
    assert!(e.message.contains("invalid file name"), "{e}");
    assert_eq!(e.function, "receive.commit");

    // The next session sees what is left.
    ok(sb.receive_begin(PORT));
    assert_eq!(names(&ok(sb.receive(10))), strings(&["2.xml", "4.xml"]));
}

#[test]
fn rollback_leaves_the_files_to_be_received_again() {
    let port = TempDir::new().unwrap();
    for name in ["a.xml", "b.xml"] {
        write(port.path(), name, name.as_bytes());
    }
    let mut sb = sandbox(port.path(), &[]);
    ok(sb.receive_begin(PORT));
    let first = ok(sb.receive(10));
    assert_eq!(names(&first), strings(&["a.xml", "b.xml"]));
    ok(sb.receive_rollback(&names(&first)));
    assert_eq!(listing(port.path()), strings(&["a.xml", "b.xml"]));
    assert_eq!(std::fs::read(port.path().join("a.xml")).unwrap(), b"a.xml");

    ok(sb.receive_begin(PORT));
    let again = ok(sb.receive(10));
    assert_eq!(names(&again), strings(&["a.xml", "b.xml"]));
    assert_eq!(accepted(&again[1]).content, b"b.xml");
}

#[test]
fn on_commit_move_moves_the_committed_files_to_move_to() {
    let port = TempDir::new().unwrap();
    let archive = TempDir::new().unwrap();
    for name in ["a.xml", "b.xml", "c.xml"] {
        write(port.path(), name, format!("content of {name}").as_bytes());
    }
    let mut sb = sandbox_with(
        port.path(),
        vec![grant(archive.path(), "/archive", true)],
        &[("on_commit", "move"), ("move_to", "/archive")],
        Limits::default(),
    );
    ok(sb.receive_begin(PORT));
    let batch = ok(sb.receive(10));
    assert_eq!(names(&batch), strings(&["a.xml", "b.xml", "c.xml"]));
    ok(sb.receive_commit(&strings(&["a.xml", "c.xml"])));
    assert_eq!(listing(port.path()), strings(&["b.xml"]));
    assert_eq!(listing(archive.path()), strings(&["a.xml", "c.xml"]));
    assert_eq!(
        std::fs::read(archive.path().join("c.xml")).unwrap(),
        b"content of c.xml"
    );
}

#[test]
fn on_commit_move_into_a_read_only_folder_fails_and_keeps_the_file() {
    let port = TempDir::new().unwrap();
    let archive = TempDir::new().unwrap();
    write(port.path(), "a.xml", b"a");
    let mut sb = sandbox_with(
        port.path(),
        vec![grant(archive.path(), "/archive", false)],
        &[("on_commit", "move"), ("move_to", "/archive")],
        Limits::default(),
    );
    ok(sb.receive_begin(PORT));
    assert_eq!(ok(sb.receive(10)).len(), 1);
    let e = sb.receive_commit(&strings(&["a.xml"])).unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed, "{e}");
    assert!(
        e.message.contains("/port/a.xml") && e.message.contains("/archive/a.xml"),
        "{e}"
    );
    assert_eq!(listing(port.path()), strings(&["a.xml"]));
    assert!(listing(archive.path()).is_empty());
}

#[test]
fn send_is_invisible_until_commit_then_exact() {
    let port = TempDir::new().unwrap();
    // Bytes that are not text: every byte value, CR LF, NUL.
    let content: Vec<u8> = (0..=255u8).chain(*b"\r\n\0<end/>").collect();
    let mut sb = sandbox(port.path(), &[]);
    ok(sb.send_begin(PORT));
    ok(sb.send1(&Message {
        name: "resp_1".into(),
        content: content.clone(),
    }));
    ok(sb.send1(&Message {
        name: "resp_2.xml".into(),
        content: b"<two/>".to_vec(),
    }));
    let staged = listing(port.path());
    assert!(
        staged.iter().all(|n| n.starts_with('.')),
        "only temporary dot files before commit: {staged:?}"
    );
    assert_eq!(staged.len(), 2, "{staged:?}");
    assert!(!port.path().join("resp_1.xml").exists());
    // A receive session on the same folder does not pick them up.
    ok(sb.receive_begin(PORT));
    assert!(ok(sb.receive(10)).is_empty());

    ok(sb.send_commit());
    assert_eq!(
        listing(port.path()),
        strings(&["resp_1.xml", "resp_2.xml"]),
        "no temporary file left, no extension doubled"
    );
    assert_eq!(
        std::fs::read(port.path().join("resp_1.xml")).unwrap(),
        content
    );
    assert_eq!(
        std::fs::read(port.path().join("resp_2.xml")).unwrap(),
        b"<two/>"
    );
}

#[test]
fn send_rollback_leaves_no_file_at_all() {
    let port = TempDir::new().unwrap();
    let mut sb = sandbox(port.path(), &[]);
    ok(sb.send_begin(PORT));
    ok(sb.send1(&Message {
        name: "resp_1".into(),
        content: b"<withdrawn/>".to_vec(),
    }));
    assert_eq!(listing(port.path()).len(), 1);
    ok(sb.send_rollback());
    assert!(
        listing(port.path()).is_empty(),
        "{:?}",
        listing(port.path())
    );
    // Nothing left to commit either.
    ok(sb.send_commit());
    assert!(
        listing(port.path()).is_empty(),
        "{:?}",
        listing(port.path())
    );

    // The extension option names the committed file.
    let mut sb = sandbox(port.path(), &[("extension", "txt")]);
    ok(sb.send_begin(PORT));
    ok(sb.send1(&Message {
        name: "r".into(),
        content: b"r".to_vec(),
    }));
    ok(sb.send_commit());
    assert_eq!(listing(port.path()), strings(&["r.txt"]));
}

#[test]
fn send_refuses_names_that_leave_the_folder() {
    let port = TempDir::new().unwrap();
    let mut sb = sandbox(port.path(), &[]);
    ok(sb.send_begin(PORT));
    for name in ["../escape", "a/b", ""] {
        let e = sb
            .send1(&Message {
                name: name.into(),
                content: b"x".to_vec(),
            })
            .unwrap_err();
        assert_eq!(e.kind, FailureKind::Failed, "{name:?}: {e}");
        assert!(e.message.contains("invalid file name"), "{e}");
    }
    assert!(listing(port.path()).is_empty());
    assert!(!port.path().parent().unwrap().join("escape.xml").exists());
}

/// `begin` with `options` fails with `Failed` and a message containing each
/// of `expected`.
fn assert_begin_fails(options: &[(&str, &str)], extra: Vec<Grant>, expected: &[&str]) {
    let port = TempDir::new().unwrap();
    write(port.path(), "a.xml", b"a");
    let mut sb = sandbox_with(port.path(), extra, options, Limits::default());
    let e = sb.receive_begin(PORT).unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed, "{options:?}: {e}");
    assert_eq!(e.function, "receive.begin");
    assert_eq!(e.plugin, "file-adapter");
    for word in expected {
        assert!(e.message.contains(word), "{options:?}: {word:?} not in {e}");
    }
    assert!(e.to_string().contains("file-adapter (sha256:"), "{e}");
    assert!(sb.is_live(), "a reported failure keeps the instance");
    // Nothing was received or touched.
    assert_eq!(listing(port.path()), strings(&["a.xml"]));
}

#[test]
fn bad_configuration_fails_clearly_at_begin() {
    // on_commit = "move" without move_to.
    assert_begin_fails(&[("on_commit", "move")], vec![], &["on_commit", "move_to"]);
    // An unknown on_commit.
    assert_begin_fails(&[("on_commit", "shred")], vec![], &["on_commit", "shred"]);
    // A max_file_size that is no number.
    assert_begin_fails(&[("max_file_size", "big")], vec![], &["max_file_size"]);
    // move_to a folder that is not granted (so does not exist in the sandbox).
    assert_begin_fails(
        &[("on_commit", "move"), ("move_to", "/nowhere")],
        vec![],
        &["move_to", "/nowhere"],
    );
    // move_to a file, not a folder.
    let other = TempDir::new().unwrap();
    write(other.path(), "plain", b"");
    assert_begin_fails(
        &[("on_commit", "move"), ("move_to", "/other/plain")],
        vec![grant(other.path(), "/other", true)],
        &["/other/plain", "not a folder"],
    );
}

#[test]
fn a_missing_address_fails_clearly_at_begin() {
    let port = TempDir::new().unwrap();
    let mut sb = sandbox(port.path(), &[]);
    let e = sb.receive_begin("/port/missing").unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed, "{e}");
    assert!(e.message.contains("/port/missing"), "{e}");
    let e = sb.send_begin("/port/missing").unwrap_err();
    assert_eq!(e.kind, FailureKind::Failed, "{e}");
    assert!(e.message.contains("/port/missing"), "{e}");
    // Calls before any successful begin say so.
    let e = sb.receive(1).unwrap_err();
    assert!(e.message.contains("begin"), "{e}");
}
