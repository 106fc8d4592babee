//! The body: the inner XML of `MessageParts`, cut out of the input verbatim,
//! plus the namespace declarations from outside it that it needs to stand on
//! its own (see "The body and namespaces" in the [module docs](super)).

use std::collections::BTreeMap;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::PrefixDeclaration;

use super::xml::{Bindings, XmlReader, is_ncname};
use super::{BATCH_NS, EnvelopeError, MESSAGE_NS};

const XSI_NS: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// Declarations to add to one top-level body element.
struct Fix {
    /// Byte offset in the input just after the element's name.
    at: usize,
    /// Prefix (`None`: default namespace) → namespace, as written.
    needed: BTreeMap<Option<String>, String>,
}

/// What is known while walking the body.
struct Scope {
    /// Bindings in scope at `MessageParts` (declared on it or its ancestors).
    outer: Bindings,
    /// Prefixes declared inside the body, with the body level (1 = top-level
    /// element) of the element that declares them.
    inner: Vec<(usize, Option<String>)>,
}

impl Scope {
    /// Notes that `prefix` is used; returns the outside declaration to add,
    /// if it comes from outside the body.
    fn outside_binding(&self, prefix: Option<&str>) -> Option<(Option<String>, String)> {
        if prefix == Some("xml") || self.inner.iter().any(|(_, p)| p.as_deref() == prefix) {
            return None;
        }
        let (_, ns) = self.outer.iter().find(|(p, _)| p.as_deref() == prefix)?;
        // The envelope's own namespace is not the body's default namespace.
        if prefix.is_none() && (ns == MESSAGE_NS || ns == BATCH_NS) {
            return None;
        }
        Some((prefix.map(str::to_owned), ns.clone()))
    }
}

/// Reads the content of a `MessageParts` whose start tag was just read,
/// through its end tag, and returns it as the self-contained body.
pub(super) fn read_message_parts(r: &mut XmlReader<'_>) -> Result<String, EnvelopeError> {
    let mut scope = Scope {
        outer: r.bindings(),
        inner: Vec::new(),
    };
    // Usually the only binding outside is the envelope's default namespace:
    // then nothing can be needed, and the body is only read through.
    let track = scope
        .outer
        .iter()
        .any(|(prefix, ns)| prefix.is_some() || (ns != MESSAGE_NS && ns != BATCH_NS));
    let parts_depth = r.depth();
    let body_start = r.offset();
    if !track {
        // The end tags after a skipped body are still read (and checked).
        let body_end = match r.skip_trusted_body() {
            Some(end) => end,
            None => r.read_to_close()?,
        };
        return Ok(r.src()[body_start..body_end].to_owned());
    }
    let mut fixes: Vec<Fix> = Vec::new();
    let body_end = loop {
        let item = r.next()?;
        match &item.event {
            Event::Start(e) | Event::Empty(e) => {
                let is_start = matches!(item.event, Event::Start(_));
                // Body level of this element: 1 for a top-level element.
                let level = r.depth() - parts_depth + usize::from(!is_start);
                if level == 1 {
                    fixes.push(Fix {
                        at: item.start + 1 + e.name().into_inner().len(),
                        needed: BTreeMap::new(),
                    });
                }
                let uses = element_uses(r, e, level, &mut scope.inner);
                if let Some(fix) = fixes.last_mut() {
                    for prefix in uses {
                        if let Some((p, ns)) = scope.outside_binding(prefix.as_deref()) {
                            fix.needed.insert(p, ns);
                        }
                    }
                }
                if !is_start {
                    scope.inner.retain(|(l, _)| *l < level);
                }
            }
            Event::End(_) => {
                if r.depth() < parts_depth {
                    break item.start;
                }
                // The element just closed was at this body level.
                let level = r.depth() - parts_depth + 1;
                scope.inner.retain(|(l, _)| *l < level);
            }
            _ => {}
        }
    };
    Ok(assemble(r.src(), body_start, body_end, &fixes))
}

/// Records the declarations of element `e` (at body `level`) in `inner`
/// (before its names are looked at: a declaration counts on its own element),
/// and returns the prefixes it uses: its own (`None` if unprefixed), its
/// attributes', and that of an `xsi:type` value.
fn element_uses(
    r: &XmlReader<'_>,
    e: &BytesStart<'_>,
    level: usize,
    inner: &mut Vec<(usize, Option<String>)>,
) -> Vec<Option<String>> {
    let mut uses = vec![e.name().prefix().map(|p| p.into_inner().to_owned())];
    // The reader has checked the attributes already.
    for attr in e.attributes().flatten() {
        match attr.key.as_namespace_binding() {
            Some(PrefixDeclaration::Default) => inner.push((level, None)),
            Some(PrefixDeclaration::Named(p)) => inner.push((level, Some(p.to_owned()))),
            None => {
                if let Some(prefix) = attr.key.prefix() {
                    uses.push(Some(prefix.into_inner().to_owned()));
                    if attr.key.local_name().into_inner() == "type"
                        && r.resolve_prefix(attr.key).as_deref() == Some(XSI_NS)
                    {
                        let value = attr.value.trim();
                        match value.split_once(':') {
                            Some((p, _)) if is_ncname(p) => uses.push(Some(p.to_owned())),
                            Some(_) => {}
                            None => uses.push(None),
                        }
                    }
                }
            }
        }
    }
    uses
}

/// The body text with the fixes' declarations inserted.
fn assemble(src: &str, start: usize, end: usize, fixes: &[Fix]) -> String {
    let extra: usize = fixes
        .iter()
        .flat_map(|f| f.needed.iter())
        .map(|(p, ns)| ns.len() + p.as_ref().map_or(0, String::len) + 10)
        .sum();
    let mut body = String::with_capacity(end - start + extra);
    let mut cursor = start;
    for fix in fixes.iter().filter(|f| !f.needed.is_empty()) {
        body.push_str(&src[cursor..fix.at]);
        for (prefix, ns) in &fix.needed {
            body.push_str(" xmlns");
            if let Some(prefix) = prefix {
                body.push(':');
                body.push_str(prefix);
            }
            // The value is raw (as written), so it holds no `"` or no `'`.
            let quote = if ns.contains('"') { '\'' } else { '"' };
            body.push('=');
            body.push(quote);
            body.push_str(ns);
            body.push(quote);
        }
        cursor = fix.at;
    }
    body.push_str(&src[cursor..end]);
    body
}
