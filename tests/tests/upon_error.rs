//! Batched requests and the port's upon-error setting, through the real
//! binary: a batch file of five orders whose third member fails in the
//! service (`test-probe` with `<Fail>failed</Fail>`), plus a lone message
//! after it, on a sequential and on a parallel port.
//!
//! - continue: members 1, 2, 4, 5 answered; 3 in Error.
//! - halt: 1 and 2 answered; 3 in Error; 4 and 5 stay Ready and wait, run
//!   after run, while 3 is in Error; deleting 3 lets them go.
//! - rollback: nothing of the batch answered; 3 in Error; 1, 2, 4, 5 stay
//!   Ready; resubmitting 3 (it fails again) changes nothing; deleting it lets
//!   1, 2, 4, 5 go, in order.
//!
//! In every mode the lone message is answered and nothing is lost.

use std::collections::BTreeSet;
use std::path::PathBuf;

use ferry::envelope::{self, Parsed};
use ferry::queue::{Direction, Filter, GatewayQueue, QueuedMessage, RedbQueue, Status};
use ferry_tests::{ferry, plugins_dir};

const ACTION: &str = "urn:test/ProbeService/run";
const BATCH: &str = "{BA7C0000-0000-4000-8000-000000000001}";

struct Setup {
    _dir: tempfile::TempDir,
    root: PathBuf,
    config: PathBuf,
}

fn id(n: u32) -> String {
    format!("{{00000000-0000-4000-8000-{n:012}}}")
}

fn setup(upon_error: &str, parallel: bool) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().to_path_buf();
    let config = root.join("ferry.toml");
    std::fs::write(
        &config,
        format!(
            r#"
data_dir = "data"
plugin_dir = "{plugins}"
workers = 2

[adapters.file]
component = "file-adapter"

[services.probe]
component = "test-probe"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
services = [{{ action = "*", service = "probe" }}]
upon_error = "{upon_error}"
parallel = {parallel}
max_parallel = 2
"#,
            plugins = plugins_dir().display()
        ),
    )
    .unwrap();
    std::fs::create_dir_all(root.join("inbox")).unwrap();
    // The batch: five members, the third fails in the service.
    let members = (1..=5)
        .map(|n| {
            let fail = if n == 3 { "<Fail>failed</Fail>" } else { "" };
            let xml = format!(
                "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
                 <Header><MessageId>{}</MessageId><Action>{ACTION}</Action></Header>\
                 <Body><MessageParts><Probe><File>member{n}</File>{fail}</Probe></MessageParts></Body></Envelope>",
                id(n)
            );
            let Parsed::Single(e) = envelope::parse(&xml).unwrap() else {
                unreachable!()
            };
            e
        })
        .collect();
    let batch = envelope::Batch {
        batch_id: Some(BATCH.into()),
        conversation_id: None,
        messages: members,
    };
    std::fs::write(root.join("inbox/a_batch.xml"), batch.to_xml()).unwrap();
    // A lone message after it.
    std::fs::write(
        root.join("inbox/b_alone.xml"),
        format!(
            "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
             <Header><MessageId>{}</MessageId><Action>{ACTION}</Action></Header>\
             <Body><MessageParts><Probe><File>alone</File></Probe></MessageParts></Body></Envelope>",
            id(9)
        ),
    )
    .unwrap();
    Setup {
        _dir: dir,
        root,
        config,
    }
}

impl Setup {
    fn run(&self) {
        let out = ferry(&["run", "--once", "--config", self.config.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn queue(&self) -> RedbQueue {
        RedbQueue::open(&self.root.join("data")).unwrap()
    }

    /// The inbound messages left, as (member number, status), in order.
    fn left(&self) -> Vec<(u32, Status)> {
        let q = self.queue();
        let mut left: Vec<QueuedMessage> = q
            .list(&Filter {
                direction: Some(Direction::Inbound),
                ..Filter::default()
            })
            .unwrap();
        left.sort_by_key(|m| (m.name.clone(), m.position));
        left.iter()
            .map(|m| (member(&m.message_id), m.status))
            .collect()
    }

    /// The members answered (by RequestMessageId), in the order the response
    /// files were written.
    fn answered(&self) -> BTreeSet<u32> {
        let Ok(dir) = std::fs::read_dir(self.root.join("outbox")) else {
            return BTreeSet::new();
        };
        let mut out = BTreeSet::new();
        for entry in dir {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let Parsed::Single(env) = envelope::parse(&text).unwrap() else {
                panic!("a batch in the outbox")
            };
            assert!(env.fault_of().is_none(), "unexpected fault: {text}");
            assert!(
                out.insert(member(&env.header.request_message_id.unwrap())),
                "answered twice"
            );
        }
        out
    }

    /// Delete (`ferry queue delete`) or resubmit (`ferry queue release`)
    /// the failed member.
    fn operator(&self, verb: &str) {
        let key = self
            .queue()
            .list(&Filter {
                status: Some(Status::Error),
                ..Filter::default()
            })
            .unwrap()[0]
            .key;
        let out = ferry(&[
            "queue",
            verb,
            "--config",
            self.config.to_str().unwrap(),
            &key.to_string(),
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn batch_exceptions(&self) -> Vec<String> {
        self.queue()
            .exceptions(&Default::default())
            .unwrap()
            .into_iter()
            .filter(|e| e.stage == "batch")
            .map(|e| e.text)
            .collect()
    }
}

fn member(message_id: &str) -> u32 {
    message_id
        .trim_matches(|c| c == '{' || c == '}')
        .rsplit('-')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn set(items: &[u32]) -> BTreeSet<u32> {
    items.iter().copied().collect()
}

fn upon_error_continue(parallel: bool) {
    let s = setup("continue", parallel);
    s.run();
    assert_eq!(s.answered(), set(&[1, 2, 4, 5, 9]));
    assert_eq!(s.left(), vec![(3, Status::Error)]);
    assert!(s.batch_exceptions().is_empty());
}

fn upon_error_halt(parallel: bool) {
    let s = setup("halt", parallel);
    s.run();
    assert_eq!(s.answered(), set(&[1, 2, 9]));
    let waiting = vec![(3, Status::Error), (4, Status::Ready), (5, Status::Ready)];
    assert_eq!(s.left(), waiting);
    let exceptions = s.batch_exceptions();
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert!(exceptions[0].contains("halt"), "{exceptions:?}");
    // Later occurrences leave the batch waiting while 3 is in Error.
    s.run();
    s.run();
    assert_eq!(s.answered(), set(&[1, 2, 9]));
    assert_eq!(s.left(), waiting);
    // Resubmitted, 3 goes first and fails again: the rest still wait.
    s.operator("release");
    s.run();
    assert_eq!(s.answered(), set(&[1, 2, 9]));
    assert_eq!(s.left(), waiting);
    // Deleted, the batch goes on.
    s.operator("delete");
    s.run();
    assert_eq!(s.answered(), set(&[1, 2, 4, 5, 9]));
    assert_eq!(s.left(), vec![]);
}

fn upon_error_rollback(parallel: bool) {
    let s = setup("rollback", parallel);
    s.run();
    // Nothing of the batch was answered: 1 and 2 were undone.
    assert_eq!(s.answered(), set(&[9]));
    let waiting = vec![
        (1, Status::Ready),
        (2, Status::Ready),
        (3, Status::Error),
        (4, Status::Ready),
        (5, Status::Ready),
    ];
    assert_eq!(s.left(), waiting);
    let exceptions = s.batch_exceptions();
    assert_eq!(exceptions.len(), 1, "{exceptions:?}");
    assert!(
        exceptions[0].contains("rollback undid 2 member(s)"),
        "{exceptions:?}"
    );
    // 1 and 2 are not in the message log: they were undone, not processed.
    let q = s.queue();
    assert!(
        !q.is_processed(&ferry::services::inbound::message_log_id(&id(1)))
            .unwrap()
    );
    drop(q);
    s.run();
    assert_eq!(s.answered(), set(&[9]));
    assert_eq!(s.left(), waiting);
    // Resubmitted, 3 fails again: the whole batch is undone again.
    s.operator("release");
    s.run();
    assert_eq!(s.answered(), set(&[9]));
    assert_eq!(s.left(), waiting);
    assert_eq!(s.batch_exceptions().len(), 2);
    // Deleted, the rest of the batch goes through.
    s.operator("delete");
    s.run();
    assert_eq!(s.answered(), set(&[1, 2, 4, 5, 9]));
    assert_eq!(s.left(), vec![]);
}

#[test]
fn continue_on_a_sequential_port() {
    upon_error_continue(false);
}

#[test]
fn continue_on_a_parallel_port() {
    upon_error_continue(true);
}

#[test]
fn halt_on_a_sequential_port() {
    upon_error_halt(false);
}

#[test]
fn halt_on_a_parallel_port() {
    upon_error_halt(true);
}

#[test]
fn rollback_on_a_sequential_port() {
    upon_error_rollback(false);
}

#[test]
fn rollback_on_a_parallel_port() {
    upon_error_rollback(true);
}
