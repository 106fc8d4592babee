//! The AIF message envelope: Ferry's native message format.
//!
//! An AIF message is an `Envelope` in namespace [`MESSAGE_NS`] with a
//! `Header` (`MessageId`, `LogonAsUser`, `PartitionKey`, `Company`, `Action`,
//! `ConversationId`, `RequestMessageId`) and a `Body/MessageParts` that holds
//! the business document. Several whole envelopes can travel in one `Batch`
//! (namespace [`BATCH_NS`]). This module reads both with [`parse`] (or
//! [`parse_bytes`] for raw UTF-8 / UTF-16 files) and writes them with
//! [`Envelope::to_xml`] and [`Batch::to_xml`]; `parse(&e.to_xml()) == e`.
//!
//! ```
//! use ferry::envelope::{parse, Envelope, Parsed};
//!
//! let request = Envelope::new(
//!     "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create",
//!     r#"<SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder"/>"#,
//! );
//! let Parsed::Single(read) = parse(&request.to_xml())? else { unreachable!() };
//! assert_eq!(read, request);
//!
//! let fault = read.duplicate_fault();
//! assert_eq!(fault.header.request_message_id.as_deref(), Some(read.header.message_id.as_str()));
//! assert_eq!(fault.fault_of().unwrap().0, "DuplicateMessage");
//! # Ok::<(), ferry::envelope::EnvelopeError>(())
//! ```
//!
//! # Reading
//!
//! The reader streams with quick-xml; the body is never built into a tree.
//! Elements are matched by namespace and local name, so a prefixed
//! `<s:Envelope xmlns:s="...Message">` is read like the usual default-namespace
//! form. Header fields may come in any order; unknown header elements (and
//! unknown elements in `Envelope` and `Body`) are ignored. Header values are
//! trimmed of the whitespace that indents them; whitespace written as
//! character references (`&#x20;`) or in CDATA is kept, which is how the
//! writer protects leading and trailing whitespace. An empty optional field
//! reads as `None`; a missing or empty `MessageId` gets a fresh one
//! ([`new_message_id`]), like AIF does.
//!
//! Not accepted (each an [`EnvelopeError`]): input that is not well-formed XML
//! (including undeclared namespace prefixes and entities other than the five
//! predefined ones) → [`EnvelopeError::Malformed`] with line and column; a root
//! other than `Envelope` / `Batch`, a missing or empty `Action`, a
//! `ConversationId` over 256 characters, no `Body/MessageParts`, duplicate
//! header fields, stray text between the envelope's elements, a DOCTYPE →
//! [`EnvelopeError::Invalid`].
//!
//! # The body and namespaces
//!
//! [`Envelope::body`] is the inner XML of `MessageParts`, byte for byte as in
//! the input, with one exception that keeps it self-contained: when an element
//! or attribute in the body (or the prefix of an `xsi:type` value) uses a
//! namespace prefix, or an unprefixed element uses a default namespace, that
//! is declared *outside* the body (on `MessageParts`, `Body`, `Envelope` or
//! `Batch`) and not inside it, the reader adds that declaration
//! (`xmlns:p="..."` / `xmlns="..."`, value exactly as written at the
//! declaration) to the body's top-level element concerned, right after the
//! element name. Declarations are added only where used and only where the
//! body does not declare them itself, so a top-level element that declares
//! its own default namespace (the usual
//! `<SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder">`)
//! is left exactly as it was.
//!
//! The envelope's own namespaces are never added as the *default* namespace of
//! body elements: an unprefixed body element that declares no default
//! namespace, inside an envelope whose default namespace is [`MESSAGE_NS`] (or
//! [`BATCH_NS`]), is taken to be in no namespace and kept as written. This is
//! what an author of such a body means (AIF document schemas always declare
//! their own namespace), and it is what makes `parse(to_xml(e)) == e` hold for
//! every body, since the writer wraps the body in
//! `<Envelope xmlns="MESSAGE_NS">`.
//!
//! # Writing
//!
//! [`Envelope::to_xml`] writes `<?xml version="1.0" encoding="utf-8"?>`, then
//! the envelope in default-namespace form with the header fields that are set
//! (an empty optional field counts as unset), in the order of AIF's
//! Message.xsd (the order of the AIF call-context documentation): `MessageId`,
//! `LogonAsUser`, `PartitionKey`, `Company`, `Action`, `ConversationId`,
//! `RequestMessageId`. Values are escaped (`&`, `<`, `>`; CR and leading or
//! trailing whitespace as character references; characters XML cannot carry
//! become U+FFFD). The body is written verbatim: it must be well-formed XML
//! content, and is not checked.

mod batch;
mod body;
mod decode;
mod error;
mod fault;
mod read;
mod write;
mod xml;

#[cfg(test)]
mod tests;

pub use decode::decode_text;
pub use error::{EnvelopeError, Position};
pub use fault::{DUPLICATE_MESSAGE_CODE, DUPLICATE_MESSAGE_TEXT};
pub use read::{parse, parse_bytes, parse_written};

/// Namespace of the AIF message envelope (`Envelope`, `Header`, `Body`,
/// `MessageParts` and the header fields).
pub const MESSAGE_NS: &str = "http://schemas.microsoft.com/dynamics/2011/01/documents/Message";

/// Namespace of an AIF batch (`Batch`), which holds several envelopes.
pub const BATCH_NS: &str = "http://schemas.microsoft.com/dynamics/2009/06/documents/Batch";

/// Namespace of an AIF fault document (`Fault`, `Code`, `Reason`, `Text`).
pub const FAULT_NS: &str = "http://schemas.microsoft.com/dynamics/2008/01/documents/Fault";

/// The longest `ConversationId` AIF accepts, in characters.
pub const MAX_CONVERSATION_ID_CHARS: usize = 256;

/// The `Header` of an AIF message.
///
/// Every field but `message_id` and `action` is optional in AIF. The field
/// order here is the struct's; the XML order is AIF's (see the module docs).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Header {
    /// Identifies the message; a GUID in AIF, braced and uppercase when AIF
    /// makes one (see [`new_message_id`]). Generated when the input has none.
    pub message_id: String,
    /// The user on whose authority the request is made (`Domain\User`).
    pub logon_as_user: Option<String>,
    /// The company (data area) to act in; the default company when `None`.
    pub company: Option<String>,
    /// The service operation, `namespace/ServiceName/operation`. Required.
    pub action: String,
    /// Messages with the same conversation id are processed one at a time, in
    /// order. At most [`MAX_CONVERSATION_ID_CHARS`] characters.
    pub conversation_id: Option<String>,
    /// On a response: the `MessageId` of the request it answers.
    pub request_message_id: Option<String>,
    /// The data partition (AX 2012 R2); the user's partition when `None`.
    pub partition_key: Option<String>,
}

/// One AIF message: header and body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    /// The header.
    pub header: Header,
    /// The inner XML of `Envelope/Body/MessageParts`, verbatim (plus the
    /// namespace declarations that make it self-contained, see the module
    /// docs). Empty for an empty `MessageParts`.
    pub body: String,
}

/// A batch: several whole messages in one `<Batch>` document.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Batch {
    /// The `BatchId` attribute.
    pub batch_id: Option<String>,
    /// The `ConversationId` attribute. On reading it is also copied into each
    /// message that has no `ConversationId` of its own.
    pub conversation_id: Option<String>,
    /// The messages, in document order.
    pub messages: Vec<Envelope>,
}

/// What [`parse`] found: one message or a batch of them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A document whose root is `Envelope`.
    Single(Envelope),
    /// A document whose root is `Batch`.
    Batch(Batch),
}

impl Parsed {
    /// The messages, in document order: one for [`Parsed::Single`], the
    /// batch's for [`Parsed::Batch`]. This is how a batch is split into
    /// single messages.
    pub fn into_messages(self) -> Vec<Envelope> {
        match self {
            Self::Single(envelope) => vec![envelope],
            Self::Batch(batch) => batch.messages,
        }
    }
}

/// A fresh message id the way AIF writes one: a random GUID, braced and
/// uppercase, like `{3F2504E0-4F89-11D3-9A0C-0305E82C3301}`.
pub fn new_message_id() -> String {
    let mut buf = [0u8; uuid::fmt::Braced::LENGTH];
    uuid::Uuid::new_v4()
        .braced()
        .encode_upper(&mut buf)
        .to_owned()
}

impl Envelope {
    /// A request for `action` carrying `body` (inner XML of `MessageParts`,
    /// not checked), with a fresh [`new_message_id`] and no other header field.
    pub fn new(action: impl Into<String>, body: impl Into<String>) -> Self {
        Self {
            header: Header {
                message_id: new_message_id(),
                action: action.into(),
                ..Header::default()
            },
            body: body.into(),
        }
    }

    /// The response to this message, as AIF makes it: a new `MessageId`, the
    /// same `Action`, `Company`, `LogonAsUser`, `ConversationId` and
    /// `PartitionKey`, and `RequestMessageId` set to this message's id.
    pub fn response(&self, body: String) -> Envelope {
        let h = &self.header;
        Envelope {
            header: Header {
                message_id: new_message_id(),
                logon_as_user: h.logon_as_user.clone(),
                company: h.company.clone(),
                action: h.action.clone(),
                conversation_id: h.conversation_id.clone(),
                request_message_id: Some(h.message_id.clone()),
                partition_key: h.partition_key.clone(),
            },
            body,
        }
    }
}
