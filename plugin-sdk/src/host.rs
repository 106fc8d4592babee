//! Thin wrappers over the host imports. On WebAssembly they call the host;
//! elsewhere (native unit tests) they call the stand-ins of
//! [`crate::testing`].

use crate::Level;

/// Write a structured log record into the host's log.
///
/// The host tags it with the plugin's name, its content hash and the port
/// it serves; `fields` are extra key/value pairs shown with the record.
///
/// ```ignore
/// ferry_plugin_sdk::log(Level::Info, "mapped", &[("element", "ItemId"), ("count", "3")]);
/// ```
///
/// For a plain message see the shortcuts in [`mod@crate::log`]
/// (`log::info("...")`).
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    log_owned(level, message, &fields);
}

/// [`log`] with owned field values (what the WIT import takes).
pub(crate) fn log_owned(level: Level, message: &str, fields: &[(String, String)]) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::ferry::plugin::host::log(level, message, fields);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message, fields);
}

/// The host's `config` import (or its native stand-in).
pub(crate) fn config() -> Vec<(String, String)> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::host::config();
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::current_config();
}

/// The host's `config-get` import (or its native stand-in).
pub(crate) fn config_get(key: &str) -> Option<String> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::host::config_get(key);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::current_config()
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v);
}

/// The host's `send-api.send` import (or its native stand-in).
#[cfg(feature = "service")]
pub(crate) fn send(port: &str, action: &str, body: &str) -> Result<(), crate::PluginError> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::send_api::send(port, action, body);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::testing::record_send(port, action, body);
}
