//! {{name}}: a Ferry service (world `service-plugin`), chosen by a message's
//! `Action`: answers every request with its own body (an echo).

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "service-plugin" });
}

use bindings::exports::ferry::plugin::service::{Context, Guest, Request, ServiceError};
use bindings::ferry::plugin::host::log;
use bindings::ferry::plugin::types::Level;

struct Plugin;

impl Guest for Plugin {
    fn invoke(ctx: Context, req: Request) -> Result<Vec<String>, ServiceError> {
        // TODO: do the work. Each returned string is the body of one response
        // document; `Err(ServiceError::Fault(..))` answers with an AIF fault;
        // `bindings::ferry::plugin::send_api::send(port, action, body)`
        // emits a document to an outbound port.
        log(
            Level::Info,
            "{{name}} echoes a request",
            &[
                ("message_id".to_string(), req.header.message_id.clone()),
                ("action".to_string(), req.header.action.clone()),
                ("port".to_string(), ctx.port),
            ],
        );
        Ok(vec![req.body])
    }
}

bindings::export!(Plugin with_types_in bindings);
