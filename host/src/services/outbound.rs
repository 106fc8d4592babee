//! Outbound processing (AIFOutboundProcessingService): take the outbound
//! requests of a port (responses and faults of an inbound port, Send API
//! documents of an outbound port), run the outbound port's pipeline and
//! transforms on the envelope, and queue the result Ready to send.

use crate::config::{PortConfig, PortDirection};
use crate::envelope::{self, Parsed};
use crate::queue::{Direction, NewMessage, QueueError, QueuedMessage, Status, Transaction};
use crate::runtime::{Document, Stage};

use super::sandboxes::{SandboxError, run_rules};
use super::{Gateway, Sandboxes, TaskCounts, stage};

/// Process the outbound requests of `port`.
pub fn run(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    stop: &dyn Fn() -> bool,
) -> Result<TaskCounts, QueueError> {
    super::in_groups(
        gw,
        Direction::OutboundRequest,
        port,
        sandboxes,
        stop,
        |sandboxes, msg, tx| Ok(process(gw, port, sandboxes, msg, tx)),
    )
}

/// Run one outbound request through the port's rules into `tx`. Returns
/// whether it succeeded.
fn process(
    gw: &Gateway,
    port: &PortConfig,
    sandboxes: &mut Sandboxes,
    msg: &QueuedMessage,
    tx: &mut Transaction,
) -> bool {
    let mut provenance = Vec::new();
    let mut content = msg.content.clone();
    // Inbound ports' responses pass no rules: their transforms and
    // pipeline are for the inbound direction.
    let stages: [(&[String], Stage, &str); 2] = match port.direction {
        PortDirection::Outbound => [
            (&port.pipeline, Stage::Pipeline, stage::PIPELINE),
            (
                &port.transforms,
                Stage::Transform,
                stage::OUTBOUND_TRANSFORM,
            ),
        ],
        PortDirection::Inbound => [
            (&[], Stage::Pipeline, stage::PIPELINE),
            (&[], Stage::Transform, stage::OUTBOUND_TRANSFORM),
        ],
    };
    let mut failure = None;
    for (rules, st, name) in stages {
        if rules.is_empty() {
            continue;
        }
        let doc = Document {
            name: msg.name.clone(),
            content: content.clone(),
        };
        match run_rules(gw, sandboxes, port, rules, st, doc, &mut provenance) {
            Ok(d) => content = d.content,
            Err(e) => {
                failure = Some((name, e));
                break;
            }
        }
    }
    if failure.is_none() {
        match envelope::parse(&content) {
            Ok(Parsed::Single(_)) => {}
            Ok(Parsed::Batch(_)) => {
                failure = Some((
                    stage::OUTBOUND_TRANSFORM,
                    SandboxError::Unavailable("the outbound rules returned a batch".into()),
                ))
            }
            Err(e) => {
                failure = Some((
                    stage::OUTBOUND_TRANSFORM,
                    SandboxError::Unavailable(format!(
                        "the outbound rules returned an invalid envelope: {e}"
                    )),
                ))
            }
        }
    }
    if let Some((st, e)) = failure {
        Gateway::fail_message(tx, &port.name, st, msg, &e);
        return false;
    }
    if let Some(h) = Gateway::history(
        port,
        stage::OUTBOUND_TRANSFORM,
        &msg.message_id,
        Some(msg.key),
        &provenance,
        &content,
    ) {
        tx.history(h);
    }
    tx.insert(NewMessage {
        direction: Direction::Outbound,
        port: msg.port.clone(),
        status: Status::Ready,
        name: msg.name.clone(),
        position: msg.position,
        message_id: msg.message_id.clone(),
        action: msg.action.clone(),
        conversation_id: msg.conversation_id.clone(),
        batch_id: msg.batch_id.clone(),
        request_message_id: msg.request_message_id.clone(),
        content,
        error: None,
    });
    tx.remove(msg.key);
    true
}
