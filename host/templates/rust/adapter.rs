//! {{name}}: a Ferry adapter (world `adapter`). This starting point touches
//! no files: its receive side has nothing to deliver, and its send side
//! writes each sent message to Ferry's log when the host commits. (Folders
//! the port grants are reached through `bindings::ferry::plugin::files`:
//! list, read, write, rename and remove many paths per call.)

mod bindings {
    wit_bindgen::generate!({ path: "wit", world: "adapter" });
}

use std::cell::RefCell;

use bindings::exports::ferry::plugin::receive::{self, Received};
use bindings::exports::ferry::plugin::send;
use bindings::ferry::plugin::host::log;
use bindings::ferry::plugin::types::{Configuration, Level, Message, PluginError};

thread_local! {
    /// Messages staged by `send` since `begin`.
    static STAGED: RefCell<Vec<Message>> = const { RefCell::new(Vec::new()) };
}

struct Plugin;

impl bindings::Guest for Plugin {
    fn init(_config: Configuration) -> Result<(), PluginError> {
        // The configuration, once per instance: keep what you need.
        Ok(())
    }
}

impl receive::Guest for Plugin {
    fn begin(_address: String) -> Result<(), PluginError> {
        Ok(())
    }

    fn receive(_max: u32) -> Result<Vec<Received>, PluginError> {
        // TODO: return up to `max` messages from your source as
        // `Received::Accepted(Message { name, content })`; empty: nothing waits.
        Ok(Vec::new())
    }

    fn commit(_names: Vec<String>) -> Result<(), PluginError> {
        // TODO: remove the named messages from the source.
        Ok(())
    }

    fn rollback(_names: Vec<String>) -> Result<(), PluginError> {
        Ok(())
    }
}

impl send::Guest for Plugin {
    fn begin(_address: String) -> Result<(), PluginError> {
        STAGED.with_borrow_mut(Vec::clear);
        Ok(())
    }

    fn send(msgs: Vec<Message>) -> Vec<Result<(), PluginError>> {
        // One result per message, in order.
        STAGED.with_borrow_mut(|s| msgs.into_iter().map(|m| Ok(s.push(m))).collect())
    }

    fn commit() -> Result<(), PluginError> {
        // TODO: deliver the staged messages to your destination.
        for msg in STAGED.with_borrow_mut(std::mem::take) {
            log(
                Level::Info,
                "{{name}} sent a message",
                &[
                    ("name".to_string(), msg.name),
                    ("bytes".to_string(), msg.content.len().to_string()),
                ],
            );
        }
        Ok(())
    }

    fn rollback() -> Result<(), PluginError> {
        STAGED.with_borrow_mut(Vec::clear);
        Ok(())
    }
}

bindings::export!(Plugin with_types_in bindings);
