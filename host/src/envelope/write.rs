//! The writer: [`Envelope::to_xml`] and the escaping it uses.

use super::xml::{is_xml_char, is_xml_space};
use super::{Envelope, MESSAGE_NS};

/// The XML declaration the writer puts first.
pub(super) const XML_DECLARATION: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>";

impl Envelope {
    /// Writes the message as AIF does: an XML declaration, then
    /// `<Envelope xmlns="MESSAGE_NS"><Header>` with the fields that are set
    /// (empty optional fields count as unset), in AIF's order — `MessageId`,
    /// `LogonAsUser`, `PartitionKey`, `Company`, `Action`, `ConversationId`,
    /// `RequestMessageId` — then `<Body><MessageParts>`, the body verbatim,
    /// and `</MessageParts></Body></Envelope>`.
    ///
    /// Header values are escaped so that [`parse`](super::parse) gives them
    /// back unchanged: `&`, `<` and `>` as entities; CR, and whitespace at the
    /// start or end of a value, as character references; characters XML
    /// cannot carry (C0 controls but tab, LF and CR; U+FFFE, U+FFFF) are
    /// replaced by U+FFFD. The body is not checked: it must be well-formed
    /// XML content.
    pub fn to_xml(&self) -> String {
        let mut out = String::with_capacity(self.body.len() + 600);
        out.push_str(XML_DECLARATION);
        self.write_to(&mut out);
        out
    }

    /// Appends the envelope (without XML declaration) to `out`.
    pub(super) fn write_to(&self, out: &mut String) {
        let h = &self.header;
        out.push_str("<Envelope xmlns=\"");
        out.push_str(MESSAGE_NS);
        out.push_str("\"><Header>");
        let fields = [
            ("MessageId", Some(&h.message_id)),
            ("LogonAsUser", h.logon_as_user.as_ref()),
            ("PartitionKey", h.partition_key.as_ref()),
            ("Company", h.company.as_ref()),
            ("Action", Some(&h.action)),
            ("ConversationId", h.conversation_id.as_ref()),
            ("RequestMessageId", h.request_message_id.as_ref()),
        ];
        for (name, value) in fields {
            match value {
                Some(value) if !value.is_empty() || name == "Action" => {
                    push_element(out, name, value);
                }
                _ => {}
            }
        }
        out.push_str("</Header><Body><MessageParts>");
        out.push_str(&self.body);
        out.push_str("</MessageParts></Body></Envelope>");
    }
}

/// Appends `<name>value</name>`, the value escaped as text.
pub(super) fn push_element(out: &mut String, name: &str, value: &str) {
    out.push('<');
    out.push_str(name);
    out.push('>');
    push_text(out, value);
    out.push_str("</");
    out.push_str(name);
    out.push('>');
}

/// Appends `value` escaped as element text that the reader gives back
/// unchanged, though it trims literal whitespace at both ends.
pub(super) fn push_text(out: &mut String, value: &str) {
    let lead = value.len() - value.trim_start_matches(is_xml_space).len();
    let trail = value.trim_end_matches(is_xml_space).len();
    for (i, c) in value.char_indices() {
        let edge = i < lead || i >= trail;
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#xD;"),
            '\n' if edge => out.push_str("&#xA;"),
            '\t' if edge => out.push_str("&#x9;"),
            ' ' if edge => out.push_str("&#x20;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}

/// Appends `value` escaped for a double-quoted attribute value that attribute
/// value normalization gives back unchanged.
pub(super) fn push_attr_value(out: &mut String, value: &str) {
    for c in value.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#x9;"),
            '\n' => out.push_str("&#xA;"),
            '\r' => out.push_str("&#xD;"),
            c if is_xml_char(c) => out.push(c),
            _ => out.push('\u{FFFD}'),
        }
    }
}
