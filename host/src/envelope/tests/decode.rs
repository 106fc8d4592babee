//! Bytes to text.

use super::super::{EnvelopeError, decode_text};

fn utf16(text: &str, bom: bool, le: bool) -> Vec<u8> {
    let mut bytes = Vec::new();
    if bom {
        bytes.extend(if le { [0xFF, 0xFE] } else { [0xFE, 0xFF] });
    }
    for unit in text.encode_utf16() {
        bytes.extend(if le {
            unit.to_le_bytes()
        } else {
            unit.to_be_bytes()
        });
    }
    bytes
}

#[track_caller]
fn malformed(bytes: &[u8]) -> (String, usize, usize, usize) {
    match decode_text(bytes) {
        Err(EnvelopeError::Malformed { reason, position }) => {
            (reason, position.offset, position.line, position.column)
        }
        other => panic!("expected Malformed, got {other:?}"),
    }
}

#[test]
fn utf8_with_and_without_bom() {
    assert_eq!(decode_text(b"<a>\xC3\xA9</a>").unwrap(), "<a>é</a>");
    assert_eq!(decode_text(b"\xEF\xBB\xBF<a/>").unwrap(), "<a/>");
    assert_eq!(decode_text(b"").unwrap(), "");
}

#[test]
fn utf16_both_byte_orders_with_and_without_bom() {
    let text = "<?xml version=\"1.0\" encoding=\"utf-16\"?>\n<a>é 𝄞</a>";
    for (bom, le) in [(true, true), (true, false), (false, true), (false, false)] {
        assert_eq!(
            decode_text(&utf16(text, bom, le)).unwrap(),
            text,
            "bom {bom} le {le}"
        );
    }
    assert_eq!(decode_text(&[0xFF, 0xFE]).unwrap(), "");
}

#[test]
fn invalid_utf8_is_reported_at_its_byte() {
    let (reason, offset, line, column) = malformed(b"<a>\n<b>\xFFx</b></a>");
    assert_eq!((offset, line, column), (7, 2, 4));
    assert!(
        reason.contains("byte 7 (0xFF) is not valid UTF-8"),
        "{reason}"
    );
    // After a BOM, offsets still count from the start of the file.
    assert_eq!(malformed(b"\xEF\xBB\xBF<a>\xC0</a>").1, 6);
    // Ends inside a character.
    assert!(
        malformed(b"<a>\xE2\x82")
            .0
            .contains("ends inside a UTF-8 character")
    );
}

#[test]
fn broken_utf16_is_reported_at_its_byte() {
    // Odd length.
    let mut bytes = utf16("<a/>", true, true);
    bytes.push(0x20);
    let (reason, offset, ..) = malformed(&bytes);
    assert_eq!(offset, 10);
    assert!(reason.contains("odd number of bytes"), "{reason}");
    // Unpaired surrogate, on line 2.
    let mut bytes = utf16("<a>\nx", true, false);
    bytes.extend([0xD8, 0x00, 0x00, 0x41]);
    let (reason, offset, line, column) = malformed(&bytes);
    assert_eq!((offset, line, column), (12, 2, 2));
    assert!(
        reason.contains("unpaired surrogate 0xD800 in UTF-16BE"),
        "{reason}"
    );
}
