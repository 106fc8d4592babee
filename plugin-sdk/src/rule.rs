//! The `rule-plugin` world: a document rule for a port's `transforms` or
//! `pipeline` stage (transforms, pipeline components, value substitution,
//! data policies). Enabled by the `rule` feature.
//!
//! Implement [`Rule`] and export it with one line:
//!
//! ```ignore
//! use ferry_plugin_sdk::{Context, Document, PluginError, Rule};
//!
//! struct Upper;
//!
//! impl Rule for Upper {
//!     fn apply(_ctx: Context, doc: Document) -> Result<Document, PluginError> {
//!         let content = doc.content.to_uppercase();
//!         Ok(doc.with_content(content))
//!     }
//! }
//!
//! ferry_plugin_sdk::export_rule!(Upper);
//! ```
//!
//! The component then exports `ferry:plugin/rule@0.1.0` (function `apply`)
//! and imports `ferry:plugin/host@0.1.0` if it calls a host function.

use crate::{Context, Document, PluginError};
use std::marker::PhantomData;

/// Raw wit-bindgen bindings of the world (used by [`export_rule!`](crate::export_rule)).
#[doc(hidden)]
#[allow(missing_docs)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "ferry:plugin/rule-plugin@0.1.0",
        with: {
            "ferry:plugin/types@0.1.0": crate::bindings::ferry::plugin::types,
            "ferry:plugin/host@0.1.0": crate::bindings::ferry::plugin::host,
        },
        additional_derives: [PartialEq, Eq],
        pub_export_macro: true,
        export_macro_name: "__export_rule_world",
    });
}

/// A document rule: one document in, one document out.
///
/// Called once per message, possibly on a fresh instance each time: keep no
/// state between calls.
pub trait Rule {
    /// Apply the rule to `doc`. Return the document to pass on (changed or
    /// not), or an error: [`PluginError::Rejected`] when the document is
    /// unacceptable (resubmitting it unchanged will fail again),
    /// [`PluginError::Failed`] when the rule itself could not work.
    fn apply(ctx: Context, doc: Document) -> Result<Document, PluginError>;
}

/// Bridges a [`Rule`] to the generated export trait; used by
/// [`export_rule!`](crate::export_rule).
#[doc(hidden)]
pub struct RuleExport<T: ?Sized>(PhantomData<T>);

impl<T: Rule + ?Sized> bindings::exports::ferry::plugin::rule::Guest for RuleExport<T> {
    fn apply(ctx: Context, doc: Document) -> Result<Document, PluginError> {
        T::apply(ctx, doc)
    }
}

/// Export a type implementing [`Rule`] as this component's rule:
/// `ferry_plugin_sdk::export_rule!(MyRule);` (once, at the crate's top level).
#[macro_export]
macro_rules! export_rule {
    ($rule:ty) => {
        const _: () = {
            type __FerryRuleExport = $crate::rule::RuleExport<$rule>;
            $crate::rule::bindings::__export_rule_world!(__FerryRuleExport with_types_in $crate::rule::bindings);
        };
    };
}
