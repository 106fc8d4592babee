//! One message: its header, the versions of its document with a diff
//! between any two, its exceptions and the operators' actions on it; hold,
//! release, resubmit, delete, and edit-and-resubmit.

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{PageError, Session, blocking, malformed, see_other, when, with_note};
use crate::control::ServerState;
use crate::control::ops::{Manager as _, OpError};
use crate::queue::MessageKey;
use crate::queue::Status;
use crate::queue::rules::OperatorAction;

fn key(text: &str) -> Result<MessageKey, PageError> {
    text.parse()
        .map_err(|_| PageError::bad(format!("{text:?} is not a queue id (a whole number)")))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct MessageQuery {
    a: Option<String>,
    b: Option<String>,
    note: Option<String>,
}

fn version(what: &str, v: &Option<String>) -> Result<Option<usize>, PageError> {
    v.as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.parse::<usize>()
                .map_err(|_| PageError::bad(format!("{what}: {v:?} is not a version number")))
        })
        .transpose()
}

/// Which actions the rules allow from a status (the others are not
/// offered; the queue would refuse them anyway).
fn offered(status: Status) -> Vec<OperatorAction> {
    let mut out = Vec::new();
    match status {
        Status::Ready => out.push(OperatorAction::Hold),
        Status::Hold => out.push(OperatorAction::Release),
        Status::Error => {
            out.push(OperatorAction::Resubmit);
            out.push(OperatorAction::Hold);
        }
        // Resubmitted unchanged it would fail again: the editor below.
        Status::MalformedXml | Status::InProcess | Status::InTransportProcess => {}
    }
    if !matches!(status, Status::InProcess | Status::InTransportProcess) {
        out.push(OperatorAction::Delete);
    }
    out
}

pub(super) async fn page(
    State(s): State<ServerState>,
    session: Session,
    Path(id): Path<String>,
    q: Result<Query<MessageQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let k = key(&id)?;
    let q = q.map_err(malformed)?.0;
    let (a, b) = (version("a", &q.a)?, version("b", &q.b)?);
    let ops = s.ops.clone();
    let view = match blocking(move || ops.show(k)).await {
        Ok(v) => v,
        // After an action: the message may have been processed (it left
        // the queue) before this page was asked for.
        Err(e) if e.status == axum::http::StatusCode::NOT_FOUND && q.note.is_some() => {
            let body = html! {
                h1 #page-message-gone { "Message #" (k) }
                p { "It is no longer in the queue: processed (see the message's history with "
                    code { "ferry history" } "), or deleted." }
                p { a href="/console/queue" { "Back to the queue" } }
            };
            return Ok(session.page(&format!("Message #{k}"), q.note.as_deref(), body));
        }
        Err(e) => return Err(e),
    };
    let diff = if view.versions.len() >= 2 || a.is_some() || b.is_some() {
        Some(view.diff(a, b).map_err(PageError::from)?)
    } else {
        None
    };
    let m = &view.message;
    let n = view.versions.len();
    let (da, db) = (
        a.unwrap_or(b.unwrap_or(n).saturating_sub(1)),
        b.unwrap_or(n),
    );
    let header: Vec<(&str, String)> = vec![
        ("Status", m.status.to_string()),
        ("Direction", m.direction.to_string()),
        ("Port", m.port.clone()),
        ("Name", m.name.clone()),
        ("Position in batch", m.position.to_string()),
        ("MessageId", m.message_id.clone()),
        ("Action", m.action.clone()),
        (
            "ConversationId",
            m.conversation_id.clone().unwrap_or_default(),
        ),
        ("BatchId", m.batch_id.clone().unwrap_or_default()),
        (
            "Request's MessageId",
            m.request_message_id.clone().unwrap_or_default(),
        ),
        ("Error", m.error.clone().unwrap_or_default()),
        ("Attempts", m.attempts.to_string()),
        ("Resubmitted", format!("{} time(s)", view.resubmits())),
        ("Received", when(m.created_ms)),
        ("Changed", when(m.updated_ms)),
    ];
    let body = html! {
        h1 #page-message { "Message #" (m.key) " " span #status class={"status-" (m.status.kebab())} { (m.status) } }
        dl.header #message-header {
            @for (label, value) in &header {
                @if !value.is_empty() { dt { (label) } dd { (value) } }
            }
        }
        @if session.operator() {
            div.actions #actions {
                @for action in offered(m.status) {
                    form.inline method="post" action={"/console/message/" (m.key) "/" (action.word())} {
                        (session.csrf_field())
                        @if action == OperatorAction::Delete {
                            button.danger id={"do-" (action.word())} type="submit"
                                hx-confirm={"Delete message #" (m.key) "?"} { (action.word()) }
                        } @else {
                            button id={"do-" (action.word())} type="submit" { (action.word()) }
                        }
                    }
                }
            }
        }
        p { a #export href={"/console/message/" (m.key) "/content"} hx-boost="false" { "Export the content" } }
        h2 { "Versions of the document" }
        div.scroll { table #versions {
            thead { tr { th { "#" } th { "When" } th { "Stage" } th.wide { "Port" } th { "Plugins" } } }
            tbody {
                @for v in &view.versions {
                    tr {
                        td { (v.number) }
                        td { (when(v.time_ms)) }
                        td { (v.stage) }
                        td.wide { (v.port) }
                        td.text {
                            @for (name, hash) in &v.plugins {
                                span title=(hash) { (name) " " code { (hash.get(..12).unwrap_or(hash)) } } " "
                            }
                        }
                    }
                }
            }
        } }
        @for v in &view.versions {
            details { summary { "Version " (v.number) " (" (v.stage) ")" } pre { (v.content) } }
        }
        @if n >= 2 {
            h2 { "Diff" }
            form.filters #diff-form method="get" action={"/console/message/" (m.key)} {
                label { "From version"
                    select name="a" { @for v in &view.versions { option value=(v.number) selected[v.number == da] { (v.number) } } }
                }
                label { "To version"
                    select name="b" { @for v in &view.versions { option value=(v.number) selected[v.number == db] { (v.number) } } }
                }
                div { button.secondary type="submit" { "Compare" } }
            }
        }
        @if let Some(d) = &diff {
            pre.diff #diff { @if d.is_empty() { "(no difference)" } @else { (d) } }
        }
        @if session.operator() && matches!(m.status, Status::Error | Status::MalformedXml | Status::Hold) {
            h2 { "Edit and resubmit" }
            form.stack #edit method="post" action={"/console/message/" (m.key) "/edit"} {
                (session.csrf_field())
                textarea #content name="content" spellcheck="false" { (m.content) }
                p { button #edit-resubmit type="submit" { "Resubmit the edited message" } }
                p.hint { "The edited content becomes a new version of the document; the message is Ready again." }
            }
        } @else {
            h2 { "Content" }
            pre #content { (m.content) }
        }
        h2 { "Exceptions" }
        @if view.exceptions.is_empty() { p.muted { "None." } } @else {
            div.scroll { table #message-exceptions {
                thead { tr { th { "When" } th { "Stage" } th { "Plugin" } th { "What" } } }
                tbody { @for e in &view.exceptions { tr {
                    td { (when(e.time_ms)) } td { (e.stage) }
                    td { (e.plugin.as_deref().unwrap_or("")) } td.text { (e.text) }
                } } }
            } }
        }
        h2 { "Operators' actions" }
        @if view.audit.is_empty() { p.muted { "None." } } @else {
            div.scroll { table #message-audit {
                thead { tr { th { "When" } th { "Who" } th { "What" } th { "Detail" } } }
                tbody { @for a in &view.audit { tr {
                    td { (when(a.time_ms)) } td { (a.who) } td { (a.action) } td.text { (a.detail) }
                } } }
            } }
        }
    };
    Ok(session.page(&format!("Message #{}", m.key), q.note.as_deref(), body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct ActForm {
    csrf: String,
}

pub(super) async fn act(
    State(s): State<ServerState>,
    session: Session,
    Path((id, verb)): Path<(String, String)>,
    form: Result<Form<ActForm>, FormRejection>,
) -> Result<Response, PageError> {
    let k = key(&id)?;
    let action = match verb.as_str() {
        "hold" => OperatorAction::Hold,
        "release" => OperatorAction::Release,
        "delete" => OperatorAction::Delete,
        "resubmit" => OperatorAction::Resubmit,
        other => {
            return Err(PageError::from(OpError::NotFound(format!(
                "no action {other:?} on a message; the actions are hold, release, delete and \
                 resubmit"
            ))));
        }
    };
    let form = form.map_err(malformed)?.0;
    let actor = session.may_act(&form.csrf)?;
    let ops = s.ops.clone();
    let reply = blocking(move || ops.act(k, action, &actor)).await?;
    let to = match reply.status {
        Some(_) => format!("/console/message/{k}"),
        None => "/console/queue".to_string(),
    };
    Ok(see_other(&with_note(&to, &reply.text)))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct EditForm {
    csrf: String,
    content: String,
}

pub(super) async fn edit(
    State(s): State<ServerState>,
    session: Session,
    Path(id): Path<String>,
    form: Result<Form<EditForm>, FormRejection>,
) -> Result<Response, PageError> {
    let k = key(&id)?;
    let form = form.map_err(malformed)?.0;
    let actor = session.may_act(&form.csrf)?;
    // Browsers send a textarea's line ends as CRLF.
    let content = form.content.replace("\r\n", "\n");
    if content.trim().is_empty() {
        return Err(PageError::bad(
            "the edited content is empty; to remove the message, delete it",
        ));
    }
    let ops = s.ops.clone();
    let reply = blocking(move || ops.resubmit_edited(k, content, &actor)).await?;
    Ok(see_other(&with_note(
        &format!("/console/message/{k}"),
        &reply.text,
    )))
}

pub(super) async fn content(
    State(s): State<ServerState>,
    _session: Session,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse as _;
    let k = key(&id)?;
    let ops = s.ops.clone();
    let view = blocking(move || ops.show(k)).await?;
    let mut r = view.message.content.into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/xml; charset=utf-8"),
    );
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"message-{k}.xml\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(r)
}
