//! TEST FIXTURE: a rule that cannot start under a 64 MiB memory cap: its
//! static table makes the component's initial linear memory 128 MiB, so
//! instantiation fails before any call. The hot-load tests install it as a
//! "new version" that compiles and targets the right world but cannot load.

use ferry_plugin_sdk::{Config, Context, Document, PluginError, Rule};
use std::hint::black_box;

static TABLE: [u8; 128 << 20] = [0; 128 << 20];

/// The heavy rule.
pub struct Heavy;

ferry_plugin_sdk::export_rule!(Heavy);

impl Rule for Heavy {
    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(Heavy)
    }

    fn apply(&self, _ctx: &Context, doc: &Document) -> Result<(), PluginError> {
        // Through black_box, so the (all-zero) table cannot be folded away.
        let table: &[u8] = black_box(&TABLE);
        black_box(table[doc.name().len() % table.len()]);
        Ok(())
    }
}
