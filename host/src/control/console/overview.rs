//! The overview: the ports, the queue's depth by status, messages per
//! second, the oldest waiting message and the exceptions of the last hour.

use std::collections::BTreeMap;
use std::time::Instant;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{PageError, Session, age, blocking, encode, malformed, now_ms, when};
use crate::control::ServerState;
use crate::control::ops::{ExceptionQuery, Manager as _};
use crate::queue::{Direction, Status};

/// How many exceptions the overview reads to count the last hour's.
const RECENT: usize = 1000;

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct NoteQuery {
    pub(super) note: Option<String>,
}

/// Messages per second since `last` (and `last` moved to now). Over less
/// than a second, the previous look is kept, so a quick reload does not
/// show a rate of one or two messages' worth.
fn rate(last: &std::sync::Mutex<(Instant, u64)>, total: u64) -> Option<f64> {
    let mut last = last.lock().unwrap_or_else(|e| e.into_inner());
    let (then, before) = *last;
    let secs = then.elapsed().as_secs_f64();
    if secs < 1.0 {
        return None;
    }
    *last = (Instant::now(), total);
    Some(total.saturating_sub(before) as f64 / secs)
}

pub(super) async fn page(
    State(s): State<ServerState>,
    session: Session,
    q: Result<Query<NoteQuery>, QueryRejection>,
) -> Result<Response, PageError> {
    let q = q.map_err(malformed)?.0;
    let ops = s.ops.clone();
    let (counts, oldest, recent, plugins) = blocking(move || {
        Ok((
            ops.counts()?,
            ops.queue.oldest()?,
            ops.exceptions(&ExceptionQuery {
                limit: Some(RECENT),
                ..ExceptionQuery::default()
            })?,
            ops.plugins()?,
        ))
    })
    .await?;
    let now = now_ms();
    let finished = crate::control::metrics::finished_total();
    let per_second = rate(&s.rate, finished);
    let hour_ago = now.saturating_sub(3_600_000);
    let last_hour: Vec<_> = recent
        .iter()
        .rev()
        .filter(|e| e.time_ms >= hour_ago)
        .collect();
    let paused = plugins.map(|p| p.paused).unwrap_or_default();
    // Depth: (direction, port) → status → count.
    let mut depth: BTreeMap<(Direction, String), BTreeMap<Status, u64>> = BTreeMap::new();
    let mut by_status: BTreeMap<Status, u64> = BTreeMap::new();
    for (d, p, st, n) in &counts {
        *depth
            .entry((*d, p.clone()))
            .or_default()
            .entry(*st)
            .or_insert(0) += n;
        *by_status.entry(*st).or_insert(0) += n;
    }
    let total: u64 = by_status.values().sum();
    let waiting = oldest.iter().find(|(st, _, _)| *st == Status::Ready);
    let body = html! {
        h1 #page-overview { "Overview" }
        div.cards {
            div.card #queued {
                div.muted { "Messages in the queue" }
                div.big { (total) }
                @for (st, n) in &by_status {
                    div { a href={"/console/queue?status=" (st.kebab())} { (st) } ": " (n) }
                }
            }
            div.card #rate {
                div.muted { "Messages finished per second" }
                div.big {
                    @match per_second {
                        Some(r) => { (format!("{r:.1}")) }
                        None => { "–" }
                    }
                }
                div.hint { "since the previous look at this page; " (finished) " since the host started" }
            }
            div.card #oldest {
                div.muted { "Oldest waiting message" }
                @match waiting {
                    Some((_, key, created)) => {
                        div.big { (age(now.saturating_sub(*created))) }
                        div { a href={"/console/message/" (key)} { "#" (key) } " queued " (when(*created)) }
                    }
                    None => { div.big { "none" } div.hint { "no message is waiting" } }
                }
            }
            div.card #exceptions-hour {
                div.muted { "Exceptions in the last hour" }
                div.big {
                    (last_hour.len())
                    @if recent.len() == RECENT && last_hour.len() == RECENT { "+" }
                }
                div { a href="/console/exceptions" { "all exceptions" } }
            }
        }
        h2 { "Ports" }
        div.scroll {
            table #ports {
                thead { tr {
                    th { "Port" } th { "Direction" } th.wide { "Adapter" } th.wide { "Address" }
                    @for st in Status::ALL { th.num { (st) } }
                } }
                tbody {
                    @for p in &s.ops.ports {
                        @let d = if p.direction == "inbound" { Direction::Inbound } else { Direction::Outbound };
                        @let row = depth.get(&(d, p.name.clone()));
                        tr {
                            td {
                                a href={"/console/queue?port=" (encode(&p.name)) "&direction=" (p.direction)} { (p.name) }
                                @if paused.iter().any(|x| x.starts_with(&format!("port {} is paused", p.name))) {
                                    " " span.paused { "paused" }
                                }
                            }
                            td { (p.direction) }
                            td.wide { (p.adapter) }
                            td.wide.text { (p.address) }
                            @for st in Status::ALL {
                                td.num { (row.and_then(|r| r.get(&st)).copied().unwrap_or(0)) }
                            }
                        }
                    }
                    // Messages of ports no longer configured.
                    @for ((d, port), row) in &depth {
                        @if !s.ops.ports.iter().any(|p| &p.name == port) {
                            tr {
                                td { a href={"/console/queue?port=" (encode(port))} { (port) } " " span.muted { "(not configured)" } }
                                td { (d) } td.wide {} td.wide {}
                                @for st in Status::ALL { td.num { (row.get(&st).copied().unwrap_or(0)) } }
                            }
                        }
                    }
                }
            }
        }
        @if !paused.is_empty() {
            h2 { "Paused ports" }
            ul { @for p in &paused { li.paused { (p) } } }
        }
        h2 { "Latest exceptions" }
        @if last_hour.is_empty() {
            p.muted { "None in the last hour." }
        } @else {
            div.scroll { table {
                thead { tr { th { "When" } th { "Port" } th { "Stage" } th { "Message" } th { "What" } } }
                tbody {
                    @for e in last_hour.iter().take(10) {
                        tr {
                            td { (when(e.time_ms)) }
                            td { (e.port) }
                            td { (e.stage) }
                            td { @if let Some(k) = e.message_key { a href={"/console/message/" (k)} { "#" (k) } } }
                            td.text { (e.text) }
                        }
                    }
                }
            } }
        }
    };
    Ok(session.page("Overview", q.note.as_deref(), body))
}
