//! Builds the plugins workspace (`plugins/`) for `wasm32-wasip2` and copies
//! each component to `<root>/target/plugins/<crate-name>.wasm`, where the
//! end-to-end tests (and the demo) find them; `FERRY_PLUGINS_DIR` tells the
//! tests where that is.
//!
//! The nested build is `cargo build --release --target wasm32-wasip2
//! --manifest-path <root>/plugins/Cargo.toml --target-dir
//! <root>/target/wasm-plugins`, run with the environment cargo gives build
//! scripts cleaned of what would leak into it (flags and wrappers meant for
//! the outer build). It reruns only when plugins/ (but its target/),
//! plugin-sdk/ (but its target/), xml-index/ (the SDK's XML scanner) or
//! wit/ change.

use std::collections::BTreeSet;
use std::env;
use std::ffi::OsString;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const WASM_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir =
        PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ has a parent: the workspace root")
        .to_path_buf();
    let plugins_manifest = root.join("plugins").join("Cargo.toml");
    let target_dir = root.join("target").join("wasm-plugins");
    let plugins_dir = root.join("target").join("plugins");

    // The plugins, the SDK they build on, and what the SDK builds on.
    for dir in ["plugins", "plugin-sdk", "xml-index", "wit"] {
        watch(&root.join(dir));
    }
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:rustc-env=FERRY_PLUGINS_DIR={}",
        plugins_dir.display()
    );

    check_wasm_target();

    let cargo = env::var_os("CARGO").unwrap_or_else(|| OsString::from("cargo"));
    let mut cmd = Command::new(cargo);
    cmd.arg("build")
        .arg("--release")
        .arg("--target")
        .arg(WASM_TARGET)
        .arg("--manifest-path")
        .arg(&plugins_manifest)
        .arg("--target-dir")
        .arg(&target_dir)
        .arg("--message-format=json-render-diagnostics")
        .current_dir(root.join("plugins"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit());
    clean_env(&mut cmd);

    eprintln!("building plugins: {cmd:?}");
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("ferry-tests: cannot run cargo to build the plugins: {e}"));
    let stdout = child.stdout.take().expect("piped stdout");
    let mut components = Vec::new();
    for line in BufReader::new(stdout).lines() {
        let line = line.expect("read cargo's output");
        let Ok(msg) = serde_json::from_str::<serde_json::Value>(&line) else {
            continue;
        };
        if msg["reason"] != "compiler-artifact" {
            continue;
        }
        let is_cdylib = msg["target"]["kind"]
            .as_array()
            .is_some_and(|kinds| kinds.iter().any(|k| k == "cdylib"));
        if !is_cdylib {
            continue;
        }
        for file in msg["filenames"].as_array().into_iter().flatten() {
            if let Some(f) = file.as_str().filter(|f| f.ends_with(".wasm")) {
                components.push(PathBuf::from(f));
            }
        }
    }
    let status = child.wait().expect("wait for cargo");
    if !status.success() {
        panic!(
            "ferry-tests: building the plugins failed ({status}); the command was `cargo build --release --target {WASM_TARGET} --manifest-path {} --target-dir {}` (its errors are above)",
            plugins_manifest.display(),
            target_dir.display()
        );
    }

    fs::create_dir_all(&plugins_dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", plugins_dir.display()));
    for component in &components {
        let stem = component
            .file_stem()
            .and_then(|s| s.to_str())
            .expect("a UTF-8 file name");
        // Cargo names the artifact after the lib name (`file_adapter`); the
        // plugin keeps its crate name (`file-adapter`).
        let crate_name = stem.replace('_', "-");
        let dest = plugins_dir.join(format!("{crate_name}.wasm"));
        let mut bytes = fs::read(component)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", component.display()));
        // The plugin's declared options travel in the component.
        let manifest = plugins_manifest
            .parent()
            .expect("plugins/")
            .join(&crate_name)
            .join("ferry-plugin.toml");
        if let Ok(text) = fs::read_to_string(&manifest) {
            embed_manifest(&mut bytes, &text);
        }
        write_if_changed(&bytes, &dest);
    }
}

/// Append the custom section `ferry:plugin` holding `manifest` (a
/// `ferry-plugin.toml`) to `component`: the plugin's declared options, which
/// the host reads at load (as `ferry::options::embed` writes it; build
/// scripts cannot use the host crate).
fn embed_manifest(component: &mut Vec<u8>, manifest: &str) {
    fn leb(out: &mut Vec<u8>, mut v: usize) {
        loop {
            let b = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                out.push(b);
                return;
            }
            out.push(b | 0x80);
        }
    }
    const SECTION: &str = "ferry:plugin";
    let mut payload = Vec::new();
    leb(&mut payload, SECTION.len());
    payload.extend_from_slice(SECTION.as_bytes());
    payload.extend_from_slice(manifest.as_bytes());
    component.push(0);
    leb(component, payload.len());
    component.extend_from_slice(&payload);
}

/// Tell cargo to rerun when anything under `dir` changes, except `target`
/// folders (build output, e.g. from a standalone `cargo build` there).
fn watch(dir: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        println!("cargo:rerun-if-changed={}", dir.display());
        return;
    };
    let mut paths = BTreeSet::new();
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name == "target" {
            continue;
        }
        paths.insert(entry.path());
    }
    // A new entry changes the folder's own listing only; plugins/Cargo.toml
    // (its members) changes with any new plugin.
    for p in paths {
        println!("cargo:rerun-if-changed={}", p.display());
    }
}

/// Fail early, clearly, when the wasm32-wasip2 standard library is missing.
fn check_wasm_target() {
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| OsString::from("rustc"));
    let out = Command::new(&rustc)
        .args(["--print", "target-libdir", "--target", WASM_TARGET])
        .output();
    let installed = match out {
        Ok(o) if o.status.success() => {
            let dir = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
            fs::read_dir(&dir).is_ok_and(|entries| {
                entries
                    .flatten()
                    .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
            })
        }
        _ => false,
    };
    if !installed {
        panic!(
            "ferry-tests: the Rust target {WASM_TARGET} is not installed, and the plugins in plugins/ are built for it.\n\
             Run `rustup target add {WASM_TARGET}` (or scripts/build-plugins, which does it), then build again."
        );
    }
}

/// Remove what the outer build gives build scripts that would change or
/// break the nested one.
fn clean_env(cmd: &mut Command) {
    for var in [
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_ENCODED_RUSTDOCFLAGS",
        "RUSTFLAGS",
        "RUSTDOCFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "CARGO_BUILD_TARGET",
        "RUSTC_WORKSPACE_WRAPPER",
        "CARGO_MAKEFLAGS",
        "MAKEFLAGS",
        "MFLAGS",
        "CARGO_PRIMARY_PACKAGE",
        "CARGO_MANIFEST_DIR",
        "CARGO_MANIFEST_PATH",
        "CARGO_MANIFEST_LINKS",
        "OUT_DIR",
        "TARGET",
        "HOST",
        "NUM_JOBS",
        "OPT_LEVEL",
        "DEBUG",
        "PROFILE",
    ] {
        cmd.env_remove(var);
    }
    for (key, _) in env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_CFG_")
            || key.starts_with("CARGO_FEATURE_")
            || key.starts_with("CARGO_PKG_")
            || key.starts_with("DEP_")
        {
            cmd.env_remove(key.as_ref());
        }
    }
}

/// Write `new` to `to` unless `to` already holds the same bytes (so an
/// unchanged plugin keeps its file time), through a temporary file renamed
/// into place.
fn write_if_changed(new: &[u8], to: &Path) {
    if fs::read(to).is_ok_and(|old| old == new) {
        return;
    }
    let tmp = to.with_extension("wasm.tmp");
    fs::write(&tmp, new).unwrap_or_else(|e| panic!("cannot write {}: {e}", tmp.display()));
    fs::rename(&tmp, to)
        .unwrap_or_else(|e| panic!("cannot rename {} to {}: {e}", tmp.display(), to.display()));
}
