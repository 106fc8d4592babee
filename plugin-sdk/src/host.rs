//! Thin wrappers over the host imports. On WebAssembly they call the host;
//! elsewhere (native unit tests) they call the stand-ins of
//! [`crate::testing`]. The configuration is the one `init` gave the
//! instance (kept by [`crate::config`]), so reading it costs no host call.

use crate::Level;

/// Write a structured log record into the host's log.
///
/// The host tags it with the plugin's name, its content hash and the port
/// it serves; `fields` are extra key/value pairs shown with the record. A
/// record below the level the host writes (as `init` said) is not sent at
/// all: it costs nothing.
///
/// ```ignore
/// ferry_plugin_sdk::log(Level::Info, "mapped", &[("element", "ItemId"), ("count", "3")]);
/// ```
///
/// For a plain message see the shortcuts in [`mod@crate::log`]
/// (`log::info("...")`).
pub fn log(level: Level, message: &str, fields: &[(&str, &str)]) {
    if !crate::config::writes(level) {
        return;
    }
    let fields: Vec<(String, String)> = fields
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    log_owned(level, message, &fields);
}

/// Whether the running host writes records of `level` from this plugin
/// (asks the host: use it before building an expensive record).
pub fn log_enabled(level: Level) -> bool {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::host::log_enabled(level);
    #[cfg(not(target_arch = "wasm32"))]
    return crate::config::writes(level);
}

/// [`log`] with owned field values (what the WIT import takes).
pub(crate) fn log_owned(level: Level, message: &str, fields: &[(String, String)]) {
    #[cfg(target_arch = "wasm32")]
    crate::bindings::ferry::plugin::host::log(level, message, fields);
    #[cfg(not(target_arch = "wasm32"))]
    crate::testing::record_log(level, message, fields);
}
