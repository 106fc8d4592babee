//! Raw bindings of the parts of `ferry:plugin@0.2.1` that every world
//! shares: the `types` interface and the `host`, `documents` and `files`
//! imports.
//!
//! They are generated once, here, from a small world that only imports, so
//! that the per-world modules (`crate::rule`, `crate::adapter`,
//! `crate::service`) reuse the same Rust types (through wit-bindgen's
//! `with`). An import a plugin never calls is dropped from its component, so
//! a service does not import `documents`, nor a rule `files`.
//!
//! Plugin authors use the friendly re-exports at the crate root instead.

wit_bindgen::generate!({
    path: "../wit",
    inline: "package ferry:sdk;
             world common {
                 import ferry:plugin/host@0.2.1;
                 import ferry:plugin/documents@0.2.1;
                 import ferry:plugin/files@0.2.1;
             }",
    world: "ferry:sdk/common",
    generate_all,
    additional_derives: [PartialEq, Eq, Hash],
});
