//! The documents a rule gets (`ferry:plugin/documents` of `wit/ferry.wit`):
//! parsed by the host when the guest first asks for a header field or for
//! elements — a rule that asks nothing costs no parse — and edited by the
//! host: the guest records edits, the host applies them when the rule's
//! result for the document is `ok`.
//!
//! Each document of a batch is one entry of [`Batch`], kept in the store's
//! state; the guest's handle is the entry's index (its `rep`), so handing a
//! batch over allocates nothing per document in the host.

use std::borrow::Cow;
use std::cell::OnceCell;

use ferry_xml_index::Element;

/// The resource type of a document handle (`ferry:plugin/documents.document`);
/// its `rep` is the document's index in the current [`Batch`].
pub struct DocRef;

/// A document handed to a rule, or handed back by it: its name and text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Document {
    /// The name of the message it came from (e.g. the file name).
    pub name: String,
    /// Its text.
    pub content: String,
}

impl Document {
    /// A document named `name` with text `content`.
    pub fn new(name: impl Into<String>, content: impl Into<String>) -> Document {
        Document {
            name: name.into(),
            content: content.into(),
        }
    }
}

/// A parsed document: its elements in document order, and where the
/// envelope's parts are.
#[derive(Debug)]
struct Index {
    elements: Vec<Element>,
    /// The root element is `Envelope`.
    envelope: bool,
    header: Option<usize>,
    parts: Option<usize>,
}

fn scan(xml: &str) -> Result<Index, String> {
    let elements = ferry_xml_index::scan(xml)
        .map_err(|e| format!("the document is not well-formed XML: {e}"))?;
    if elements.is_empty() {
        return Err("the document is not XML: it holds no element".to_string());
    }
    let child = |parent, local| child(&elements, xml, parent, local);
    let root = elements.iter().position(|e| e.parent().is_none());
    let envelope = root.is_some_and(|r| elements[r].local(xml) == "Envelope");
    let (mut header, mut parts) = (None, None);
    if envelope {
        header = child(root, "Header");
        parts = child(root, "Body").and_then(|b| child(Some(b), "MessageParts"));
    }
    Ok(Index {
        elements,
        envelope,
        header,
        parts,
    })
}

/// The element named `local` whose parent is `parent` (the first).
fn child(elements: &[Element], xml: &str, parent: Option<usize>, local: &str) -> Option<usize> {
    elements
        .iter()
        .position(|e| e.parent() == parent && e.is_named(xml, local))
}

/// The text inside an element made of text, references and CDATA only.
fn decode_text(inner: &str) -> Result<String, String> {
    ferry_xml_index::decode_text(inner)
        .map(Cow::into_owned)
        .map_err(|e| format!("malformed XML text: {e}"))
}

/// Text escaped for element content.
fn escape(text: &str) -> Cow<'_, str> {
    quick_xml::escape::partial_escape(text)
}

/// The local names from the root to element `i`, `/`-separated.
fn path(text: &str, elements: &[Element], i: usize) -> String {
    let mut names: Vec<&str> = Vec::with_capacity(16);
    let mut at = Some(i);
    while let Some(e) = at {
        names.push(elements[e].local(text));
        at = elements[e].parent();
    }
    let mut out = String::with_capacity(names.iter().map(|n| n.len() + 1).sum());
    for name in names.iter().rev() {
        if !out.is_empty() {
            out.push('/');
        }
        out.push_str(name);
    }
    out
}

/// An element as the guest sees it (`documents.element`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElementView {
    /// Its number in the document.
    pub id: u32,
    /// Its text when it holds text only.
    pub text: Option<String>,
    /// Where its start tag begins.
    pub start: u32,
    /// Where its end tag ends.
    pub end: u32,
}

/// An edit a rule asked for.
#[derive(Debug, Clone)]
enum Edit {
    SetText(u32, String),
    SetHeader(String, String),
    Remove(u32),
}

/// One document of the batch in a call, with what the rule did to it.
#[derive(Debug)]
pub struct Entry {
    doc: Document,
    index: OnceCell<Result<Index, String>>,
    edits: Vec<Edit>,
    replaced: Option<String>,
    /// Bytes of text the edits and replacement hold (a quota).
    pub held: u64,
    /// A misuse to fail the document with (an edit after `replace`).
    problem: Option<String>,
}

impl Entry {
    fn new(doc: Document) -> Entry {
        Entry {
            doc,
            index: OnceCell::new(),
            edits: Vec::new(),
            replaced: None,
            held: 0,
            problem: None,
        }
    }

    fn index(&self) -> Result<&Index, String> {
        self.index
            .get_or_init(|| scan(&self.doc.content))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The document's name.
    pub fn name(&self) -> &str {
        &self.doc.name
    }

    /// The document's text as handed over.
    pub fn text(&self) -> &str {
        &self.doc.content
    }

    /// Whether it is an AIF envelope.
    pub fn is_envelope(&self) -> bool {
        self.index().is_ok_and(|i| i.envelope)
    }

    /// A header field's text.
    pub fn header(&self, field: &str) -> Result<Option<String>, String> {
        let text = &self.doc.content;
        let index = self.index()?;
        let Some(h) = index.header else {
            return Ok(None);
        };
        let Some(f) = child(&index.elements, text, Some(h), field).map(|f| &index.elements[f])
        else {
            return Ok(None);
        };
        if !f.simple {
            return Err(format!(
                "header field <{}> holds elements, not text",
                f.qname(text)
            ));
        }
        decode_text(f.inner(text)).map(Some)
    }

    /// The XML inside `Body/MessageParts`.
    pub fn body(&self) -> Result<Option<String>, String> {
        let index = self.index()?;
        Ok(index.parts.map(|p| {
            let e = &index.elements[p];
            e.inner(&self.doc.content).to_string()
        }))
    }

    /// The elements named `name`: in an envelope's body only unless
    /// `anywhere`.
    pub fn elements(&self, name: &str, anywhere: bool) -> Result<Vec<ElementView>, String> {
        let text = &self.doc.content;
        let index = self.index()?;
        let within = match (anywhere, index.envelope, index.parts) {
            (true, _, _) | (false, false, _) => None,
            (false, true, Some(p)) => {
                let e = &index.elements[p];
                Some((e.open_end(), e.close_start()))
            }
            // An envelope without a body has no body elements.
            (false, true, None) => return Ok(Vec::new()),
        };
        let mut out = Vec::with_capacity(8);
        for (i, e) in index.elements.iter().enumerate() {
            if !e.is_named(text, name) {
                continue;
            }
            if let Some((from, to)) = within
                && !(e.start() >= from && e.end() <= to)
            {
                continue;
            }
            out.push(ElementView {
                id: i as u32,
                text: if e.simple {
                    Some(decode_text(e.inner(text))?)
                } else {
                    None
                },
                start: e.start() as u32,
                end: e.end() as u32,
            });
        }
        Ok(out)
    }

    /// The local names from the root to element `id`, `/`-separated;
    /// `None` for an id the document has no element of (or a text that is
    /// not well-formed XML).
    pub fn path(&self, id: u32) -> Option<String> {
        let index = self.index().ok()?;
        let i = id as usize;
        (i < index.elements.len()).then(|| path(&self.doc.content, &index.elements, i))
    }

    fn edit(&mut self, edit: Edit, bytes: usize) {
        self.held += bytes as u64;
        if self.replaced.is_some() {
            self.problem.get_or_insert_with(|| {
                "the rule edited the document after replacing its text".to_string()
            });
            return;
        }
        self.edits.push(edit);
    }

    /// Record `set-text`.
    pub fn set_text(&mut self, id: u32, text: String) {
        let n = text.len();
        self.edit(Edit::SetText(id, text), n);
    }

    /// Record `set-header`.
    pub fn set_header(&mut self, field: String, value: String) {
        let n = field.len() + value.len();
        self.edit(Edit::SetHeader(field, value), n);
    }

    /// Record `remove`.
    pub fn remove(&mut self, id: u32) {
        self.edit(Edit::Remove(id), 0);
    }

    /// Record `replace`.
    pub fn replace(&mut self, text: String) {
        self.held += text.len() as u64;
        self.edits.clear();
        self.replaced = Some(text);
    }

    /// The document as the rule left it: the replacement, or the text with
    /// the edits applied, or the document unchanged; an error when an edit
    /// cannot be applied.
    pub fn finish(self) -> Result<Document, String> {
        if let Some(p) = self.problem {
            return Err(p);
        }
        if let Some(text) = self.replaced {
            return Ok(Document {
                name: self.doc.name,
                content: text,
            });
        }
        if self.edits.is_empty() {
            return Ok(self.doc);
        }
        let content = apply_edits(&self.doc.content, self.index()?, &self.edits)?;
        Ok(Document {
            name: self.doc.name,
            content,
        })
    }

    /// The document as it was handed over (for a retry).
    pub fn into_original(self) -> Document {
        self.doc
    }
}

/// A replacement of `range` by `with`; an insertion has an empty range.
struct Splice<'a> {
    from: usize,
    to: usize,
    with: Cow<'a, str>,
    /// The edit it comes from (its index), named only in an error.
    edit: usize,
}

/// How an error names `edit`.
fn describe(edit: &Edit, index: &Index, text: &str) -> String {
    let element = |id: u32| {
        index
            .elements
            .get(id as usize)
            .map_or("?", |e| e.qname(text))
    };
    match edit {
        Edit::SetText(id, _) => format!("set-text of <{}> (element {id})", element(*id)),
        Edit::Remove(id) => format!("remove of <{}> (element {id})", element(*id)),
        Edit::SetHeader(field, _) => format!("set-header of {field}"),
    }
}

/// The splice that makes `content` the content of `e`.
fn content_splice<'a>(text: &str, e: &Element, content: Cow<'a, str>, edit: usize) -> Splice<'a> {
    if e.empty {
        let tag = &text[e.start()..e.open_end()];
        let open = tag.trim_end_matches('>').trim_end_matches('/').trim_end();
        Splice {
            from: e.start(),
            to: e.end(),
            with: Cow::Owned(format!("{open}>{content}</{}>", e.qname(text))),
            edit,
        }
    } else {
        Splice {
            from: e.open_end(),
            to: e.close_start(),
            with: content,
            edit,
        }
    }
}

fn apply_edits(text: &str, index: &Index, edits: &[Edit]) -> Result<String, String> {
    let element = |id: u32, n: usize| {
        index.elements.get(id as usize).ok_or_else(|| {
            format!(
                "{}: the document has no element {id} (it has {})",
                describe(&edits[n], index, text),
                index.elements.len()
            )
        })
    };
    let mut splices: Vec<Splice> = Vec::with_capacity(edits.len());
    for (n, edit) in edits.iter().enumerate() {
        let splice = match edit {
            Edit::SetText(id, value) => content_splice(text, element(*id, n)?, escape(value), n),
            Edit::Remove(id) => {
                let e = element(*id, n)?;
                Splice {
                    from: e.start(),
                    to: e.end(),
                    with: Cow::Borrowed(""),
                    edit: n,
                }
            }
            Edit::SetHeader(field, value) => {
                let what = || describe(edit, index, text);
                if field.is_empty()
                    || field.contains(|c: char| c.is_whitespace() || "<>&/:\"'=".contains(c))
                {
                    return Err(format!("{}: {field:?} is not an element name", what()));
                }
                let h = match index.header {
                    Some(h) => h,
                    None if index.envelope => {
                        return Err(format!("{}: the envelope has no <Header>", what()));
                    }
                    None => {
                        return Err(format!("{}: the document is not an AIF envelope", what()));
                    }
                };
                let escaped = escape(value);
                let found =
                    child(&index.elements, text, Some(h), field).map(|f| &index.elements[f]);
                match found {
                    Some(f) => content_splice(text, f, escaped, n),
                    None => {
                        let he = &index.elements[h];
                        let prefix = he.qname(text).strip_suffix(he.local(text)).unwrap_or("");
                        let new_field = format!("<{prefix}{field}>{escaped}</{prefix}{field}>");
                        if he.empty {
                            content_splice(text, he, Cow::Owned(new_field), n)
                        } else {
                            // After the last field, indented like it; else
                            // just before `</Header>`.
                            match index.elements.iter().rfind(|e| e.parent() == Some(h)) {
                                Some(l) => {
                                    let before = &text[..l.start()];
                                    let trimmed = before.trim_end_matches([' ', '\t', '\r', '\n']);
                                    Splice {
                                        from: l.end(),
                                        to: l.end(),
                                        with: Cow::Owned(format!(
                                            "{}{new_field}",
                                            &before[trimmed.len()..]
                                        )),
                                        edit: n,
                                    }
                                }
                                None => Splice {
                                    from: he.close_start(),
                                    to: he.close_start(),
                                    with: Cow::Owned(new_field),
                                    edit: n,
                                },
                            }
                        }
                    }
                }
            }
        };
        // A later edit of the same range wins.
        splices.retain(|s| !(s.from == splice.from && s.to == splice.to && s.from != s.to));
        splices.push(splice);
    }
    splices.sort_by_key(|s| (s.from, s.to));
    let grows: usize = splices.iter().map(|s| s.with.len()).sum();
    let mut out = String::with_capacity(text.len() + grows);
    let mut at = 0;
    for s in &splices {
        if s.from < at {
            return Err(format!(
                "{}: it falls inside what another edit of the same document replaced or removed",
                describe(&edits[s.edit], index, text)
            ));
        }
        out.push_str(&text[at..s.from]);
        out.push_str(&s.with);
        at = s.to;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

/// The documents of the call in progress.
#[derive(Debug, Default)]
pub struct Batch {
    entries: Vec<Entry>,
}

impl Batch {
    /// A batch of `docs`.
    pub fn new(docs: Vec<Document>) -> Batch {
        Batch {
            entries: docs.into_iter().map(Entry::new).collect(),
        }
    }

    /// The document a guest handle stands for.
    pub fn get(&self, rep: u32) -> Option<&Entry> {
        self.entries.get(rep as usize)
    }

    /// The document a guest handle stands for, to edit.
    pub fn get_mut(&mut self, rep: u32) -> Option<&mut Entry> {
        self.entries.get_mut(rep as usize)
    }

    /// The entries, in order.
    pub fn into_entries(self) -> Vec<Entry> {
        self.entries
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <Header>
    <MessageId>{5603D03A-4380-404D-9F1F-000000000001}</MessageId>
    <Action>urn:x/SalesOrderService/create</Action>
  </Header>
  <Body>
    <MessageParts><SalesOrder><Company>body</Company><ItemId>A&amp;B</ItemId><ItemId>X</ItemId><Note/><Free><![CDATA[<c>]]></Free></SalesOrder></MessageParts>
  </Body>
</Envelope>
"#;

    fn entry(text: &str) -> Entry {
        Entry::new(Document::new("d.xml", text))
    }

    #[test]
    fn reads_header_body_and_elements() {
        let e = entry(ENV);
        assert!(e.is_envelope());
        assert_eq!(
            e.header("Action").unwrap().as_deref(),
            Some("urn:x/SalesOrderService/create")
        );
        assert_eq!(e.header("Company").unwrap(), None);
        assert!(e.body().unwrap().unwrap().starts_with("<SalesOrder>"));
        let items = e.elements("ItemId", false).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].text.as_deref(), Some("A&B"));
        assert_eq!(
            e.path(items[0].id).as_deref(),
            Some("Envelope/Body/MessageParts/SalesOrder/ItemId")
        );
        assert_eq!(e.path(0).as_deref(), Some("Envelope"));
        assert_eq!(e.path(10_000), None);
        assert_eq!(entry("<a>").path(0), None, "not well-formed: no paths");
        assert_eq!(
            &ENV[items[1].start as usize..items[1].end as usize],
            "<ItemId>X</ItemId>"
        );
        assert_eq!(
            e.elements("Free", false).unwrap()[0].text.as_deref(),
            Some("<c>")
        );
        // Body only, unless anywhere.
        assert!(e.elements("MessageId", false).unwrap().is_empty());
        assert_eq!(e.elements("MessageId", true).unwrap().len(), 1);
        assert_eq!(e.elements("SalesOrder", false).unwrap()[0].text, None);
    }

    #[test]
    fn applies_edits_in_document_order() {
        let mut e = entry(ENV);
        let items = e.elements("ItemId", false).unwrap();
        let note = e.elements("Note", false).unwrap()[0].id;
        e.set_text(items[1].id, "1<2".into());
        e.set_text(items[0].id, "first".into());
        e.set_text(items[0].id, "1000".into());
        e.remove(e.elements("Company", false).unwrap()[0].id);
        e.set_text(note, "n".into());
        e.set_header("Company".into(), "dat".into());
        let out = e.finish().unwrap().content;
        assert!(
            out.contains("<SalesOrder><ItemId>1000</ItemId><ItemId>1&lt;2</ItemId><Note>n</Note>"),
            "{out}"
        );
        assert!(out.contains("<Action>urn:x/SalesOrderService/create</Action>\n    <Company>dat</Company>\n  </Header>"), "{out}");
        let again = entry(&out);
        assert_eq!(again.header("Company").unwrap().as_deref(), Some("dat"));
    }

    #[test]
    fn a_document_without_edits_comes_back_as_it_was() {
        let e = entry("not xml at all, a CSV line");
        assert!(!e.is_envelope());
        assert!(e.elements("X", false).unwrap_err().contains("not XML"));
        assert!(
            entry("<a><b></a>")
                .header("X")
                .unwrap_err()
                .contains("not well-formed")
        );
        assert_eq!(e.finish().unwrap().content, "not xml at all, a CSV line");
    }

    #[test]
    fn a_text_with_an_unknown_reference_fails_the_question_with_the_reason() {
        let e = entry(
            "<Envelope><Header><Company>&bogus;</Company></Header><Body><MessageParts><A>&#0;</A></MessageParts></Body></Envelope>",
        );
        assert!(e.is_envelope());
        let header = e.header("Company").unwrap_err();
        assert!(header.contains("unknown entity &bogus;"), "{header}");
        let body = e.elements("A", false).unwrap_err();
        assert!(body.contains("bad character reference &#0;"), "{body}");
    }

    #[test]
    fn edits_that_cannot_apply_fail_the_document_with_the_reason() {
        let mut e = entry(ENV);
        e.set_text(999, "x".into());
        assert!(e.finish().unwrap_err().contains("no element 999"));

        let mut e = entry(ENV);
        let order = e.elements("SalesOrder", false).unwrap()[0].id;
        let item = e.elements("ItemId", false).unwrap()[0].id;
        e.remove(order);
        e.set_text(item, "x".into());
        assert!(e.finish().unwrap_err().contains("inside what another edit"));

        let mut e = entry("<Order><A>1</A></Order>");
        e.set_header("Company".into(), "x".into());
        assert!(e.finish().unwrap_err().contains("not an AIF envelope"));

        let mut e = entry(ENV);
        e.replace("<new/>".into());
        e.remove(0);
        assert!(e.finish().unwrap_err().contains("after replacing"));

        let mut e = entry(ENV);
        e.set_text(0, "dropped".into());
        e.replace("<new/>".into());
        assert_eq!(e.finish().unwrap().content, "<new/>");
    }

    #[test]
    fn header_fields_are_set_in_an_empty_or_prefixed_header() {
        let mut e = entry(
            "<m:Envelope xmlns:m=\"urn:m\"><m:Header/><m:Body><m:MessageParts/></m:Body></m:Envelope>",
        );
        e.set_header("Company".into(), "a&b".into());
        assert_eq!(
            e.finish().unwrap().content,
            "<m:Envelope xmlns:m=\"urn:m\"><m:Header><m:Company>a&amp;b</m:Company></m:Header><m:Body><m:MessageParts/></m:Body></m:Envelope>"
        );
        let mut e = entry("<Envelope><Header><Company>old</Company></Header><Body/></Envelope>");
        e.set_header("Company".into(), "new".into());
        assert_eq!(
            e.finish().unwrap().content,
            "<Envelope><Header><Company>new</Company></Header><Body/></Envelope>"
        );
    }
}
