//! {{name}}: a Ferry rule (world `rule-plugin`). The host calls it with
//! batches of documents it has parsed; `apply_one` handles one document.

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "rule-plugin" });
}

use std::cell::RefCell;

use bindings::exports::ferry::plugin::rule::{Context, Guest as Rule, PluginError};
use bindings::ferry::plugin::documents::Document;
use bindings::ferry::plugin::host::log;
use bindings::ferry::plugin::types::{Configuration, Level};

thread_local! {
    /// What `init` gave: the configuration, once per instance.
    static CONFIG: RefCell<Option<Configuration>> = const { RefCell::new(None) };
}

/// One document: read it (`doc.header("Company")`, `doc.elements("ItemId")`,
/// `doc.body()`, `doc.text()`), answer with edits the host applies
/// (`doc.set_text(id, "...")`, `doc.set_header("Company", "...")`,
/// `doc.remove(id)`, or `doc.replace(whole_text)`), or refuse it with
/// `Err(PluginError::Rejected("why".into()))` (the message's fault) or
/// `Err(PluginError::Failed("why".into()))` (the rule's own).
fn apply_one(ctx: &Context, config: &Configuration, doc: &Document) -> Result<(), PluginError> {
    // TODO: your rule. Options: `config.options` (key/value pairs).
    let note = option(config, "note").unwrap_or_default();
    log(
        Level::Info,
        "{{name}} passed a document",
        &[
            ("document".to_string(), doc.name()),
            ("port".to_string(), ctx.port.clone()),
            ("note".to_string(), note),
        ],
    );
    Ok(())
}

fn option(config: &Configuration, key: &str) -> Option<String> {
    config
        .options
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.clone())
}

struct Plugin;

impl bindings::Guest for Plugin {
    fn init(config: Configuration) -> Result<(), PluginError> {
        // TODO: check the options here: an error fails the call's messages.
        CONFIG.with_borrow_mut(|c| *c = Some(config));
        Ok(())
    }
}

impl Rule for Plugin {
    fn apply(ctx: Context, docs: Vec<Document>) -> Vec<Result<(), PluginError>> {
        // One result per document, in order.
        CONFIG.with_borrow(|config| {
            let config = config.as_ref().expect("init ran first");
            docs.iter().map(|d| apply_one(&ctx, config, d)).collect()
        })
    }
}

bindings::export!(Plugin with_types_in bindings);
