//! The on-disk compile cache: compiled components kept under the data
//! directory, keyed by the component's content hash and the engine's
//! compatibility hash, so a restart loads even Python- or JavaScript-sized
//! plugins in milliseconds instead of seconds.

use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::Engine;
use wasmtime::component::Component;

/// The cache file for a component with content hash `hash` on `engine`.
fn entry(dir: &Path, engine: &Engine, hash: &str) -> PathBuf {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut h);
    dir.join(format!("{hash}-{:016x}.cwasm", h.finish()))
}

/// Load the compiled form of `bytes` (content hash `hash`) from the cache, or
/// compile it and store it there. Cache failures are logged and never fatal:
/// the component is then compiled in memory. A compilation (not a cache
/// hit) is logged at info with the plugin's `name`, since a Python or
/// JavaScript component takes seconds.
pub fn compile(
    engine: &Engine,
    dir: Option<&Path>,
    name: &str,
    hash: &str,
    bytes: &[u8],
) -> wasmtime::Result<Component> {
    let Some(dir) = dir else {
        return Component::new(engine, bytes);
    };
    let path = entry(dir, engine, hash);
    if path.exists() {
        // SAFETY: the cache directory is Ferry's own; its files are written
        // only by `store` below from `Engine::precompile_component` output of
        // an engine with the same compatibility hash (part of the file name).
        match unsafe { Component::deserialize_file(engine, &path) } {
            Ok(c) => return Ok(c),
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "compile cache entry unusable; recompiling");
                let _ = std::fs::remove_file(&path);
            }
        }
    }
    tracing::info!(
        "compiling plugin {name} ({} KiB); once only: later loads use the compile cache in {}",
        bytes.len() / 1024,
        dir.display()
    );
    let started = std::time::Instant::now();
    let compiled = engine.precompile_component(bytes)?;
    tracing::info!(
        "compiled plugin {name} in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if let Err(e) = store(dir, &path, &compiled) {
        tracing::warn!(path = %path.display(), error = %e, "cannot write the compile cache");
    }
    // SAFETY: `compiled` was produced by `precompile_component` of this engine.
    unsafe { Component::deserialize(engine, &compiled) }
}

/// Write atomically: a temporary file renamed into place, so a crash never
/// leaves a truncated entry.
fn store(dir: &Path, path: &Path, compiled: &[u8]) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    std::io::Write::write_all(&mut tmp, compiled)?;
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
