//! Tests of the envelope module. Fixtures are real-shaped AIF messages.
//!
//! - `messages`: real-shaped messages read and written back;
//! - `namespaces`: the self-contained body (declarations from outside it);
//! - `bad_input`: every kind of rejected input, and the error messages;
//! - `faults`: responses and faults;
//! - `decode`: bytes to text;
//! - `props`: property tests (round trips, never panicking).

mod bad_input;
mod decode;
mod faults;
mod messages;
mod namespaces;
mod props;

use super::{Envelope, Parsed, parse};

/// A SalesOrder create as a partner would send it (AIF's documentation
/// sample, with more lines and an escaped value).
pub(super) const SALES_ORDER_CREATE: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <Header>
    <MessageId>{5603D03A-4380-404D-9F27-738BE0FEA13E}</MessageId>
    <LogonAsUser>CONTOSO\aifuser</LogonAsUser>
    <Company>CEU</Company>
    <Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action>
    <ConversationId>CUST-4000</ConversationId>
  </Header>
  <Body>
    <MessageParts>
      <SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder">
        <DocPurpose>Original</DocPurpose>
        <SenderId>CEU</SenderId>
        <SalesTable class="entity">
          <CustAccount>4000</CustAccount>
          <DeliveryDate>2011-10-11</DeliveryDate>
          <PurchOrderFormNum>PO-1138</PurchOrderFormNum>
          <ReceiptDateRequested>2011-11-11</ReceiptDateRequested>
          <SalesLine class="entity">
            <ItemId>1000</ItemId>
            <SalesQty>12</SalesQty>
            <SalesUnit>ea</SalesUnit>
          </SalesLine>
          <SalesLine class="entity">
            <ItemId>1001</ItemId>
            <Name>Bolts &amp; nuts &lt;M8&gt; — "Zinc"</Name>
            <SalesQty>3.5</SalesQty>
            <SalesUnit>kg</SalesUnit>
            <!-- a comment, kept verbatim -->
            <Notes><![CDATA[fragile <handle with care>]]></Notes>
          </SalesLine>
        </SalesTable>
      </SalesOrder>
    </MessageParts>
  </Body>
</Envelope>
"#;

/// A read request: the body is an entity key list.
pub(super) const CUSTOMER_READ: &str = r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <Header>
    <MessageId>{D1E4853A-0311-1233-0008-E84804976B33}</MessageId>
    <Company>CEU</Company>
    <Action>http://schemas.microsoft.com/dynamics/2008/01/services/CustomerService/read</Action>
  </Header>
  <Body>
    <MessageParts xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
      <EntityKeyList xmlns="http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKeyList">
        <EntityKey xmlns="http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKey">
          <KeyData>
            <KeyField>
              <Field>AccountNum</Field>
              <Value>4000</Value>
            </KeyField>
          </KeyData>
        </EntityKey>
      </EntityKeyList>
    </MessageParts>
  </Body>
</Envelope>"#;

/// The text between `<MessageParts...>` and `</MessageParts>` of `xml`.
pub(super) fn inner_of_message_parts(xml: &str) -> &str {
    let open = xml.find("MessageParts").expect("has MessageParts");
    let start = open + xml[open..].find('>').expect("start tag ends") + 1;
    let close = xml.rfind("MessageParts>").expect("has an end tag");
    let end = xml[..close].rfind("</").expect("end tag");
    &xml[start..end]
}

/// Parses `xml`, which must be a single message.
#[track_caller]
pub(super) fn single(xml: &str) -> Envelope {
    match parse(xml) {
        Ok(Parsed::Single(envelope)) => envelope,
        other => panic!("expected a single message, got {other:?}"),
    }
}

/// Whether `id` looks like AIF's message ids: `{XXXXXXXX-XXXX-XXXX-XXXX-XXXXXXXXXXXX}`.
pub(super) fn is_braced_upper_guid(id: &str) -> bool {
    let Some(inner) = id.strip_prefix('{').and_then(|s| s.strip_suffix('}')) else {
        return false;
    };
    let groups: Vec<&str> = inner.split('-').collect();
    groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
        && groups.iter().all(|g| {
            g.chars()
                .all(|c| c.is_ascii_digit() || ('A'..='F').contains(&c))
        })
}
