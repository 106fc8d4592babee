//! The logs: exceptions (newest first, by port or `MessageId`) and the
//! audit log of operators' actions (newest first, paged).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{PageError, Session, blocking, encode, malformed, when};
use crate::control::ServerState;
use crate::control::ops::{ExceptionQuery, Manager as _};

/// The most exceptions one page shows.
const EXCEPTIONS_SHOWN: usize = 200;

/// One page of the audit log.
const AUDIT_PAGE: usize = 100;

fn text(v: &Option<String>) -> Option<String> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}

fn count(what: &str, v: &Option<String>) -> Result<Option<u64>, PageError> {
    text(v)
        .map(|v| {
            v.parse::<u64>()
                .map_err(|_| PageError::bad(format!("{what}: {v:?} is not a whole number")))
        })
        .transpose()
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ExceptionsQuery {
    port: Option<String>,
    message_id: Option<String>,
    limit: Option<String>,
}

pub(super) async fn exceptions(
    State(s): State<ServerState>,
    session: Session,
    q: Result<Query<ExceptionsQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = q.map_err(malformed)?.0;
    let limit = count("limit", &q.limit)?.unwrap_or(EXCEPTIONS_SHOWN as u64);
    if limit == 0 || limit > 10_000 {
        return Err(PageError::bad(format!(
            "limit: {limit} is out of range (1 to 10000)"
        )));
    }
    let query = ExceptionQuery {
        port: text(&q.port),
        message_id: text(&q.message_id),
        message_key: None,
        limit: Some(limit as usize),
    };
    let ops = s.ops.clone();
    let mut list = blocking(move || ops.exceptions(&query)).await?;
    list.reverse();
    let body = html! {
        h1 #page-exceptions { "Exceptions" }
        form.filters method="get" action="/console/exceptions" {
            label { "Port" input type="text" name="port" value=(q.port.clone().unwrap_or_default()); }
            label { "MessageId" input type="text" name="message_id" value=(q.message_id.clone().unwrap_or_default()); }
            label { "How many (newest)" input type="text" name="limit" value=(limit); }
            div { button type="submit" { "Show" } }
        }
        p.muted { (list.len()) " exception(s), newest first." }
        div.scroll { table #exceptions {
            thead { tr {
                th { "When" } th { "Port" } th { "Stage" } th.wide { "Plugin" } th { "Message" } th { "What" }
            } }
            tbody {
                @for e in &list {
                    tr {
                        td { (when(e.time_ms)) }
                        td { a href={"/console/exceptions?port=" (encode(&e.port))} { (e.port) } }
                        td { (e.stage) }
                        td.wide {
                            (e.plugin.as_deref().unwrap_or(""))
                            @if let Some(h) = &e.plugin_hash { " " code title=(h) { (h.get(..12).unwrap_or(h)) } }
                        }
                        td {
                            @if let Some(k) = e.message_key { a href={"/console/message/" (k)} { "#" (k) } br; }
                            @if let Some(id) = &e.message_id { span.muted { (id) } }
                        }
                        td.text { (e.text) }
                    }
                }
            }
        } }
    };
    Ok(session.page("Exceptions", None, body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct AuditQuery {
    before: Option<String>,
}

pub(super) async fn audit(
    State(s): State<ServerState>,
    session: Session,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = q.map_err(malformed)?.0;
    let before = count("before", &q.before)?;
    let ops = s.ops.clone();
    let page = blocking(move || ops.audit(before, AUDIT_PAGE)).await?;
    let body = html! {
        h1 #page-audit { "Audit log" }
        p.muted { "Every operator's action, newest first." }
        div.scroll { table #audit {
            thead { tr { th { "When" } th { "Who" } th { "What" } th { "Messages" } th { "Detail" } } }
            tbody {
                @for entry in &page.items {
                    tr {
                        td { (when(entry.time_ms)) }
                        td { (entry.who) }
                        td { (entry.action) }
                        td.text {
                            @for k in entry.messages.iter().take(20) { a href={"/console/message/" (k)} { "#" (k) } " " }
                            @if entry.messages.len() > 20 { "… (" (entry.messages.len()) " in all)" }
                        }
                        td.text { (entry.detail) }
                    }
                }
            }
        } }
        @if let Some(next) = page.next {
            p { a rel="next" href={"/console/audit?before=" (next)} { "Older entries" } }
        }
    };
    Ok(session.page("Audit log", None, body))
}
