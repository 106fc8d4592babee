//! # ferry-plugin-sdk
//!
//! The crate for writing Ferry plugins in
//! Rust: adapters, document rules and document services, each a sandboxed
//! WebAssembly component built with plain
//! `cargo build --release --target wasm32-wasip2`.
//!
//! The SDK carries Ferry's WIT contract (`ferry:plugin@0.2.1`), so plugin
//! authors never copy WIT files. A component must export exactly one world,
//! so each world sits behind a cargo feature:
//!
//! | feature   | trait       | export macro                      | exports (as the host sees them) |
//! |-----------|-------------|-----------------------------------|---------------------------------|
//! | `rule`    | `Rule`      | `export_rule!(MyRule);`           | `ferry:plugin/rule@0.2.1`, `init` |
//! | `adapter` | `Adapter`   | `export_adapter!(MyAdapter);`     | `ferry:plugin/receive@0.2.1`, `send`, `init` |
//! | `service` | `Service`   | `export_service!(MyService);`     | `ferry:plugin/service@0.2.1`, `init` |
//!
//! The host calls rules and services with batches; the SDK calls your
//! per-document (per-request) function for each item and hands back one
//! result per item. Your plugin's `new` runs once per instance, with the
//! configuration.
//!
//! Enable exactly one of them in a plugin crate (the types and helpers of
//! the other worlds compile with several features on, but a component built
//! with two export macros is refused by the host).
//!
//! ```ignore
//! use ferry_plugin_sdk::{Config, Context, Document, PluginError, Rule};
//!
//! struct StampCompany { company: String }
//!
//! impl Rule for StampCompany {
//!     fn new(config: &Config) -> Result<Self, PluginError> {
//!         Ok(StampCompany { company: config.get_or("company", "DAT").to_string() })
//!     }
//!     fn apply(&self, _ctx: &Context, doc: &Document) -> Result<(), PluginError> {
//!         doc.set_header("Company", &self.company); // the host applies the edit
//!         Ok(())
//!     }
//! }
//!
//! ferry_plugin_sdk::export_rule!(StampCompany);
//! ```
//!
//! Besides the traits and macros the SDK offers the [`Document`] a rule
//! reads and edits through the host, the host functions ([`log()`], the
//! [`mod@log`] shortcuts, [`log_enabled`], the configuration: [`Config`],
//! [`config()`], [`config_get`] and the helpers in [`mod@config`]; `send`
//! for services; [`files`] for adapters) and the [`envelope`] module: small
//! helpers to read and change AIF message envelopes in the guest.
//!
//! Off WebAssembly (in `cargo test` on the build machine) the host functions
//! are served by the [`testing`] module's stand-ins, so plugin logic can be
//! unit-tested natively.

#![warn(missing_docs)]

#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings;

pub mod config;
pub mod document;
pub mod envelope;
#[cfg(feature = "adapter")]
pub mod files;
mod host;
mod instance;
pub mod log;
mod types;

#[cfg(not(target_arch = "wasm32"))]
pub mod testing;

#[cfg(feature = "adapter")]
pub mod adapter;
#[cfg(feature = "rule")]
pub mod rule;
#[cfg(feature = "service")]
pub mod service;

pub use bindings::ferry::plugin::types::{Context, Direction, Level, Message, PluginError, Stage};
pub use config::{Config, config, config_get};
pub use document::{Document, Element};
pub use envelope::EnvelopeError;
pub use host::{log, log_enabled};

#[cfg(feature = "adapter")]
pub use adapter::{Adapter, Received, Refusal};
#[cfg(feature = "rule")]
pub use rule::Rule;
#[cfg(feature = "service")]
pub use service::{Fault, Header, Request, Service, ServiceError, send};

/// Fallback of [`export_rule!`] when the `rule` feature is off: a clear
/// compile error instead of an unknown macro.
#[cfg(not(feature = "rule"))]
#[macro_export]
macro_rules! export_rule {
    ($($t:tt)*) => {
        compile_error!(
            "export_rule! needs the `rule` feature: ferry-plugin-sdk = { path = \"...\", features = [\"rule\"] }"
        );
    };
}

/// Fallback of [`export_adapter!`] when the `adapter` feature is off: a
/// clear compile error instead of an unknown macro.
#[cfg(not(feature = "adapter"))]
#[macro_export]
macro_rules! export_adapter {
    ($($t:tt)*) => {
        compile_error!(
            "export_adapter! needs the `adapter` feature: ferry-plugin-sdk = { path = \"...\", features = [\"adapter\"] }"
        );
    };
}

/// Fallback of [`export_service!`] when the `service` feature is off: a
/// clear compile error instead of an unknown macro.
#[cfg(not(feature = "service"))]
#[macro_export]
macro_rules! export_service {
    ($($t:tt)*) => {
        compile_error!(
            "export_service! needs the `service` feature: ferry-plugin-sdk = { path = \"...\", features = [\"service\"] }"
        );
    };
}
