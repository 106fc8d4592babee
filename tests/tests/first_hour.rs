//! A new user's first hour (issue #16), through the real binary: nothing
//! dropped silently (responses of a port without a response address), checks
//! that catch broken set-ups, and errors that name file, line and key.

use ferry_tests::running::ORDER_ACTION;
use ferry_tests::{ferry_stdout, plugins_dir, run};
use std::path::{Path, PathBuf};
use tempfile::TempDir;

/// A folder with `ferry.toml` = `ports` after the shipped adapter and
/// service, and the folders `dirs` created.
fn setup(ports: &str, dirs: &[&str]) -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = \"data\"\nplugin_dir = '{}'\n\n\
             [adapters.file]\ncomponent = \"file-adapter\"\n\n\
             [services.sales]\ncomponent = \"sales-order-service\"\n{ports}",
            plugins_dir().display()
        ),
    )
    .unwrap();
    for d in dirs {
        std::fs::create_dir_all(dir.path().join(d)).unwrap();
    }
    (dir, config)
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn order(message_id: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{message_id}</MessageId><Company>ceu</Company>\
         <Action>{ORDER_ACTION}</Action></Header>\
         <Body><MessageParts><SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
         <SalesTable class=\"entity\"><CustAccount>C1</CustAccount><PurchOrderFormNum>PO-7</PurchOrderFormNum>\
         </SalesTable></SalesOrder></MessageParts></Body></Envelope>"
    )
}

const IN_PORT: &str = "\n[ports.in]\ndirection = \"inbound\"\nadapter = \"file\"\naddress = \"inbox\"\n\
     services = [{ action = \"*/SalesOrderService/*\", service = \"sales\" }]\n";

#[test]
fn a_port_whose_service_answers_needs_a_response_address_or_says_discard() {
    // No response_address, nothing said: check refuses, naming the key.
    let (_dir, config) = setup(IN_PORT, &["inbox"]);
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(2), "{r}");
    let expected = format!(
        "{}:14: ports.in.services: this port's services answer, but it has no response_address",
        config.display()
    );
    assert!(r.stderr.contains(&expected), "{expected:?} missing:\n{r}");
    assert!(r.stderr.contains("responses = \"discard\""), "{r}");

    // `responses` that contradicts the response address is refused too.
    let both = format!("{IN_PORT}response_address = \"outbox\"\nresponses = \"discard\"\n");
    let (_dir, config) = setup(&both, &["inbox", "outbox"]);
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(
        r.stderr
            .contains(":16: ports.in.responses: \"discard\" with a response_address"),
        "{r}"
    );
}

#[test]
fn discarded_responses_are_recorded_in_the_message_history() {
    let port = format!("{IN_PORT}responses = \"discard\"\n");
    let (dir, config) = setup(&port, &["inbox"]);
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");
    let id = "{00000000-0000-4000-8000-000000000016}";
    std::fs::write(dir.path().join("inbox/order.xml"), order(id)).unwrap();
    let r = run(&["run", "--once", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");
    assert!(!dir.path().join("inbox/order.xml").exists());

    // The response is in the order's history, with the service that wrote it.
    let history = ferry_stdout(&["history", "--config", s(&config), id]);
    assert!(history.contains("processed:  yes"), "{history}");
    let version = history
        .split("--- version ")
        .find(|v| v.contains("stage=response-discarded"))
        .unwrap_or_else(|| panic!("no discarded response in:\n{history}"));
    assert!(
        version.contains("plugins=[sales-order-service@"),
        "{history}"
    );
    assert!(version.contains("<EntityKeyList"), "{history}");
    assert!(version.contains("SO-PO-7-"), "{history}");
    assert!(
        version.contains(&format!("<RequestMessageId>{id}</RequestMessageId>")),
        "{history}"
    );

    // An unknown MessageId has no history, and says so.
    let r = run(&["history", "--config", s(&config), "nosuch"]);
    assert_eq!(r.code, Some(1), "{r}");
    assert!(r.stderr.contains("no history for MessageId nosuch"), "{r}");
}

const ANSWERING_PORT: &str = "\n[ports.in]\ndirection = \"inbound\"\nadapter = \"file\"\naddress = \"inbox\"\n\
     response_address = \"outbox\"\n\
     services = [{ action = \"*/SalesOrderService/*\", service = \"sales\" }]\n";

#[test]
fn check_names_a_granted_folder_that_does_not_exist() {
    let (dir, config) = setup(ANSWERING_PORT, &["inbox"]);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "component = \"file-adapter\"\n",
        "component = \"file-adapter\"\n\
         grants = [{ path = \"archive\", guest = \"/archive\", writable = true }]\n",
    );
    std::fs::write(&config, text).unwrap();
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(2), "{r}");
    let expected = format!(
        "{}:6: adapters.file.grants: folder {} does not exist",
        config.display(),
        dir.path().join("archive").display()
    );
    assert!(r.stderr.contains(&expected), "{expected:?} missing:\n{r}");
    std::fs::create_dir(dir.path().join("archive")).unwrap();
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");

    // A port folder is created when needed, unless something is in the way.
    std::fs::write(dir.path().join("blocked"), "a file").unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("\"outbox\"", "\"blocked/outbox\"");
    std::fs::write(&config, text).unwrap();
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(
        r.stderr.contains(":15: ports.in.response_address: folder ")
            && r.stderr.contains("blocked is not a folder"),
        "{r}"
    );
}

#[test]
fn a_port_that_cannot_receive_is_reported_once_not_at_every_occurrence() {
    use ferry_tests::running::Host;
    // on_commit = "move" without move_to: the adapter refuses every begin.
    let (dir, config) = setup(
        &format!("{ANSWERING_PORT}\n[jobs.aif]\nevery = \"50ms\"\n"),
        &["inbox"],
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "component = \"file-adapter\"\n",
        "component = \"file-adapter\"\noptions = { on_commit = \"move\" }\n",
    );
    std::fs::write(&config, text).unwrap();
    let mut host = Host::start(&config, dir.path().join("ferry.log"), "warn");
    let deadline = std::time::Instant::now() + ferry_tests::running::DEADLINE;
    while !host.log().contains("needs option move_to") {
        host.assert_running();
        assert!(std::time::Instant::now() < deadline, "{}", host.log());
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // Twenty occurrences or more.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    let log = host.log();
    host.stop();
    assert_eq!(log.matches("needs option move_to").count(), 1, "{log}");
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", s(&config)]);
    assert_eq!(
        exceptions.matches("needs option move_to").count(),
        1,
        "{exceptions}"
    );
    assert!(exceptions.contains("stage=receive"), "{exceptions}");
}

#[test]
fn check_shows_every_schema_error_at_once_with_line_and_key() {
    let port = format!(
        "{ANSWERING_PORT}logging = \"everything\"\nupon_error = \"stop\"\ntime_limit = 1000\n\n\
         [jobs.aif]\ntasks = [{{ service = \"gateway-recieve\" }}, {{ service = \"gateway-send\" }}]\n"
    );
    let (_dir, config) = setup(&port, &["inbox"]);
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(2), "{r}");
    let f = config.display().to_string();
    for expected in [
        format!("{f}:16: ports.in.logging: unknown variant `everything`, expected one of"),
        format!("{f}:17: ports.in.upon_error: unknown variant `stop`"),
        format!("{f}:18: ports.in.time_limit: unknown field `time_limit`, expected one of"),
        format!("{f}:21: jobs.aif.tasks.service: unknown variant `gateway-recieve`"),
    ] {
        assert!(r.stderr.contains(&expected), "{expected:?} missing:\n{r}");
    }
    assert!(r.stderr.contains("`time_limit_ms`"), "{r}");
    // Four problems, four lines, and no consequence reported as a fifth.
    assert_eq!(r.stderr.matches(&format!("{f}:")).count(), 4, "{r}");
}

#[test]
fn run_once_runs_split_jobs_in_the_aif_order_of_their_first_task() {
    // As in the user guide: "process-and-send" sorts before "receive", but
    // runs after it, so the order is answered in one `run --once`.
    let jobs = format!(
        "{ANSWERING_PORT}\n[jobs.receive]\nevery = \"10s\"\n\
         tasks = [{{ service = \"gateway-receive\" }}]\n\n\
         [jobs.process-and-send]\nevery = \"1m\"\ntasks = [\n\
           {{ service = \"inbound-processing\", name = \"process\" }},\n\
           {{ service = \"outbound-processing\", name = \"wrap\" }},\n\
           {{ service = \"gateway-send\", name = \"send\" }},\n]\n"
    );
    let (dir, config) = setup(&jobs, &["inbox"]);
    std::fs::write(
        dir.path().join("inbox/order.xml"),
        order("{00000000-0000-4000-8000-000000000006}"),
    )
    .unwrap();
    let r = run(&["run", "--once", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");
    let answered: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert_eq!(answered.len(), 1, "no answer after one run --once:\n{r}");
    let history = ferry_stdout(&["job", "history", "--config", s(&config), "receive"]);
    assert!(history.contains("done 1"), "{history}");
}

#[test]
fn links_and_fifos_in_an_inbox_are_refused_once_with_their_reason() {
    let (dir, config) = setup(ANSWERING_PORT, &["inbox", "elsewhere"]);
    let inbox = dir.path().join("inbox");
    std::os::unix::fs::symlink("/etc/passwd", inbox.join("a-passwd.xml")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("elsewhere"), inbox.join("b-folder.xml")).unwrap();
    let made = std::process::Command::new("mkfifo")
        .arg(inbox.join("c-fifo.xml"))
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::create_dir(inbox.join("d-subfolder")).unwrap();
    std::fs::write(
        inbox.join("e-order.xml"),
        order("{00000000-0000-4000-8000-000000000002}"),
    )
    .unwrap();
    // A host running its job every 50 ms: many occurrences see them.
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("{text}\n[jobs.aif]\nevery = \"50ms\"\n")).unwrap();
    let mut host = ferry_tests::running::Host::start(&config, dir.path().join("log"), "warn");
    let outbox = dir.path().join("outbox");
    ferry_tests::running::wait_for_responses(&mut host, &outbox, 1, "the order");
    std::thread::sleep(std::time::Duration::from_millis(500));
    host.stop();
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", s(&config)]);
    for (name, reason) in [
        (
            "a-passwd.xml",
            "is a symbolic link, which the file adapter does not follow",
        ),
        (
            "b-folder.xml",
            "is a symbolic link, which the file adapter does not follow",
        ),
        (
            "c-fifo.xml",
            "is not a regular file (a FIFO, socket or device)",
        ),
    ] {
        let entry = ferry_tests::exception_with(&exceptions, &format!("{name} was not received"));
        assert!(entry.contains(reason), "{entry}");
        assert!(entry.contains("stage=receive"), "{entry}");
        let refused = format!("{name} was not received");
        let refusals = exceptions.matches(&refused).count();
        assert_eq!(refusals, 1, "reported once:\n{exceptions}");
        assert!(
            inbox.join(name).symlink_metadata().is_ok(),
            "{name} was removed"
        );
    }
    assert!(exceptions.contains("3 exception(s)"), "{exceptions}");
    assert!(
        !exceptions.contains("root:"),
        "/etc/passwd leaked:\n{exceptions}"
    );
    assert!(
        !inbox.join("e-order.xml").exists(),
        "the order was not received"
    );
}

#[test]
fn a_message_released_after_its_transform_failed_runs_the_transforms_again() {
    let port = format!("{ANSWERING_PORT}transforms = [\"guard\"]\n");
    let (dir, config) = setup(&port, &["inbox"]);
    let text = std::fs::read_to_string(&config).unwrap();
    let hostile = "\n[rules.guard]\ncomponent = \"test-hostile\"\n";
    std::fs::write(&config, format!("{text}{hostile}")).unwrap();
    let id = "{00000000-0000-4000-8000-000000000008}";
    let content = order(id).replace(
        "<CustAccount>C1</CustAccount>",
        "<CustAccount>HOSTILE:reject</CustAccount>",
    );
    std::fs::write(dir.path().join("inbox/order.xml"), content).unwrap();
    let r = run(&["run", "--once", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");

    // In Error, and its exception is linked to it.
    let list = ferry_stdout(&["queue", "list", "--config", s(&config), "--status", "error"]);
    let key = list
        .lines()
        .find(|l| l.contains("order.xml"))
        .and_then(|l| l.split_whitespace().next())
        .unwrap_or_else(|| panic!("not in Error:\n{list}"))
        .to_string();
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", s(&config)]);
    let entry = ferry_tests::exception_with(&exceptions, "stage=transform");
    assert!(entry.contains(&format!("message={key} ")), "{entry}");

    // The rule is fixed (here: another plugin), the message resubmitted:
    // the transforms run again. It fails further on (no service for its
    // Action yet), is resubmitted from there once that is fixed too, and is
    // answered.
    let fixed = "\n[rules.guard]\ncomponent = \"value-map\"\n\
                 options = { elements = \"CustAccount\", map = { \"HOSTILE:reject\" = \"C1\" } }\n";
    let unrouted = text.replace("*/SalesOrderService/*", "*/NoSuchService/*");
    std::fs::write(&config, format!("{unrouted}{fixed}")).unwrap();
    ferry_stdout(&["queue", "release", "--config", s(&config), &key]);
    let r = run(&["run", "--once", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", s(&config)]);
    let entry = ferry_tests::exception_with(&exceptions, "stage=service");
    assert!(entry.contains(&format!("message={key} id={id}")), "{entry}");
    // It is an envelope now, with its MessageId in the queue.
    let list = ferry_stdout(&["queue", "list", "--config", s(&config), "--status", "error"]);
    assert!(list.contains(id), "{list}");
    // The version the transforms made this time is in its history.
    let history = ferry_stdout(&["history", "--config", s(&config), id]);
    assert!(
        history.contains("stage=receive plugins=[value-map@"),
        "{history}"
    );
    assert!(!history.contains("HOSTILE"), "{history}");
    std::fs::write(&config, format!("{text}{fixed}")).unwrap();
    ferry_stdout(&["queue", "release", "--config", s(&config), &key]);
    let r = run(&["run", "--once", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");
    let list = ferry_stdout(&["queue", "list", "--config", s(&config)]);
    assert!(list.contains("0 message(s)"), "{list}");
    let answers: Vec<_> = std::fs::read_dir(dir.path().join("outbox"))
        .unwrap()
        .flatten()
        .collect();
    assert_eq!(answers.len(), 1, "{r}");
    let answer = std::fs::read_to_string(answers[0].path()).unwrap();
    assert!(
        answer.contains(&format!("<RequestMessageId>{id}</RequestMessageId>")),
        "{answer}"
    );
    assert!(answer.contains("SO-PO-7-"), "{answer}");
    let exceptions = ferry_stdout(&["exceptions", "list", "--config", s(&config)]);
    assert!(
        exceptions.contains("2 exception(s)"),
        "the two failures:\n{exceptions}"
    );
}

#[test]
fn a_refused_reload_leaves_job_and_plugin_list_answering_from_the_running_host() {
    let dir = tempfile::tempdir().unwrap();
    let mut host = ferry_tests::running::start_hourly_orders(dir.path(), "", "info");
    let config = dir.path().join("ferry.toml");
    let text = std::fs::read_to_string(&config).unwrap();
    std::fs::write(&config, format!("workres = 2\n{text}")).unwrap();
    let deadline = std::time::Instant::now() + ferry_tests::running::DEADLINE;
    let listed = loop {
        let r = run(&["plugin", "list", "--config", s(&config)]);
        if r.stdout.contains("last reload refused") {
            break r;
        }
        host.assert_running();
        assert!(
            std::time::Instant::now() < deadline,
            "no refusal shown:\n{r}\n{}",
            host.log()
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(listed.code, Some(0), "{listed}");
    assert!(
        listed.stdout.contains("unknown field `workres`"),
        "{listed}"
    );
    assert!(listed.stdout.contains("sales-order-service"), "{listed}");
    assert!(
        listed.stderr.contains("showing the running host's state"),
        "{listed}"
    );
    let r = run(&["job", "list", "--config", s(&config)]);
    assert_eq!(r.code, Some(0), "{r}");
    assert!(r.stdout.contains("orders"), "{r}");
    assert!(
        r.stderr.contains(":1: workres: unknown field `workres`"),
        "{r}"
    );
    host.stop();
    // With no host running, the broken file is an error again.
    let r = run(&["job", "list", "--config", s(&config)]);
    assert_eq!(r.code, Some(2), "{r}");
    assert!(r.stderr.contains("invalid configuration"), "{r}");
}

#[test]
fn check_refuses_options_a_plugin_does_not_declare_and_plugin_check_lists_them() {
    let (_dir, config) = setup(ANSWERING_PORT, &["inbox"]);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "component = \"file-adapter\"\n",
        "component = \"file-adapter\"\noptions = { max_file_sise = 5, on_comit = \"move\", extension = \".txt\" }\n",
    );
    let text = text.replace(
        "component = \"sales-order-service\"\n",
        "component = \"sales-order-service\"\noptions = { forward_port = 7 }\n\
         [rules.map]\ncomponent = \"value-map\"\n\
         options = { elements = \"ItemId\", map = { \"A\" = \"1\" }, strict = \"sure\" }\n",
    );
    std::fs::write(&config, text).unwrap();
    let r = run(&["check", "--config", s(&config)]);
    assert_eq!(r.code, Some(2), "{r}");
    let f = config.display().to_string();
    for expected in [
        format!(
            "{f}:6: adapters.file.options: unknown option `max_file_sise`; did you mean \
             `max_file_size`? (the plugin's options: max_file_size, pattern, on_commit, move_to, \
             extension) (plugin file-adapter)"
        ),
        format!(
            "{f}:6: adapters.file.options: unknown option `on_comit`; did you mean `on_commit`?"
        ),
        format!("{f}:13: rules.map.options: option `strict` must be a boolean, not \"sure\""),
    ] {
        assert!(r.stderr.contains(&expected), "{expected:?} missing:\n{r}");
    }
    // A string option given a number is still text to the plugin: fine.
    assert!(!r.stderr.contains("forward_port"), "{r}");
    assert!(!r.stderr.contains("option `extension`"), "{r}");
    assert_eq!(r.stderr.matches(&format!("{f}:")).count(), 3, "{r}");

    let listed = ferry_stdout(&["plugin", "check", s(&ferry_tests::plugin("file-adapter"))]);
    assert!(
        listed
            .contains("options:\n  max_file_size (integer) = \"10485760\": largest file received"),
        "{listed}"
    );
    assert!(
        listed.contains("  on_commit (string) = \"delete\": delete or move"),
        "{listed}"
    );
    // A component that declares nothing is accepted without checks.
    let probe = ferry_stdout(&["plugin", "check", s(&ferry_tests::plugin("test-probe"))]);
    assert!(probe.contains("options: not declared"), "{probe}");
}
