//! # set-header
//!
//! A rule (world `rule-plugin`) that sets one field of the AIF envelope's
//! header — `Envelope/Header/<field>` — to a configured value: the field's
//! text is replaced when it is there, else the field is added as the last
//! child of `Header` (indented like the field before it, with `Header`'s
//! prefix). Typical use: stamp the `Company` a partner never sends.
//!
//! The host has parsed the document: the rule reads the field and answers
//! with a `set-header` edit the host applies; the rest is kept byte for
//! byte. A document that is not an envelope, or whose header field holds
//! elements, is `rejected`.
//!
//! ## Options
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `field` | `Company` | local name of the header field |
//! | `value` | — (required) | its new text (escaped here) |
//! | `only_if_missing` | `false` | `true`: leave a field that is present and not empty |

use ferry_plugin_sdk::{Config, Context, Document, PluginError, Rule, config};

/// The rule: its setting, read once per instance.
pub struct SetHeader {
    setting: Setting,
}

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

    /// Set the field in `doc`, by an edit the host applies (none when it
    /// already holds the value, or holds one and `only_if_missing`).
    pub fn apply(&self, doc: &Document) -> Result<(), PluginError> {
        if !doc.is_envelope() {
            // Not well-formed, or another root: say which.
            doc.header(&self.field)?;
            return Err(PluginError::rejected(
                "not an AIF message envelope: the root element is not <Envelope>",
            ));
        }
        let current = doc.header(&self.field)?;
        let keep = match current.as_deref() {
            Some(c) => c == self.value || (self.only_if_missing && !c.trim().is_empty()),
            None => {
                let header = doc.elements_anywhere("Header")?;
                if !header
                    .iter()
                    .any(|h| doc.path(h).as_deref() == Some("Envelope/Header"))
                {
                    return Err(PluginError::rejected(
                        "the envelope has no <Header> before <Body>",
                    ));
                }
                false
            }
        };
        if !keep {
            doc.set_header(&self.field, &self.value);
        }
        Ok(())
    }
}

impl Rule for SetHeader {
    fn new(config: &Config) -> Result<Self, PluginError> {
        Ok(SetHeader {
            setting: Setting::from_options(&config.options)?,
        })
    }

    fn apply(&self, _ctx: &Context, doc: &Document) -> Result<(), PluginError> {
        self.setting.apply(doc)
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
        let config = testing::config(options);
        let ctx = Context {
            port: "orders".into(),
            direction: Direction::Inbound,
            stage: Stage::Pipeline,
        };
        let doc = Document::new("o.xml", content);
        SetHeader::new(&config)?.apply(&ctx, &doc)?;
        doc.result()
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
