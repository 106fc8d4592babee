//! TEST FIXTURE: a rule that stamps its version into each document.
//!
//! The version is the last two characters of [`MARKER`], a string kept in
//! the component's data. The hot-load tests make new versions of the
//! component by patching those two bytes in the `.wasm` file, so ten
//! versions cost one build. The rule inserts `<Stamp>NN</Stamp>` before
//! `</MessageParts>` and logs `event=stamp version=NN file=…` (the `<File>`
//! of the document) so the tests can follow which worker used which version.

use ferry_plugin_sdk::{Config, Context, Document, PluginError, Rule, log};
use std::hint::black_box;

/// The version marker: `ferry-test-stamp-version:` and two digits.
pub const MARKER: &str = "ferry-test-stamp-version:00";

/// The version this build carries.
pub fn version() -> String {
    let marker: &str = black_box(MARKER);
    marker[marker.len() - 2..].to_string()
}

/// The stamp rule.
pub struct Stamp;

ferry_plugin_sdk::export_rule!(Stamp);

/// `content` with `<Stamp>version</Stamp>` before `</MessageParts>`.
pub fn stamp(content: &str, version: &str) -> Result<String, PluginError> {
    let at = content.find("</MessageParts>").ok_or_else(|| {
        PluginError::Rejected("test-stamp: the document has no </MessageParts>".to_string())
    })?;
    Ok(format!(
        "{}<Stamp>{version}</Stamp>{}",
        &content[..at],
        &content[at..]
    ))
}

impl Rule for Stamp {
    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(Stamp)
    }

    fn apply(&self, _ctx: &Context, doc: &Document) -> Result<(), PluginError> {
        let v = version();
        let text = doc.text();
        let file = ferry_plugin_sdk::envelope::element_text(&text, "File").unwrap_or_default();
        log::info_with(
            "stamped",
            &[("event", "stamp"), ("version", &v), ("file", &file)],
        );
        doc.replace(&stamp(&text, &v)?);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_before_message_parts_end() {
        assert_eq!(
            stamp("<MessageParts><A/></MessageParts>", "07").unwrap(),
            "<MessageParts><A/><Stamp>07</Stamp></MessageParts>"
        );
        assert!(stamp("<A/>", "07").is_err());
        assert_eq!(version(), "00");
    }
}
