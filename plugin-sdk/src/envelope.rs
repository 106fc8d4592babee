//! Small helpers to read and change AIF message envelopes, so a rule is a
//! few lines.
//!
//! An AIF message is an `Envelope` in the namespace [`MESSAGE_NS`]:
//!
//! ```xml
//! <Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
//!   <Header>
//!     <MessageId>{5603D03A-4380-404D-9F1F-9F1F9F1F9F1F}</MessageId>
//!     <Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action>
//!   </Header>
//!   <Body>
//!     <MessageParts>
//!       <SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder">...</SalesOrder>
//!     </MessageParts>
//!   </Body>
//! </Envelope>
//! ```
//!
//! Elements are matched by their local name (whatever their prefix or
//! namespace). Everything a helper does not change is kept byte for byte:
//! the helpers splice the original text rather than re-serialise it.
//!
//! These helpers are plain functions over `&str` (they never call the host),
//! so they work, and are tested, on any target.

use std::borrow::Cow;
use std::fmt;

/// The namespace of AIF's message `Envelope`.
pub const MESSAGE_NS: &str = "http://schemas.microsoft.com/dynamics/2011/01/documents/Message";

/// A document is not the XML, or not the envelope, a helper expected.
///
/// Converts into [`crate::PluginError::Rejected`] (the message's own fault),
/// so `?` works in a rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EnvelopeError {
    message: String,
}

impl EnvelopeError {
    fn new(message: impl Into<String>) -> Self {
        EnvelopeError {
            message: message.into(),
        }
    }

    /// What is wrong, in words.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EnvelopeError {}

/// One element of a parsed document, as byte offsets into the text.
#[derive(Clone, Debug)]
pub(crate) struct Element<'a> {
    /// Local name (without prefix).
    pub(crate) local: &'a str,
    /// Qualified name as written (with prefix).
    pub(crate) qname: &'a str,
    /// Offset of the `<` of the start (or empty-element) tag.
    pub(crate) start: usize,
    /// Offset just after the start tag's `>`.
    pub(crate) open_end: usize,
    /// Offset of the `<` of the end tag (`open_end` for an empty element).
    pub(crate) close_start: usize,
    /// Offset just after the end tag's `>`.
    pub(crate) end: usize,
    /// `<x/>`.
    pub(crate) empty: bool,
    /// Index of the parent element.
    pub(crate) parent: Option<usize>,
    /// Only text, character/entity references and CDATA inside.
    pub(crate) simple: bool,
}

/// Parse `xml` into its elements, in document order.
pub(crate) fn scan(xml: &str) -> Result<Vec<Element<'_>>, EnvelopeError> {
    let all = ferry_xml_index::scan(xml)
        .map_err(|e| EnvelopeError::new(format!("malformed XML: {e}")))?;
    Ok(all
        .into_iter()
        .map(|e| Element {
            local: e.local(xml),
            qname: e.qname(xml),
            start: e.start(),
            open_end: e.open_end(),
            close_start: e.close_start(),
            end: e.end(),
            empty: e.empty,
            parent: e.parent(),
            simple: e.simple,
        })
        .collect())
}

/// The text inside an element made of text, references and CDATA only.
pub(crate) fn decode_text(inner: &str) -> Result<String, EnvelopeError> {
    ferry_xml_index::decode_text(inner)
        .map(Cow::into_owned)
        .map_err(|e| EnvelopeError::new(format!("malformed XML text: {e}")))
}

/// Escape `text` for use as element content (`<`, `>`, `&`).
pub fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::partial_escape(text)
}

/// Escape `text` for use inside a double- or single-quoted attribute value.
pub fn escape_attribute(text: &str) -> Cow<'_, str> {
    quick_xml::escape::escape(text)
}

/// The first child of `parent` (or a root element when `None`) named `local`.
fn child(elements: &[Element], parent: Option<usize>, local: &str) -> Option<usize> {
    elements
        .iter()
        .enumerate()
        .find(|(_, e)| e.parent == parent && e.local == local)
        .map(|(i, _)| i)
}

/// The index of the root `Envelope`, or an error saying what the root is.
fn envelope(elements: &[Element]) -> Result<usize, EnvelopeError> {
    match elements.iter().position(|e| e.parent.is_none()) {
        Some(i) if elements[i].local == "Envelope" => Ok(i),
        Some(i) => Err(EnvelopeError::new(format!(
            "not an AIF message envelope: the root element is <{}>, not <Envelope>",
            elements[i].qname
        ))),
        None => Err(EnvelopeError::new(
            "not an AIF message envelope: the document has no element",
        )),
    }
}

/// The `MessageParts` element of an envelope.
fn message_parts(elements: &[Element]) -> Result<usize, EnvelopeError> {
    let env = envelope(elements)?;
    let body = child(elements, Some(env), "Body")
        .ok_or_else(|| EnvelopeError::new("the envelope has no <Body>"))?;
    child(elements, Some(body), "MessageParts")
        .ok_or_else(|| EnvelopeError::new("the envelope's <Body> has no <MessageParts>"))
}

/// Replace the content of element `e` with `content` (already XML), turning
/// an empty element `<x/>` into `<x>content</x>`.
fn splice_content(xml: &str, e: &Element, content: &str) -> String {
    let mut out = String::with_capacity(xml.len() + content.len() + e.qname.len() + 3);
    if e.empty {
        let tag = &xml[e.start..e.open_end];
        let open = tag.trim_end_matches('>').trim_end_matches('/').trim_end();
        out.push_str(&xml[..e.start]);
        out.push_str(open);
        out.push('>');
        out.push_str(content);
        out.push_str("</");
        out.push_str(e.qname);
        out.push('>');
        out.push_str(&xml[e.end..]);
    } else {
        out.push_str(&xml[..e.open_end]);
        out.push_str(content);
        out.push_str(&xml[e.close_start..]);
    }
    out
}

/// The text of header field `field` (`"Action"`, `"MessageId"`,
/// `"Company"`, ...): `Envelope/Header/<field>`, unescaped. `None` when the
/// document is not an envelope, has no such field, or the field holds
/// elements rather than text.
///
/// ```
/// let doc = r#"<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
///   <Header><Action>urn:x/SalesOrderService/create</Action></Header><Body><MessageParts/></Body></Envelope>"#;
/// assert_eq!(ferry_plugin_sdk::envelope::header(doc, "Action").as_deref(), Some("urn:x/SalesOrderService/create"));
/// assert_eq!(ferry_plugin_sdk::envelope::header(doc, "Company"), None);
/// ```
pub fn header(xml: &str, field: &str) -> Option<String> {
    let elements = scan(xml).ok()?;
    let env = envelope(&elements).ok()?;
    let header = child(&elements, Some(env), "Header")?;
    let f = child(&elements, Some(header), field)?;
    let e = &elements[f];
    if !e.simple {
        return None;
    }
    decode_text(&xml[e.open_end..e.close_start]).ok()
}

/// Set header field `field` to the text `value` (escaped here): replace the
/// text of `Envelope/Header/<field>` if present, else append the field as
/// the last child of `Header` (with `Header`'s prefix). The rest of the
/// document is kept byte for byte.
pub fn set_header(xml: &str, field: &str, value: &str) -> Result<String, EnvelopeError> {
    let elements = scan(xml)?;
    let env = envelope(&elements)?;
    let header = child(&elements, Some(env), "Header")
        .ok_or_else(|| EnvelopeError::new("the envelope has no <Header>"))?;
    let escaped = escape(value);
    if let Some(f) = child(&elements, Some(header), field) {
        let e = &elements[f];
        if !e.simple {
            return Err(EnvelopeError::new(format!(
                "header field <{}> holds elements, not text",
                e.qname
            )));
        }
        return Ok(splice_content(xml, e, &escaped));
    }
    let h = &elements[header];
    let prefix = h.qname.strip_suffix(&h.local).unwrap_or("");
    let new_field = format!("<{prefix}{field}>{escaped}</{prefix}{field}>");
    if h.empty {
        return Ok(splice_content(xml, h, &new_field));
    }
    // After the last field, indented like it; else just before `</Header>`.
    let last = elements.iter().rfind(|e| e.parent == Some(header));
    let (at, indent) = match last {
        Some(l) => {
            let before = &xml[..l.start];
            let trimmed = before.trim_end_matches([' ', '\t', '\r', '\n']);
            (l.end, &before[trimmed.len()..])
        }
        None => (h.close_start, ""),
    };
    let mut out = String::with_capacity(xml.len() + indent.len() + new_field.len());
    out.push_str(&xml[..at]);
    out.push_str(indent);
    out.push_str(&new_field);
    out.push_str(&xml[at..]);
    Ok(out)
}

/// The body of an envelope: the XML inside `Envelope/Body/MessageParts`,
/// verbatim (empty for `<MessageParts/>`).
///
/// ```
/// let doc = r#"<Envelope><Header/><Body><MessageParts><A>1</A></MessageParts></Body></Envelope>"#;
/// assert_eq!(ferry_plugin_sdk::envelope::body(doc).unwrap(), "<A>1</A>");
/// ```
pub fn body(xml: &str) -> Result<&str, EnvelopeError> {
    let elements = scan(xml)?;
    let e = &elements[message_parts(&elements)?];
    Ok(&xml[e.open_end..e.close_start])
}

/// Replace the body of an envelope (the XML inside
/// `Envelope/Body/MessageParts`) with `new_body`, inserted as is (it must
/// be XML). The rest of the document is kept byte for byte.
pub fn replace_body(xml: &str, new_body: &str) -> Result<String, EnvelopeError> {
    let elements = scan(xml)?;
    let e = &elements[message_parts(&elements)?];
    Ok(splice_content(xml, e, new_body))
}

/// Change the body of an envelope with `f` (which gets the body verbatim and
/// returns the new body). A convenience over [`body`] and [`replace_body`].
pub fn map_body<E, F>(xml: &str, f: F) -> Result<String, E>
where
    E: From<EnvelopeError>,
    F: FnOnce(&str) -> Result<String, E>,
{
    let new_body = f(body(xml)?)?;
    Ok(replace_body(xml, &new_body)?)
}

/// Map the text of elements: for every element whose local name is in
/// `names` and whose content is text only, call `f(local_name, text)` with
/// the unescaped text; `Ok(Some(new))` replaces the text (escaped here),
/// `Ok(None)` keeps the element unchanged, `Err` stops and is returned.
/// Elements that hold other elements (or comments) are skipped; an empty
/// element (`<ItemId/>`) is offered with the text `""`.
///
/// This is the core of value substitution:
///
/// ```
/// use ferry_plugin_sdk::{envelope, PluginError};
/// let body = "<Line><ItemId>EXT-1</ItemId><Qty>2</Qty></Line>";
/// let mapped = envelope::map_element_text(body, &["ItemId"], |_, text| {
///     Ok::<_, PluginError>(if text == "EXT-1" { Some("1000".to_string()) } else { None })
/// }).unwrap();
/// assert_eq!(mapped, "<Line><ItemId>1000</ItemId><Qty>2</Qty></Line>");
/// ```
pub fn map_element_text<E, F>(xml: &str, names: &[&str], mut f: F) -> Result<String, E>
where
    E: From<EnvelopeError>,
    F: FnMut(&str, &str) -> Result<Option<String>, E>,
{
    let elements = scan(xml)?;
    let mut out = String::with_capacity(xml.len());
    let mut copied = 0;
    for e in &elements {
        if !e.simple || !names.contains(&e.local) || e.start < copied {
            continue;
        }
        let text = decode_text(&xml[e.open_end..e.close_start])?;
        if let Some(new) = f(e.local, &text)? {
            let escaped = escape(&new);
            if e.empty {
                let tag = &xml[e.start..e.open_end];
                let open = tag.trim_end_matches('>').trim_end_matches('/').trim_end();
                out.push_str(&xml[copied..e.start]);
                out.push_str(open);
                out.push('>');
                out.push_str(&escaped);
                out.push_str("</");
                out.push_str(e.qname);
                out.push('>');
                copied = e.end;
            } else {
                out.push_str(&xml[copied..e.open_end]);
                out.push_str(&escaped);
                copied = e.close_start;
            }
        }
    }
    out.push_str(&xml[copied..]);
    Ok(out)
}

/// The unescaped text of the first element named `local` whose content is
/// text only (`None` if there is none, or the XML is malformed).
///
/// ```
/// let body = "<Probe><DelayMs>25</DelayMs></Probe>";
/// assert_eq!(ferry_plugin_sdk::envelope::element_text(body, "DelayMs").as_deref(), Some("25"));
/// ```
pub fn element_text(xml: &str, local: &str) -> Option<String> {
    let elements = scan(xml).ok()?;
    elements
        .iter()
        .find(|e| e.local == local && e.simple)
        .and_then(|e| decode_text(&xml[e.open_end..e.close_start]).ok())
}

/// The unescaped texts of every element named `local` whose content is
/// text only, in document order.
pub fn element_texts(xml: &str, local: &str) -> Result<Vec<String>, EnvelopeError> {
    let elements = scan(xml)?;
    elements
        .iter()
        .filter(|e| e.local == local && e.simple)
        .map(|e| decode_text(&xml[e.open_end..e.close_start]))
        .collect()
}

/// The outer XML (start tag to end tag, verbatim) of every element named
/// `local` that is not inside another such element, in document order.
///
/// ```
/// let body = "<SalesOrder><SalesTable><SalesId>1</SalesId></SalesTable><SalesTable/></SalesOrder>";
/// let tables = ferry_plugin_sdk::envelope::elements(body, "SalesTable").unwrap();
/// assert_eq!(tables, vec!["<SalesTable><SalesId>1</SalesId></SalesTable>", "<SalesTable/>"]);
/// ```
pub fn elements<'a>(xml: &'a str, local: &str) -> Result<Vec<&'a str>, EnvelopeError> {
    let all = scan(xml)?;
    let mut out = Vec::new();
    let mut covered = 0;
    for e in &all {
        if e.local == local && e.start >= covered {
            out.push(&xml[e.start..e.end]);
            covered = e.end;
        }
    }
    Ok(out)
}

/// A document parsed once, for several look-ups: [`Parsed::elements`] and
/// [`Node::element_text`] answer what [`elements`] and [`element_text`]
/// answer on the same text, without parsing it again for each.
///
/// ```
/// use ferry_plugin_sdk::envelope::Parsed;
/// let body = "<SalesOrder><SalesTable><Id>1</Id></SalesTable><SalesTable><Id>2</Id></SalesTable></SalesOrder>";
/// let doc = Parsed::new(body).unwrap();
/// let order = doc.elements("SalesOrder")[0];
/// let ids: Vec<_> = order.elements("SalesTable").iter().map(|t| t.element_text("Id")).collect();
/// assert_eq!(ids, vec![Some("1".to_string()), Some("2".to_string())]);
/// ```
pub struct Parsed<'a> {
    xml: &'a str,
    all: Vec<Element<'a>>,
}

/// One element of a [`Parsed`] document.
#[derive(Clone, Copy)]
pub struct Node<'p, 'a> {
    doc: &'p Parsed<'a>,
    index: usize,
}

impl<'a> Parsed<'a> {
    /// Parse `xml` (the errors of [`elements`]).
    pub fn new(xml: &'a str) -> Result<Parsed<'a>, EnvelopeError> {
        Ok(Parsed {
            xml,
            all: scan(xml)?,
        })
    }

    /// Like [`elements`]: every element named `local` that is not inside
    /// another such element, in document order.
    pub fn elements<'p>(&'p self, local: &str) -> Vec<Node<'p, 'a>> {
        self.outermost(0..self.all.len(), local)
    }

    fn outermost<'p>(&'p self, range: std::ops::Range<usize>, local: &str) -> Vec<Node<'p, 'a>> {
        let mut out = Vec::new();
        let mut covered = 0;
        for index in range {
            let e = &self.all[index];
            if e.local == local && e.start >= covered {
                out.push(Node { doc: self, index });
                covered = e.end;
            }
        }
        out
    }
}

impl<'p, 'a> Node<'p, 'a> {
    /// The element's outer XML (start tag to end tag, verbatim).
    pub fn outer(&self) -> &'a str {
        let e = &self.doc.all[self.index];
        &self.doc.xml[e.start..e.end]
    }

    /// The element itself and the elements inside it, as indices (they
    /// follow it in document order).
    fn subtree(&self) -> std::ops::Range<usize> {
        let end = self.doc.all[self.index].end;
        let all = &self.doc.all;
        let mut last = self.index + 1;
        while last < all.len() && all[last].start < end {
            last += 1;
        }
        self.index..last
    }

    /// [`elements`] of this element's outer XML.
    pub fn elements(&self, local: &str) -> Vec<Node<'p, 'a>> {
        self.doc.outermost(self.subtree(), local)
    }

    /// [`element_text`] of this element's outer XML.
    pub fn element_text(&self, local: &str) -> Option<String> {
        let doc = self.doc;
        self.subtree()
            .map(|i| &doc.all[i])
            .find(|e| e.local == local && e.simple)
            .and_then(|e| decode_text(&doc.xml[e.open_end..e.close_start]).ok())
    }
}

/// Whether `xml` is an AIF message envelope: it parses and its root
/// element is named `Envelope`.
pub fn is_envelope(xml: &str) -> bool {
    scan(xml).is_ok_and(|all| envelope(&all).is_ok())
}

/// Whether `xml` is well-formed enough to parse and contains an element
/// named `local`.
pub fn contains_element(xml: &str, local: &str) -> bool {
    scan(xml).is_ok_and(|all| all.iter().any(|e| e.local == local))
}

/// Check that `xml` parses as XML (tags balanced and properly nested).
pub fn check_well_formed(xml: &str) -> Result<(), EnvelopeError> {
    scan(xml).map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PluginError;

    const ENV: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <Header>
    <MessageId>{5603D03A-4380-404D-9F1F-000000000001}</MessageId>
    <Company>dat</Company>
    <Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action>
  </Header>
  <Body>
    <MessageParts>
      <SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder">
        <SalesTable class="entity">
          <CustAccount>EXT-C1</CustAccount>
          <SalesLine class="entity"><ItemId>EXT-001</ItemId><SalesQty>2</SalesQty></SalesLine>
          <SalesLine class="entity"><ItemId>EXT-002</ItemId><SalesQty>1</SalesQty></SalesLine>
        </SalesTable>
      </SalesOrder>
    </MessageParts>
  </Body>
</Envelope>
"#;

    const PREFIXED: &str = r#"<m:Envelope xmlns:m="http://schemas.microsoft.com/dynamics/2011/01/documents/Message"><m:Header><m:Action>a&amp;b</m:Action></m:Header><m:Body><m:MessageParts/></m:Body></m:Envelope>"#;

    #[test]
    fn reads_header_fields() {
        assert_eq!(
            header(ENV, "Action").as_deref(),
            Some("http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create")
        );
        assert_eq!(header(ENV, "Company").as_deref(), Some("dat"));
        assert_eq!(header(ENV, "ConversationId"), None);
        assert_eq!(header(PREFIXED, "Action").as_deref(), Some("a&b"));
        assert_eq!(
            header(
                "<NotEnvelope><Header><Action>x</Action></Header></NotEnvelope>",
                "Action"
            ),
            None
        );
        assert_eq!(
            header("<Envelope><Header><Action>x</Header></Envelope>", "Action"),
            None
        );
        // A field named like a header field but elsewhere is not a header field.
        assert_eq!(header(ENV, "CustAccount"), None);
    }

    #[test]
    fn decodes_references_and_cdata() {
        let doc = "<Envelope><Header><Action>&lt;a&#x41;&#66;&gt;<![CDATA[<c&>]]></Action></Header></Envelope>";
        assert_eq!(header(doc, "Action").as_deref(), Some("<aAB><c&>"));
    }

    #[test]
    fn sets_existing_header_field_verbatim_elsewhere() {
        let out = set_header(ENV, "Company", "A&B").unwrap();
        assert_eq!(
            out,
            ENV.replace("<Company>dat</Company>", "<Company>A&amp;B</Company>")
        );
        assert_eq!(header(&out, "Company").as_deref(), Some("A&B"));
    }

    #[test]
    fn adds_missing_header_field_with_prefix() {
        let out = set_header(ENV, "ConversationId", "conv-1").unwrap();
        assert_eq!(header(&out, "ConversationId").as_deref(), Some("conv-1"));
        assert!(
            out.contains("</Action>\n    <ConversationId>conv-1</ConversationId>\n  </Header>"),
            "{out}"
        );
        let out = set_header(PREFIXED, "Company", "dat").unwrap();
        assert!(
            out.contains("<m:Company>dat</m:Company></m:Header>"),
            "{out}"
        );
        let empty = "<Envelope><Header/><Body/></Envelope>";
        let out = set_header(empty, "Action", "x").unwrap();
        assert_eq!(
            out,
            "<Envelope><Header><Action>x</Action></Header><Body/></Envelope>"
        );
        assert!(set_header("<Envelope><Body/></Envelope>", "Action", "x").is_err());
    }

    #[test]
    fn gets_body_verbatim() {
        let b = body(ENV).unwrap();
        assert!(b.starts_with("\n      <SalesOrder xmlns="));
        assert!(b.ends_with("</SalesOrder>\n    "));
        assert_eq!(body(PREFIXED).unwrap(), "");
        let e = body("<Envelope><Header/></Envelope>").unwrap_err();
        assert!(e.message().contains("<Body>"));
        let e = body("<Batch/>").unwrap_err();
        assert!(e.message().contains("<Batch>"));
        let e = body("<Envelope><Body><MessageParts></Body></Envelope>").unwrap_err();
        assert!(e.message().contains("malformed"), "{e}");
    }

    #[test]
    fn replaces_body() {
        let out = replace_body(ENV, "<X/>").unwrap();
        assert_eq!(body(&out).unwrap(), "<X/>");
        assert_eq!(header(&out, "Action"), header(ENV, "Action"));
        let out = replace_body(PREFIXED, "<X>1</X>").unwrap();
        assert!(
            out.ends_with(
                "<m:Body><m:MessageParts><X>1</X></m:MessageParts></m:Body></m:Envelope>"
            ),
            "{out}"
        );
        let out = map_body::<EnvelopeError, _>(ENV, |b| Ok(b.trim().to_uppercase())).unwrap();
        assert!(body(&out).unwrap().starts_with("<SALESORDER"));
    }

    #[test]
    fn maps_element_text() {
        let mut seen = Vec::new();
        let out =
            map_element_text::<PluginError, _>(ENV, &["ItemId", "CustAccount"], |name, text| {
                seen.push(format!("{name}={text}"));
                Ok(match text {
                    "EXT-001" => Some("1000".into()),
                    "EXT-C1" => Some("C<1>".into()),
                    _ => None,
                })
            })
            .unwrap();
        assert_eq!(
            seen,
            vec!["CustAccount=EXT-C1", "ItemId=EXT-001", "ItemId=EXT-002"]
        );
        let expected = ENV
            .replace("<ItemId>EXT-001</ItemId>", "<ItemId>1000</ItemId>")
            .replace(
                "<CustAccount>EXT-C1</CustAccount>",
                "<CustAccount>C&lt;1&gt;</CustAccount>",
            );
        assert_eq!(out, expected);
    }

    #[test]
    fn map_element_text_errors_and_edge_cases() {
        let err = map_element_text::<PluginError, _>(ENV, &["ItemId"], |_, t| {
            Err(PluginError::rejected(format!("no mapping for {t}")))
        })
        .unwrap_err();
        assert_eq!(err, PluginError::Rejected("no mapping for EXT-001".into()));
        // Empty elements are offered with "" and can be filled.
        let out = map_element_text::<PluginError, _>(
            "<a><b:ItemId x='1' /><ItemId></ItemId></a>",
            &["ItemId"],
            |_, t| {
                assert_eq!(t, "");
                Ok(Some("v".into()))
            },
        )
        .unwrap();
        assert_eq!(out, "<a><b:ItemId x='1'>v</b:ItemId><ItemId>v</ItemId></a>");
        // Elements holding elements are skipped, inner ones mapped.
        let out = map_element_text::<PluginError, _>("<X><X>1</X><!--c--></X>", &["X"], |_, t| {
            Ok(Some(format!("{t}{t}")))
        })
        .unwrap();
        assert_eq!(out, "<X><X>11</X><!--c--></X>");
        // Malformed XML is an error converted into `rejected`.
        let err = map_element_text::<PluginError, _>("<X>", &["X"], |_, _| Ok(None)).unwrap_err();
        assert!(matches!(err, PluginError::Rejected(_)));
    }

    #[test]
    fn finds_elements() {
        assert_eq!(element_text(ENV, "SalesQty").as_deref(), Some("2"));
        assert_eq!(element_text(ENV, "SalesTable"), None);
        assert_eq!(
            element_texts(ENV, "ItemId").unwrap(),
            vec!["EXT-001", "EXT-002"]
        );
        let lines = elements(ENV, "SalesLine").unwrap();
        assert_eq!(lines.len(), 2);
        assert!(lines[0].starts_with("<SalesLine class=\"entity\"><ItemId>EXT-001"));
        assert!(lines[1].ends_with("</SalesLine>"));
        assert!(contains_element(ENV, "SalesOrder"));
        assert!(!contains_element(ENV, "EntityKeyList"));
        assert!(check_well_formed("<a><b></a>").is_err());
        assert!(check_well_formed(ENV).is_ok());
        assert!(is_envelope(ENV) && is_envelope(PREFIXED));
        assert!(!is_envelope("<SalesOrder/>") && !is_envelope("a,b,c"));
    }

    #[test]
    fn escapes() {
        assert_eq!(escape("a<b>&c\"'"), "a&lt;b&gt;&amp;c\"'");
        assert_eq!(escape_attribute("\"'"), "&quot;&apos;");
    }
}
