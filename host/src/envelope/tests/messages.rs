//! Real-shaped messages: read, checked field by field, written back.

use super::super::{
    BATCH_NS, Batch, Envelope, Header, MESSAGE_NS, Parsed, new_message_id, parse, parse_bytes,
};
use super::{
    CUSTOMER_READ, SALES_ORDER_CREATE, inner_of_message_parts, is_braced_upper_guid, single,
};

#[test]
fn sales_order_create_is_read_field_by_field_and_body_verbatim() {
    let e = single(SALES_ORDER_CREATE);
    assert_eq!(
        e.header,
        Header {
            message_id: "{5603D03A-4380-404D-9F27-738BE0FEA13E}".into(),
            logon_as_user: Some(r"CONTOSO\aifuser".into()),
            company: Some("CEU".into()),
            action:
                "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create"
                    .into(),
            conversation_id: Some("CUST-4000".into()),
            request_message_id: None,
            partition_key: None,
        }
    );
    // Byte for byte, comments, CDATA, entities and indentation included.
    assert_eq!(e.body, inner_of_message_parts(SALES_ORDER_CREATE));
    assert!(
        e.body
            .contains("<Name>Bolts &amp; nuts &lt;M8&gt; — \"Zinc\"</Name>")
    );
    assert!(e.body.contains("<![CDATA[fragile <handle with care>]]>"));
}

#[test]
fn sales_order_create_round_trips() {
    let e = single(SALES_ORDER_CREATE);
    let written = e.to_xml();
    assert_eq!(single(&written), e);
    // And writing is stable.
    assert_eq!(single(&written).to_xml(), written);
}

#[test]
fn read_with_entity_key_list_keeps_body_and_round_trips() {
    let e = single(CUSTOMER_READ);
    assert_eq!(
        e.header.message_id,
        "{D1E4853A-0311-1233-0008-E84804976B33}"
    );
    assert_eq!(e.header.company.as_deref(), Some("CEU"));
    assert!(e.header.action.ends_with("/CustomerService/read"));
    // `MessageParts xmlns="...Message"` is the envelope's namespace: it does
    // not leak onto EntityKeyList, which declares its own.
    assert_eq!(e.body, inner_of_message_parts(CUSTOMER_READ));
    assert_eq!(single(&e.to_xml()), e);
}

fn batch_of_three() -> String {
    let envelope = |id: &str, conversation: Option<&str>, account: &str| {
        let conversation = conversation
            .map(|c| format!("<ConversationId>{c}</ConversationId>"))
            .unwrap_or_default();
        format!(
            r#"
  <Envelope xmlns="{MESSAGE_NS}">
    <Header>
      <MessageId>{id}</MessageId>
      <Action>http://schemas.microsoft.com/dynamics/2008/01/services/CustomerService/create</Action>
      {conversation}
    </Header>
    <Body><MessageParts><Customer xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/Customer"><CustTable class="entity"><AccountNum>{account}</AccountNum></CustTable></Customer></MessageParts></Body>
  </Envelope>"#
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Batch xmlns=\"{BATCH_NS}\" BatchId=\"B-2024-0001\" ConversationId=\"PARTNER-42\">{}{}{}\n</Batch>\n",
        envelope(
            "{00000000-0000-0000-0000-000000000001}",
            Some("OWN-1"),
            "4001"
        ),
        envelope("{00000000-0000-0000-0000-000000000002}", None, "4002"),
        envelope(
            "{00000000-0000-0000-0000-000000000003}",
            Some("OWN-3"),
            "4003"
        ),
    )
}

#[test]
fn batch_of_three_applies_its_conversation_id_to_the_member_lacking_one() {
    let Ok(Parsed::Batch(batch)) = parse(&batch_of_three()) else {
        panic!("expected a batch");
    };
    assert_eq!(batch.batch_id.as_deref(), Some("B-2024-0001"));
    assert_eq!(batch.conversation_id.as_deref(), Some("PARTNER-42"));
    let conversations: Vec<_> = batch
        .messages
        .iter()
        .map(|m| m.header.conversation_id.as_deref())
        .collect();
    assert_eq!(
        conversations,
        [Some("OWN-1"), Some("PARTNER-42"), Some("OWN-3")]
    );
    let ids: Vec<_> = batch
        .messages
        .iter()
        .map(|m| m.header.message_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "{00000000-0000-0000-0000-000000000001}",
            "{00000000-0000-0000-0000-000000000002}",
            "{00000000-0000-0000-0000-000000000003}"
        ]
    );
    assert!(
        batch.messages[1]
            .body
            .contains("<AccountNum>4002</AccountNum>")
    );
    // Written and read again: the same batch (everyone has a conversation now).
    assert_eq!(parse(&batch.to_xml()), Ok(Parsed::Batch(batch.clone())));
    // Splitting.
    assert_eq!(Parsed::Batch(batch.clone()).into_messages(), batch.messages);
}

#[test]
fn batch_without_attributes_round_trips() {
    let batch = Batch {
        batch_id: None,
        conversation_id: None,
        messages: vec![
            Envelope::new("urn:a/S/create", "<a/>"),
            Envelope::new("urn:a/S/read", ""),
        ],
    };
    let xml = batch.to_xml();
    assert!(xml.contains(&format!("<Batch xmlns=\"{BATCH_NS}\"><Envelope")));
    assert_eq!(parse(&xml), Ok(Parsed::Batch(batch)));
}

#[test]
fn batch_attributes_with_special_characters_round_trip() {
    let batch = Batch {
        batch_id: Some("a\"b<c>&d\te\nf\rg'h".into()),
        conversation_id: Some(" spaced ".into()),
        messages: vec![Envelope::new("urn:a/S/create", "<a/>")],
    };
    let Ok(Parsed::Batch(read)) = parse(&batch.to_xml()) else {
        panic!()
    };
    assert_eq!(read.batch_id, batch.batch_id);
    assert_eq!(read.conversation_id, batch.conversation_id);
}

#[test]
fn prefixed_envelope_with_prefixed_body() {
    let xml = format!(
        r#"<s:Envelope xmlns:s="{MESSAGE_NS}">
  <s:Header>
    <s:MessageId>{{11111111-2222-3333-4444-555555555555}}</s:MessageId>
    <s:Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</s:Action>
  </s:Header>
  <s:Body>
    <s:MessageParts>
      <so:SalesOrder xmlns:so="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder">
        <so:SalesTable class="entity"><so:CustAccount>4000</so:CustAccount></so:SalesTable>
      </so:SalesOrder>
    </s:MessageParts>
  </s:Body>
</s:Envelope>"#
    );
    let e = single(&xml);
    assert_eq!(
        e.header.message_id,
        "{11111111-2222-3333-4444-555555555555}"
    );
    assert_eq!(e.body, inner_of_message_parts(&xml));
    assert_eq!(single(&e.to_xml()), e);
}

#[test]
fn header_fields_in_any_order_unknown_ones_ignored() {
    let xml = format!(
        r#"<Envelope xmlns="{MESSAGE_NS}"><Header>
            <RequestMessageId>{{R}}</RequestMessageId>
            <Action>urn:x/S/op</Action>
            <x:Routing xmlns:x="urn:vendor"><x:Hop>1</x:Hop><x:Hop/></x:Routing>
            <Priority>high</Priority>
            <PartitionKey>initial</PartitionKey>
            <Company>ceu</Company>
            <LogonAsUser>d\u</LogonAsUser>
            <MessageId>{{M}}</MessageId>
            <ConversationId>c</ConversationId>
          </Header><Extra>ignored</Extra><Body><Note/><MessageParts/></Body></Envelope>"#
    );
    let e = single(&xml);
    assert_eq!(
        e.header,
        Header {
            message_id: "{M}".into(),
            logon_as_user: Some(r"d\u".into()),
            company: Some("ceu".into()),
            action: "urn:x/S/op".into(),
            conversation_id: Some("c".into()),
            request_message_id: Some("{R}".into()),
            partition_key: Some("initial".into()),
        }
    );
    assert_eq!(e.body, "");
}

#[test]
fn a_header_element_in_another_namespace_is_not_a_header_field() {
    let xml = format!(
        r#"<Envelope xmlns="{MESSAGE_NS}"><Header><Action>urn:a</Action><Company xmlns="urn:other">X</Company></Header><Body><MessageParts/></Body></Envelope>"#
    );
    assert_eq!(single(&xml).header.company, None);
}

#[test]
fn header_values_are_trimmed_unescaped_and_joined() {
    let xml = format!(
        "<Envelope xmlns=\"{MESSAGE_NS}\"><Header>\n  <Action>\n    urn:a/S/op\n  </Action>\n  \
         <Company> A&amp;B&#x20;</Company><LogonAsUser><![CDATA[ <raw> ]]></LogonAsUser>\
         <ConversationId>a<!-- c -->b&#65;&#x42;\r\nc</ConversationId>\
         </Header><Body><MessageParts/></Body></Envelope>"
    );
    let h = single(&xml).header;
    assert_eq!(h.action, "urn:a/S/op");
    assert_eq!(h.company.as_deref(), Some("A&B "));
    assert_eq!(h.logon_as_user.as_deref(), Some(" <raw> "));
    assert_eq!(h.conversation_id.as_deref(), Some("abAB\nc"));
}

#[test]
fn missing_or_empty_message_id_is_generated_like_aif() {
    let without = format!(
        "<Envelope xmlns=\"{MESSAGE_NS}\"><Header><Action>urn:a</Action></Header><Body><MessageParts/></Body></Envelope>"
    );
    let empty = without.replace("<Header>", "<Header><MessageId>  </MessageId>");
    for xml in [without, empty] {
        let id = single(&xml).header.message_id;
        assert!(is_braced_upper_guid(&id), "{id}");
    }
}

#[test]
fn empty_optional_fields_read_as_none() {
    let xml = format!(
        "<Envelope xmlns=\"{MESSAGE_NS}\"><Header><MessageId>m</MessageId><Company/><LogonAsUser></LogonAsUser>\
         <Action>urn:a</Action><ConversationId> </ConversationId><PartitionKey/></Header>\
         <Body><MessageParts/></Body></Envelope>"
    );
    let h = single(&xml).header;
    assert_eq!(
        (
            h.company,
            h.logon_as_user,
            h.conversation_id,
            h.partition_key
        ),
        (None, None, None, None)
    );
}

#[test]
fn conversation_id_of_256_characters_is_accepted() {
    for id in ["x".repeat(256), "é".repeat(256)] {
        let mut e = Envelope::new("urn:a", "");
        e.header.conversation_id = Some(id.clone());
        assert_eq!(single(&e.to_xml()).header.conversation_id, Some(id));
    }
}

#[test]
fn new_message_ids_are_braced_uppercase_and_unique() {
    let a = new_message_id();
    let b = new_message_id();
    assert!(is_braced_upper_guid(&a), "{a}");
    assert_ne!(a, b);
    assert!(is_braced_upper_guid(
        &Envelope::new("urn:a", "").header.message_id
    ));
}

#[test]
fn writer_puts_header_fields_in_aif_order_and_only_those_set() {
    let e = Envelope {
        header: Header {
            message_id: "{M}".into(),
            logon_as_user: Some("d\\u".into()),
            company: Some("ceu".into()),
            action: "urn:a/S/op".into(),
            conversation_id: Some("c1".into()),
            request_message_id: Some("{R}".into()),
            partition_key: Some("initial".into()),
        },
        body: "<Doc xmlns=\"urn:d\"/>".into(),
    };
    assert_eq!(
        e.to_xml(),
        format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?><Envelope xmlns=\"{MESSAGE_NS}\"><Header>\
             <MessageId>{{M}}</MessageId><LogonAsUser>d\\u</LogonAsUser><PartitionKey>initial</PartitionKey>\
             <Company>ceu</Company><Action>urn:a/S/op</Action><ConversationId>c1</ConversationId>\
             <RequestMessageId>{{R}}</RequestMessageId></Header><Body><MessageParts><Doc xmlns=\"urn:d\"/>\
             </MessageParts></Body></Envelope>"
        )
    );
    let minimal = Envelope {
        header: Header {
            message_id: "{M}".into(),
            action: "urn:a".into(),
            company: Some(String::new()),
            ..Header::default()
        },
        body: String::new(),
    };
    assert!(minimal.to_xml().contains(
        "<Header><MessageId>{M}</MessageId><Action>urn:a</Action></Header><Body><MessageParts></MessageParts>"
    ));
}

#[test]
fn writer_escapes_header_values() {
    let mut e = Envelope::new("urn:a?x=1&y=<2>", "");
    e.header.company = Some(" lead\ttab\r\nnewline trail\n".into());
    let xml = e.to_xml();
    assert!(xml.contains("<Action>urn:a?x=1&amp;y=&lt;2&gt;</Action>"));
    assert!(xml.contains("<Company>&#x20;lead\ttab&#xD;\nnewline trail&#xA;</Company>"));
    assert_eq!(single(&xml), e);
    // Characters XML cannot carry become U+FFFD.
    e.header.company = Some("a\u{1}b\u{FFFF}".into());
    assert_eq!(
        single(&e.to_xml()).header.company.as_deref(),
        Some("a\u{FFFD}b\u{FFFD}")
    );
}

#[test]
fn bom_and_declaration_are_accepted_and_parse_bytes_reads_utf16() {
    let with_bom = format!("\u{FEFF}{SALES_ORDER_CREATE}");
    assert_eq!(single(&with_bom), single(SALES_ORDER_CREATE));
    let utf16le: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(SALES_ORDER_CREATE.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    let utf16be: Vec<u8> = [0xFE, 0xFF]
        .into_iter()
        .chain(SALES_ORDER_CREATE.encode_utf16().flat_map(u16::to_be_bytes))
        .collect();
    for bytes in [utf16le, utf16be, SALES_ORDER_CREATE.as_bytes().to_vec()] {
        assert_eq!(
            parse_bytes(&bytes),
            Ok(Parsed::Single(single(SALES_ORDER_CREATE)))
        );
    }
}

#[test]
fn comments_processing_instructions_and_whitespace_around_the_root_are_fine() {
    let xml = format!(
        "<?xml version=\"1.0\"?>\n<!-- exported by X -->\n<?x-app hint?>\n{}\n<!-- end -->\n\n",
        &CUSTOMER_READ[CUSTOMER_READ.find("<Envelope").unwrap()..]
    );
    assert_eq!(single(&xml), single(CUSTOMER_READ));
}

#[test]
fn text_not_ending_as_the_writer_ends_an_envelope_is_read_in_full() {
    use super::super::parse_written;
    // A batch, an envelope with something after it, and a written envelope
    // whose body was changed into malformed XML afterwards: the first two
    // are not the writer's shape, so each is read (and checked) in full.
    let batch = batch_of_three();
    assert_eq!(parse_written(&batch), parse(&batch));
    let written = single(SALES_ORDER_CREATE).to_xml();
    let trailing = format!("{written}\n");
    assert_eq!(parse_written(&trailing), parse(&trailing));
    let broken = written.replace("</SalesTable>", "</SalesTabel>");
    let broken = format!("{broken} ");
    assert!(parse_written(&broken).unwrap_err().is_malformed());
    // The writer's shape: the header is still checked.
    let bad_header = written.replace("<Action>", "<Action x=>");
    assert!(parse_written(&bad_header).unwrap_err().is_malformed());
}
