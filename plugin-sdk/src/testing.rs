//! Native stand-ins for the host functions, for unit tests of plugin logic
//! with plain `cargo test` on the build machine (this module does not exist
//! on WebAssembly).
//!
//! Off WebAssembly, [`set_config`] sets the configuration `init` would give
//! (read by [`crate::config()`], [`crate::config_get`] and [`crate::Config`]
//! from [`crate::config::current`]), [`crate::log()`] records into [`logs`]
//! (and prints to stderr), and `send` (feature `service`) records into
//! [`sent`]. Rules are tried on [`crate::Document::new`] documents
//! (`Document::result` gives what the host would pass on). The state is per
//! thread, so tests running in parallel do not see each other's.
//!
//! ```
//! use ferry_plugin_sdk::testing;
//! testing::set_config(&[("strict", "true")]);
//! assert_eq!(ferry_plugin_sdk::config_get("strict").as_deref(), Some("true"));
//! ferry_plugin_sdk::log::info("hello");
//! assert_eq!(testing::logs()[0].message, "hello");
//! testing::reset();
//! ```

use crate::{Level, PluginError};
use std::cell::RefCell;

/// One record written with [`crate::log()`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Its level.
    pub level: Level,
    /// Its message.
    pub message: String,
    /// Its key/value fields.
    pub fields: Vec<(String, String)>,
}

impl LogRecord {
    /// The value of field `key`, if the record has it.
    pub fn field(&self, key: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// One document emitted with `send` (feature `service`) (the Send API).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentDocument {
    /// The outbound port.
    pub port: String,
    /// The envelope's `Action`.
    pub action: String,
    /// The body (inside `Body/MessageParts`).
    pub body: String,
}

#[derive(Default)]
struct MockHost {
    logs: Vec<LogRecord>,
    sent: Vec<SentDocument>,
    outbound_ports: Option<Vec<String>>,
}

thread_local! {
    static HOST: RefCell<MockHost> = RefCell::new(MockHost::default());
}

/// Set the options of the configuration on this thread (what `init` gives
/// on the host), sorted by key as the host sorts them.
pub fn set_config(options: &[(&str, &str)]) {
    let mut options: Vec<(String, String)> = options
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    options.sort();
    let mut config = (*crate::config::current()).clone();
    config.options = options;
    crate::config::set(config);
}

/// The configuration `init` would give, with these options (for a plugin's
/// `new` in a test).
pub fn config(options: &[(&str, &str)]) -> crate::Config {
    set_config(options);
    (*crate::config::current()).clone()
}

/// Restrict the outbound ports `send` (feature `service`) accepts on this thread (like
/// the host, it then rejects any other port). By default every port is
/// accepted.
pub fn set_outbound_ports(ports: &[&str]) {
    HOST.with(|h| {
        h.borrow_mut().outbound_ports = Some(ports.iter().map(|p| p.to_string()).collect())
    });
}

/// Forget this thread's options, log records, sent documents and ports.
pub fn reset() {
    HOST.with(|h| *h.borrow_mut() = MockHost::default());
    crate::config::set(crate::Config::default());
}

/// The records logged on this thread so far.
pub fn logs() -> Vec<LogRecord> {
    HOST.with(|h| h.borrow().logs.clone())
}

/// The documents sent through the Send API on this thread so far.
pub fn sent() -> Vec<SentDocument> {
    HOST.with(|h| h.borrow().sent.clone())
}

pub(crate) fn record_log(level: Level, message: &str, fields: &[(String, String)]) {
    eprintln!("[{level}] {message} {fields:?}");
    HOST.with(|h| {
        h.borrow_mut().logs.push(LogRecord {
            level,
            message: message.to_string(),
            fields: fields.to_vec(),
        })
    });
}

#[allow(dead_code)] // used only with the `service` feature
pub(crate) fn record_send(port: &str, action: &str, body: &str) -> Result<(), PluginError> {
    HOST.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(ports) = &h.outbound_ports
            && !ports.iter().any(|p| p == port)
        {
            return Err(PluginError::Rejected(format!(
                "no outbound port named {port:?} is configured"
            )));
        }
        h.sent.push(SentDocument {
            port: port.to_string(),
            action: action.to_string(),
            body: body.to_string(),
        });
        Ok(())
    })
}
