//! The native ceiling: the same work as Ferry's pipeline, in plain Rust,
//! with no queue and no sandbox. For each input file: read it, parse the
//! envelope (batch files split), map the item numbers (value-map), set the
//! header's Company (set-header), answer as the sales-order service does
//! (an EntityKeyList with the SalesId), write the response the way the file
//! adapter does (temporary file, fsync, rename) and delete the input.

use std::borrow::Cow;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use ferry::envelope::{self, Envelope};
use quick_xml::Reader;
use quick_xml::events::Event;

use crate::orders;

/// value-map's transformation: the text of every text-only `ItemId`
/// element, trimmed, replaced by its mapping when it has one.
pub fn map_items(body: &str) -> Result<Cow<'_, str>> {
    let mut reader = Reader::from_str(body);
    let mut out: Option<String> = None;
    let mut copied = 0;
    let mut candidate: Option<(usize, usize)> = None; // (depth, open end)
    let mut depth = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event()?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(e) => {
                depth += 1;
                candidate = (e.local_name().into_inner() == "ItemId").then_some((depth, after));
            }
            Event::Empty(_) | Event::Comment(_) | Event::PI(_) => candidate = None,
            Event::End(_) => {
                if let Some((d, open_end)) = candidate.take()
                    && d == depth
                {
                    let raw = &body[open_end..before];
                    anyhow::ensure!(
                        !raw.contains(['&', '<', '\r']),
                        "escaped item ids are not generated"
                    );
                    if let Some(new) = orders::map_item(raw.trim()) {
                        let out = out.get_or_insert_with(|| String::with_capacity(body.len()));
                        out.push_str(&body[copied..open_end]);
                        out.push_str(&new);
                        copied = before;
                    }
                }
                depth -= 1;
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(match out {
        None => Cow::Borrowed(body),
        Some(mut o) => {
            o.push_str(&body[copied..]);
            Cow::Owned(o)
        }
    })
}

/// 32-bit FNV-1a, as the sales-order service hashes a sales table.
fn fnv1a(data: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for &b in data {
        h ^= u32::from(b);
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

/// The outer XML of each `SalesTable` (not nested) and the text of its
/// first `PurchOrderFormNum`.
fn sales_tables(body: &str) -> Result<Vec<(&str, Option<&str>)>> {
    let mut reader = Reader::from_str(body);
    let mut out = Vec::new();
    let mut table: Option<(usize, usize)> = None; // (start, depth)
    let mut po: Option<&str> = None;
    let mut po_open: Option<usize> = None;
    let mut depth = 0usize;
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader.read_event()?;
        let after = reader.buffer_position() as usize;
        match event {
            Event::Start(e) => {
                depth += 1;
                let local: &str = e.local_name().into_inner();
                if local == "SalesTable" && table.is_none() {
                    table = Some((before, depth));
                    po = None;
                } else if local == "PurchOrderFormNum" && table.is_some() && po.is_none() {
                    po_open = Some(after);
                } else {
                    po_open = None;
                }
            }
            Event::End(_) => {
                if let Some(open) = po_open.take() {
                    po = Some(&body[open..before]);
                }
                if let Some((start, d)) = table
                    && d == depth
                {
                    out.push((&body[start..after], po));
                    table = None;
                }
                depth -= 1;
            }
            Event::Empty(e) => {
                po_open = None;
                if e.local_name().into_inner() == "SalesTable" && table.is_none() {
                    out.push((&body[before..after], None));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    Ok(out)
}

/// The sales-order service's answer to `create`: one SalesId per table.
pub fn answer(body: &str) -> Result<String> {
    let ids: Vec<String> = sales_tables(body)?
        .into_iter()
        .map(|(xml, po)| {
            let hash = fnv1a(xml.as_bytes());
            let key: String = po
                .unwrap_or("")
                .trim()
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                .take(20)
                .collect();
            if key.is_empty() {
                format!("SO-{hash:08X}")
            } else {
                format!("SO-{key}-{hash:08X}")
            }
        })
        .collect();
    anyhow::ensure!(!ids.is_empty(), "no SalesTable");
    let mut out = String::from(
        "<EntityKeyList xmlns=\"http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKeyList\">",
    );
    for id in ids {
        out.push_str("<EntityKey xmlns=\"http://schemas.microsoft.com/dynamics/2006/02/documents/EntityKey\"><KeyData><KeyField><Field>SalesId</Field><Value>");
        out.push_str(&id);
        out.push_str("</Value></KeyField></KeyData></EntityKey>");
    }
    out.push_str("</EntityKeyList>");
    Ok(out)
}

/// One message: the two rules, the service, the response envelope.
pub fn respond(mut env: Envelope) -> Result<Envelope> {
    if let Cow::Owned(b) = map_items(&env.body)? {
        env.body = b;
    }
    env.header.company = Some(orders::COMPANY.to_string());
    let body = answer(&env.body)?;
    Ok(env.response(body))
}

/// The file name the file adapter gives a response: its MessageId with
/// anything but letters, digits and `{}-_.` replaced by `_`, plus `.xml`.
pub fn send_name(message_id: &str) -> String {
    let mut name: String = message_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "{}-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    name.push_str(".xml");
    name
}

fn write_synced(dir: &Path, name: &str, content: &[u8]) -> Result<()> {
    let temp = dir.join(format!(".{name}.tmp"));
    let mut f = fs::File::create(&temp).with_context(|| format!("create {}", temp.display()))?;
    f.write_all(content)?;
    f.sync_all()?;
    drop(f);
    fs::rename(&temp, dir.join(name))?;
    Ok(())
}

/// One input file, start to end.
pub fn handle(path: &Path, outbox: &Path) -> Result<usize> {
    let bytes = fs::read(path).with_context(|| format!("read {}", path.display()))?;
    let text = envelope::decode_text(&bytes)?;
    let messages = envelope::parse(&text)?.into_messages();
    let n = messages.len();
    for env in messages {
        let response = respond(env)?;
        let name = send_name(&response.header.message_id);
        write_synced(outbox, &name, response.to_xml().as_bytes())?;
    }
    fs::remove_file(path)?;
    Ok(n)
}

/// Every file of `inbox`, on `threads` threads; returns the messages done.
pub fn run(inbox: &Path, outbox: &Path, threads: usize) -> Result<usize> {
    fs::create_dir_all(outbox)?;
    let mut files: Vec<PathBuf> = fs::read_dir(inbox)?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    let threads = threads.max(1);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let files = &files;
                s.spawn(move || -> Result<usize> {
                    let mut done = 0;
                    for f in files.iter().skip(t).step_by(threads) {
                        done += handle(f, outbox)?;
                    }
                    Ok(done)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("native worker panicked"))
            .sum()
    })
}
