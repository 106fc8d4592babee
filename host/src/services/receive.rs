//! Gateway receive (AIFGatewayReceiveService): for each inbound port, take
//! messages from its adapter, run the port's transforms (each rule called
//! once per receive batch, with all its messages), read the envelope
//! (splitting batches), and commit them to the gateway queue in one
//! transaction per receive batch — *then* tell the adapter to commit (remove
//! the sources).
//!
//! Nothing is dropped: a message that is not a valid envelope is queued as
//! Malformed XML with the reason; one whose transform fails is queued in
//! Error with the exception. A source the adapter refuses to load (e.g. too
//! large) stays where it is and is reported once in the exception log.
//!
//! A crash between the queue commit and the adapter commit would receive the
//! same sources again. Each receive transaction therefore also writes a
//! receipt per source (port, name, content hash), deleted once the adapter
//! has committed — by the next receive transaction, or one transaction at
//! the end of the pass, not a transaction of its own per batch; a source
//! received again with a receipt is a redelivery and is only committed at
//! the adapter, not queued twice.

use std::collections::HashSet;

use sha2::{Digest, Sha256};

use crate::config::{LoggingMode, PortConfig, PortDirection};
use crate::envelope::{self, Envelope, Parsed};
use crate::failpoint;
use crate::queue::{
    Direction, NewException, NewMessage, QueueError, QueuedMessage, Status, Transaction,
};
use crate::runtime::{Document, Received, Stage};

use super::sandboxes::{PORT_FOLDER, Side, run_rules, run_rules_batch};
use super::{Gateway, Sandboxes, TaskCounts, stage};

/// The state-area key of a receipt.
fn receipt_key(port: &str, name: &str, content: &[u8]) -> String {
    format!(
        "receipt/{port}/{name}/{}",
        hex::encode(&Sha256::digest(content)[..16])
    )
}

/// Receive everything waiting on `port` (inbound ports only).
pub fn run(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    stop: &dyn Fn() -> bool,
) -> Result<TaskCounts, QueueError> {
    let mut counts = TaskCounts::default();
    if port.direction != PortDirection::Inbound {
        return Ok(counts);
    }
    // Hosts sharing a queue: one of them receives from a port at a time.
    if !gw.lead("receive", &port.name)? {
        tracing::debug!(port = %port.name, "another host receives from this port");
        return Ok(counts);
    }
    let adapter_failed = |gw: &Gateway,
                          text: String,
                          plugin: Option<&crate::runtime::PluginFailure>| {
        // A port that cannot receive (e.g. a granted folder is missing) is
        // reported once, not at every occurrence, until it receives again.
        if !gw.first_report(&port.name, "", &text) {
            return Ok(());
        }
        let e = match plugin {
            Some(f) => Gateway::plugin_exception(&port.name, stage::RECEIVE, None, None, f),
            None => Gateway::host_exception(&port.name, stage::RECEIVE, None, None, text.clone()),
        };
        tracing::error!(port = %port.name, "gateway receive: {text}");
        let mut tx = Transaction::new();
        tx.exception(e);
        gw.queue.commit(tx).map(|_| ())
    };
    let sandbox = match sandboxes.adapter(gw, port, Side::Receive) {
        Ok(s) => s,
        Err(e) => {
            adapter_failed(gw, e.to_string(), None)?;
            return Ok(counts);
        }
    };
    if let Err(f) = sandbox.receive_begin(PORT_FOLDER) {
        adapter_failed(gw, f.to_string(), Some(&f))?;
        return Ok(counts);
    }
    gw.forget_reports(&port.name, "");
    // Receipts left by a crash before the adapter's commit, read once per
    // pass rather than once per file.
    let left_by_crash: HashSet<String> = gw
        .queue
        .state_keys(&format!("receipt/{}/", port.name))?
        .into_iter()
        .map(|(k, _)| k)
        .collect();
    // Receipts whose sources the adapter has committed: deleted by the next
    // queue transaction of this pass.
    let mut committed: Vec<String> = Vec::new();
    let result = (|| -> Result<(), QueueError> {
        while !stop() {
            let sandbox = sandboxes
                .adapter(gw, port, Side::Receive)
                .expect("created above");
            let batch = match sandbox.receive(port.receive_batch) {
                Ok(b) => b,
                Err(f) => {
                    adapter_failed(gw, f.to_string(), Some(&f))?;
                    break;
                }
            };
            if batch.is_empty() {
                // The whole folder was read. Receipts still left for this port
                // belong to sources that are gone (a crash after the adapter's
                // commit, before the receipts were cleared): a file arriving
                // later with the same name and content is a new delivery.
                clear_receipts(gw, port)?;
                committed.clear();
                break;
            }
            let mut tx = Transaction::new();
            for r in committed.drain(..) {
                tx.delete_state(r);
            }
            let mut commit_names = Vec::new();
            let mut rollback_names = Vec::new();
            let mut receipts = Vec::new();
            // The messages to queue, accepted in the batch's order: their
            // transforms run once for all of them.
            let mut to_accept = Vec::new();
            for entry in batch {
                match entry {
                    Received::Refused(r) => {
                        if gw.first_report(&port.name, &r.name, &r.reason) {
                            tracing::warn!(port = %port.name, file = %r.name, "refused by the adapter: {}", r.reason);
                            tx.exception(Gateway::host_exception(
                                &port.name,
                                stage::RECEIVE,
                                None,
                                None,
                                format!("{} was not received: {}", r.name, r.reason),
                            ));
                        }
                        rollback_names.push(r.name);
                    }
                    Received::Accepted(m) => {
                        let receipt = receipt_key(&port.name, &m.name, &m.content);
                        commit_names.push(m.name.clone());
                        if left_by_crash.contains(&receipt) {
                            tracing::info!(port = %port.name, file = %m.name, "already queued before a restart; not queued again");
                            receipts.push(receipt);
                            continue;
                        }
                        tx.put_state(receipt.clone(), Vec::new());
                        receipts.push(receipt);
                        to_accept.push((m.name, m.content));
                    }
                }
            }
            counts.add(accept_all(gw, port, sandboxes, &mut tx, to_accept));
            // Under the lease: a host that lost it (another host may be
            // receiving the same files now) queues nothing.
            gw.settle(tx)?;
            failpoint::point("receive.after-commit");
            let sandbox = sandboxes
                .adapter(gw, port, Side::Receive)
                .expect("created above");
            if !rollback_names.is_empty()
                && let Err(f) = sandbox.receive_rollback(&rollback_names)
            {
                adapter_failed(gw, f.to_string(), Some(&f))?;
            }
            if commit_names.is_empty() {
                // Only refused sources left: they stay in place; stop here so
                // they are not read again in this occurrence.
                break;
            }
            match sandbox.receive_commit(&commit_names) {
                Ok(()) => {
                    failpoint::point("receive.after-adapter-commit");
                    committed.extend(receipts)
                }
                Err(f) => {
                    // The messages are safely queued; their sources remain and
                    // their receipts keep them from being queued twice.
                    adapter_failed(gw, f.to_string(), Some(&f))?;
                    break;
                }
            }
        }
        Ok(())
    })();
    // The pass ended before a last queue transaction could take them.
    if !committed.is_empty() {
        let mut done = Transaction::new();
        for r in committed {
            done.delete_state(r);
        }
        gw.queue.commit(done)?;
    }
    result.map(|()| counts)
}

/// Delete every receipt of `port`: called when a receive pass has read its
/// whole folder, so every receipt that was still needed has been used.
fn clear_receipts(gw: &Gateway, port: &PortConfig) -> Result<(), QueueError> {
    let stale = gw.queue.state_keys(&format!("receipt/{}/", port.name))?;
    if stale.is_empty() {
        return Ok(());
    }
    tracing::debug!(port = %port.name, count = stale.len(), "clearing receipts of sources that are gone");
    let mut tx = Transaction::new();
    for (key, _) in stale {
        tx.delete_state(key);
    }
    gw.queue.commit(tx).map(|_| ())
}

/// What [`transform_again`] made of a resubmitted message.
pub(crate) enum Again {
    /// One envelope, to be processed now, and the transforms that made it.
    One(Box<Envelope>, Vec<(String, String)>),
    /// A batch, whose members are queued in its place.
    Queued,
    /// It failed again: in Error, with its exception.
    Failed,
}

/// How the error of a message whose transforms failed begins (after its
/// file name): released, it goes through the transforms again.
const TRANSFORM_FAILED: &str = "transform failed: ";

/// Whether `msg` failed in the port's transforms, before it was an envelope.
pub(crate) fn failed_in_transform(msg: &QueuedMessage) -> bool {
    msg.error
        .as_deref()
        .is_some_and(|e| e.starts_with(&format!("{}: {TRANSFORM_FAILED}", msg.name)))
}

/// A resubmitted message that had failed in the port's transforms starts
/// there again: the transforms run on its content. One envelope comes back
/// to be processed now; a batch's members are queued Ready in `tx` (for the
/// next occurrence) in its place; a failure puts it in Error again with
/// the exception linked to it.
pub(crate) fn transform_again(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    msg: &QueuedMessage,
    tx: &mut Transaction,
) -> Again {
    let doc = Document {
        name: msg.name.clone(),
        content: msg.content.clone(),
    };
    let mut provenance = Vec::new();
    let fail = |tx: &mut Transaction, reason: String, exception: NewException| {
        tracing::warn!(port = %port.name, file = %msg.name, "{reason}");
        tx.set_status(msg.key, Status::Error, Some(reason));
        tx.exception(NewException {
            message_key: Some(msg.key),
            ..exception
        });
        Again::Failed
    };
    let transforms = &port.transforms;
    let text = match run_rules(
        gw,
        sandboxes,
        port,
        transforms,
        Stage::Transform,
        doc,
        &mut provenance,
    ) {
        Ok(d) => d.content,
        Err(e) => {
            let reason = format!("{}: {TRANSFORM_FAILED}{e}", msg.name);
            let exception =
                Gateway::sandbox_exception(&port.name, stage::TRANSFORM, None, None, &e);
            return fail(tx, reason, exception);
        }
    };
    match envelope::parse(&text) {
        Ok(Parsed::Single(e)) => Again::One(Box::new(e), provenance),
        Ok(Parsed::Batch(b)) => {
            let id = b.batch_id.clone();
            let counts = queue_envelopes(gw, port, tx, &msg.name, b.messages, id, &provenance);
            tracing::info!(port = %port.name, file = %msg.name, messages = counts.done, "transformed again: queued");
            tx.remove(msg.key);
            Again::Queued
        }
        Err(e) => {
            // The transforms' output is wrong: released again, it goes
            // through them again (once the rule is fixed).
            let reason = format!(
                "{}: {TRANSFORM_FAILED}their output is not a message: {e}",
                msg.name
            );
            let exception =
                Gateway::host_exception(&port.name, stage::PARSE, None, None, reason.clone());
            fail(tx, reason, exception)
        }
    }
}

/// Turn the received messages into queue entries in `tx`, in order: each
/// decoded, the port's transforms run once over all that decoded (a batch:
/// one outcome per message), then each read as an envelope (or batch).
fn accept_all(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    tx: &mut Transaction,
    messages: Vec<(String, Vec<u8>)>,
) -> TaskCounts {
    let mut counts = TaskCounts::default();
    // Decoded text per message, or its failure already parked in `tx`.
    let mut texts: Vec<(String, Option<String>)> = Vec::with_capacity(messages.len());
    for (name, content) in messages {
        match envelope::decode_text(&content) {
            Ok(t) => texts.push((name, Some(t))),
            Err(e) => {
                let reason = format!("{name}: {e}");
                let raw = String::from_utf8_lossy(&content).into_owned();
                let exception = parse_exception(port, &reason);
                counts.add(park(
                    port,
                    tx,
                    &name,
                    Status::MalformedXml,
                    raw,
                    reason,
                    exception,
                ));
                texts.push((name, None));
            }
        }
    }
    if port.transforms.is_empty() {
        for (name, text) in texts {
            if let Some(text) = text {
                counts.add(read_and_queue(gw, port, tx, &name, text, &[]));
            }
        }
        return counts;
    }
    let docs: Vec<Document> = texts
        .iter()
        .filter_map(|(name, t)| t.as_ref().map(|t| Document::new(name.clone(), t.clone())))
        .collect();
    let mut outcomes = run_rules_batch(
        gw,
        sandboxes,
        port,
        &port.transforms,
        Stage::Transform,
        docs,
    )
    .into_iter();
    for (name, text) in texts {
        let Some(text) = text else { continue };
        let outcome = outcomes.next().expect("one outcome per document");
        counts.add(match outcome {
            Ok((doc, provenance)) => read_and_queue(gw, port, tx, &name, doc.content, &provenance),
            Err(e) => {
                let reason = format!("{name}: {TRANSFORM_FAILED}{e}");
                let exception =
                    Gateway::sandbox_exception(&port.name, stage::TRANSFORM, None, None, &e);
                park(port, tx, &name, Status::Error, text, reason, exception)
            }
        });
    }
    counts
}

/// A message that cannot be queued Ready is queued with `status` and the
/// reason, and explained in the exception log: nothing is dropped.
fn park(
    port: &PortConfig,
    tx: &mut Transaction,
    name: &str,
    status: Status,
    content: String,
    reason: String,
    exception: NewException,
) -> TaskCounts {
    tx.insert(NewMessage {
        direction: Direction::Inbound,
        port: port.name.clone(),
        status,
        name: name.to_string(),
        position: 0,
        message_id: String::new(),
        action: String::new(),
        conversation_id: None,
        batch_id: None,
        request_message_id: None,
        content,
        error: Some(reason),
    });
    tx.exception_for_inserted(exception);
    TaskCounts { done: 0, failed: 1 }
}

fn parse_exception(port: &PortConfig, reason: &str) -> NewException {
    Gateway::host_exception(&port.name, stage::PARSE, None, None, reason.into())
}

/// Read a message's text (after its transforms) as an envelope or a batch
/// and queue it, or park it Malformed XML / Error with the reason.
fn read_and_queue(
    gw: &Gateway,
    port: &PortConfig,
    tx: &mut Transaction,
    name: &str,
    text: String,
    provenance: &[(String, String)],
) -> TaskCounts {
    let (messages, batch_id) = match envelope::parse(&text) {
        Ok(Parsed::Single(e)) => (vec![e], None),
        Ok(Parsed::Batch(b)) => {
            let id = b.batch_id.clone();
            (b.messages, id)
        }
        Err(e) => {
            let reason = format!("{name}: {e}");
            let status = if e.is_malformed() {
                Status::MalformedXml
            } else {
                Status::Error
            };
            let exception = parse_exception(port, &reason);
            return park(port, tx, name, status, text, reason, exception);
        }
    };
    queue_envelopes(gw, port, tx, name, messages, batch_id, provenance)
}

/// Queue the envelopes read from source `name` Ready in `tx`, with their
/// first history version.
fn queue_envelopes(
    gw: &Gateway,
    port: &PortConfig,
    tx: &mut Transaction,
    name: &str,
    messages: Vec<Envelope>,
    batch_id: Option<String>,
    provenance: &[(String, String)],
) -> TaskCounts {
    let n = messages.len() as u64;
    for (i, env) in messages.into_iter().enumerate() {
        let content = env.to_xml();
        // Read again by inbound processing only if no rule changes it.
        if port.pipeline.is_empty() {
            gw.note_written(&content);
        }
        // The version as received is the message's content: stored once
        // for both, unless only its header is logged.
        let whole = matches!(port.logging, LoggingMode::Original | LoggingMode::All);
        let history = Gateway::history(
            port,
            stage::RECEIVE,
            &env.header.message_id,
            None,
            provenance,
            if whole { "" } else { &content },
        );
        tx.insert(NewMessage {
            direction: Direction::Inbound,
            port: port.name.clone(),
            status: Status::Ready,
            name: name.to_string(),
            position: i as u32,
            message_id: env.header.message_id.clone(),
            action: env.header.action.clone(),
            conversation_id: env.header.conversation_id.clone(),
            batch_id: batch_id.clone(),
            request_message_id: None,
            content,
            error: None,
        });
        match history {
            Some(h) if whole => tx.history_of_inserted(h),
            Some(h) => tx.history(h),
            None => tx,
        };
    }
    TaskCounts { done: n, failed: 0 }
}
