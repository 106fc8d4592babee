//! # test-wrong-world — test fixture, not shipped
//!
//! A valid component that targets another WIT world
//! (`other:thing/greeter`, exporting only a function `greet`), not one of
//! Ferry's: the host must refuse it when loading, with an error saying which
//! world it expected. Options: none.

#[allow(missing_docs)]
mod bindings {
    wit_bindgen::generate!({
        path: "wit",
        world: "other:thing/greeter",
    });
}

/// The greeter.
pub struct Greeter;

impl bindings::Guest for Greeter {
    fn greet() -> String {
        "hello from another world".to_string()
    }
}

bindings::export!(Greeter with_types_in bindings);
