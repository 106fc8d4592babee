//! The `service-plugin` world: a document service (AIF's service
//! operation), chosen by the message's `Action`. Enabled by the `service`
//! feature.
//!
//! Implement [`Service`] and export it with one line:
//! `ferry_plugin_sdk::export_service!(MyService);`. The component then
//! exports `ferry:plugin/service@0.1.0` (function `invoke`) and may import
//! `ferry:plugin/host@0.1.0` and `ferry:plugin/send-api@0.1.0` (the latter
//! only if it calls [`send`]).
//!
//! ```ignore
//! use ferry_plugin_sdk::{Context, Request, Service, ServiceError};
//!
//! struct Echo;
//!
//! impl Service for Echo {
//!     fn invoke(_ctx: Context, req: Request) -> Result<Vec<String>, ServiceError> {
//!         match req.operation() {
//!             "echo" => Ok(vec![req.body]),
//!             op => Err(ServiceError::fault("UnknownAction", format!("no operation {op}"))),
//!         }
//!     }
//! }
//!
//! ferry_plugin_sdk::export_service!(Echo);
//! ```

use crate::{Context, PluginError};
use std::marker::PhantomData;

/// Raw wit-bindgen bindings of the world (used by [`export_service!`](crate::export_service)).
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "ferry:plugin/service-plugin@0.1.0",
        with: {
            "ferry:plugin/types@0.1.0": crate::bindings::ferry::plugin::types,
            "ferry:plugin/host@0.1.0": crate::bindings::ferry::plugin::host,
            "ferry:plugin/send-api@0.1.0": crate::bindings::ferry::plugin::send_api,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_service_world",
    });
}

/// An AIF fault (`code`, `reason`), sent back in place of a document.
pub use bindings::exports::ferry::plugin::service::Fault;
/// The request's envelope header, parsed by the host (`message_id`,
/// `action`, `company`, `logon_as_user`, `conversation_id`, `partition_key`).
pub use bindings::exports::ferry::plugin::service::Header;
/// One request: its `header` and its `body` (the XML inside
/// `Body/MessageParts`, verbatim).
pub use bindings::exports::ferry::plugin::service::Request;
/// Why a service did not answer with documents: `Fault(fault)` (answer with
/// an AIF fault; the request counts as processed) or `Plugin(error)` (the
/// message goes to Error).
pub use bindings::exports::ferry::plugin::service::ServiceError;

/// Queue `body` (the XML to place inside `Body/MessageParts`) for the
/// outbound port `port`, with the envelope's `Action` set to `action`: the
/// host's Send API. Documents are queued only when the service call that
/// emitted them succeeds. Fails with `rejected` when no such outbound port
/// is configured.
pub fn send(port: &str, action: &str, body: &str) -> Result<(), PluginError> {
    crate::host::send(port, action, body)
}

impl Request {
    /// The operation: the last segment of the `Action`
    /// (`.../SalesOrderService/create` → `create`).
    pub fn operation(&self) -> &str {
        operation_of(&self.header.action)
    }

    /// The service name: the segment of the `Action` before the operation
    /// (`.../SalesOrderService/create` → `SalesOrderService`), or `""`.
    pub fn service_name(&self) -> &str {
        let action = self.header.action.trim_end_matches('/');
        let rest = action.rsplit_once('/').map(|(a, _)| a).unwrap_or("");
        rest.rsplit('/').next().unwrap_or("")
    }
}

/// The last `/`-separated segment of an `Action`, ignoring a trailing `/`.
pub fn operation_of(action: &str) -> &str {
    let action = action.trim_end_matches('/');
    action.rsplit('/').next().unwrap_or(action)
}

impl Fault {
    /// A fault with a machine-readable `code` and a human-readable `reason`.
    pub fn new(code: impl Into<String>, reason: impl Into<String>) -> Self {
        Fault {
            code: code.into(),
            reason: reason.into(),
        }
    }
}

impl ServiceError {
    /// Answer with an AIF fault: `ServiceError::Fault`.
    pub fn fault(code: impl Into<String>, reason: impl Into<String>) -> Self {
        ServiceError::Fault(Fault::new(code, reason))
    }

    /// The request is bad: `ServiceError::Plugin(PluginError::Rejected)`.
    pub fn rejected(reason: impl Into<String>) -> Self {
        ServiceError::Plugin(PluginError::Rejected(reason.into()))
    }

    /// The service could not work: `ServiceError::Plugin(PluginError::Failed)`.
    pub fn failed(reason: impl Into<String>) -> Self {
        ServiceError::Plugin(PluginError::Failed(reason.into()))
    }
}

impl From<PluginError> for ServiceError {
    fn from(e: PluginError) -> Self {
        ServiceError::Plugin(e)
    }
}

impl From<crate::EnvelopeError> for ServiceError {
    /// A body that is not the XML expected is the request's fault: `rejected`.
    fn from(e: crate::EnvelopeError) -> Self {
        ServiceError::Plugin(e.into())
    }
}

/// A document service, dispatched by `Action`.
///
/// Called once per request, possibly on a fresh instance each time: keep no
/// state between calls.
pub trait Service {
    /// Handle one request. Each returned string is the XML of one response
    /// document's `Body/MessageParts`; the host wraps each in a response
    /// envelope (new `MessageId`, the request's `Action`, `RequestMessageId`
    /// = the request's `MessageId`). Return an empty list for no response.
    fn invoke(ctx: Context, req: Request) -> Result<Vec<String>, ServiceError>;
}

/// Bridges a [`Service`] to the generated export trait; used by
/// [`export_service!`](crate::export_service).
#[doc(hidden)]
pub struct ServiceExport<T: ?Sized>(PhantomData<T>);

impl<T: Service + ?Sized> bindings::exports::ferry::plugin::service::Guest for ServiceExport<T> {
    fn invoke(ctx: Context, req: Request) -> Result<Vec<String>, ServiceError> {
        T::invoke(ctx, req)
    }
}

/// Export a type implementing [`Service`] as this component's service:
/// `ferry_plugin_sdk::export_service!(MyService);` (once, at the crate's top
/// level).
#[macro_export]
macro_rules! export_service {
    ($service:ty) => {
        const _: () = {
            type __FerryServiceExport = $crate::service::ServiceExport<$service>;
            $crate::service::bindings::__export_service_world!(__FerryServiceExport with_types_in $crate::service::bindings);
        };
    };
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(action: &str) -> Request {
        Request {
            header: Header {
                message_id: "m1".into(),
                action: action.into(),
                company: None,
                logon_as_user: None,
                conversation_id: None,
                partition_key: None,
            },
            body: String::new(),
        }
    }

    #[test]
    fn operation_and_service_name() {
        let r =
            req("http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create");
        assert_eq!(r.operation(), "create");
        assert_eq!(r.service_name(), "SalesOrderService");
        assert_eq!(req("create").operation(), "create");
        assert_eq!(req("create").service_name(), "");
        assert_eq!(req("a/B/read/").operation(), "read");
    }

    #[test]
    fn send_is_recorded_natively() {
        crate::testing::reset();
        crate::testing::set_outbound_ports(&["out"]);
        send("out", "urn:a", "<X/>").unwrap();
        assert!(matches!(
            send("nope", "urn:a", "<X/>"),
            Err(PluginError::Rejected(_))
        ));
        assert_eq!(crate::testing::sent().len(), 1);
        crate::testing::reset();
    }

    #[test]
    fn errors_convert() {
        let e: ServiceError = PluginError::failed("x").into();
        assert_eq!(e, ServiceError::failed("x"));
        assert_eq!(
            ServiceError::fault("C", "r"),
            ServiceError::Fault(Fault {
                code: "C".into(),
                reason: "r".into()
            })
        );
    }
}
