//! # test-pass — test fixture, not shipped
//!
//! A rule (world `rule-plugin`) that passes every document on untouched and
//! asks the host nothing: what remains of a call is the runtime's own cost
//! per document (the benchmarks' pass-through rule). Options: none.

use ferry_plugin_sdk::{Config, Context, Document, PluginError, Rule};

/// The pass-through rule.
pub struct Pass;

ferry_plugin_sdk::export_rule!(Pass);

impl Rule for Pass {
    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(Pass)
    }

    fn apply(&self, _ctx: &Context, _doc: &Document) -> Result<(), PluginError> {
        Ok(())
    }
}
