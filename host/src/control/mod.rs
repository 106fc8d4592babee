//! The control plane of a running host: the HTTP API (`api.rs`) that the
//! CLI uses, the web console (`console/`), who may use them (`auth.rs`),
//! the operations behind both (`ops.rs`, shared with the CLI on a stopped
//! host), the CLI's client (`client.rs`) and the metrics (`metrics.rs`).
//!
//! `ferry run` serves it on `[console] listen` (default
//! [`crate::config::DEFAULT_LISTEN`], loopback only; `listen = ""` turns it
//! off) from one thread with a small tokio runtime; queue work runs on
//! tokio's blocking threads, so a slow search never holds the listener.
//! The host writes where it listens to `DATA_DIR/console/host.json`, which
//! the CLI reads together with a token file (see [`auth`]); an idle
//! console costs nothing (no timer, no polling).

pub mod api;
pub mod auth;
pub mod client;
pub mod console;
pub mod metrics;
pub mod ops;

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::Context as _;
use serde::{Deserialize, Serialize};

use crate::config::ConsoleConfig;
use auth::Tokens;
use ops::Local;

/// The file, in the console folder, that says where a running host listens.
pub const HOST_FILE: &str = "host.json";

/// What `DATA_DIR/console/host.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFile {
    /// The base URL (`http://127.0.0.1:7480`).
    pub url: String,
    /// The host's process id.
    pub pid: u32,
}

impl HostFile {
    /// The path of a data directory's host file.
    pub fn path(data_dir: &Path) -> PathBuf {
        data_dir.join(auth::FOLDER).join(HOST_FILE)
    }

    /// Reads a data directory's host file (None when there is none).
    pub fn read(data_dir: &Path) -> anyhow::Result<Option<HostFile>> {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).with_context(|| {
                format!("{} is not a Ferry host file", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
        }
    }
}

/// What the API's handlers share.
#[derive(Clone)]
pub struct ServerState {
    /// The operations, on the host's queue.
    pub ops: Arc<Local>,
    /// The accepted tokens.
    pub tokens: Arc<Tokens>,
    /// The metrics recorder's handle (None: metrics are off).
    pub metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// The queue gauges, set at each scrape.
    pub gauges: Arc<metrics::Gauges>,
    /// The console overview's last look at the finished-message counter
    /// (when, how many): its messages per second are since then.
    pub rate: Arc<std::sync::Mutex<(std::time::Instant, u64)>>,
}

/// The running control server; dropping it stops it (in-flight requests
/// finish) and removes the host file.
pub struct ControlServer {
    addr: SocketAddr,
    host_file: PathBuf,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.host_file);
    }
}

/// Binds the configured address, or — when it is the default and taken
/// (another host on this machine) — any free port on the same interface.
fn bind(config: &ConsoleConfig, addr: SocketAddr) -> anyhow::Result<TcpListener> {
    match TcpListener::bind(addr) {
        Ok(l) => Ok(l),
        Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && !config.explicit => {
            let any = SocketAddr::new(addr.ip(), 0);
            let l = TcpListener::bind(any)
                .with_context(|| format!("cannot listen on {any} for the console"))?;
            tracing::warn!(
                "{addr} is in use (another Ferry host?); the console listens on {} instead. \
                 Name an address in [console] listen to have a fixed one",
                l.local_addr().map_or(any, |a| a)
            );
            Ok(l)
        }
        Err(e) => Err(e).with_context(|| {
            format!(
                "cannot listen on {addr} for the console ([console] listen); name another \
                 address, \"127.0.0.1:0\" for any free port, or \"\" to turn the console off"
            )
        }),
    }
}

/// Starts serving the control API for `ops` as `config` says; `None` when
/// the console is off (the host file is removed then, so no CLI reaches an
/// older host's address).
pub fn start(config: &ConsoleConfig, ops: Local) -> anyhow::Result<Option<ControlServer>> {
    let data_dir = ops.data_dir.clone();
    let host_file = HostFile::path(&data_dir);
    let Some(addr) = config.listen else {
        let _ = std::fs::remove_file(&host_file);
        tracing::info!("the console is off ([console] listen = \"\")");
        return Ok(None);
    };
    let tokens = Tokens::load(&data_dir, config).with_context(|| {
        format!(
            "cannot write the console's tokens in {}",
            data_dir.join(auth::FOLDER).display()
        )
    })?;
    let listener = bind(config, addr)?;
    let addr = listener.local_addr()?;
    if !addr.ip().is_loopback() {
        tracing::warn!(
            %addr,
            "the console listens beyond this machine without TLS: tokens and messages cross \
             the network in clear text; put it behind a TLS proxy"
        );
    }
    listener.set_nonblocking(true)?;
    let handle = metrics::install();
    let state = ServerState {
        ops: Arc::new(ops),
        tokens: Arc::new(tokens),
        metrics: handle.clone(),
        gauges: Arc::new(metrics::Gauges::default()),
        rate: Arc::new(std::sync::Mutex::new((
            std::time::Instant::now(),
            metrics::finished_total(),
        ))),
    };
    let app = api::routes().merge(console::routes()).with_state(state);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .max_blocking_threads(4)
        .thread_name("ferry-console-work")
        .build()
        .context("cannot start the console's runtime")?;
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name("ferry-console".into())
        .spawn(move || {
            runtime.block_on(async move {
                // Histogram samples are folded in at each scrape; this
                // bounds what they hold when nobody scrapes.
                if let Some(h) = handle {
                    tokio::spawn(async move {
                        let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
                        loop {
                            tick.tick().await;
                            h.run_upkeep();
                        }
                    });
                }
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!("the console cannot listen: {e}");
                        return;
                    }
                };
                let serve = axum::serve(listener, app).with_graceful_shutdown(async {
                    let _ = rx.await;
                });
                if let Err(e) = serve.await {
                    tracing::error!("the console stopped: {e}");
                }
            });
        })
        .context("cannot start the console's thread")?;
    let server = ControlServer {
        addr,
        host_file: host_file.clone(),
        shutdown: Some(tx),
        thread: Some(thread),
    };
    let info = HostFile {
        url: server.url(),
        pid: std::process::id(),
    };
    let tmp = host_file.with_file_name(format!(".{HOST_FILE}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(&info)?)
        .and_then(|()| std::fs::rename(&tmp, &host_file))
        .with_context(|| format!("cannot write {}", host_file.display()))?;
    tracing::info!(url = %server.url(), "the console and control API are listening");
    Ok(Some(server))
}
