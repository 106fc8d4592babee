//! The documents a rule gets: parsed by the host, read and edited through
//! it (`ferry:plugin/documents`). A rule reads what it needs —
//! [`Document::header`], [`Document::elements`], [`Document::body`] — and
//! answers with edits ([`Document::set_text`], [`Document::set_header`],
//! [`Document::remove`]) the host applies, or with a whole new text
//! ([`Document::replace`]). A document it neither edits nor replaces passes
//! unchanged.
//!
//! Off WebAssembly (unit tests), [`Document::new`] makes a document served
//! by the SDK itself, with the same answers and the same edits;
//! [`Document::result`] gives the text the host would pass on.

use std::cell::RefCell;

use crate::PluginError;
use crate::envelope::{self, Element as Scanned};

/// An element of a document, as [`Document::elements`] finds it: `id` (what
/// the edits and [`Document::path`] take), `text` (its text, unescaped, when
/// it holds text only), `start` and `end` (byte offsets of its tags in
/// [`Document::text`]).
pub use crate::bindings::ferry::plugin::documents::Element;

type HostDocument = crate::bindings::ferry::plugin::documents::Document;

/// One document of a batch.
pub struct Document {
    inner: Inner,
}

enum Inner {
    // Made by the rule export only.
    #[allow(dead_code)]
    Host(HostDocument),
    Local(RefCell<Local>),
}

struct Local {
    name: String,
    text: String,
    edits: Vec<Edit>,
    replaced: Option<String>,
    problem: Option<String>,
}

#[derive(Clone, Debug)]
enum Edit {
    SetText(u32, String),
    SetHeader(String, String),
    Remove(u32),
}

impl std::fmt::Debug for Document {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Document")
            .field("name", &self.name())
            .finish()
    }
}

fn rejected(reason: String) -> PluginError {
    PluginError::Rejected(reason)
}

impl Document {
    /// A document the host handed over.
    #[allow(dead_code)] // used by the rule export only
    pub(crate) fn from_host(doc: HostDocument) -> Document {
        Document {
            inner: Inner::Host(doc),
        }
    }

    /// A document served by the SDK itself (for unit tests, or a rule that
    /// builds documents of its own).
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Document {
        Document {
            inner: Inner::Local(RefCell::new(Local {
                name: name.into(),
                text: text.into(),
                edits: Vec::new(),
                replaced: None,
                problem: None,
            })),
        }
    }

    /// The name of the message it came from (e.g. the file name).
    pub fn name(&self) -> String {
        match &self.inner {
            Inner::Host(d) => d.name(),
            Inner::Local(l) => l.borrow().name.clone(),
        }
    }

    /// The whole text as it was handed over (edits do not change it). From
    /// the host this copies the text into the plugin: ask for what you need
    /// instead when you can.
    pub fn text(&self) -> String {
        match &self.inner {
            Inner::Host(d) => d.text(),
            Inner::Local(l) => l.borrow().text.clone(),
        }
    }

    /// Whether it is an AIF message envelope.
    pub fn is_envelope(&self) -> bool {
        match &self.inner {
            Inner::Host(d) => d.is_envelope(),
            Inner::Local(l) => envelope::is_envelope(&l.borrow().text),
        }
    }

    /// The text of envelope header field `field` (`"Company"`,
    /// `"Action"`...); `None` when absent or when the document is no
    /// envelope; `rejected` when the text is not well-formed XML.
    pub fn header(&self, field: &str) -> Result<Option<String>, PluginError> {
        match &self.inner {
            Inner::Host(d) => d.header(field).map_err(rejected),
            Inner::Local(l) => local_header(&l.borrow().text, field),
        }
    }

    /// The XML inside the envelope's `Body/MessageParts`, verbatim; `None`
    /// when the document is no envelope.
    pub fn body(&self) -> Result<Option<String>, PluginError> {
        match &self.inner {
            Inner::Host(d) => d.body().map_err(rejected),
            Inner::Local(l) => {
                let l = l.borrow();
                envelope::check_well_formed(&l.text)?;
                Ok(envelope::body(&l.text).ok().map(str::to_string))
            }
        }
    }

    /// Every element named `name` (local name), in document order; in an
    /// envelope only those inside `Body/MessageParts`. `rejected` when the
    /// text is not well-formed XML.
    pub fn elements(&self, name: &str) -> Result<Vec<Element>, PluginError> {
        match &self.inner {
            Inner::Host(d) => d.elements(name).map_err(rejected),
            Inner::Local(l) => local_elements(&l.borrow().text, name, false),
        }
    }

    /// As [`elements`](Document::elements), over the whole document.
    pub fn elements_anywhere(&self, name: &str) -> Result<Vec<Element>, PluginError> {
        match &self.inner {
            Inner::Host(d) => d.elements_anywhere(name).map_err(rejected),
            Inner::Local(l) => local_elements(&l.borrow().text, name, true),
        }
    }

    /// The local names from the root to `element`, `/`-separated (e.g.
    /// `"Envelope/Body/MessageParts/SalesOrder/SalesTable/CustAccount"`);
    /// `None` when the document has no such element.
    pub fn path(&self, element: &Element) -> Option<String> {
        match &self.inner {
            Inner::Host(d) => d.path(element.id),
            Inner::Local(l) => {
                let l = l.borrow();
                let all = envelope::scan(&l.text).ok()?;
                ((element.id as usize) < all.len()).then(|| path_of(&all, element.id as usize))
            }
        }
    }

    /// Edit: make `text` (escaped for you) the content of `element`.
    pub fn set_text(&self, element: &Element, text: &str) {
        match &self.inner {
            Inner::Host(d) => d.set_text(element.id, text),
            Inner::Local(l) => l.borrow_mut().edit(Edit::SetText(element.id, text.into())),
        }
    }

    /// Edit: set envelope header field `field` to `value` (escaped for you),
    /// adding it at the end of the header when absent.
    pub fn set_header(&self, field: &str, value: &str) {
        match &self.inner {
            Inner::Host(d) => d.set_header(field, value),
            Inner::Local(l) => l
                .borrow_mut()
                .edit(Edit::SetHeader(field.into(), value.into())),
        }
    }

    /// Edit: remove `element` and everything inside it.
    pub fn remove(&self, element: &Element) {
        match &self.inner {
            Inner::Host(d) => d.remove(element.id),
            Inner::Local(l) => l.borrow_mut().edit(Edit::Remove(element.id)),
        }
    }

    /// Answer with this whole text instead (edits made before are dropped;
    /// edits after it fail the document).
    pub fn replace(&self, text: &str) {
        match &self.inner {
            Inner::Host(d) => d.replace(text),
            Inner::Local(l) => {
                let mut l = l.borrow_mut();
                l.edits.clear();
                l.replaced = Some(text.to_string());
            }
        }
    }

    /// The text the host would pass on for a document made with
    /// [`Document::new`]: the replacement, or the text with the edits
    /// applied; `failed` naming an edit that cannot be applied. For a
    /// document from the host, its text as handed over (the host applies
    /// the edits after the call).
    pub fn result(&self) -> Result<String, PluginError> {
        match &self.inner {
            Inner::Host(d) => Ok(d.text()),
            Inner::Local(l) => l.borrow().result(),
        }
    }
}

impl Local {
    fn edit(&mut self, edit: Edit) {
        if self.replaced.is_some() {
            self.problem.get_or_insert_with(|| {
                "the rule edited the document after replacing its text".into()
            });
            return;
        }
        self.edits.push(edit);
    }

    fn result(&self) -> Result<String, PluginError> {
        if let Some(p) = &self.problem {
            return Err(PluginError::Failed(p.clone()));
        }
        if let Some(t) = &self.replaced {
            return Ok(t.clone());
        }
        if self.edits.is_empty() {
            return Ok(self.text.clone());
        }
        apply(&self.text, &self.edits).map_err(|m| PluginError::Failed(format!("its edits: {m}")))
    }
}

fn path_of(all: &[Scanned], i: usize) -> String {
    let mut names = vec![all[i].local];
    let mut p = all[i].parent;
    while let Some(pi) = p {
        names.push(all[pi].local);
        p = all[pi].parent;
    }
    names.reverse();
    names.join("/")
}

fn local_header(text: &str, field: &str) -> Result<Option<String>, PluginError> {
    let all = envelope::scan(text)?;
    let root = all.iter().position(|e| e.parent.is_none());
    if root.is_none_or(|r| all[r].local != "Envelope") {
        return Ok(None);
    }
    let Some(h) = all
        .iter()
        .position(|e| e.parent == root && e.local == "Header")
    else {
        return Ok(None);
    };
    match all.iter().find(|e| e.parent == Some(h) && e.local == field) {
        None => Ok(None),
        Some(f) if !f.simple => Err(PluginError::Rejected(format!(
            "header field <{}> holds elements, not text",
            f.qname
        ))),
        Some(f) => Ok(Some(envelope::decode_text(
            &text[f.open_end..f.close_start],
        )?)),
    }
}

fn local_elements(text: &str, name: &str, anywhere: bool) -> Result<Vec<Element>, PluginError> {
    let all = envelope::scan(text)?;
    if all.is_empty() {
        return Err(PluginError::Rejected(
            "the document is not XML: it holds no element".into(),
        ));
    }
    let root = all.iter().position(|e| e.parent.is_none());
    let is_env = root.is_some_and(|r| all[r].local == "Envelope");
    let child = |parent: Option<usize>, local: &str| {
        all.iter()
            .position(|e| e.parent == parent && e.local == local)
    };
    let within = if anywhere || !is_env {
        None
    } else {
        match child(root, "Body").and_then(|b| child(Some(b), "MessageParts")) {
            Some(p) => Some((all[p].open_end, all[p].close_start)),
            None => return Ok(Vec::new()),
        }
    };
    let mut out = Vec::new();
    for (i, e) in all.iter().enumerate() {
        if e.local != name {
            continue;
        }
        if let Some((from, to)) = within
            && !(e.start >= from && e.end <= to)
        {
            continue;
        }
        out.push(Element {
            id: i as u32,
            text: if e.simple {
                Some(envelope::decode_text(&text[e.open_end..e.close_start])?)
            } else {
                None
            },
            start: e.start as u32,
            end: e.end as u32,
        });
    }
    Ok(out)
}

/// The host's way of applying edits (`ferry` `runtime/document.rs`), for
/// documents served by the SDK.
fn apply(text: &str, edits: &[Edit]) -> Result<String, String> {
    let all = envelope::scan(text).map_err(|e| e.to_string())?;
    let root = all.iter().position(|e| e.parent.is_none());
    let is_env = root.is_some_and(|r| all[r].local == "Envelope");
    let header = if is_env {
        all.iter()
            .position(|e| e.parent == root && e.local == "Header")
    } else {
        None
    };
    let element = |id: u32, what: &str| {
        all.get(id as usize).ok_or_else(|| {
            format!(
                "{what}: the document has no element {id} (it has {})",
                all.len()
            )
        })
    };
    let content = |e: &Scanned, c: &str| -> (usize, usize, String) {
        if e.empty {
            let tag = &text[e.start..e.open_end];
            let open = tag.trim_end_matches('>').trim_end_matches('/').trim_end();
            (e.start, e.end, format!("{open}>{c}</{}>", e.qname))
        } else {
            (e.open_end, e.close_start, c.to_string())
        }
    };
    let mut splices: Vec<(usize, usize, String, String)> = Vec::new();
    for edit in edits {
        let (from, to, with, what) = match edit {
            Edit::SetText(id, v) => {
                let e = element(*id, "set-text")?;
                let (f, t, w) = content(e, &envelope::escape(v));
                (f, t, w, format!("set-text of <{}> (element {id})", e.qname))
            }
            Edit::Remove(id) => {
                let e = element(*id, "remove")?;
                (
                    e.start,
                    e.end,
                    String::new(),
                    format!("remove of <{}> (element {id})", e.qname),
                )
            }
            Edit::SetHeader(field, value) => {
                let what = format!("set-header of {field}");
                if field.is_empty()
                    || field.contains(|c: char| c.is_whitespace() || "<>&/:\"'=".contains(c))
                {
                    return Err(format!("{what}: {field:?} is not an element name"));
                }
                let h = match header {
                    Some(h) => h,
                    None if is_env => return Err(format!("{what}: the envelope has no <Header>")),
                    None => return Err(format!("{what}: the document is not an AIF envelope")),
                };
                let escaped = envelope::escape(value);
                match all.iter().find(|e| e.parent == Some(h) && e.local == field) {
                    Some(f) => {
                        let (a, b, w) = content(f, &escaped);
                        (a, b, w, what)
                    }
                    None => {
                        let he = &all[h];
                        let prefix = he.qname.strip_suffix(he.local).unwrap_or("");
                        let new_field = format!("<{prefix}{field}>{escaped}</{prefix}{field}>");
                        if he.empty {
                            let (a, b, w) = content(he, &new_field);
                            (a, b, w, what)
                        } else {
                            match all.iter().rfind(|e| e.parent == Some(h)) {
                                Some(l) => {
                                    let before = &text[..l.start];
                                    let trimmed = before.trim_end_matches([' ', '\t', '\r', '\n']);
                                    (
                                        l.end,
                                        l.end,
                                        format!("{}{new_field}", &before[trimmed.len()..]),
                                        what,
                                    )
                                }
                                None => (he.close_start, he.close_start, new_field, what),
                            }
                        }
                    }
                }
            }
        };
        splices.retain(|s| !(s.0 == from && s.1 == to && s.0 != s.1));
        splices.push((from, to, with, what));
    }
    splices.sort_by_key(|s| (s.0, s.1));
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (from, to, with, what) in &splices {
        if *from < at {
            return Err(format!(
                "{what}: it falls inside what another edit of the same document replaced or removed"
            ));
        }
        out.push_str(&text[at..*from]);
        out.push_str(with);
        at = *to;
    }
    out.push_str(&text[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENV: &str = "<Envelope><Header>\n  <Action>a</Action>\n</Header><Body><MessageParts><O><ItemId>A&amp;B</ItemId><Note/></O></MessageParts></Body></Envelope>";

    #[test]
    fn local_documents_read_and_edit_as_the_host_does() {
        let d = Document::new("d", ENV);
        assert!(d.is_envelope());
        assert_eq!(d.header("Action").unwrap().as_deref(), Some("a"));
        let items = d.elements("ItemId").unwrap();
        assert_eq!(items[0].text.as_deref(), Some("A&B"));
        assert_eq!(
            d.path(&items[0]).as_deref(),
            Some("Envelope/Body/MessageParts/O/ItemId")
        );
        let mut unknown = items[0].clone();
        unknown.id = 999;
        assert_eq!(d.path(&unknown), None);
        assert!(d.elements("Action").unwrap().is_empty());
        assert_eq!(d.elements_anywhere("Action").unwrap().len(), 1);
        d.set_text(&items[0], "1<2");
        d.set_text(&d.elements("Note").unwrap()[0], "n");
        d.set_header("Company", "dat");
        assert_eq!(
            d.result().unwrap(),
            "<Envelope><Header>\n  <Action>a</Action>\n  <Company>dat</Company>\n</Header><Body><MessageParts><O><ItemId>1&lt;2</ItemId><Note>n</Note></O></MessageParts></Body></Envelope>"
        );
        let d = Document::new("d", "a,b,c");
        assert!(matches!(d.elements("x"), Err(PluginError::Rejected(_))));
        d.replace("<x/>");
        assert_eq!(d.result().unwrap(), "<x/>");
    }
}
