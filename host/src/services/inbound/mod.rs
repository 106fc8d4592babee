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

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::config::{PortConfig, PortDirection, TaskKind};
use crate::envelope::{self, Envelope, Parsed};
use crate::queue::{
    Direction, MessageKey, NewMessage, QueueError, QueuedMessage, Status, Transaction,
};
use crate::runtime::{Answered, Document, Plugin, ServiceHeader, ServiceRequest, Stage};

mod parallel;
pub(crate) mod upon_error;

use super::sandboxes::{SandboxError, invoke_service, run_rules_batch};
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
    parallel::run(gw, port, sandboxes, stop)
}

/// Process a worker's batch of claimed messages, in order: one outcome per
/// message. Each rule of the pipeline is called once for the batch's
/// documents, each service once for the requests routed to it; one
/// document's failure lands on its own message only. A message whose batch
/// stopped (see [`upon_error`]) or whose port is paused waits. The batch
/// never holds two members of one guarded batch file (the engine cuts it),
/// so each member's wait is decided after its predecessor was recorded.
pub(crate) fn handle_batch(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    msgs: &[QueuedMessage],
    seen: &Mutex<HashSet<String>>,
    guard: &BatchGuard,
) -> Vec<Result<Outcome, QueueError>> {
    // A batch runs on the plugins in force when it starts; a port paused
    // meanwhile leaves it queued.
    let ready = gw.ready_to_run(sandboxes, port, TaskKind::InboundProcessing);
    let logged = if ready {
        in_message_log(gw, msgs)
    } else {
        HashMap::new()
    };
    let mut slots: Vec<Slot<'_>> = msgs
        .iter()
        .map(|msg| {
            let mut part = Transaction::new();
            if !ready {
                return Slot::Settled(Ok(Outcome::Wait { part }));
            }
            match guard.must_wait(gw, port, msg, &mut part) {
                Err(e) => Slot::Settled(Err(e)),
                Ok(true) => Slot::Settled(Ok(Outcome::Wait { part })),
                Ok(false) => match prepare(gw, port, sandboxes, msg, seen, &logged, &mut part) {
                    Err(e) => Slot::Settled(Err(e)),
                    Ok(Prepared::Done(ok)) => Slot::Finished { msg, part, ok },
                    Ok(Prepared::Go(work)) => Slot::Going { work, part },
                },
            }
        })
        .collect();
    pipeline(gw, port, sandboxes, &mut slots);
    services(gw, port, sandboxes, &mut slots);
    slots
        .into_iter()
        .map(|slot| match slot {
            Slot::Settled(r) => r,
            Slot::Going { .. } => unreachable!("every message went through the service stage"),
            Slot::Finished { msg, mut part, ok } => {
                guard.record(gw, port, msg, ok, &mut part)?;
                Ok(Outcome::Done { part, ok })
            }
        })
        .collect()
}

/// Where one message of a batch stands.
enum Slot<'m> {
    /// Decided before any plugin ran: it waits, or the queue failed.
    Settled(Result<Outcome, QueueError>),
    /// On its way through the pipeline and the service.
    Going {
        work: Box<Work<'m>>,
        part: Transaction,
    },
    /// Processed (or failed) into its part; the batch guard records it.
    Finished {
        msg: &'m QueuedMessage,
        part: Transaction,
        ok: bool,
    },
}

/// A message read, not a duplicate, and on its way.
struct Work<'m> {
    /// As it was claimed.
    claimed: &'m QueuedMessage,
    /// As it now is (a resubmitted transform failure was transformed again).
    msg: Cow<'m, QueuedMessage>,
    /// Its envelope (as the pipeline left it, after the pipeline). On a
    /// port with a pipeline it is read only after the rules — from what
    /// they returned, or from the queued content if they left it alone —
    /// so a message the rules change is read once in inbound processing,
    /// not twice.
    env: Option<Envelope>,
    /// Its message-log id.
    log_id: String,
}

impl<'m> Slot<'m> {
    /// Fail a going message at `stage`: it is finished, in Error.
    fn fail(&mut self, port: &PortConfig, stage: &str, err: &SandboxError) {
        self.finish(|work, part| {
            Gateway::fail_message(part, &port.name, stage, &work.msg, err);
            false
        });
    }

    /// Finish a going message: `record` writes its outcome into its part
    /// and says whether it succeeded.
    fn finish(&mut self, record: impl FnOnce(&Work<'m>, &mut Transaction) -> bool) {
        let Slot::Going { work, part } = self else {
            unreachable!("only a going message finishes");
        };
        let mut part = std::mem::take(part);
        let ok = record(work, &mut part);
        let msg = work.claimed;
        *self = Slot::Finished { msg, part, ok };
    }

    fn going(&mut self) -> Option<(&mut Work<'m>, &mut Transaction)> {
        match self {
            Slot::Going { work, part } => Some((work, part)),
            _ => None,
        }
    }
}

impl Work<'_> {
    /// The envelope, read by now.
    fn env(&self) -> &Envelope {
        self.env.as_ref().expect("read before the service stage")
    }
}

/// Whether the message log holds each claimed message's id (normalised),
/// asked once for the group. Empty if the queue cannot answer now: each
/// message then asks on its own, and meets the error there.
fn in_message_log(gw: &Gateway, msgs: &[QueuedMessage]) -> HashMap<String, bool> {
    let ids: Vec<String> = msgs.iter().map(|m| message_log_id(&m.message_id)).collect();
    let asked: Vec<&str> = ids.iter().map(String::as_str).collect();
    match gw.queue.are_processed(&asked) {
        Ok(found) => ids.into_iter().zip(found).collect(),
        Err(e) => {
            tracing::debug!(error = %e, "message log lookup for a group failed; asking per message");
            HashMap::new()
        }
    }
}

/// Read `content`, as queued, as one envelope.
fn read_queued(gw: &Gateway, content: &str) -> Result<Envelope, SandboxError> {
    match gw.read_queued(content) {
        Ok(Parsed::Single(e)) => Ok(e),
        Ok(Parsed::Batch(_)) => Err(SandboxError::Unavailable(
            "the queued content is a batch, not a single envelope".into(),
        )),
        Err(e) => Err(SandboxError::Unavailable(format!(
            "the queued content is not a valid envelope: {e}"
        ))),
    }
}

/// A message after its first checks.
enum Prepared<'m> {
    /// Finished already (a duplicate, unreadable, a batch queued again):
    /// whether it succeeded.
    Done(bool),
    /// To the pipeline and the service.
    Go(Box<Work<'m>>),
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

/// Read a claimed message (transforming a resubmitted transform failure
/// again) and check it against the message log into `tx`. `seen` holds the
/// message-log ids of messages processed but not yet committed, so a
/// duplicate within one group is caught too.
fn prepare<'m>(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    claimed: &'m QueuedMessage,
    seen: &Mutex<HashSet<String>>,
    logged: &HashMap<String, bool>,
    tx: &mut Transaction,
) -> Result<Prepared<'m>, QueueError> {
    // Resubmitted after its transforms failed: it starts there again.
    let (msg, env) = if super::receive::failed_in_transform(claimed) {
        use super::receive::Again;
        match super::receive::transform_again(gw, port, sandboxes, claimed, tx) {
            Again::Queued => return Ok(Prepared::Done(true)),
            Again::Failed => return Ok(Prepared::Done(false)),
            Again::One(env, provenance) => {
                let content = env.to_xml();
                let stage = stage::RECEIVE;
                let id = &env.header.message_id;
                if let Some(h) =
                    Gateway::history(port, stage, id, Some(claimed.key), &provenance, &content)
                {
                    tx.history(h);
                }
                // Kept as an envelope from now on: a later failure
                // resubmits it from there, not from the transforms.
                let header = &env.header;
                tx.set_envelope(
                    claimed.key,
                    content.clone(),
                    header.message_id.clone(),
                    header.action.clone(),
                );
                let msg = QueuedMessage {
                    message_id: env.header.message_id.clone(),
                    action: env.header.action.clone(),
                    content,
                    ..claimed.clone()
                };
                (Cow::Owned(msg), Some(*env))
            }
        }
    } else if !port.pipeline.is_empty() {
        // Read after the rules (see `Work::env`).
        (Cow::Borrowed(claimed), None)
    } else {
        match read_queued(gw, &claimed.content) {
            Ok(e) => (Cow::Borrowed(claimed), Some(e)),
            Err(err) => {
                Gateway::fail_message(tx, &port.name, stage::PARSE, claimed, &err);
                return Ok(Prepared::Done(false));
            }
        }
    };

    // Duplicate detection against the message log (and this group). From
    // here on, failures name the message as it now is (a resubmitted one
    // has its MessageId only once transformed again).
    let log_id = message_log_id(&msg.message_id);
    let first = seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(log_id.clone());
    let processed = || match logged.get(&log_id) {
        Some(&found) => Ok(found),
        // Its MessageId is known only now (transformed again).
        None => gw.queue.is_processed(&log_id),
    };
    if !first || processed()? {
        let read = match &env {
            Some(e) => Ok(Cow::Borrowed(e)),
            None => read_queued(gw, &msg.content).map(Cow::Owned),
        };
        let fault = match read {
            Ok(e) => e.duplicate_fault(),
            Err(err) => {
                Gateway::fail_message(tx, &port.name, stage::PARSE, &msg, &err);
                return Ok(Prepared::Done(false));
            }
        };
        if port.response_address.is_none() {
            tx.history(Gateway::discarded_response(port, &msg, &[], &fault));
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
        return Ok(Prepared::Done(false));
    }
    Ok(Prepared::Go(Box::new(Work {
        claimed,
        msg,
        env,
        log_id,
    })))
}

/// The port's pipeline over the batch's going messages: each rule called
/// once for the documents still passing. Then each message's envelope is
/// read: what the rules returned if they changed it, else the queued
/// content.
fn pipeline(gw: &Gateway, port: &PortConfig, sandboxes: &mut Sandboxes, slots: &mut [Slot<'_>]) {
    if port.pipeline.is_empty() {
        return;
    }
    let going: Vec<usize> = (0..slots.len())
        .filter(|&i| matches!(slots[i], Slot::Going { .. }))
        .collect();
    if going.is_empty() {
        return;
    }
    let docs = going
        .iter()
        .map(|&i| {
            let (work, _) = slots[i].going().expect("going");
            Document {
                name: work.msg.name.clone(),
                content: work.msg.content.clone(),
            }
        })
        .collect();
    let outcomes = run_rules_batch(gw, sandboxes, port, &port.pipeline, Stage::Pipeline, docs);
    for (&i, outcome) in going.iter().zip(outcomes) {
        let (out, provenance) = match outcome {
            Ok(o) => o,
            Err(e) => {
                slots[i].fail(port, stage::PIPELINE, &e);
                continue;
            }
        };
        let (work, part) = slots[i].going().expect("going");
        let msg = &work.msg;
        if let Some(h) = Gateway::history(
            port,
            stage::PIPELINE,
            &msg.message_id,
            Some(msg.key),
            &provenance,
            &out.content,
        ) {
            part.history(h);
        }
        if out.content == msg.content {
            // Unchanged by the rules: the queued content is the envelope.
            if work.env.is_none() {
                match read_queued(gw, &msg.content) {
                    Ok(e) => work.env = Some(e),
                    Err(err) => slots[i].fail(port, stage::PARSE, &err),
                }
            }
            continue;
        }
        let err = match envelope::parse(&out.content) {
            Ok(Parsed::Single(e)) => {
                work.env = Some(e);
                continue;
            }
            Ok(Parsed::Batch(_)) => {
                SandboxError::Unavailable("the pipeline returned a batch, not one envelope".into())
            }
            Err(e) => {
                SandboxError::Unavailable(format!("the pipeline returned an invalid envelope: {e}"))
            }
        };
        slots[i].fail(port, stage::PIPELINE, &err);
    }
}

/// Route each going message by its `Action` and call each service once
/// with the requests routed to it, in the batch's order; record each
/// answer.
fn services(gw: &Gateway, port: &PortConfig, sandboxes: &mut Sandboxes, slots: &mut [Slot<'_>]) {
    // Services in the order their first request comes, each with its
    // messages in order.
    let mut routed: Vec<(&str, Vec<usize>)> = Vec::new();
    for (i, slot) in slots.iter_mut().enumerate() {
        let Some((work, _)) = slot.going() else {
            continue;
        };
        let action = &work.env().header.action;
        let Some(service) = port.route(action) else {
            let err = SandboxError::Unavailable(format!(
                "no service on port {} handles Action {action:?}",
                port.name
            ));
            slot.fail(port, stage::SERVICE, &err);
            continue;
        };
        match routed.iter_mut().find(|(s, _)| *s == service) {
            Some((_, list)) => list.push(i),
            None => routed.push((service, vec![i])),
        }
    }
    for (service, list) in routed {
        let reqs: Vec<ServiceRequest> = list
            .iter()
            .map(|&i| {
                let (work, _) = slots[i].going().expect("going");
                request(work.env())
            })
            .collect();
        let (plugin, answers) = match invoke_service(gw, sandboxes, port, service, &reqs) {
            Ok(r) => r,
            Err(e) => {
                for &i in &list {
                    slots[i].fail(port, stage::SERVICE, &e);
                }
                continue;
            }
        };
        for (&i, answer) in list.iter().zip(answers) {
            match answer {
                Ok(answered) => slots[i].finish(|work, part| {
                    answered_into(gw, port, service, &plugin, work, answered, part)
                }),
                Err(f) => slots[i].fail(port, stage::SERVICE, &SandboxError::Plugin(f)),
            }
        }
    }
}

/// The service request for an envelope.
fn request(env: &Envelope) -> ServiceRequest {
    ServiceRequest {
        header: ServiceHeader {
            message_id: env.header.message_id.clone(),
            action: env.header.action.clone(),
            company: env.header.company.clone(),
            logon_as_user: env.header.logon_as_user.clone(),
            conversation_id: env.header.conversation_id.clone(),
            partition_key: env.header.partition_key.clone(),
        },
        body: env.body.clone(),
    }
}

/// Record what `service` answered for one message into `tx`: its responses
/// (or fault) and Send API documents, the message logged as processed and
/// taken off the queue. Returns whether it succeeded.
fn answered_into(
    gw: &Gateway,
    port: &PortConfig,
    service: &str,
    plugin: &Plugin,
    work: &Work<'_>,
    (result, sent): Answered,
    tx: &mut Transaction,
) -> bool {
    let (msg, env) = (&*work.msg, work.env());
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
    tx.log_processed(work.log_id.clone(), port.name.clone());
    tx.remove(msg.key);
    ok
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
