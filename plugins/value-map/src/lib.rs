//! # value-map
//!
//! Value substitution (AIF's "value substitution"), a rule (world
//! `rule-plugin`): lookup tables between external values (the partner's) and
//! internal values (Ferry's / the ERP's). On an inbound port the text of each
//! configured element is mapped external → internal; on an outbound port
//! internal → external (the table read backwards; when two external values
//! map to the same internal one, the first written wins).
//!
//! When the document is an AIF envelope only its body
//! (`Body/MessageParts`) is mapped; any other XML document is mapped whole.
//! Elements are matched by local name; only elements holding text alone are
//! mapped; surrounding whitespace is ignored when looking a value up; empty
//! elements are left alone.
//!
//! ## Options
//!
//! ```toml
//! [ports.orders.pipeline.options]          # however the port names it
//! elements = "CustAccount,ItemId"          # elements mapped with `map`
//! map = { "EXT-001" = "1000", "EXT-002" = "1001" }   # external = internal
//! map_CustAccount = { "C-ACME" = "US-001" }           # this element only
//! strict = "true"                          # unmapped value -> rejected
//! ```
//!
//! | key | meaning |
//! |-----|---------|
//! | `elements` | comma-separated local names of the elements mapped with the shared table `map` |
//! | `map.<external>` = `<internal>` | the shared table (a TOML table `map = {...}`, flattened by the host; a key `map` holding the table's TOML text works too) |
//! | `map_<Element>.<external>` = `<internal>` | a table for one element; that element is mapped with it (instead of `map`), listed in `elements` or not |
//! | `strict` | `true`: a value with no mapping is `rejected("value X of element Y has no mapping")`; default `false`: it passes unchanged |
//!
//! A configuration with no element to map, or no table, fails every call.

use ferry_plugin_sdk::{Context, Direction, Document, PluginError, Rule, config, envelope, log};
use std::collections::BTreeMap;

/// The value substitution rule.
pub struct ValueMap;

ferry_plugin_sdk::export_rule!(ValueMap);

/// The lookups to apply for one direction.
#[derive(Debug, Default)]
pub struct Plan {
    /// Element local name → its lookup (value as found → replacement).
    pub tables: BTreeMap<String, BTreeMap<String, String>>,
    /// Reject unmapped values.
    pub strict: bool,
}

fn lookup(entries: &[(String, String)], direction: Direction) -> BTreeMap<String, String> {
    let mut table = BTreeMap::new();
    for (external, internal) in entries {
        let (from, to) = match direction {
            Direction::Inbound => (external, internal),
            Direction::Outbound => (internal, external),
        };
        table.entry(from.clone()).or_insert_with(|| to.clone());
    }
    table
}

impl Plan {
    /// Build the plan from the options, for `direction`.
    pub fn from_options(
        options: &[(String, String)],
        direction: Direction,
    ) -> Result<Plan, PluginError> {
        let get = |key: &str| {
            options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let strict = match get("strict") {
            Some(v) => config::parse_bool("strict", v)?,
            None => false,
        };
        let shared = config::table_from(options, "map")?;
        let listed = get("elements").map(config::split_list).unwrap_or_default();

        let mut tables = BTreeMap::new();
        if !listed.is_empty() {
            if shared.is_empty() {
                return Err(PluginError::failed(format!(
                    "value-map: `elements` = {:?} but the table `map` is empty: give `map.<external> = \"<internal>\"`",
                    listed.join(",")
                )));
            }
            let table = lookup(&shared, direction);
            for element in &listed {
                tables.insert(element.clone(), table.clone());
            }
        }
        // Per-element tables: keys `map_<Element>` (TOML text) or `map_<Element>.<external>`.
        let mut own: Vec<String> = Vec::new();
        for (key, _) in options {
            if let Some(rest) = key.strip_prefix("map_") {
                let element = rest.split('.').next().unwrap_or(rest);
                if !element.is_empty() && !own.iter().any(|e| e == element) {
                    own.push(element.to_string());
                }
            }
        }
        for element in own {
            let entries = config::table_from(options, &format!("map_{element}"))?;
            tables.insert(element, lookup(&entries, direction));
        }
        if tables.is_empty() {
            return Err(PluginError::failed(
                "value-map: nothing to map: set `elements` and `map`, or `map_<Element>` tables",
            ));
        }
        Ok(Plan { tables, strict })
    }

    /// Map the elements of `xml` (a fragment or a whole document); returns
    /// the new text and how many values were replaced.
    pub fn apply_to(&self, xml: &str) -> Result<(String, usize), PluginError> {
        let names: Vec<&str> = self.tables.keys().map(String::as_str).collect();
        let mut replaced = 0;
        let out = envelope::map_element_text(xml, &names, |element, text| {
            let value = text.trim();
            if value.is_empty() {
                return Ok(None);
            }
            match self.tables.get(element).and_then(|t| t.get(value)) {
                Some(new) => {
                    replaced += 1;
                    Ok(Some(new.clone()))
                }
                None if self.strict => Err(PluginError::rejected(format!(
                    "value {value} of element {element} has no mapping"
                ))),
                None => Ok(None),
            }
        })?;
        Ok((out, replaced))
    }

    /// Map a document: its body when it is an AIF envelope, else all of it.
    pub fn apply_document(&self, content: &str) -> Result<(String, usize), PluginError> {
        if envelope::is_envelope(content) {
            let mut replaced = 0;
            let out = envelope::map_body(content, |body| {
                let (b, n) = self.apply_to(body)?;
                replaced = n;
                Ok::<_, PluginError>(b)
            })?;
            Ok((out, replaced))
        } else {
            self.apply_to(content)
        }
    }
}

impl Rule for ValueMap {
    fn apply(ctx: Context, doc: Document) -> Result<Document, PluginError> {
        let plan = Plan::from_options(&config::config(), ctx.direction)?;
        let (content, replaced) = plan.apply_document(&doc.content)?;
        log::debug_with(
            "value substitution",
            &[
                ("document", &doc.name),
                ("direction", ctx.direction.as_str()),
                ("replaced", &replaced.to_string()),
            ],
        );
        Ok(doc.with_content(content))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_plugin_sdk::{Stage, testing};

    const DOC: &str = r#"<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message"><Header><Action>urn:x/create</Action><Company>EXT-001</Company></Header><Body><MessageParts><SalesOrder><SalesTable><CustAccount>C-ACME</CustAccount><SalesLine><ItemId>EXT-001</ItemId></SalesLine><SalesLine><ItemId> EXT-002 </ItemId></SalesLine><SalesLine><ItemId>EXT-999</ItemId></SalesLine><SalesLine><ItemId/></SalesLine></SalesTable></SalesOrder></MessageParts></Body></Envelope>"#;

    fn ctx(direction: Direction) -> Context {
        Context {
            port: "orders".into(),
            direction,
            stage: Stage::Pipeline,
        }
    }

    fn run(
        options: &[(&str, &str)],
        direction: Direction,
        content: &str,
    ) -> Result<String, PluginError> {
        testing::reset();
        testing::set_config(options);
        ValueMap::apply(ctx(direction), Document::new("o.xml", content)).map(|d| d.content)
    }

    const OPTS: &[(&str, &str)] = &[
        ("elements", "ItemId"),
        ("map.EXT-001", "1000"),
        ("map.EXT-002", "1001"),
        ("map_CustAccount.C-ACME", "US-001"),
    ];

    #[test]
    fn maps_inbound_in_the_body_only() {
        let out = run(OPTS, Direction::Inbound, DOC).unwrap();
        let expected = DOC
            .replace("<ItemId>EXT-001</ItemId>", "<ItemId>1000</ItemId>")
            .replace("<ItemId> EXT-002 </ItemId>", "<ItemId>1001</ItemId>")
            .replace(
                "<CustAccount>C-ACME</CustAccount>",
                "<CustAccount>US-001</CustAccount>",
            );
        assert_eq!(out, expected);
        // The header's Company is not touched even though its value is mapped.
        assert!(out.contains("<Company>EXT-001</Company>"));
        let log = &testing::logs()[0];
        assert_eq!(log.field("replaced"), Some("3"));
    }

    #[test]
    fn maps_outbound_in_reverse() {
        let inbound = run(OPTS, Direction::Inbound, DOC).unwrap();
        let back = run(OPTS, Direction::Outbound, &inbound).unwrap();
        assert_eq!(
            back,
            DOC.replace("<ItemId> EXT-002 </ItemId>", "<ItemId>EXT-002</ItemId>")
        );
    }

    #[test]
    fn strict_rejects_unmapped_values() {
        let mut opts = OPTS.to_vec();
        opts.push(("strict", "true"));
        let err = run(&opts, Direction::Inbound, DOC).unwrap_err();
        assert_eq!(
            err,
            PluginError::Rejected("value EXT-999 of element ItemId has no mapping".into())
        );
    }

    #[test]
    fn maps_plain_documents_and_toml_text_tables() {
        let opts = [
            ("elements", "ItemId"),
            ("map", "{ \"EXT-001\" = \"1000\" }"),
        ];
        let out = run(
            &opts,
            Direction::Inbound,
            "<Lines><ItemId>EXT-001</ItemId></Lines>",
        )
        .unwrap();
        assert_eq!(out, "<Lines><ItemId>1000</ItemId></Lines>");
    }

    #[test]
    fn reverse_duplicates_take_the_first() {
        let opts = [("elements", "ItemId"), ("map.A", "1"), ("map.B", "1")];
        let out = run(&opts, Direction::Outbound, "<ItemId>1</ItemId>").unwrap();
        assert_eq!(out, "<ItemId>A</ItemId>");
    }

    #[test]
    fn configuration_errors_fail() {
        let err = run(&[], Direction::Inbound, DOC).unwrap_err();
        assert!(
            matches!(err, PluginError::Failed(ref r) if r.contains("nothing to map")),
            "{err:?}"
        );
        let err = run(&[("elements", "ItemId")], Direction::Inbound, DOC).unwrap_err();
        assert!(
            matches!(err, PluginError::Failed(ref r) if r.contains("`map`")),
            "{err:?}"
        );
        let err = run(
            &[("elements", "X"), ("map.a", "b"), ("strict", "sure")],
            Direction::Inbound,
            DOC,
        )
        .unwrap_err();
        assert!(
            matches!(err, PluginError::Failed(ref r) if r.contains("strict")),
            "{err:?}"
        );
    }

    #[test]
    fn malformed_documents_are_rejected() {
        let err = run(OPTS, Direction::Inbound, "<a><ItemId>EXT-001</a>").unwrap_err();
        assert!(matches!(err, PluginError::Rejected(_)), "{err:?}");
    }
}
