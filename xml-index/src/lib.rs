//! # ferry-xml-index
//!
//! The elements of an XML text as byte ranges into it, found in one pass
//! ([`scan`]), and the text of an element that holds text only
//! ([`decode_text`]). It is what the host's `documents` (the parsed
//! document a rule reads and edits) and the plugin SDK's envelope helpers
//! look elements up in: a rule or a service asks for a few elements of a
//! 2 KB document, so the index is built once and kept small (offsets, no
//! copies), and no event is built for what nobody asks about (text,
//! attributes).
//!
//! What [`scan`] checks: every tag is closed with `>` (quoted attribute
//! values may hold `>`), every end tag closes the element open at that
//! point (its name, trailing spaces ignored), no element is left open at
//! the end, comments, CDATA sections and processing instructions are
//! closed, `<!` starts one of them or a DOCTYPE, an `&` in text is closed
//! with `;`. Like a non-validating
//! reader it does not check names, attributes or the characters of text;
//! [`decode_text`] checks references when a text is read.

use std::borrow::Cow;
use std::fmt;

use memchr::{memchr, memchr2, memchr3, memmem};

/// One element, as byte offsets into the text it was found in (kept in
/// 32 bits: a text is indexed up to 4 GiB).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Element {
    start: u32,
    open_end: u32,
    close_start: u32,
    end: u32,
    /// Length of the qualified name (it starts at `start + 1`).
    name_len: u32,
    /// Where the local name starts inside the qualified name.
    local_from: u32,
    /// Index of the element it is in; `NONE` for a root.
    parent: u32,
    /// Written `<x/>`.
    pub empty: bool,
    /// Holds only text, character or entity references and CDATA (no
    /// element, comment or processing instruction).
    pub simple: bool,
}

const NONE: u32 = u32::MAX;

impl Element {
    /// Offset of the `<` of its start (or empty-element) tag.
    #[inline]
    pub fn start(&self) -> usize {
        self.start as usize
    }

    /// Offset just after the start tag's `>`.
    #[inline]
    pub fn open_end(&self) -> usize {
        self.open_end as usize
    }

    /// Offset of the `<` of its end tag (`open_end` for an empty element).
    #[inline]
    pub fn close_start(&self) -> usize {
        self.close_start as usize
    }

    /// Offset just after the end tag's `>`.
    #[inline]
    pub fn end(&self) -> usize {
        self.end as usize
    }

    /// Index of the element it is in (`None` for a root).
    #[inline]
    pub fn parent(&self) -> Option<usize> {
        (self.parent != NONE).then_some(self.parent as usize)
    }

    /// Its qualified name as written (`m:Envelope`), from `xml`, the text
    /// it was found in.
    #[inline]
    pub fn qname<'t>(&self, xml: &'t str) -> &'t str {
        let from = self.start() + 1;
        &xml[from..from + self.name_len as usize]
    }

    /// Its local name (`Envelope` of `m:Envelope`).
    #[inline]
    pub fn local<'t>(&self, xml: &'t str) -> &'t str {
        &self.qname(xml)[self.local_from as usize..]
    }

    /// Whether its local name is `local` (the length compared first).
    #[inline]
    pub fn is_named(&self, xml: &str, local: &str) -> bool {
        (self.name_len - self.local_from) as usize == local.len() && self.local(xml) == local
    }

    /// What is between its start and end tags, verbatim (`""` when empty).
    #[inline]
    pub fn inner<'t>(&self, xml: &'t str) -> &'t str {
        &xml[self.open_end()..self.close_start()]
    }

    /// The element whole, start tag to end tag, verbatim.
    #[inline]
    pub fn outer<'t>(&self, xml: &'t str) -> &'t str {
        &xml[self.start()..self.end()]
    }
}

/// Why a text is not well-formed enough to index, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Malformed {
    /// The byte offset the problem was found at.
    pub at: usize,
    /// What is wrong, in words.
    pub reason: String,
}

impl fmt::Display for Malformed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (near byte {})", self.reason, self.at)
    }
}

impl std::error::Error for Malformed {}

fn malformed(at: usize, reason: impl Into<String>) -> Malformed {
    Malformed {
        at,
        reason: reason.into(),
    }
}

/// The elements of `xml` in document order (each after its parent).
pub fn scan(xml: &str) -> Result<Vec<Element>, Malformed> {
    let b = xml.as_bytes();
    if b.len() >= NONE as usize {
        return Err(malformed(
            0,
            "the text is too large to index (4 GiB or more)",
        ));
    }
    let mut elements: Vec<Element> = Vec::with_capacity(b.len() / 32 + 4);
    let mut stack: Vec<usize> = Vec::with_capacity(16);
    let mut pos = 0;
    while let Some(lt) = find(b, pos, [b'<', b'&'], |h| memchr2(b'<', b'&', h)) {
        if b[lt] == b'&' {
            // A reference in text: closed with `;` before the next markup.
            let end = memchr(b'<', &b[lt..]).map_or(b.len(), |k| lt + k);
            match memchr2(b';', b'&', &b[lt + 1..end]) {
                Some(k) if b[lt + 1 + k] == b';' => pos = lt + 1 + k + 1,
                _ => return Err(malformed(lt, "an `&` starts no reference (`&name;`)")),
            }
            continue;
        }
        pos = match b.get(lt + 1) {
            Some(b'/') => {
                let from = lt + 2;
                let gt = find(b, from, [b'>'], |h| memchr(b'>', h))
                    .ok_or_else(|| malformed(lt, "an end tag is not closed with `>`"))?;
                let mut name_end = gt;
                while name_end > from && matches!(b[name_end - 1], b' ' | b'\t' | b'\r' | b'\n') {
                    name_end -= 1;
                }
                let name = &xml[from..name_end];
                let Some(open) = stack.pop() else {
                    return Err(malformed(
                        lt,
                        format!("the end tag </{name}> closes no open element"),
                    ));
                };
                let e = &mut elements[open];
                if e.qname(xml).as_bytes() != name.as_bytes() {
                    return Err(malformed(
                        lt,
                        format!(
                            "the end tag </{name}> does not close the open element <{0}> (expected </{0}>)",
                            e.qname(xml)
                        ),
                    ));
                }
                e.close_start = lt as u32;
                e.end = (gt + 1) as u32;
                gt + 1
            }
            Some(b'!') => {
                let rest = &b[lt..];
                if rest.starts_with(b"<!--") {
                    let k = memmem::find(&b[lt + 4..], b"-->")
                        .ok_or_else(|| malformed(lt, "a comment is not closed with `-->`"))?;
                    not_simple(&mut elements, &stack);
                    lt + 4 + k + 3
                } else if rest.starts_with(b"<![CDATA[") {
                    let k = memmem::find(&b[lt + 9..], b"]]>")
                        .ok_or_else(|| malformed(lt, "a CDATA section is not closed with `]]>`"))?;
                    lt + 9 + k + 3
                } else if rest.len() >= 9 && rest[2..9].eq_ignore_ascii_case(b"DOCTYPE") {
                    if !stack.is_empty() {
                        return Err(malformed(lt, "a DOCTYPE inside an element"));
                    }
                    doctype_end(b, lt)?
                } else {
                    return Err(malformed(
                        lt,
                        "`<!` starts no comment, CDATA section or DOCTYPE",
                    ));
                }
            }
            Some(b'?') => {
                if b.get(lt + 2) == Some(&b'>') {
                    return Err(malformed(lt, "`<?>` is no processing instruction"));
                }
                let k = memmem::find(&b[lt + 2..], b"?>").ok_or_else(|| {
                    malformed(lt, "a processing instruction is not closed with `?>`")
                })?;
                not_simple(&mut elements, &stack);
                lt + 2 + k + 2
            }
            _ => {
                let from = lt + 1;
                // The name, and where it ends: a tag without attributes
                // (`<Name>`, `<Name/>`) in one pass; one with attributes,
                // or a quote in its name, the general way below.
                let mut i = from;
                let mut colon = None;
                while let Some(&c) = b.get(i) {
                    match c {
                        b' ' | b'\t' | b'\r' | b'\n' | b'>' | b'/' | b'"' | b'\'' => break,
                        b':' => colon = Some(i),
                        _ => {}
                    }
                    i += 1;
                }
                let short = match b.get(i) {
                    Some(b'>') => Some((i, false)),
                    Some(b'/') if b.get(i + 1) == Some(&b'>') => Some((i + 1, true)),
                    _ => None,
                };
                if let Some((gt, empty)) = short {
                    let name_end = if empty { gt - 1 } else { gt };
                    if name_end == from {
                        return Err(malformed(lt, "`<` is not followed by an element name"));
                    }
                    let local_from = colon.map_or(0, |c| c + 1 - from);
                    open(
                        &mut elements,
                        &mut stack,
                        lt,
                        gt,
                        name_end - from,
                        local_from,
                        empty,
                    );
                    pos = gt + 1;
                    continue;
                }
                // The tag's `>`, past quoted attribute values.
                let mut i = from;
                let gt = loop {
                    let quote_or_end = [b'>', b'"', b'\''];
                    let Some(at) = find(b, i, quote_or_end, |h| memchr3(b'>', b'"', b'\'', h))
                    else {
                        return Err(malformed(lt, "a start tag is not closed with `>`"));
                    };
                    if b[at] == b'>' {
                        break at;
                    }
                    let Some(k) = memchr(b[at], &b[at + 1..]) else {
                        return Err(malformed(at, "an attribute value is not closed"));
                    };
                    i = at + 1 + k + 1;
                };
                let empty = gt > from && b[gt - 1] == b'/';
                let tag = &b[from..if empty { gt - 1 } else { gt }];
                let name = match tag
                    .iter()
                    .position(|c| matches!(c, b' ' | b'\t' | b'\r' | b'\n'))
                {
                    Some(k) => &tag[..k],
                    None => tag,
                };
                if name.is_empty() {
                    return Err(malformed(lt, "`<` is not followed by an element name"));
                }
                let local_from = name.iter().rposition(|c| *c == b':').map_or(0, |c| c + 1);
                open(
                    &mut elements,
                    &mut stack,
                    lt,
                    gt,
                    name.len(),
                    local_from,
                    empty,
                );
                gt + 1
            }
        };
    }
    if let Some(&open) = stack.last() {
        let e = &elements[open];
        return Err(malformed(
            e.start(),
            format!("element <{}> is not closed", e.qname(xml)),
        ));
    }
    Ok(elements)
}

/// The first byte from `from` on that is one of `set`: the next 16 bytes
/// looked at as two 8-byte words in registers (markup is dense: the byte
/// sought is usually near), else what `search` finds in the rest.
#[inline(always)]
fn find<const N: usize>(
    b: &[u8],
    from: usize,
    set: [u8; N],
    search: impl Fn(&[u8]) -> Option<usize>,
) -> Option<usize> {
    let Some(near) = b.get(from..from + 16) else {
        // Fewer than 16 bytes left: one by one.
        return b
            .get(from..)?
            .iter()
            .position(|c| set.contains(c))
            .map(|k| from + k);
    };
    let near: &[u8; 16] = near.try_into().expect("16 bytes");
    let (first, second) = near.split_at(8);
    let hits = word_hits(first.try_into().expect("8 bytes"), set);
    if hits != 0 {
        return Some(from + (hits.trailing_zeros() / 8) as usize);
    }
    let hits = word_hits(second.try_into().expect("8 bytes"), set);
    if hits != 0 {
        return Some(from + 8 + (hits.trailing_zeros() / 8) as usize);
    }
    search(&b[from + 16..]).map(|k| from + 16 + k)
}

/// The bytes of `word` that are one of `set`, as the high bit of each
/// (the lowest set bit is exact: see below).
#[inline(always)]
fn word_hits<const N: usize>(word: [u8; 8], set: [u8; N]) -> u64 {
    const LO: u64 = u64::from_le_bytes([0x01; 8]);
    const HI: u64 = u64::from_le_bytes([0x80; 8]);
    let word = u64::from_le_bytes(word);
    let mut hits = 0;
    for c in set {
        // A byte of `word` equal to `c` is a zero byte of `x`: its high bit
        // is set below. A borrow can set bits above the first zero byte,
        // never below it, so the lowest bit set is exact.
        let x = word ^ (LO * u64::from(c));
        hits |= x.wrapping_sub(LO) & !x & HI;
    }
    hits
}

/// A start tag from `lt` to its `>` at `gt`, its name `name_len` bytes
/// long (the local name from `local_from`): an element, inside the one
/// open (which then holds more than text), open itself unless `empty`.
#[inline(always)]
fn open(
    elements: &mut Vec<Element>,
    stack: &mut Vec<usize>,
    lt: usize,
    gt: usize,
    name_len: usize,
    local_from: usize,
    empty: bool,
) {
    let parent = stack.last().copied();
    if let Some(p) = parent {
        elements[p].simple = false;
    }
    let after = (gt + 1) as u32;
    elements.push(Element {
        start: lt as u32,
        open_end: after,
        close_start: after,
        end: after,
        name_len: name_len as u32,
        local_from: local_from as u32,
        empty,
        parent: parent.map_or(NONE, |p| p as u32),
        simple: true,
    });
    if !empty {
        stack.push(elements.len() - 1);
    }
}

/// The element open at this point holds more than text.
fn not_simple(elements: &mut [Element], stack: &[usize]) {
    if let Some(&p) = stack.last() {
        elements[p].simple = false;
    }
}

/// Where the DOCTYPE starting at `lt` ends (after its `>`; an internal
/// subset in `[...]` may hold `>`).
fn doctype_end(b: &[u8], lt: usize) -> Result<usize, Malformed> {
    let unclosed = || malformed(lt, "a DOCTYPE is not closed with `>`");
    let mut i = lt + 9;
    let k = memchr2(b'>', b'[', &b[i..]).ok_or_else(unclosed)?;
    i += k;
    if b[i] == b'>' {
        return Ok(i + 1);
    }
    loop {
        let k = memchr(b']', &b[i..]).ok_or_else(unclosed)?;
        i += k + 1;
        while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\r' | b'\n') {
            i += 1;
        }
        if b.get(i) == Some(&b'>') {
            return Ok(i + 1);
        }
    }
}

/// The text an element holds when it holds text only (see
/// [`Element::simple`]): `inner` with its references resolved, its CDATA
/// sections unwrapped and its line ends normalised to `\n`, as XML 1.0
/// reads it. Borrowed when there is nothing to resolve.
pub fn decode_text(inner: &str) -> Result<Cow<'_, str>, String> {
    let b = inner.as_bytes();
    if memchr3(b'&', b'<', b'\r', b).is_none() {
        return Ok(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let (mut i, mut copied) = (0, 0);
    while let Some(k) = memchr3(b'&', b'<', b'\r', &b[i..]) {
        let at = i + k;
        out.push_str(&inner[copied..at]);
        i = match b[at] {
            b'&' => {
                let semi = memchr(b';', &b[at..])
                    .map(|k| at + k)
                    .ok_or_else(|| format!("an `&` at byte {at} starts no reference (`&name;`)"))?;
                out.push_str(&reference(&inner[at + 1..semi])?);
                semi + 1
            }
            b'\r' => {
                out.push('\n');
                if b.get(at + 1) == Some(&b'\n') {
                    at + 2
                } else {
                    at + 1
                }
            }
            _ => {
                let Some(data) = inner[at..].strip_prefix("<![CDATA[") else {
                    return Err(format!("markup at byte {at} in a text-only element"));
                };
                let k = data
                    .find("]]>")
                    .ok_or_else(|| format!("a CDATA section at byte {at} is not closed"))?;
                let data = &data[..k];
                if data.contains('\r') {
                    out.push_str(&data.replace("\r\n", "\n").replace('\r', "\n"));
                } else {
                    out.push_str(data);
                }
                at + 9 + k + 3
            }
        };
        copied = i;
    }
    out.push_str(&inner[copied..]);
    Ok(Cow::Owned(out))
}

/// The text of the reference `&name;`.
fn reference(name: &str) -> Result<Cow<'static, str>, String> {
    let predefined = match name {
        "lt" => "<",
        "gt" => ">",
        "amp" => "&",
        "apos" => "'",
        "quot" => "\"",
        _ => {
            let code = if let Some(hex) = name.strip_prefix("#x") {
                u32::from_str_radix(hex, 16).ok()
            } else if let Some(dec) = name.strip_prefix('#') {
                dec.parse::<u32>().ok()
            } else {
                return Err(format!("unknown entity &{name};"));
            };
            let ch = code
                .filter(|c| *c != 0)
                .and_then(char::from_u32)
                .ok_or_else(|| format!("bad character reference &{name};"))?;
            return Ok(Cow::Owned(ch.to_string()));
        }
    };
    Ok(Cow::Borrowed(predefined))
}

#[cfg(test)]
mod tests;
