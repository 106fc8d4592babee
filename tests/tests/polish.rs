//! What a newcomer notices in the first hour (issue #16, item 11), through
//! the real binary: plain logs in a file and colours only on a terminal
//! without NO_COLOR, a word while plugins compile, a quiet end on a closed
//! pipe, "no such file", host warnings kept with a
//! plugin-only log filter, and no npx noise before the install hint.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use ferry_tests::{ferry_bin, plugins_dir};

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// `ferry.toml` with one inbound port answered by the example service.
fn setup() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nplugin_dir = '{}'\n\n\
             [adapters.file]\ncomponent = \"file-adapter\"\n\n\
             [services.sales]\ncomponent = \"sales-order-service\"\n\n\
             [ports.in]\ndirection = \"inbound\"\nadapter = \"file\"\naddress = \"inbox\"\n\
             response_address = \"outbox\"\n\
             services = [{{ action = \"*/SalesOrderService/*\", service = \"sales\" }}]\n",
            plugins_dir().display()
        ),
    )
    .unwrap();
    (dir, config)
}

fn ferry(args: &[&str], config: &Path) -> Output {
    Command::new(ferry_bin())
        .args(args)
        .arg("--config")
        .arg(config)
        .env_remove("RUST_LOG")
        .env_remove("NO_COLOR")
        .output()
        .unwrap()
}

#[test]
fn check_says_what_it_compiles_once_in_plain_text_when_stderr_is_a_file() {
    let (_dir, config) = setup();
    let first = ferry(&["check"], &config);
    assert!(first.status.success(), "{}", text(&first));
    let log = String::from_utf8_lossy(&first.stderr);
    assert!(
        log.contains("compiling plugin sales-order-service ("),
        "{}",
        text(&first)
    );
    assert!(
        log.contains("once only: later loads use the compile cache"),
        "{log}"
    );
    assert!(!log.contains('\u{1b}'), "ANSI colours in a file:\n{log:?}");
    let second = ferry(&["check"], &config);
    assert!(second.status.success(), "{}", text(&second));
    assert!(
        !String::from_utf8_lossy(&second.stderr).contains("compiling plugin"),
        "compiled again:\n{}",
        text(&second)
    );
}

#[test]
fn a_closed_pipe_ends_check_quietly() {
    let (_dir, config) = setup();
    // `ferry check | head -0`: the reader is gone before ferry prints.
    let mut child = Command::new(ferry_bin())
        .args(["check", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{}", text(&out));
    use std::os::unix::process::ExitStatusExt as _;
    const SIGPIPE: i32 = 13;
    assert!(
        out.status.success() || out.status.signal() == Some(SIGPIPE),
        "{}",
        text(&out)
    );
}

#[test]
fn plugin_check_of_a_missing_file_says_so() {
    let out = Command::new(ferry_bin())
        .args(["plugin", "check", "nosuch.wasm"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("file:    nosuch.wasm (No such file"), "{t}");
    assert!(!t.contains("0 bytes"), "{t}");
}

#[test]
fn a_plugin_only_log_filter_keeps_the_hosts_warnings() {
    let (dir, config) = setup();
    std::fs::create_dir(dir.path().join("inbox")).unwrap();
    // An order no service handles: the host warns about it.
    let mut f = std::fs::File::create(dir.path().join("inbox/x.xml")).unwrap();
    write!(
        f,
        "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{{00000000-0000-4000-8000-000000000011}}</MessageId>\
         <Action>x/NoSuchService/create</Action></Header>\
         <Body><MessageParts><X/></MessageParts></Body></Envelope>"
    )
    .unwrap();
    let out = ferry(
        &["run", "--once", "--log-level", "ferry::plugin=debug"],
        &config,
    );
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(log.contains("WARN"), "{}", text(&out));
    assert!(
        log.contains("no service on port in handles Action"),
        "{}",
        text(&out)
    );
}

#[test]
fn plugin_build_for_javascript_without_the_tool_gives_the_hint_without_npx_noise() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(ferry_bin())
        .args([
            "plugin", "new", "--lang", "js", "--world", "rule", "quiet", "--dir",
        ])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", text(&out));
    // An npx that would ask a registry and fail loudly.
    let bin = tmp.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let npx = bin.join("npx");
    std::fs::write(
        &npx,
        "#!/bin/sh\necho 'npm ERR! 404 Not Found' >&2\nexit 1\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&npx, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = Command::new(ferry_bin())
        .args(["plugin", "build"])
        .arg(tmp.path().join("quiet"))
        .env("PATH", &bin)
        .env_remove("FERRY_COMPONENTIZE_JS")
        .output()
        .unwrap();
    let t = text(&out);
    assert!(!out.status.success(), "{t}");
    assert!(t.contains("componentize-js not found"), "{t}");
    assert!(!t.contains("404"), "{t}");
}

#[test]
fn logs_are_coloured_on_a_terminal_unless_no_color_is_set() {
    let (_dir, config) = setup();
    // `script` (util-linux) gives the command a terminal.
    let on_terminal = |no_color: Option<&str>| {
        let line = format!(
            "{} check --config {} --log-level debug",
            ferry_bin().display(),
            config.display()
        );
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env_remove("RUST_LOG");
        match no_color {
            Some(v) => cmd.env("NO_COLOR", v),
            None => cmd.env_remove("NO_COLOR"),
        };
        let out = cmd
            .output()
            .expect("`script` (util-linux) runs a command on a terminal");
        assert!(out.status.success(), "{}", text(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert!(
        on_terminal(None).contains("\u{1b}["),
        "no colours on a terminal"
    );
    assert!(
        !on_terminal(Some("1")).contains("\u{1b}["),
        "colours despite NO_COLOR"
    );
}
