//! The byte encoding of the records [`RedbQueue`](super::RedbQueue) stores.
//!
//! Every record starts with a format byte (currently [`FORMAT_V1`]) so the
//! layout can evolve: a later version adds a format and keeps reading the old
//! one. Integers are LEB128 varints, strings a varint length and their UTF-8
//! bytes, options a 0/1 tag. A message's metadata record is a few dozen bytes
//! plus its strings; its content is stored in a separate table.

use super::super::{Direction, Exception, HistoryEntry, MessageKey, Status};

/// The first record format.
pub(in crate::queue) const FORMAT_V1: u8 = 1;
/// A history record whose document is a content record (queue format 2).
pub(in crate::queue) const FORMAT_HISTORY_REF: u8 = 2;

/// The metadata of a queued message: everything but the key (the record's
/// key) and the content (its own table).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(in crate::queue) struct MessageMeta {
    pub direction: Direction,
    pub status: Status,
    pub port: String,
    pub name: String,
    pub position: u32,
    pub message_id: String,
    pub action: String,
    pub conversation_id: Option<String>,
    pub batch_id: Option<String>,
    pub request_message_id: Option<String>,
    pub error: Option<String>,
    pub attempts: u32,
    pub created_ms: u64,
    pub updated_ms: u64,
}

/// A decoding failure: what is wrong with the bytes.
#[derive(Debug)]
pub(in crate::queue) struct DecodeError(pub String);

type Result<T> = std::result::Result<T, DecodeError>;

/// Appends encoded values to a buffer.
pub(in crate::queue) struct Writer {
    buf: Vec<u8>,
}

impl Writer {
    pub fn new(capacity: usize) -> Self {
        Self::with_format(FORMAT_V1, capacity)
    }

    pub fn with_format(format: u8, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity + 1);
        buf.push(format);
        Writer { buf }
    }

    pub fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }

    pub fn varint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.buf.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.buf.push(v as u8);
    }

    pub fn str(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.buf.extend_from_slice(s.as_bytes());
    }

    pub fn opt_str(&mut self, s: Option<&str>) {
        match s {
            None => self.u8(0),
            Some(s) => {
                self.u8(1);
                self.str(s);
            }
        }
    }

    pub fn opt_varint(&mut self, v: Option<u64>) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                self.varint(v);
            }
        }
    }

    pub fn finish(self) -> Vec<u8> {
        self.buf
    }
}

/// Reads encoded values from a record.
pub(in crate::queue) struct Reader<'a> {
    bytes: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Checks the format byte and positions after it.
    pub fn new(bytes: &'a [u8]) -> Result<Self> {
        let (_, r) = Self::any(bytes, &[FORMAT_V1])?;
        Ok(r)
    }

    /// Checks that the format byte is one of `formats`; gives it.
    pub fn any(bytes: &'a [u8], formats: &[u8]) -> Result<(u8, Self)> {
        match bytes.split_first() {
            Some((f, rest)) if formats.contains(f) => Ok((*f, Reader { bytes: rest })),
            Some((other, _)) => Err(DecodeError(format!("unknown record format {other}"))),
            None => Err(DecodeError("empty record".into())),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.bytes.len() < n {
            return Err(DecodeError("record is truncated".into()));
        }
        let (head, tail) = self.bytes.split_at(n);
        self.bytes = tail;
        Ok(head)
    }

    pub fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    pub fn varint(&mut self) -> Result<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.u8()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError("integer is too long".into()))
    }

    pub fn u32(&mut self) -> Result<u32> {
        u32::try_from(self.varint()?).map_err(|_| DecodeError("integer out of range".into()))
    }

    pub fn str(&mut self) -> Result<String> {
        let len = usize::try_from(self.varint()?)
            .map_err(|_| DecodeError("string length out of range".into()))?;
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| DecodeError("string is not UTF-8".into()))
    }

    pub fn opt_str(&mut self) -> Result<Option<String>> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.str().map(Some),
            t => Err(DecodeError(format!("bad option tag {t}"))),
        }
    }

    pub fn opt_varint(&mut self) -> Result<Option<u64>> {
        match self.u8()? {
            0 => Ok(None),
            1 => self.varint().map(Some),
            t => Err(DecodeError(format!("bad option tag {t}"))),
        }
    }

    /// Fails if bytes are left over (a record of an unknown, longer layout).
    pub fn end(self) -> Result<()> {
        if self.bytes.is_empty() {
            Ok(())
        } else {
            Err(DecodeError(format!(
                "{} unexpected trailing bytes",
                self.bytes.len()
            )))
        }
    }
}

pub(in crate::queue) fn encode_meta(m: &MessageMeta) -> Vec<u8> {
    let strings = m.port.len()
        + m.name.len()
        + m.message_id.len()
        + m.action.len()
        + m.conversation_id.as_ref().map_or(0, String::len)
        + m.batch_id.as_ref().map_or(0, String::len)
        + m.request_message_id.as_ref().map_or(0, String::len)
        + m.error.as_ref().map_or(0, String::len);
    let mut w = Writer::new(strings + 48);
    w.u8(m.direction.code());
    w.u8(m.status.code());
    w.varint(u64::from(m.position));
    w.varint(u64::from(m.attempts));
    w.varint(m.created_ms);
    w.varint(m.updated_ms);
    w.str(&m.port);
    w.str(&m.name);
    w.str(&m.message_id);
    w.str(&m.action);
    w.opt_str(m.conversation_id.as_deref());
    w.opt_str(m.batch_id.as_deref());
    w.opt_str(m.request_message_id.as_deref());
    w.opt_str(m.error.as_deref());
    w.finish()
}

pub(in crate::queue) fn decode_meta(bytes: &[u8]) -> Result<MessageMeta> {
    let mut r = Reader::new(bytes)?;
    let direction = r.u8()?;
    let direction = Direction::from_code(direction)
        .ok_or_else(|| DecodeError(format!("unknown direction code {direction}")))?;
    let status = r.u8()?;
    let status = Status::from_code(status)
        .ok_or_else(|| DecodeError(format!("unknown status code {status}")))?;
    let meta = MessageMeta {
        direction,
        status,
        position: r.u32()?,
        attempts: r.u32()?,
        created_ms: r.varint()?,
        updated_ms: r.varint()?,
        port: r.str()?,
        name: r.str()?,
        message_id: r.str()?,
        action: r.str()?,
        conversation_id: r.opt_str()?,
        batch_id: r.opt_str()?,
        request_message_id: r.opt_str()?,
        error: r.opt_str()?,
    };
    r.end()?;
    Ok(meta)
}

/// A content record compressed with LZ4 (queue format 3): the format
/// byte, the text's length (4 bytes, little-endian), the LZ4 block.
pub(in crate::queue) const FORMAT_CONTENT_LZ4: u8 = 3;

/// Content this long or longer is stored compressed when that saves an
/// eighth or more. A 2 KB business document compresses to about a third:
/// redb keeps an entry whole in a 4 KB leaf page, where one 2 KB document
/// left the rest of the page empty and several compressed ones share it.
/// Shorter content (small responses) is stored as it is.
const COMPRESS_FROM: usize = 512;

/// Content records: the format byte, then the UTF-8 text
/// ([`FORMAT_V1`]) or its LZ4 compression ([`FORMAT_CONTENT_LZ4`]).
pub(in crate::queue) fn encode_content(content: &str) -> Vec<u8> {
    let text = content.as_bytes();
    if let Ok(len) = u32::try_from(text.len())
        && text.len() >= COMPRESS_FROM
    {
        let mut v = vec![0; 5 + lz4_flex::block::get_maximum_output_size(text.len())];
        v[0] = FORMAT_CONTENT_LZ4;
        v[1..5].copy_from_slice(&len.to_le_bytes());
        if let Ok(n) = lz4_flex::block::compress_into(text, &mut v[5..])
            && 5 + n <= text.len() - text.len() / 8
        {
            v.truncate(5 + n);
            return v;
        }
    }
    let mut v = Vec::with_capacity(text.len() + 1);
    v.push(FORMAT_V1);
    v.extend_from_slice(text);
    v
}

pub(in crate::queue) fn decode_content(bytes: &[u8]) -> Result<String> {
    let utf8 = |text: Vec<u8>| {
        String::from_utf8(text).map_err(|_| DecodeError("content is not UTF-8".into()))
    };
    match bytes.split_first() {
        Some((&FORMAT_V1, text)) => utf8(text.to_vec()),
        Some((&FORMAT_CONTENT_LZ4, rest)) => {
            let Some((len, block)) = rest.split_first_chunk::<4>() else {
                return Err(DecodeError("compressed content is truncated".into()));
            };
            let len = u32::from_le_bytes(*len) as usize;
            // LZ4 expands at most ~255 times: a larger length is damage,
            // not a reason to allocate it.
            if len > block.len().saturating_mul(255) + 16 {
                return Err(DecodeError(format!(
                    "compressed content claims {len} bytes from {}",
                    block.len()
                )));
            }
            let text = lz4_flex::block::decompress(block, len)
                .map_err(|e| DecodeError(format!("compressed content is damaged: {e}")))?;
            utf8(text)
        }
        Some((other, _)) => Err(DecodeError(format!("unknown record format {other}"))),
        None => Err(DecodeError("empty record".into())),
    }
}

/// Exception records: everything but the id (the record's key).
pub(in crate::queue) fn encode_exception(e: &Exception) -> Vec<u8> {
    let mut w = Writer::new(e.text.len() + e.port.len() + e.stage.len() + 64);
    w.varint(e.time_ms);
    w.str(&e.port);
    w.str(&e.stage);
    w.opt_str(e.plugin.as_deref());
    w.opt_str(e.plugin_hash.as_deref());
    w.opt_varint(e.message_key);
    w.opt_str(e.message_id.as_deref());
    w.str(&e.text);
    w.finish()
}

pub(in crate::queue) fn decode_exception(id: u64, bytes: &[u8]) -> Result<Exception> {
    let mut r = Reader::new(bytes)?;
    let e = Exception {
        id,
        time_ms: r.varint()?,
        port: r.str()?,
        stage: r.str()?,
        plugin: r.opt_str()?,
        plugin_hash: r.opt_str()?,
        message_key: r.opt_varint()?,
        message_id: r.opt_str()?,
        text: r.str()?,
    };
    r.end()?;
    Ok(e)
}

/// History records: everything but the message id (part of the key).
pub(in crate::queue) fn encode_history(h: &HistoryEntry) -> Vec<u8> {
    let mut w = Writer::new(h.content.len() + h.port.len() + h.stage.len() + 32);
    w.varint(h.time_ms);
    w.opt_varint(h.message_key);
    w.str(&h.port);
    w.str(&h.stage);
    w.varint(h.plugins.len() as u64);
    for (name, hash) in &h.plugins {
        w.str(name);
        w.str(hash);
    }
    w.str(&h.content);
    w.finish()
}

/// A history record whose document is the content record `content_key`
/// (written once for the message and its history).
pub(in crate::queue) fn encode_history_ref(h: &HistoryEntry, content_key: MessageKey) -> Vec<u8> {
    let mut w = Writer::with_format(FORMAT_HISTORY_REF, h.port.len() + h.stage.len() + 32);
    w.varint(h.time_ms);
    w.opt_varint(h.message_key);
    w.str(&h.port);
    w.str(&h.stage);
    w.varint(h.plugins.len() as u64);
    for (name, hash) in &h.plugins {
        w.str(name);
        w.str(hash);
    }
    w.varint(content_key);
    w.finish()
}

/// A history record: the entry, and where its document is when it is a
/// content record (the entry's `content` is then empty).
pub(in crate::queue) fn decode_history(
    message_id: &str,
    bytes: &[u8],
) -> Result<(HistoryEntry, Option<MessageKey>)> {
    let (format, mut r) = Reader::any(bytes, &[FORMAT_V1, FORMAT_HISTORY_REF])?;
    let time_ms = r.varint()?;
    let message_key: Option<MessageKey> = r.opt_varint()?;
    let port = r.str()?;
    let stage = r.str()?;
    let n = r.varint()?;
    let mut plugins = Vec::new();
    for _ in 0..n {
        let name = r.str()?;
        let hash = r.str()?;
        plugins.push((name, hash));
    }
    let (content, content_key) = if format == FORMAT_HISTORY_REF {
        (String::new(), Some(r.varint()?))
    } else {
        (r.str()?, None)
    };
    r.end()?;
    Ok((
        HistoryEntry {
            time_ms,
            message_id: message_id.to_string(),
            message_key,
            port,
            stage,
            plugins,
            content,
        },
        content_key,
    ))
}

/// Message log records: when and by which port a `MessageId` was processed.
pub(in crate::queue) fn encode_processed(time_ms: u64, port: &str) -> Vec<u8> {
    let mut w = Writer::new(port.len() + 12);
    w.varint(time_ms);
    w.str(port);
    w.finish()
}

/// A message log record's time (ms since the epoch).
pub(in crate::queue) fn decode_processed_time(bytes: &[u8]) -> Result<u64> {
    let mut r = Reader::new(bytes)?;
    r.varint()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for v in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            let mut w = Writer::new(0);
            w.varint(v);
            let bytes = w.finish();
            let mut r = Reader::new(&bytes).unwrap();
            assert_eq!(r.varint().unwrap(), v);
            r.end().unwrap();
        }
    }

    #[test]
    fn meta_round_trips_and_is_compact() {
        let m = MessageMeta {
            direction: Direction::Outbound,
            status: Status::InTransportProcess,
            port: "orders".into(),
            name: "order-0001.xml".into(),
            position: 3,
            message_id: "{5D5E0A30-1A6D-4F4B-9E8A-8D6B1C3B1A11}".into(),
            action:
                "http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create"
                    .into(),
            conversation_id: Some("c1".into()),
            batch_id: None,
            request_message_id: None,
            error: Some("boom".into()),
            attempts: 2,
            created_ms: 1_700_000_000_000,
            updated_ms: 1_700_000_000_500,
        };
        let bytes = encode_meta(&m);
        assert_eq!(decode_meta(&bytes).unwrap(), m);
        let strings = 6 + 14 + 38 + 80 + 2 + 4;
        assert!(bytes.len() < strings + 32, "{} bytes", bytes.len());
    }

    #[test]
    fn content_round_trips_compressed_when_that_pays() {
        let order = format!(
            "<SalesOrder>{}</SalesOrder>",
            "<SalesLine><ItemId>1000</ItemId><SalesQty>2</SalesQty></SalesLine>".repeat(30)
        );
        let small = "<EntityKeyList><EntityKey>SO-1</EntityKey></EntityKeyList>";
        // Short, or not compressible: stored as it is.
        let mut x = 0x9E37_79B9_7F4A_7C15_u64;
        let noise: String = (0..2048)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(b'!' + (x % 90) as u8)
            })
            .collect();
        for (text, compressed) in [
            (order.as_str(), true),
            (small, false),
            (&noise, false),
            ("", false),
        ] {
            let record = encode_content(text);
            assert_eq!(record[0] == FORMAT_CONTENT_LZ4, compressed, "{text}");
            if compressed {
                assert!(record.len() < text.len() / 3, "{} bytes", record.len());
            }
            assert_eq!(decode_content(&record).unwrap(), text);
        }
        // Damage is an error, never a panic or a huge allocation.
        let record = encode_content(&order);
        let mut lying = record.clone();
        lying[1..5].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(decode_content(&lying).unwrap_err().0.contains("claims"));
        assert!(decode_content(&record[..record.len() - 3]).is_err());
        assert!(decode_content(&record[..3]).is_err());
        let mut flipped = record.clone();
        flipped[1] ^= 1;
        assert!(decode_content(&flipped).is_err());
    }

    #[test]
    fn unknown_format_and_truncation_are_errors() {
        assert!(decode_content(&[9, b'a']).is_err());
        assert!(decode_content(&[]).is_err());
        let m = MessageMeta {
            direction: Direction::Inbound,
            status: Status::Ready,
            port: "p".into(),
            name: "n".into(),
            position: 0,
            message_id: "m".into(),
            action: "a".into(),
            conversation_id: None,
            batch_id: None,
            request_message_id: None,
            error: None,
            attempts: 0,
            created_ms: 1,
            updated_ms: 1,
        };
        let bytes = encode_meta(&m);
        assert!(decode_meta(&bytes[..bytes.len() - 1]).is_err());
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_meta(&longer).is_err());
    }
}
