//! The reader: [`parse`], [`parse_bytes`], and the structure of an envelope
//! (root, `Envelope`, `Header`, `Body`). The body itself is read in
//! [`super::body`], batches in [`super::batch`].

use std::borrow::Cow;

use quick_xml::events::Event;

use super::xml::{Item, XmlReader, is_xml_space, is_xml_whitespace};
use super::{
    BATCH_NS, Envelope, EnvelopeError, Header, MAX_CONVERSATION_ID_CHARS, MESSAGE_NS, Parsed,
    batch, body, decode_text, new_message_id,
};

/// Reads an AIF message: a single `Envelope` or a `Batch` of them.
///
/// `xml` is the document's text; a leading XML declaration is fine, its
/// `encoding` is ignored (the text is already decoded), and a leading BOM
/// character is skipped. See the [module docs](super) for what is read and
/// how the body is extracted.
///
/// # Errors
///
/// [`EnvelopeError::Malformed`] if `xml` is not well-formed XML,
/// [`EnvelopeError::Invalid`] if it is XML but not an AIF message. Never panics.
pub fn parse(xml: &str) -> Result<Parsed, EnvelopeError> {
    let xml = xml.strip_prefix('\u{FEFF}').unwrap_or(xml);
    read_checked(XmlReader::new(xml)?)
}

/// Reads the document of `reader`; a structural error in a document that
/// is not even XML is reported as the XML error.
fn read_checked(mut reader: XmlReader<'_>) -> Result<Parsed, EnvelopeError> {
    match read_document(&mut reader) {
        Err(invalid) if !invalid.is_malformed() => {
            Err(reader.first_malformation().unwrap_or(invalid))
        }
        result => result,
    }
}

/// How the writer ends an envelope (after the body).
pub(super) const WRITTEN_END: &str = "</MessageParts></Body></Envelope>";

/// [`parse`] for text that [`Envelope::to_xml`](super::Envelope::to_xml)
/// wrote from an envelope that [`parse`] had accepted, unchanged since (the
/// caller knows; e.g. gateway receive wrote it into the queue): the header
/// is read and checked as by [`parse`], the body is taken as it stands,
/// not checked again. Text that does not end as the writer ends an
/// envelope is read by [`parse`].
///
/// # Errors
///
/// Those of [`parse`] (for the header; for all of text not ending as written).
pub fn parse_written(xml: &str) -> Result<Parsed, EnvelopeError> {
    let Some(end) = xml.strip_suffix(WRITTEN_END).map(str::len) else {
        return parse(xml);
    };
    let mut reader = XmlReader::new(xml)?;
    reader.trust_body_to(end);
    read_checked(reader)
}

/// [`decode_text`] then [`parse`]: reads a message file's raw bytes (UTF-8 or
/// UTF-16, with or without byte order mark).
///
/// # Errors
///
/// Those of [`decode_text`] and [`parse`]. A `Malformed` error from the XML
/// has its byte offset in the decoded UTF-8 text (line and column are the
/// same in both).
pub fn parse_bytes(bytes: &[u8]) -> Result<Parsed, EnvelopeError> {
    parse(&decode_text(bytes)?)
}

fn read_document(r: &mut XmlReader<'_>) -> Result<Parsed, EnvelopeError> {
    // Prolog: the reader checks and skips declaration, comments, PIs, space.
    let (root, empty) = loop {
        match r.next()?.event {
            Event::Start(e) => break (e, false),
            Event::Empty(e) => break (e, true),
            _ => {}
        }
    };
    let parsed = if r.is(root.name(), MESSAGE_NS, "Envelope") {
        if empty {
            return Err(EnvelopeError::invalid(
                "the <Envelope> is empty; it needs a <Header> with an <Action>, and a <Body>",
            ));
        }
        Parsed::Single(read_envelope(r)?)
    } else if r.is(root.name(), BATCH_NS, "Batch") {
        Parsed::Batch(batch::read_batch(r, &root, empty)?)
    } else {
        return Err(EnvelopeError::invalid(format!(
            "the root element is {}; an AIF message is an <Envelope> in namespace {MESSAGE_NS} \
             or a <Batch> in namespace {BATCH_NS}",
            r.expanded(root.name())
        )));
    };
    // Epilog: the reader rejects anything but comments, PIs and space.
    while !matches!(r.next()?.event, Event::Eof) {}
    Ok(parsed)
}

/// Reads an envelope whose start tag was just read, through its end tag.
pub(super) fn read_envelope(r: &mut XmlReader<'_>) -> Result<Envelope, EnvelopeError> {
    let mut header: Option<RawHeader> = None;
    let mut parts: Option<Option<String>> = None;
    loop {
        let item = r.next()?;
        match &item.event {
            Event::Start(e) | Event::Empty(e) => {
                let start = matches!(item.event, Event::Start(_));
                if r.is(e.name(), MESSAGE_NS, "Header") {
                    if header.is_some() {
                        return Err(EnvelopeError::invalid(
                            "the <Envelope> has more than one <Header>",
                        ));
                    }
                    header = Some(if start {
                        read_header(r)?
                    } else {
                        RawHeader::default()
                    });
                } else if r.is(e.name(), MESSAGE_NS, "Body") {
                    if parts.is_some() {
                        return Err(EnvelopeError::invalid(
                            "the <Envelope> has more than one <Body>",
                        ));
                    }
                    parts = Some(if start { read_body(r)? } else { None });
                } else if start {
                    r.skip_element()?;
                }
            }
            Event::End(_) => break,
            _ => unexpected_text(&item, "Envelope")?,
        }
    }
    let Some(header) = header else {
        return Err(EnvelopeError::invalid(
            "the <Envelope> has no <Header>; an AIF message needs a <Header> with an <Action>",
        ));
    };
    let header = header.finish()?;
    match parts {
        None => Err(EnvelopeError::invalid("the <Envelope> has no <Body>")),
        Some(None) => Err(EnvelopeError::invalid(
            "the <Body> has no <MessageParts>; the document must be inside <Body><MessageParts>",
        )),
        Some(Some(body)) => Ok(Envelope { header, body }),
    }
}

/// The header fields as read, before defaults and checks.
#[derive(Default)]
struct RawHeader {
    message_id: Option<String>,
    logon_as_user: Option<String>,
    company: Option<String>,
    action: Option<String>,
    conversation_id: Option<String>,
    request_message_id: Option<String>,
    partition_key: Option<String>,
}

impl RawHeader {
    fn field(&mut self, local: &str) -> Option<&mut Option<String>> {
        Some(match local {
            "MessageId" => &mut self.message_id,
            "LogonAsUser" => &mut self.logon_as_user,
            "Company" => &mut self.company,
            "Action" => &mut self.action,
            "ConversationId" => &mut self.conversation_id,
            "RequestMessageId" => &mut self.request_message_id,
            "PartitionKey" => &mut self.partition_key,
            _ => return None,
        })
    }

    fn finish(self) -> Result<Header, EnvelopeError> {
        let action = match self.action {
            None => {
                return Err(EnvelopeError::invalid(
                    "the <Header> has no <Action>; <Action> is required (for example \
                     http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create)",
                ));
            }
            Some(action) if action.is_empty() => {
                return Err(EnvelopeError::invalid(
                    "the <Action> in the <Header> is empty",
                ));
            }
            Some(action) => action,
        };
        let conversation_id = non_empty(self.conversation_id);
        if let Some(id) = &conversation_id {
            check_conversation_id(id, "the <ConversationId>")?;
        }
        Ok(Header {
            message_id: non_empty(self.message_id).unwrap_or_else(new_message_id),
            logon_as_user: non_empty(self.logon_as_user),
            company: non_empty(self.company),
            action,
            conversation_id,
            request_message_id: non_empty(self.request_message_id),
            partition_key: non_empty(self.partition_key),
        })
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Fails if `id` is longer than AIF allows.
pub(super) fn check_conversation_id(id: &str, what: &str) -> Result<(), EnvelopeError> {
    let chars = id.chars().count();
    if chars > MAX_CONVERSATION_ID_CHARS {
        return Err(EnvelopeError::invalid(format!(
            "{what} is {chars} characters long; AIF allows at most {MAX_CONVERSATION_ID_CHARS}"
        )));
    }
    Ok(())
}

fn read_header(r: &mut XmlReader<'_>) -> Result<RawHeader, EnvelopeError> {
    let mut header = RawHeader::default();
    loop {
        let item = r.next()?;
        match &item.event {
            Event::Start(e) | Event::Empty(e) => {
                let start = matches!(item.event, Event::Start(_));
                let name = e.name();
                let local = name.local_name().into_inner();
                let known = r.is(name, MESSAGE_NS, local);
                match header.field(local).filter(|_| known) {
                    Some(field) => {
                        if field.is_some() {
                            return Err(EnvelopeError::invalid(format!(
                                "the <Header> has more than one <{local}>"
                            )));
                        }
                        *field = Some(if start {
                            read_text(r, local)?
                        } else {
                            String::new()
                        });
                    }
                    // Unknown header element: ignored.
                    None if start => r.skip_element()?,
                    None => {}
                }
            }
            Event::End(_) => return Ok(header),
            _ => unexpected_text(&item, "Header")?,
        }
    }
}

/// Reads a `Body` whose start tag was just read: `Some(body)` if it holds a
/// `MessageParts`.
fn read_body(r: &mut XmlReader<'_>) -> Result<Option<String>, EnvelopeError> {
    let mut parts = None;
    loop {
        let item = r.next()?;
        match &item.event {
            Event::Start(e) | Event::Empty(e) => {
                let start = matches!(item.event, Event::Start(_));
                if r.is(e.name(), MESSAGE_NS, "MessageParts") {
                    if parts.is_some() {
                        return Err(EnvelopeError::invalid(
                            "the <Body> has more than one <MessageParts>",
                        ));
                    }
                    parts = Some(if start {
                        body::read_message_parts(r)?
                    } else {
                        String::new()
                    });
                } else if start {
                    r.skip_element()?;
                }
            }
            Event::End(_) => return Ok(parts),
            _ => unexpected_text(&item, "Body")?,
        }
    }
}

/// Reads the text content of an element whose start tag was just read,
/// through its end tag, trimmed of literal leading and trailing XML
/// whitespace (whitespace from character references or CDATA is kept).
///
/// Fails if the element has child elements.
pub(super) fn read_text(r: &mut XmlReader<'_>, element: &str) -> Result<String, EnvelopeError> {
    // (text, whether it is literal text that may be trimmed)
    let mut pieces: Vec<(Cow<'_, str>, bool)> = Vec::new();
    loop {
        let item = r.next()?;
        match item.event {
            Event::Text(text) => pieces.push((text.xml10_content(), true)),
            Event::CData(cdata) => pieces.push((cdata.xml10_content(), false)),
            Event::GeneralRef(reference) => {
                let c = r.resolve_ref(&reference, item.start)?;
                pieces.push((Cow::Owned(c.to_string()), false));
            }
            Event::Start(e) | Event::Empty(e) => {
                return Err(EnvelopeError::invalid(format!(
                    "<{element}> must hold only text, but it contains <{}>",
                    e.name().into_inner()
                )));
            }
            Event::End(_) => break,
            _ => {}
        }
    }
    Ok(join_trimmed(&pieces))
}

fn join_trimmed(pieces: &[(Cow<'_, str>, bool)]) -> String {
    let whole: String = pieces.iter().map(|(text, _)| text.as_ref()).collect();
    let mut lead = 0;
    for (text, literal) in pieces {
        let space = if *literal {
            text.len() - text.trim_start_matches(is_xml_space).len()
        } else {
            0
        };
        lead += space;
        if space < text.len() {
            break;
        }
    }
    let mut trail = 0;
    for (text, literal) in pieces.iter().rev() {
        let space = if *literal {
            text.len() - text.trim_end_matches(is_xml_space).len()
        } else {
            0
        };
        trail += space;
        if space < text.len() {
            break;
        }
    }
    if lead + trail >= whole.len() {
        return String::new();
    }
    whole[lead..whole.len() - trail].to_owned()
}

/// Fails on text (other than whitespace) where only elements belong.
pub(super) fn unexpected_text(item: &Item<'_>, parent: &str) -> Result<(), EnvelopeError> {
    let text = match &item.event {
        Event::Text(text) if !is_xml_whitespace(text) => text.trim_matches(is_xml_space),
        Event::CData(cdata) if !is_xml_whitespace(cdata) => cdata,
        Event::GeneralRef(_) => "&...;",
        _ => return Ok(()),
    };
    let shown: String = text.chars().take(40).collect();
    Err(EnvelopeError::invalid(format!(
        "unexpected text \"{shown}\" directly in <{parent}>; only elements belong there"
    )))
}
