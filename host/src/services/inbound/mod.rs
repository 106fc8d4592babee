//! Inbound processing (AIFInboundProcessingService): take Ready inbound
//! messages of a port, mark them In process, detect duplicates, run the
//! port's pipeline, dispatch by `Action` to the port's service, and record
//! the outcome — responses (or faults) and Send API documents become
//! outbound requests, in the same transaction that takes the message off the
//! queue and writes its `MessageId` to the message log.
//!
//! Messages are taken in the queue's order (file name, then position in a
//! batch file) and results committed in groups of `group_commit` messages,
//! so throughput is not bound by one fsync per message; the engine
//! ([`parallel`]) runs the plugins on worker threads while it claims
//! and commits (one worker, one message at a time, on a sequential port). A
//! crash before a group's commit leaves its messages In process; the
//! queue's recovery puts them back to Ready at the next start, and nothing
//! of them was committed.

use std::collections::HashSet;
use std::sync::Mutex;

use crate::config::{PortConfig, PortDirection, TaskKind};
use crate::envelope::{self, Envelope, Parsed};
use crate::queue::{
    Direction, MessageKey, NewMessage, QueueError, QueuedMessage, Status, Transaction,
};
use crate::runtime::{Document, ServiceHeader, ServiceRequest, Stage};

mod parallel;
pub(crate) mod upon_error;

use super::sandboxes::{SandboxError, invoke_service, run_rules};
use super::{Gateway, Sandboxes, TaskCounts, stage};
use upon_error::{BatchGuard, Outcome};

/// Process the Ready inbound messages of `port` received up to now.
pub fn run(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    stop: &dyn Fn() -> bool,
) -> Result<TaskCounts, QueueError> {
    if port.direction != PortDirection::Inbound {
        return Ok(TaskCounts::default());
    }
    parallel::run(gw, port, sandboxes.live(gw), stop)
}

/// Process one claimed message into its own transaction part, unless its
/// batch stopped (see [`upon_error`]) or its port is paused: then it waits.
pub(crate) fn handle(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    msg: &QueuedMessage,
    seen: &Mutex<HashSet<String>>,
    guard: &BatchGuard,
) -> Result<Outcome, QueueError> {
    let mut part = Transaction::new();
    // A message runs on the plugins in force when it starts; a port paused
    // meanwhile leaves it queued.
    if !gw.ready_to_run(sandboxes, port, TaskKind::InboundProcessing)
        || guard.must_wait(gw, port, msg, &mut part)?
    {
        return Ok(Outcome::Wait { part });
    }
    let ok = process(gw, port, sandboxes, msg, seen, &mut part)?;
    guard.record(gw, port, msg, ok, &mut part)?;
    Ok(Outcome::Done { part, ok })
}

/// Forget the message-log ids of messages whose results were discarded, so
/// they are not taken for duplicates of themselves.
pub(crate) fn forget(seen: &Mutex<HashSet<String>>, undone: &[String]) {
    if undone.is_empty() {
        return;
    }
    let mut seen = seen.lock().unwrap_or_else(|e| e.into_inner());
    for id in undone {
        seen.remove(id);
    }
}

/// At the end of a run, put the messages that waited (kept In process so
/// the run would not take them again) back to Ready.
pub(crate) fn release_waiting(gw: &Gateway, port: &PortConfig, waiting: &[MessageKey]) {
    if waiting.is_empty() {
        return;
    }
    if let Err(e) = gw.give_back(waiting) {
        // They stay In process; the queue's recovery makes them Ready at the
        // next start.
        tracing::error!(
            port = %port.name,
            "cannot put {} waiting batch members back to Ready: {e}",
            waiting.len()
        );
    }
}

/// Commit a group's results; if that fails, put the group back to Ready so
/// nothing stays In process, and report the error.
pub(crate) fn commit_group(
    gw: &Gateway,
    keys: &[MessageKey],
    tx: Transaction,
) -> Result<(), QueueError> {
    if let Err(e) = gw.settle(tx) {
        let _ = gw.give_back(keys);
        return Err(e);
    }
    Ok(())
}

/// Queue an outgoing document (a response, a fault, or a Send API document)
/// for `port` into `tx`. When outbound processing has nothing to do for it —
/// the responses of an inbound port pass no rules, and neither do the
/// documents of an outbound port without `pipeline` and `transforms` — it is
/// queued Ready to send at once, with the history entry outbound processing
/// would have written; otherwise it is an outbound request for outbound
/// processing. An unknown port gets an outbound request (outbound
/// processing reports it).
pub(super) fn queue_outgoing(
    gw: &Gateway,
    tx: &mut Transaction,
    port: &str,
    env: &Envelope,
    name: &str,
) {
    let config = gw.config();
    let target = config.ports.get(port);
    let direct = target.is_some_and(|p| {
        p.direction == PortDirection::Inbound || (p.pipeline.is_empty() && p.transforms.is_empty())
    });
    let content = env.to_xml();
    if let Some(p) = target.filter(|_| direct)
        && let Some(h) = Gateway::history(
            p,
            stage::OUTBOUND_TRANSFORM,
            &env.header.message_id,
            None,
            &[],
            &content,
        )
    {
        tx.history(h);
    }
    tx.insert(NewMessage {
        direction: if direct {
            Direction::Outbound
        } else {
            Direction::OutboundRequest
        },
        port: port.to_string(),
        status: Status::Ready,
        name: name.to_string(),
        position: 0,
        message_id: env.header.message_id.clone(),
        action: env.header.action.clone(),
        conversation_id: env.header.conversation_id.clone(),
        batch_id: None,
        request_message_id: env.header.request_message_id.clone(),
        content,
        error: None,
    });
}

/// The form of a `MessageId` kept in the message log: AIF compares message
/// ids as GUIDs, so case and surrounding braces do not matter.
pub fn message_log_id(id: &str) -> String {
    id.trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .to_ascii_uppercase()
}

/// Process one message into `tx`. Returns whether it succeeded. `seen`
/// holds the message-log ids of messages processed but not yet committed, so
/// a duplicate within one group is caught too.
pub(crate) fn process(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    msg: &QueuedMessage,
    seen: &Mutex<HashSet<String>>,
    tx: &mut Transaction,
) -> Result<bool, QueueError> {
    let fail = |tx: &mut Transaction, stage: &str, err: &SandboxError| {
        Gateway::fail_message(tx, &port.name, stage, msg, err);
        false
    };
    let retransformed;
    // Resubmitted after its transforms failed: it starts there again.
    let (msg, env) = if super::receive::failed_in_transform(msg) {
        use super::receive::Again;
        match super::receive::transform_again(gw, port, sandboxes, msg, tx) {
            Again::Queued => return Ok(true),
            Again::Failed => return Ok(false),
            Again::One(env, provenance) => {
                let content = env.to_xml();
                let stage = stage::RECEIVE;
                let id = &env.header.message_id;
                if let Some(h) =
                    Gateway::history(port, stage, id, Some(msg.key), &provenance, &content)
                {
                    tx.history(h);
                }
                // Kept as an envelope from now on: a later failure
                // resubmits it from there, not from the transforms.
                let header = &env.header;
                tx.set_envelope(
                    msg.key,
                    content.clone(),
                    header.message_id.clone(),
                    header.action.clone(),
                );
                retransformed = QueuedMessage {
                    message_id: env.header.message_id.clone(),
                    action: env.header.action.clone(),
                    content,
                    ..msg.clone()
                };
                (&retransformed, *env)
            }
        }
    } else {
        match envelope::parse(&msg.content) {
            Ok(Parsed::Single(e)) => (msg, e),
            Ok(Parsed::Batch(_)) | Err(_) => {
                let err =
                    SandboxError::Unavailable("the queued content is not a single envelope".into());
                return Ok(fail(tx, stage::PARSE, &err));
            }
        }
    };
    // From here on, failures name the message as it now is (a resubmitted
    // one has its MessageId only once transformed again).
    let fail = |tx: &mut Transaction, stage: &str, err: &SandboxError| {
        Gateway::fail_message(tx, &port.name, stage, msg, err);
        false
    };

    // Duplicate detection against the message log (and this group).
    let log_id = message_log_id(&msg.message_id);
    let first = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(log_id.clone());
    if !first || gw.queue.is_processed(&log_id)? {
        let fault = env.duplicate_fault();
        if port.response_address.is_none() {
            tx.history(Gateway::discarded_response(port, msg, &[], &fault));
        } else if port.send_faults {
            queue_outgoing(gw, tx, &port.name, &fault, &msg.name);
        }
        tx.exception(Gateway::host_exception(
            &port.name,
            stage::DUPLICATE,
            Some(msg.key),
            Some(&msg.message_id),
            format!(
                "{}: {} (MessageId {})",
                envelope::DUPLICATE_MESSAGE_CODE,
                envelope::DUPLICATE_MESSAGE_TEXT,
                msg.message_id
            ),
        ));
        tx.remove(msg.key);
        return Ok(false);
    }

    // Pipeline.
    let mut provenance = Vec::new();
    let env = if port.pipeline.is_empty() {
        env
    } else {
        let doc = Document {
            name: msg.name.clone(),
            content: msg.content.clone(),
        };
        let out = match run_rules(
            gw,
            sandboxes,
            port,
            &port.pipeline,
            Stage::Pipeline,
            doc,
            &mut provenance,
        ) {
            Ok(d) => d,
            Err(e) => return Ok(fail(tx, stage::PIPELINE, &e)),
        };
        if let Some(h) = Gateway::history(
            port,
            stage::PIPELINE,
            &msg.message_id,
            Some(msg.key),
            &provenance,
            &out.content,
        ) {
            tx.history(h);
        }
        if out.content == msg.content {
            // Unchanged by the rules: the envelope read above stands.
            env
        } else {
            match envelope::parse(&out.content) {
                Ok(Parsed::Single(e)) => e,
                Ok(Parsed::Batch(_)) => {
                    let err = SandboxError::Unavailable(
                        "the pipeline returned a batch, not one envelope".into(),
                    );
                    return Ok(fail(tx, stage::PIPELINE, &err));
                }
                Err(e) => {
                    let err = SandboxError::Unavailable(format!(
                        "the pipeline returned an invalid envelope: {e}"
                    ));
                    return Ok(fail(tx, stage::PIPELINE, &err));
                }
            }
        }
    };

    // Service.
    let Some(service) = port.route(&env.header.action) else {
        let err = SandboxError::Unavailable(format!(
            "no service on port {} handles Action {:?}",
            port.name, env.header.action
        ));
        return Ok(fail(tx, stage::SERVICE, &err));
    };
    let req = ServiceRequest {
        header: ServiceHeader {
            message_id: env.header.message_id.clone(),
            action: env.header.action.clone(),
            company: env.header.company.clone(),
            logon_as_user: env.header.logon_as_user.clone(),
            conversation_id: env.header.conversation_id.clone(),
            partition_key: env.header.partition_key.clone(),
        },
        body: env.body.clone(),
    };
    let (plugin, result, sent) =
        match invoke_service(gw, sandboxes, port, service, std::slice::from_ref(&req)) {
            Ok((plugin, mut answers)) => match answers.pop().expect("one answer for one request") {
                Ok((result, sent)) => (plugin, result, sent),
                Err(f) => return Ok(fail(tx, stage::SERVICE, &SandboxError::Plugin(f))),
            },
            Err(e) => return Ok(fail(tx, stage::SERVICE, &e)),
        };
    let respond = port.response_address.is_some();
    let by = [(plugin.name().to_string(), plugin.hash().to_string())];
    let ok = match result {
        Ok(bodies) => {
            for body in bodies {
                let response = env.response(body);
                if respond {
                    queue_outgoing(gw, tx, &port.name, &response, &msg.name);
                } else {
                    tx.history(Gateway::discarded_response(port, msg, &by, &response));
                }
            }
            for doc in sent {
                let mut out = Envelope::new(doc.action, doc.body);
                out.header.company = env.header.company.clone();
                out.header.conversation_id = env.header.conversation_id.clone();
                queue_outgoing(gw, tx, &doc.port, &out, &msg.name);
            }
            true
        }
        Err(fault) => {
            let response = env.fault(&fault.code, &fault.reason);
            if !respond {
                tx.history(Gateway::discarded_response(port, msg, &by, &response));
            } else if port.send_faults {
                queue_outgoing(gw, tx, &port.name, &response, &msg.name);
            }
            tx.exception(crate::queue::NewException {
                plugin: Some(plugin.name().to_string()),
                plugin_hash: Some(plugin.hash().to_string()),
                ..Gateway::host_exception(
                    &port.name,
                    stage::SERVICE,
                    Some(msg.key),
                    Some(&msg.message_id),
                    format!(
                        "service {service} answered with fault {}: {}",
                        fault.code, fault.reason
                    ),
                )
            });
            false
        }
    };
    tx.log_processed(log_id, port.name.clone());
    tx.remove(msg.key);
    Ok(ok)
}

#[cfg(test)]
mod tests {
    #[test]
    fn message_ids_compare_as_guids() {
        use super::message_log_id as id;
        assert_eq!(
            id("{5603d03a-4380-4a5a-9a74-5e8c0e3f0001}"),
            id("5603D03A-4380-4A5A-9A74-5E8C0E3F0001")
        );
        assert_ne!(id("{A}"), id("{B}"));
    }
}
