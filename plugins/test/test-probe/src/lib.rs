//! # test-probe — test fixture, not shipped
//!
//! A service (world `service-plugin`) for the host's ordering and
//! concurrency tests. It answers every request, whatever its `Action`, and
//! its behaviour is read from the request body (elements matched by local
//! name, anywhere in the body):
//!
//! | element | effect |
//! |---------|--------|
//! | `<DelayMs>N</DelayMs>` | sleeps N milliseconds (`std::thread::sleep`, i.e. WASI `monotonic-clock` + `poll`) before answering |
//! | `<Fail>rejected</Fail>` | returns `rejected("probe rejects message <MessageId>")` |
//! | `<Fail>failed</Fail>` | returns `failed("probe fails message <MessageId>")` |
//! | `<Fail>fault</Fail>` | returns the fault `ProbeFault` / `probe faults message <MessageId>` |
//! | `<SendTo>port</SendTo>` | sends the request body to outbound `port` through the Send API (with the request's `Action`) |
//! | `<File>x</File>`, `<Seq>n</Seq>` | only echoed and logged (tests put the source file name / a sequence number there) |
//!
//! It logs at info level, through the host, `probe invoked` when called and
//! `probe done` just before answering (also before returning an error),
//! each with the fields `event` (`invoke` / `done`), `message_id`,
//! `conversation_id` (empty if none), `port`, `file` and `seq` (empty if
//! absent). Comparing the two records of different messages shows whether
//! they overlapped and in which order they ran.
//!
//! The response is one document:
//!
//! ```xml
//! <ProbeResponse xmlns="urn:ferry:test-probe">
//!   <MessageId>…</MessageId><ConversationId>…</ConversationId><Port>…</Port>
//!   <File>…</File><Seq>…</Seq><Action>…</Action>
//!   <Body>the request body, escaped as text</Body>
//! </ProbeResponse>
//! ```
//!
//! (all on one line). Options: none.

use ferry_plugin_sdk::{
    Config, Context, PluginError, Request, Service, ServiceError, envelope, log, send,
};
use std::time::Duration;

/// Namespace of the probe's response document.
pub const PROBE_NS: &str = "urn:ferry:test-probe";

/// The probe service.
pub struct Probe;

ferry_plugin_sdk::export_service!(Probe);

/// The response document for `req` served on `port`.
pub fn response(port: &str, req: &Request, file: &str, seq: &str) -> String {
    let e = |s: &str| envelope::escape(s).into_owned();
    format!(
        "<ProbeResponse xmlns=\"{PROBE_NS}\"><MessageId>{}</MessageId><ConversationId>{}</ConversationId><Port>{}</Port><File>{}</File><Seq>{}</Seq><Action>{}</Action><Body>{}</Body></ProbeResponse>",
        e(&req.header.message_id),
        e(req.header.conversation_id.as_deref().unwrap_or("")),
        e(port),
        e(file),
        e(seq),
        e(&req.header.action),
        e(&req.body),
    )
}

impl Service for Probe {
    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(Probe)
    }

    fn invoke(&self, ctx: &Context, req: &Request) -> Result<Vec<String>, ServiceError> {
        let body = &req.body;
        let file = envelope::element_text(body, "File").unwrap_or_default();
        let seq = envelope::element_text(body, "Seq").unwrap_or_default();
        let id = req.header.message_id.clone();
        let conversation = req.header.conversation_id.clone().unwrap_or_default();
        let fields = |event: &'static str| {
            [
                ("event", event.to_string()),
                ("message_id", id.clone()),
                ("conversation_id", conversation.clone()),
                ("port", ctx.port.clone()),
                ("file", file.clone()),
                ("seq", seq.clone()),
            ]
        };
        let emit = |message: &str, event: &'static str| {
            let f = fields(event);
            let refs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
            log::info_with(message, &refs);
        };
        emit("probe invoked", "invoke");

        if let Some(ms) = envelope::element_text(body, "DelayMs") {
            let ms: u64 = ms.trim().parse().map_err(|_| {
                ServiceError::rejected(format!("probe: <DelayMs> {ms:?} is not a number"))
            })?;
            std::thread::sleep(Duration::from_millis(ms));
        }
        let result = match envelope::element_text(body, "Fail")
            .as_deref()
            .map(str::trim)
        {
            Some("rejected") => Err(ServiceError::rejected(format!(
                "probe rejects message {id}"
            ))),
            Some("failed") => Err(ServiceError::failed(format!("probe fails message {id}"))),
            Some("fault") => Err(ServiceError::fault(
                "ProbeFault",
                format!("probe faults message {id}"),
            )),
            Some(other) => Err(ServiceError::rejected(format!(
                "probe: unknown <Fail> {other:?} (rejected, failed or fault)"
            ))),
            None => Ok(()),
        };
        let result = result.and_then(|()| {
            if let Some(port) = envelope::element_text(body, "SendTo") {
                send(port.trim(), &req.header.action, body)?;
            }
            Ok(vec![response(&ctx.port, req, &file, &seq)])
        });
        emit("probe done", "done");
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_plugin_sdk::{Direction, Header, Stage, testing};

    fn call(body: &str) -> Result<Vec<String>, ServiceError> {
        let ctx = Context {
            port: "in".into(),
            direction: Direction::Inbound,
            stage: Stage::Pipeline,
        };
        let req = Request {
            header: Header {
                message_id: "M-7".into(),
                action: "urn:probe/run".into(),
                company: None,
                logon_as_user: None,
                conversation_id: Some("C-1".into()),
                partition_key: None,
            },
            body: body.into(),
        };
        ferry_plugin_sdk::service::run::<Probe>(&ctx, &req)
    }

    #[test]
    fn echoes_and_logs() {
        testing::reset();
        let out =
            call("<Probe><File>001.xml</File><Seq>1</Seq><DelayMs>5</DelayMs></Probe>").unwrap();
        assert_eq!(out.len(), 1);
        assert!(out[0].contains("<MessageId>M-7</MessageId><ConversationId>C-1</ConversationId><Port>in</Port><File>001.xml</File><Seq>1</Seq>"));
        assert!(out[0].contains("<Body>&lt;Probe&gt;&lt;File&gt;001.xml"));
        let logs = testing::logs();
        assert_eq!(logs.len(), 2);
        assert_eq!(logs[0].field("event"), Some("invoke"));
        assert_eq!(logs[1].field("event"), Some("done"));
        assert_eq!(logs[0].field("file"), Some("001.xml"));
        assert_eq!(logs[0].field("message_id"), Some("M-7"));
    }

    #[test]
    fn fails_on_demand() {
        testing::reset();
        assert_eq!(
            call("<Fail>rejected</Fail>").unwrap_err(),
            ServiceError::rejected("probe rejects message M-7")
        );
        assert_eq!(
            call("<Fail>failed</Fail>").unwrap_err(),
            ServiceError::failed("probe fails message M-7")
        );
        assert!(
            matches!(call("<Fail>fault</Fail>").unwrap_err(), ServiceError::Fault(f) if f.code == "ProbeFault")
        );
        assert!(call("<DelayMs>soon</DelayMs>").is_err());
        assert_eq!(
            testing::logs()
                .iter()
                .filter(|l| l.field("event") == Some("done"))
                .count(),
            3
        );
    }

    #[test]
    fn sends_on_demand() {
        testing::reset();
        call("<X><SendTo>out</SendTo></X>").unwrap();
        assert_eq!(testing::sent()[0].port, "out");
        assert_eq!(testing::sent()[0].action, "urn:probe/run");
    }
}
