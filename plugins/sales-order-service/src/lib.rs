//! # sales-order-service
//!
//! The example document service (world `service-plugin`), modelled on AIF's
//! `SalesOrderService`. It keeps no data: it answers deterministically.
//!
//! - **`create`** (an `Action` ending in `/create`, e.g.
//!   `http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create`):
//!   the body must hold a `SalesOrder` document, else the request is
//!   `rejected`. The response is an `EntityKeyList` with one `EntityKey`
//!   (field `SalesId`) per `SalesTable` of the order (one for the whole order
//!   if it has none). The `SalesId` is `SO-` + the table's `PurchOrderFormNum`
//!   (or else its `CustAccount`) + `-` + 8 hex digits of a hash (FNV-1a) of
//!   the table's XML; `SO-` + the hash alone when neither is there. When the
//!   option `forward_port` is set, the request body is also sent to that
//!   outbound port through the Send API.
//! - **`read`** (`.../read`): the body must hold an `EntityKeyList`, else
//!   `rejected`. For each `EntityKey` the response holds one small `SalesOrder`
//!   document (one response document per key) with that `SalesId`. A key
//!   without a `SalesId` field is `rejected`.
//! - Any other operation is answered with the fault `UnknownAction`.
//!
//! ## Options
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `forward_port` | — | outbound port that gets a copy of each created order |
//! | `forward_action` | the request's `Action` | `Action` of the forwarded copy |

use ferry_plugin_sdk::{
    Config, Context, PluginError, Request, Service, ServiceError, config, envelope, log, send,
};

/// Namespace of AIF's `SalesOrder` document.
pub const SALES_ORDER_NS: &str =
    "http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder";
/// Namespace of AIF's `EntityKeyList`.
pub const ENTITY_KEY_LIST_NS: &str =
    "http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKeyList";
/// Namespace of AIF's `EntityKey`.
pub const ENTITY_KEY_NS: &str = "http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKey";

/// The example sales order service.
pub struct SalesOrderService;

ferry_plugin_sdk::export_service!(SalesOrderService);

/// 32-bit FNV-1a.
fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The `SalesId` given to a sales table (its XML, verbatim).
pub fn sales_id(table_xml: &str) -> String {
    key_of(table_xml, |local| envelope::element_text(table_xml, local))
}

/// [`sales_id`] of a table of an already parsed order.
fn table_key(table: &envelope::Node<'_, '_>) -> String {
    key_of(table.outer(), |local| table.element_text(local))
}

/// The `SalesId` of the table `table_xml`, whose element texts `text` gives.
fn key_of(table_xml: &str, text: impl Fn(&str) -> Option<String>) -> String {
    let hash = fnv1a(table_xml.as_bytes());
    let key = text("PurchOrderFormNum")
        .filter(|k| !k.trim().is_empty())
        .or_else(|| text("CustAccount"))
        .map(|k| {
            k.trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .take(20)
                .collect::<String>()
        })
        .filter(|k| !k.is_empty());
    match key {
        Some(k) => format!("SO-{k}-{hash:08X}"),
        None => format!("SO-{hash:08X}"),
    }
}

/// An `EntityKeyList` holding one `SalesId` key per id.
pub fn entity_key_list(ids: &[String]) -> String {
    let mut out = format!("<EntityKeyList xmlns=\"{ENTITY_KEY_LIST_NS}\">");
    for id in ids {
        out.push_str(&format!(
            "<EntityKey xmlns=\"{ENTITY_KEY_NS}\"><KeyData><KeyField><Field>SalesId</Field><Value>{}</Value></KeyField></KeyData></EntityKey>",
            envelope::escape(id)
        ));
    }
    out.push_str("</EntityKeyList>");
    out
}

/// A small `SalesOrder` document for one `SalesId`.
pub fn sales_order(id: &str) -> String {
    format!(
        "<SalesOrder xmlns=\"{SALES_ORDER_NS}\"><DocPurpose>Original</DocPurpose><SalesTable class=\"entity\"><SalesId>{}</SalesId></SalesTable></SalesOrder>",
        envelope::escape(id)
    )
}

/// `create`: the keys of the order's tables; forwards the order if asked.
fn create(req: &Request) -> Result<Vec<String>, ServiceError> {
    // Parsed once: the order, its tables and their keys are looked up in it.
    let doc = envelope::Parsed::new(&req.body)?;
    let orders = doc.elements("SalesOrder");
    let Some(order) = orders.first() else {
        return Err(ServiceError::rejected(
            "create: the request body has no SalesOrder document",
        ));
    };
    let tables = order.elements("SalesTable");
    let ids: Vec<String> = if tables.is_empty() {
        vec![table_key(order)]
    } else {
        tables.iter().map(table_key).collect()
    };
    if let Some(port) = config::config_get("forward_port").filter(|p| !p.trim().is_empty()) {
        let action = config::get_or("forward_action", &req.header.action);
        send(port.trim(), &action, &req.body)?;
        log::info_with(
            "forwarded the sales order",
            &[
                ("port", port.trim()),
                ("message_id", &req.header.message_id),
            ],
        );
    }
    log::info_with(
        "created sales order",
        &[
            ("message_id", &req.header.message_id),
            ("sales_id", &ids.join(",")),
        ],
    );
    Ok(vec![entity_key_list(&ids)])
}

/// `read`: one small `SalesOrder` document per key.
fn read(req: &Request) -> Result<Vec<String>, ServiceError> {
    if !envelope::contains_element(&req.body, "EntityKeyList") {
        envelope::check_well_formed(&req.body)?;
        return Err(ServiceError::rejected(
            "read: the request body has no EntityKeyList",
        ));
    }
    let keys = envelope::elements(&req.body, "EntityKey")?;
    if keys.is_empty() {
        return Err(ServiceError::rejected(
            "read: the EntityKeyList holds no EntityKey",
        ));
    }
    let mut out = Vec::new();
    for key in keys {
        let fields = envelope::elements(key, "KeyField")?;
        let id = fields
            .iter()
            .find(|f| {
                envelope::element_text(f, "Field").as_deref().map(str::trim) == Some("SalesId")
            })
            .and_then(|f| envelope::element_text(f, "Value"))
            .ok_or_else(|| ServiceError::rejected("read: an EntityKey has no SalesId KeyField"))?;
        out.push(sales_order(id.trim()));
    }
    Ok(out)
}

impl Service for SalesOrderService {
    fn new(_config: &Config) -> Result<Self, PluginError> {
        Ok(SalesOrderService)
    }

    fn invoke(&self, _ctx: &Context, req: &Request) -> Result<Vec<String>, ServiceError> {
        match req.operation() {
            "create" => create(req),
            "read" => read(req),
            op => Err(ServiceError::fault(
                "UnknownAction",
                format!(
                    "SalesOrderService has no operation `{op}` (Action {}); it supports create and read",
                    req.header.action
                ),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_plugin_sdk::{Direction, Header, PluginError, Stage, testing};

    const ACTION: &str =
        "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create";
    const ORDER: &str = r#"<SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder"><SalesTable class="entity"><CustAccount>US-001</CustAccount><PurchOrderFormNum>PO 4711</PurchOrderFormNum><SalesLine class="entity"><ItemId>1000</ItemId></SalesLine></SalesTable></SalesOrder>"#;

    fn ctx() -> Context {
        Context {
            port: "orders".into(),
            direction: Direction::Inbound,
            stage: Stage::Pipeline,
        }
    }

    fn request(action: &str, body: &str) -> Request {
        Request {
            header: Header {
                message_id: "{M-1}".into(),
                action: action.into(),
                company: Some("dat".into()),
                logon_as_user: None,
                conversation_id: None,
                partition_key: None,
            },
            body: body.into(),
        }
    }

    #[test]
    fn create_answers_with_a_deterministic_key() {
        testing::reset();
        let out =
            ferry_plugin_sdk::service::run::<SalesOrderService>(&ctx(), &request(ACTION, ORDER))
                .unwrap();
        assert_eq!(out.len(), 1);
        let again =
            ferry_plugin_sdk::service::run::<SalesOrderService>(&ctx(), &request(ACTION, ORDER))
                .unwrap();
        assert_eq!(out, again);
        let id = envelope::element_text(&out[0], "Value").unwrap();
        assert!(
            id.starts_with("SO-PO4711-") && id.len() == "SO-PO4711-".len() + 8,
            "{id}"
        );
        assert!(out[0].starts_with(
            "<EntityKeyList xmlns=\"http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKeyList\"><EntityKey xmlns=\"http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKey\"><KeyData><KeyField><Field>SalesId</Field><Value>SO-PO4711-"
        ));
        assert!(testing::sent().is_empty());
        // Another order gets another id.
        let other = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(ACTION, &ORDER.replace("1000", "1001")),
        )
        .unwrap();
        assert_ne!(out, other);
    }

    #[test]
    fn create_keys_each_table() {
        testing::reset();
        let body = "<SalesOrder><SalesTable><CustAccount>A</CustAccount></SalesTable><SalesTable><CustAccount>B</CustAccount></SalesTable></SalesOrder>";
        let out =
            ferry_plugin_sdk::service::run::<SalesOrderService>(&ctx(), &request(ACTION, body))
                .unwrap();
        let ids = envelope::element_texts(&out[0], "Value").unwrap();
        assert_eq!(ids.len(), 2);
        assert!(ids[0].starts_with("SO-A-") && ids[1].starts_with("SO-B-"));
        let out = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(ACTION, "<SalesOrder/>"),
        )
        .unwrap();
        assert!(
            envelope::element_text(&out[0], "Value")
                .unwrap()
                .starts_with("SO-")
        );
    }

    #[test]
    fn create_forwards_when_configured() {
        testing::reset();
        testing::set_config(&[("forward_port", "to-warehouse")]);
        ferry_plugin_sdk::service::run::<SalesOrderService>(&ctx(), &request(ACTION, ORDER))
            .unwrap();
        let sent = testing::sent();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            (
                sent[0].port.as_str(),
                sent[0].action.as_str(),
                sent[0].body.as_str()
            ),
            ("to-warehouse", ACTION, ORDER)
        );
        testing::reset();
        testing::set_config(&[("forward_port", "nope"), ("forward_action", "urn:wh/ship")]);
        testing::set_outbound_ports(&["to-warehouse"]);
        let err =
            ferry_plugin_sdk::service::run::<SalesOrderService>(&ctx(), &request(ACTION, ORDER))
                .unwrap_err();
        assert!(
            matches!(err, ServiceError::Plugin(PluginError::Rejected(_))),
            "{err:?}"
        );
        testing::set_outbound_ports(&["nope"]);
        ferry_plugin_sdk::service::run::<SalesOrderService>(&ctx(), &request(ACTION, ORDER))
            .unwrap();
        assert_eq!(testing::sent()[0].action, "urn:wh/ship");
    }

    #[test]
    fn create_without_an_order_is_rejected() {
        testing::reset();
        let err = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(ACTION, "<CustTable/>"),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ServiceError::rejected("create: the request body has no SalesOrder document")
        );
        let err = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(ACTION, "<SalesOrder>"),
        )
        .unwrap_err();
        assert!(
            matches!(err, ServiceError::Plugin(PluginError::Rejected(_))),
            "{err:?}"
        );
    }

    #[test]
    fn read_returns_an_order_per_key() {
        testing::reset();
        let keys = entity_key_list(&["SO-1".into(), "SO-2".into()]);
        let read_action = ACTION.replace("/create", "/read");
        let out = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(&read_action, &keys),
        )
        .unwrap();
        assert_eq!(out, vec![sales_order("SO-1"), sales_order("SO-2")]);
        assert!(out[0].contains("<SalesId>SO-1</SalesId>"));
        let err = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(&read_action, ORDER),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ServiceError::rejected("read: the request body has no EntityKeyList")
        );
        let bad = "<EntityKeyList><EntityKey><KeyData><KeyField><Field>ItemId</Field><Value>1</Value></KeyField></KeyData></EntityKey></EntityKeyList>";
        let err = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(&read_action, bad),
        )
        .unwrap_err();
        assert_eq!(
            err,
            ServiceError::rejected("read: an EntityKey has no SalesId KeyField")
        );
    }

    #[test]
    fn other_operations_fault() {
        testing::reset();
        let err = ferry_plugin_sdk::service::run::<SalesOrderService>(
            &ctx(),
            &request(&ACTION.replace("/create", "/delete"), ORDER),
        )
        .unwrap_err();
        match err {
            ServiceError::Fault(f) => {
                assert_eq!(f.code, "UnknownAction");
                assert!(f.reason.contains("`delete`"), "{}", f.reason);
            }
            other => panic!("{other:?}"),
        }
    }
}
