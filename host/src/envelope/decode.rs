//! Bytes to text: [`decode_text`]. AIF files are UTF-8 or UTF-16 (what .NET
//! writes by default), usually with a byte order mark.

use super::{EnvelopeError, Position};

/// Decodes a message file to text.
///
/// - A UTF-8 byte order mark (`EF BB BF`) is removed and the rest read as UTF-8.
/// - `FF FE` / `FE FF` select UTF-16 little / big endian (the mark is removed).
/// - Without a mark, input starting with `<` as UTF-16 (`3C 00` or `00 3C`,
///   XML 1.0 appendix F) is read as UTF-16 of that byte order; anything else
///   as UTF-8.
///
/// The `encoding` named in the XML declaration is not consulted: only UTF-8
/// and UTF-16 are supported, as in AIF.
///
/// # Errors
///
/// [`EnvelopeError::Malformed`] at the first invalid byte: bad UTF-8, an
/// unpaired UTF-16 surrogate, or a UTF-16 text with an odd number of bytes.
/// The position's `offset` is the byte offset in `bytes`; line and column are
/// counted in the text decoded before it.
pub fn decode_text(bytes: &[u8]) -> Result<String, EnvelopeError> {
    match bytes {
        [0xEF, 0xBB, 0xBF, rest @ ..] => decode_utf8(rest, 3),
        [0xFF, 0xFE, rest @ ..] => decode_utf16(rest, 2, u16::from_le_bytes, "UTF-16LE"),
        [0xFE, 0xFF, rest @ ..] => decode_utf16(rest, 2, u16::from_be_bytes, "UTF-16BE"),
        [b'<', 0, ..] => decode_utf16(bytes, 0, u16::from_le_bytes, "UTF-16LE"),
        [0, b'<', ..] => decode_utf16(bytes, 0, u16::from_be_bytes, "UTF-16BE"),
        _ => decode_utf8(bytes, 0),
    }
}

fn decode_utf8(bytes: &[u8], skipped: usize) -> Result<String, EnvelopeError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => Ok(text.to_owned()),
        Err(e) => {
            let good = e.valid_up_to();
            // `good` is a valid prefix by definition of `valid_up_to`.
            let prefix = std::str::from_utf8(&bytes[..good]).unwrap_or_default();
            let offset = skipped + good;
            let reason = match e.error_len() {
                Some(_) => format!(
                    "byte {offset} (0x{:02X}) is not valid UTF-8; \
                     AIF messages must be UTF-8 or UTF-16",
                    bytes[good]
                ),
                None => format!("the text ends inside a UTF-8 character (byte {offset})"),
            };
            Err(at(prefix, offset, reason))
        }
    }
}

fn decode_utf16(
    bytes: &[u8],
    skipped: usize,
    unit: fn([u8; 2]) -> u16,
    name: &str,
) -> Result<String, EnvelopeError> {
    let mut text = String::with_capacity(bytes.len() / 2);
    let units = bytes.chunks_exact(2).map(|pair| unit([pair[0], pair[1]]));
    let mut offset = skipped;
    for decoded in char::decode_utf16(units) {
        match decoded {
            Ok(c) => {
                text.push(c);
                offset += 2 * c.len_utf16();
            }
            Err(e) => {
                let reason = format!(
                    "byte {offset}: unpaired surrogate 0x{:04X} in {name} text",
                    e.unpaired_surrogate()
                );
                return Err(at(&text, offset, reason));
            }
        }
    }
    if bytes.len() % 2 == 1 {
        let offset = skipped + bytes.len() - 1;
        let reason = format!("byte {offset}: {name} text has an odd number of bytes (truncated?)");
        return Err(at(&text, offset, reason));
    }
    Ok(text)
}

/// A `Malformed` error at raw byte `offset`, whose line and column are those
/// of the end of the already decoded `decoded` text.
fn at(decoded: &str, offset: usize, reason: String) -> EnvelopeError {
    let mut position = Position::in_text(decoded, decoded.len());
    position.offset = offset;
    EnvelopeError::Malformed { reason, position }
}
