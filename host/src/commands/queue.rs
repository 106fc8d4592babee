//! `ferry queue ...` and `ferry exceptions ...`: the queue manager on the
//! command line. These open the gateway queue directly, so they work while
//! no `ferry run` holds the same data directory.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Subcommand;

use crate::queue::{
    Direction, ExceptionFilter, Filter, GatewayQueue, MessageKey, RedbQueue, Status,
};
use crate::scheduler::format_rfc3339;

use super::run::load_config;

/// Queue manager commands.
#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued messages.
    List {
        /// The configuration file (for its data directory).
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
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
        /// Only this conversation.
        #[arg(long)]
        conversation: Option<String>,
    },
    /// Show one message: header, status, error, history and exceptions.
    Show {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The message's queue id (first column of `queue list`).
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
    /// Delete a message that is not in process.
    Delete {
        /// The configuration file.
        #[arg(long, short, default_value = "ferry.toml")]
        config: PathBuf,
        /// The message's queue id.
        id: MessageKey,
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
    },
}

/// Options of `ferry history`.
#[derive(Debug, clap::Args)]
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

/// `ferry history MESSAGE_ID`: the document history of a message, queued or
/// processed long ago — every version the port's `logging` mode kept, with
/// the stage and the plugins (name and hash) that produced it.
pub fn run_history(args: HistoryArgs) -> anyhow::Result<ExitCode> {
    let q = open(&args.config)?;
    let history = q.history(&args.message_id)?;
    let log_id = crate::services::inbound::message_log_id(&args.message_id);
    let processed = q.is_processed(&log_id)?;
    let queued = q.list(&Filter::default())?;
    let queued: Vec<_> = queued
        .iter()
        .filter(|m| m.message_id == args.message_id)
        .collect();
    if history.is_empty() && queued.is_empty() && !processed {
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
        if processed {
            "yes (in the message log)"
        } else {
            "no"
        }
    );
    for m in queued {
        println!("queued:     id {} ({}, {})", m.key, m.direction, m.status);
    }
    for (i, h) in history.iter().enumerate() {
        let plugins: Vec<String> = h
            .plugins
            .iter()
            .map(|(n, hash)| format!("{n}@{hash}"))
            .collect();
        println!(
            "--- version {} --- {} port={} stage={} plugins=[{}]",
            i + 1,
            format_rfc3339(h.time_ms),
            h.port,
            h.stage,
            plugins.join(", ")
        );
        if !args.brief {
            println!("{}", h.content);
        }
    }
    println!("{} version(s)", history.len());
    Ok(ExitCode::SUCCESS)
}

fn open(config: &Path) -> anyhow::Result<RedbQueue> {
    let cfg = load_config(config)?;
    RedbQueue::open(&cfg.data_dir).context("cannot open the gateway queue")
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

/// Run a queue command.
pub fn run(cmd: QueueCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        QueueCommand::List {
            config,
            port,
            status,
            direction,
            conversation,
        } => {
            let q = open(&config)?;
            let list = q.list(&Filter {
                direction,
                port,
                status,
                conversation_id: conversation,
                limit: None,
            })?;
            println!(
                "{:>8}  {:<16} {:<14} {:<20} {:<40} {:<24} ERROR",
                "ID", "DIRECTION", "PORT", "STATUS", "MESSAGE ID", "NAME"
            );
            for m in &list {
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
            println!("{} message(s)", list.len());
        }
        QueueCommand::Show { config, id } => {
            let q = open(&config)?;
            let Some(m) = q.get(id)? else {
                eprintln!("no message with queue id {id}");
                return Ok(ExitCode::from(1));
            };
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
            println!("attempts:        {}", m.attempts);
            if let Some(e) = &m.error {
                println!("error:           {e}");
            }
            println!("--- content ---\n{}", m.content);
            let history = q.history(&m.message_id)?;
            if !history.is_empty() {
                println!("--- history ---");
                for h in history {
                    let plugins: Vec<String> = h
                        .plugins
                        .iter()
                        .map(|(n, hash)| format!("{n}@{}", &hash[..hash.len().min(12)]))
                        .collect();
                    println!(
                        "{} {} {} [{}]",
                        format_rfc3339(h.time_ms),
                        h.port,
                        h.stage,
                        plugins.join(", ")
                    );
                }
            }
            let exceptions = q.exceptions(&ExceptionFilter {
                message_key: Some(m.key),
                ..ExceptionFilter::default()
            })?;
            if !exceptions.is_empty() {
                println!("--- exceptions ---");
                for e in exceptions {
                    println!(
                        "{} {} {}: {}",
                        format_rfc3339(e.time_ms),
                        e.port,
                        e.stage,
                        e.text
                    );
                }
            }
        }
        QueueCommand::Hold { config, id } => {
            open(&config)?.hold(id)?;
            println!("message {id} is on hold");
        }
        QueueCommand::Release { config, id } => {
            open(&config)?.release(id)?;
            println!("message {id} is Ready");
        }
        QueueCommand::Delete { config, id } => {
            open(&config)?.delete(id)?;
            println!("message {id} deleted");
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
    } = cmd;
    let q = open(&config)?;
    let list = q.exceptions(&ExceptionFilter {
        port,
        message_id,
        ..ExceptionFilter::default()
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
