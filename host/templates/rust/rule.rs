//! {{name}}: a Ferry rule (world `rule-plugin`): one document in, one out.

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "rule-plugin" });
}

use bindings::exports::ferry::plugin::rule::{Context, Document, Guest, PluginError};
use bindings::ferry::plugin::host::{config_get, log};
use bindings::ferry::plugin::types::Level;

struct Plugin;

impl Guest for Plugin {
    fn apply(ctx: Context, doc: Document) -> Result<Document, PluginError> {
        // TODO: change the document, or refuse it with
        // `Err(PluginError::Rejected("why".into()))` (the message's fault) or
        // `Err(PluginError::Failed("why".into()))` (the rule's own).
        // Options from the configuration: `config_get("key")`.
        let note = config_get("note").unwrap_or_default();
        log(
            Level::Info,
            "{{name}} passed a document",
            &[
                ("document".to_string(), doc.name.clone()),
                ("port".to_string(), ctx.port),
                ("note".to_string(), note),
            ],
        );
        Ok(doc)
    }
}

bindings::export!(Plugin with_types_in bindings);
