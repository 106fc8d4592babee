//! A checked, streaming XML event reader: quick-xml's events, plus namespace
//! resolution and the well-formedness checks quick-xml leaves to its user, and
//! error messages with line and column.
//!
//! The common markup (text, references, start, empty and end tags) is
//! tokenized here, over the `&str` directly, with the event boundaries and
//! errors of quick-xml's `Reader` (whose slice reader validates every event's
//! bytes as UTF-8 again and keeps a copy of every open element's name);
//! comments, CDATA sections, DOCTYPEs, processing instructions and the XML
//! declaration (`<!` and `<?`, rare in messages) are read by a quick-xml
//! `Reader` over the rest of the input, one event at a time.
//!
//! Checks on top of quick-xml's (which matches end tags and checks comments):
//! legal XML characters (also in character references), element and attribute
//! names, attribute syntax and duplicates, `<` in attribute values, entity
//! references (only the five predefined entities and character references
//! exist without a DTD), declared namespace prefixes, `]]>` in text, the XML
//! declaration only at the very start, exactly one root element, no text
//! outside it, and a clear message when the document ends inside an element.
//! Namespace declarations follow Namespaces in XML 1.0 (no undeclaring of
//! prefixes; `xml` and `xmlns` reserved). Everything is zero-copy over the
//! input `&str`; the namespace stack is this module's own (it costs less than
//! quick-xml's `NsReader`, which walks every element's attributes once more).

use std::ops::Range;

use quick_xml::XmlVersion;
use quick_xml::errors::{Error as XmlError, IllFormedError, SyntaxError};
use quick_xml::events::attributes::{AttrError, Attribute};
use quick_xml::events::{BytesEnd, BytesRef, BytesStart, BytesText, Event};
use quick_xml::name::{PrefixDeclaration, QName};
use quick_xml::reader::Reader;

use super::EnvelopeError;

/// One event and the byte offset where its markup starts.
pub(super) struct Item<'a> {
    pub event: Event<'a>,
    pub start: usize,
}

/// Namespace bindings in scope at some element: `(prefix, namespace)`, `None`
/// being the default namespace. Namespace names are kept as written (raw
/// attribute values).
pub(super) type Bindings = Vec<(Option<String>, String)>;

const XML_NS: &str = "http://www.w3.org/XML/1998/namespace";
const XMLNS_NS: &str = "http://www.w3.org/2000/xmlns/";

/// A namespace declaration in scope.
struct Binding {
    /// Nesting level of the declaring element (1 = root).
    level: usize,
    /// `None` for the default namespace.
    prefix: Option<Box<str>>,
    /// As written; empty for `xmlns=""` (no default namespace).
    ns: Box<str>,
}

/// The checked reader. Every event goes through [`XmlReader::next`].
pub(super) struct XmlReader<'a> {
    src: &'a str,
    /// Byte offset of the next event.
    pos: usize,
    /// The end of the input was reported.
    done: bool,
    /// Byte ranges (in `src`) of the names of the open elements, outermost first.
    open: Vec<Range<usize>>,
    /// Namespace declarations in scope, in document order.
    bindings: Vec<Binding>,
    /// Level whose declarations go out of scope before the next event (those
    /// of the last `Empty` or `End` element: they stay visible to the caller
    /// until then).
    pending_pop: Option<usize>,
    root_seen: bool,
    root_closed: bool,
    /// Where the body of a written envelope ends (see
    /// [`XmlReader::trust_body_to`]).
    trusted_body_end: Option<usize>,
}

impl<'a> XmlReader<'a> {
    /// A reader over `src` (already BOM-free). Fails at once if `src` holds a
    /// character XML does not allow anywhere.
    pub fn new(src: &'a str) -> Result<Self, EnvelopeError> {
        check_chars(src)?;
        // quick-xml would skip a byte order mark without counting it in its
        // positions; the caller has removed the real one already.
        if src.starts_with('\u{FEFF}') {
            return Err(EnvelopeError::malformed(
                src,
                0,
                "text before the root element: a second byte order mark (U+FEFF)",
            ));
        }
        Ok(Self {
            src,
            pos: 0,
            done: false,
            open: Vec::new(),
            bindings: Vec::new(),
            pending_pop: None,
            root_seen: false,
            root_closed: false,
            trusted_body_end: None,
        })
    }

    /// The whole input.
    pub fn src(&self) -> &'a str {
        self.src
    }

    /// Number of open elements.
    pub fn depth(&self) -> usize {
        self.open.len()
    }

    /// Byte offset just after the last event read.
    pub fn offset(&self) -> usize {
        self.pos
    }

    /// A `Malformed` error at byte `offset`.
    pub fn malformed(&self, offset: usize, reason: impl Into<String>) -> EnvelopeError {
        EnvelopeError::malformed(self.src, offset, reason)
    }

    /// The namespace `prefix` (`None`: the default namespace) is bound to
    /// now; `None` if unbound or undeclared.
    fn lookup(&self, prefix: Option<&str>) -> Option<&str> {
        if prefix == Some("xml") {
            return Some(XML_NS);
        }
        let binding = self
            .bindings
            .iter()
            .rev()
            .find(|b| b.prefix.as_deref() == prefix)?;
        (!binding.ns.is_empty()).then_some(&*binding.ns)
    }

    /// Whether element `name` (of the last `Start`/`Empty`/`End` event, or of
    /// an element still open) is `local` in namespace `ns`.
    pub fn is(&self, name: QName<'_>, ns: &str, local: &str) -> bool {
        let (prefix, name_local) = split_qname(name.into_inner());
        name_local == local && self.lookup(prefix) == Some(ns)
    }

    /// `<local> in namespace ns` of an element name, for messages.
    pub fn expanded(&self, name: QName<'_>) -> String {
        let (prefix, local) = split_qname(name.into_inner());
        match self.lookup(prefix) {
            Some(ns) => format!("<{local}> in namespace {ns}"),
            None => format!("<{local}> in no namespace"),
        }
    }

    /// The namespace of a prefixed attribute name (or QName value) of the
    /// last `Start`/`Empty` element; `None` if unprefixed or undeclared.
    pub fn resolve_prefix(&self, name: QName<'_>) -> Option<String> {
        match split_qname(name.into_inner()) {
            (Some(prefix), _) => self.lookup(Some(prefix)).map(str::to_owned),
            (None, _) => None,
        }
    }

    /// The namespace bindings in scope now.
    pub fn bindings(&self) -> Bindings {
        let mut seen: Vec<Option<&str>> = Vec::new();
        let mut bindings = Bindings::new();
        for b in self.bindings.iter().rev() {
            let prefix = b.prefix.as_deref();
            if seen.contains(&prefix) {
                continue;
            }
            seen.push(prefix);
            if !b.ns.is_empty() {
                bindings.push((prefix.map(str::to_owned), b.ns.to_string()));
            }
        }
        bindings
    }

    /// Reads and checks the next event.
    #[inline(always)]
    pub fn next(&mut self) -> Result<Item<'a>, EnvelopeError> {
        if let Some(level) = self.pending_pop.take() {
            while self.bindings.last().is_some_and(|b| b.level >= level) {
                self.bindings.pop();
            }
        }
        let start = self.pos;
        let event = self.read_event()?;
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                if self.root_closed && self.open.is_empty() {
                    return Err(self.malformed(
                        start,
                        format!(
                            "a second root element <{}>: a document has exactly one root element",
                            e.name().into_inner()
                        ),
                    ));
                }
                let level = self.open.len() + 1;
                self.check_start(e, start, level)?;
                self.root_seen = true;
                if matches!(event, Event::Start(_)) {
                    let name = start + 1..start + 1 + e.name().into_inner().len();
                    self.open.push(name);
                } else {
                    self.pending_pop = Some(level);
                    if self.open.is_empty() {
                        self.root_closed = true;
                    }
                }
            }
            Event::End(_) => {
                self.pending_pop = Some(self.open.len());
                self.open.pop();
                if self.open.is_empty() {
                    self.root_closed = true;
                }
            }
            Event::Text(text) => {
                if self.open.is_empty() && !is_xml_whitespace(text) {
                    let at = start + (text.len() - trim_xml_start(text).len());
                    let reason = if self.root_seen {
                        "text after the end of the root element"
                    } else {
                        "text before the root element (is this XML?)"
                    };
                    return Err(self.malformed(at, reason));
                }
                if text.as_bytes().contains(&b']')
                    && let Some(i) = text.find("]]>")
                {
                    return Err(self.malformed(start + i, "`]]>` is not allowed in text"));
                }
            }
            Event::CData(_) if self.open.is_empty() => {
                return Err(self.malformed(start, "CDATA section outside the root element"));
            }
            Event::GeneralRef(r) => {
                if self.open.is_empty() {
                    return Err(self.malformed(start, "reference outside the root element"));
                }
                self.resolve_ref(r, start)?;
            }
            Event::Decl(_) if start != 0 => {
                return Err(self.malformed(
                    start,
                    "an XML declaration <?xml ...?> is only allowed at the very start \
                     of the document (nothing, not even whitespace, may precede it)",
                ));
            }
            Event::DocType(_) => {
                if self.root_seen || !self.open.is_empty() {
                    return Err(
                        self.malformed(start, "<!DOCTYPE> is only allowed before the root element")
                    );
                }
                return Err(EnvelopeError::invalid(
                    "document type declarations (<!DOCTYPE ...>) are not accepted in AIF messages",
                ));
            }
            Event::Eof => {
                if let Some(name) = self.open.last() {
                    let opened = super::Position::in_text(self.src, name.start.saturating_sub(1));
                    let name = self.src.get(name.clone()).unwrap_or("?");
                    return Err(self.malformed(
                        self.src.len(),
                        format!(
                            "the document ends before </{name}> (<{name}> opened at {opened} \
                             is not closed; is the file truncated?)"
                        ),
                    ));
                }
                if !self.root_seen {
                    let reason = if is_xml_whitespace(self.src) {
                        "the document is empty"
                    } else {
                        "the document has no root element"
                    };
                    return Err(self.malformed(self.src.len(), reason));
                }
            }
            _ => {}
        }
        Ok(Item { event, start })
    }

    /// The next raw event at `self.pos`, as quick-xml's `Reader` (configured
    /// with `check_end_names`, `check_comments`, no trimming, empty elements
    /// not expanded) reads it: same boundaries, same errors at the same
    /// offsets. A reader that has failed is not read further.
    #[inline(always)]
    fn read_event(&mut self) -> Result<Event<'a>, EnvelopeError> {
        let src = self.src;
        let bytes = src.as_bytes();
        let pos = self.pos;
        if pos >= bytes.len() {
            self.done = true;
        }
        if self.done {
            return Ok(Event::Eof);
        }
        match bytes[pos] {
            b'<' => self.read_markup(),
            b'&' => {
                // A reference runs to `;`; `&` or `<` (or the end) first
                // means a lone `&`.
                match find3(bytes, pos + 1, b';', b'&', b'<') {
                    Some(end) if bytes[end] == b';' => {
                        self.pos = end + 1;
                        Ok(Event::GeneralRef(BytesRef::new(&src[pos + 1..end])))
                    }
                    _ => Err(self
                        .malformed(pos, "`&` starts no reference (write &amp; for a literal &)")),
                }
            }
            _ => {
                let end = find2(bytes, pos + 1, b'<', b'&').unwrap_or(bytes.len());
                self.pos = end;
                Ok(Event::Text(BytesText::from_escaped(&src[pos..end])))
            }
        }
    }

    /// Reads the markup starting with the `<` at `self.pos`.
    #[inline(always)]
    fn read_markup(&mut self) -> Result<Event<'a>, EnvelopeError> {
        let src = self.src;
        let bytes = src.as_bytes();
        let pos = self.pos;
        match bytes.get(pos + 1) {
            None => Err(self.malformed(pos, "tag not closed: no `>` before the end")),
            Some(b'!' | b'?') => self.read_by_quick_xml(),
            Some(&second) => {
                let Some(gt) = tag_end(bytes, pos + 1) else {
                    return Err(self.malformed(pos, tag_eof_reason(bytes, pos + 1)));
                };
                if second == b'/' {
                    let content = &src[pos + 2..gt];
                    // Whitespace after the name is allowed (and dropped).
                    let name = match content.bytes().rposition(|b| !is_space_byte(b)) {
                        Some(last) => &content[..=last],
                        None => content,
                    };
                    match self.open.last() {
                        Some(open) if src[open.clone()] == *name => {}
                        Some(open) => {
                            let expected = &src[open.clone()];
                            return Err(self.malformed(
                                pos,
                                format!("expected </{expected}>, found </{name}>"),
                            ));
                        }
                        None => {
                            return Err(self.malformed(
                                pos,
                                format!("</{name}> does not close any open element"),
                            ));
                        }
                    }
                    self.pos = gt + 1;
                    return Ok(Event::End(BytesEnd::new(name)));
                }
                self.pos = gt + 1;
                if bytes[gt - 1] == b'/' && gt - 1 > pos {
                    let content = &src[pos + 1..gt - 1];
                    Ok(Event::Empty(BytesStart::from_content(
                        content,
                        name_len(content),
                    )))
                } else {
                    let content = &src[pos + 1..gt];
                    Ok(Event::Start(BytesStart::from_content(
                        content,
                        name_len(content),
                    )))
                }
            }
        }
    }

    /// Reads one event (`<!...>` or `<?...?>`) with a quick-xml reader over
    /// the rest of the input.
    fn read_by_quick_xml(&mut self) -> Result<Event<'a>, EnvelopeError> {
        let pos = self.pos;
        let mut inner = Reader::from_str(&self.src[pos..]);
        let config = inner.config_mut();
        config.check_end_names = true;
        config.check_comments = true;
        config.expand_empty_elements = false;
        config.trim_text(false);
        match inner.read_event() {
            Ok(event) => {
                self.pos = pos + usize::try_from(inner.buffer_position()).unwrap_or(usize::MAX);
                Ok(event)
            }
            Err(e) => {
                let at = pos + usize::try_from(inner.error_position()).unwrap_or(0);
                Err(self.quick_xml_error(e, at))
            }
        }
    }

    /// The input is an envelope the writer wrote from one this reader
    /// accepted, unchanged since: its body (the content of the first
    /// `MessageParts`) ends at byte `end` and need not be checked again.
    pub fn trust_body_to(&mut self, end: usize) {
        self.trusted_body_end = Some(end);
    }

    /// Inside the first `MessageParts` of a trusted input (see
    /// [`XmlReader::trust_body_to`]): moves past its content without
    /// reading it, and returns where that content ends. `None` otherwise.
    pub fn skip_trusted_body(&mut self) -> Option<usize> {
        let end = self.trusted_body_end.take()?;
        if end < self.pos || !self.src.is_char_boundary(end) {
            return None;
        }
        self.pos = end;
        Some(end)
    }

    /// Reads on to the end of the element whose `Start` event was just read.
    pub fn skip_element(&mut self) -> Result<(), EnvelopeError> {
        self.read_to_close().map(|_| ())
    }

    /// Reads on, checking every event, to the end of the element whose
    /// `Start` event was just read; returns the byte offset where its end
    /// tag starts. (One loop here rather than [`XmlReader::next`] called
    /// from outside: no event is handed out, so none is copied.)
    pub fn read_to_close(&mut self) -> Result<usize, EnvelopeError> {
        let depth = self.depth();
        loop {
            let item = self.next()?;
            if self.depth() < depth {
                return Ok(item.start);
            }
        }
    }

    /// Reads to the end of the document, to find a well-formedness error
    /// after a structural one: returns the first `Malformed` error, if any.
    pub fn first_malformation(&mut self) -> Option<EnvelopeError> {
        loop {
            match self.next() {
                Ok(Item {
                    event: Event::Eof, ..
                }) => return None,
                Ok(_) => {}
                Err(e) if e.is_malformed() => return Some(e),
                // A DOCTYPE: well-formed, keep looking.
                Err(_) => {}
            }
        }
    }

    /// The character a checked reference stands for.
    pub fn resolve_ref(&self, r: &BytesRef<'_>, start: usize) -> Result<char, EnvelopeError> {
        let name: &str = r;
        if name.starts_with('#') {
            return match r.resolve_char_ref() {
                Ok(Some(c)) if is_xml_char(c) => Ok(c),
                Ok(Some(c)) => Err(self.malformed(
                    start,
                    format!(
                        "character reference &{name}; is U+{:04X}, which XML does not allow",
                        u32::from(c)
                    ),
                )),
                _ => Err(self.malformed(start, format!("invalid character reference &{name};"))),
            };
        }
        match name {
            "amp" => Ok('&'),
            "lt" => Ok('<'),
            "gt" => Ok('>'),
            "apos" => Ok('\''),
            "quot" => Ok('"'),
            _ => Err(self.malformed(
                start,
                format!(
                    "unknown entity &{name};: only &amp; &lt; &gt; &apos; &quot; and \
                     character references are defined (write &amp; for a literal &)"
                ),
            )),
        }
    }

    /// Byte offset in the input of `part`, a slice borrowed from it.
    fn offset_of(&self, part: &str) -> Option<usize> {
        let offset = (part.as_ptr() as usize).checked_sub(self.src.as_ptr() as usize)?;
        (offset + part.len() <= self.src.len()).then_some(offset)
    }

    /// Checks a start tag at nesting `level` and brings its namespace
    /// declarations into scope.
    fn check_start(
        &mut self,
        e: &BytesStart<'_>,
        start: usize,
        level: usize,
    ) -> Result<(), EnvelopeError> {
        let name = e.name().into_inner();
        if !is_qname(name) {
            let reason = if name.is_empty() {
                "`<` must be followed by an element name (write &lt; for a literal <)".to_owned()
            } else {
                format!("invalid element name `{name}`")
            };
            return Err(self.malformed(start + 1, reason));
        }
        // Attribute offsets from quick-xml count from the byte after `<`.
        let base = start + 1;
        // Prefixed attribute names, resolved once all declarations are in.
        let mut prefixed: Vec<(usize, &str)> = Vec::new();
        for attr in e.attributes() {
            let attr = attr.map_err(|err| {
                self.malformed(base + attr_error_offset(&err), attr_error_text(&err, name))
            })?;
            self.check_attribute(&attr, base, name, level, &mut prefixed)?;
        }
        if has_colon(name) {
            let (prefix, _) = split_qname(name);
            if self.lookup(prefix).is_none() {
                let prefix = prefix.unwrap_or_default();
                return Err(self.malformed(
                    start + 1,
                    format!("namespace prefix `{prefix}` of <{name}> is not declared"),
                ));
            }
        }
        for (at, key) in prefixed {
            let (prefix, _) = split_qname(key);
            if self.lookup(prefix).is_none() {
                let prefix = prefix.unwrap_or_default();
                return Err(self.malformed(
                    at,
                    format!(
                        "namespace prefix `{prefix}` of attribute `{key}` in <{name}> is not declared"
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Checks one attribute of element `name` (at nesting `level`): its
    /// name and value, and a namespace declaration, which comes into scope.
    /// Prefixed names are noted in `prefixed`, to be resolved once all the
    /// element's declarations are in.
    fn check_attribute<'k>(
        &mut self,
        attr: &Attribute<'k>,
        base: usize,
        name: &str,
        level: usize,
        prefixed: &mut Vec<(usize, &'k str)>,
    ) -> Result<(), EnvelopeError> {
        let key = attr.key.into_inner();
        let raw: &str = &attr.value;
        let at = self.offset_of(raw).unwrap_or(base);
        if !is_qname(key) {
            return Err(self.malformed(at, format!("invalid attribute name `{key}` in <{name}>")));
        }
        if raw.bytes().any(|b| b == b'<' || b == b'&') {
            self.check_attribute_value(attr, at, name)?;
        }
        match attr.key.as_namespace_binding() {
            Some(declared) => {
                let prefix = match declared {
                    PrefixDeclaration::Default => None,
                    PrefixDeclaration::Named(p) => Some(p),
                };
                if let Some(problem) = declaration_problem(prefix, raw) {
                    return Err(self.malformed(at, format!("{problem} (in <{name}>)")));
                }
                if prefix != Some("xml") {
                    self.bindings.push(Binding {
                        level,
                        prefix: prefix.map(Box::from),
                        ns: Box::from(raw),
                    });
                }
            }
            None if has_colon(key) => prefixed.push((at, key)),
            None => {}
        }
        Ok(())
    }

    /// Checks an attribute value holding `<` or `&`.
    fn check_attribute_value(
        &self,
        attr: &Attribute<'_>,
        at: usize,
        element: &str,
    ) -> Result<(), EnvelopeError> {
        let key = attr.key.into_inner();
        let raw: &str = &attr.value;
        if let Some(i) = raw.find('<') {
            return Err(self.malformed(
                at + i,
                format!("`<` in the value of attribute `{key}` of <{element}> (write &lt;)"),
            ));
        }
        let i = raw.find('&').unwrap_or(0);
        match attr.normalized_value(XmlVersion::Implicit1_0) {
            Ok(value) if value.chars().all(is_xml_char) => Ok(()),
            Ok(_) => Err(self.malformed(
                at + i,
                format!(
                    "a character reference in attribute `{key}` of <{element}> is not a legal XML character"
                ),
            )),
            Err(_) => Err(self.malformed(
                at + i,
                format!(
                    "bad reference in attribute `{key}` of <{element}>: only &amp; &lt; &gt; \
                     &apos; &quot; and character references are defined"
                ),
            )),
        }
    }

    /// The error quick-xml reported at byte `at`, in this reader's words.
    fn quick_xml_error(&self, e: XmlError, at: usize) -> EnvelopeError {
        let reason = match &e {
            XmlError::IllFormed(ill) => match ill {
                IllFormedError::MismatchedEndTag { expected, found } => {
                    format!("expected </{expected}>, found </{found}>")
                }
                IllFormedError::UnmatchedEndTag(name) => {
                    format!("</{name}> does not close any open element")
                }
                IllFormedError::MissingEndTag(name) => {
                    format!("the document ends before </{name}>")
                }
                IllFormedError::DoubleHyphenInComment => {
                    "`--` is not allowed inside a comment".to_owned()
                }
                IllFormedError::UnclosedReference => {
                    "`&` starts no reference (write &amp; for a literal &)".to_owned()
                }
                IllFormedError::MissingDeclVersion(_) => {
                    "the XML declaration must start with version=\"1.0\"".to_owned()
                }
                IllFormedError::UnknownVersion => {
                    "the XML declaration names an unknown XML version".to_owned()
                }
                other => other.to_string(),
            },
            XmlError::Syntax(syntax) => match syntax {
                SyntaxError::InvalidBangMarkup => {
                    "`<!` starts no comment, CDATA section or DOCTYPE".to_owned()
                }
                SyntaxError::UnclosedPI => {
                    "processing instruction not closed: no `?>` before the end".to_owned()
                }
                SyntaxError::UnclosedXmlDecl => {
                    "XML declaration not closed: no `?>` before the end".to_owned()
                }
                SyntaxError::UnclosedComment => {
                    "comment not closed: no `-->` before the end".to_owned()
                }
                SyntaxError::UnclosedDoctype => {
                    "<!DOCTYPE> not closed: no `>` before the end".to_owned()
                }
                SyntaxError::UnclosedCData => {
                    "CDATA section not closed: no `]]>` before the end".to_owned()
                }
                SyntaxError::UnclosedTag => "tag not closed: no `>` before the end".to_owned(),
                SyntaxError::UnclosedSingleQuotedAttributeValue
                | SyntaxError::UnclosedDoubleQuotedAttributeValue => {
                    "attribute value not closed: no closing quote before the end".to_owned()
                }
            },
            XmlError::Namespace(ns) => format!("namespace error: {ns}"),
            other => other.to_string(),
        };
        self.malformed(at, reason)
    }
}

/// XML whitespace, as a byte.
fn is_space_byte(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// Length of the name at the start of a tag's content: up to the first
/// whitespace (quick-xml's rule; the name is checked afterwards).
fn name_len(content: &str) -> usize {
    content
        .bytes()
        .position(is_space_byte)
        .unwrap_or(content.len())
}

/// The first `a` or `b` in `bytes[from..]`.
fn find2(bytes: &[u8], from: usize, a: u8, b: u8) -> Option<usize> {
    find_by(
        bytes,
        from,
        |w| has_byte(w, a) | has_byte(w, b),
        |x| x == a || x == b,
    )
}

/// The first `a`, `b` or `c` in `bytes[from..]`.
fn find3(bytes: &[u8], from: usize, a: u8, b: u8, c: u8) -> Option<usize> {
    find_by(
        bytes,
        from,
        |w| has_byte(w, a) | has_byte(w, b) | has_byte(w, c),
        |x| x == a || x == b || x == c,
    )
}

const LOW_BITS: u64 = u64::from_ne_bytes([0x01; 8]);
const HIGH_BITS: u64 = u64::from_ne_bytes([0x80; 8]);

/// Non-zero if a byte of `word` is `byte`; the lowest flagged byte is the
/// first match (flags above a match may be false).
fn has_byte(word: u64, byte: u8) -> u64 {
    let x = word ^ (LOW_BITS * u64::from(byte));
    x.wrapping_sub(LOW_BITS) & !x & HIGH_BITS
}

/// The first byte of `bytes[from..]` that `one` accepts, eight bytes at a
/// time while `flags` (the same test on a little-endian word) finds none:
/// names and values in messages are short, so this beats a `memchr` call.
fn find_by(
    bytes: &[u8],
    from: usize,
    flags: impl Fn(u64) -> u64,
    one: impl Fn(u8) -> bool,
) -> Option<usize> {
    let mut i = from;
    while i + 8 <= bytes.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&bytes[i..i + 8]);
        let found = flags(u64::from_le_bytes(word));
        if found != 0 {
            return Some(i + (found.trailing_zeros() / 8) as usize);
        }
        i += 8;
    }
    bytes.get(i..)?.iter().position(|&x| one(x)).map(|j| i + j)
}

/// The `>` that ends the tag whose content starts at `from` (just after its
/// `<`): the first `>` outside quotes (quick-xml's `ElementParser`).
fn tag_end(bytes: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    loop {
        let at = find3(bytes, i, b'>', b'"', b'\'')?;
        let quote = bytes[at];
        if quote == b'>' {
            return Some(at);
        }
        i = find2(bytes, at + 1, quote, quote)? + 1;
    }
}

/// Why a tag whose content starts at `from` has no end.
fn tag_eof_reason(bytes: &[u8], from: usize) -> &'static str {
    let mut quote = 0u8;
    for &b in &bytes[from..] {
        match b {
            b'"' | b'\'' if quote == 0 => quote = b,
            _ if b == quote => quote = 0,
            _ => {}
        }
    }
    if quote == 0 {
        "tag not closed: no `>` before the end"
    } else {
        "attribute value not closed: no closing quote before the end"
    }
}

fn attr_error_offset(e: &AttrError) -> usize {
    match *e {
        AttrError::ExpectedEq(at)
        | AttrError::ExpectedValue(at)
        | AttrError::UnquotedValue(at)
        | AttrError::ExpectedQuote(at, _)
        | AttrError::Duplicated(at, _) => at,
    }
}

fn attr_error_text(e: &AttrError, element: &str) -> String {
    match e {
        AttrError::ExpectedEq(_) => format!("expected `=` after an attribute name in <{element}>"),
        AttrError::ExpectedValue(_) => format!("expected a quoted attribute value in <{element}>"),
        AttrError::UnquotedValue(_) | AttrError::ExpectedQuote(..) => {
            format!("attribute values must be quoted, in <{element}>")
        }
        AttrError::Duplicated(..) => format!("an attribute appears twice in <{element}>"),
    }
}

/// Fails at the first character XML 1.0 does not allow anywhere: C0 controls
/// other than tab, LF and CR, and U+FFFE / U+FFFF.
fn check_chars(src: &str) -> Result<(), EnvelopeError> {
    const CHUNK: usize = 64;
    let bytes = src.as_bytes();
    for (n, chunk) in bytes.chunks(CHUNK).enumerate() {
        // Branch-free (vectorized) screening; the exact check only where needed.
        let suspect = chunk.iter().fold(false, |acc, &b| {
            acc | (b < 0x20 && b != b'\t' && b != b'\n' && b != b'\r') | (b == 0xEF)
        });
        if !suspect {
            continue;
        }
        for (j, &b) in chunk.iter().enumerate() {
            let i = n * CHUNK + j;
            let bad = match b {
                b'\t' | b'\n' | b'\r' => false,
                0..0x20 => true,
                0xEF => {
                    bytes.get(i + 1) == Some(&0xBF) && matches!(bytes.get(i + 2), Some(0xBE | 0xBF))
                }
                _ => false,
            };
            if bad {
                let c = src[i..].chars().next().map_or(0, u32::from);
                return Err(EnvelopeError::malformed(
                    src,
                    i,
                    format!("character U+{c:04X} is not allowed in XML"),
                ));
            }
        }
    }
    Ok(())
}

/// `Char` of XML 1.0.
pub(super) fn is_xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..)
}

/// XML whitespace: space, tab, CR, LF.
pub(super) fn is_xml_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

/// Whether `s` is empty or only XML whitespace.
pub(super) fn is_xml_whitespace(s: &str) -> bool {
    s.chars().all(is_xml_space)
}

fn trim_xml_start(s: &str) -> &str {
    s.trim_start_matches(is_xml_space)
}

fn is_name_start_char(c: char) -> bool {
    matches!(c,
        'A'..='Z' | '_' | 'a'..='z'
        | '\u{C0}'..='\u{D6}' | '\u{D8}'..='\u{F6}' | '\u{F8}'..='\u{2FF}'
        | '\u{370}'..='\u{37D}' | '\u{37F}'..='\u{1FFF}' | '\u{200C}'..='\u{200D}'
        | '\u{2070}'..='\u{218F}' | '\u{2C00}'..='\u{2FEF}' | '\u{3001}'..='\u{D7FF}'
        | '\u{F900}'..='\u{FDCF}' | '\u{FDF0}'..='\u{FFFD}' | '\u{10000}'..='\u{EFFFF}')
}

fn is_name_char(c: char) -> bool {
    is_name_start_char(c)
        || matches!(c, '-' | '.' | '0'..='9' | '\u{B7}' | '\u{300}'..='\u{36F}' | '\u{203F}'..='\u{2040}')
}

/// `NCName` of Namespaces in XML: a name without `:`.
pub(super) fn is_ncname(s: &str) -> bool {
    if s.is_ascii() {
        let b = s.as_bytes();
        return b
            .first()
            .is_some_and(|c| c.is_ascii_alphabetic() || *c == b'_')
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'.'));
    }
    let mut chars = s.chars();
    chars.next().is_some_and(is_name_start_char) && chars.all(is_name_char)
}

/// What is wrong with declaring `prefix` (`None`: default namespace) as
/// `ns`, per Namespaces in XML 1.0.
fn declaration_problem(prefix: Option<&str>, ns: &str) -> Option<String> {
    match prefix {
        Some("xmlns") => Some("the prefix `xmlns` cannot be declared".to_owned()),
        Some("xml") if ns != XML_NS => {
            Some(format!("the prefix `xml` can only be bound to {XML_NS}"))
        }
        Some("xml") => None,
        Some(p) if ns.is_empty() => Some(format!(
            "xmlns:{p}=\"\": a prefix cannot be bound to an empty namespace"
        )),
        _ if ns == XML_NS || ns == XMLNS_NS => Some(format!("{ns} cannot be declared")),
        _ => None,
    }
}

/// `(prefix, local name)` of a QName.
fn split_qname(name: &str) -> (Option<&str>, &str) {
    match name.split_once(':') {
        Some((prefix, local)) => (Some(prefix), local),
        None => (None, name),
    }
}

/// Whether a (short) name has a `:`; cheaper than a `memchr` call.
fn has_colon(name: &str) -> bool {
    name.bytes().any(|b| b == b':')
}

/// Byte classes of ASCII name characters, for [`is_qname`].
const NAME_START: u8 = 1;
const NAME_REST: u8 = 2;
const COLON: u8 = 3;
const NON_ASCII: u8 = 4;
const NAME_CLASS: [u8; 256] = {
    let mut class = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        class[b] = if c.is_ascii_alphabetic() || c == b'_' {
            NAME_START
        } else if c.is_ascii_digit() || c == b'-' || c == b'.' {
            NAME_REST
        } else if c == b':' {
            COLON
        } else if c >= 0x80 {
            NON_ASCII
        } else {
            0
        };
        b += 1;
    }
    class
};

/// `QName` of Namespaces in XML: `NCName` or `NCName:NCName`.
fn is_qname(s: &str) -> bool {
    // One pass over ASCII names (nearly all of them), by table.
    let mut at_start = true;
    let mut colons = 0;
    for &b in s.as_bytes() {
        match NAME_CLASS[usize::from(b)] {
            NAME_START => {}
            NAME_REST if !at_start => {}
            COLON if !at_start => {
                colons += 1;
                at_start = true;
                continue;
            }
            NON_ASCII => return is_qname_unicode(s),
            _ => return false,
        }
        at_start = false;
    }
    colons <= 1 && !at_start
}

fn is_qname_unicode(s: &str) -> bool {
    match s.split_once(':') {
        Some((prefix, local)) => is_ncname(prefix) && is_ncname(local),
        None => is_ncname(s),
    }
}
