//! One-line logging shortcuts over [`crate::log()`](fn@crate::log):
//! `log::info("received 3 files")`. Use the `*_with` forms to attach
//! key/value fields.

use crate::Level;
use crate::host::log as emit;

/// Whether a record of `level` would be written, by the level the host gave
/// at `init` (no host call): check it before building costly fields.
pub fn enabled(level: Level) -> bool {
    crate::config::writes(level)
}

/// Log `message` at trace level.
pub fn trace(message: &str) {
    emit(Level::Trace, message, &[]);
}

/// Log `message` at debug level.
pub fn debug(message: &str) {
    emit(Level::Debug, message, &[]);
}

/// Log `message` at info level.
pub fn info(message: &str) {
    emit(Level::Info, message, &[]);
}

/// Log `message` at warn level.
pub fn warn(message: &str) {
    emit(Level::Warn, message, &[]);
}

/// Log `message` at error level.
pub fn error(message: &str) {
    emit(Level::Error, message, &[]);
}

/// Log `message` at debug level with key/value `fields`.
pub fn debug_with(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Debug, message, fields);
}

/// Log `message` at info level with key/value `fields`.
pub fn info_with(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Info, message, fields);
}

/// Log `message` at warn level with key/value `fields`.
pub fn warn_with(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Warn, message, fields);
}

/// Log `message` at error level with key/value `fields`.
pub fn error_with(message: &str, fields: &[(&str, &str)]) {
    emit(Level::Error, message, fields);
}
