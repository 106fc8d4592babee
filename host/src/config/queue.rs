//! `[queue]`: where the gateway queue is kept — a redb file in the data
//! directory (one host, the default) or a PostgreSQL database several hosts
//! share.
//!
//! ```toml
//! [queue]
//! backend = "postgres"                       # default "redb"
//! url = "postgres://user@host:5432/ferry"    # or url_env = "FERRY_QUEUE_URL"
//! schema = "ferry"                           # the default
//! host_id = "ferry-a"                        # default: hostname-pid
//! lease = "30s"                              # the default
//! ```

use std::ops::Range;
use std::time::Duration;

use serde::Deserialize;
use toml::Spanned;

use crate::queue::postgres::{DEFAULT_LEASE, DEFAULT_SCHEMA, valid_schema};

/// Which store keeps the gateway queue.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum QueueBackend {
    /// `<data dir>/ferry.redb`, locked to one host.
    #[default]
    Redb,
    /// A PostgreSQL database, shared by several hosts.
    Postgres {
        /// The connection string (from `url`, or read from `url_env` at
        /// start).
        url: String,
        /// The schema of Ferry's tables.
        schema: String,
    },
}

/// `[queue]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueConfig {
    /// The store.
    pub backend: QueueBackend,
    /// This host's name among the hosts of one queue (its owner name in
    /// leases, the console and the logs); `None`: `hostname-pid`.
    pub host_id: Option<String>,
    /// How long a host's lease lasts without a heartbeat: after it, the
    /// other hosts take its unfinished work.
    pub lease: Duration,
}

impl Default for QueueConfig {
    fn default() -> Self {
        QueueConfig {
            backend: QueueBackend::Redb,
            host_id: None,
            lease: DEFAULT_LEASE,
        }
    }
}

impl QueueConfig {
    /// Where this host's job state is kept in the queue's state area: the
    /// whole area on a queue of one host; `host/NAME/` on a shared one,
    /// NAME being `host_id`, or the machine's name (so a restarted host
    /// finds its jobs' state again).
    pub fn job_scope(&self) -> String {
        match self.backend {
            QueueBackend::Redb => String::new(),
            QueueBackend::Postgres { .. } => {
                let name = self.host_id.clone().unwrap_or_else(|| {
                    let owner = crate::queue::default_owner();
                    owner
                        .rsplit_once('-')
                        .map_or(owner.clone(), |(host, _pid)| host.to_string())
                });
                format!("host/{name}/")
            }
        }
    }

    /// This host's owner name.
    pub fn owner(&self) -> String {
        self.host_id
            .clone()
            .unwrap_or_else(crate::queue::default_owner)
    }
}

/// `[queue]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawQueue {
    backend: Option<Spanned<String>>,
    url: Option<Spanned<String>>,
    url_env: Option<Spanned<String>>,
    schema: Option<Spanned<String>>,
    host_id: Option<Spanned<String>>,
    lease: Option<Spanned<String>>,
}

/// Reads `[queue]`; each problem goes to `problem(span, key, message)`.
pub(crate) fn parse(
    raw: Option<Spanned<RawQueue>>,
    problem: &mut dyn FnMut(Range<usize>, &str, String),
) -> QueueConfig {
    let mut out = QueueConfig::default();
    let Some(raw) = raw else {
        return out;
    };
    let span = raw.span();
    let raw = raw.into_inner();
    if let Some(h) = &raw.host_id {
        let id = h.get_ref().trim();
        if id.is_empty() || id.len() > 200 || id.chars().any(char::is_control) {
            problem(
                h.span(),
                "queue.host_id",
                "must be a non-empty name of up to 200 characters (e.g. \"ferry-a\")".into(),
            );
        } else {
            out.host_id = Some(id.to_string());
        }
    }
    if let Some(l) = &raw.lease {
        match super::parse_duration(l.get_ref()) {
            Ok(d) if d >= Duration::from_secs(1) => out.lease = d,
            Ok(_) => problem(
                l.span(),
                "queue.lease",
                "must be at least 1s: a host renews its lease three times per lease".into(),
            ),
            Err(e) => problem(l.span(), "queue.lease", e),
        }
    }
    let backend = raw.backend.as_ref().map(|b| (b.span(), b.get_ref().trim()));
    match backend {
        None | Some((_, "redb")) => {
            for (key, given) in [
                ("url", raw.url.as_ref().map(Spanned::span)),
                ("url_env", raw.url_env.as_ref().map(Spanned::span)),
                ("schema", raw.schema.as_ref().map(Spanned::span)),
            ] {
                if let Some(s) = given {
                    problem(
                        s,
                        &format!("queue.{key}"),
                        "applies to backend = \"postgres\" only; the redb queue is \
                         DATA_DIR/ferry.redb"
                            .into(),
                    );
                }
            }
        }
        Some((_, "postgres")) => {
            let url = match (&raw.url, &raw.url_env) {
                (Some(u), None) => Some(u.get_ref().trim().to_string()),
                (None, Some(var)) => match std::env::var(var.get_ref()) {
                    Ok(u) if !u.trim().is_empty() => Some(u.trim().to_string()),
                    _ => {
                        problem(
                            var.span(),
                            "queue.url_env",
                            format!(
                                "the environment variable {} is not set (it should hold \
                                 the database's connection string)",
                                var.get_ref()
                            ),
                        );
                        None
                    }
                },
                (Some(u), Some(_)) => {
                    problem(
                        u.span(),
                        "queue.url",
                        "give url or url_env, not both".into(),
                    );
                    None
                }
                (None, None) => {
                    problem(
                        span.clone(),
                        "queue",
                        "backend = \"postgres\" needs url = \"postgres://user@host:5432/db\" \
                         or url_env = \"VARIABLE\""
                            .into(),
                    );
                    None
                }
            };
            let schema = match &raw.schema {
                Some(s) if !valid_schema(s.get_ref()) => {
                    problem(
                        s.span(),
                        "queue.schema",
                        "use lower-case letters, digits and _, starting with a letter".into(),
                    );
                    DEFAULT_SCHEMA.to_string()
                }
                Some(s) => s.get_ref().clone(),
                None => DEFAULT_SCHEMA.to_string(),
            };
            if let Some(url) = url {
                out.backend = QueueBackend::Postgres { url, schema };
            }
        }
        Some((s, other)) => problem(
            s,
            "queue.backend",
            format!("{other:?} is not a queue backend; use \"redb\" (one host) or \"postgres\""),
        ),
    }
    out
}

impl QueueConfig {
    /// [`open`](Self::open) for a running host: a shared queue also
    /// listens for the other hosts' wake-ups.
    pub fn open_for_host(
        &self,
        data_dir: &std::path::Path,
    ) -> Result<std::sync::Arc<dyn crate::queue::QueueManager>, crate::queue::QueueError> {
        if let QueueBackend::Postgres { .. } = &self.backend {
            let queue = self.open_postgres()?;
            queue.listen(std::time::Duration::from_secs(5));
            return Ok(std::sync::Arc::new(queue));
        }
        self.open(data_dir)
    }

    fn open_postgres(&self) -> Result<crate::queue::PgQueue, crate::queue::QueueError> {
        let QueueBackend::Postgres { url, schema } = &self.backend else {
            unreachable!("called for the postgres backend only")
        };
        let mut options = crate::queue::PgOptions::new(url.clone());
        options.schema = schema.clone();
        options.lease = self.lease;
        crate::queue::PgQueue::open(options)
    }

    /// Opens the gateway queue this configuration names: the redb file in
    /// `data_dir`, or the PostgreSQL schema (created or migrated first).
    pub fn open(
        &self,
        data_dir: &std::path::Path,
    ) -> Result<std::sync::Arc<dyn crate::queue::QueueManager>, crate::queue::QueueError> {
        match &self.backend {
            QueueBackend::Redb => Ok(std::sync::Arc::new(crate::queue::RedbQueue::open(
                data_dir,
            )?)),
            QueueBackend::Postgres { .. } => Ok(std::sync::Arc::new(self.open_postgres()?)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> (QueueConfig, Vec<String>) {
        #[derive(Deserialize)]
        struct File {
            queue: Option<Spanned<RawQueue>>,
        }
        let f: File = toml::from_str(text).unwrap();
        let mut problems = Vec::new();
        let c = parse(f.queue, &mut |_, k, m| problems.push(format!("{k}: {m}")));
        (c, problems)
    }

    #[test]
    fn defaults_a_postgres_queue_and_every_bad_field() {
        assert_eq!(read("").0, QueueConfig::default());
        let (c, p) = read(
            "[queue]\nbackend = \"postgres\"\nurl = \"postgres://u@h/db\"\n\
             host_id = \"ferry-a\"\nlease = \"10s\"",
        );
        assert!(p.is_empty(), "{p:?}");
        assert_eq!(
            c.backend,
            QueueBackend::Postgres {
                url: "postgres://u@h/db".into(),
                schema: DEFAULT_SCHEMA.into()
            }
        );
        assert_eq!(c.owner(), "ferry-a");
        assert_eq!(c.job_scope(), "host/ferry-a/");
        assert_eq!(c.lease, Duration::from_secs(10));
        for (text, want) in [
            (
                "backend = \"mysql\"",
                "queue.backend: \"mysql\" is not a queue backend",
            ),
            (
                "backend = \"postgres\"",
                "queue: backend = \"postgres\" needs url",
            ),
            (
                "backend = \"postgres\"\nurl = \"x\"\nurl_env = \"Y\"",
                "queue.url: give url or url_env, not both",
            ),
            (
                "backend = \"postgres\"\nurl_env = \"FERRY_TEST_UNSET_VARIABLE_42\"",
                "queue.url_env: the environment variable FERRY_TEST_UNSET_VARIABLE_42 is not set",
            ),
            (
                "backend = \"postgres\"\nurl = \"x\"\nschema = \"Bad-Name\"",
                "queue.schema: use lower-case letters",
            ),
            (
                "url = \"x\"",
                "queue.url: applies to backend = \"postgres\" only",
            ),
            ("lease = \"100ms\"", "queue.lease: must be at least 1s"),
            ("lease = \"soon\"", "queue.lease: "),
            ("host_id = \"\"", "queue.host_id: must be a non-empty name"),
        ] {
            let (_, p) = read(&format!("[queue]\n{text}"));
            assert!(p.iter().any(|m| m.starts_with(want)), "{text}: {p:?}");
        }
    }
}
