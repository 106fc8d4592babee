//! Hot loading: while `ferry run` runs, a reload thread watches the plugin
//! directory and the configuration file, and puts new versions in force
//! without a restart and without losing a message.
//!
//! - **Plugins.** The directory is watched with `notify` (inotify here; a
//!   polling watcher if that cannot start), and the referenced files are
//!   also checked every [`TICK`] as a fallback. A changed file is loaded
//!   once it has been **stable** (same size and modification time) for
//!   [`SETTLE`], so a half-copied file is not taken; copying to a name
//!   starting with `.` and renaming into place is the safest way to install
//!   and is picked up at once. The new version is compiled here, off the
//!   processing path (through the on-disk compile cache), checked against
//!   the world each of its uses needs, and swapped in atomically
//!   ([`Gateway::replace`]): messages already in flight finish on the
//!   version they started with, messages that start afterwards use the new
//!   one. A version that fails to compile or validate is **refused** and the
//!   old one keeps running. A removed plugin pauses the ports that need it
//!   (their messages stay queued, nothing goes to Error) until it is back.
//! - **Configuration.** On SIGHUP or when the file changes, the file is
//!   loaded and checked with its plugins; an invalid one is refused and the
//!   running configuration stays. Port, adapter, rule and service changes
//!   apply from the next task; `data_dir`, `plugin_dir`, a larger memory
//!   limit than the host started with, and `[jobs]` need a restart.
//! - **Status.** Every change is written to `DATA_DIR/plugins.json`, which
//!   `ferry plugin list --config` shows: each plugin's live version, load
//!   time and last refusal, and the paused ports.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::plugins::{PluginSet, uses};
use crate::runtime::{Plugin, content_hash};
use crate::services::{Gateway, Live, now_ms};

/// How long a changed plugin file must stay unchanged before it is loaded.
pub const SETTLE: Duration = Duration::from_millis(200);
/// How often the referenced files are checked without a watcher event.
pub const TICK: Duration = Duration::from_millis(250);
/// The status file in the data directory.
pub const STATUS_FILE: &str = "plugins.json";

/// The hot-loading status of a running host, as written to
/// `DATA_DIR/plugins.json`.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Status {
    /// The host's process id.
    pub pid: u32,
    /// When this status was written (ms since the Unix epoch).
    pub updated_ms: u64,
    /// The configuration file and when it was last put in force.
    pub config: ConfigStatus,
    /// Every referenced plugin, by name.
    pub plugins: BTreeMap<String, PluginStatus>,
    /// The paused ports, each with its reason.
    pub paused: Vec<String>,
}

/// The configuration's reload status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ConfigStatus {
    /// The file.
    pub file: PathBuf,
    /// When the configuration in force was loaded.
    pub loaded_ms: u64,
    /// The last reload that was refused.
    pub last_refusal: Option<Refusal>,
}

/// One plugin's status.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PluginStatus {
    /// Its world (`adapter`, `rule`, `service`).
    pub world: String,
    /// The live version's sha256 (None while missing).
    pub hash: Option<String>,
    /// When the live version was loaded.
    pub loaded_ms: Option<u64>,
    /// Why it is missing, if it is.
    pub missing: Option<String>,
    /// The last version that was refused.
    pub last_refusal: Option<Refusal>,
}

/// A refused version.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Refusal {
    /// When.
    pub time_ms: u64,
    /// The refused content's sha256, if it could be read.
    pub hash: Option<String>,
    /// Why.
    pub reason: String,
}

impl Status {
    /// Read a data directory's status file (None: no host has written one).
    pub fn read(data_dir: &Path) -> anyhow::Result<Option<Status>> {
        let path = data_dir.join(STATUS_FILE);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(serde_json::from_slice(&bytes).map_err(|e| {
                anyhow::anyhow!("{} is not a Ferry status file: {e}", path.display())
            })?)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(anyhow::anyhow!("cannot read {}: {e}", path.display())),
        }
    }
}

/// The running reload thread; dropping it stops the thread.
pub struct Reloader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Drop for Reloader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Start watching. `hangup` is set by the SIGHUP handler; the thread
/// clears it when it reloads.
pub fn start(gw: Arc<Gateway>, config_file: PathBuf, hangup: Arc<AtomicBool>) -> Reloader {
    let stop = Arc::new(AtomicBool::new(false));
    let mut watch = Watch::new(gw, config_file);
    watch.write_status();
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("ferry-reload".into())
        .spawn(move || watch.run(&flag, &hangup))
        .expect("cannot start the reload thread");
    Reloader {
        stop,
        thread: Some(thread),
    }
}

/// A file's identity for change detection: size and modification time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sig(u64, Option<SystemTime>);

fn sig(path: &Path) -> std::io::Result<Sig> {
    let m = std::fs::metadata(path)?;
    Ok(Sig(m.len(), m.modified().ok()))
}

struct Watch {
    gw: Arc<Gateway>,
    config_file: PathBuf,
    config_sig: Option<Sig>,
    /// The file signature last acted on, per plugin.
    seen: BTreeMap<String, Sig>,
    /// Changed files waiting to be stable: signature and since when.
    settling: BTreeMap<String, (Sig, Instant)>,
    status: Status,
}

impl Watch {
    fn new(gw: Arc<Gateway>, config_file: PathBuf) -> Watch {
        let live = gw.live();
        let mut w = Watch {
            config_sig: sig(&config_file).ok(),
            config_file: config_file.clone(),
            seen: BTreeMap::new(),
            settling: BTreeMap::new(),
            status: Status {
                pid: std::process::id(),
                config: ConfigStatus {
                    file: config_file,
                    loaded_ms: now_ms(),
                    last_refusal: None,
                },
                ..Status::default()
            },
            gw,
        };
        w.adopt(&live);
        w
    }

    /// Take `live` as the state in force: file signatures (of plugins not
    /// watched yet) and status.
    fn adopt(&mut self, live: &Live) {
        for p in live.plugins.iter() {
            if let Ok(s) = sig(&live.config.plugin_path(p.name())) {
                self.seen.entry(p.name().to_string()).or_insert(s);
            }
        }
        let refusals: BTreeMap<String, Option<Refusal>> = std::mem::take(&mut self.status.plugins)
            .into_iter()
            .map(|(n, s)| (n, s.last_refusal))
            .collect();
        for (name, world) in uses(&live.config) {
            let st = self.status.plugins.entry(name.clone()).or_default();
            st.world = world.to_string();
            st.last_refusal = refusals.get(&name).cloned().flatten();
            self.describe(&name, live);
        }
        self.status.paused = live
            .config
            .ports
            .values()
            .filter_map(|p| live.plugins.paused(&live.config, p, None))
            .collect();
    }

    /// Refresh one plugin's live fields in the status.
    fn describe(&mut self, name: &str, live: &Live) {
        let st = self.status.plugins.entry(name.to_string()).or_default();
        match live.plugins.get(name) {
            Some(p) => {
                st.hash = Some(p.hash().to_string());
                st.loaded_ms = Some(system_ms(p.loaded_at()));
                st.missing = None;
            }
            None => {
                st.hash = None;
                st.loaded_ms = None;
                st.missing = live.plugins.missing().get(name).cloned();
            }
        }
    }

    fn run(&mut self, stop: &AtomicBool, hangup: &AtomicBool) {
        let (tx, rx) = crossbeam_channel::bounded::<()>(1);
        let plugin_dir = self.gw.config().plugin_dir.clone();
        let mut watcher =
            crate::watch::FolderWatcher::new("the plugin directory", TICK, move |_, _| {
                let _ = tx.try_send(());
            });
        if !watcher.watch(&plugin_dir) {
            tracing::warn!(
                "checking the plugin directory every {} ms",
                TICK.as_millis()
            );
        }
        while !stop.load(Ordering::Relaxed) {
            // Wake on a watcher event, when a settling file is due, or at the
            // next tick; take every event.
            let wait = self
                .settling
                .values()
                .map(|(_, since)| SETTLE.saturating_sub(since.elapsed()))
                .min()
                .map_or(TICK, |d| d.min(TICK));
            let _ = rx.recv_timeout(wait);
            while rx.try_recv().is_ok() {}
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let changed = sig(&self.config_file).ok();
            if hangup.swap(false, Ordering::Relaxed) || changed != self.config_sig {
                self.config_sig = changed;
                self.reload_config();
            }
            self.scan_plugins();
        }
    }

    /// Check every referenced plugin file.
    fn scan_plugins(&mut self) {
        let live = self.gw.live();
        let mut names: Vec<String> = uses(&live.config).into_iter().map(|(n, _)| n).collect();
        names.dedup();
        for name in names {
            let path = live.config.plugin_path(&name);
            match sig(&path) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    self.settling.remove(&name);
                    self.seen.remove(&name);
                    if live.plugins.get(&name).is_some() {
                        self.removed(&live, &name);
                    }
                }
                Err(e) => {
                    tracing::warn!(plugin = %name, "cannot read {}: {e}", path.display())
                }
                Ok(s) if self.seen.get(&name) == Some(&s) => {}
                Ok(s) => match self.settling.get(&name) {
                    Some((prev, since)) if *prev == s => {
                        if since.elapsed() >= SETTLE {
                            self.settling.remove(&name);
                            self.seen.insert(name.clone(), s);
                            self.changed(&name, &path);
                        }
                    }
                    _ => {
                        self.settling.insert(name, (s, Instant::now()));
                    }
                },
            }
        }
    }

    /// Plugin `name` was removed: pause the ports that need it.
    fn removed(&mut self, live: &Live, name: &str) {
        let reason = format!(
            "was removed from the plugin directory at {}",
            crate::scheduler::format_rfc3339(now_ms())
        );
        let plugins = Arc::new(live.plugins.without(name, reason.clone()));
        let next = Live {
            config: live.config.clone(),
            plugins,
        };
        tracing::warn!(plugin = %name, "plugin {name} {reason}; the ports that need it are paused until it is back");
        self.put(next);
    }

    /// Plugin `name`'s file changed and is stable: load, check, swap or refuse.
    fn changed(&mut self, name: &str, path: &Path) {
        let live = self.gw.live();
        let started = Instant::now();
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(e) => {
                self.refuse(name, None, format!("cannot read {}: {e}", path.display()));
                return;
            }
        };
        let hash = content_hash(&bytes);
        let old = live.plugins.get(name).map(|p| p.hash().to_string());
        if old.as_deref() == Some(hash.as_str()) {
            return; // touched, same content
        }
        match self.load_checked(&live.config, name, path, &bytes) {
            Ok(plugin) => {
                let next = Live {
                    config: live.config.clone(),
                    plugins: Arc::new(live.plugins.with(plugin)),
                };
                tracing::info!(
                    plugin = %name,
                    version = %&hash[..12],
                    previous = old.as_deref().map_or("none (was missing)", |h| &h[..12]),
                    load_ms = started.elapsed().as_millis() as u64,
                    "plugin {name} version {} is live", &hash[..12]
                );
                self.put(next);
            }
            Err(reason) => self.refuse(name, Some(hash), reason),
        }
    }

    /// Compile `bytes` as plugin `name` and check it against every use.
    fn load_checked(
        &self,
        config: &Config,
        name: &str,
        path: &Path,
        bytes: &[u8],
    ) -> Result<Arc<Plugin>, String> {
        let plugin = self
            .gw
            .runtime
            .load_read(path, bytes)
            .map_err(|e| e.to_string())?;
        for (_, world) in uses(config).into_iter().filter(|(n, _)| n == name) {
            plugin.expect(world).map_err(|e| e.to_string())?;
        }
        // It must also instantiate within the limits of every port that
        // needs it (a trap or a memory it cannot have is caught here, not on
        // the first message).
        let mut tried = Vec::new();
        for port in config.ports.values() {
            if !crate::plugins::needs(config, port, name) || tried.contains(&port.limits) {
                continue;
            }
            tried.push(port.limits);
            let setup = crate::runtime::SandboxConfig {
                port: port.name.clone(),
                limits: port.limits,
                ..crate::runtime::SandboxConfig::default()
            };
            // Instantiated only: `init` gets each use's own options on the
            // first call (its failure lands on that call's messages).
            crate::runtime::Sandbox::new(plugin.clone(), Arc::new(setup))
                .try_start()
                .map_err(|f| format!("it cannot start on port {}: {f}", port.name))?;
        }
        Ok(plugin)
    }

    fn refuse(&mut self, name: &str, hash: Option<String>, reason: String) {
        let live = self.gw.live();
        let keeps = match live.plugins.get(name) {
            Some(p) => format!("version {} keeps running", p.short_hash()),
            None => "it stays missing".to_string(),
        };
        tracing::error!(
            plugin = %name,
            version = hash.as_deref().map_or("?", |h| &h[..12]),
            "new version of plugin {name} refused ({keeps}): {reason}"
        );
        self.status
            .plugins
            .entry(name.to_string())
            .or_default()
            .last_refusal = Some(Refusal {
            time_ms: now_ms(),
            hash,
            reason,
        });
        self.write_status();
    }

    /// Reload the configuration file; refuse it if it is invalid.
    fn reload_config(&mut self) {
        let live = self.gw.live();
        let refused = |reason: String| {
            tracing::error!(
                "configuration reload refused; the running configuration stays: {reason}"
            );
            Refusal {
                time_ms: now_ms(),
                hash: None,
                reason,
            }
        };
        let config = match Config::load(&self.config_file) {
            Ok(c) => c,
            Err(e) => {
                self.status.config.last_refusal = Some(refused(e.to_string()));
                self.write_status();
                return;
            }
        };
        let old = &live.config;
        let restart = if config.data_dir != old.data_dir {
            Some("data_dir changed")
        } else if config.plugin_dir != old.plugin_dir {
            Some("plugin_dir changed")
        } else if config.max_memory() > self.gw.runtime.max_memory() {
            Some("a port's memory limit is above the one the host started with")
        } else {
            None
        };
        if let Some(what) = restart {
            self.status.config.last_refusal =
                Some(refused(format!("{what}: that needs a restart")));
            self.write_status();
            return;
        }
        let plugins = match PluginSet::load_reusing(&self.gw.runtime, &config, Some(&live.plugins))
        {
            Ok(p) => p,
            Err(errors) => {
                let list: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
                self.status.config.last_refusal = Some(refused(format!(
                    "its plugins could not be loaded: {}",
                    list.join("; ")
                )));
                self.write_status();
                return;
            }
        };
        if config.jobs != old.jobs {
            tracing::warn!("the [jobs] changes take effect at the next start of the host");
        }
        tracing::info!(config = %self.config_file.display(), ports = config.ports.len(), "configuration reloaded");
        self.status.config.loaded_ms = now_ms();
        self.status.config.last_refusal = None;
        self.put(Live {
            config: Arc::new(config),
            plugins: Arc::new(plugins),
        });
    }

    /// Put `next` in force and record it.
    fn put(&mut self, next: Live) {
        let next = Arc::new(next);
        self.gw.replace(next.clone());
        self.adopt(&next);
        self.write_status();
    }

    /// Write the status file (atomically: temporary file, then rename).
    fn write_status(&mut self) {
        self.status.updated_ms = now_ms();
        let dir = self.gw.config().data_dir.clone();
        let write = || -> std::io::Result<()> {
            let tmp = dir.join(format!(".{STATUS_FILE}.tmp"));
            std::fs::write(&tmp, serde_json::to_vec_pretty(&self.status)?)?;
            std::fs::rename(&tmp, dir.join(STATUS_FILE))
        };
        if let Err(e) = write() {
            tracing::warn!("cannot write the plugin status file: {e}");
        }
    }
}

fn system_ms(t: SystemTime) -> u64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Status {
    /// The status as `ferry plugin list --config` prints it.
    pub fn render(&self) -> String {
        use std::fmt::Write as _;
        let time = |ms: u64| crate::scheduler::format_rfc3339(ms);
        let running = Path::new(&format!("/proc/{}", self.pid)).exists();
        let mut out = String::new();
        let _ = writeln!(
            out,
            "host pid {} ({}); status of {}",
            self.pid,
            if running { "running" } else { "not running" },
            time(self.updated_ms)
        );
        let _ = writeln!(
            out,
            "configuration {} in force since {}",
            self.config.file.display(),
            time(self.config.loaded_ms)
        );
        if let Some(r) = &self.config.last_refusal {
            let _ = writeln!(
                out,
                "  last reload refused at {}: {}",
                time(r.time_ms),
                r.reason
            );
        }
        let _ = writeln!(
            out,
            "{:<24} {:<8} {:<14} {:<26}",
            "PLUGIN", "WORLD", "LIVE VERSION", "LOADED"
        );
        for (name, p) in &self.plugins {
            let (version, loaded) = match (&p.hash, p.loaded_ms) {
                (Some(h), Some(t)) => (h[..12.min(h.len())].to_string(), time(t)),
                _ => ("MISSING".to_string(), p.missing.clone().unwrap_or_default()),
            };
            let _ = writeln!(out, "{name:<24} {:<8} {version:<14} {loaded}", p.world);
            if let Some(r) = &p.last_refusal {
                let _ = writeln!(
                    out,
                    "  last version refused at {} (sha256 {}): {}",
                    time(r.time_ms),
                    r.hash.as_deref().map_or("?", |h| &h[..12.min(h.len())]),
                    r.reason
                );
            }
        }
        for p in &self.paused {
            let _ = writeln!(out, "{p}");
        }
        out
    }
}
