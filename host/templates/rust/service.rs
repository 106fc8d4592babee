//! {{name}}: a Ferry service (world `service-plugin`), chosen by a message's
//! `Action`: answers every request with its own body (an echo). The host
//! calls it with batches of requests; `invoke_one` handles one.

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "service-plugin" });
}

use bindings::exports::ferry::plugin::service::{
    Answer, Context, Guest as Service, Request, ServiceError,
};
use bindings::ferry::plugin::host::log;
use bindings::ferry::plugin::types::{Configuration, Level, PluginError};

/// One request. `responses` are the bodies of the response documents;
/// `send` the documents for outbound ports (`Outgoing { port, action,
/// body }`, ports from `Configuration.outbound_ports`);
/// `Err(ServiceError::Fault(..))` answers with an AIF fault.
fn invoke_one(ctx: &Context, req: &Request) -> Result<Answer, ServiceError> {
    // TODO: do the work.
    log(
        Level::Info,
        "{{name}} echoes a request",
        &[
            ("message_id".to_string(), req.header.message_id.clone()),
            ("action".to_string(), req.header.action.clone()),
            ("port".to_string(), ctx.port.clone()),
        ],
    );
    Ok(Answer {
        responses: vec![req.body.clone()],
        send: Vec::new(),
    })
}

struct Plugin;

impl bindings::Guest for Plugin {
    fn init(_config: Configuration) -> Result<(), PluginError> {
        // The configuration, once per instance: keep what you need.
        Ok(())
    }
}

impl Service for Plugin {
    fn invoke(ctx: Context, reqs: Vec<Request>) -> Vec<Result<Answer, ServiceError>> {
        // One result per request, in order.
        reqs.iter().map(|r| invoke_one(&ctx, r)).collect()
    }
}

bindings::export!(Plugin with_types_in bindings);
