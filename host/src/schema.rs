//! The configuration file's schema, as the serde structs of
//! [`config`](crate::config) define it: every schema problem of a file at
//! once (unknown keys, wrong types, bad enum values), each with its key, and
//! the list of keys the schema knows.
//!
//! serde stops at the first error. [`deserialize`] parses the TOML document
//! once (keeping every span), and after each error removes the offending key
//! from the document and tries again, so the next error surfaces too. An
//! error that only the removal caused (a required key reported missing
//! because its misspelt form was removed) is not reported. The structs stay
//! the one definition of the schema: a key added to them is known here.

use std::ops::Range;

use serde::de::DeserializeOwned;
use toml::Spanned;
use toml::de::{DeTable, DeValue, Deserializer};

/// One problem with the file's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchemaProblem {
    /// Where, as a byte range of the file.
    pub span: Option<Range<usize>>,
    /// The dotted key (`ports.in.logging`); empty for a syntax error.
    pub key: String,
    /// What is wrong, as serde and toml said it.
    pub message: String,
}

/// At most this many problems are collected from one file.
const MAX_PROBLEMS: usize = 100;

/// Read `text` as a `T`, or every schema problem found.
pub fn deserialize<T: DeserializeOwned>(text: &str) -> Result<T, Vec<SchemaProblem>> {
    let mut root = DeTable::parse(text).map_err(|e| {
        vec![SchemaProblem {
            span: e.span(),
            key: String::new(),
            message: e.message().trim().to_string(),
        }]
    })?;
    let mut problems = Vec::new();
    let mut removed: Vec<(String, Range<usize>)> = Vec::new();
    while problems.len() < MAX_PROBLEMS {
        let err = match T::deserialize(Deserializer::from(root.clone())) {
            Ok(v) if problems.is_empty() => return Ok(v),
            Ok(_) => break,
            Err(e) => e,
        };
        let message = err.message().trim().to_string();
        let Some(span) = err.span() else {
            problems.push(SchemaProblem {
                span: None,
                key: String::new(),
                message,
            });
            break;
        };
        let pruned = prune(root.get_mut(), &span, "");
        let key = pruned.as_ref().map(|p| p.0.clone()).unwrap_or_default();
        // A table missing a key after one of its keys was removed (the
        // misspelt `adress` of a missing `address`) is that key's problem.
        let inside = format!("{key}.");
        let caused_by_removal = removed.iter().any(|(path, r)| {
            (span.start <= r.start && r.end <= span.end)
                || (message.starts_with("missing field") && path.starts_with(&inside))
        });
        if !caused_by_removal {
            problems.push(SchemaProblem {
                span: Some(span),
                key,
                message,
            });
        }
        match pruned {
            Some(p) => removed.push(p),
            None => break,
        }
    }
    problems.sort_by_key(|p| p.span.as_ref().map_or(0, |s| s.start));
    Err(problems)
}

/// Remove the innermost key of `table` whose key or value holds `span`;
/// its dotted path and the range it covered. (The span of a table written
/// as `[a.b]` need not cover its keys, so every table is searched.)
fn prune(
    table: &mut DeTable<'_>,
    span: &Range<usize>,
    prefix: &str,
) -> Option<(String, Range<usize>)> {
    let holds = |r: &Range<usize>| r.start <= span.start && span.end <= r.end;
    let mut hit = None;
    for (k, v) in table.iter_mut() {
        let path = if prefix.is_empty() {
            k.get_ref().to_string()
        } else {
            format!("{prefix}.{}", k.get_ref())
        };
        if let Some(found) = descend(v, span, &path) {
            return Some(found);
        }
        let (ks, vs) = (k.span(), v.span());
        if hit.is_none() && (holds(&ks) || holds(&vs)) {
            hit = Some((k.clone(), path, ks.start.min(vs.start)..ks.end.max(vs.end)));
        }
    }
    let (key, path, range) = hit?;
    table.remove(&key);
    Some((path, range))
}

fn descend(
    value: &mut Spanned<DeValue<'_>>,
    span: &Range<usize>,
    path: &str,
) -> Option<(String, Range<usize>)> {
    match value.get_mut() {
        DeValue::Table(t) => prune(t, span, path),
        DeValue::Array(items) => items.iter_mut().find_map(|item| descend(item, span, path)),
        _ => None,
    }
}

/// The keys of the schema `T`, found by probing: each probe is a document
/// with an unknown key `__probe__` in the table at `path`, whose error lists
/// the keys expected there. Returns `path.key` for each.
pub fn keys<T: DeserializeOwned>(probes: &[(&str, &str)]) -> Vec<String> {
    let mut out = Vec::new();
    for (path, doc) in probes {
        let Err(e) = toml::from_str::<T>(doc) else {
            continue;
        };
        let msg = e.message();
        let Some(at) = msg.find("expected") else {
            continue;
        };
        for (i, part) in msg[at..].split('`').enumerate() {
            if i % 2 == 1 {
                out.push(if path.is_empty() {
                    part.to_string()
                } else {
                    format!("{path}.{part}")
                });
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Doc {
        name: Option<String>,
        #[serde(default)]
        items: std::collections::BTreeMap<String, Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Item {
        size: u32,
        kind: Option<Kind>,
        #[serde(default)]
        parts: Vec<Part>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Part {
        kind: Kind,
    }

    #[derive(serde::Deserialize, Debug)]
    #[serde(rename_all = "lowercase")]
    enum Kind {
        Small,
        Large,
    }

    #[test]
    fn every_problem_is_collected_with_its_key() {
        let text = "nmae = 1\n[items.a]\nsize = \"big\"\nkind = \"huge\"\n\
                    parts = [{ kind = \"small\" }, { kind = \"tiny\" }]\n[items.b]\nsiez = 3\n";
        let problems = deserialize::<Doc>(text).unwrap_err();
        let keys: Vec<&str> = problems.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "nmae",
                "items.a.size",
                "items.a.kind",
                "items.a.parts.kind",
                "items.b.siez"
            ],
            "{problems:#?}"
        );
        assert!(problems[2].message.contains("huge"), "{problems:#?}");
        assert!(problems[2].message.contains("`large`"), "{problems:#?}");
        // `size` missing from items.b is the misspelling's consequence, not
        // a problem of its own.
        assert_eq!(problems.len(), 5, "{problems:#?}");
    }

    #[test]
    fn a_good_file_and_a_syntax_error() {
        let d = deserialize::<Doc>("name = \"x\"\n[items.a]\nsize = 1\n").unwrap();
        assert_eq!(d.items["a"].size, 1);
        let p = deserialize::<Doc>("name = \n").unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].key, "");
    }

    #[test]
    fn keys_are_probed_from_the_structs() {
        let keys = keys::<Doc>(&[
            ("", "__probe__ = 1"),
            ("items.NAME", "[items.a]\n__probe__ = 1"),
            ("items.NAME.parts", "[items.a]\nparts = [{ __probe__ = 1 }]"),
        ]);
        assert_eq!(
            keys,
            [
                "name",
                "items",
                "items.NAME.size",
                "items.NAME.kind",
                "items.NAME.parts",
                "items.NAME.parts.kind"
            ]
        );
    }
}
