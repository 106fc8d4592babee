//! The control API: JSON over HTTP under `/api/v1/`, a bearer token in
//! `Authorization` on every request.
//!
//! | method | path | what |
//! |---|---|---|
//! | GET | `/api/v1/queue?port=&direction=&status=&conversation=&message_id=&name=&from=&to=&error=&after=&limit=&max_key=` | a page of messages ([`Page`] of summaries) |
//! | GET | `/api/v1/queue/{id}` | one message: versions, exceptions, audit |
//! | GET | `/api/v1/queue/{id}/diff?a=&b=` | a unified diff between two versions |
//! | GET | `/api/v1/queue/{id}/content` | the content (export) |
//! | POST | `/api/v1/queue/{id}/hold`, `/release`, `/delete`, `/resubmit` | an action; `resubmit` takes an optional `{"content": "…"}` (edit-and-resubmit) |
//! | POST | `/api/v1/queue/bulk` | `{"action", "search", "cutoff", "dry_run"}` |
//! | GET | `/api/v1/counts` | messages per direction, port and status |
//! | GET | `/api/v1/exceptions?port=&message_id=&message_key=&limit=` | the exception log |
//! | GET | `/api/v1/history?message_id=` | a `MessageId`'s history |
//! | GET | `/api/v1/audit?before=&limit=` | the audit log, newest first |
//! | GET | `/api/v1/jobs`, `/api/v1/jobs/{job}/history?last=` | the jobs |
//! | POST | `/api/v1/jobs/{job}/hold`, `/release`, `/run-now`, `/cancel` | a job action |
//! | GET | `/api/v1/plugins` | the hot-loading status |
//!
//! Errors are `{"kind": "...", "error": "..."}` with 400 (a malformed
//! request), 401 (no or an unknown token), 403 (a viewer's change), 404,
//! 409 (the message's or job's state forbids it), 503 or 500.

use axum::Json;
use axum::Router;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::ServerState;
use super::ops::{Actor, BulkRequest, ExceptionQuery, MAX_CONTENT, Manager as _, OpError};
use crate::config::Role;
use crate::queue::manage::{PageRequest, Search};
use crate::queue::rules::OperatorAction;
use crate::queue::{Direction, MessageKey, Status};
use crate::scheduler::{Action, Clock as _, parse_rfc3339};

/// An [`OpError`] as an HTTP response.
#[derive(Debug)]
pub struct ApiError(pub OpError);

impl From<OpError> for ApiError {
    fn from(e: OpError) -> Self {
        ApiError(e)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (status, Json(self.0)).into_response()
    }
}

fn bad(text: impl Into<String>) -> ApiError {
    ApiError(OpError::BadRequest(text.into()))
}

/// The caller, from the bearer token.
pub struct Caller(pub Actor);

/// The header the CLI names its local user in (recorded in the audit log
/// beside the token's name).
pub const USER_HEADER: &str = "x-ferry-user";

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim())
}

impl FromRequestParts<ServerState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        let Some(token) = bearer(&parts.headers) else {
            return Err(ApiError(OpError::Unauthorized(
                "no token: send `Authorization: Bearer TOKEN` (the host writes its tokens to \
                 DATA_DIR/console/operator.token and viewer.token)"
                    .into(),
            )));
        };
        let Some(id) = state.tokens.check(token) else {
            return Err(ApiError(OpError::Unauthorized(
                "unknown token: this host does not accept it".into(),
            )));
        };
        let user: Option<String> = parts
            .headers
            .get(USER_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|u| {
                u.chars()
                    .filter(|c| !c.is_control())
                    .take(64)
                    .collect::<String>()
            })
            .filter(|u| !u.is_empty());
        let who = match user {
            Some(u) => format!("{} ({} token, cli user {u})", id.name, id.role.word()),
            None => format!("{} ({} token)", id.name, id.role.word()),
        };
        Ok(Caller(Actor { who, role: id.role }))
    }
}

impl Caller {
    fn operator(&self) -> Result<&Actor, ApiError> {
        match self.0.role {
            Role::Operator => Ok(&self.0),
            Role::Viewer => Err(ApiError(OpError::Forbidden(format!(
                "{} may only read: a viewer's token cannot change anything",
                self.0.who
            )))),
        }
    }
}

/// Runs a blocking operation off the async threads.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpError> + Send + 'static,
) -> Result<T, ApiError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(ApiError),
        Err(e) => Err(ApiError(OpError::Internal(format!(
            "the operation failed: {e}"
        )))),
    }
}

/// The query of a search, as text (parsed here so every mistake gets a
/// clear message).
#[derive(Debug, Clone, Default, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// `inbound` or `outbound`.
    pub direction: Option<String>,
    /// A port's name.
    pub port: Option<String>,
    /// A status (`error`, `malformed-xml`, ...).
    pub status: Option<String>,
    /// A `ConversationId`.
    pub conversation: Option<String>,
    /// A `MessageId`.
    pub message_id: Option<String>,
    /// Part of a file name.
    pub name: Option<String>,
    /// Received at or after (RFC 3339 or ms).
    pub from: Option<String>,
    /// Received before (RFC 3339 or ms).
    pub to: Option<String>,
    /// Part of the error text.
    pub error: Option<String>,
    /// The page after this key.
    pub after: Option<String>,
    /// The page's length.
    pub limit: Option<String>,
    /// Only keys up to this.
    pub max_key: Option<String>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

fn number(what: &str, v: &Option<String>) -> Result<Option<u64>, ApiError> {
    nonempty(v)
        .map(|s| {
            s.parse::<u64>()
                .map_err(|_| bad(format!("{what}: {s:?} is not a whole number")))
        })
        .transpose()
}

/// A time given as RFC 3339 (`2026-12-01T10:00:00Z`) or as milliseconds
/// since the epoch.
pub fn time(what: &str, v: Option<&str>) -> Result<Option<u64>, OpError> {
    let Some(s) = v.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    if let Ok(ms) = s.parse::<u64>() {
        return Ok(Some(ms));
    }
    parse_rfc3339(s).map(Some).map_err(|e| {
        OpError::BadRequest(format!(
            "{what}: {s:?} is not a time (RFC 3339 such as 2026-12-01T10:00:00Z, or ms since \
             the epoch): {e}"
        ))
    })
}

impl SearchQuery {
    /// The search and the page it asks for.
    pub fn parse(&self) -> Result<(Search, PageRequest), ApiError> {
        let search = Search {
            direction: nonempty(&self.direction)
                .map(|d| d.parse::<Direction>().map_err(|e| bad(e.to_string())))
                .transpose()?,
            port: nonempty(&self.port).map(str::to_string),
            status: nonempty(&self.status)
                .map(|d| d.parse::<Status>().map_err(|e| bad(e.to_string())))
                .transpose()?,
            conversation_id: nonempty(&self.conversation).map(str::to_string),
            message_id: nonempty(&self.message_id).map(str::to_string),
            name: nonempty(&self.name).map(str::to_string),
            from_ms: time("from", self.from.as_deref())?,
            to_ms: time("to", self.to.as_deref())?,
            error: nonempty(&self.error).map(str::to_string),
        };
        let limit = number("limit", &self.limit)?.unwrap_or(100);
        if limit == 0 || limit > crate::queue::manage::MAX_PAGE as u64 {
            return Err(bad(format!(
                "limit: {limit} is out of range (1 to {})",
                crate::queue::manage::MAX_PAGE
            )));
        }
        let page = PageRequest {
            after: number("after", &self.after)?,
            limit: limit as usize,
            max_key: number("max_key", &self.max_key)?,
        };
        Ok((search, page))
    }
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| bad(format!("malformed query: {}", e.body_text())))
}

fn json<T>(j: Result<Json<T>, JsonRejection>) -> Result<T, ApiError> {
    j.map(|Json(t)| t)
        .map_err(|e| bad(format!("malformed request body: {}", e.body_text())))
}

fn key(text: &str) -> Result<MessageKey, ApiError> {
    text.parse()
        .map_err(|_| bad(format!("{text:?} is not a queue id (a whole number)")))
}

async fn search(
    State(s): State<ServerState>,
    _caller: Caller,
    q: Result<Query<SearchQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let (search, page) = query(q)?.parse()?;
    let ops = s.ops.clone();
    let page = blocking(move || ops.search(&search, &page)).await?;
    Ok(Json(page).into_response())
}

async fn show(
    State(s): State<ServerState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let k = key(&id)?;
    let ops = s.ops.clone();
    Ok(Json(blocking(move || ops.show(k)).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DiffQuery {
    a: Option<usize>,
    b: Option<usize>,
}

async fn diff(
    State(s): State<ServerState>,
    _caller: Caller,
    Path(id): Path<String>,
    q: Result<Query<DiffQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let k = key(&id)?;
    let DiffQuery { a, b } = query(q)?;
    let ops = s.ops.clone();
    let text = blocking(move || ops.show(k)?.diff(a, b)).await?;
    Ok(Json(serde_json::json!({ "diff": text })).into_response())
}

async fn content(
    State(s): State<ServerState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
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

/// The body of `resubmit`: the edited content, if any.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResubmitBody {
    /// The new content (edit-and-resubmit).
    pub content: Option<String>,
}

async fn act(
    State(s): State<ServerState>,
    caller: Caller,
    Path((id, verb)): Path<(String, String)>,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let k = key(&id)?;
    let action = match verb.as_str() {
        "hold" => OperatorAction::Hold,
        "release" => OperatorAction::Release,
        "delete" => OperatorAction::Delete,
        "resubmit" => OperatorAction::Resubmit,
        other => {
            return Err(ApiError(OpError::NotFound(format!(
                "no action {other:?} on a message; the actions are hold, release, delete and \
                 resubmit"
            ))));
        }
    };
    let actor = caller.operator()?.clone();
    let content = if body.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        serde_json::from_slice::<ResubmitBody>(&body)
            .map_err(|e| bad(format!("malformed request body: {e}")))?
            .content
    };
    if content.is_some() && action != OperatorAction::Resubmit {
        return Err(bad(format!("{verb} takes no content; only resubmit does")));
    }
    let ops = s.ops.clone();
    let reply = blocking(move || match content {
        Some(c) => ops.resubmit_edited(k, c, &actor),
        None => ops.act(k, action, &actor),
    })
    .await?;
    Ok(Json(reply).into_response())
}

async fn bulk(
    State(s): State<ServerState>,
    caller: Caller,
    body: Result<Json<BulkRequest>, JsonRejection>,
) -> Result<Response, ApiError> {
    let request = json(body)?;
    let actor = if request.dry_run {
        caller.0.clone()
    } else {
        caller.operator()?.clone()
    };
    let ops = s.ops.clone();
    Ok(Json(blocking(move || ops.bulk(&request, &actor)).await?).into_response())
}

async fn counts(State(s): State<ServerState>, _caller: Caller) -> Result<Response, ApiError> {
    let ops = s.ops.clone();
    Ok(Json(blocking(move || ops.counts()).await?).into_response())
}

async fn exceptions(
    State(s): State<ServerState>,
    _caller: Caller,
    q: Result<Query<ExceptionQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let ops = s.ops.clone();
    Ok(Json(blocking(move || ops.exceptions(&q)).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct HistoryQuery {
    message_id: String,
}

async fn history(
    State(s): State<ServerState>,
    _caller: Caller,
    q: Result<Query<HistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let ops = s.ops.clone();
    Ok(Json(blocking(move || ops.history(&q.message_id)).await?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    before: Option<u64>,
    limit: Option<usize>,
}

async fn audit(
    State(s): State<ServerState>,
    _caller: Caller,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let ops = s.ops.clone();
    let limit = q.limit.unwrap_or(100);
    Ok(Json(blocking(move || ops.audit(q.before, limit)).await?).into_response())
}

async fn jobs(State(s): State<ServerState>, _caller: Caller) -> Result<Response, ApiError> {
    let ops = s.ops.clone();
    let text = blocking(move || ops.jobs()).await?;
    Ok(Json(serde_json::json!({ "text": text })).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JobHistoryQuery {
    last: Option<usize>,
}

async fn job_history(
    State(s): State<ServerState>,
    _caller: Caller,
    Path(job): Path<String>,
    q: Result<Query<JobHistoryQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let q = query(q)?;
    let ops = s.ops.clone();
    let text = blocking(move || ops.job_history(&job, q.last)).await?;
    Ok(Json(serde_json::json!({ "text": text })).into_response())
}

/// A job action's word.
pub fn job_action(word: &str) -> Result<Action, OpError> {
    match word {
        "hold" => Ok(Action::Hold),
        "release" => Ok(Action::Release),
        "run-now" => Ok(Action::RunNow),
        "cancel" => Ok(Action::Cancel),
        other => Err(OpError::NotFound(format!(
            "no action {other:?} on a job; the actions are hold, release, run-now and cancel"
        ))),
    }
}

async fn job_act(
    State(s): State<ServerState>,
    caller: Caller,
    Path((job, verb)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let action = job_action(&verb)?;
    let actor = caller.operator()?.clone();
    let ops = s.ops.clone();
    Ok(Json(blocking(move || ops.job_action(&job, action, &actor)).await?).into_response())
}

async fn plugins(State(s): State<ServerState>, _caller: Caller) -> Result<Response, ApiError> {
    let ops = s.ops.clone();
    Ok(Json(blocking(move || ops.plugins()).await?).into_response())
}

/// `GET /metrics`: Prometheus' text format.
async fn metrics(State(s): State<ServerState>, _caller: Caller) -> Result<Response, ApiError> {
    let Some(handle) = s.metrics.clone() else {
        return Err(ApiError(OpError::Unavailable(
            "metrics are off in this process (another recorder was installed)".into(),
        )));
    };
    let ops = s.ops.clone();
    let gauges = s.gauges.clone();
    blocking(move || {
        gauges
            .update(ops.queue.as_ref(), crate::scheduler::SystemClock.now_ms())
            .map_err(OpError::from)
    })
    .await?;
    let mut r = handle.render().into_response();
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    Ok(r)
}

async fn not_found() -> ApiError {
    ApiError(OpError::NotFound(
        "no such API path; see the table in the user guide's \"Operating Ferry\"".into(),
    ))
}

/// The API's routes.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route("/api/v1/queue", get(search))
        .route("/api/v1/queue/bulk", post(bulk))
        .route("/api/v1/queue/{id}", get(show))
        .route("/api/v1/queue/{id}/diff", get(diff))
        .route("/api/v1/queue/{id}/content", get(content))
        .route(
            "/api/v1/queue/{id}/{action}",
            post(act).layer(axum::extract::DefaultBodyLimit::max(
                MAX_CONTENT + (1 << 20),
            )),
        )
        .route("/api/v1/counts", get(counts))
        .route("/api/v1/exceptions", get(exceptions))
        .route("/api/v1/history", get(history))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/jobs", get(jobs))
        .route("/api/v1/jobs/{job}/history", get(job_history))
        .route("/api/v1/jobs/{job}/{action}", post(job_act))
        .route("/api/v1/plugins", get(plugins))
        .route("/metrics", get(metrics))
        .route("/api/{*rest}", axum::routing::any(not_found))
}
