//! The options a plugin declares: name, type, default and one line of doc,
//! carried inside the component in a custom section named `ferry:plugin`,
//! so the host reads them at load without instantiating anything.
//!
//! The section holds the plugin project's `ferry-plugin.toml` as it is
//! (`ferry plugin build` and the repository's builds append it); only its
//! `[[options]]` tables are read here:
//!
//! ```toml
//! [[options]]
//! name = "max_file_size"
//! type = "integer"          # string | integer | boolean | table
//! default = "10485760"
//! doc = "largest file received, in bytes"
//! ```
//!
//! A `table` option takes nested keys (`map = { "A" = "1" }` reaches the
//! plugin as `map.A`); a `*` in a name matches any text (`map_*`). A
//! component without the section declares nothing, and its options are not
//! checked.

use serde::Deserialize;

/// The custom section's name.
pub const SECTION: &str = "ferry:plugin";

/// The type of an option's value (as the plugin receives it: a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptionType {
    /// Any text.
    String,
    /// A whole number.
    Integer,
    /// `true` or `false`.
    Boolean,
    /// A table of keys (each reaching the plugin as `name.key`).
    Table,
}

impl OptionType {
    fn name(self) -> &'static str {
        match self {
            OptionType::String => "string",
            OptionType::Integer => "integer",
            OptionType::Boolean => "boolean",
            OptionType::Table => "table",
        }
    }
}

/// One declared option.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OptionDecl {
    /// Its name (`*` matches any text).
    pub name: String,
    /// The type of its value.
    #[serde(rename = "type")]
    pub ty: OptionType,
    /// Its default, as text (none: no default).
    pub default: Option<String>,
    /// One line of documentation.
    #[serde(default)]
    pub doc: String,
}

#[derive(Deserialize)]
struct Manifest {
    /// None: the manifest says nothing about options (not checked);
    /// `options = []`: the plugin takes none.
    options: Option<Vec<OptionDecl>>,
}

/// The options declared by the component `bytes`: `None` when it has no
/// `ferry:plugin` section or the section says nothing of options, an error
/// when the section is not a valid declaration.
pub fn read(bytes: &[u8]) -> Result<Option<Vec<OptionDecl>>, String> {
    let Some(payload) = custom_section(bytes, SECTION) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(payload)
        .map_err(|_| format!("its {SECTION} section is not UTF-8 text"))?;
    let m: Manifest = toml::from_str(text)
        .map_err(|e| format!("its {SECTION} section is not valid: {}", e.message().trim()))?;
    Ok(m.options)
}

/// The payload of the top-level custom section `name` of a component or
/// module, if it has one.
fn custom_section<'b>(bytes: &'b [u8], name: &str) -> Option<&'b [u8]> {
    let mut at = 8; // magic and version
    while at < bytes.len() {
        let id = bytes[at];
        let (size, n) = leb128(&bytes[at + 1..])?;
        let start = at + 1 + n;
        let end = start.checked_add(size)?;
        let payload = bytes.get(start..end)?;
        if id == 0 {
            let (len, n) = leb128(payload)?;
            let section_name = payload.get(n..n.checked_add(len)?)?;
            if section_name == name.as_bytes() {
                return Some(&payload[n + len..]);
            }
        }
        at = end;
    }
    None
}

fn leb128(bytes: &[u8]) -> Option<(usize, usize)> {
    let mut value: usize = 0;
    for (i, b) in bytes.iter().take(5).enumerate() {
        value |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((value, i + 1));
        }
    }
    None
}

/// Append a `ferry:plugin` custom section holding `manifest` (the text of a
/// `ferry-plugin.toml`) to `component`, which should have none yet (the
/// first one is read).
pub fn embed(component: &mut Vec<u8>, manifest: &str) {
    fn push_leb(out: &mut Vec<u8>, mut v: usize) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    let mut payload = Vec::new();
    push_leb(&mut payload, SECTION.len());
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(manifest.as_bytes());
    component.push(0);
    push_leb(component, payload.len());
    component.extend_from_slice(&payload);
}

/// What is wrong with `options` (flattened `key = value` pairs, as the
/// plugin would receive them) against the declarations `decls`: unknown
/// options and values of the wrong type, one line each.
pub fn check(decls: &[OptionDecl], options: &[(String, String)]) -> Vec<String> {
    let mut problems = Vec::new();
    for (key, value) in options {
        let head = key.split('.').next().unwrap_or(key);
        let decl = decls.iter().find(|d| {
            if d.ty == OptionType::Table {
                crate::glob::glob_match(&d.name, head)
            } else {
                crate::glob::glob_match(&d.name, key)
            }
        });
        let Some(d) = decl else {
            let known: Vec<&str> = decls.iter().map(|d| d.name.as_str()).collect();
            let near = decls
                .iter()
                .find(|d| similar(&d.name, head))
                .map(|d| format!("; did you mean `{}`?", d.name))
                .unwrap_or_default();
            problems.push(format!(
                "unknown option `{key}`{near} (the plugin's options: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ));
            continue;
        };
        let ok = match d.ty {
            OptionType::String | OptionType::Table => true,
            OptionType::Integer => value.trim().parse::<i64>().is_ok(),
            OptionType::Boolean => matches!(value.trim(), "true" | "false"),
        };
        if !ok {
            problems.push(format!(
                "option `{key}` must be {} {}, not {value:?}",
                if d.ty == OptionType::Integer {
                    "an"
                } else {
                    "a"
                },
                d.ty.name()
            ));
        }
    }
    problems
}

/// Whether `a` and `b` differ by one edit, or one swap of neighbours.
fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    if a == b || a.len().abs_diff(b.len()) > 1 {
        return false;
    }
    let prefix = a.iter().zip(&b).take_while(|(x, y)| x == y).count();
    let suffix = a
        .iter()
        .rev()
        .zip(b.iter().rev())
        .take_while(|(x, y)| x == y)
        .count();
    let swapped = a.len() == b.len()
        && prefix + 2 <= a.len()
        && a[prefix] == b[prefix + 1]
        && a[prefix + 1] == b[prefix]
        && a[prefix + 2..] == b[prefix + 2..];
    prefix + suffix + 1 >= a.len().max(b.len()) || swapped
}

/// The declarations as `ferry plugin check` prints them, one per line.
pub fn describe(decls: &[OptionDecl]) -> Vec<String> {
    decls
        .iter()
        .map(|d| {
            let default = d
                .default
                .as_deref()
                .map(|v| format!(" = {v:?}"))
                .unwrap_or_default();
            format!("{} ({}){default}: {}", d.name, d.ty.name(), d.doc)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const MANIFEST: &str = r#"
name = "file-adapter"
world = "adapter"

[[options]]
name = "max_file_size"
type = "integer"
default = "10485760"
doc = "largest file received, in bytes"

[[options]]
name = "on_commit"
type = "string"
doc = "delete or move"

[[options]]
name = "map_*"
type = "table"
doc = "a table per element"

[[options]]
name = "strict"
type = "boolean"
"#;

    fn decls() -> Vec<OptionDecl> {
        // The smallest component: magic and version, nothing else.
        let mut c = b"\0asm\x0d\x00\x01\x00".to_vec();
        assert_eq!(read(&c), Ok(None));
        embed(&mut c, MANIFEST);
        read(&c).unwrap().unwrap()
    }

    #[test]
    fn declarations_travel_in_the_custom_section() {
        let d = decls();
        assert_eq!(d.len(), 4);
        assert_eq!(d[0].name, "max_file_size");
        assert_eq!(d[0].ty, OptionType::Integer);
        assert_eq!(d[0].default.as_deref(), Some("10485760"));
        assert_eq!(
            describe(&d)[0],
            "max_file_size (integer) = \"10485760\": largest file received, in bytes"
        );
        let mut bad = b"\0asm\x0d\x00\x01\x00".to_vec();
        embed(&mut bad, "[[options]]\nname = \"x\"\ntype = \"float\"\n");
        assert!(read(&bad).unwrap_err().contains("float"));
    }

    #[test]
    fn unknown_options_and_wrong_types_are_found() {
        let opts = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let good = opts(&[
            ("max_file_size", "5"),
            ("on_commit", "move"),
            ("map_ItemId.A", "1"),
            ("strict", "true"),
        ]);
        assert_eq!(check(&decls(), &good), Vec::<String>::new());
        let bad = opts(&[
            ("max_file_sise", "5"),
            ("on_comit", "move"),
            ("max_file_size", "big"),
            ("strict", "yes"),
        ]);
        let p = check(&decls(), &bad);
        assert_eq!(p.len(), 4, "{p:#?}");
        assert!(p[0].starts_with("unknown option `max_file_sise`; did you mean `max_file_size`?"));
        assert!(p[1].contains("did you mean `on_commit`?"));
        assert_eq!(
            p[2],
            "option `max_file_size` must be an integer, not \"big\""
        );
        assert_eq!(p[3], "option `strict` must be a boolean, not \"yes\"");
    }
}
