//! Property tests: what is written reads back unchanged, the body is
//! self-contained, and no input makes the reader panic.

use proptest::collection::vec;
use proptest::prelude::*;
use quick_xml::NsReader;
use quick_xml::events::Event;
use quick_xml::name::ResolveResult;

use super::super::{
    Envelope, Header, MESSAGE_NS, Parsed, decode_text, parse, parse_bytes, parse_written,
};
use super::{CUSTOMER_READ, SALES_ORDER_CREATE, single};

/// Any text XML can carry.
const XML_CHARS: &str = "[\t\n\r\u{20}-\u{D7FF}\u{E000}-\u{FFFD}\u{10000}-\u{10FFFF}]";

/// Strings rich in what needs escaping, whitespace at the ends, and unicode.
fn xml_string(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::string::string_regex(&format!("{XML_CHARS}{{0,{max}}}")).unwrap(),
        proptest::string::string_regex(&format!("[<>&\"' \t\r\naZé€𝄞\u{FFFD}]{{0,{max}}}"))
            .unwrap(),
    ]
}

fn non_empty(max: usize) -> impl Strategy<Value = String> {
    xml_string(max).prop_filter("non-empty", |s| !s.is_empty())
}

fn header() -> impl Strategy<Value = Header> {
    (
        (
            non_empty(40),
            proptest::option::of(non_empty(40)),
            proptest::option::of(non_empty(40)),
        ),
        (
            non_empty(80),
            proptest::option::of(non_empty(256)).prop_filter("≤ 256 chars", |c| {
                c.as_ref().is_none_or(|c| c.chars().count() <= 256)
            }),
        ),
        (
            proptest::option::of(non_empty(40)),
            proptest::option::of(non_empty(40)),
        ),
    )
        .prop_map(
            |(
                (message_id, logon_as_user, company),
                (action, conversation_id),
                (request_message_id, partition_key),
            )| {
                Header {
                    message_id,
                    logon_as_user,
                    company,
                    action,
                    conversation_id,
                    request_message_id,
                    partition_key,
                }
            },
        )
}

/// A generated attribute: prefix number, name, value.
type Attr = (Option<u8>, String, String);

/// A generated element head: prefix number, declare here, name, attributes.
type Head = (Option<u8>, bool, String, Vec<Attr>);

/// A generated body node. Prefixes are numbers: `pN`.
#[derive(Debug, Clone)]
enum Node {
    Text(String),
    CData(String),
    Comment(String),
    Element {
        prefix: Option<u8>,
        /// Declare the element's prefix (or a default namespace) here even if
        /// it is in scope already.
        declare: bool,
        name: String,
        attrs: Vec<Attr>,
        children: Vec<Node>,
    },
}

fn element_head() -> impl Strategy<Value = Head> {
    (
        proptest::option::of(0u8..4),
        proptest::bool::weighted(0.2),
        "[a-zA-Z_][a-zA-Z0-9_.-]{0,6}",
        vec(
            (
                proptest::option::of(0u8..4),
                "[a-wyz][a-z0-9]{0,4}",
                xml_string(12),
            ),
            0..3,
        ),
    )
}

fn node() -> impl Strategy<Value = Node> {
    let leaf = prop_oneof![
        xml_string(20).prop_map(Node::Text),
        xml_string(20)
            .prop_filter("no ]]>", |s| !s.contains("]]>"))
            .prop_map(Node::CData),
        xml_string(20)
            .prop_filter("comment text", |s| !s.contains("--") && !s.ends_with('-'))
            .prop_map(Node::Comment),
        element_head().prop_map(|(prefix, declare, name, attrs)| Node::Element {
            prefix,
            declare,
            name,
            attrs,
            children: Vec::new(),
        }),
    ];
    leaf.prop_recursive(4, 48, 5, |inner| {
        (element_head(), vec(inner, 0..5)).prop_map(|((prefix, declare, name, attrs), children)| {
            Node::Element {
                prefix,
                declare,
                name,
                attrs,
                children,
            }
        })
    })
}

fn escape_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders nodes; `scope` holds the prefixes in scope (`None`: a default
/// namespace). A prefix used but not in scope is declared where used.
fn render(nodes: &[Node], scope: &mut Vec<Option<u8>>, out: &mut String) {
    for node in nodes {
        match node {
            Node::Text(t) => out.push_str(&escape_text(t)),
            Node::CData(t) => out.push_str(&format!("<![CDATA[{t}]]>")),
            Node::Comment(t) => out.push_str(&format!("<!--{t}-->")),
            Node::Element {
                prefix,
                declare,
                name,
                attrs,
                children,
            } => {
                let qname = match prefix {
                    Some(p) => format!("p{p}:{name}"),
                    None => name.clone(),
                };
                let mark = scope.len();
                out.push('<');
                out.push_str(&qname);
                if *declare {
                    match prefix {
                        Some(p) => out.push_str(&format!(" xmlns:p{p}=\"urn:inner:{p}\"")),
                        None => out.push_str(" xmlns=\"urn:inner:default\""),
                    }
                    scope.push(*prefix);
                }
                let mut used: Vec<u8> = prefix.iter().copied().collect();
                used.extend(attrs.iter().filter_map(|(p, ..)| *p));
                for p in used {
                    if !scope.contains(&Some(p)) {
                        out.push_str(&format!(" xmlns:p{p}=\"urn:inner:{p}\""));
                        scope.push(Some(p));
                    }
                }
                let mut seen = Vec::new();
                for (p, attr, value) in attrs {
                    let key = match p {
                        Some(p) => format!("p{p}:{attr}"),
                        None => attr.clone(),
                    };
                    if seen.contains(&key) {
                        continue;
                    }
                    let value = escape_text(value).replace('"', "&quot;");
                    out.push_str(&format!(" {key}=\"{value}\""));
                    seen.push(key);
                }
                if children.is_empty() {
                    out.push_str("/>");
                } else {
                    out.push('>');
                    render(children, scope, out);
                    out.push_str(&format!("</{qname}>"));
                }
                scope.truncate(mark);
            }
        }
    }
}

fn body(nodes: &[Node], scope: &[Option<u8>]) -> String {
    let mut out = String::new();
    render(nodes, &mut scope.to_vec(), &mut out);
    out
}

/// `(namespace, local name)` of every element and prefixed attribute inside
/// the first element named `container` (any prefix) of `xml`, in order.
fn expanded_names(xml: &str, container: &str) -> Vec<(String, String)> {
    let mut reader = NsReader::from_str(xml);
    let mut names = Vec::new();
    let mut depth = 0usize;
    let mut inside = None;
    loop {
        let (ns, event) = reader.read_resolved_event().expect("well-formed");
        let ns = match ns {
            ResolveResult::Bound(ns) => ns.0.to_owned(),
            _ => String::new(),
        };
        match &event {
            Event::Start(e) | Event::Empty(e) => {
                if inside.is_some() {
                    names.push((ns, e.local_name().into_inner().to_owned()));
                    for attr in e.attributes().flatten() {
                        if attr.key.as_namespace_binding().is_none() && attr.key.prefix().is_some()
                        {
                            let (ans, local) = reader.resolver().resolve_attribute(attr.key);
                            let ans = match ans {
                                ResolveResult::Bound(ns) => ns.0.to_owned(),
                                other => format!("{other:?}"),
                            };
                            names.push((ans, local.into_inner().to_owned()));
                        }
                    }
                }
                if let Event::Start(_) = &event {
                    depth += 1;
                    if inside.is_none() && e.local_name().into_inner() == container {
                        inside = Some(depth);
                    }
                }
            }
            Event::End(_) => {
                if inside == Some(depth) {
                    inside = None;
                }
                depth -= 1;
            }
            Event::Eof => return names,
            _ => {}
        }
    }
}

/// Random edits of a valid message: cut, insert markup-ish text, duplicate.
fn mutated(base: &'static str) -> impl Strategy<Value = String> {
    vec(
        (
            0usize..3,
            any::<prop::sample::Index>(),
            any::<prop::sample::Index>(),
            "[<>&/\"'=:;!?#x\\[\\] -]{0,6}",
        ),
        1..6,
    )
    .prop_map(move |edits| {
        let mut s = base.to_owned();
        for (kind, a, b, junk) in edits {
            let len = s.len().max(1);
            let mut i = a.index(len).min(s.len());
            while !s.is_char_boundary(i) {
                i -= 1;
            }
            let mut j = (i + b.index(40)).min(s.len());
            while !s.is_char_boundary(j) {
                j -= 1;
            }
            match kind {
                0 => s.replace_range(i..j, ""),
                1 => s.insert_str(i, &junk),
                _ => {
                    let piece = s[i..j].to_owned();
                    s.insert_str(j, &piece);
                }
            }
        }
        s
    })
}

/// An envelope binding prefixes `p0`, `p1` and a default namespace on its
/// root, with `inner` in its `MessageParts`.
fn prefixed_envelope(inner: &str) -> String {
    format!(
        "<s:Envelope xmlns:s=\"{MESSAGE_NS}\" xmlns=\"urn:outer:default\" xmlns:p0=\"urn:outer:0\" \
         xmlns:p1=\"urn:outer:1\"><s:Header><s:Action>urn:a</s:Action></s:Header><s:Body>\
         <s:MessageParts>{inner}</s:MessageParts></s:Body></s:Envelope>"
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn header_and_body_survive_write_then_parse(header in header(), nodes in vec(node(), 0..6)) {
        let e = Envelope { header, body: body(&nodes, &[]) };
        let xml = e.to_xml();
        prop_assert_eq!(parse(&xml), Ok(Parsed::Single(e.clone())), "{}", xml);
    }

    #[test]
    fn a_written_envelope_reads_the_same_without_its_body_checked(
        header in header(),
        nodes in vec(node(), 0..6),
    ) {
        let e = Envelope { header, body: body(&nodes, &[]) };
        let xml = e.to_xml();
        prop_assert_eq!(parse_written(&xml), parse(&xml), "{}", xml);
        // As gateway receive queues it: read (the body made self-contained),
        // then written.
        let outer = [Some(0), Some(1), None];
        let inner = body(&nodes, &outer);
        let received = prefixed_envelope(&inner);
        let queued = single(&received).to_xml();
        prop_assert_eq!(parse_written(&queued), parse(&queued), "{}", queued);
    }

    #[test]
    fn extracted_body_means_the_same_alone(nodes in vec(node(), 1..6)) {
        // p0, p1 and a default namespace are declared on the envelope root.
        let outer = [Some(0), Some(1), None];
        let inner = body(&nodes, &outer);
        let xml = prefixed_envelope(&inner);
        let extracted = single(&xml).body;
        let alone = format!("<w>{extracted}</w>");
        prop_assert_eq!(expanded_names(&xml, "MessageParts"), expanded_names(&alone, "w"), "{}", extracted);
        // A body that needs nothing from outside is returned verbatim.
        let self_contained = body(&nodes, &[]);
        let xml = xml
            .replace(&inner, &self_contained)
            .replace(" xmlns=\"urn:outer:default\"", "");
        prop_assert_eq!(single(&xml).body, self_contained);
    }

    #[test]
    fn parse_never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse(&text);
    }

    #[test]
    fn parse_never_panics_on_mutated_messages(a in mutated(SALES_ORDER_CREATE), b in mutated(CUSTOMER_READ)) {
        for text in [a, b] {
            if let Ok(Parsed::Single(e)) = parse(&text) {
                // Whatever is accepted writes back to the same message.
                prop_assert_eq!(single(&e.to_xml()), e);
            }
        }
    }

    #[test]
    fn decoding_never_panics_on_arbitrary_bytes(bytes in vec(any::<u8>(), 0..300), bom in 0usize..4) {
        let prefix: &[u8] = [&[][..], &[0xEF, 0xBB, 0xBF], &[0xFF, 0xFE], &[0xFE, 0xFF]][bom];
        let bytes = [prefix, &bytes].concat();
        let _ = decode_text(&bytes);
        let _ = parse_bytes(&bytes);
    }

    #[test]
    fn utf16_messages_decode_to_the_same_text(le in any::<bool>(), header in header()) {
        let xml = Envelope { header, body: "<a>é 𝄞</a>".into() }.to_xml();
        let mut bytes = if le { vec![0xFF, 0xFE] } else { vec![0xFE, 0xFF] };
        for unit in xml.encode_utf16() {
            bytes.extend(if le { unit.to_le_bytes() } else { unit.to_be_bytes() });
        }
        prop_assert_eq!(decode_text(&bytes), Ok(xml.clone()));
        prop_assert_eq!(parse_bytes(&bytes), parse(&xml));
    }
}
