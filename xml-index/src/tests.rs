use super::*;

use quick_xml::Reader;
use quick_xml::events::Event;

const ENV: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<!-- an order -->
<m:Envelope xmlns:m="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <m:Header>
    <m:MessageId>{5603D03A-4380-404D-9F1F-000000000001}</m:MessageId>
    <m:Action>urn:x/SalesOrderService/create</m:Action>
  </m:Header>
  <m:Body>
    <m:MessageParts><SalesOrder a="1>2" b='x"y'><Company>body</Company><ItemId>A&amp;B</ItemId><ItemId>X</ItemId><Note/><Free><![CDATA[<c>]]></Free><Mixed>a<!-- c -->b</Mixed><P><?pi x?></P><Ref>&#65;&#x42;&lt;&gt;&quot;&apos;</Ref><Lines>a&#13;
b
c</Lines><Empty></Empty ></SalesOrder></m:MessageParts>
  </m:Body>
</m:Envelope>
"#;

/// What quick-xml makes of `xml`: the elements and their texts, as the
/// host and the SDK read them before this crate.
fn oracle(xml: &str) -> Result<Vec<(Element, Option<String>)>, String> {
    let mut reader = Reader::from_str(xml);
    let mut elements: Vec<Element> = Vec::new();
    let mut stack: Vec<usize> = Vec::new();
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event().map_err(|e| e.to_string())?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let empty = matches!(event, Event::Empty(_));
                let parent = stack.last().copied();
                if let Some(p) = parent {
                    elements[p].simple = false;
                }
                let q = e.name().into_inner().len();
                let l = e.local_name().into_inner().len();
                elements.push(Element {
                    start: before as u32,
                    open_end: after as u32,
                    close_start: after as u32,
                    end: after as u32,
                    name_len: q as u32,
                    local_from: (q - l) as u32,
                    empty,
                    parent: parent.map_or(NONE, |p| p as u32),
                    simple: true,
                });
                if !empty {
                    stack.push(elements.len() - 1);
                }
            }
            Event::End(_) => {
                let idx = stack.pop().ok_or("unexpected end")?;
                elements[idx].close_start = before as u32;
                elements[idx].end = after as u32;
            }
            Event::Comment(_) | Event::PI(_) => {
                if let Some(&p) = stack.last() {
                    elements[p].simple = false;
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !stack.is_empty() {
        return Err("not closed".into());
    }
    Ok(elements
        .into_iter()
        .map(|e| {
            let text = e.simple.then(|| oracle_text(e.inner(xml))).flatten();
            (e, text)
        })
        .collect())
}

fn oracle_text(inner: &str) -> Option<String> {
    let mut reader = Reader::from_str(inner);
    let mut out = String::new();
    loop {
        match reader.read_event().ok()? {
            Event::Text(t) => out.push_str(&t.xml10_content()),
            Event::CData(c) => out.push_str(&c.xml10_content()),
            Event::GeneralRef(r) => match r.resolve_char_ref().ok()? {
                Some(ch) => out.push(ch),
                None => out.push_str(quick_xml::escape::resolve_predefined_entity(
                    &r.xml10_content(),
                )?),
            },
            Event::Eof => return Some(out),
            _ => {}
        }
    }
}

fn ours(xml: &str) -> Result<Vec<(Element, Option<String>)>, Malformed> {
    Ok(scan(xml)?
        .into_iter()
        .map(|e| {
            let text = e
                .simple
                .then(|| decode_text(e.inner(xml)).ok().map(Cow::into_owned))
                .flatten();
            (e, text)
        })
        .collect())
}

#[test]
fn indexes_elements_names_texts_and_nesting() {
    let all = scan(ENV).unwrap();
    let find = |local: &str| all.iter().find(|e| e.local(ENV) == local).unwrap();
    let root = &all[0];
    assert_eq!(
        (root.qname(ENV), root.local(ENV)),
        ("m:Envelope", "Envelope")
    );
    assert_eq!(root.parent(), None);
    assert!(!root.simple);
    assert_eq!(find("Header").parent(), Some(0));
    let order = find("SalesOrder");
    assert!(
        order
            .outer(ENV)
            .starts_with(r#"<SalesOrder a="1>2" b='x"y'>"#)
    );
    assert_eq!(find("ItemId").inner(ENV), "A&amp;B");
    assert_eq!(decode_text(find("ItemId").inner(ENV)).unwrap(), "A&B");
    assert!(find("Note").empty && find("Note").simple);
    assert_eq!(find("Note").inner(ENV), "");
    assert_eq!(decode_text(find("Free").inner(ENV)).unwrap(), "<c>");
    assert!(!find("Mixed").simple && !find("P").simple);
    assert_eq!(decode_text(find("Ref").inner(ENV)).unwrap(), "AB<>\"'");
    assert_eq!(decode_text(find("Lines").inner(ENV)).unwrap(), "a\r\nb\nc");
    assert_eq!(find("Empty").outer(ENV), "<Empty></Empty >");
    assert!(matches!(decode_text("plain"), Ok(Cow::Borrowed("plain"))));
}

#[test]
fn gives_what_quick_xml_gives_on_well_formed_documents() {
    let docs = [
        ENV,
        "<a/>",
        "<a><b/><c>t</c></a>",
        "<!DOCTYPE a [<!ENTITY x \"]>\">]><a>1</a>",
        "<!doctype a><a>1</a>",
        "<a>\r\n x \r y</a>",
        "<a><![CDATA[\r\n]]]]></a>",
        "<a x='>' y=\"/\"></a>",
        "text before<a>in</a>text after",
    ];
    for doc in docs {
        assert_eq!(ours(doc).unwrap(), oracle(doc).unwrap(), "{doc}");
    }
}

/// Markup is looked for 8 bytes at a time for 16 bytes, then by memchr:
/// each kind of markup at every distance from where the search starts,
/// across both words and into the rest, and at the very end of the text.
#[test]
fn finds_markup_at_every_distance_from_where_it_looks() {
    for pad in 0..40 {
        let ws = " ".repeat(pad);
        let xs = "x".repeat(pad);
        let docs = [
            format!("<a>{ws}<b/>{ws}<c>{xs}</c>{ws}</a>"),
            format!("<a>{xs}&amp;{xs}&lt;</a>"),
            format!("<a{ws} k=\"{xs}>\"{ws}/>"),
            format!("<n:{xs}a{ws}></n:{xs}a{ws}>"),
            format!("<a>{ws}<!--{xs}-->{ws}<?p {xs}?>{ws}</a>"),
            format!("<{xs}a/>"),
        ];
        for doc in &docs {
            assert_eq!(ours(doc).unwrap(), oracle(doc).unwrap(), "{doc}");
        }
        // Cut short anywhere: refused, as quick-xml refuses it.
        let doc = &docs[0];
        for end in 1..doc.len() {
            let cut = &doc[..end];
            assert!(ours(cut).is_err(), "{cut}");
        }
    }
}

#[test]
fn refuses_what_is_not_well_formed_with_where() {
    for (doc, says) in [
        ("<a><b></a>", "does not close the open element <b>"),
        ("<a>", "element <a> is not closed"),
        ("</a>", "closes no open element"),
        ("<a><!-- x </a>", "comment is not closed"),
        ("<a><![CDATA[ x </a>", "CDATA section is not closed"),
        ("<a><? x </a>", "processing instruction is not closed"),
        ("<a><!x></a>", "starts no comment"),
        ("<a x='1></a>", "attribute value is not closed"),
        ("<a", "not closed with `>`"),
        ("<a></a", "end tag is not closed"),
        ("< a/>", "not followed by an element name"),
        ("<!DOCTYPE a [ <a/>", "DOCTYPE is not closed"),
    ] {
        let e = scan(doc).unwrap_err();
        assert!(e.reason.contains(says), "{doc}: {e}");
        assert!(e.to_string().contains("near byte"), "{e}");
    }
    assert!(
        decode_text("a & b")
            .unwrap_err()
            .contains("starts no reference")
    );
    assert!(
        decode_text("&nbsp;")
            .unwrap_err()
            .contains("unknown entity")
    );
    assert!(
        decode_text("&#0;")
            .unwrap_err()
            .contains("bad character reference")
    );
    assert!(
        decode_text("&#xD800;")
            .unwrap_err()
            .contains("bad character")
    );
}

/// A deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Mutated documents (markup fragments inserted, bytes deleted, cut
/// short): where quick-xml accepts one, the index is the same element for
/// element and text for text; where this crate accepts one quick-xml
/// refuses, it is one of the known differences (quick-xml checks what a
/// non-validating index need not).
#[test]
fn agrees_with_quick_xml_on_mutated_documents() {
    let fragments = [
        "<",
        ">",
        "</",
        "/>",
        "<x>",
        "</x>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<?",
        "?>",
        "&",
        "&amp;",
        "&#x41;",
        "\"",
        "'",
        "<y/>",
        "\r",
        " ",
        "<!DOCTYPE d>",
        "]",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (mut both, mut neither, mut only_ours, mut only_oracle) = (0, 0, 0, 0);
    for _ in 0..100_000 {
        let mut doc = ENV.to_string();
        for _ in 0..1 + rng.below(3) {
            if doc.is_empty() {
                break;
            }
            let at = rng.below(doc.len());
            if !doc.is_char_boundary(at) {
                continue;
            }
            match rng.below(3) {
                0 => doc.insert_str(at, fragments[rng.below(fragments.len())]),
                1 => {
                    let to = (at + 1 + rng.below(8)).min(doc.len());
                    if doc.is_char_boundary(to) {
                        doc.replace_range(at..to, "");
                    }
                }
                _ => doc.truncate(at),
            }
        }
        match (ours(&doc), oracle(&doc)) {
            (Ok(a), Ok(b)) => {
                both += 1;
                assert_eq!(a.len(), b.len(), "{doc}");
                for (x, y) in a.iter().zip(&b) {
                    assert_eq!(x, y, "{doc}");
                }
            }
            (Err(_), Err(_)) => neither += 1,
            (Ok(_), Err(e)) => {
                only_ours += 1;
                assert!(
                    e.contains("attribute") || e.contains("DOCTYPE") || e.contains("name"),
                    "only this crate accepts {doc:?}; quick-xml says {e}"
                );
            }
            (Err(e), Ok(_)) => {
                // quick-xml reads a DOCTYPE anywhere, and `< a>` as an
                // element without a name.
                assert!(
                    e.reason.contains("DOCTYPE inside") || e.reason.contains("element name"),
                    "only quick-xml accepts {doc:?}; this crate says {e}"
                );
                only_oracle += 1;
            }
        }
    }
    assert!(
        both > 10_000 && neither > 10_000,
        "{both} {neither} {only_ours} {only_oracle}"
    );
}
