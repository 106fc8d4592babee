//! # test-flood — test fixture, not shipped
//!
//! A service (world `service-plugin`) that tries to make the host hold more
//! than it should, when the request body asks it to; the host's quotas must
//! stop it. The first marker found in the body, in this order, decides:
//!
//! | marker in the body | behaviour |
//! |--------------------|-----------|
//! | `FLOOD:send-forever` | sends 4 KB documents to the outbound port `copies` through the Send API, for ever (they pile up in the guest with its answer: the memory cap stops it) |
//! | `FLOOD:send` | sends 5,000 documents of ~30 bytes to `copies`, then answers |
//! | `FLOOD:log` | logs 4 KB records at `error`, for ever |
//! | `FLOOD:responses` | returns 5,000 responses of ~100 bytes |
//! | `FLOOD:stderr` | writes 4 KB lines to stderr, for ever |
//! | none | answers with one `<Flood><MessageId>…</MessageId></Flood>` |
//!
//! "For ever" ends at the host's quota, or at the time limit if the host
//! has none. Errors of the host calls are ignored, so only the host can stop
//! the loop. Options: none.

use std::io::Write as _;

use ferry_plugin_sdk::{
    Config, Context, PluginError, Request, Service, ServiceError, envelope, log, send,
};

/// The flooding service.
pub struct Flood;

ferry_plugin_sdk::export_service!(Flood);

/// 4 KB of text.
fn chunk() -> String {
    "flood ".repeat(683)
}

/// The normal answer to `req`.
pub fn answer(req: &Request) -> String {
    format!(
        "<Flood xmlns=\"urn:ferry:test-flood\"><MessageId>{}</MessageId></Flood>",
        envelope::escape(&req.header.message_id)
    )
}

impl Service for Flood {
    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(Flood)
    }

    fn invoke(&self, _ctx: &Context, req: &Request) -> Result<Vec<String>, ServiceError> {
        let body = &req.body;
        if body.contains("FLOOD:send-forever") {
            let doc = format!("<Copy>{}</Copy>", chunk());
            loop {
                let _ = send("copies", &req.header.action, &doc);
            }
        }
        if body.contains("FLOOD:send") {
            for i in 0..5_000 {
                let _ = send(
                    "copies",
                    &req.header.action,
                    &format!("<Copy><N>{i}</N></Copy>"),
                );
            }
        }
        if body.contains("FLOOD:log") {
            let text = chunk();
            loop {
                log::error(&text);
            }
        }
        if body.contains("FLOOD:responses") {
            return Ok((0..5_000)
                .map(|i| format!("<Flood xmlns=\"urn:ferry:test-flood\"><N>{i}</N></Flood>"))
                .collect());
        }
        if body.contains("FLOOD:stderr") {
            let line = chunk();
            let mut err = std::io::stderr();
            loop {
                let _ = writeln!(err, "{line}");
            }
        }
        Ok(vec![answer(req)])
    }
}
