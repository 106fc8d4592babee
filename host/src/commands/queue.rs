//! `ferry queue ...`, `ferry exceptions ...`, `ferry history` and
//! `ferry audit`: the queue manager on the command line. On a stopped host
//! they open the gateway queue directly; while `ferry run` runs they ask it
//! through its control API (`control::client`). The output is the same.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::{Args, Subcommand};

use crate::control::client::{self, Target};
use crate::control::ops::{
    Actor, BulkAction, BulkRequest, ExceptionQuery, Manager, MessageView, OpError,
};
use crate::queue::manage::{Cutoff, MAX_PAGE, PageRequest, Search};
use crate::queue::rules::OperatorAction;
use crate::queue::{Direction, MessageKey, Status};
use crate::scheduler::format_rfc3339;

use super::run::load_for_host;

/// Which messages: the filters of `queue list` and `queue bulk`.
#[derive(Debug, Clone, Args)]
pub struct SearchArgs {
    /// Only this port.
    #[arg(long)]
    port: Option<String>,
    /// Only this status (ready, in-process, hold, error,
    /// in-transport-process, malformed-xml).
    #[arg(long)]
    status: Option<Status>,
    /// Only this direction (inbound, outbound-request, outbound).
    #[arg(long)]
    direction: Option<Direction>,
    /// Only this conversation (ConversationId).
    #[arg(long)]
    conversation: Option<String>,
    /// Only this MessageId (braces and case do not matter).
    #[arg(long)]
    message_id: Option<String>,
    /// Only names (file names) containing this.
    #[arg(long)]
    name: Option<String>,
    /// Only messages received at or after this time (RFC 3339, e.g.
    /// 2026-12-01T10:00:00Z).
    #[arg(long, value_name = "TIME")]
    from: Option<String>,
    /// Only messages received before this time (RFC 3339).
    #[arg(long, value_name = "TIME")]
    to: Option<String>,
    /// Only messages whose error contains this text (any case).
    #[arg(long, value_name = "TEXT")]
    error: Option<String>,
}

impl SearchArgs {
    fn search(&self) -> anyhow::Result<Search> {
        let time = |what, v: &Option<String>| {
            crate::control::api::time(what, v.as_deref()).map_err(anyhow::Error::from)
        };
        Ok(Search {
            direction: self.direction,
            port: self.port.clone(),
            status: self.status,
            conversation_id: self.conversation.clone(),
            message_id: self.message_id.clone(),
            name: self.name.clone(),
            from_ms: time("--from", &self.from)?,
            to_ms: time("--to", &self.to)?,
            error: self.error.clone(),
        })
    }
}

/// Queue manager commands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages (oldest first), optionally filtered.
    List {
        /// The configuration file (for its data directory).
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The filters.
        #[command(flatten)]
        search: SearchArgs,
        /// At most N messages (one page); the last line says how to go on.
        #[arg(long, value_name = "N")]
        limit: Option<usize>,
        /// Start after this queue id (the next page).
        #[arg(long, value_name = "ID")]
        after: Option<MessageKey>,
    },
    /// Show one message: header, status, content, every version of its
    /// document with the plugins that made it, its exceptions and the
    /// operators' actions on it.
    Show {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// Print the versions' contents too.
        #[arg(long)]
        versions: bool,
        /// The message's queue id (first column of `queue list`).
        id: MessageKey,
    },
    /// A unified diff between two versions of a message's document (by
    /// default the last two; numbers as `queue show` lists them).
    Diff {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The message's queue id.
        id: MessageKey,
        /// The older version.
        from: Option<usize>,
        /// The newer version.
        to: Option<usize>,
    },
    /// Write a message's content to a file (or to stdout).
    Export {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The file to write (stdout when not given).
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// The message's queue id.
        id: MessageKey,
    },
    /// Put a Ready or Error message on hold.
    Hold {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The message's queue id.
        id: MessageKey,
    },
    /// Release a held message, or resubmit a failed one (status Ready).
    Release {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The message's queue id.
        id: MessageKey,
    },
    /// Resubmit a failed, malformed or held message (status Ready), with
    /// edited content from a file: edit-and-resubmit. The edit becomes a
    /// new version of the document; the audit log records who and when.
    Resubmit {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The corrected content (an envelope; `-` reads stdin).
        #[arg(long, value_name = "FILE")]
        content: Option<PathBuf>,
        /// The message's queue id.
        id: MessageKey,
    },
    /// Delete a message that is not in process.
    Delete {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The message's queue id.
        id: MessageKey,
    },
    /// Hold, release, resubmit or delete every message matching the
    /// filters. Use --dry-run first: it prints the count and a --cutoff
    /// that acts on exactly the messages that matched then.
    Bulk {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// What to do: hold, release, resubmit or delete.
        action: String,
        /// The filters.
        #[command(flatten)]
        search: SearchArgs,
        /// Count the matches; change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Act only on what matched at a dry run: `KEY@MS` as it printed.
        #[arg(long, value_name = "KEY@MS")]
        cutoff: Option<String>,
    },
    /// Create the gateway queue, or bring its schema to this version of
    /// Ferry (`ferry run` does this at start too): for a PostgreSQL queue
    /// before the first host starts, or to see what a new version changes.
    Migrate {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
    },
}

/// Exception log commands.
#[derive(Debug, Subcommand)]
pub enum ExceptionsCommand {
    /// List the exception log, oldest first.
    List {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// Only this port.
        #[arg(long)]
        port: Option<String>,
        /// Only this MessageId.
        #[arg(long)]
        message_id: Option<String>,
        /// Only the newest N.
        #[arg(long, value_name = "N")]
        last: Option<usize>,
    },
}

/// Options of `ferry history`.
#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// The configuration file (for its data directory).
    #[arg(long, short, default_value = "ferry.toml")]
    config: PathBuf,
    /// Print each version's header and stage only, not its content.
    #[arg(long)]
    brief: bool,
    /// The message's `MessageId` (as in its envelope, or `queue list`).
    message_id: String,
}

/// Options of `ferry audit`.
#[derive(Debug, Args)]
pub struct AuditArgs {
    /// The configuration file (for its data directory).
    #[arg(long, short, default_value = "ferry.toml")]
    config: PathBuf,
    /// The newest N entries.
    #[arg(long, value_name = "N", default_value_t = 50)]
    last: usize,
    /// Entries older than this audit id (the next page).
    #[arg(long, value_name = "ID")]
    before: Option<u64>,
}

/// The operations for a configuration: on its queue, or its running host.
pub fn target(config: &Path) -> anyhow::Result<Target> {
    let (cfg, data_dir) = load_for_host(config)?;
    client::open_with(cfg, data_dir)
}

/// `ferry history MESSAGE_ID`: the document history of a message, queued or
/// processed long ago — every version the port's `logging` mode kept, with
/// the stage and the plugins (name and hash) that produced it.
pub fn run_history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let t = target(&args.config)?;
    let v = t.manager().history(&args.message_id)?;
    if v.history.is_empty() && v.queued.is_empty() && !v.processed {
        eprintln!(
            "no history for MessageId {}: it was never received here, or its port keeps \
             none (logging = \"off\")",
            args.message_id
        );
        return Ok(ExitCode::from(1));
    }
    println!("message id: {}", args.message_id);
    println!(
        "processed:  {}",
        if v.processed {
            "yes (in the message log)"
        } else {
            "no"
        }
    );
    for m in &v.queued {
        println!("queued:     id {} ({}, {})", m.key, m.direction, m.status);
    }
    for (i, h) in v.history.iter().enumerate() {
        println!(
            "--- version {} --- {} port={} stage={} plugins=[{}]",
            i + 1,
            format_rfc3339(h.time_ms),
            h.port,
            h.stage,
            plugins(&h.plugins, usize::MAX)
        );
        if !args.brief {
            println!("{}", h.content);
        }
    }
    println!("{} version(s)", v.history.len());
    Ok(ExitCode::SUCCESS)
}

/// `ferry audit`: the operators' actions, newest first.
pub fn run_audit(args: AuditArgs) -> anyhow::Result<ExitCode> {
    let t = target(&args.config)?;
    let page = t
        .manager()
        .audit(args.before, args.last.clamp(1, MAX_PAGE))?;
    for e in &page.items {
        let messages = match e.messages.len() {
            0 => String::new(),
            1..=10 => format!(
                " messages={}",
                e.messages
                    .iter()
                    .map(u64::to_string)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            n => format!(" messages={n} ({}…)", e.messages[0]),
        };
        println!(
            "#{} {} {} by {}{}{}",
            e.id,
            format_rfc3339(e.time_ms),
            e.action,
            e.who,
            messages,
            if e.detail.is_empty() {
                String::new()
            } else {
                format!("\n    {}", e.detail)
            }
        );
    }
    if let Some(n) = page.next {
        println!("older entries: --before {n}");
    }
    println!(
        "{} entr{}",
        page.items.len(),
        if page.items.len() == 1 { "y" } else { "ies" }
    );
    Ok(ExitCode::SUCCESS)
}

fn plugins(list: &[(String, String)], hash_len: usize) -> String {
    list.iter()
        .map(|(n, hash)| format!("{n}@{}", &hash[..hash.len().min(hash_len)]))
        .collect::<Vec<_>>()
        .join(", ")
}

fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > 100 {
        format!("{}…", s.chars().take(100).collect::<String>())
    } else {
        s
    }
}

fn print_show(v: &MessageView, contents: bool) {
    let m = &v.message;
    println!("id:              {}", m.key);
    println!("direction:       {}", m.direction);
    println!("port:            {}", m.port);
    println!("status:          {}", m.status);
    println!("name:            {} (position {})", m.name, m.position);
    println!("message id:      {}", m.message_id);
    println!("action:          {}", m.action);
    if let Some(c) = &m.conversation_id {
        println!("conversation id: {c}");
    }
    if let Some(b) = &m.batch_id {
        println!("batch id:        {b}");
    }
    if let Some(r) = &m.request_message_id {
        println!("request id:      {r}");
    }
    println!("received:        {}", format_rfc3339(m.created_ms));
    println!("attempts:        {}", m.attempts);
    println!("resubmitted:     {} time(s)", v.resubmits());
    if let Some(e) = &m.error {
        println!("error:           {e}");
    }
    println!("--- content ---\n{}", m.content);
    if !v.versions.is_empty() {
        println!("--- history ---");
        for h in &v.versions {
            println!(
                "v{} {} {} {} [{}]",
                h.number,
                format_rfc3339(h.time_ms),
                h.port,
                h.stage,
                plugins(&h.plugins, 12)
            );
            if contents {
                println!("{}", h.content);
            }
        }
    }
    if !v.exceptions.is_empty() {
        println!("--- exceptions ---");
        for e in &v.exceptions {
            println!(
                "{} {} {}: {}",
                format_rfc3339(e.time_ms),
                e.port,
                e.stage,
                e.text
            );
        }
    }
    if !v.audit.is_empty() {
        println!("--- operators ---");
        for a in &v.audit {
            println!("{} {} by {}", format_rfc3339(a.time_ms), a.action, a.who);
        }
    }
}

fn read_content(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read the content from stdin")?;
        return Ok(s);
    }
    std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
}

fn parse_cutoff(s: &str) -> anyhow::Result<Cutoff> {
    let (k, t) = s
        .split_once('@')
        .with_context(|| format!("--cutoff {s:?}: expected KEY@MS as a dry run prints it"))?;
    Ok(Cutoff {
        key: k
            .trim()
            .parse()
            .with_context(|| format!("--cutoff {s:?}: {k:?} is not a queue id"))?,
        time_ms: t
            .trim()
            .parse()
            .with_context(|| format!("--cutoff {s:?}: {t:?} is not a time in ms"))?,
    })
}

fn list(
    m: &dyn Manager,
    search: &Search,
    limit: Option<usize>,
    mut after: Option<MessageKey>,
) -> anyhow::Result<()> {
    println!(
        "{:>8}  {:<16} {:<14} {:<20} {:<40} {:<24} ERROR",
        "ID", "DIRECTION", "PORT", "STATUS", "MESSAGE ID", "NAME"
    );
    let mut shown = 0usize;
    let want = limit.unwrap_or(usize::MAX);
    let mut more = None;
    while shown < want {
        let page = m.search(
            search,
            &PageRequest {
                after,
                limit: (want - shown).min(MAX_PAGE),
                max_key: None,
            },
        )?;
        for m in &page.items {
            println!(
                "{:>8}  {:<16} {:<14} {:<20} {:<40} {:<24} {}",
                m.key,
                m.direction.to_string(),
                m.port,
                m.status.to_string(),
                m.message_id,
                if m.position > 0 {
                    format!("{}#{}", m.name, m.position)
                } else {
                    m.name.clone()
                },
                m.error.as_deref().map(one_line).unwrap_or_default()
            );
        }
        shown += page.items.len();
        match page.next {
            Some(n) => {
                after = Some(n);
                more = Some(n);
            }
            None => {
                more = None;
                break;
            }
        }
    }
    if let Some(n) = more {
        println!("more: --after {n}");
    }
    println!("{shown} message(s)");
    Ok(())
}

/// Run a queue command.
pub fn run(cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    let actor = Actor::local_user();
    match cmd {
        QueueCommand::Migrate { config } => {
            let config = super::run::load_config(&config)?;
            match &config.queue.backend {
                crate::config::QueueBackend::Redb => {
                    crate::queue::RedbQueue::open(&config.data_dir)
                        .context("cannot open the gateway queue")?;
                    println!(
                        "gateway queue {} is at format {}",
                        config.data_dir.join(crate::queue::redb_file()).display(),
                        crate::queue::redb_format()
                    );
                }
                crate::config::QueueBackend::Postgres { schema, .. } => {
                    drop(
                        config
                            .queue
                            .open(&config.data_dir)
                            .context("cannot open the gateway queue")?,
                    );
                    println!(
                        "gateway queue schema {schema} is at version {}",
                        crate::queue::postgres::schema::latest()
                    );
                }
            }
        }
        QueueCommand::List {
            config,
            search,
            limit,
            after,
        } => {
            let search = search.search()?;
            let t = target(&config)?;
            list(t.manager(), &search, limit, after)?;
        }
        QueueCommand::Show {
            config,
            versions,
            id,
        } => {
            let t = target(&config)?;
            match t.manager().show(id) {
                Ok(v) => print_show(&v, versions),
                Err(OpError::NotFound(_)) => {
                    eprintln!("no message with queue id {id}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            }
        }
        QueueCommand::Diff {
            config,
            id,
            from,
            to,
        } => {
            let t = target(&config)?;
            let v = t.manager().show(id)?;
            print!("{}", v.diff(from, to)?);
        }
        QueueCommand::Export { config, out, id } => {
            let t = target(&config)?;
            let v = t.manager().show(id)?;
            match out {
                Some(path) => {
                    std::fs::write(&path, v.message.content.as_bytes())
                        .with_context(|| format!("cannot write {}", path.display()))?;
                    eprintln!(
                        "message {id}: {} bytes written to {}",
                        v.message.content.len(),
                        path.display()
                    );
                }
                None => print!("{}", v.message.content),
            }
        }
        QueueCommand::Hold { config, id } => {
            let t = target(&config)?;
            println!(
                "{}",
                t.manager().act(id, OperatorAction::Hold, &actor)?.text
            );
        }
        QueueCommand::Release { config, id } => {
            let t = target(&config)?;
            println!(
                "{}",
                t.manager().act(id, OperatorAction::Release, &actor)?.text
            );
        }
        QueueCommand::Delete { config, id } => {
            let t = target(&config)?;
            println!(
                "{}",
                t.manager().act(id, OperatorAction::Delete, &actor)?.text
            );
        }
        QueueCommand::Resubmit {
            config,
            content,
            id,
        } => {
            let content = content.as_deref().map(read_content).transpose()?;
            let t = target(&config)?;
            let reply = match content {
                Some(c) => t.manager().resubmit_edited(id, c, &actor)?,
                None => t.manager().act(id, OperatorAction::Resubmit, &actor)?,
            };
            println!("{}", reply.text);
        }
        QueueCommand::Bulk {
            config,
            action,
            search,
            dry_run,
            cutoff,
        } => {
            let action: BulkAction = action.parse()?;
            let request = BulkRequest {
                action,
                search: search.search()?,
                cutoff: cutoff.as_deref().map(parse_cutoff).transpose()?,
                dry_run,
            };
            let t = target(&config)?;
            let r = t.manager().bulk(&request, &actor)?;
            let cut = r
                .cutoff
                .map(|c| format!("{}@{}", c.key, c.time_ms))
                .unwrap_or_default();
            if r.dry_run {
                let refused = if r.refused > 0 {
                    format!(
                        " ({} of them cannot be given a {}: see below)",
                        r.refused,
                        action.word()
                    )
                } else {
                    String::new()
                };
                println!(
                    "dry run: {} message(s) match{refused}; nothing was changed",
                    r.matched
                );
                println!("to act on exactly these: --cutoff {cut}");
            } else {
                println!(
                    "{}: {} done, {} already so, {} changed meanwhile (left alone), {} refused; \
                     cutoff {cut}",
                    action.word(),
                    r.done,
                    r.unchanged,
                    r.changed,
                    r.refused
                );
            }
            for (k, why) in &r.refusals {
                println!("  {k}: {why}");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Run an exceptions command.
pub fn run_exceptions(cmd: ExceptionsCommand) -> anyhow::Result<ExitCode> {
    let ExceptionsCommand::List {
        config,
        port,
        message_id,
        last,
    } = cmd;
    let t = target(&config)?;
    let list = t.manager().exceptions(&ExceptionQuery {
        port,
        message_id,
        message_key: None,
        limit: last,
    })?;
    for e in &list {
        let plugin = match (&e.plugin, &e.plugin_hash) {
            (Some(p), Some(h)) => format!(" plugin={p}@{}", &h[..h.len().min(12)]),
            _ => String::new(),
        };
        println!(
            "#{} time={} port={} stage={}{} message={} id={}\n    {}",
            e.id,
            format_rfc3339(e.time_ms),
            e.port,
            e.stage,
            plugin,
            e.message_key.map_or("-".into(), |k| k.to_string()),
            e.message_id.as_deref().unwrap_or("-"),
            e.text
        );
    }
    println!("{} exception(s)", list.len());
    Ok(ExitCode::SUCCESS)
}
