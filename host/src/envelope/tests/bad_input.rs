//! Rejected inputs: the right kind of error, a message a user understands, and
//! never a panic.

use super::super::{BATCH_NS, Envelope, EnvelopeError, MESSAGE_NS, Position, parse, parse_bytes};
use super::SALES_ORDER_CREATE;

fn err(xml: &str) -> EnvelopeError {
    match parse(xml) {
        Ok(parsed) => panic!("expected an error for {xml:?}, got {parsed:?}"),
        Err(e) => e,
    }
}

#[track_caller]
fn malformed(xml: &str) -> (String, Position) {
    match err(xml) {
        EnvelopeError::Malformed { reason, position } => (reason, position),
        other => panic!("expected Malformed for {xml:?}, got {other:?}"),
    }
}

#[track_caller]
fn invalid(xml: &str) -> String {
    match err(xml) {
        EnvelopeError::Invalid { reason } => reason,
        other => panic!("expected Invalid for {xml:?}, got {other:?}"),
    }
}

/// A message with `header` as the content of `<Header>` and `body` as that of `<Body>`.
fn message(header: &str, body: &str) -> String {
    format!(
        r#"<Envelope xmlns="{MESSAGE_NS}"><Header>{header}</Header><Body>{body}</Body></Envelope>"#
    )
}

const ACTION: &str = "<Action>urn:a/S/op</Action>";
const PARTS: &str = "<MessageParts><Doc/></MessageParts>";

#[test]
fn the_documented_example_message() {
    let xml = format!("<Envelope xmlns=\"{MESSAGE_NS}\">\n<Header>\n<Action>x</Header>");
    let e = err(&xml);
    assert_eq!(
        e.to_string(),
        "line 3, column 10: expected </Action>, found </Header>"
    );
    assert_eq!(
        e.position(),
        Some(Position {
            offset: 101,
            line: 3,
            column: 10
        })
    );
    assert!(e.is_malformed());
}

#[test]
fn not_xml() {
    for text in ["hello world", "{\"json\": true}", "ISA*00*  *00*", "   "] {
        let (reason, position) = malformed(text);
        assert_eq!(position.line, 1, "{text}");
        assert!(
            reason.contains("is this XML?") || reason.contains("empty"),
            "{text}: {reason}"
        );
    }
    assert_eq!(malformed("").0, "the document is empty");
    assert_eq!(
        malformed("<!-- only a comment -->").0,
        "the document has no root element"
    );
}

#[test]
fn truncated_files_are_malformed_with_the_unclosed_element() {
    let cut = SALES_ORDER_CREATE.find("</SalesTable>").unwrap();
    let (reason, position) = malformed(&SALES_ORDER_CREATE[..cut]);
    assert!(
        reason.starts_with("the document ends before </SalesTable>"),
        "{reason}"
    );
    assert!(reason.contains("is the file truncated?"), "{reason}");
    assert_eq!(position.offset, cut);
    // Cut inside a tag, inside the header, after the root.
    for at in [10, 150, 300, SALES_ORDER_CREATE.len() - 3] {
        malformed(&SALES_ORDER_CREATE[..at]);
    }
}

#[test]
fn every_prefix_of_a_message_is_an_error_not_a_panic() {
    let end = SALES_ORDER_CREATE.trim_end().len();
    let mut at = 0;
    while at < end {
        if SALES_ORDER_CREATE.is_char_boundary(at) {
            assert!(
                parse(&SALES_ORDER_CREATE[..at]).is_err(),
                "prefix of {at} bytes"
            );
        }
        at += 1;
    }
}

#[test]
fn malformed_wins_over_invalid() {
    // Wrong root *and* not well-formed further down.
    let (reason, _) = malformed("<Order><a></b></Order>");
    assert_eq!(reason, "expected </a>, found </b>");
    // Wrong root, and truncated.
    assert!(
        malformed("<Order xmlns='urn:x'><a>")
            .0
            .contains("is the file truncated?")
    );
    // Duplicate Header, then an unknown entity.
    let xml =
        message(ACTION, "<MessageParts>&nbsp;</MessageParts>").replace("<Body>", "<Header/><Body>");
    assert!(malformed(&xml).0.contains("&nbsp;"));
}

#[test]
fn wrong_root_element() {
    let reason = invalid("<Order xmlns=\"urn:x\"/>");
    assert!(reason.contains("<Order> in namespace urn:x"), "{reason}");
    assert!(reason.contains(MESSAGE_NS), "{reason}");
    let reason = invalid("<Envelope><Header/></Envelope>");
    assert!(reason.contains("<Envelope> in no namespace"), "{reason}");
    let reason = invalid(
        r#"<Envelope xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/Message"/>"#,
    );
    assert!(reason.contains("2008/01/documents/Message"), "{reason}");
    let reason = invalid(&format!("<Batch xmlns=\"{MESSAGE_NS}\"/>"));
    assert!(reason.contains("<Batch> in namespace"), "{reason}");
}

#[test]
fn missing_or_empty_action() {
    let reason = invalid(&message("<MessageId>{M}</MessageId>", PARTS));
    assert!(reason.contains("no <Action>"), "{reason}");
    for empty in ["<Action/>", "<Action></Action>", "<Action>  \n </Action>"] {
        let reason = invalid(&message(empty, PARTS));
        assert!(
            reason.contains("<Action> in the <Header> is empty"),
            "{empty}: {reason}"
        );
    }
    let reason = invalid(&format!(
        "<Envelope xmlns=\"{MESSAGE_NS}\"><Body>{PARTS}</Body></Envelope>"
    ));
    assert!(reason.contains("no <Header>"), "{reason}");
    invalid(&format!("<Envelope xmlns=\"{MESSAGE_NS}\"/>"));
}

#[test]
fn conversation_id_longer_than_256_characters() {
    let reason = invalid(&message(
        &format!(
            "{ACTION}<ConversationId>{}</ConversationId>",
            "x".repeat(257)
        ),
        PARTS,
    ));
    assert_eq!(
        reason,
        "the <ConversationId> is 257 characters long; AIF allows at most 256"
    );
    // On a batch too.
    let batch = format!(
        "<Batch xmlns=\"{BATCH_NS}\" ConversationId=\"{}\">{}</Batch>",
        "é".repeat(300),
        message(ACTION, PARTS)
    );
    assert!(invalid(&batch).contains("300 characters"));
    // The writer does not check, the reader does.
    let mut e = Envelope::new("urn:a", "");
    e.header.conversation_id = Some("y".repeat(257));
    invalid(&e.to_xml());
}

#[test]
fn no_body_or_no_message_parts() {
    let no_body = format!("<Envelope xmlns=\"{MESSAGE_NS}\"><Header>{ACTION}</Header></Envelope>");
    assert!(invalid(&no_body).contains("no <Body>"));
    for body in [
        "",
        "<Other/>",
        "<Other><MessageParts/></Other>",
        "<MessageParts xmlns=\"urn:x\"/>",
    ] {
        let reason = invalid(&message(ACTION, body));
        assert!(reason.contains("no <MessageParts>"), "{body}: {reason}");
    }
    let empty_body =
        format!("<Envelope xmlns=\"{MESSAGE_NS}\"><Header>{ACTION}</Header><Body/></Envelope>");
    assert!(invalid(&empty_body).contains("no <MessageParts>"));
}

#[test]
fn duplicates_and_stray_content_in_the_envelope() {
    assert!(
        invalid(&message(&format!("{ACTION}{ACTION}"), PARTS)).contains("more than one <Action>")
    );
    assert!(
        invalid(&message(ACTION, &format!("{PARTS}{PARTS}")))
            .contains("more than one <MessageParts>")
    );
    let reason = invalid(&message(&format!("oops{ACTION}"), PARTS));
    assert!(
        reason.contains("unexpected text \"oops\" directly in <Header>"),
        "{reason}"
    );
    let reason = invalid(&message("<Action>urn:<b>a</b></Action>", PARTS));
    assert_eq!(reason, "<Action> must hold only text, but it contains <b>");
}

#[test]
fn batch_problems() {
    assert_eq!(
        invalid(&format!("<Batch xmlns=\"{BATCH_NS}\"/>")),
        "the <Batch> holds no <Envelope>"
    );
    let two = format!(
        "<Batch xmlns=\"{BATCH_NS}\">{}{}</Batch>",
        message(ACTION, PARTS),
        message("", PARTS)
    );
    assert!(invalid(&two).starts_with("message 2 of the batch: the <Header> has no <Action>"));
    let stray = format!(
        "<Batch xmlns=\"{BATCH_NS}\">{}<Note/></Batch>",
        message(ACTION, PARTS)
    );
    assert!(invalid(&stray).contains("unexpected <Note> in namespace"));
}

#[test]
fn not_well_formed_details() {
    let cases: &[(&str, &str)] = &[
        ("<a>&nbsp;</a>", "unknown entity &nbsp;"),
        ("<a>fish & chips</a>", "`&` starts no reference"),
        ("<a>&#1;</a>", "is U+0001, which XML does not allow"),
        ("<a>\u{1}</a>", "character U+0001 is not allowed"),
        ("<a b='1' b='2'/>", "an attribute appears twice in <a>"),
        ("<a b=1/>", "attribute values must be quoted"),
        ("<a b='<'/>", "`<` in the value of attribute `b`"),
        ("<a b='&x;'/>", "bad reference in attribute `b`"),
        ("<p:a/>", "namespace prefix `p` of <p:a> is not declared"),
        ("<a p:b='1'/>", "namespace prefix `p` of attribute `p:b`"),
        ("<a xmlns:p=''/>", "cannot be bound to an empty namespace"),
        ("<1a/>", "invalid element name `1a`"),
        ("< a/>", "must be followed by an element name"),
        ("<a/><b/>", "a second root element <b>"),
        ("<a/>text", "text after the end of the root element"),
        (
            " <?xml version=\"1.0\"?><a/>",
            "only allowed at the very start",
        ),
        (
            "<a><!-- x -- y --></a>",
            "`--` is not allowed inside a comment",
        ),
        ("<a>]]></a>", "`]]>` is not allowed in text"),
        ("</a>", "</a> does not close any open element"),
        ("<a", "tag not closed"),
        ("<a><!-- never closed", "comment not closed"),
        ("<a b='never closed/>", "attribute value not closed"),
        ("<a><![CDATA[x</a>", "CDATA section not closed"),
        (
            "<a xmlns:xml='urn:no'/>",
            "the prefix `xml` can only be bound to",
        ),
        (
            "<a xmlns:xmlns='urn:no'/>",
            "the prefix `xmlns` cannot be declared",
        ),
        (
            "<a xmlns:p='http://www.w3.org/2000/xmlns/'/>",
            "cannot be declared",
        ),
        (
            "<a><!DOCTYPE a></a>",
            "<!DOCTYPE> is only allowed before the root element",
        ),
    ];
    for (xml, expected) in cases {
        let (reason, _) = malformed(xml);
        assert!(reason.contains(expected), "{xml}: {reason}");
    }
}

#[test]
fn positions_point_at_the_problem() {
    let (_, p) = malformed("<a>\n  <b>\n    &bogus;\n  </b>\n</a>");
    assert_eq!((p.line, p.column), (3, 5));
    let (_, p) = malformed("<a>\n  <b x='1' x='2'/>\n</a>");
    assert_eq!(p.line, 2);
    // Columns count characters, not bytes.
    let (_, p) = malformed("<a>ééé</b>");
    assert_eq!((p.line, p.column), (1, 7));
}

#[test]
fn doctype_is_refused() {
    let xml = format!(
        "<!DOCTYPE Envelope [<!ENTITY x 'y'>]>{}",
        message(ACTION, PARTS)
    );
    assert!(invalid(&xml).contains("<!DOCTYPE"));
}

#[test]
fn utf16_and_garbage_bytes() {
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(SALES_ORDER_CREATE.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    // A UTF-16 file wrongly read as UTF-8 text (lossily) is not XML.
    let lossy = String::from_utf8_lossy(&utf16);
    assert!(parse(&lossy).unwrap_err().is_malformed());
    // Garbage bytes.
    for bytes in [
        &[0xFF, 0x00, 0x80, 0x81][..],
        &[0xC3][..],
        b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR",
        &[0xFE, 0xFF, 0xD8, 0x00][..],
        &[0xFF, 0xFE, 0x3C][..],
        // Found by fuzzing: two byte order marks.
        b"\xEF\xBB\xBF\xEF\xBB\xBF<n>ti~a",
    ] {
        assert!(parse_bytes(bytes).unwrap_err().is_malformed(), "{bytes:?}");
    }
}
