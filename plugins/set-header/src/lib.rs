//! # set-header
//!
//! A rule (world `rule-plugin`) that sets one field of the AIF envelope's
//! header — `Envelope/Header/<field>` — to a configured value: the field's
//! text is replaced when it is there, else the field is added as the last
//! child of `Header` (indented like the field before it, with `Header`'s
//! prefix). Typical use: stamp the `Company` a partner never sends.
//!
//! Only the document up to the end of `Header` is read; the rest (the body)
//! is kept byte for byte and not parsed: the host reads the whole envelope
//! again after the pipeline. A document that is not an envelope, or whose
//! header field holds elements, is `rejected`.
//!
//! ## Options
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `field` | `Company` | local name of the header field |
//! | `value` | — (required) | its new text (escaped here) |
//! | `only_if_missing` | `false` | `true`: leave a field that is present and not empty |

use ferry_plugin_sdk::envelope::escape;
use ferry_plugin_sdk::{Context, Document, PluginError, Rule, config};
use quick_xml::Reader;
use quick_xml::events::Event;
use std::borrow::Cow;

/// The rule.
pub struct SetHeader;

ferry_plugin_sdk::export_rule!(SetHeader);

/// What to set.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Setting {
    /// The header field's local name.
    pub field: String,
    /// Its new text.
    pub value: String,
    /// Leave a present, non-empty field alone.
    pub only_if_missing: bool,
}

impl Setting {
    /// Read the options.
    pub fn from_options(options: &[(String, String)]) -> Result<Setting, PluginError> {
        let get = |key: &str| {
            options
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, v)| v.as_str())
        };
        let field = get("field").unwrap_or("Company").trim().to_string();
        if field.is_empty() || field.contains(|c: char| c.is_whitespace() || "<>&/:".contains(c)) {
            return Err(PluginError::failed(format!(
                "set-header: `field` = {field:?} is not an element name"
            )));
        }
        let value = get("value")
            .ok_or_else(|| PluginError::failed("set-header: the option `value` is required"))?
            .to_string();
        let only_if_missing = match get("only_if_missing") {
            Some(v) => config::parse_bool("only_if_missing", v)?,
            None => false,
        };
        Ok(Setting {
            field,
            value,
            only_if_missing,
        })
    }

    /// Set the field in `xml` (borrowed back when nothing changes).
    pub fn apply<'a>(&self, xml: &'a str) -> Result<Cow<'a, str>, PluginError> {
        let bad = |m: String| PluginError::rejected(m);
        let mut reader = Reader::from_str(xml);
        // Open elements; the root is at depth 1 once open.
        let mut depth = 0usize;
        // The open Header: its qualified name's prefix.
        let mut header_prefix: Option<String> = None;
        // The header child being read: (is the field, start, open end).
        let mut child: Option<(bool, usize, usize)> = None;
        // The field's text (start, end), once read.
        let mut field: Option<(usize, usize)> = None;
        // The last header child: (start, end).
        let mut last: Option<(usize, usize)> = None;
        let escaped = escape(&self.value);
        loop {
            let before = reader.buffer_position() as usize;
            let event = reader.read_event().map_err(|e| {
                bad(format!(
                    "malformed XML near byte {}: {e}",
                    reader.error_position()
                ))
            })?;
            let after = reader.buffer_position() as usize;
            match event {
                Event::Start(ref e) | Event::Empty(ref e) => {
                    let empty = matches!(event, Event::Empty(_));
                    let local: &str = e.local_name().into_inner();
                    let qname: &str = e.name().into_inner();
                    let in_header = header_prefix.is_some();
                    match depth {
                        0 if local != "Envelope" => {
                            return Err(bad(format!(
                                "not an AIF message envelope: the root element is <{qname}>, not <Envelope>"
                            )));
                        }
                        1 if local == "Header" => {
                            let prefix = qname.strip_suffix(local).unwrap_or("");
                            if empty {
                                let f = &self.field;
                                return Ok(Cow::Owned(format!(
                                    "{}{}><{prefix}{f}>{escaped}</{prefix}{f}></{qname}>{}",
                                    &xml[..before],
                                    open_tag(&xml[before..after]),
                                    &xml[after..]
                                )));
                            }
                            header_prefix = Some(prefix.to_string());
                        }
                        1 if local == "Body" => {
                            return Err(bad("the envelope has no <Header> before <Body>".into()));
                        }
                        2 if in_header => {
                            let is_field = local == self.field && field.is_none();
                            if empty && is_field {
                                // `<Company/>`: empty, so missing; filled.
                                return Ok(Cow::Owned(format!(
                                    "{}{}>{escaped}</{qname}>{}",
                                    &xml[..before],
                                    open_tag(&xml[before..after]),
                                    &xml[after..]
                                )));
                            }
                            if empty {
                                last = Some((before, after));
                            } else {
                                child = Some((is_field, before, after));
                            }
                        }
                        3 if in_header && child.is_some_and(|c| c.0) => {
                            return Err(bad(format!(
                                "header field <{}> holds elements, not text",
                                self.field
                            )));
                        }
                        _ => {}
                    }
                    if !empty {
                        depth += 1;
                    }
                }
                Event::End(_) => {
                    depth = depth.saturating_sub(1);
                    if header_prefix.is_some() {
                        if depth == 2
                            && let Some((is_field, start, open_end)) = child.take()
                        {
                            if is_field {
                                field = Some((open_end, before));
                            }
                            last = Some((start, after));
                        } else if depth == 1 {
                            return Ok(self.splice(
                                xml,
                                field,
                                before,
                                last,
                                header_prefix.as_deref().unwrap_or(""),
                                &escaped,
                            ));
                        }
                    }
                    if depth == 0 {
                        break;
                    }
                }
                Event::Comment(_) | Event::PI(_) if depth == 3 && child.is_some_and(|c| c.0) => {
                    return Err(bad(format!(
                        "header field <{}> holds a comment or instruction, not only text",
                        self.field
                    )));
                }
                Event::Eof => break,
                _ => {}
            }
        }
        Err(bad("the envelope has no <Header>".into()))
    }

    /// The document with the field set, given what was found in the header.
    fn splice<'a>(
        &self,
        xml: &'a str,
        field: Option<(usize, usize)>,
        header_close: usize,
        last: Option<(usize, usize)>,
        prefix: &str,
        escaped: &str,
    ) -> Cow<'a, str> {
        if let Some((start, end)) = field {
            let current = &xml[start..end];
            if (self.only_if_missing && !current.trim().is_empty()) || current == escaped {
                return Cow::Borrowed(xml);
            }
            let mut out = String::with_capacity(xml.len() + escaped.len());
            out.push_str(&xml[..start]);
            out.push_str(escaped);
            out.push_str(&xml[end..]);
            return Cow::Owned(out);
        }
        let f = &self.field;
        let new_field = format!("<{prefix}{f}>{escaped}</{prefix}{f}>");
        // After the last field, indented like it; else just before `</Header>`.
        let (at, indent) = match last {
            Some((start, end)) => {
                let head = &xml[..start];
                let trimmed = head.trim_end_matches([' ', '\t', '\r', '\n']);
                (end, &head[trimmed.len()..])
            }
            None => (header_close, ""),
        };
        let mut out = String::with_capacity(xml.len() + indent.len() + new_field.len());
        out.push_str(&xml[..at]);
        out.push_str(indent);
        out.push_str(&new_field);
        out.push_str(&xml[at..]);
        Cow::Owned(out)
    }
}

/// An empty-element tag `<x a="1"/>` without its `/>`: `<x a="1"`.
fn open_tag(tag: &str) -> &str {
    tag.trim_end_matches('>').trim_end_matches('/').trim_end()
}

impl Rule for SetHeader {
    fn apply(_ctx: Context, doc: Document) -> Result<Document, PluginError> {
        let setting = Setting::from_options(&config::config())?;
        Ok(match setting.apply(&doc.content)? {
            Cow::Borrowed(_) => doc,
            Cow::Owned(c) => doc.with_content(c),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_plugin_sdk::{Direction, Stage, envelope, testing};

    const ENV: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <Header>
    <MessageId>{5603D03A-4380-404D-9F1F-000000000001}</MessageId>
    <Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action>
  </Header>
  <Body>
    <MessageParts><SalesOrder><Company>not the header</Company></SalesOrder></MessageParts>
  </Body>
</Envelope>
"#;

    fn run(options: &[(&str, &str)], content: &str) -> Result<String, PluginError> {
        testing::reset();
        testing::set_config(options);
        let ctx = Context {
            port: "orders".into(),
            direction: Direction::Inbound,
            stage: Stage::Pipeline,
        };
        SetHeader::apply(ctx, Document::new("o.xml", content)).map(|d| d.content)
    }

    #[test]
    fn agrees_with_the_sdk_helper() {
        let docs = [
            ENV.to_string(),
            ENV.replace("<Action>", "<Company>old</Company>\n    <Action>"),
            ENV.replace("<Action>", "<Company/><Action>"),
            ENV.replace("<Action>", "<Company></Company><Action>"),
            r#"<m:Envelope xmlns:m="urn:m"><m:Header><m:Action>a</m:Action></m:Header><m:Body><m:MessageParts/></m:Body></m:Envelope>"#.into(),
            "<Envelope><Header/><Body/></Envelope>".into(),
            "<Envelope><Header></Header><Body/></Envelope>".into(),
        ];
        for doc in &docs {
            let got = run(&[("value", "D&T")], doc).unwrap();
            let want = envelope::set_header(doc, "Company", "D&T").unwrap();
            assert_eq!(got, want, "{doc}");
            assert_eq!(envelope::header(&got, "Company").as_deref(), Some("D&T"));
        }
    }

    #[test]
    fn options() {
        let with = ENV.replace("<Action>", "<Company>old</Company><Action>");
        let out = run(&[("value", "dat"), ("only_if_missing", "true")], &with).unwrap();
        assert_eq!(out, with);
        let out = run(&[("value", "dat"), ("only_if_missing", "yes")], ENV).unwrap();
        assert_eq!(envelope::header(&out, "Company").as_deref(), Some("dat"));
        let out = run(&[("field", "LogonAsUser"), ("value", "u1")], ENV).unwrap();
        assert_eq!(envelope::header(&out, "LogonAsUser").as_deref(), Some("u1"));
        let err = run(&[], ENV).unwrap_err();
        assert!(
            matches!(err, PluginError::Failed(ref m) if m.contains("value")),
            "{err:?}"
        );
        let err = run(&[("field", "a b"), ("value", "x")], ENV).unwrap_err();
        assert!(matches!(err, PluginError::Failed(_)), "{err:?}");
    }

    #[test]
    fn rejects_what_is_no_envelope() {
        for doc in [
            "<SalesOrder/>",
            "<Envelope><Body/></Envelope>",
            "<Envelope><Header><Company><X/></Company></Header></Envelope>",
            "<Envelope><Header><Company>a",
            "not xml",
        ] {
            let err = run(&[("value", "x")], doc).unwrap_err();
            assert!(matches!(err, PluginError::Rejected(_)), "{doc}: {err:?}");
        }
    }
}
