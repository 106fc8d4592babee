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
//! The lookup tables are built from the configuration once and kept across
//! calls for as long as the configuration is the same (an instance's never
//! changes). A document is mapped in one pass of quick-xml; what is not
//! replaced is copied as is, and a document with nothing to replace is
//! handed back without a copy.

use ferry_plugin_sdk::envelope::escape;
use ferry_plugin_sdk::{Context, Direction, Document, PluginError, Rule, config, log};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

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
        let (out, replaced) = self.map(xml, false)?;
        Ok((out.into_owned(), replaced))
    }

    /// Map a document: its body when it is an AIF envelope, else all of it.
    pub fn apply_document(&self, content: &str) -> Result<(String, usize), PluginError> {
        let (out, replaced) = self.map(content, true)?;
        Ok((out.into_owned(), replaced))
    }

    /// The mapping in one pass over `xml`: when `envelope_body_only` and the
    /// root element is an `Envelope`, only the elements inside its
    /// `Body/MessageParts` are mapped (the first `Body` child of the root,
    /// its first `MessageParts` child); otherwise the whole document.
    /// Borrows `xml` when nothing was replaced.
    pub fn map<'a>(
        &self,
        xml: &'a str,
        envelope_body_only: bool,
    ) -> Result<(Cow<'a, str>, usize), PluginError> {
        let mut reader = Reader::from_str(xml);
        // Depth of the open elements; depth of the root is 1.
        let mut depth = 0usize;
        // Envelope mode: where `Body` and `MessageParts` were found (their
        // depths), and whether mapping is active (inside MessageParts).
        let mut envelope = false;
        let mut seen_root = false;
        let mut body_depth: Option<usize> = None;
        let mut parts_depth: Option<usize> = None;
        let mut seen_body = false;
        let mut seen_parts = false;
        let mut active = !envelope_body_only;
        // The element being looked at: name, its depth, offset after its
        // start tag. Dropped when it turns out to hold more than text.
        let mut candidate: Option<(&str, usize, usize)> = None;
        let mut out: Option<String> = None;
        let mut copied = 0usize;
        let mut replaced = 0usize;
        loop {
            let before = reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|e| {
                PluginError::rejected(format!(
                    "malformed XML near byte {}: {e}",
                    reader.error_position()
                ))
            })?;
            let after = reader.buffer_position() as usize;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let is_empty = matches!(event, Event::Empty(_));
                    candidate = None;
                    let name = e.local_name();
                    let local: &str = name.into_inner();
                    if envelope_body_only {
                        if depth == 0 && !seen_root {
                            seen_root = true;
                            envelope = local == "Envelope";
                            active = !envelope;
                        } else if envelope && depth == 1 && local == "Body" && !seen_body {
                            seen_body = true;
                            if !is_empty {
                                body_depth = Some(depth + 1);
                            }
                        } else if envelope
                            && body_depth == Some(depth)
                            && local == "MessageParts"
                            && !seen_parts
                        {
                            seen_parts = true;
                            if !is_empty {
                                parts_depth = Some(depth + 1);
                                active = true;
                            }
                        }
                    }
                    if !is_empty {
                        depth += 1;
                        if active && parts_depth.is_none_or(|p| depth > p) {
                            candidate = self
                                .tables
                                .get_key_value(local)
                                .map(|(k, _)| (k.as_str(), depth, after));
                        }
                    }
                }
                Event::End(_) => {
                    if let Some((name, d, open_end)) = candidate.take()
                        && d == depth
                    {
                        let raw = &xml[open_end..before];
                        if let Some(new) = self.lookup(name, raw)? {
                            let out = out.get_or_insert_with(|| String::with_capacity(xml.len()));
                            out.push_str(&xml[copied..open_end]);
                            out.push_str(&escape(new));
                            copied = before;
                            replaced += 1;
                        }
                    }
                    if parts_depth == Some(depth) {
                        parts_depth = None;
                        active = false;
                    }
                    if body_depth == Some(depth) {
                        body_depth = None;
                    }
                    depth = depth.saturating_sub(1);
                }
                Event::Comment(_) | Event::PI(_) => candidate = None,
                Event::Eof => break,
                _ => {}
            }
        }
        if depth > 0 {
            return Err(PluginError::rejected(
                "malformed XML: an element is not closed",
            ));
        }
        if envelope {
            if !seen_body {
                return Err(PluginError::rejected("the envelope has no <Body>"));
            }
            if !seen_parts {
                return Err(PluginError::rejected(
                    "the envelope's <Body> has no <MessageParts>",
                ));
            }
        }
        Ok(match out {
            None => (Cow::Borrowed(xml), 0),
            Some(mut out) => {
                out.push_str(&xml[copied..]);
                (Cow::Owned(out), replaced)
            }
        })
    }

    /// The replacement of the text `raw` (as written, between the tags) of
    /// element `element`, if any.
    fn lookup(&self, element: &str, raw: &str) -> Result<Option<&str>, PluginError> {
        let decoded;
        let text = if raw.contains(['&', '<', '\r']) {
            decoded = decode_text(raw)?;
            decoded.as_str()
        } else {
            raw
        };
        let value = text.trim();
        if value.is_empty() {
            return Ok(None);
        }
        match self.tables.get(element).and_then(|t| t.get(value)) {
            Some(new) => Ok(Some(new.as_str())),
            None if self.strict => Err(PluginError::rejected(format!(
                "value {value} of element {element} has no mapping"
            ))),
            None => Ok(None),
        }
    }
}

/// The text inside an element made of text, references and CDATA only.
fn decode_text(inner: &str) -> Result<String, PluginError> {
    let bad = |e: String| PluginError::rejected(e);
    let mut reader = Reader::from_str(inner);
    let mut out = String::new();
    loop {
        match reader
            .read_event()
            .map_err(|e| bad(format!("malformed XML text: {e}")))?
        {
            Event::Text(t) => out.push_str(&t.xml10_content()),
            Event::CData(c) => out.push_str(&c.xml10_content()),
            Event::GeneralRef(r) => {
                if let Some(ch) = r
                    .resolve_char_ref()
                    .map_err(|e| bad(format!("bad character reference: {e}")))?
                {
                    out.push(ch);
                } else {
                    let name = r.xml10_content();
                    let value = quick_xml::escape::resolve_predefined_entity(&name)
                        .ok_or_else(|| bad(format!("unknown entity &{name};")))?;
                    out.push_str(value);
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The plan for the current configuration and `direction`, built once and
/// kept across calls for as long as the configuration is the same (a
/// sandbox's configuration never changes, so in practice: once per
/// instance).
fn cached_plan(direction: Direction) -> Result<Rc<Plan>, PluginError> {
    /// The options a plan was built from, its direction, the plan.
    type Cached = (Vec<(String, String)>, Direction, Rc<Plan>);
    thread_local! {
        static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
    }
    let options = config::config();
    CACHE.with_borrow_mut(|cache| {
        if let Some((o, d, plan)) = cache
            && *d == direction
            && *o == options
        {
            return Ok(plan.clone());
        }
        let plan = Rc::new(Plan::from_options(&options, direction)?);
        *cache = Some((options, direction, plan.clone()));
        Ok(plan)
    })
}

impl Rule for ValueMap {
    fn apply(ctx: Context, doc: Document) -> Result<Document, PluginError> {
        let plan = cached_plan(ctx.direction)?;
        let (content, replaced) = plan.map(&doc.content, true)?;
        let content = match content {
            Cow::Borrowed(_) => None,
            Cow::Owned(c) => Some(c),
        };
        log::debug_with(
            "value substitution",
            &[
                ("document", &doc.name),
                ("direction", ctx.direction.as_str()),
                ("replaced", &replaced.to_string()),
            ],
        );
        Ok(match content {
            None => doc,
            Some(c) => doc.with_content(c),
        })
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

    /// The mapping as the SDK's helpers do it (several passes): the
    /// one-pass mapping must give the same text, or the same kind of error.
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
    fn one_pass_mapping_agrees_with_the_sdk_helpers() {
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
            "plain text".to_string(),
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
                let got = plan.apply_document(doc).map(|(s, _)| s);
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
