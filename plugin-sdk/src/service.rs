//! The `service-plugin` world: a document service (AIF's service
//! operation), chosen by the message's `Action`. Enabled by the `service`
//! feature.
//!
//! Implement [`Service`] — `new` once per instance from the configuration,
//! `invoke` per request — and export it with one line:
//! `ferry_plugin_sdk::export_service!(MyService);`. The host calls the
//! service with batches of requests; the SDK calls `invoke` for each and
//! hands back one answer per request, with the documents [`send`] emitted
//! while it ran. The component exports `ferry:plugin/service@0.2.1` and
//! the world's `init`.
//!
//! ```ignore
//! use ferry_plugin_sdk::{Config, Context, PluginError, Request, Service, ServiceError};
//!
//! struct Echo;
//!
//! impl Service for Echo {
//!     fn new(_config: &Config) -> Result<Self, PluginError> {
//!         Ok(Echo)
//!     }
//!     fn invoke(&self, _ctx: &Context, req: &Request) -> Result<Vec<String>, ServiceError> {
//!         match req.operation() {
//!             "echo" => Ok(vec![req.body.clone()]),
//!             op => Err(ServiceError::fault("UnknownAction", format!("no operation {op}"))),
//!         }
//!     }
//! }
//!
//! ferry_plugin_sdk::export_service!(Echo);
//! ```

use crate::config::{Config, current};
use crate::{Context, PluginError};
use std::cell::RefCell;
use std::marker::PhantomData;

/// Raw wit-bindgen bindings of the world (used by [`export_service!`](crate::export_service)).
#[doc(hidden)]
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "ferry:plugin/service-plugin@0.2.1",
        with: {
            "ferry:plugin/types@0.2.1": crate::bindings::ferry::plugin::types,
            "ferry:plugin/host@0.2.1": crate::bindings::ferry::plugin::host,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_service_world",
    });
}

use bindings::exports::ferry::plugin::service as wit;

/// An AIF fault (`code`, `reason`), sent back in place of a document.
pub use wit::Fault;
/// The request's envelope header, parsed by the host (`message_id`,
/// `action`, `company`, `logon_as_user`, `conversation_id`, `partition_key`).
pub use wit::Header;
/// One request: its `header` and its `body` (the XML inside
/// `Body/MessageParts`, verbatim).
pub use wit::Request;
/// Why a service did not answer with documents: `Fault(fault)` (answer with
/// an AIF fault; the request counts as processed) or `Plugin(error)` (the
/// message goes to Error).
pub use wit::ServiceError;

thread_local! {
    /// What [`send`] emitted for the request being handled.
    static SENT: RefCell<Vec<wit::Outgoing>> = const { RefCell::new(Vec::new()) };
}

/// Queue `body` (the XML to place inside `Body/MessageParts`) for the
/// outbound port `port`, with the envelope's `Action` set to `action`: the
/// host's Send API. Documents are queued only when the request being
/// handled is answered without error. Fails with `rejected` when no such
/// outbound port is configured.
pub fn send(port: &str, action: &str, body: &str) -> Result<(), PluginError> {
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_send(port, action, body)?;
    #[cfg(target_arch = "wasm32")]
    if !current().outbound_ports.iter().any(|p| p == port) {
        return Err(PluginError::Rejected(format!(
            "no outbound port named {port:?} is configured (known: {})",
            current().outbound_ports.join(", ")
        )));
    }
    SENT.with_borrow_mut(|s| {
        s.push(wit::Outgoing {
            port: port.to_string(),
            action: action.to_string(),
            body: body.to_string(),
        })
    });
    Ok(())
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
/// The host makes one instance per port and worker, calls [`Service::new`]
/// once with the configuration, then [`Service::invoke`] for every request
/// of every batch until the instance is discarded. Keep in `self` what you
/// build from the configuration; keep nothing about one request for the
/// next.
pub trait Service: Sized + 'static {
    /// Build the service from its configuration.
    fn new(config: &Config) -> Result<Self, PluginError>;

    /// Handle one request. Each returned string is the XML of one response
    /// document's `Body/MessageParts`; the host wraps each in a response
    /// envelope (new `MessageId`, the request's `Action`, `RequestMessageId`
    /// = the request's `MessageId`). Return an empty list for no response.
    fn invoke(&self, ctx: &Context, req: &Request) -> Result<Vec<String>, ServiceError>;
}

/// Bridges a [`Service`] to the generated export traits; used by
/// [`export_service!`](crate::export_service).
#[doc(hidden)]
pub struct ServiceExport<T: ?Sized>(PhantomData<T>);

impl<T: Service> bindings::Guest for ServiceExport<T> {
    fn init(
        config: crate::bindings::ferry::plugin::types::Configuration,
    ) -> Result<(), PluginError> {
        crate::instance::init(config.into(), T::new)
    }
}

impl<T: Service> wit::Guest for ServiceExport<T> {
    fn invoke(ctx: Context, reqs: Vec<Request>) -> Vec<Result<wit::Answer, ServiceError>> {
        let service = match crate::instance::get(T::new) {
            Ok(s) => s,
            Err(e) => {
                return reqs
                    .iter()
                    .map(|_| Err(ServiceError::Plugin(e.clone())))
                    .collect();
            }
        };
        reqs.iter()
            .map(|req| {
                SENT.with_borrow_mut(Vec::clear);
                let responses = service.invoke(&ctx, req)?;
                Ok(wit::Answer {
                    responses,
                    send: SENT.with_borrow_mut(std::mem::take),
                })
            })
            .collect()
    }
}

/// Invoke service `T`, made from the current configuration (natively: the
/// one [`crate::testing::set_config`] set), with `req`; for unit tests.
pub fn run<T: Service>(ctx: &Context, req: &Request) -> Result<Vec<String>, ServiceError> {
    T::new(&current())?.invoke(ctx, req)
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
