//! The CLI's side: find out whether a host runs on the data directory, and
//! reach it through its control API ([`Remote`]) or open the queue directly
//! ([`Local`]) — the commands do not know which.
//!
//! A host runs when the queue file is locked ([`QueueError::InUse`]). The
//! CLI then reads `DATA_DIR/console/host.json` for the address and the
//! operator's token file (the viewer's when only that one is readable), and
//! sends each operation as an HTTP request with the token. A host that is
//! starting may not have written its address yet: the CLI waits a little
//! ([`CONNECT_WAIT`]) before it gives up.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::HostFile;
use super::api::USER_HEADER;
use super::auth;
use super::ops::{
    ActionReply, Actor, BulkReport, BulkRequest, ExceptionQuery, HistoryView, JobReply, Local,
    Manager, MessageView, OpError, PortInfo, local_user_name,
};
use crate::config::{Config, Role};
use crate::queue::manage::{AuditEntry, MessageSummary, Page, PageRequest, Search};
use crate::queue::rules::OperatorAction;
use crate::queue::{Direction, Exception, MessageKey, QueueError, RedbQueue, Status};
use crate::scheduler::Action;

/// How long the CLI waits for a starting host's console.
pub const CONNECT_WAIT: Duration = Duration::from_secs(5);

/// How long one request may take (a job action waits up to
/// [`super::ops::JOB_TIMEOUT`] for the scheduler).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

/// The largest response read (an exported message is at most 10 MB).
const MAX_RESPONSE: u64 = 256 << 20;

/// A running host's control API.
pub struct Remote {
    base: String,
    token: String,
    agent: ureq::Agent,
    user: String,
}

/// Where the commands' operations go.
pub enum Target {
    /// This process opened the queue (no host runs).
    Local(Box<Local>),
    /// A host runs on the data directory.
    Remote(Remote),
}

impl Target {
    /// The operations.
    pub fn manager(&self) -> &dyn Manager {
        match self {
            Target::Local(l) => l.as_ref(),
            Target::Remote(r) => r,
        }
    }

    /// Whether a running host answers.
    pub fn is_remote(&self) -> bool {
        matches!(self, Target::Remote(_))
    }
}

/// The target for a configuration (`None`: its file does not load, and a
/// host runs on `data_dir`): its data directory's queue, or the host
/// running on it. A running host is reached even when the file no longer
/// loads (the host refused it and keeps the configuration in force).
pub fn open_with(cfg: Option<Config>, data_dir: PathBuf) -> anyhow::Result<Target> {
    let Some(cfg) = cfg else {
        return Ok(Target::Remote(Remote::discover(&data_dir)?));
    };
    // Both backends: the configuration's queue, worked on directly.
    let local = |queue: std::sync::Arc<dyn crate::queue::QueueManager>| {
        Target::Local(Box::new(Local {
            queue,
            jobs: cfg.jobs.values().cloned().collect(),
            data_dir: data_dir.clone(),
            job_scope: cfg.queue.job_scope(),
            scheduler: None,
            ports: PortInfo::of(&cfg),
        }))
    };
    if !matches!(cfg.queue.backend, crate::config::QueueBackend::Redb) {
        // A shared database is never locked to a host: ask the host that
        // runs on this data directory, if one does (its scheduler applies
        // job actions at once), or work on the database directly.
        if let Some(host) = HostFile::read(&data_dir)?
            && Path::new(&format!("/proc/{}", host.pid)).exists()
            && let Ok(remote) = Remote::discover(&data_dir)
        {
            return Ok(Target::Remote(remote));
        }
        let queue = cfg
            .queue
            .open(&data_dir)
            .context("cannot open the gateway queue")?;
        return Ok(local(queue));
    }
    match RedbQueue::open(&data_dir) {
        Ok(queue) => Ok(local(std::sync::Arc::new(queue))),
        Err(QueueError::InUse { .. }) => {
            tracing::debug!(data_dir = %data_dir.display(), "a host runs on the data directory; asking it");
            Ok(Target::Remote(Remote::discover(&data_dir)?))
        }
        Err(e) => Err(e).context("cannot open the gateway queue"),
    }
}

fn no_console(data_dir: &Path) -> anyhow::Error {
    anyhow::anyhow!(
        "the data directory {} is in use by a running Ferry host, which does not serve its \
         control API: its console is off ([console] listen = \"\" in its configuration), or \
         it is still starting, or it is an older version. Turn the console on and restart the \
         host, or stop it to work on the queue directly",
        data_dir.display()
    )
}

impl Remote {
    /// Finds the host running on `data_dir` and the token to use.
    pub fn discover(data_dir: &Path) -> anyhow::Result<Remote> {
        let deadline = Instant::now() + CONNECT_WAIT;
        let host = loop {
            match HostFile::read(data_dir)? {
                Some(h) => break h,
                None if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(100));
                }
                None => return Err(no_console(data_dir)),
            }
        };
        let mut tried = Vec::new();
        let mut token = None;
        for role in [Role::Operator, Role::Viewer] {
            let path = auth::token_file(data_dir, role);
            match auth::read_token(&path) {
                Ok(t) => {
                    token = Some(t);
                    break;
                }
                Err(e) => tried.push(format!("{}: {e}", path.display())),
            }
        }
        let Some(token) = token else {
            anyhow::bail!(
                "cannot read a token of the running host's console ({}); run the command as \
                 the user the host runs as",
                tried.join("; ")
            );
        };
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(REQUEST_TIMEOUT))
            .build()
            .into();
        let remote = Remote {
            base: host.url.trim_end_matches('/').to_string(),
            token,
            agent,
            user: local_user_name(),
        };
        // Wait for a host that has written its address but is not
        // answering yet (or a host file left by one that crashed while
        // another one starts).
        loop {
            match remote.get::<Vec<(Direction, String, Status, u64)>>("/api/v1/counts", &[]) {
                Ok(_) => return Ok(remote),
                Err(OpError::Unavailable(e)) if Instant::now() < deadline => {
                    tracing::debug!("the console does not answer yet: {e}");
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(OpError::Unavailable(e)) => {
                    return Err(no_console(data_dir).context(e));
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn finish<T: DeserializeOwned>(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, OpError> {
        let text = self.text(r)?;
        serde_json::from_str(&text).map_err(|e| {
            OpError::Internal(format!(
                "the running host's answer cannot be read ({e}); is it another version?"
            ))
        })
    }

    fn text(
        &self,
        r: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, OpError> {
        let mut r = r.map_err(|e| {
            OpError::Unavailable(format!(
                "cannot reach the running host at {}: {e}",
                self.base
            ))
        })?;
        let status = r.status().as_u16();
        let body = r
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE)
            .read_to_string()
            .map_err(|e| {
                OpError::Unavailable(format!("the running host's answer broke off: {e}"))
            })?;
        if status >= 400 {
            return Err(serde_json::from_str::<OpError>(&body).unwrap_or_else(|_| {
                OpError::Internal(format!("the running host answered {status}: {body}"))
            }));
        }
        Ok(body)
    }

    fn get<T: DeserializeOwned>(&self, path: &str, query: &[(&str, String)]) -> Result<T, OpError> {
        let mut req = self
            .agent
            .get(self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header(USER_HEADER, &self.user);
        for (k, v) in query {
            req = req.query(*k, v);
        }
        self.finish(req.call())
    }

    fn post<T: DeserializeOwned>(
        &self,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, OpError> {
        let req = self
            .agent
            .post(self.url(path))
            .header("Authorization", &format!("Bearer {}", self.token))
            .header(USER_HEADER, &self.user);
        let r = match body {
            Some(b) => req
                .header("Content-Type", "application/json")
                .send(&serde_json::to_vec(b).map_err(|e| OpError::Internal(e.to_string()))?),
            None => req.send_empty(),
        };
        self.finish(r)
    }
}

fn opt<T: ToString>(k: &'static str, v: &Option<T>, out: &mut Vec<(&'static str, String)>) {
    if let Some(v) = v {
        out.push((k, v.to_string()));
    }
}

/// A percent-encoded path segment.
fn segment(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Manager for Remote {
    fn search(&self, search: &Search, page: &PageRequest) -> Result<Page<MessageSummary>, OpError> {
        let mut q = Vec::new();
        if let Some(d) = search.direction {
            q.push((
                "direction",
                match d {
                    Direction::Inbound => "inbound",
                    Direction::OutboundRequest => "outbound-request",
                    Direction::Outbound => "outbound",
                }
                .to_string(),
            ));
        }
        opt("port", &search.port, &mut q);
        opt("status", &search.status.map(Status::kebab), &mut q);
        opt("conversation", &search.conversation_id, &mut q);
        opt("message_id", &search.message_id, &mut q);
        opt("name", &search.name, &mut q);
        opt("from", &search.from_ms, &mut q);
        opt("to", &search.to_ms, &mut q);
        opt("error", &search.error, &mut q);
        opt("after", &page.after, &mut q);
        opt("max_key", &page.max_key, &mut q);
        q.push(("limit", page.limit.to_string()));
        self.get("/api/v1/queue", &q)
    }

    fn show(&self, key: MessageKey) -> Result<MessageView, OpError> {
        self.get(&format!("/api/v1/queue/{key}"), &[])
    }

    fn act(
        &self,
        key: MessageKey,
        action: OperatorAction,
        _actor: &Actor,
    ) -> Result<ActionReply, OpError> {
        self.post(
            &format!("/api/v1/queue/{key}/{}", action.word()),
            None::<&()>,
        )
    }

    fn resubmit_edited(
        &self,
        key: MessageKey,
        content: String,
        _actor: &Actor,
    ) -> Result<ActionReply, OpError> {
        self.post(
            &format!("/api/v1/queue/{key}/resubmit"),
            Some(&serde_json::json!({ "content": content })),
        )
    }

    fn bulk(&self, request: &BulkRequest, _actor: &Actor) -> Result<BulkReport, OpError> {
        self.post("/api/v1/queue/bulk", Some(request))
    }

    fn exceptions(&self, query: &ExceptionQuery) -> Result<Vec<Exception>, OpError> {
        let mut q = Vec::new();
        opt("port", &query.port, &mut q);
        opt("message_id", &query.message_id, &mut q);
        opt("message_key", &query.message_key, &mut q);
        opt("limit", &query.limit, &mut q);
        self.get("/api/v1/exceptions", &q)
    }

    fn history(&self, message_id: &str) -> Result<HistoryView, OpError> {
        self.get("/api/v1/history", &[("message_id", message_id.to_string())])
    }

    fn audit(&self, before: Option<u64>, limit: usize) -> Result<Page<AuditEntry>, OpError> {
        let mut q = vec![("limit", limit.to_string())];
        opt("before", &before, &mut q);
        self.get("/api/v1/audit", &q)
    }

    fn jobs(&self) -> Result<String, OpError> {
        let v: serde_json::Value = self.get("/api/v1/jobs", &[])?;
        Ok(v["text"].as_str().unwrap_or_default().to_string())
    }

    fn job_history(&self, job: &str, last: Option<usize>) -> Result<String, OpError> {
        let mut q = Vec::new();
        opt("last", &last, &mut q);
        let v: serde_json::Value =
            self.get(&format!("/api/v1/jobs/{}/history", segment(job)), &q)?;
        Ok(v["text"].as_str().unwrap_or_default().to_string())
    }

    fn job_action(&self, job: &str, action: Action, _actor: &Actor) -> Result<JobReply, OpError> {
        self.post(
            &format!("/api/v1/jobs/{}/{}", segment(job), action.name()),
            None::<&()>,
        )
    }

    fn plugins(&self) -> Result<Option<crate::reload::Status>, OpError> {
        self.get("/api/v1/plugins", &[])
    }

    fn counts(&self) -> Result<Vec<(Direction, String, Status, u64)>, OpError> {
        self.get("/api/v1/counts", &[])
    }
}
