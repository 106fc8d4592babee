//! The queue: a filter form, a page of messages (keyset paging: "next
//! page" resumes after the last key shown), and bulk actions on the filter
//! — first a dry run that counts the matches and fixes the cutoff, then the
//! action on exactly those messages.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde::Deserialize;

use super::{PageError, Session, blocking, encode, malformed, see_other, when, with_note};
use crate::control::ServerState;
use crate::control::api::SearchQuery;
use crate::control::ops::{BulkAction, BulkRequest, Manager as _, describe};
use crate::queue::Status;
use crate::queue::manage::Cutoff;

/// The filter's fields, as the API's search takes them.
macro_rules! filter_struct {
    ($(#[$m:meta])* $name:ident { $($extra:ident: $ty:ty),* $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Default, Deserialize)]
        #[serde(default, deny_unknown_fields)]
        pub(super) struct $name {
            direction: Option<String>,
            port: Option<String>,
            status: Option<String>,
            conversation: Option<String>,
            message_id: Option<String>,
            name: Option<String>,
            from: Option<String>,
            to: Option<String>,
            error: Option<String>,
            $($extra: $ty),*
        }

        impl $name {
            /// The API's search query of these fields.
            fn search(&self) -> SearchQuery {
                SearchQuery {
                    direction: self.direction.clone(),
                    port: self.port.clone(),
                    status: self.status.clone(),
                    conversation: self.conversation.clone(),
                    message_id: self.message_id.clone(),
                    name: self.name.clone(),
                    from: self.from.clone(),
                    to: self.to.clone(),
                    error: self.error.clone(),
                    ..SearchQuery::default()
                }
            }
        }
    };
}

filter_struct!(
    /// The queue page's query: the filter, the page, and a note.
    QueueQuery {
        after: Option<String>,
        limit: Option<String>,
        note: Option<String>,
    }
);

filter_struct!(
    /// The bulk form: the filter, the action, and — on the confirming
    /// second step — the cutoff of the dry run.
    BulkForm {
        action: String,
        cutoff_key: Option<String>,
        cutoff_time: Option<String>,
        csrf: String,
    }
);

/// The filter fields, as (name, label, value, placeholder).
fn fields(q: &SearchQuery) -> [(&'static str, &'static str, String, &'static str); 8] {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    [
        ("port", "Port", v(&q.port), ""),
        ("name", "File name contains", v(&q.name), ""),
        ("message_id", "MessageId", v(&q.message_id), ""),
        ("conversation", "ConversationId", v(&q.conversation), ""),
        ("error", "Error text contains", v(&q.error), ""),
        ("from", "Received from", v(&q.from), "2026-12-01T10:00:00Z"),
        ("to", "Received before", v(&q.to), "2026-12-02T00:00:00Z"),
        ("limit", "Per page", v(&q.limit), "100"),
    ]
}

/// The filter as query parameters (without paging).
fn filter_query(q: &SearchQuery) -> String {
    let mut parts = Vec::new();
    let mut add = |k: &str, v: &Option<String>| {
        if let Some(v) = v.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
            parts.push(format!("{k}={}", encode(v)));
        }
    };
    add("direction", &q.direction);
    add("status", &q.status);
    add("port", &q.port);
    add("name", &q.name);
    add("message_id", &q.message_id);
    add("conversation", &q.conversation);
    add("error", &q.error);
    add("from", &q.from);
    add("to", &q.to);
    add("limit", &q.limit);
    parts.join("&")
}

/// The filter as hidden fields (the bulk forms repeat it).
fn hidden_filter(q: &SearchQuery) -> Markup {
    let pairs = [
        ("direction", &q.direction),
        ("status", &q.status),
        ("port", &q.port),
        ("name", &q.name),
        ("message_id", &q.message_id),
        ("conversation", &q.conversation),
        ("error", &q.error),
        ("from", &q.from),
        ("to", &q.to),
    ];
    html! {
        @for (k, v) in pairs {
            @if let Some(v) = v.as_deref().filter(|v| !v.trim().is_empty()) {
                input type="hidden" name=(k) value=(v);
            }
        }
    }
}

fn filter_form(q: &SearchQuery) -> Markup {
    let selected = |v: &Option<String>, want: &str| v.as_deref().map(str::trim) == Some(want);
    html! {
        form.filters #filters method="get" action="/console/queue" {
            label { "Status"
                select name="status" {
                    option value="" { "any" }
                    @for st in Status::ALL {
                        option value=(st.kebab()) selected[selected(&q.status, st.kebab())] { (st) }
                    }
                }
            }
            label { "Direction"
                select name="direction" {
                    option value="" { "any" }
                    option value="inbound" selected[selected(&q.direction, "inbound")] { "inbound" }
                    option value="outbound" selected[selected(&q.direction, "outbound")] { "outbound" }
                }
            }
            @for (name, label, value, placeholder) in fields(q) {
                label { (label)
                    input type="text" name=(name) value=(value) placeholder=(placeholder);
                }
            }
            div { button #apply type="submit" { "Filter" } " " a href="/console/queue" { "clear" } }
        }
    }
}

fn status_class(st: Status) -> String {
    format!("status-{}", st.kebab())
}

pub(super) async fn page(
    State(s): State<ServerState>,
    session: Session,
    q: Result<Query<QueueQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let query = q.map_err(malformed)?.0;
    let note = query.note.clone();
    let q = SearchQuery {
        after: query.after.clone(),
        limit: query.limit.clone(),
        ..query.search()
    };
    let (search, page) = q.parse().map_err(|e| PageError::from(e.0))?;
    let ops = s.ops.clone();
    let found = blocking(move || ops.search(&search, &page)).await?;
    let filter = filter_query(&q);
    let body = html! {
        h1 #page-queue { "Queue" }
        (filter_form(&q))
        p.muted #shown {
            (found.items.len()) " message(s) on this page"
            @if q.after.is_some() { ", after #" (q.after.as_deref().unwrap_or("")) }
            "."
        }
        div.scroll {
            table #messages {
                thead { tr {
                    th { "#" } th { "Status" } th { "Port" } th.wide { "Direction" } th { "Name" }
                    th.wide { "MessageId" } th { "Error" } th.wide.num { "Attempts" } th.wide { "Received" }
                } }
                tbody {
                    @for m in &found.items {
                        tr {
                            td { a.msg href={"/console/message/" (m.key)} { (m.key) } }
                            td class=(status_class(m.status)) { (m.status) }
                            td { (m.port) }
                            td.wide { (m.direction) }
                            td.text { (m.name) @if m.position > 0 { " [" (m.position) "]" } }
                            td.wide.text { (m.message_id) }
                            td.text { (m.error.as_deref().unwrap_or("")) }
                            td.wide.num { (m.attempts) }
                            td.wide { (when(m.created_ms)) }
                        }
                    }
                }
            }
        }
        @if let Some(next) = found.next {
            @let href = if filter.is_empty() { format!("/console/queue?after={next}") } else { format!("/console/queue?{filter}&after={next}") };
            p { a #next rel="next" href=(href) { "Next page" } }
        }
        @if session.operator() {
            h2 { "Bulk action on every message of this filter" }
            form.stack #bulk method="post" action="/console/queue/bulk" {
                (session.csrf_field())
                (hidden_filter(&q))
                p.muted { "Filter: " (q.parse().map(|(s, _)| describe(&s)).unwrap_or_default()) }
                label { "Action"
                    select name="action" {
                        option value="resubmit" { "Resubmit" }
                        option value="hold" { "Hold" }
                        option value="release" { "Release" }
                        option value="delete" { "Delete" }
                    }
                }
                p { button #dry-run type="submit" { "Count them first (dry run)" } }
                p.hint { "Nothing changes until you confirm on the next page; only the messages that match now are acted on." }
            }
        }
    };
    Ok(session.page("Queue", note.as_deref(), body))
}

fn number(what: &str, v: &str) -> Result<u64, PageError> {
    v.trim()
        .parse()
        .map_err(|_| PageError::bad(format!("{what}: {v:?} is not a whole number")))
}

pub(super) async fn bulk(
    State(s): State<ServerState>,
    session: Session,
    form: Result<Form<BulkForm>, FormRejection>,
) -> Result<Response, PageError> {
    let form = form.map_err(malformed)?.0;
    let actor = session.may_act(&form.csrf)?;
    let action: BulkAction = form.action.parse().map_err(PageError::from)?;
    let filter_fields = form.search();
    let (search, _) = filter_fields.parse().map_err(|e| PageError::from(e.0))?;
    let cutoff = match (&form.cutoff_key, &form.cutoff_time) {
        (Some(k), Some(t)) => Some(Cutoff {
            key: number("cutoff_key", k)?,
            time_ms: number("cutoff_time", t)?,
        }),
        (None, None) => None,
        _ => {
            return Err(PageError::bad(
                "a cutoff needs both cutoff_key and cutoff_time",
            ));
        }
    };
    let request = BulkRequest {
        action,
        search: search.clone(),
        cutoff,
        dry_run: cutoff.is_none(),
    };
    let ops = s.ops.clone();
    let report = blocking(move || ops.bulk(&request, &actor)).await?;
    let filter = filter_query(&filter_fields);
    let back = format!("/console/queue?{filter}");
    if !report.dry_run {
        let mut text = format!(
            "{}: {} message(s) done, {} already so, {} changed since you looked (left alone), {} refused",
            action.word(),
            report.done,
            report.unchanged,
            report.changed,
            report.refused
        );
        if let Some((k, why)) = report.refusals.first() {
            text.push_str(&format!(" (#{k}: {why})"));
        }
        return Ok(see_other(&with_note(&back, &text)));
    }
    let Some(cutoff) = report.cutoff else {
        return Err(PageError::from(crate::control::ops::OpError::Internal(
            "the dry run returned no cutoff".into(),
        )));
    };
    let body = html! {
        h1 #page-bulk { "Confirm: " (action.word()) }
        p #dry-run-result {
            strong #matched { (report.matched) } " message(s) match "
            em { (describe(&search)) } " now (received up to #" (cutoff.key) ", as of " (when(cutoff.time_ms)) ")."
        }
        @if report.refused > 0 {
            p.error { (report.refused) " of them would be refused:" }
            ul { @for (k, why) in &report.refusals { li { "#" (k) ": " (why) } } }
        }
        @if report.matched > report.refused {
            form #confirm method="post" action="/console/queue/bulk" {
                (session.csrf_field())
                (hidden_filter(&filter_fields))
                input type="hidden" name="action" value=(action.word());
                input type="hidden" name="cutoff_key" value=(cutoff.key);
                input type="hidden" name="cutoff_time" value=(cutoff.time_ms);
                button.danger[action == BulkAction::Delete] #confirm-button type="submit" {
                    (action.word()) " " (report.matched - report.refused) " message(s)"
                }
            }
            p.hint { "Messages that arrive or change after this count are left alone." }
        } @else {
            p { "Nothing to do." }
        }
        p { a href=(back) { "Back to the queue" } }
    };
    Ok(session.page("Confirm a bulk action", None, body))
}
