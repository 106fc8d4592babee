//! Host-side bindings of the WIT package `ferry:plugin`, generated once here:
//! the contract this host implements (`wit/ferry.wit`: [`rule`], [`adapter`],
//! [`service`]; the `types` and `host` interfaces are generated in [`rule`]
//! and shared by the other worlds) and the older contract its adapter layer
//! serves (`wit/legacy/0.1.0/ferry.wit`: [`v01`]).

/// The `rule-plugin` world: transforms, pipeline components, value
/// substitution, data policies.
pub mod rule {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "rule-plugin",
        // A plugin that logs or edits past its quota is stopped from inside
        // the host function.
        imports: {
            "ferry:plugin/host.log": trappable,
            "ferry:plugin/documents": trappable,
        },
        with: {
            "ferry:plugin/documents.document": crate::runtime::document::DocRef,
        },
    });
}

/// The `adapter` world: receive and send sides of an adapter.
pub mod adapter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "adapter",
        // A read past the receive quota is stopped from inside `read`.
        imports: { "ferry:plugin/files.read": trappable },
        with: {
            "ferry:plugin/types": super::rule::ferry::plugin::types,
            "ferry:plugin/host": super::rule::ferry::plugin::host,
        },
    });
}

/// The `service-plugin` world: document services dispatched by `Action`.
pub mod service {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "service-plugin",
        with: {
            "ferry:plugin/types": super::rule::ferry::plugin::types,
            "ferry:plugin/host": super::rule::ferry::plugin::host,
        },
    });
}

/// The 0.1 contract, for the adapter layer that runs plugins built against
/// it (`runtime/legacy.rs`).
pub mod v01 {
    /// The 0.1 `rule-plugin` world.
    pub mod rule {
        wasmtime::component::bindgen!({
            path: "../wit/legacy/0.1.0",
            world: "rule-plugin",
            imports: { "ferry:plugin/host.log": trappable },
        });
    }

    /// The 0.1 `adapter` world.
    pub mod adapter {
        wasmtime::component::bindgen!({
            path: "../wit/legacy/0.1.0",
            world: "adapter",
            with: {
                "ferry:plugin/types": super::rule::ferry::plugin::types,
                "ferry:plugin/host": super::rule::ferry::plugin::host,
            },
        });
    }

    /// The 0.1 `service-plugin` world.
    pub mod service {
        wasmtime::component::bindgen!({
            path: "../wit/legacy/0.1.0",
            world: "service-plugin",
            imports: { "ferry:plugin/send-api.send": trappable },
            with: {
                "ferry:plugin/types": super::rule::ferry::plugin::types,
                "ferry:plugin/host": super::rule::ferry::plugin::host,
            },
        });
    }
}

pub use rule::ferry::plugin::types::{
    Configuration, Context, Direction, Level, Message, PluginError, Stage,
};
