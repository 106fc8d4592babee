//! Host-side bindings of the WIT package `ferry:plugin` (`wit/ferry.wit`),
//! generated once here for the three worlds. The `types` and `host`
//! interfaces are generated in [`rule`] and shared by the other worlds.

/// The `rule` world: transforms, pipeline components, value substitution.
pub mod rule {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "rule-plugin",
        // A plugin that logs past its quota is stopped from inside `log`.
        imports: { "ferry:plugin/host.log": trappable },
    });
}

/// The `adapter` world: receive and send sides of an adapter.
pub mod adapter {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "adapter",
        with: {
            "ferry:plugin/types": super::rule::ferry::plugin::types,
            "ferry:plugin/host": super::rule::ferry::plugin::host,
        },
    });
}

/// The `service` world: document services dispatched by `Action`.
pub mod service {
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "service-plugin",
        // A service that sends past its quota is stopped from inside `send`.
        imports: { "ferry:plugin/send-api.send": trappable },
        with: {
            "ferry:plugin/types": super::rule::ferry::plugin::types,
            "ferry:plugin/host": super::rule::ferry::plugin::host,
        },
    });
}

pub use rule::ferry::plugin::types::{
    Context, Direction, Document, Level, Message, PluginError, Stage,
};
