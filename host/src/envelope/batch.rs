//! Batches: `<Batch xmlns="BATCH_NS" BatchId=".." ConversationId="..">`
//! holding several whole envelopes. Reading ([`read_batch`]) and writing
//! ([`Batch::to_xml`]).

use quick_xml::XmlVersion;
use quick_xml::events::{BytesStart, Event};

use super::read::{check_conversation_id, read_envelope, unexpected_text};
use super::write::{XML_DECLARATION, push_attr_value};
use super::xml::XmlReader;
use super::{BATCH_NS, Batch, EnvelopeError, MESSAGE_NS};

/// Reads a batch whose start tag `root` was just read (`empty` if it was
/// `<Batch/>`), through its end tag.
pub(super) fn read_batch(
    r: &mut XmlReader<'_>,
    root: &BytesStart<'_>,
    empty: bool,
) -> Result<Batch, EnvelopeError> {
    let mut batch = Batch {
        batch_id: attribute(r, root, "BatchId")?,
        conversation_id: attribute(r, root, "ConversationId")?,
        messages: Vec::new(),
    };
    if let Some(id) = &batch.conversation_id {
        check_conversation_id(id, "the batch's ConversationId")?;
    }
    if !empty {
        loop {
            let item = r.next()?;
            match &item.event {
                Event::Start(e) | Event::Empty(e) => {
                    let number = batch.messages.len() + 1;
                    if !r.is(e.name(), MESSAGE_NS, "Envelope") {
                        return Err(EnvelopeError::invalid(format!(
                            "unexpected {} in the <Batch> (after message {}); a batch holds only \
                             <Envelope> elements in namespace {MESSAGE_NS}",
                            r.expanded(e.name()),
                            number - 1
                        )));
                    }
                    if matches!(item.event, Event::Empty(_)) {
                        return Err(EnvelopeError::invalid(format!(
                            "message {number} of the batch: the <Envelope> is empty"
                        )));
                    }
                    let envelope = read_envelope(r).map_err(|e| match e {
                        EnvelopeError::Invalid { reason } => EnvelopeError::invalid(format!(
                            "message {number} of the batch: {reason}"
                        )),
                        other => other,
                    })?;
                    batch.messages.push(envelope);
                }
                Event::End(_) => break,
                _ => unexpected_text(&item, "Batch")?,
            }
        }
    }
    if batch.messages.is_empty() {
        return Err(EnvelopeError::invalid("the <Batch> holds no <Envelope>"));
    }
    if let Some(id) = &batch.conversation_id {
        for message in &mut batch.messages {
            message
                .header
                .conversation_id
                .get_or_insert_with(|| id.clone());
        }
    }
    Ok(batch)
}

/// The value of the unprefixed attribute `name` of `e`, if present and not empty.
fn attribute(
    r: &XmlReader<'_>,
    e: &BytesStart<'_>,
    name: &str,
) -> Result<Option<String>, EnvelopeError> {
    // The reader has checked the attributes already.
    for attr in e.attributes().flatten() {
        if attr.key.into_inner() == name {
            let value = attr
                .normalized_value(XmlVersion::Implicit1_0)
                .map_err(|err| {
                    r.malformed(
                        r.offset(),
                        format!("bad {name} attribute on <Batch>: {err}"),
                    )
                })?;
            return Ok(Some(value.into_owned()).filter(|v| !v.is_empty()));
        }
    }
    Ok(None)
}

impl Batch {
    /// Writes the batch: an XML declaration, then
    /// `<Batch xmlns="BATCH_NS" BatchId=".." ConversationId="..">` (attributes
    /// only if set), each message as [`Envelope::to_xml`](super::Envelope::to_xml)
    /// writes it but without the declaration, and `</Batch>`.
    ///
    /// Reading the result gives this batch back, except that messages without
    /// a `ConversationId` get the batch's.
    pub fn to_xml(&self) -> String {
        let size: usize = self.messages.iter().map(|m| m.body.len() + 512).sum();
        let mut out = String::with_capacity(size + 256);
        out.push_str(XML_DECLARATION);
        out.push_str("<Batch xmlns=\"");
        out.push_str(BATCH_NS);
        out.push('"');
        for (name, value) in [
            ("BatchId", &self.batch_id),
            ("ConversationId", &self.conversation_id),
        ] {
            if let Some(value) = value.as_deref().filter(|v| !v.is_empty()) {
                out.push(' ');
                out.push_str(name);
                out.push_str("=\"");
                push_attr_value(&mut out, value);
                out.push('"');
            }
        }
        out.push('>');
        for message in &self.messages {
            message.write_to(&mut out);
        }
        out.push_str("</Batch>");
        out
    }
}
