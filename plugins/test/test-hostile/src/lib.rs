//! # test-hostile — test fixture, not shipped
//!
//! A rule (world `rule-plugin`) that misbehaves when the document asks it
//! to, for the host's sandbox tests. The first marker found in the document
//! content, checked in this order, decides:
//!
//! | marker in the content | behaviour |
//! |-----------------------|-----------|
//! | `HOSTILE:open:<path>` | `std::fs::read_to_string(<path>)`: the file's content as the document on success, else `failed("open <path>: <os error>")`. The path runs to the next whitespace, `<`, `"` or `'`. |
//! | `HOSTILE:loop` | loops forever |
//! | `HOSTILE:alloc` | allocates 1 GiB and touches every page |
//! | `HOSTILE:recurse` | recurses without bound (stack overflow) |
//! | `HOSTILE:panic` | `panic!("hostile panic: the document asked for it")` |
//! | `HOSTILE:reject` | `rejected("hostile rejects")` |
//! | `HOSTILE:fail` | `failed("hostile fails")` |
//! | `HOSTILE:huge` | replaces the document with 20 MiB of text (past the default `max_response_mb`) |
//! | `HOSTILE:texts` | sets the text of every element `T` (anywhere) to `T1`, `T2`, … in document order |
//! | `HOSTILE:edit-replace` | sets the text of the first element `T` to `lost`, then replaces the document with `<replaced/>` (the edit is dropped) |
//! | `HOSTILE:replace-edit` | replaces the document with `<replaced/>`, then sets the text of the first element `T` (an edit after `replace`: the document fails) |
//! | `HOSTILE:fewer` | (any document of the batch) the batch gets one result fewer than it has documents |
//! | `HOSTILE:more` | (any document of the batch) the batch gets one result more |
//! | none | the document, unchanged |
//!
//! The batch markers `fewer` and `more` are looked for first, in every
//! document of a batch (`apply_batch`). Options: none.

use ferry_plugin_sdk::{Config, Context, Document, PluginError, Rule};
use std::hint::black_box;

/// The hostile rule.
pub struct Hostile;

ferry_plugin_sdk::export_rule!(Hostile);

/// The text `panic!` prints (and the host's error should carry).
pub const PANIC_MESSAGE: &str = "hostile panic: the document asked for it";

/// The path after `HOSTILE:open:`, if the marker is there.
pub fn open_target(content: &str) -> Option<&str> {
    let start = content.find("HOSTILE:open:")? + "HOSTILE:open:".len();
    let rest = &content[start..];
    let end = rest
        .find(|c: char| c.is_whitespace() || matches!(c, '<' | '"' | '\''))
        .unwrap_or(rest.len());
    Some(&rest[..end])
}

#[inline(never)]
#[allow(unconditional_recursion)]
fn recurse(depth: u64) -> u64 {
    // A frame the optimizer cannot remove, and work after the call so it is
    // not a tail call.
    let frame = black_box([depth; 32]);
    let below = recurse(black_box(depth + 1));
    below.wrapping_add(frame[(depth % 32) as usize])
}

fn spin() -> ! {
    let mut i: u64 = 0;
    loop {
        i = black_box(i.wrapping_add(1));
    }
}

fn allocate_gib() -> u64 {
    const GIB: usize = 1 << 30;
    let mut v: Vec<u8> = Vec::with_capacity(GIB);
    // Touch every page so the memory is really used.
    v.resize(GIB, 1);
    let mut sum = 0u64;
    for i in (0..GIB).step_by(4096) {
        v[i] = black_box(i as u8);
        sum = sum.wrapping_add(u64::from(v[i]));
    }
    black_box(sum)
}

impl Rule for Hostile {
    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(Hostile)
    }

    fn apply_batch(&self, ctx: &Context, docs: &[Document]) -> Vec<Result<(), PluginError>> {
        let texts: Vec<String> = docs.iter().map(Document::text).collect();
        let mut results: Vec<Result<(), PluginError>> =
            docs.iter().map(|d| self.apply(ctx, d)).collect();
        if texts.iter().any(|t| t.contains("HOSTILE:fewer")) {
            results.pop();
        } else if texts.iter().any(|t| t.contains("HOSTILE:more")) {
            results.push(Ok(()));
        }
        results
    }

    fn apply(&self, _ctx: &Context, doc: &Document) -> Result<(), PluginError> {
        let content = &doc.text();
        if let Some(path) = open_target(content) {
            return match std::fs::read_to_string(path) {
                Ok(text) => {
                    doc.replace(&text);
                    Ok(())
                }
                Err(e) => Err(PluginError::failed(format!("open {path}: {e}"))),
            };
        }
        if content.contains("HOSTILE:loop") {
            spin();
        }
        if content.contains("HOSTILE:alloc") {
            let sum = allocate_gib();
            return Err(PluginError::failed(format!(
                "hostile allocated 1 GiB ({sum})"
            )));
        }
        if content.contains("HOSTILE:recurse") {
            let n = recurse(0);
            return Err(PluginError::failed(format!(
                "hostile recursion ended ({n})"
            )));
        }
        if content.contains("HOSTILE:panic") {
            panic!("{PANIC_MESSAGE}");
        }
        if content.contains("HOSTILE:reject") {
            return Err(PluginError::rejected("hostile rejects"));
        }
        if content.contains("HOSTILE:fail") {
            return Err(PluginError::failed("hostile fails"));
        }
        if content.contains("HOSTILE:huge") {
            doc.replace(&"huge ".repeat(4 << 20));
        }
        let t = || doc.elements_anywhere("T");
        if content.contains("HOSTILE:texts") {
            for (i, e) in t()?.iter().enumerate() {
                doc.set_text(e, &format!("T{}", i + 1));
            }
        }
        if content.contains("HOSTILE:edit-replace") {
            if let Some(e) = t()?.first() {
                doc.set_text(e, "lost");
            }
            doc.replace("<replaced/>");
        }
        if content.contains("HOSTILE:replace-edit") {
            let first = t()?;
            doc.replace("<replaced/>");
            if let Some(e) = first.first() {
                doc.set_text(e, "too late");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_plugin_sdk::{Direction, Stage};

    fn ctx() -> Context {
        Context {
            port: "p".into(),
            direction: Direction::Inbound,
            stage: Stage::Pipeline,
        }
    }

    #[test]
    fn open_paths() {
        assert_eq!(
            open_target("<a>HOSTILE:open:/etc/passwd</a>"),
            Some("/etc/passwd")
        );
        assert_eq!(open_target("HOSTILE:open:/x y"), Some("/x"));
        assert_eq!(open_target("nothing"), None);
    }

    #[test]
    fn harmless_markers() {
        let run = |text: &str| {
            let d = Document::new("d", text);
            Hostile.apply(&ctx(), &d).and_then(|()| d.result())
        };
        assert_eq!(
            run("<a>HOSTILE:reject</a>").unwrap_err(),
            PluginError::rejected("hostile rejects")
        );
        assert_eq!(
            run("<a>HOSTILE:fail</a>").unwrap_err(),
            PluginError::failed("hostile fails")
        );
        assert_eq!(run("<a>fine</a>").unwrap(), "<a>fine</a>");
        let e = run("<a>HOSTILE:open:/definitely/not/here</a>").unwrap_err();
        assert!(
            e.reason().starts_with("open /definitely/not/here: "),
            "{e:?}"
        );
        let docs = [
            Document::new("a", "<a/>"),
            Document::new("b", "<b>HOSTILE:fewer</b>"),
        ];
        assert_eq!(Hostile.apply_batch(&ctx(), &docs).len(), 1);
        let docs = [Document::new("a", "<a>HOSTILE:more</a>")];
        assert_eq!(Hostile.apply_batch(&ctx(), &docs).len(), 2);
    }
}
