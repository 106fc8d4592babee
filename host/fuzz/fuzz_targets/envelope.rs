//! Fuzzes the AIF envelope reader (`ferry::envelope`): no input may make it
//! panic, and every message it accepts must be written back and read again
//! unchanged.

#![no_main]

use ferry::envelope::{Parsed, decode_text, parse, parse_bytes};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Raw bytes, as a message file arrives: UTF-8 or UTF-16, or garbage.
    if let Err(e) = decode_text(data) {
        let _ = e.to_string();
    }
    check(parse_bytes(data));
    // The same bytes as text, when they are UTF-8.
    if let Ok(text) = std::str::from_utf8(data) {
        check(parse(text));
    }
});

/// An accepted message round-trips; an error displays.
fn check(result: Result<Parsed, ferry::envelope::EnvelopeError>) {
    match result {
        Ok(Parsed::Single(envelope)) => {
            let again = parse(&envelope.to_xml());
            assert_eq!(
                again,
                Ok(Parsed::Single(envelope)),
                "written message reads back"
            );
        }
        Ok(Parsed::Batch(batch)) => {
            let again = parse(&batch.to_xml());
            assert_eq!(again, Ok(Parsed::Batch(batch)), "written batch reads back");
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
}
