//! Gateway send (AIFGatewaySendService): take the Ready outbound messages of
//! a port, mark them In transport process, and hand them to the port's
//! adapter in one send transaction (`begin`, `send` each, `commit`). Only
//! after the adapter committed are they taken off the queue.
//!
//! Each message is sent under the name `<MessageId>` (the file adapter adds
//! `.xml`), so a crash between the adapter's commit and the queue's commit
//! sends the same message again under the same name: the partner sees one
//! file, not two.

use crate::config::{PortConfig, TaskKind};
use crate::failpoint;
use crate::queue::{
    ClaimRequest, Direction, MessageKey, QueueError, QueuedMessage, Status, Transaction,
};
use crate::runtime::{Message, PluginFailure};

use super::sandboxes::{PORT_FOLDER, Side};
use super::{Gateway, Sandboxes, TaskCounts, stage};

/// The name a message is sent under: its MessageId, with anything but
/// letters, digits, `{}-_.` replaced by `_`.
pub fn send_name(msg: &QueuedMessage) -> String {
    msg.message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "{}-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Send the Ready outbound messages of `port`.
pub fn run(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    stop: &dyn Fn() -> bool,
) -> Result<TaskCounts, QueueError> {
    let mut counts = TaskCounts::default();
    while !stop() && gw.ready_to_run(sandboxes, port, TaskKind::GatewaySend) {
        let group = gw.claim(&ClaimRequest::new(
            Direction::Outbound,
            &port.name,
            gw.config().group_commit,
        ))?;
        if group.is_empty() {
            break;
        }
        let sandbox = match sandboxes.adapter(gw, port, Side::Send) {
            Ok(s) => s,
            Err(e) => {
                fail_all(gw, port, &group, None, &e.to_string())?;
                counts.failed += group.len() as u64;
                break;
            }
        };
        #[allow(clippy::result_large_err)]
        let outcome = (|| -> Result<(), (Option<MessageKey>, PluginFailure)> {
            sandbox.send_begin(PORT_FOLDER).map_err(|f| (None, f))?;
            for msg in &group {
                let m = Message {
                    name: send_name(msg),
                    content: msg.content.as_bytes().to_vec(),
                };
                sandbox.send(&m).map_err(|f| (Some(msg.key), f))?;
            }
            failpoint::point("send.after-adapter-write");
            sandbox.send_commit().map_err(|f| (None, f))?;
            failpoint::point("send.after-adapter-commit");
            Ok(())
        })();
        match outcome {
            Ok(()) => {
                let mut tx = Transaction::new();
                for msg in &group {
                    if let Some(h) = Gateway::history(
                        port,
                        stage::SEND,
                        &msg.message_id,
                        Some(msg.key),
                        &[],
                        &msg.content,
                    ) {
                        tx.history(h);
                    }
                    tx.remove(msg.key);
                }
                gw.settle(tx)?;
                failpoint::point("send.after-commit");
                counts.done += group.len() as u64;
            }
            Err((culprit, failure)) => {
                let _ = sandbox.send_rollback();
                match culprit {
                    // One message could not be sent: it goes to Error, the
                    // others back to Ready for the next round.
                    Some(key) => {
                        let mut tx = Transaction::new();
                        for msg in &group {
                            if msg.key == key {
                                tx.set_status(
                                    key,
                                    Status::Error,
                                    Some(format!("{}: {failure}", stage::SEND)),
                                );
                                tx.exception(Gateway::plugin_exception(
                                    &port.name,
                                    stage::SEND,
                                    Some(key),
                                    Some(&msg.message_id),
                                    &failure,
                                ));
                            } else {
                                tx.set_status(msg.key, Status::Ready, None);
                            }
                        }
                        gw.settle(tx)?;
                        counts.failed += 1;
                    }
                    None => {
                        fail_all(gw, port, &group, Some(&failure), &failure.to_string())?;
                        counts.failed += group.len() as u64;
                        break;
                    }
                }
            }
        }
    }
    Ok(counts)
}

fn fail_all(
    gw: &Gateway,
    port: &PortConfig,
    group: &[QueuedMessage],
    failure: Option<&PluginFailure>,
    text: &str,
) -> Result<(), QueueError> {
    tracing::error!(port = %port.name, "gateway send failed: {text}");
    let mut tx = Transaction::new();
    for msg in group {
        tx.set_status(
            msg.key,
            Status::Error,
            Some(format!("{}: {text}", stage::SEND)),
        );
        tx.exception(match failure {
            Some(f) => Gateway::plugin_exception(
                &port.name,
                stage::SEND,
                Some(msg.key),
                Some(&msg.message_id),
                f,
            ),
            None => Gateway::host_exception(
                &port.name,
                stage::SEND,
                Some(msg.key),
                Some(&msg.message_id),
                text.to_string(),
            ),
        });
    }
    gw.settle(tx).map(|_| ())
}
