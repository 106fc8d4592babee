//! The crash window of gateway receive, driven through the public API: a
//! source whose message was queued but not yet removed by the adapter (a
//! crash between the two commits) is not queued twice; a receipt whose
//! source is gone (a crash after the adapter's commit) does not swallow a
//! later file with the same name and content.

use std::sync::Arc;

use ferry::config::Config;
use ferry::plugins::PluginSet;
use ferry::queue::{Filter, GatewayQueue, RedbQueue};
use ferry::runtime::{Runtime, RuntimeOptions};
use ferry::services::{Gateway, Sandboxes, receive};
use sha2::{Digest, Sha256};

const ORDER: &str = "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
    <Header><MessageId>{00000000-0000-4000-8000-000000000001}</MessageId><Action>urn:x/Svc/create</Action></Header>\
    <Body><MessageParts><Order/></MessageParts></Body></Envelope>";

fn receipt(name: &str) -> String {
    format!(
        "receipt/in/{name}/{}",
        hex(&Sha256::digest(ORDER.as_bytes())[..16])
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn gateway(dir: &std::path::Path) -> (Gateway, Arc<RedbQueue>, Arc<Config>) {
    let text = format!(
        "plugin_dir = \"{}\"\n[adapters.file]\ncomponent = \"file-adapter\"\n\
         [ports.in]\ndirection = \"inbound\"\nadapter = \"file\"\naddress = \"inbox\"\n",
        ferry_tests::plugins_dir().display()
    );
    let config = Arc::new(Config::parse(&dir.join("ferry.toml"), &text).unwrap());
    let runtime = Runtime::new(RuntimeOptions::default()).unwrap();
    let plugins = Arc::new(PluginSet::load(&runtime, &config).unwrap());
    let queue = Arc::new(RedbQueue::open(&config.data_dir).unwrap());
    let (lease, _) = queue.recover("test").unwrap();
    let gw = Gateway::new(config.clone(), queue.clone(), runtime, plugins, lease);
    std::fs::create_dir_all(dir.join("inbox")).unwrap();
    (gw, queue, config)
}

fn queued(queue: &RedbQueue) -> usize {
    queue.list(&Filter::default()).unwrap().len()
}

#[test]
fn a_redelivered_source_is_not_queued_twice() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, queue, config) = gateway(dir.path());
    // As after a crash between the queue's commit and the adapter's: the
    // receipt exists and the file is still in the inbox.
    queue.put_state(&receipt("001.xml"), b"").unwrap();
    std::fs::write(dir.path().join("inbox/001.xml"), ORDER).unwrap();
    let counts = receive::run(&gw, &config.ports["in"], &mut Sandboxes::new(), &|| false).unwrap();
    assert_eq!(counts.done, 0);
    assert_eq!(queued(&queue), 0, "not queued a second time");
    assert!(
        !dir.path().join("inbox/001.xml").exists(),
        "the source is removed"
    );
    assert!(
        queue.state_keys("receipt/").unwrap().is_empty(),
        "receipt used up"
    );
}

#[test]
fn a_receipt_whose_source_is_gone_does_not_swallow_a_later_file() {
    let dir = tempfile::tempdir().unwrap();
    let (gw, queue, config) = gateway(dir.path());
    // As after a crash after the adapter's commit: the receipt is left, the
    // file is gone. A pass over the folder clears it.
    queue.put_state(&receipt("001.xml"), b"").unwrap();
    receive::run(&gw, &config.ports["in"], &mut Sandboxes::new(), &|| false).unwrap();
    assert!(queue.state_keys("receipt/").unwrap().is_empty());
    // The partner sends the same file again: it is a new delivery.
    std::fs::write(dir.path().join("inbox/001.xml"), ORDER).unwrap();
    let counts = receive::run(&gw, &config.ports["in"], &mut Sandboxes::new(), &|| false).unwrap();
    assert_eq!(counts.done, 1);
    assert_eq!(queued(&queue), 1);
}
