//! The `adapter` world: an adapter's receive side (outside → host) and send
//! side (host → outside), each in transactions. Enabled by the `adapter`
//! feature.
//!
//! Implement [`Adapter`] and export it with one line:
//! `ferry_plugin_sdk::export_adapter!(MyAdapter);`. The component then
//! exports `ferry:plugin/receive@0.2.1` (`begin`, `receive`, `commit`,
//! `rollback`), `ferry:plugin/send@0.2.1` (`begin`, `send` of a batch,
//! `commit`, `rollback`) and the world's `init`, and reaches its
//! port's folders through [`crate::files`] (many paths per host call).
//!
//! The host calls one instance for a whole session (`begin` … `commit` or
//! `rollback`), so an adapter keeps its session state in statics (for
//! example a `thread_local!` `RefCell`); a new `begin` starts over. Its
//! options are read once: [`crate::config`]'s functions serve them from
//! what `init` gave.

use crate::{Message, PluginError};
use std::marker::PhantomData;

/// Raw wit-bindgen bindings of the world (used by [`export_adapter!`](crate::export_adapter)).
#[doc(hidden)]
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "ferry:plugin/adapter@0.2.1",
        with: {
            "ferry:plugin/types@0.2.1": crate::bindings::ferry::plugin::types,
            "ferry:plugin/host@0.2.1": crate::bindings::ferry::plugin::host,
            "ferry:plugin/files@0.2.1": crate::bindings::ferry::plugin::files,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_adapter_world",
    });
}

/// One entry of a receive batch: `Accepted(message)` to queue, or
/// `Refused(refusal)` for a source the adapter will not load.
pub use bindings::exports::ferry::plugin::receive::Received;
/// A source the adapter refused to load: its name and why.
pub use bindings::exports::ferry::plugin::receive::Refusal;

impl Refusal {
    /// A refusal of source `name` because of `reason`.
    pub fn new(name: impl Into<String>, reason: impl Into<String>) -> Self {
        Refusal {
            name: name.into(),
            reason: reason.into(),
        }
    }
}

impl Received {
    /// The name of the source, accepted or refused.
    pub fn name(&self) -> &str {
        match self {
            Received::Accepted(m) => &m.name,
            Received::Refused(r) => &r.name,
        }
    }
}

/// An adapter: both sides, receive and send (AIF's receive and send
/// adapters). Every method has a default that fails with "not supported",
/// so a one-sided adapter implements only its side.
///
/// Receive session: [`receive_begin`](Adapter::receive_begin), then
/// [`receive`](Adapter::receive) until it returns an empty list (or the host
/// has enough), then [`receive_commit`](Adapter::receive_commit) (the host has
/// queued these names durably: remove the sources) or
/// [`receive_rollback`](Adapter::receive_rollback) (leave them).
///
/// Send session: [`send_begin`](Adapter::send_begin), [`send`](Adapter::send)
/// of one or more batches, then [`send_commit`](Adapter::send_commit) (make
/// them visible, atomically per message) or
/// [`send_rollback`](Adapter::send_rollback) (withdraw them).
pub trait Adapter {
    /// Take the configuration, once per instance, before any session (the
    /// options are also served by [`crate::config`] from then on). The
    /// default accepts any.
    fn init(config: &crate::Config) -> Result<(), PluginError> {
        let _ = config;
        Ok(())
    }

    /// Start a receive session; `address` is the port's address as the
    /// adapter sees it (the file adapter: a folder path in the sandbox).
    fn receive_begin(address: String) -> Result<(), PluginError> {
        let _ = address;
        Err(PluginError::Failed("this adapter cannot receive".into()))
    }

    /// Return up to `max` further entries, in the order the adapter
    /// guarantees; an empty list means nothing more is waiting.
    fn receive(max: u32) -> Result<Vec<Received>, PluginError> {
        let _ = max;
        Err(PluginError::Failed("this adapter cannot receive".into()))
    }

    /// The host has durably queued the messages with these names: remove
    /// them from the source.
    fn receive_commit(names: Vec<String>) -> Result<(), PluginError> {
        let _ = names;
        Err(PluginError::Failed("this adapter cannot receive".into()))
    }

    /// The host did not queue the messages with these names: leave them in
    /// place to be received again.
    fn receive_rollback(names: Vec<String>) -> Result<(), PluginError> {
        let _ = names;
        Err(PluginError::Failed("this adapter cannot receive".into()))
    }

    /// Start a send session; `address` as for [`receive_begin`](Adapter::receive_begin).
    fn send_begin(address: String) -> Result<(), PluginError> {
        let _ = address;
        Err(PluginError::Failed("this adapter cannot send".into()))
    }

    /// Stage a batch of messages, one result per message, in order; nothing
    /// need be visible outside before [`send_commit`](Adapter::send_commit),
    /// and a message that failed is not part of the session. The default
    /// calls [`send_one`](Adapter::send_one) for each.
    fn send(msgs: Vec<Message>) -> Vec<Result<(), PluginError>> {
        msgs.into_iter().map(Self::send_one).collect()
    }

    /// Stage one message (what the default [`send`](Adapter::send) calls).
    fn send_one(msg: Message) -> Result<(), PluginError> {
        let _ = msg;
        Err(PluginError::Failed("this adapter cannot send".into()))
    }

    /// Make every message staged since `send_begin` visible outside.
    fn send_commit() -> Result<(), PluginError> {
        Err(PluginError::Failed("this adapter cannot send".into()))
    }

    /// Withdraw every message staged since `send_begin`.
    fn send_rollback() -> Result<(), PluginError> {
        Err(PluginError::Failed("this adapter cannot send".into()))
    }
}

/// Bridges an [`Adapter`] to the generated export traits; used by
/// [`export_adapter!`](crate::export_adapter).
#[doc(hidden)]
pub struct AdapterExport<T: ?Sized>(PhantomData<T>);

impl<T: Adapter + ?Sized> bindings::Guest for AdapterExport<T> {
    fn init(
        config: crate::bindings::ferry::plugin::types::Configuration,
    ) -> Result<(), PluginError> {
        let config = crate::Config::from(config);
        crate::instance::init(config, |c| T::init(c))
    }
}

impl<T: Adapter + ?Sized> bindings::exports::ferry::plugin::receive::Guest for AdapterExport<T> {
    fn begin(address: String) -> Result<(), PluginError> {
        T::receive_begin(address)
    }
    fn receive(max: u32) -> Result<Vec<Received>, PluginError> {
        T::receive(max)
    }
    fn commit(names: Vec<String>) -> Result<(), PluginError> {
        T::receive_commit(names)
    }
    fn rollback(names: Vec<String>) -> Result<(), PluginError> {
        T::receive_rollback(names)
    }
}

impl<T: Adapter + ?Sized> bindings::exports::ferry::plugin::send::Guest for AdapterExport<T> {
    fn begin(address: String) -> Result<(), PluginError> {
        T::send_begin(address)
    }
    fn send(msgs: Vec<Message>) -> Vec<Result<(), PluginError>> {
        T::send(msgs)
    }
    fn commit() -> Result<(), PluginError> {
        T::send_commit()
    }
    fn rollback() -> Result<(), PluginError> {
        T::send_rollback()
    }
}

/// Export a type implementing [`Adapter`] as this component's adapter:
/// `ferry_plugin_sdk::export_adapter!(MyAdapter);` (once, at the crate's top
/// level).
#[macro_export]
macro_rules! export_adapter {
    ($adapter:ty) => {
        const _: () = {
            type __FerryAdapterExport = $crate::adapter::AdapterExport<$adapter>;
            $crate::adapter::bindings::__export_adapter_world!(__FerryAdapterExport with_types_in $crate::adapter::bindings);
        };
    };
}
