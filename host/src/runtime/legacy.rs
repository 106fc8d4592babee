//! The adapter layer for plugins built against `ferry:plugin@0.1`: the
//! conversions between the types of the contract this host implements and
//! those of 0.1. The 0.1 calls themselves (one document per call, the
//! configuration answered by `host.config`, sends through `send-api`) are
//! made by [`super::Sandbox`], which serves both contracts through one API.

use super::bindings::v01;
use super::{Context, Direction, Message, PluginError, Received, Refusal, ServiceRequest, Stage};

use v01::rule::ferry::plugin::types as t01;

/// The 0.1 context of a call. 0.1 had no `service` stage: services were
/// called with `pipeline`, as they are here.
pub fn context(ctx: &Context) -> t01::Context {
    t01::Context {
        port: ctx.port.clone(),
        direction: match ctx.direction {
            Direction::Inbound => t01::Direction::Inbound,
            Direction::Outbound => t01::Direction::Outbound,
        },
        stage: match ctx.stage {
            Stage::Transform => t01::Stage::Transform,
            Stage::Pipeline | Stage::Service => t01::Stage::Pipeline,
        },
    }
}

/// A 0.1 plugin error as the current one.
pub fn error(e: t01::PluginError) -> PluginError {
    match e {
        t01::PluginError::Rejected(m) => PluginError::Rejected(m),
        t01::PluginError::Failed(m) => PluginError::Failed(m),
    }
}

/// A message for a 0.1 adapter.
pub fn message(m: &Message) -> t01::Message {
    t01::Message {
        name: m.name.clone(),
        content: m.content.clone(),
    }
}

/// A 0.1 receive entry as the current one.
pub fn received(r: v01::adapter::exports::ferry::plugin::receive::Received) -> Received {
    use v01::adapter::exports::ferry::plugin::receive::Received as R01;
    match r {
        R01::Accepted(m) => Received::Accepted(Message {
            name: m.name,
            content: m.content,
        }),
        R01::Refused(r) => Received::Refused(Refusal {
            name: r.name,
            reason: r.reason,
        }),
    }
}

/// A request for a 0.1 service.
pub fn request(r: &ServiceRequest) -> v01::service::exports::ferry::plugin::service::Request {
    use v01::service::exports::ferry::plugin::service as s01;
    let h = &r.header;
    s01::Request {
        header: s01::Header {
            message_id: h.message_id.clone(),
            action: h.action.clone(),
            company: h.company.clone(),
            logon_as_user: h.logon_as_user.clone(),
            conversation_id: h.conversation_id.clone(),
            partition_key: h.partition_key.clone(),
        },
        body: r.body.clone(),
    }
}
