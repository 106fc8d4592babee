//! Responses and faults.

use super::super::{
    DUPLICATE_MESSAGE_CODE, DUPLICATE_MESSAGE_TEXT, Envelope, FAULT_NS, Header, MESSAGE_NS,
};
use super::{SALES_ORDER_CREATE, is_braced_upper_guid, single};

fn request() -> Envelope {
    let mut e = single(SALES_ORDER_CREATE);
    e.header.partition_key = Some("initial".into());
    e
}

#[test]
fn response_copies_the_context_and_points_at_the_request() {
    let req = request();
    let resp = req.response("<EntityKeyList/>".into());
    assert!(is_braced_upper_guid(&resp.header.message_id));
    assert_ne!(resp.header.message_id, req.header.message_id);
    assert_eq!(
        resp.header,
        Header {
            message_id: resp.header.message_id.clone(),
            request_message_id: Some(req.header.message_id.clone()),
            ..req.header.clone()
        }
    );
    assert_eq!(resp.body, "<EntityKeyList/>");
    assert_eq!(single(&resp.to_xml()), resp);
}

#[test]
fn fault_body_is_escaped_and_reads_back() {
    let req = request();
    let fault = req.fault("Invalid<Item>", "Item \"1001\" & more: <none>");
    assert_eq!(
        fault.body,
        format!(
            "<Fault xmlns=\"{FAULT_NS}\"><Code>Invalid&lt;Item&gt;</Code><Reason><Text>Item \"1001\" &amp; more: &lt;none&gt;</Text></Reason></Fault>"
        )
    );
    assert_eq!(
        fault.header.request_message_id.as_deref(),
        Some(req.header.message_id.as_str())
    );
    assert_eq!(fault.header.action, req.header.action);
    assert_eq!(
        fault.fault_of(),
        Some((
            "Invalid<Item>".to_owned(),
            "Item \"1001\" & more: <none>".to_owned()
        ))
    );
    // Through XML and back.
    let read = single(&fault.to_xml());
    assert_eq!(read, fault);
    assert_eq!(read.fault_of(), fault.fault_of());
}

#[test]
fn duplicate_fault_has_aifs_code_and_text() {
    let fault = request().duplicate_fault();
    assert_eq!(DUPLICATE_MESSAGE_CODE, "DuplicateMessage");
    assert_eq!(
        DUPLICATE_MESSAGE_TEXT,
        "Duplicate message. Message has already been processed."
    );
    assert_eq!(
        fault.fault_of(),
        Some((
            "DuplicateMessage".to_owned(),
            "Duplicate message. Message has already been processed.".to_owned()
        ))
    );
}

#[test]
fn fault_of_other_bodies() {
    let with = |body: &str| Envelope::new("urn:a", body).fault_of();
    assert_eq!(with(""), None);
    assert_eq!(with("<SalesOrder xmlns=\"urn:so\"/>"), None);
    assert_eq!(with("<Fault/>"), None, "Fault in no namespace");
    assert_eq!(with("<Fault xmlns=\"urn:x\"/>"), None);
    assert_eq!(with("<not well formed"), None);
    assert_eq!(with(&format!("<Fault xmlns=\"{FAULT_NS}\"/>")), None);
    assert_eq!(
        with(&format!("<Fault xmlns=\"{FAULT_NS}\"></Fault>")),
        Some((String::new(), String::new()))
    );
    // Prefixed, Reason with direct text, extra elements, surrounding space.
    assert_eq!(
        with(&format!(
            "\n  <f:Fault xmlns:f=\"{FAULT_NS}\"><f:Detail><f:Code>inner</f:Code></f:Detail><f:Code> X1 </f:Code>\
             <f:Reason>\n  Went &amp; failed\n</f:Reason></f:Fault>\n"
        )),
        Some(("X1".to_owned(), "Went & failed".to_owned()))
    );
    // A fault written by a foreign envelope, read from XML.
    let xml = format!(
        "<Envelope xmlns=\"{MESSAGE_NS}\"><Header><Action>urn:a</Action></Header><Body><MessageParts>\
         <Fault xmlns=\"{FAULT_NS}\"><Code>C</Code><Reason><Text>R</Text></Reason></Fault></MessageParts></Body></Envelope>"
    );
    assert_eq!(
        single(&xml).fault_of(),
        Some(("C".to_owned(), "R".to_owned()))
    );
}
