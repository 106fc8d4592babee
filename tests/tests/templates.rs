//! `ferry plugin new` and `ferry plugin build`, through the real binary:
//! every template (Rust, Python, JavaScript × rule, adapter, service)
//! becomes a project that builds into a component of its world and passes
//! the check `ferry plugin check` does; the rule and service templates then
//! run end to end in `ferry run --once`. The bad paths: invalid names, an existing folder,
//! a project with a syntax error, a manifest naming the wrong world.
//!
//! Python and JavaScript builds use the pinned toolchains that
//! `scripts/build-guest-plugins` installs under `target/toolchains/`
//! (`scripts/test` runs it before `cargo test`). The Rust builds share one
//! cargo target folder (`target/template-builds/`), so wit-bindgen is
//! compiled once.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ferry_tests::{ferry, ferry_bin, plugin, plugins_dir};

const LANGS: [&str; 3] = ["rust", "python", "js"];
const WORLDS: [(&str, &str); 3] = [
    ("rule", "rule-plugin"),
    ("adapter", "adapter"),
    ("service", "service-plugin"),
];

fn target_dir() -> PathBuf {
    plugins_dir()
        .parent()
        .expect("target/plugins has a parent")
        .to_path_buf()
}

/// The pinned guest toolchain `rel` under target/toolchains.
///
/// # Panics
///
/// When it is not installed, saying how to install it.
fn toolchain(rel: &str) -> PathBuf {
    let path = target_dir().join("toolchains").join(rel);
    assert!(
        path.is_file(),
        "{} is missing: scripts/build-guest-plugins installs the pinned Python and JavaScript \
         toolchains (scripts/test runs it before `cargo test`)",
        path.display()
    );
    path
}

/// `ferry plugin build DIR` with the pinned toolchains and the shared Rust
/// target folder.
fn build(dir: &Path) -> Output {
    Command::new(ferry_bin())
        .args(["plugin", "build"])
        .arg(dir)
        .arg("--componentize-py")
        .arg(toolchain("python/bin/componentize-py"))
        .arg("--componentize-js")
        .arg(toolchain("js/node_modules/.bin/componentize-js"))
        .env("CARGO_TARGET_DIR", target_dir().join("template-builds"))
        .env("RUST_LOG", "warn")
        .output()
        .expect("cannot run the ferry binary")
}

fn text(out: &Output) -> String {
    format!(
        "status {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `ferry plugin new`, which must succeed.
fn new(parent: &Path, lang: &str, world: &str, name: &str) -> PathBuf {
    let out = ferry(&[
        "plugin",
        "new",
        "--lang",
        lang,
        "--world",
        world,
        name,
        "--dir",
        parent.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "plugin new: {}", text(&out));
    parent.join(name)
}

#[test]
fn every_template_builds_into_a_component_of_its_world_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path();
    let projects = root.join("projects");
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    std::fs::copy(plugin("file-adapter"), plugins.join("file-adapter.wasm")).unwrap();
    for lang in LANGS {
        for (world, wit_world) in WORLDS {
            let name = format!("t-{lang}-{world}");
            let dir = new(&projects, lang, world, &name);
            for file in [
                "README.md",
                "ferry-plugin.toml",
                "wit/ferry.wit",
                "build.sh",
            ] {
                assert!(dir.join(file).is_file(), "{name}: no {file}");
            }
            let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
            assert!(
                !readme.contains("{{"),
                "{name}: README has an unfilled placeholder:\n{readme}"
            );
            let out = build(&dir);
            let out_text = text(&out);
            assert!(out.status.success(), "plugin build {name}: {out_text}");
            let component = dir.join("target").join(format!("{name}.wasm"));
            assert!(
                out_text.contains(&format!("built {}", component.display())),
                "{name}: {out_text}"
            );
            // The build checks the component as `plugin check` does, and
            // names the world as Ferry calls it (rule, adapter, service).
            assert!(
                out_text.contains(&format!("world:   {world} (ferry:plugin@0.2.1)")),
                "{name} ({wit_world}): {out_text}"
            );
            std::fs::copy(&component, plugins.join(format!("{name}.wasm"))).unwrap();
        }
    }
    // `plugin check` agrees (the Rust adapter: quick to compile).
    let check = ferry(&[
        "plugin",
        "check",
        plugins.join("t-rust-adapter.wasm").to_str().unwrap(),
    ]);
    assert!(check.status.success(), "{}", text(&check));
    assert!(
        text(&check).contains("world:   adapter"),
        "{}",
        text(&check)
    );

    // The rule templates in one pipeline, the JavaScript echo service on
    // one port and the Python one on another.
    for dir in ["in", "in2", "out"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
    }
    std::fs::write(
        root.join("ferry.toml"),
        r#"
data_dir = "data"
plugin_dir = "plugins"

[adapters.file]
component = "file-adapter"

[rules.r1]
component = "t-rust-rule"
options = { note = "from-rust" }
[rules.r2]
component = "t-python-rule"
options = { note = "from-python" }
[rules.r3]
component = "t-js-rule"
options = { note = "from-js" }

[services.echo-js]
component = "t-js-service"
[services.echo-py]
component = "t-python-service"

[ports.in]
direction = "inbound"
adapter = "file"
address = "in"
response_address = "out"
pipeline = ["r1", "r2", "r3"]
services = [{ action = "*/EchoService/*", service = "echo-js" }]

[ports.in2]
direction = "inbound"
adapter = "file"
address = "in2"
response_address = "out"
services = [{ action = "*/EchoService/*", service = "echo-py" }]
"#,
    )
    .unwrap();
    let body = |n: u32| format!("<Order xmlns=\"urn:test\"><Number>{n}</Number></Order>");
    let envelope = |n: u32| {
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\
             <Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
             <Header><MessageId>{{00000000-0000-4000-8000-{n:012}}}</MessageId>\
             <Action>urn:test/EchoService/create</Action></Header>\
             <Body><MessageParts>{}</MessageParts></Body></Envelope>",
            body(n)
        )
    };
    std::fs::write(root.join("in/001.xml"), envelope(1)).unwrap();
    std::fs::write(root.join("in2/002.xml"), envelope(2)).unwrap();

    let cfg = root.join("ferry.toml");
    let run = ferry(&[
        "run",
        "--once",
        "--config",
        cfg.to_str().unwrap(),
        "--log-level",
        "warn,ferry::plugin=info",
    ]);
    let log = text(&run);
    assert!(run.status.success(), "{log}");
    // Each rule template logged its line, with its option.
    for (name, note) in [
        ("t-rust-rule", "from-rust"),
        ("t-python-rule", "from-python"),
        ("t-js-rule", "from-js"),
    ] {
        assert!(
            log.lines()
                .any(|l| l.contains(&format!("{name} passed a document")) && l.contains(note)),
            "{name} did not log:\n{log}"
        );
    }
    for name in ["t-js-service", "t-python-service"] {
        assert!(
            log.contains(&format!("{name} echoes a request")),
            "{name} did not log:\n{log}"
        );
    }
    // Both answers: the echo of each request's body.
    let mut answers: Vec<String> = std::fs::read_dir(root.join("out"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    answers.sort_by_key(|a| a.contains("000000000002"));
    assert_eq!(answers.len(), 2, "{answers:?}\n{log}");
    for (n, answer) in [1, 2].into_iter().zip(&answers) {
        assert!(
            answer.contains(&format!(
                "<RequestMessageId>{{00000000-0000-4000-8000-{n:012}}}</RequestMessageId>"
            )),
            "{answer}"
        );
        assert!(answer.contains(&body(n)), "{answer}");
    }
}

#[test]
fn bad_projects_are_refused_with_a_reason() {
    let tmp = tempfile::tempdir().unwrap();
    let parent = tmp.path().to_str().unwrap();

    // Names that cannot be component names.
    for bad in ["Bad", "1st", "has_underscore", "trailing-", "a/b"] {
        let out = ferry(&[
            "plugin", "new", "--lang", "rust", "--world", "rule", bad, "--dir", parent,
        ]);
        assert!(!out.status.success(), "{bad} accepted");
        assert!(
            text(&out).contains("invalid plugin name"),
            "{bad}: {}",
            text(&out)
        );
    }
    // An unknown language or world is clap's error.
    let out = ferry(&[
        "plugin", "new", "--lang", "cobol", "--world", "rule", "x", "--dir", parent,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("cobol"), "{}", text(&out));

    // An existing folder is never overwritten.
    let dir = new(tmp.path(), "python", "rule", "taken");
    std::fs::write(dir.join("app.py"), "# mine\n").unwrap();
    let out = ferry(&[
        "plugin", "new", "--lang", "js", "--world", "rule", "taken", "--dir", parent,
    ]);
    assert!(!out.status.success());
    assert!(text(&out).contains("already exists"), "{}", text(&out));
    assert_eq!(
        std::fs::read_to_string(dir.join("app.py")).unwrap(),
        "# mine\n"
    );

    // A Python syntax error: the build fails with componentize-py's words.
    std::fs::write(dir.join("app.py"), "def apply(:\n").unwrap();
    let out = build(&dir);
    assert!(!out.status.success(), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("componentize-py") && t.contains("failed"), "{t}");
    assert!(!dir.join("target/taken.wasm").exists());

    // A manifest that names another world than the code's.
    let dir = new(tmp.path(), "js", "rule", "liar");
    let manifest = dir.join("ferry-plugin.toml");
    let m = std::fs::read_to_string(&manifest).unwrap();
    std::fs::write(&manifest, m.replace("rule-plugin", "service-plugin")).unwrap();
    let out = build(&dir);
    assert!(!out.status.success(), "{}", text(&out));

    // No componentize-py anywhere (no .venv, no flag, nothing on PATH):
    // refused with the line that installs the pinned version.
    let fresh = new(tmp.path(), "python", "rule", "no-tool");
    let out = Command::new(ferry_bin())
        .args(["plugin", "build"])
        .arg(&fresh)
        .env("PATH", "")
        .env_remove("FERRY_COMPONENTIZE_PY")
        .output()
        .expect("cannot run the ferry binary");
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(
        t.contains("componentize-py not found") && t.contains("componentize-py==0.25.1"),
        "{t}"
    );

    // Not a project at all.
    let empty = tmp.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = build(&empty);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("cannot tell the language"),
        "{}",
        text(&out)
    );
}
