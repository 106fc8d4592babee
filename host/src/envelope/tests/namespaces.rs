//! The body is self-contained: namespace declarations it uses from outside are
//! added to its top-level elements, and only those.

use super::super::{BATCH_NS, MESSAGE_NS, Parsed, parse};
use super::single;

const SO: &str = "http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder";
const XSI: &str = "http://www.w3.org/2001/XMLSchema-instance";

/// An envelope with `root_attrs` on `<Envelope>`, `parts_attrs` on
/// `<MessageParts>`, and `body` inside.
fn envelope(root_attrs: &str, parts_attrs: &str, body: &str) -> String {
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="{MESSAGE_NS}" {root_attrs}>
  <Header><Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action></Header>
  <Body><MessageParts {parts_attrs}>{body}</MessageParts></Body>
</Envelope>"#
    )
}

fn body_of(xml: &str) -> String {
    single(xml).body
}

#[test]
fn prefix_declared_on_the_envelope_root_is_added_to_the_top_level_element() {
    let xml = envelope(
        &format!(r#"xmlns:so="{SO}" xmlns:xsi="{XSI}""#),
        "",
        r#"<so:SalesOrder><so:SalesTable class="entity"><so:CustAccount>4000</so:CustAccount><so:DlvMode xsi:nil="true"/></so:SalesTable></so:SalesOrder>"#,
    );
    assert_eq!(
        body_of(&xml),
        format!(
            r#"<so:SalesOrder xmlns:so="{SO}" xmlns:xsi="{XSI}"><so:SalesTable class="entity"><so:CustAccount>4000</so:CustAccount><so:DlvMode xsi:nil="true"/></so:SalesTable></so:SalesOrder>"#
        )
    );
}

#[test]
fn the_extracted_body_round_trips_and_reads_alone() {
    let xml = envelope(
        &format!(r#"xmlns:so="{SO}""#),
        "",
        "<so:SalesOrder><so:Line/></so:SalesOrder>",
    );
    let e = single(&xml);
    assert_eq!(single(&e.to_xml()), e);
    // Alone, the body is namespace-well-formed XML.
    let standalone = envelope("", "", &e.body);
    assert_eq!(body_of(&standalone), e.body);
}

#[test]
fn own_default_namespace_is_kept_and_the_envelope_default_does_not_leak() {
    let body = format!(r#"<SalesOrder xmlns="{SO}"><SalesTable class="entity"/></SalesOrder>"#);
    assert_eq!(body_of(&envelope("", "", &body)), body);
    // MessageParts redeclaring the envelope namespace changes nothing either.
    assert_eq!(
        body_of(&envelope("", &format!(r#"xmlns="{MESSAGE_NS}""#), &body)),
        body
    );
    // An unprefixed element with no namespace of its own stays as written.
    assert_eq!(
        body_of(&envelope("", "", "<Plain><Child/></Plain>")),
        "<Plain><Child/></Plain>"
    );
}

#[test]
fn a_non_aif_default_namespace_from_outside_is_added() {
    let xml = format!(
        r#"<s:Envelope xmlns:s="{MESSAGE_NS}" xmlns="urn:doc"><s:Header><s:Action>urn:a</s:Action></s:Header><s:Body><s:MessageParts><Order><Line/></Order> <x:Other xmlns:x="urn:x"/></s:MessageParts></s:Body></s:Envelope>"#
    );
    // `Order` gets the default namespace; `x:Other` uses none, gets nothing.
    assert_eq!(
        body_of(&xml),
        r#"<Order xmlns="urn:doc"><Line/></Order> <x:Other xmlns:x="urn:x"/>"#
    );
}

#[test]
fn declarations_are_added_only_where_used_and_not_declared() {
    let xml = envelope(
        r#"xmlns:a="urn:a" xmlns:b="urn:b" xmlns:unused="urn:unused""#,
        r#"xmlns:c="urn:c""#,
        concat!(
            // uses a deep down, declares b itself: gets a only
            r#"<b:One xmlns:b="urn:b2"><x><y><a:deep/></y></x></b:One>"#,
            "\n",
            // uses nothing from outside
            r#"<Two><p:z xmlns:p="urn:p"/></Two>"#,
            // attribute prefix from MessageParts; empty element
            r#"<Three c:flag="1"/>"#,
            "text between",
            // a prefix declared on a sibling subtree does not count here
            r#"<Four><b:e/></Four>"#,
        ),
    );
    assert_eq!(
        body_of(&xml),
        concat!(
            r#"<b:One xmlns:a="urn:a" xmlns:b="urn:b2"><x><y><a:deep/></y></x></b:One>"#,
            "\n",
            r#"<Two><p:z xmlns:p="urn:p"/></Two>"#,
            r#"<Three xmlns:c="urn:c" c:flag="1"/>"#,
            "text between",
            r#"<Four xmlns:b="urn:b"><b:e/></Four>"#,
        )
    );
}

#[test]
fn the_nearest_outside_declaration_wins() {
    let xml = envelope(
        r#"xmlns:p="urn:outer""#,
        r#"xmlns:p="urn:inner""#,
        "<p:doc/>",
    );
    assert_eq!(body_of(&xml), r#"<p:doc xmlns:p="urn:inner"/>"#);
}

#[test]
fn a_prefix_redeclared_inside_is_not_added() {
    let xml = envelope(
        r#"xmlns:p="urn:outer""#,
        "",
        r#"<root><p:a xmlns:p="urn:in"/></root>"#,
    );
    assert_eq!(body_of(&xml), r#"<root><p:a xmlns:p="urn:in"/></root>"#);
}

#[test]
fn xsi_type_values_count_as_uses() {
    let xml = envelope(
        &format!(r#"xmlns:so="{SO}" xmlns:xsi="{XSI}""#),
        "",
        r#"<Doc xmlns="urn:d"><Value xsi:type="so:AmountType">1</Value></Doc>"#,
    );
    assert_eq!(
        body_of(&xml),
        format!(
            r#"<Doc xmlns:so="{SO}" xmlns:xsi="{XSI}" xmlns="urn:d"><Value xsi:type="so:AmountType">1</Value></Doc>"#
        )
    );
}

#[test]
fn namespace_values_are_copied_as_written() {
    let xml = envelope(r#"xmlns:p='urn:"quoted"&amp;more'"#, "", "<p:a/>");
    assert_eq!(body_of(&xml), r#"<p:a xmlns:p='urn:"quoted"&amp;more'/>"#);
}

#[test]
fn batch_namespace_does_not_leak_into_prefixed_member_envelopes() {
    let xml = format!(
        r#"<Batch xmlns="{BATCH_NS}" xmlns:so="{SO}"><m:Envelope xmlns:m="{MESSAGE_NS}"><m:Header><m:Action>urn:a</m:Action></m:Header><m:Body><m:MessageParts><Plain/><so:Order/></m:MessageParts></m:Body></m:Envelope></Batch>"#
    );
    let Ok(Parsed::Batch(batch)) = parse(&xml) else {
        panic!()
    };
    assert_eq!(
        batch.messages[0].body,
        format!(r#"<Plain/><so:Order xmlns:so="{SO}"/>"#)
    );
}

#[test]
fn xml_prefix_needs_no_declaration() {
    let xml = envelope("", "", r#"<Doc xml:lang="en"/>"#);
    assert_eq!(body_of(&xml), r#"<Doc xml:lang="en"/>"#);
}
