//! Faults: the response AIF sends when a request fails, with a body
//! `<Fault xmlns="FAULT_NS"><Code>..</Code><Reason><Text>..</Text></Reason></Fault>`.

use quick_xml::events::Event;

use super::read::read_text;
use super::write::push_element;
use super::xml::XmlReader;
use super::{Envelope, FAULT_NS};

/// The fault code of a duplicate message.
pub const DUPLICATE_MESSAGE_CODE: &str = "DuplicateMessage";

/// The fault text of a duplicate message, AIF's wording.
pub const DUPLICATE_MESSAGE_TEXT: &str = "Duplicate message. Message has already been processed.";

impl Envelope {
    /// The fault response to this message: a [`response`](Envelope::response)
    /// whose body is a `Fault` (namespace [`FAULT_NS`]) with `code` in
    /// `Fault/Code` and `reason` in `Fault/Reason/Text`, both escaped.
    pub fn fault(&self, code: &str, reason: &str) -> Envelope {
        let mut body = String::with_capacity(code.len() + reason.len() + 140);
        body.push_str("<Fault xmlns=\"");
        body.push_str(FAULT_NS);
        body.push_str("\">");
        push_element(&mut body, "Code", code);
        body.push_str("<Reason>");
        push_element(&mut body, "Text", reason);
        body.push_str("</Reason></Fault>");
        self.response(body)
    }

    /// The fault AIF answers a `MessageId` it has already processed with:
    /// code [`DUPLICATE_MESSAGE_CODE`], text [`DUPLICATE_MESSAGE_TEXT`].
    pub fn duplicate_fault(&self) -> Envelope {
        self.fault(DUPLICATE_MESSAGE_CODE, DUPLICATE_MESSAGE_TEXT)
    }

    /// If the body is a `Fault` (namespace [`FAULT_NS`]), its code and reason
    /// text: `Fault/Code` and `Fault/Reason/Text` (or the text of
    /// `Fault/Reason` itself if it has no `Text`); missing parts are empty.
    /// `None` if the body is not a fault or not well-formed.
    pub fn fault_of(&self) -> Option<(String, String)> {
        let mut r = XmlReader::new(&self.body).ok()?;
        // The first element of the body must be the Fault.
        loop {
            match r.next().ok()?.event {
                Event::Start(e) if r.is(e.name(), FAULT_NS, "Fault") => break,
                Event::Start(_) | Event::Empty(_) | Event::Eof => return None,
                _ => {}
            }
        }
        let (mut code, mut text) = (String::new(), String::new());
        let fault_depth = r.depth();
        while r.depth() >= fault_depth {
            let item = r.next().ok()?;
            let Event::Start(e) = item.event else {
                continue;
            };
            if r.is(e.name(), FAULT_NS, "Code") && r.depth() == fault_depth + 1 {
                code = read_text(&mut r, "Code").ok()?;
            } else if r.is(e.name(), FAULT_NS, "Reason") && r.depth() == fault_depth + 1 {
                text = read_reason(&mut r)?;
            }
        }
        Some((code, text))
    }
}

/// `Reason/Text`, or the text directly in `Reason`.
fn read_reason(r: &mut XmlReader<'_>) -> Option<String> {
    let reason_depth = r.depth();
    let mut direct = String::new();
    let mut text = None;
    while r.depth() >= reason_depth {
        let item = r.next().ok()?;
        match item.event {
            Event::Start(e)
                if r.is(e.name(), FAULT_NS, "Text") && r.depth() == reason_depth + 1 =>
            {
                text = Some(read_text(r, "Text").ok()?);
            }
            Event::Text(t) if r.depth() == reason_depth => direct.push_str(&t.xml10_content()),
            Event::GeneralRef(g) if r.depth() == reason_depth => {
                direct.push(r.resolve_ref(&g, item.start).ok()?)
            }
            Event::CData(c) if r.depth() == reason_depth => direct.push_str(&c.xml10_content()),
            _ => {}
        }
    }
    Some(text.unwrap_or_else(|| direct.trim_matches(super::xml::is_xml_space).to_owned()))
}
