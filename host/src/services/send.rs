//! Gateway send (AIFGatewaySendService): take the Ready outbound messages of
//! a port, mark them In transport process, and hand them to the port's
//! adapter in one send transaction (`begin`, one `send` of the whole group,
//! `commit`). Only after the adapter committed are they taken off the
//! queue; a message the adapter refused goes to Error, the others are sent.
//! A `send` call that fails as a whole (the adapter trapped) is followed by
//! one session per message, so only the message that causes it fails.
//!
//! Each message is sent under the name `<MessageId>` (the file adapter adds
//! `.xml`), so a crash between the adapter's commit and the queue's commit
//! sends the same message again under the same name: the partner sees one
//! file, not two.

use crate::config::{PortConfig, TaskKind};
use crate::failpoint;
use crate::queue::{ClaimRequest, Direction, QueueError, QueuedMessage, Status, Transaction};
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
        let msgs: Vec<Message> = group
            .iter()
            .map(|msg| Message {
                name: send_name(msg),
                content: msg.content.as_bytes().to_vec(),
            })
            .collect();
        let outcome = match send_session(sandbox, &msgs) {
            // The batch failed as a whole (the instance trapped): each
            // message in a session of its own, so only the one that causes
            // it fails.
            Err(f) if group.len() > 1 && f.function == "send.send" => {
                tracing::warn!(port = %port.name, "a send batch of {} failed as a whole ({}); sending each message alone", group.len(), f.kind);
                msgs.chunks(1)
                    .map(|one| match send_session(sandbox, one) {
                        Ok(mut r) => r.pop().expect("one result for one message"),
                        Err(f) => Some(f),
                    })
                    .collect()
            }
            Err(f) if f.function == "send.send" => vec![Some(f)],
            Err(f) => {
                fail_all(gw, port, &group, Some(&f), &f.to_string())?;
                counts.failed += group.len() as u64;
                break;
            }
            Ok(r) => r,
        };
        let mut tx = Transaction::new();
        for (msg, failure) in group.iter().zip(outcome) {
            match failure {
                None => {
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
                    counts.done += 1;
                }
                // This message could not be sent: it goes to Error; the
                // others of the session were committed.
                Some(failure) => {
                    tx.set_status(
                        msg.key,
                        Status::Error,
                        Some(format!("{}: {failure}", stage::SEND)),
                    );
                    tx.exception(Gateway::plugin_exception(
                        &port.name,
                        stage::SEND,
                        Some(msg.key),
                        Some(&msg.message_id),
                        &failure,
                    ));
                    counts.failed += 1;
                }
            }
        }
        gw.settle(tx)?;
        failpoint::point("send.after-commit");
    }
    Ok(counts)
}

/// One send session: `begin`, `send` of `msgs`, `commit` of those that
/// were staged. The failure of each message (`None`: sent), or the failure
/// of the session: of `begin`, of the `send` call as a whole, or of
/// `commit` (then nothing was sent, and the session is rolled back).
fn send_session(
    sandbox: &mut crate::runtime::Sandbox,
    msgs: &[Message],
) -> Result<Vec<Option<PluginFailure>>, PluginFailure> {
    sandbox.send_begin(PORT_FOLDER)?;
    let results = match sandbox.send(msgs) {
        Ok(r) => r,
        Err(f) => {
            let _ = sandbox.send_rollback();
            return Err(f);
        }
    };
    let failures: Vec<Option<PluginFailure>> = results.into_iter().map(Result::err).collect();
    let result = if failures.iter().all(Option::is_some) {
        sandbox.send_rollback()
    } else {
        failpoint::point("send.after-adapter-write");
        let committed = sandbox.send_commit();
        if committed.is_ok() {
            failpoint::point("send.after-adapter-commit");
        }
        committed
    };
    if let Err(f) = result {
        let _ = sandbox.send_rollback();
        return Err(f);
    }
    Ok(failures)
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
