//! Support for Ferry's end-to-end tests.
//!
//! `build.rs` builds the plugins workspace (`plugins/`) for `wasm32-wasip2`
//! and copies each component to `<root>/target/plugins/<crate-name>.wasm`
//! (`file-adapter.wasm`, `value-map.wasm`, `sales-order-service.wasm`,
//! `test-hostile.wasm`, `test-wrong-world.wasm`, `test-probe.wasm`).
//! These functions find them.

pub mod api;
pub mod running;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// The folder holding the built plugin components
/// (`<root>/target/plugins`, as set by `build.rs`).
pub fn plugins_dir() -> PathBuf {
    PathBuf::from(env!("FERRY_PLUGINS_DIR"))
}

/// A plugin built against `ferry:plugin@0.1.0`, kept as a fixture in
/// `tests/fixtures/plugins-0.1/<name>.wasm` (see the README there).
///
/// # Panics
///
/// When there is no such fixture.
pub fn plugin_0_1(name: &str) -> PathBuf {
    fixture("plugins-0.1", name)
}

/// A plugin built against `ferry:plugin@0.2.0`, kept as a fixture in
/// `tests/fixtures/plugins-0.2.0/<name>.wasm` (see the README there).
///
/// # Panics
///
/// When there is no such fixture.
pub fn plugin_0_2_0(name: &str) -> PathBuf {
    fixture("plugins-0.2.0", name)
}

/// `root/plugins`, made and holding `names` copied from `fixture(name)`
/// (e.g. [`plugin_0_1`]), each as `<name>.wasm`: a plugin folder of
/// fixtures for a config's `plugin_dir = "plugins"`.
///
/// # Panics
///
/// When a fixture is missing or cannot be copied.
pub fn fixture_plugins(root: &Path, names: &[&str], fixture: fn(&str) -> PathBuf) -> PathBuf {
    let plugins = root.join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for name in names {
        std::fs::copy(fixture(name), plugins.join(format!("{name}.wasm"))).unwrap();
    }
    plugins
}

/// An AIF envelope of a sales order for the SalesOrderService `create`
/// action: MessageId `{00000000-0000-4000-8000-<n, 12 digits>}`, customer
/// `C<n>`, purchase order `PO-<n>`, one line of item `item`.
pub fn order_envelope(n: u32, item: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
         <Envelope xmlns=\"http://schemas.microsoft.com/dynamics/2011/01/documents/Message\">\
         <Header><MessageId>{{00000000-0000-4000-8000-{n:012}}}</MessageId>\
         <Company>ceu</Company><Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action></Header>\
         <Body><MessageParts><SalesOrder xmlns=\"http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder\">\
         <SalesTable class=\"entity\"><CustAccount>C{n}</CustAccount>\
         <PurchOrderFormNum>PO-{n}</PurchOrderFormNum>\
         <SalesLine class=\"entity\"><ItemId>{item}</ItemId><SalesQty>1</SalesQty></SalesLine>\
         </SalesTable></SalesOrder></MessageParts></Body></Envelope>"
    )
}

fn fixture(folder: &str, name: &str) -> PathBuf {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(folder)
        .join(format!("{name}.wasm"));
    assert!(path.is_file(), "no fixture {}", path.display());
    path
}

/// The component of the plugin crate `name` (e.g. `"file-adapter"`, with or
/// without `.wasm`): `<plugins_dir>/<name>.wasm`.
///
/// # Panics
///
/// When the file is not there, with a message saying how to build it.
pub fn plugin(name: &str) -> PathBuf {
    let file = if name.ends_with(".wasm") {
        name.to_string()
    } else {
        format!("{name}.wasm")
    };
    let path = plugins_dir().join(&file);
    if !path.is_file() {
        let available: Vec<String> = std::fs::read_dir(plugins_dir())
            .map(|entries| {
                let mut v: Vec<String> = entries
                    .flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.ends_with(".wasm"))
                    .collect();
                v.sort();
                v
            })
            .unwrap_or_default();
        panic!(
            "plugin component {} is missing (available: {}). It is built by tests/build.rs from the \
             crate `{}` in plugins/; run `scripts/build-plugins` (or `touch tests/build.rs && cargo build -p ferry-tests`)",
            path.display(),
            if available.is_empty() {
                "none".to_string()
            } else {
                available.join(", ")
            },
            file.trim_end_matches(".wasm"),
        );
    }
    path
}

/// The `ferry` binary of this workspace (dev profile), built on first use
/// with `cargo build --workspace --bins --tests` so end-to-end tests always
/// run the current code. That invocation resolves dependency features as
/// `cargo test --workspace` does (dev-dependencies on), so the binary links
/// the dependencies the test build already compiled instead of compiling
/// wasmtime a second time with other features.
///
/// # Panics
///
/// When the build fails.
pub fn ferry_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(root)
            .args(["build", "--quiet", "--workspace", "--bins", "--tests"])
            .status()
            .expect("cannot run cargo to build the ferry binary");
        assert!(status.success(), "building the ferry binary failed");
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join("target"));
        let bin = target.join("debug").join("ferry");
        assert!(bin.is_file(), "{} was not built", bin.display());
        bin
    })
    .clone()
}

/// Run the ferry binary with `args`, capturing its output.
pub fn ferry(args: &[&str]) -> Output {
    Command::new(ferry_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .output()
        .expect("cannot run the ferry binary")
}

/// What one run of the ferry binary gave: exit code and output as text.
pub struct Run {
    /// The exit code (`None`: killed by a signal).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together.
    pub fn both(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Run the ferry binary with `args`.
///
/// # Panics
///
/// When it panicked or was killed by a signal, with its output.
pub fn run(args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = ferry(args);
    let r = Run {
        code: status.code(),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr).into_owned(),
    };
    assert!(
        !r.both().contains("panicked"),
        "ferry {args:?} panicked:\n{r}"
    );
    assert!(
        r.code.is_some(),
        "ferry {args:?} was killed by a signal:\n{r}"
    );
    r
}

/// Run the ferry binary with `args`; its stdout.
///
/// # Panics
///
/// When it fails, with its stderr.
pub fn ferry_stdout(args: &[&str]) -> String {
    let out = ferry(args);
    assert!(
        out.status.success(),
        "ferry {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("ferry prints UTF-8")
}

/// The entry of `ferry exceptions list` output that contains `needle`.
///
/// # Panics
///
/// When no entry does, with the whole list.
pub fn exception_with(exceptions: &str, needle: &str) -> String {
    exceptions
        .split("\n#")
        .find(|e| e.contains(needle))
        .unwrap_or_else(|| panic!("no exception with {needle:?} in:\n{exceptions}"))
        .to_string()
}

/// An AIF sales order (`SalesOrderService/create`) with `lines` lines,
/// every other item `EXT-1` (the benchmarks' and cost probes' document).
pub fn sales_order(lines: usize) -> String {
    let mut body = String::new();
    for i in 0..lines {
        let item = if i % 2 == 0 { "EXT-1" } else { "EXT-2" };
        body.push_str(&format!(
            "          <SalesLine class=\"entity\">\n            <ItemId>{item}</ItemId>\n            \
             <SalesQty>{}</SalesQty>\n            <SalesUnit>ea</SalesUnit>\n          </SalesLine>\n",
            i + 1
        ));
    }
    format!(
        r#"<?xml version="1.0" encoding="utf-8"?>
<Envelope xmlns="http://schemas.microsoft.com/dynamics/2011/01/documents/Message">
  <Header>
    <MessageId>{{5603D03A-4380-4A5A-9A74-5E8C0E3F0001}}</MessageId>
    <Company>ceu</Company>
    <Action>http://schemas.microsoft.com/dynamics/2008/01/services/SalesOrderService/create</Action>
  </Header>
  <Body>
    <MessageParts>
      <SalesOrder xmlns="http://schemas.microsoft.com/dynamics/2008/01/documents/SalesOrder">
        <SalesTable class="entity">
          <CustAccount>1101</CustAccount>
          <PurchOrderFormNum>PO-2026-0001</PurchOrderFormNum>
          <ReceiptDateRequested>2026-12-01</ReceiptDateRequested>
{body}        </SalesTable>
      </SalesOrder>
    </MessageParts>
  </Body>
</Envelope>
"#
    )
}

/// When a record of a host's JSON log was written (its `timestamp`,
/// "2026-11-22T01:10:00.123456Z"), in microseconds within the day.
pub fn record_micros(record: &serde_json::Value) -> u64 {
    let ts = record["timestamp"].as_str().unwrap();
    let time = &ts[11..ts.len() - 1];
    let (hms, frac) = time.split_once('.').unwrap_or((time, "0"));
    let mut parts = hms.split(':').map(|p| p.parse::<u64>().unwrap());
    let secs = parts.next().unwrap() * 3600 + parts.next().unwrap() * 60 + parts.next().unwrap();
    let frac_us: u64 = format!("{frac:0<6}")[..6].parse().unwrap();
    secs * 1_000_000 + frac_us
}

/// The value of `key` among the `key=value` fields a plugin logged (the
/// record's `fields`, as the probe plugin writes them).
pub fn record_field(record: &serde_json::Value, key: &str) -> Option<String> {
    record["fields"]["fields"]
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .find_map(|kv| kv.strip_prefix(key)?.strip_prefix('='))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_plugin_is_built() {
        for name in [
            "file-adapter",
            "value-map",
            "sales-order-service",
            "test-hostile",
            "test-wrong-world",
            "test-probe",
        ] {
            let path = plugin(name);
            let bytes = std::fs::read(&path).unwrap();
            // A component, not a core module: `\0asm`, then version 0x0d and layer 1.
            assert_eq!(&bytes[..4], b"\0asm", "{}", path.display());
            assert_eq!(
                &bytes[4..8],
                &[0x0d, 0x00, 0x01, 0x00],
                "{} is not a component",
                path.display()
            );
        }
    }

    #[test]
    #[should_panic(expected = "scripts/build-plugins")]
    fn a_missing_plugin_says_how_to_build_it() {
        plugin("no-such-plugin");
    }
}
