//! `ferry run` and `ferry check`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use clap::Args;

use crate::config::Config;
use crate::control::ops::{self, Local};
use crate::plugins::PluginSet;
use crate::queue::{GatewayQueue, RedbQueue};
use crate::runtime::{Runtime, RuntimeOptions};
use crate::scheduler::{
    Clock, Controls, GatewayRunner, QueueStore, Scheduler, StateStore, SystemClock,
};
use crate::services::{Gateway, LeaseKeeper, Sandboxes};

/// Options of `ferry run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "ferry.toml")]
    pub config: PathBuf,
    /// Run one occurrence of every Waiting job now, then exit (0 when every
    /// occurrence Ended: no task in Error, ignored failures aside).
    #[arg(long)]
    pub once: bool,
}

/// Options of `ferry check`.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// The configuration file.
    #[arg(long, short, default_value = "ferry.toml")]
    pub config: PathBuf,
}

/// Load the configuration, or print every problem and fail.
pub fn load_config(path: &Path) -> anyhow::Result<Config> {
    Config::load(path).map_err(|e| anyhow::anyhow!("invalid configuration:\n{e}"))
}

/// For commands a running host answers (`job`, `plugin list --config`):
/// the configuration and its data directory — or, when the file on disk no
/// longer loads but a host is running on the data directory it names (the
/// host refused the file on reload and keeps the configuration in force),
/// `None` and that data directory, the file's problems printed as a warning.
pub fn load_for_host(path: &Path) -> anyhow::Result<(Option<Config>, PathBuf)> {
    let err = match Config::load(path) {
        Ok(c) => {
            let dir = c.data_dir.clone();
            return Ok((Some(c), dir));
        }
        Err(e) => e,
    };
    let data_dir = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.parse::<toml::Table>().ok())
        .map(|t| match t.get("data_dir") {
            Some(toml::Value::String(d)) => PathBuf::from(d),
            _ => PathBuf::from("data"),
        })
        .map(|d| path.parent().unwrap_or(Path::new(".")).join(d));
    match data_dir {
        Some(dir)
            if dir.join("ferry.redb").is_file()
                && matches!(
                    RedbQueue::open(&dir),
                    Err(crate::queue::QueueError::InUse { .. })
                ) =>
        {
            eprintln!(
                "warning: {} does not load as it is now, so a running host keeps the \
                 configuration it has in force; showing the running host's state. The file's \
                 problems:\n{err}",
                path.display()
            );
            Ok((None, dir))
        }
        _ => Err(anyhow::anyhow!("invalid configuration:\n{err}")),
    }
}

/// The runtime for a configuration: compile cache under the data directory.
pub fn runtime_for(config: &Config) -> anyhow::Result<Runtime> {
    Runtime::new(RuntimeOptions {
        cache_dir: Some(config.data_dir.join("cache")),
        max_memory: config.max_memory(),
        ..RuntimeOptions::default()
    })
}

fn load_plugins(runtime: &Runtime, config: &Config) -> anyhow::Result<PluginSet> {
    PluginSet::load(runtime, config).map_err(|errors| {
        let list: Vec<String> = errors.iter().map(|e| format!("  {e}")).collect();
        anyhow::anyhow!("plugins could not be loaded:\n{}", list.join("\n"))
    })
}

/// `ferry check`: configuration and every referenced plugin, without running.
pub fn check(args: CheckArgs) -> anyhow::Result<ExitCode> {
    let config = load_config(&args.config)?;
    let runtime = runtime_for(&config)?;
    let plugins = load_plugins(&runtime, &config)?;
    println!("configuration {} is valid", args.config.display());
    for p in plugins.iter() {
        println!(
            "  {:<8} {:<28} sha256:{}",
            p.world().to_string(),
            p.name(),
            p.short_hash()
        );
    }
    println!(
        "  {} port(s), {} job(s); data directory {}",
        config.ports.len(),
        config.jobs.len(),
        config.data_dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// `ferry run`.
pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let config = Arc::new(load_config(&args.config)?);
    let manager = config
        .queue
        .open_for_host(&config.data_dir)
        .context("cannot open the gateway queue")?;
    let (lease, recovered) = manager.recover(&config.queue.owner())?;
    tracing::info!(host = %lease.owner(), lease = lease.epoch(), "gateway queue open");
    if recovered.total() > 0 {
        tracing::warn!(
            in_process = recovered.in_process,
            in_transport_process = recovered.in_transport_process,
            "messages left in flight by the previous run are Ready again"
        );
    }
    let queue: Arc<dyn GatewayQueue> = manager.clone();
    // The lease is kept from now on: loading the plugins may take longer
    // than a lease, and other hosts would take it meanwhile.
    let keeper = LeaseKeeper::new(queue.clone(), lease);
    heartbeat(keeper.clone(), config.queue.lease / 3);
    let pruned: Arc<dyn crate::queue::QueueManager> = manager.clone();
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let store: Arc<dyn StateStore> = Arc::new(QueueStore(queue.clone(), config.queue.job_scope()));
    let jobs: Vec<_> = config.jobs.values().cloned().collect();
    let mut scheduler =
        Scheduler::new(jobs, clock.clone(), store).context("cannot load the batch jobs' state")?;
    // The control API (the CLI's and the console's way in): answered from
    // now on; job actions are applied once the scheduler runs, after the
    // plugins are loaded.
    let console = crate::control::start(
        &config.console,
        Local {
            queue: manager,
            jobs: scheduler.jobs().to_vec(),
            data_dir: config.data_dir.clone(),
            job_scope: config.queue.job_scope(),
            scheduler: Some(ops::Scheduler {
                controls: scheduler.controls(),
                clock,
            }),
            ports: ops::PortInfo::of(&config),
        },
    )?;
    // Requests not applied yet are answered first, so the console's
    // threads are free when it stops.
    let finish = |console: Option<crate::control::ControlServer>, controls: Controls| {
        controls.abandon();
        drop(console);
    };

    let runtime = runtime_for(&config)?;
    let plugins = Arc::new(load_plugins(&runtime, &config)?);
    // With the console on, the services' queue is counted for /metrics.
    let queue: Arc<dyn GatewayQueue> = if console.is_some() {
        Arc::new(crate::control::metrics::MeteredQueue::new(queue))
    } else {
        queue
    };
    let gw = Arc::new(Gateway::with_keeper(
        config.clone(),
        queue,
        runtime,
        plugins,
        keeper,
    ));

    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(sig, stop.clone()).context("cannot install signal handler")?;
    }
    let stopped = || stop.load(Ordering::Relaxed);
    let mut sandboxes = Sandboxes::new();
    let mut runner = GatewayRunner {
        gw: &gw,
        sandboxes: &mut sandboxes,
        stop: &stopped,
    };
    if args.once {
        let reports = scheduler.run_once(&mut runner, &stopped);
        finish(console, scheduler.controls());
        let reports = reports.context("cannot record the batch jobs' state")?;
        let ok = reports.iter().all(|r| r.ended());
        return Ok(if ok {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    // Retention: old log records pruned in the background, in small steps.
    let _pruner = crate::queue::retention::Pruner::start(
        pruned,
        config.retention.policy,
        config.retention.every,
    )
    .context("cannot start the retention thread")?;
    // Hot loading: plugin files and the configuration (on change or SIGHUP).
    let hangup = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGHUP, hangup.clone())
        .context("cannot install the SIGHUP handler")?;
    let _reloader = crate::reload::start(gw.clone(), args.config.clone(), hangup);
    // Event-driven jobs: new input on their inbound folders starts them.
    let _input = crate::input::start(gw.clone(), scheduler.jobs().to_vec(), scheduler.signals());
    tracing::info!(config = %args.config.display(), ports = config.ports.len(), "ferry is running; Ctrl-C to stop");
    scheduler.run_forever(&mut runner, &stopped);
    finish(console, scheduler.controls());
    tracing::info!("stopped cleanly");
    Ok(ExitCode::SUCCESS)
}

/// Renews the host's lease every `every` (a third of the lease), and with
/// it, on a shared queue, hands the work of hosts whose lease expired to
/// the others. A queue that does not answer is reported, and tried again
/// at the next beat.
fn heartbeat(keeper: Arc<LeaseKeeper>, every: std::time::Duration) {
    let spawned = std::thread::Builder::new()
        .name("ferry-heartbeat".into())
        .spawn(move || {
            let mut failing = false;
            loop {
                std::thread::sleep(every);
                match keeper.heartbeat() {
                    Ok(_) if failing => {
                        tracing::info!("the gateway queue answers again; lease renewed");
                        failing = false;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::error!("cannot renew this host's lease: {e}");
                        failing = true;
                    }
                }
            }
        });
    if let Err(e) = spawned {
        tracing::error!("cannot start the lease heartbeat: {e}");
    }
}
