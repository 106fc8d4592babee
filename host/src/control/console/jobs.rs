//! The jobs (status, history; hold, release, run now, cancel) and the
//! plugins (live version, load time, refusals, paused ports).

use axum::extract::rejection::{FormRejection, QueryRejection};
use axum::extract::{Form, Path, Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::overview::NoteQuery;
use super::{PageError, Session, blocking, malformed, see_other, when, with_note};
use crate::control::ServerState;
use crate::control::api::job_action;
use crate::control::ops::Manager as _;

/// The occurrences of each job's history the page shows.
const HISTORY: usize = 10;

pub(super) async fn page(
    State(s): State<ServerState>,
    session: Session,
    q: Result<Query<NoteQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = q.map_err(malformed)?.0;
    let ops = s.ops.clone();
    let (table, histories) = blocking(move || {
        let table = ops.jobs()?;
        let mut histories = Vec::new();
        for j in &ops.jobs {
            histories.push((j.name.clone(), ops.job_history(&j.name, Some(HISTORY))?));
        }
        Ok((table, histories))
    })
    .await?;
    let body = html! {
        h1 #page-jobs { "Jobs" }
        @if histories.is_empty() {
            p.muted { "The configuration has no jobs." }
        } @else {
            pre #jobs-table { (table) }
        }
        @for (name, history) in &histories {
            section.job {
                h2 { "Job " (name) }
                @if session.operator() {
                    div.actions {
                        @for action in ["hold", "release", "run-now", "cancel"] {
                            form.inline method="post" action={"/console/jobs/" (super::encode(name)) "/" (action)} {
                                (session.csrf_field())
                                button.secondary type="submit" { (action) }
                            }
                        }
                    }
                }
                details { summary { "History (last " (HISTORY) ")" } pre { (history) } }
            }
        }
    };
    Ok(session.page("Jobs", q.note.as_deref(), body))
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub(super) struct JobForm {
    csrf: String,
}

pub(super) async fn act(
    State(s): State<ServerState>,
    session: Session,
    Path((job, verb)): Path<(String, String)>,
    form: Result<Form<JobForm>, FormRejection>,
) -> Result<Response, PageError> {
    let action = job_action(&verb)?;
    let form = form.map_err(malformed)?.0;
    let actor = session.may_act(&form.csrf)?;
    let ops = s.ops.clone();
    let reply = blocking(move || ops.job_action(&job, action, &actor)).await?;
    Ok(see_other(&with_note("/console/jobs", &reply.text)))
}

pub(super) async fn plugins(
    State(s): State<ServerState>,
    session: Session,
) -> Result<Response, PageError> {
    let ops = s.ops.clone();
    let status = blocking(move || ops.plugins()).await?;
    let body = html! {
        h1 #page-plugins { "Plugins" }
        @match &status {
            None => { p.muted { "The host has not written its plugins' status yet (it is still loading them)." } }
            Some(st) => {
                p.muted {
                    "Configuration " code { (st.config.file.display()) } " in force since " (when(st.config.loaded_ms)) "."
                }
                @if let Some(r) = &st.config.last_refusal {
                    p.error { "Last refused configuration (" (when(r.time_ms)) "): " (r.reason) }
                }
                div.scroll { table #plugins {
                    thead { tr { th { "Plugin" } th { "World" } th { "Live version (sha256)" } th { "Loaded" } th { "Last refusal" } } }
                    tbody {
                        @for (name, p) in &st.plugins {
                            tr {
                                td { (name) }
                                td { (p.world) }
                                td.text {
                                    @match &p.hash {
                                        Some(h) => { code title=(h) { (h.get(..16).unwrap_or(h)) } }
                                        None => { span.error { "missing" @if let Some(m) = &p.missing { ": " (m) } } }
                                    }
                                }
                                td { (p.loaded_ms.map(when).unwrap_or_default()) }
                                td.text {
                                    @if let Some(r) = &p.last_refusal {
                                        (when(r.time_ms)) ": " (r.reason)
                                    }
                                }
                            }
                        }
                    }
                } }
                h2 { "Paused ports" }
                @if st.paused.is_empty() { p.muted { "None." } } @else {
                    ul #paused { @for p in &st.paused { li.paused { (p) } } }
                }
            }
        }
    };
    Ok(session.page("Plugins", None, body))
}
