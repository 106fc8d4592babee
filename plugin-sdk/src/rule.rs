//! The `rule-plugin` world: a document rule for a port's `transforms` or
//! `pipeline` stage (transforms, pipeline components, value substitution,
//! data policies). Enabled by the `rule` feature.
//!
//! Implement [`Rule`] — `new` once per instance from the configuration,
//! `apply` per document — and export it with one line. The host calls the
//! rule with batches of documents; the SDK calls `apply` for each and hands
//! back one result per document.
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
//!         doc.set_header("Company", &self.company);
//!         Ok(())
//!     }
//! }
//!
//! ferry_plugin_sdk::export_rule!(StampCompany);
//! ```
//!
//! The component then exports `ferry:plugin/rule@0.2.1` and
//! the world's `init`, and imports `ferry:plugin/documents@0.2.1`
//! (and `ferry:plugin/host@0.2.1` if it logs).

use crate::config::{Config, current};
use crate::{Context, Document, PluginError};
use std::marker::PhantomData;

/// Raw wit-bindgen bindings of the world (used by [`export_rule!`](crate::export_rule)).
#[doc(hidden)]
#[allow(missing_docs, clippy::too_many_arguments)]
pub mod bindings {
    wit_bindgen::generate!({
        path: "../wit",
        world: "ferry:plugin/rule-plugin@0.2.1",
        with: {
            "ferry:plugin/types@0.2.1": crate::bindings::ferry::plugin::types,
            "ferry:plugin/host@0.2.1": crate::bindings::ferry::plugin::host,
            "ferry:plugin/documents@0.2.1": crate::bindings::ferry::plugin::documents,
        },
        pub_export_macro: true,
        export_macro_name: "__export_rule_world",
    });
}

/// A document rule.
///
/// The host makes one instance per port and worker, calls [`Rule::new`] once
/// with the configuration, then [`Rule::apply`] for every document of every
/// batch until the instance is discarded (after a trap, a new version of the
/// plugin, or a configuration reload). Keep in `self` what you build from
/// the configuration; keep nothing about one document for the next.
pub trait Rule: Sized + 'static {
    /// Build the rule from its configuration; an error (say, a missing
    /// option: [`PluginError::failed`]) fails the messages of the call that
    /// started the instance.
    fn new(config: &Config) -> Result<Self, PluginError>;

    /// Apply the rule to `doc`: `Ok(())` passes it on, with the edits made
    /// to it (or the text it was replaced with, or unchanged), or an error:
    /// [`PluginError::Rejected`] when the document is unacceptable
    /// (resubmitting it unchanged will fail again), [`PluginError::Failed`]
    /// when the rule itself could not work.
    fn apply(&self, ctx: &Context, doc: &Document) -> Result<(), PluginError>;

    /// Apply the rule to a whole batch: one result per document, in order.
    /// The default calls [`Rule::apply`] on each.
    fn apply_batch(&self, ctx: &Context, docs: &[Document]) -> Vec<Result<(), PluginError>> {
        docs.iter().map(|d| self.apply(ctx, d)).collect()
    }
}

/// Bridges a [`Rule`] to the generated export traits; used by
/// [`export_rule!`](crate::export_rule).
#[doc(hidden)]
pub struct RuleExport<T: ?Sized>(PhantomData<T>);

impl<T: Rule> bindings::Guest for RuleExport<T> {
    fn init(
        config: crate::bindings::ferry::plugin::types::Configuration,
    ) -> Result<(), PluginError> {
        crate::instance::init(config.into(), T::new)
    }
}

impl<T: Rule> bindings::exports::ferry::plugin::rule::Guest for RuleExport<T> {
    fn apply(
        ctx: Context,
        docs: Vec<crate::bindings::ferry::plugin::documents::Document>,
    ) -> Vec<Result<(), PluginError>> {
        let docs: Vec<Document> = docs.into_iter().map(Document::from_host).collect();
        match crate::instance::get(T::new) {
            Ok(rule) => rule.apply_batch(&ctx, &docs),
            Err(e) => docs.iter().map(|_| Err(e.clone())).collect(),
        }
    }
}

/// Apply rule `T`, made from the current configuration (natively: the one
/// [`crate::testing::set_config`] set), to `doc`; for unit tests.
pub fn run<T: Rule>(ctx: &Context, doc: &Document) -> Result<(), PluginError> {
    T::new(&current())?.apply(ctx, doc)
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
