//! The web console: server-rendered HTML pages under `/console/`, served by
//! the control API's server and doing the same operations as the API
//! (`ops.rs`'s [`Manager`](super::ops::Manager)).
//!
//! | page | path | file |
//! |---|---|---|
//! | login, logout | `/console/login`, `/console/logout` | this file |
//! | overview | `/console/` | `overview.rs` |
//! | queue, bulk actions | `/console/queue`, `/console/queue/bulk` | `queue.rs` |
//! | one message | `/console/message/{id}` | `message.rs` |
//! | exceptions, audit log | `/console/exceptions`, `/console/audit` | `logs.rs` |
//! | jobs, plugins | `/console/jobs`, `/console/plugins` | `jobs.rs` |
//!
//! **No JavaScript needed.** Every action is a plain HTML form (POST, then
//! a redirect to the page that shows the result). htmx (vendored, pinned:
//! `assets/htmx-2.0.11.min.js`, embedded in the binary) only enhances them:
//! `hx-boost` turns links and forms into in-page swaps.
//!
//! **Sessions.** The login form takes a token (the data directory's
//! `console/operator.token` or `viewer.token`, or a configured one) and
//! keeps it in an HttpOnly, SameSite=Strict cookie scoped to `/console`.
//! A viewer's pages have no action buttons, and its POSTs are refused.
//!
//! **CSRF.** Every form carries a token derived from the session's
//! ([`auth::csrf_for`]); a POST without it, or with another, is refused
//! with 403 and changes nothing. A POST whose `Sec-Fetch-Site` says
//! another site, or whose `Origin` is not this host, is refused too (the
//! login form included).

mod jobs;
mod logs;
mod message;
mod overview;
mod queue;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use maud::{DOCTYPE, Markup, html};
use serde::Deserialize;

use super::ServerState;
use super::auth::{self, Identity};
use super::ops::{Actor, OpError};
use crate::config::Role;

/// The session cookie's name.
pub const COOKIE: &str = "ferry_console";

/// The vendored htmx: its version is in the file name and the URL, so a
/// browser never keeps an old one.
pub const HTMX_PATH: &str = "/console/assets/htmx-2.0.11.min.js";
const HTMX: &str = include_str!("assets/htmx-2.0.11.min.js");
const CSS_PATH: &str = "/console/assets/console.css";
const CSS: &str = include_str!("assets/console.css");

/// htmx's settings: swap error pages too (they say what went wrong), and
/// no inline styles (the pages forbid them).
const HTMX_CONFIG: &str = r#"{"includeIndicatorStyles":false,"responseHandling":[{"code":"204","swap":false},{"code":".*","swap":true}]}"#;

/// A page that went wrong: its status and what the user reads.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    text: String,
}

impl PageError {
    fn new(status: StatusCode, text: impl Into<String>) -> PageError {
        PageError {
            status,
            text: text.into(),
        }
    }

    /// A 400: the request is wrong.
    pub fn bad(text: impl Into<String>) -> PageError {
        PageError::new(StatusCode::BAD_REQUEST, text)
    }

    /// A 403: not allowed.
    pub fn forbidden(text: impl Into<String>) -> PageError {
        PageError::new(StatusCode::FORBIDDEN, text)
    }
}

impl From<OpError> for PageError {
    fn from(e: OpError) -> Self {
        let status =
            StatusCode::from_u16(e.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        PageError::new(status, e.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let title = format!(
            "{} {}",
            self.status.as_u16(),
            self.status.canonical_reason().unwrap_or("")
        );
        let body = document(
            &title,
            html! {
                main #page-error {
                    h1 { (title) }
                    p.error #error-text { (self.text) }
                    p { a href="/console/" { "Back to the overview" } }
                }
            },
        );
        respond(self.status, body)
    }
}

/// The HTML response: a page that is never cached and never framed.
fn respond(status: StatusCode, body: Markup) -> Response {
    let mut r = (status, body.into_string()).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
             connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// A 303 to `to` (after a form's POST).
fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// `to` with a note for the next page to show (`?note=…`).
fn with_note(to: &str, note: &str) -> String {
    let sep = if to.contains('?') { '&' } else { '?' };
    format!("{to}{sep}note={}", encode(note))
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The skeleton of every page.
fn document(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="htmx-config" content=(HTMX_CONFIG);
                title { (title) " · Ferry" }
                link rel="stylesheet" href=(CSS_PATH);
                script src=(HTMX_PATH) defer {}
            }
            body hx-boost="true" { (body) }
        }
    }
}

/// Who is signed in: the token (from the cookie), whose it is, and the
/// CSRF token of its forms.
pub struct Session {
    token: String,
    id: Identity,
}

impl Session {
    /// The CSRF token to put in this session's forms.
    pub fn csrf(&self) -> String {
        auth::csrf_for(&self.token)
    }

    /// Whether this session may act.
    pub fn operator(&self) -> bool {
        self.id.role == Role::Operator
    }

    /// As the audit log names it.
    pub fn actor(&self) -> Actor {
        Actor {
            who: format!("{} ({} token, console)", self.id.name, self.id.role.word()),
            role: self.id.role,
        }
    }

    /// A POST's checks: an operator's session, and the form's CSRF token.
    pub fn may_act(&self, csrf: &str) -> Result<Actor, PageError> {
        if !auth::csrf_ok(&self.token, csrf) {
            return Err(PageError::forbidden(
                "this form's security token is missing or wrong, so nothing was done: open \
                 the page again and resubmit the form from it",
            ));
        }
        if !self.operator() {
            return Err(PageError::forbidden(format!(
                "{} may only read: a viewer's token cannot change anything",
                self.id.name
            )));
        }
        Ok(self.actor())
    }

    /// A page of the console: the navigation, `note` (the result of the
    /// last action) and `body`.
    pub fn page(&self, title: &str, note: Option<&str>, body: Markup) -> Response {
        let nav = [
            ("/console/", "Overview"),
            ("/console/queue", "Queue"),
            ("/console/exceptions", "Exceptions"),
            ("/console/jobs", "Jobs"),
            ("/console/plugins", "Plugins"),
            ("/console/audit", "Audit log"),
        ];
        let markup = document(
            title,
            html! {
                header {
                    nav {
                        strong.brand { "Ferry" }
                        @for (href, label) in nav {
                            a href=(href) { (label) }
                        }
                    }
                    form.who method="post" action="/console/logout" {
                        span #who { (self.id.name) " · " (self.id.role.word()) }
                        input type="hidden" name="csrf" value=(self.csrf());
                        button type="submit" { "Sign out" }
                    }
                }
                @if let Some(n) = note.filter(|n| !n.is_empty()) {
                    p.note #note role="status" { (n) }
                }
                main { (body) }
            },
        );
        respond(StatusCode::OK, markup)
    }

    /// The hidden CSRF field of this session's forms.
    pub fn csrf_field(&self) -> Markup {
        html! { input type="hidden" name="csrf" value=(self.csrf()); }
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    for v in headers.get_all(header::COOKIE) {
        let Ok(text) = v.to_str() else { continue };
        for part in text.split(';') {
            if let Some((name, value)) = part.trim().split_once('=')
                && name == COOKIE
            {
                return Some(value.trim().to_string());
            }
        }
    }
    None
}

/// Refuses a POST that a page of another site sent: `Sec-Fetch-Site`
/// other than same-origin (or none, from a user's own action), or an
/// `Origin` that is not this host.
fn same_origin(headers: &HeaderMap) -> Result<(), PageError> {
    let forged = || {
        PageError::forbidden(
            "this request came from another site's page, so nothing was done: use the \
             console's own forms",
        )
    };
    if let Some(site) = headers.get("sec-fetch-site") {
        let site = site.to_str().unwrap_or("");
        if site != "same-origin" && site != "none" {
            return Err(forged());
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
        let origin = origin.to_str().unwrap_or("");
        let host = headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or("");
        let bare = origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
            .unwrap_or(origin);
        if host.is_empty() || bare != host {
            return Err(forged());
        }
    }
    Ok(())
}

/// Why a request has no session: a page asks to sign in, a POST is refused.
pub struct NoSession(Response);

impl IntoResponse for NoSession {
    fn into_response(self) -> Response {
        self.0
    }
}

impl FromRequestParts<ServerState> for Session {
    type Rejection = NoSession;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &ServerState,
    ) -> Result<Self, Self::Rejection> {
        if parts.method == Method::POST
            && let Err(e) = same_origin(&parts.headers)
        {
            return Err(NoSession(e.into_response()));
        }
        let found = cookie_token(&parts.headers)
            .and_then(|t| state.tokens.check(&t).map(|id| Session { token: t, id }));
        match found {
            Some(s) => Ok(s),
            None if parts.method == Method::GET => Err(NoSession(see_other("/console/login"))),
            None => Err(NoSession(
                PageError::new(
                    StatusCode::UNAUTHORIZED,
                    "you are not signed in (or your token is no longer accepted): sign in \
                     again at /console/login",
                )
                .into_response(),
            )),
        }
    }
}

/// Runs a blocking operation off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, OpError> + Send + 'static,
) -> Result<T, PageError> {
    match tokio::task::spawn_blocking(f).await {
        Ok(r) => r.map_err(PageError::from),
        Err(e) => Err(PageError::from(OpError::Internal(format!(
            "the operation failed: {e}"
        )))),
    }
}

/// A form or query that did not parse: a 400 that says why.
pub fn malformed(e: impl std::fmt::Display) -> PageError {
    PageError::bad(format!("malformed request: {e}"))
}

/// A time for people (RFC 3339, UTC).
pub fn when(ms: u64) -> String {
    crate::scheduler::format_rfc3339(ms)
}

/// A duration for people: `3 s`, `4 min 5 s`, `2 h 10 min`, `3 d 4 h`.
pub fn age(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min {} s", s / 60, s % 60),
        3600..86400 => format!("{} h {} min", s / 3600, (s % 3600) / 60),
        _ => format!("{} d {} h", s / 86400, (s % 86400) / 3600),
    }
}

/// Now, in ms since the epoch.
pub fn now_ms() -> u64 {
    use crate::scheduler::Clock as _;
    crate::scheduler::SystemClock.now_ms()
}

#[derive(Deserialize)]
struct LoginForm {
    token: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct LoginQuery {
    note: Option<String>,
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    respond(
        status,
        document(
            "Sign in",
            html! {
                main #page-login {
                    h1 { "Ferry console" }
                    @if let Some(e) = error {
                        p.error #error-text { (e) }
                    }
                    form method="post" action="/console/login" {
                        label for="token" { "Token" }
                        input #token type="password" name="token" autocomplete="off" required;
                        button type="submit" { "Sign in" }
                    }
                    p.hint {
                        "The host writes an operator's and a viewer's token into its data \
                         directory: " code { "DATA_DIR/console/operator.token" } " and "
                        code { "viewer.token" } "."
                    }
                }
            },
        ),
    )
}

async fn login_form(
    q: Result<axum::extract::Query<LoginQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let note = q.ok().and_then(|q| q.0.note);
    login_page(StatusCode::OK, note.as_deref())
}

async fn login(
    axum::extract::State(s): axum::extract::State<ServerState>,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    // The login form is checked for its origin too: another site must not
    // sign a browser in with its own token.
    if let Err(e) = same_origin(&headers) {
        return e.into_response();
    }
    let Ok(axum::Form(form)) = form else {
        return login_page(StatusCode::BAD_REQUEST, Some("the form has no token"));
    };
    let token = form.token.trim().to_string();
    if token.is_empty() || s.tokens.check(&token).is_none() {
        return login_page(
            StatusCode::UNAUTHORIZED,
            Some("this host does not accept that token"),
        );
    }
    let mut r = see_other("/console/");
    if let Ok(v) = HeaderValue::from_str(&format!(
        "{COOKIE}={token}; Path=/console; HttpOnly; SameSite=Strict"
    )) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    r
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn logout(
    session: Session,
    form: Result<axum::Form<CsrfForm>, axum::extract::rejection::FormRejection>,
) -> Response {
    let csrf = form.map(|f| f.0.csrf).unwrap_or_default();
    if !auth::csrf_ok(&session.token, &csrf) {
        return PageError::forbidden("this form's security token is missing or wrong")
            .into_response();
    }
    let mut r = see_other("/console/login?note=signed%20out");
    r.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static(
            "ferry_console=; Path=/console; HttpOnly; SameSite=Strict; Max-Age=0",
        ),
    );
    r
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    let mut r = body.into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    r
}

async fn htmx() -> Response {
    asset(HTMX, "text/javascript; charset=utf-8")
}

async fn css() -> Response {
    asset(CSS, "text/css; charset=utf-8")
}

async fn not_found() -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "no such page in the console; its pages are in the navigation above",
    )
}

async fn root() -> Response {
    see_other("/console/")
}

/// The console's routes.
pub fn routes() -> Router<ServerState> {
    Router::new()
        .route("/", get(root))
        .route("/console", get(root))
        .route("/console/", get(overview::page))
        .route("/console/login", get(login_form).post(login))
        .route("/console/logout", post(logout))
        .route(HTMX_PATH, get(htmx))
        .route(CSS_PATH, get(css))
        .route("/console/queue", get(queue::page))
        .route("/console/queue/bulk", post(queue::bulk))
        .route("/console/message/{id}", get(message::page))
        .route(
            "/console/message/{id}/edit",
            post(message::edit).layer(axum::extract::DefaultBodyLimit::max(
                super::ops::MAX_CONTENT * 3 + (1 << 20),
            )),
        )
        .route("/console/message/{id}/content", get(message::content))
        .route("/console/message/{id}/{action}", post(message::act))
        .route("/console/exceptions", get(logs::exceptions))
        .route("/console/audit", get(logs::audit))
        .route("/console/jobs", get(jobs::page))
        .route("/console/jobs/{job}/{action}", post(jobs::act))
        .route("/console/plugins", get(jobs::plugins))
        .route("/console/{*rest}", axum::routing::any(not_found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_and_age_read_well() {
        assert_eq!(encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
        assert_eq!(age(5_000), "5 s");
        assert_eq!(age(65_000), "1 min 5 s");
        assert_eq!(age(7_260_000), "2 h 1 min");
        assert_eq!(age(90_000_000), "1 d 1 h");
    }

    #[test]
    fn a_cookie_is_found_among_others() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; ferry_console=abc ; b=2"),
        );
        assert_eq!(cookie_token(&h).as_deref(), Some("abc"));
        assert_eq!(cookie_token(&HeaderMap::new()), None);
    }

    #[test]
    fn posts_from_other_sites_are_refused() {
        let parts = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(same_origin(&parts(&[("host", "127.0.0.1:7480")])).is_ok());
        assert!(
            same_origin(&parts(&[
                ("host", "127.0.0.1:7480"),
                ("origin", "http://127.0.0.1:7480"),
                ("sec-fetch-site", "same-origin"),
            ]))
            .is_ok()
        );
        assert!(
            same_origin(&parts(&[
                ("host", "127.0.0.1:7480"),
                ("sec-fetch-site", "cross-site")
            ]))
            .is_err()
        );
        assert!(
            same_origin(&parts(&[
                ("host", "127.0.0.1:7480"),
                ("origin", "http://evil.example")
            ]))
            .is_err()
        );
    }
}
