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
//!
//! ## Cost
//!
//! The lookup tables are built once per instance, from the configuration
//! `init` gives. The document is parsed by the host: the rule asks it for
//! the elements of each mapped name and answers with `set-text` edits,
//! which the host applies; a document with nothing to replace passes
//! unchanged, and no document text crosses into the plugin.

use ferry_plugin_sdk::{Config, Context, Direction, Document, PluginError, Rule, config, log};
use std::collections::BTreeMap;

/// The value substitution rule: its plan, built once per instance.
pub struct ValueMap {
    plan: Plan,
}

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

    /// The replacement of `text` (an element's text) of element
    /// `element`, if any.
    pub fn lookup(&self, element: &str, text: &str) -> Result<Option<&str>, PluginError> {
        static NONE: BTreeMap<String, String> = BTreeMap::new();
        self.lookup_in(self.tables.get(element).unwrap_or(&NONE), element, text)
    }

    /// [`Plan::lookup`] with the element's table already found.
    fn lookup_in<'t>(
        &self,
        table: &'t BTreeMap<String, String>,
        element: &str,
        text: &str,
    ) -> Result<Option<&'t str>, PluginError> {
        let value = text.trim();
        if value.is_empty() {
            return Ok(None);
        }
        match table.get(value) {
            Some(new) => Ok(Some(new.as_str())),
            None if self.strict => Err(PluginError::rejected(format!(
                "value {value} of element {element} has no mapping"
            ))),
            None => Ok(None),
        }
    }

    /// Map `doc`: the elements of every mapped name (in an envelope, those
    /// of its body), by edits. Returns how many values were replaced.
    pub fn map(&self, doc: &Document) -> Result<usize, PluginError> {
        let mut edits = Vec::new();
        let mut found = false;
        for (element, table) in &self.tables {
            for e in doc.elements(element)? {
                found = true;
                let Some(text) = &e.text else { continue };
                if let Some(new) = self.lookup_in(table, element, text)? {
                    edits.push((e, new));
                }
            }
        }
        if !found && doc.is_envelope() && doc.body()?.is_none() {
            return Err(PluginError::rejected(
                "the envelope has no <Body> with <MessageParts>",
            ));
        }
        // Edits only once every value is known to map (strict).
        for (e, new) in &edits {
            doc.set_text(e, new);
        }
        Ok(edits.len())
    }
}

impl Rule for ValueMap {
    fn new(config: &Config) -> Result<Self, PluginError> {
        Ok(ValueMap {
            plan: Plan::from_options(&config.options, config.direction)?,
        })
    }

    fn apply(&self, ctx: &Context, doc: &Document) -> Result<(), PluginError> {
        let replaced = self.plan.map(doc)?;
        if log::enabled(ferry_plugin_sdk::Level::Debug) {
            log::debug_with(
                "value substitution",
                &[
                    ("document", &doc.name()),
                    ("direction", ctx.direction.as_str()),
                    ("replaced", &replaced.to_string()),
                ],
            );
        }
        Ok(())
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
        let mut config = testing::config(options);
        config.direction = direction;
        let doc = Document::new("o.xml", content);
        ValueMap::new(&config)?.apply(&ctx(direction), &doc)?;
        doc.result()
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
        // Text with no element at all is no XML document to map.
        let err = run(OPTS, Direction::Inbound, "plain text").unwrap_err();
        assert!(
            matches!(err, PluginError::Rejected(ref r) if r.contains("not XML")),
            "{err:?}"
        );
    }

    /// The mapping as the SDK's helpers do it (several passes in the
    /// guest): the mapping by the host's edits must give the same text, or
    /// the same kind of error.
    fn oracle(plan: &Plan, content: &str) -> Result<String, PluginError> {
        use ferry_plugin_sdk::envelope;
        let names: Vec<&str> = plan.tables.keys().map(String::as_str).collect();
        let map = |xml: &str| {
            envelope::map_element_text(xml, &names, |element, text| {
                let value = text.trim();
                if value.is_empty() {
                    return Ok(None);
                }
                match plan.tables.get(element).and_then(|t| t.get(value)) {
                    Some(new) => Ok(Some(new.clone())),
                    None if plan.strict => Err(PluginError::rejected(format!(
                        "value {value} of element {element} has no mapping"
                    ))),
                    None => Ok(None),
                }
            })
        };
        if envelope::is_envelope(content) {
            envelope::map_body(content, map)
        } else {
            map(content)
        }
    }

    #[test]
    fn mapping_by_edits_agrees_with_the_sdk_helpers() {
        let docs = [
            DOC.to_string(),
            DOC.replace("EXT-001</ItemId>", "EXT&#45;001</ItemId>"),
            DOC.replace("<ItemId> EXT-002 </ItemId>", "<ItemId><![CDATA[EXT-002]]></ItemId>"),
            DOC.replace("<ItemId>EXT-999</ItemId>", "<ItemId>EXT-001<!--c--></ItemId>"),
            DOC.replace("<SalesLine>", "<SalesLine><ItemId><ItemId>EXT-001</ItemId></ItemId>"),
            DOC.replace("<Body>", "<Body><Other><ItemId>EXT-001</ItemId></Other>"),
            DOC.replace("</Body>", "</Body><Body><MessageParts><ItemId>EXT-001</ItemId></MessageParts></Body>"),
            DOC.replace("</MessageParts>", "</MessageParts><MessageParts><ItemId>EXT-001</ItemId></MessageParts>"),
            DOC.replace("<Header>", "<Header><ItemId>EXT-001</ItemId>"),
            r#"<m:Envelope xmlns:m="urn:m"><m:Header/><m:Body><m:MessageParts><x:ItemId xmlns:x="urn:x">EXT-001</x:ItemId></m:MessageParts></m:Body></m:Envelope>"#.to_string(),
            "<Envelope><Body><MessageParts/></Body></Envelope>".to_string(),
            "<Envelope><Header/></Envelope>".to_string(),
            "<Envelope><Body/></Envelope>".to_string(),
            "<Envelope><Body><Other/></Body></Envelope>".to_string(),
            "<Lines><ItemId>EXT-001</ItemId><ItemId>\r\nEXT-002\r\n</ItemId></Lines>".to_string(),
            "<ItemId>EXT-001</ItemId>".to_string(),
            "<a><ItemId>EXT-001</a>".to_string(),
            "<a><ItemId>EXT-001</ItemId>".to_string(),
            "<a><ItemId>&bogus;</ItemId></a>".to_string(),
        ];
        for strict in [false, true] {
            let mut opts = OPTS.to_vec();
            opts.push(("map.EXT-001&", "1000&"));
            if strict {
                opts.push(("strict", "true"));
            }
            let opts: Vec<(String, String)> = opts
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            let plan = Plan::from_options(&opts, Direction::Inbound).unwrap();
            for doc in &docs {
                // The helpers write an empty `<MessageParts/>` back as
                // `<MessageParts></MessageParts>`; the one pass leaves a
                // document it does not change as it is.
                let want = oracle(&plan, doc)
                    .map(|w| w.replace("<MessageParts></MessageParts>", "<MessageParts/>"));
                let d = Document::new("o.xml", doc.as_str());
                let got = plan.map(&d).and_then(|_| d.result());
                match (&want, &got) {
                    (Ok(w), Ok(g)) => assert_eq!(g, w, "strict={strict} {doc}"),
                    (Err(PluginError::Rejected(_)), Err(PluginError::Rejected(_))) => {}
                    _ => panic!("strict={strict} {doc}: want {want:?}, got {got:?}"),
                }
            }
        }
    }

    #[test]
    fn the_plan_follows_the_configuration() {
        let first = run(OPTS, Direction::Inbound, DOC).unwrap();
        assert!(first.contains("<ItemId>1000</ItemId>"));
        let other = [("elements", "ItemId"), ("map.EXT-001", "2000")];
        let second = run(&other, Direction::Inbound, DOC).unwrap();
        assert!(second.contains("<ItemId>2000</ItemId>"), "{second}");
        let back = run(&other, Direction::Outbound, &second).unwrap();
        assert!(back.contains("<ItemId>EXT-001</ItemId>"), "{back}");
    }
}
