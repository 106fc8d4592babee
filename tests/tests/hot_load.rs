//! Hot loading, through the real binary (`ferry run`, not `--once`).
//!
//! The `test-stamp` rule stamps its version (two digits of a marker in its
//! data) into each document; new versions are made by patching those bytes,
//! so they are real, different components. The host's status file
//! (`DATA_DIR/plugins.json`) says which version is live; the tests wait on
//! it, never on time.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ferry_tests::{ferry, ferry_bin, plugin};
use sha2::{Digest, Sha256};

const ACTION: &str = "urn:test/ProbeService/run";
const MARKER: &[u8] = b"ferry-test-stamp-version:";

fn sha(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The test-stamp component carrying version `v`.
fn stamp_version(v: u32) -> Vec<u8> {
    let mut bytes = std::fs::read(plugin("test-stamp")).unwrap();
    let at: Vec<usize> = bytes
        .windows(MARKER.len())
        .enumerate()
        .filter(|(_, w)| *w == MARKER)
        .map(|(i, _)| i + MARKER.len())
        .collect();
    assert_eq!(at.len(), 1, "the marker must occur once in test-stamp.wasm");
    bytes[at[0]..at[0] + 2].copy_from_slice(format!("{v:02}").as_bytes());
    bytes
}

struct Host {
    _dir: tempfile::TempDir,
    root: PathBuf,
    child: Child,
    log: PathBuf,
}

impl Host {
    /// A host with port `in` (pipeline: stamp; service: probe), started.
    fn start(parallel: bool, workers: usize) -> Host {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().to_path_buf();
        let plugins = root.join("plugins");
        std::fs::create_dir_all(&plugins).unwrap();
        for name in ["file-adapter", "test-probe"] {
            std::fs::copy(plugin(name), plugins.join(format!("{name}.wasm"))).unwrap();
        }
        std::fs::write(plugins.join("test-stamp.wasm"), stamp_version(0)).unwrap();
        std::fs::create_dir_all(root.join("inbox")).unwrap();
        std::fs::write(
            root.join("ferry.toml"),
            format!(
                r#"
data_dir = "data"
plugin_dir = "plugins"
workers = {workers}

[adapters.file]
component = "file-adapter"

[rules.stamp]
component = "test-stamp"

[services.probe]
component = "test-probe"

[ports.in]
direction = "inbound"
adapter = "file"
address = "inbox"
response_address = "outbox"
pipeline = ["stamp"]
services = [{{ action = "*", service = "probe" }}]
logging = "off"
parallel = {parallel}
# Every stamp record is evidence here: no rate limit on the plugins' log.
log_rate = 1000000

[jobs.aif]
every = "100ms"
"#
            ),
        )
        .unwrap();
        let log = root.join("ferry.log");
        let child = Command::new(ferry_bin())
            .args([
                "run",
                "--log-format",
                "json",
                "--log-level",
                // Scheduler at debug: every task's end is logged, so tests can
                // count occurrences.
                "info,ferry::plugin=info,ferry::scheduler=debug",
                "--config",
            ])
            .arg(root.join("ferry.toml"))
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let host = Host {
            _dir: dir,
            root,
            child,
            log,
        };
        host.wait_for("the host to start", || host.status().is_some());
        host
    }

    fn wait_for(&self, what: &str, mut done: impl FnMut() -> bool) {
        let until = Instant::now() + Duration::from_secs(120);
        while !done() {
            assert!(
                Instant::now() < until,
                "gave up waiting for {what}; log:\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn status(&self) -> Option<serde_json::Value> {
        let text = std::fs::read_to_string(self.root.join("data/plugins.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// The live hash of plugin `name` (None while missing).
    fn live_hash(&self, name: &str) -> Option<String> {
        self.status()?["plugins"][name]["hash"]
            .as_str()
            .map(str::to_string)
    }

    fn refusal_hash(&self, name: &str) -> Option<String> {
        self.status()?["plugins"][name]["last_refusal"]["hash"]
            .as_str()
            .map(str::to_string)
    }

    /// Install `bytes` as the plugin `name`: written in place, or (when
    /// `rename`) written under a dot name and renamed into place.
    fn install(&self, name: &str, bytes: &[u8], rename: bool) {
        let target = self.root.join(format!("plugins/{name}.wasm"));
        if rename {
            let tmp = self.root.join(format!("plugins/.{name}.wasm.tmp"));
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &target).unwrap();
        } else {
            std::fs::write(&target, bytes).unwrap();
        }
    }

    /// Install a new version and wait until it is live; returns how long
    /// that took (file written → live).
    fn swap(&self, bytes: &[u8], rename: bool) -> Duration {
        let t = Instant::now();
        self.install("test-stamp", bytes, rename);
        let want = sha(bytes);
        self.wait_for("the new version to go live", || {
            self.live_hash("test-stamp").as_deref() == Some(want.as_str())
        });
        t.elapsed()
    }

    fn write(&self, file: &str) {
        let xml = format!(
            "<Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
             <Header><MessageId>{{{}}}</MessageId><Action>{ACTION}</Action></Header>\
             <Body><MessageParts><Probe><File>{file}</File></Probe></MessageParts></Body></Envelope>",
            uuid_for(file)
        );
        let tmp = self.root.join(format!("inbox/.{file}"));
        std::fs::write(&tmp, xml).unwrap();
        std::fs::rename(&tmp, self.root.join("inbox").join(file)).unwrap();
    }

    /// The responses so far: file name in the request → stamp versions.
    fn responses(&self) -> BTreeMap<String, Vec<u32>> {
        let mut out: BTreeMap<String, Vec<u32>> = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir(self.root.join("outbox")) else {
            return out;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            if path.file_name().unwrap().to_string_lossy().starts_with('.') {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            // The probe echoes the request body, escaped.
            let file = between(&text, "&lt;File&gt;", "&lt;/File&gt;")
                .unwrap_or_else(|| panic!("no <File> in {text}"))
                .to_string();
            let stamps: Vec<u32> = text
                .split("&lt;Stamp&gt;")
                .skip(1)
                .map(|s| s[..2].parse().unwrap())
                .collect();
            assert!(
                out.insert(file.clone(), stamps).is_none(),
                "{file} answered twice"
            );
        }
        out
    }

    /// (thread, version, file) of each stamp, in log order.
    fn stamps_logged(&self) -> Vec<(String, u32, String)> {
        let mut out = Vec::new();
        for line in self.log_text().lines() {
            let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
                continue;
            };
            let fields = v["fields"]["fields"].as_str().unwrap_or_default();
            if !fields.contains("event=stamp") {
                continue;
            }
            let get = |k: &str| {
                fields
                    .split(' ')
                    .find_map(|kv| kv.strip_prefix(&format!("{k}=")))
                    .unwrap_or_default()
                    .to_string()
            };
            out.push((
                v["threadName"].as_str().unwrap_or_default().to_string(),
                get("version").parse().unwrap(),
                get("file"),
            ));
        }
        out
    }

    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let status = self.child.wait().unwrap();
        assert!(status.success(), "ferry run ended with {status}");
        self.log_text()
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let a = text.find(start)? + start.len();
    let b = text[a..].find(end)? + a;
    Some(&text[a..b])
}

fn uuid_for(file: &str) -> String {
    let h = sha(file.as_bytes());
    format!(
        "{}-{}-4{}-8{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

fn hot_swap_under_load(parallel: bool, workers: usize) {
    const WAVES: u32 = 10;
    const PER_WAVE: u32 = 500;
    let host = Host::start(parallel, workers);
    let mut latencies = Vec::new();
    // Wave k is written after version k went live, while earlier waves may
    // still be in flight; version k+1 is installed right after it.
    for wave in 0..WAVES {
        for i in 0..PER_WAVE {
            host.write(&format!("w{wave:02}_{i:04}.xml"));
        }
        if wave + 1 < WAVES {
            latencies.push(host.swap(&stamp_version(wave + 1), wave % 2 == 0));
        }
    }
    let total = (WAVES * PER_WAVE) as usize;
    host.wait_for("every message to be answered", || {
        host.responses().len() == total
    });
    let responses = host.responses();
    let stamps = host.stamps_logged();
    host.stop();

    // Nothing lost, nothing twice (responses() checks), one stamp each, and
    // a wave never ran on a version older than the one live when it was
    // written.
    for (file, versions) in &responses {
        assert_eq!(versions.len(), 1, "{file}: stamps {versions:?}");
        let wave: u32 = file[1..3].parse().unwrap();
        assert!(
            versions[0] >= wave,
            "{file} ran on version {} though version {wave} was live before it was written",
            versions[0]
        );
    }
    let used: BTreeSet<u32> = responses.values().map(|v| v[0]).collect();
    assert!(used.contains(&0) && used.contains(&(WAVES - 1)), "{used:?}");
    // Per worker, versions never go back.
    let mut last: BTreeMap<String, u32> = BTreeMap::new();
    for (thread, version, file) in &stamps {
        let prev = last.insert(thread.clone(), *version).unwrap_or(0);
        assert!(
            *version >= prev,
            "{thread} ran {file} on version {version} after version {prev}"
        );
    }
    assert_eq!(stamps.len(), total, "each message stamped exactly once");
    latencies.sort();
    eprintln!(
        "swap latency (file written -> live), {} swaps: min {:?}, median {:?}, max {:?}",
        latencies.len(),
        latencies[0],
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

#[test]
fn hot_swap_under_load_on_a_parallel_port() {
    hot_swap_under_load(true, 4);
}

#[test]
fn hot_swap_under_load_on_a_sequential_port() {
    hot_swap_under_load(false, 1);
}

#[test]
fn broken_versions_are_refused_and_the_old_one_keeps_running() {
    let host = Host::start(true, 2);
    let v0 = sha(&stamp_version(0));
    let v1 = stamp_version(1);
    let broken: Vec<(&str, Vec<u8>, &str)> = vec![
        ("not a component", b"this is not WebAssembly".to_vec(), ""),
        (
            "wrong world",
            std::fs::read(plugin("test-wrong-world")).unwrap(),
            "world",
        ),
        (
            "cannot load (needs 128 MiB of memory, the port allows 64)",
            std::fs::read(plugin("test-heavy")).unwrap(),
            "memory",
        ),
        ("half-written file", v1[..v1.len() / 2].to_vec(), ""),
    ];
    for (n, (what, bytes, says)) in broken.iter().enumerate() {
        host.install("test-stamp", bytes, true);
        let want = sha(bytes);
        host.wait_for(what, || {
            host.refusal_hash("test-stamp").as_deref() == Some(want.as_str())
        });
        assert_eq!(
            host.live_hash("test-stamp").as_deref(),
            Some(v0.as_str()),
            "{what}"
        );
        let reason = host.status().unwrap()["plugins"]["test-stamp"]["last_refusal"]["reason"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reason.contains(says), "{what}: {reason}");
        // Messages still run on version 0.
        let file = format!("m{n}.xml");
        host.write(&file);
        host.wait_for("the message to be answered", || {
            host.responses().contains_key(&file)
        });
        assert_eq!(host.responses()[&file], vec![0], "{what}");
    }
    // `ferry plugin list --config` shows the live version and the refusal.
    let out = ferry(&[
        "plugin",
        "list",
        "--config",
        host.root.join("ferry.toml").to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains(&v0[..12]), "{text}");
    assert!(text.contains("refused"), "{text}");
    // A good version after all that goes live.
    host.swap(&v1, false);
    host.write("last.xml");
    host.wait_for("the last message", || {
        host.responses().contains_key("last.xml")
    });
    assert_eq!(host.responses()["last.xml"], vec![1]);
    let log = host.stop();
    assert!(log.contains("refused"), "{log}");
}

#[test]
fn removing_a_plugin_pauses_its_port_and_restoring_it_resumes() {
    let host = Host::start(true, 2);
    host.write("before.xml");
    host.wait_for("the first message", || {
        host.responses().contains_key("before.xml")
    });
    std::fs::remove_file(host.root.join("plugins/test-stamp.wasm")).unwrap();
    host.wait_for("the port to be paused", || {
        host.status().is_some_and(|s| {
            s["paused"].as_array().is_some_and(|p| {
                p.iter()
                    .any(|r| r.as_str().unwrap_or("").contains("test-stamp"))
            })
        })
    });
    assert_eq!(host.live_hash("test-stamp"), None);
    for i in 0..20 {
        host.write(&format!("paused_{i:02}.xml"));
    }
    // Receive goes on (the adapter is there): the files leave the inbox for
    // the queue. Inbound processing waits; let several occurrences pass.
    let inbox_empty = || {
        std::fs::read_dir(host.root.join("inbox"))
            .unwrap()
            .filter(|e| {
                !e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with('.')
            })
            .count()
            == 0
    };
    host.wait_for("the paused port's files to be received", inbox_empty);
    let occurrences = || host.log_text().matches("\"task ended\"").count();
    let seen = occurrences();
    host.wait_for("more occurrences", || occurrences() >= seen + 12);
    assert_eq!(
        host.responses().len(),
        1,
        "a paused port processed messages"
    );
    let log = host.log_text();
    assert!(log.contains("is paused for inbound-processing"), "{log}");
    // Back: the queued messages are processed, on the restored version.
    host.install("test-stamp", &stamp_version(3), true);
    host.wait_for("the queued messages", || host.responses().len() == 21);
    let responses = host.responses();
    for i in 0..20 {
        assert_eq!(responses[&format!("paused_{i:02}.xml")], vec![3]);
    }
    let log = host.stop();
    assert!(!log.contains("\"level\":\"ERROR\""), "{log}");
}

#[test]
fn an_invalid_configuration_is_refused_and_a_valid_one_applies() {
    let host = Host::start(false, 1);
    let cfg = host.root.join("ferry.toml");
    let good = std::fs::read_to_string(&cfg).unwrap();
    // Invalid: the running configuration stays.
    std::fs::write(
        &cfg,
        good.replace("pipeline = [\"stamp\"]", "pipeline = [\"nope\"]"),
    )
    .unwrap();
    host.wait_for("the refusal", || {
        host.status().is_some_and(|s| {
            s["config"]["last_refusal"]["reason"]
                .as_str()
                .unwrap_or("")
                .contains("nope")
        })
    });
    host.write("a.xml");
    host.wait_for("a.xml", || host.responses().contains_key("a.xml"));
    assert_eq!(host.responses()["a.xml"], vec![0]);
    // Valid (no pipeline), sent with SIGHUP as well: applies to the next task.
    let loaded = host.status().unwrap()["config"]["loaded_ms"]
        .as_u64()
        .unwrap();
    std::fs::write(
        &cfg,
        good.replace("pipeline = [\"stamp\"]", "pipeline = []"),
    )
    .unwrap();
    let _ = Command::new("kill")
        .args(["-HUP", &host.child.id().to_string()])
        .status();
    host.wait_for("the reload", || {
        host.status().is_some_and(|s| {
            s["config"]["last_refusal"].is_null()
                && s["config"]["loaded_ms"].as_u64().unwrap() > loaded
        })
    });
    host.write("b.xml");
    host.wait_for("b.xml", || host.responses().contains_key("b.xml"));
    assert_eq!(host.responses()["b.xml"], Vec::<u32>::new());
    let log = host.stop();
    assert!(log.contains("configuration reloaded"), "{log}");
}
