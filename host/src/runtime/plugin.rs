//! Loading a plugin: read, hash, compile (through the cache), find its world,
//! check its imports, and keep an `InstancePre` ready for sandboxes.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use sha2::{Digest, Sha256};
use wasmtime::component::{Component, InstancePre};

use super::bindings::{adapter::AdapterPre, rule::RulePluginPre, service::ServicePluginPre, v01};
use super::contract::{self, Contract, PACKAGE};
use super::host::HostState;
use super::{LoadError, Runtime, World, cache};
use crate::options::OptionDecl;

/// A loaded, validated plugin, ready to be instantiated in sandboxes.
pub struct Plugin {
    name: String,
    hash: String,
    world: World,
    contract: Contract,
    path: Option<PathBuf>,
    loaded_at: SystemTime,
    imports: Vec<String>,
    exports: Vec<String>,
    options: Option<Vec<OptionDecl>>,
    pub(super) pre: PluginPre,
    /// Keeps the runtime (and its epoch ticker, which enforces time limits)
    /// alive as long as the plugin can run.
    _runtime: Runtime,
}

/// The typed `InstancePre` of a plugin's world.
pub(super) enum PluginPre {
    Rule(RulePluginPre<HostState>),
    Adapter(AdapterPre<HostState>),
    Service(ServicePluginPre<HostState>),
    Rule01(v01::rule::RulePluginPre<HostState>),
    Adapter01(v01::adapter::AdapterPre<HostState>),
    Service01(v01::service::ServicePluginPre<HostState>),
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin")
            .field("name", &self.name)
            .field("hash", &self.hash)
            .field("world", &self.world)
            .finish()
    }
}

impl Plugin {
    /// The plugin's name: its file name without `.wasm`.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The sha256 of the component's bytes, hex.
    pub fn hash(&self) -> &str {
        &self.hash
    }
    /// The first 12 hex digits of [`Plugin::hash`].
    pub fn short_hash(&self) -> &str {
        &self.hash[..12]
    }
    /// The world it targets.
    pub fn world(&self) -> World {
        self.world
    }
    /// The contract it was built against: the one this host implements,
    /// or 0.1 (served by the adapter layer).
    pub fn contract(&self) -> Contract {
        self.contract
    }
    /// The version of `ferry:plugin` it was built against, as the host
    /// names it (`0.2.1`, or `0.1.0` for the adapter layer).
    pub fn contract_version(&self) -> &'static str {
        version_of(self.contract)
    }
    /// The file it was loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }
    /// When it was loaded.
    pub fn loaded_at(&self) -> SystemTime {
        self.loaded_at
    }
    /// The component's import names.
    pub fn imports(&self) -> &[String] {
        &self.imports
    }
    /// The component's export names.
    pub fn exports(&self) -> &[String] {
        &self.exports
    }
    /// The options it declares (`None`: it declares none, and its options
    /// are not checked).
    pub fn options(&self) -> Option<&[OptionDecl]> {
        self.options.as_deref()
    }

    /// The engine it was compiled for.
    pub(super) fn engine(&self) -> &wasmtime::Engine {
        self._runtime.engine()
    }

    /// Fail with [`LoadError::Mismatch`] unless the plugin targets `world`.
    pub fn expect(&self, world: World) -> Result<(), LoadError> {
        if self.world == world {
            Ok(())
        } else {
            Err(LoadError::Mismatch {
                name: self.name.clone(),
                hash: self.short_hash().to_string(),
                expected: world,
                found: self.world,
            })
        }
    }
}

/// What `ferry plugin check` shows about a file: as much as could be learnt,
/// and what is wrong with it, if anything.
#[derive(Debug)]
pub struct Inspection {
    /// The plugin's name.
    pub name: String,
    /// sha256 of the bytes, hex.
    pub hash: String,
    /// Size in bytes.
    pub size: usize,
    /// The world, if it targets one of Ferry's.
    pub world: Option<World>,
    /// The contract version it was built against, if it is one this host
    /// runs.
    pub contract: Option<&'static str>,
    /// Import names (empty when it did not compile).
    pub imports: Vec<String>,
    /// Export names (empty when it did not compile).
    pub exports: Vec<String>,
    /// The options it declares, if it declares them.
    pub options: Option<Vec<OptionDecl>>,
    /// The problem, if any.
    pub error: Option<LoadError>,
}

/// The hex sha256 of `bytes`.
pub fn content_hash(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The plugin name for a path: the file name without `.wasm`.
pub fn name_of(path: &Path) -> String {
    path.file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// Tell a core module or some other file from a component by its header.
fn check_header(name: &str, bytes: &[u8]) -> Result<(), LoadError> {
    let not = |reason: &str| {
        Err(LoadError::NotAComponent {
            name: name.to_string(),
            reason: reason.to_string(),
        })
    };
    if bytes.len() < 8 || &bytes[..4] != b"\0asm" {
        return not("it does not start with the WebAssembly magic bytes \\0asm");
    }
    match bytes[4..8] {
        [0x0d, 0x00, 0x01, 0x00] => Ok(()),
        [0x01, 0x00, 0x00, 0x00] => not(
            "it is a core WebAssembly module, not a component; build it for \
             wasm32-wasip2 (or run `wasm-tools component new`)",
        ),
        _ => not("unknown WebAssembly version/layer in its header"),
    }
}

/// Strip `@version` from an interface name: `ferry:plugin/rule@0.1.0` →
/// (`ferry:plugin/rule`, Some(`0.1.0`)).
fn split_version(name: &str) -> (&str, Option<&str>) {
    match name.rsplit_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (name, None),
    }
}

/// The version of a contract, as the host names it.
fn version_of(c: Contract) -> &'static str {
    match c {
        Contract::Current => contract::version(),
        Contract::Legacy => contract::legacy_version(),
    }
}

fn world_of(exports: &[String]) -> Option<World> {
    let has = |i: &str| {
        exports
            .iter()
            .any(|e| split_version(e).0 == format!("{PACKAGE}/{i}"))
    };
    if has("rule") {
        Some(World::Rule)
    } else if has("service") {
        Some(World::Service)
    } else if has("receive") && has("send") {
        Some(World::Adapter)
    } else {
        None
    }
}

/// The contract of a plugin's `ferry:plugin` exports, by the compatibility
/// rule (`contract.rs`): all of one contract, or the reason it is refused.
fn contract_of(exports: &[String]) -> Result<Contract, String> {
    let mut found: Option<Contract> = None;
    for e in exports {
        let (iface, version) = split_version(e);
        if !iface.starts_with(&format!("{PACKAGE}/")) {
            continue;
        }
        let c = contract::classify(e, version)?;
        match found {
            Some(f) if f != c => {
                return Err(format!(
                    "it exports interfaces of two versions of {PACKAGE} ({} and {}); build it \
                     against one",
                    version_of(f),
                    version_of(c)
                ));
            }
            _ => found = Some(c),
        }
    }
    found.ok_or_else(|| format!("it exports nothing of {PACKAGE}"))
}

/// The imports of `world` that the host provides, by interface name without
/// version; WASI 0.2 interfaces are provided to every world.
fn provided(world: World, contract: Contract, import: &str) -> Result<(), String> {
    let (iface, version) = split_version(import);
    if let Some(rest) = iface.strip_prefix("wasi:") {
        if rest.starts_with("http/") {
            return Err(format!(
                "it imports {import}, but plugins get no network access (for \
                 componentize-js, build with `--disable http fetch-event`)"
            ));
        }
        if rest.starts_with("sockets/") {
            return Ok(()); // linked, but every socket operation is denied
        }
        return match version {
            Some(v) if v.starts_with("0.2.") => Ok(()),
            _ => Err(format!(
                "it imports {import}; Ferry provides WASI 0.2 (wasm32-wasip2) interfaces only"
            )),
        };
    }
    let ours = |i: &str| iface == format!("{PACKAGE}/{i}");
    let allowed = ours("types")
        || ours("host")
        || match contract {
            Contract::Current => {
                (world == World::Rule && ours("documents"))
                    || (world == World::Adapter && ours("files"))
            }
            Contract::Legacy => world == World::Service && ours("send-api"),
        };
    if !allowed {
        return Err(format!(
            "it imports {import}, which Ferry does not provide to a {world} plugin"
        ));
    }
    match contract::classify(import, version)? {
        c if c == contract => Ok(()),
        c => Err(format!(
            "it imports {import} ({PACKAGE}@{}) but exports {PACKAGE}@{}; build it against one",
            version_of(c),
            version_of(contract)
        )),
    }
}

impl Runtime {
    /// Load the plugin at `path` (its name is the file name without `.wasm`).
    pub fn load(&self, path: &Path) -> Result<Arc<Plugin>, LoadError> {
        let bytes = std::fs::read(path).map_err(|source| LoadError::Io {
            path: path.display().to_string(),
            source,
        })?;
        self.load_read(path, &bytes)
    }

    /// Load the plugin at `path` from its content, already read.
    pub fn load_read(&self, path: &Path, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        let mut plugin = self.load_bytes(&name_of(path), bytes)?;
        if let Some(p) = Arc::get_mut(&mut plugin) {
            p.path = Some(path.to_path_buf());
        }
        Ok(plugin)
    }

    /// Load a plugin from its bytes.
    pub fn load_bytes(&self, name: &str, bytes: &[u8]) -> Result<Arc<Plugin>, LoadError> {
        check_header(name, bytes)?;
        let hash = content_hash(bytes);
        let short = hash[..12].to_string();
        let options = crate::options::read(bytes).map_err(|reason| LoadError::Declaration {
            name: name.to_string(),
            hash: short.clone(),
            reason,
        })?;
        let component = cache::compile(self.engine(), self.cache_dir(), name, &hash, bytes)
            .map_err(|e| LoadError::Compile {
                name: name.to_string(),
                hash: short.clone(),
                reason: format!("{e:#}"),
            })?;
        let (imports, exports) = names(self, &component);
        let world = world_of(&exports).ok_or_else(|| LoadError::WrongWorld {
            name: name.to_string(),
            hash: short.clone(),
            exports: exports.join(", "),
        })?;
        let imports_error = |reason: String| LoadError::Imports {
            name: name.to_string(),
            hash: short.clone(),
            world,
            reason,
        };
        let contract = contract_of(&exports).map_err(imports_error)?;
        let problems: Vec<String> = imports
            .iter()
            .filter_map(|i| provided(world, contract, i).err())
            .collect();
        if !problems.is_empty() {
            return Err(imports_error(problems.join("; ")));
        }
        let pre: InstancePre<HostState> = self
            .linker()
            .instantiate_pre(&component)
            .map_err(|e| imports_error(format!("{e:#}")))?;
        let typed = match (contract, world) {
            (Contract::Current, World::Rule) => RulePluginPre::new(pre).map(PluginPre::Rule),
            (Contract::Current, World::Adapter) => AdapterPre::new(pre).map(PluginPre::Adapter),
            (Contract::Current, World::Service) => {
                ServicePluginPre::new(pre).map(PluginPre::Service)
            }
            (Contract::Legacy, World::Rule) => {
                v01::rule::RulePluginPre::new(pre).map(PluginPre::Rule01)
            }
            (Contract::Legacy, World::Adapter) => {
                v01::adapter::AdapterPre::new(pre).map(PluginPre::Adapter01)
            }
            (Contract::Legacy, World::Service) => {
                v01::service::ServicePluginPre::new(pre).map(PluginPre::Service01)
            }
        }
        .map_err(|e| {
            imports_error(format!(
                "its exports do not match {PACKAGE}@{}'s {world} world: {e:#}",
                version_of(contract)
            ))
        })?;
        if contract == Contract::Legacy {
            tracing::info!(
                plugin = name,
                hash = %short,
                "built against {PACKAGE}@{}: runs through the adapter layer, one document per \
                 call; rebuild it against {PACKAGE}@{} for batches and configuration once",
                contract::legacy_version(),
                contract::version()
            );
        }
        Ok(Arc::new(Plugin {
            name: name.to_string(),
            hash,
            world,
            contract,
            path: None,
            loaded_at: SystemTime::now(),
            imports,
            exports,
            options,
            pre: typed,
            _runtime: self.clone(),
        }))
    }

    /// Inspect a file for `ferry plugin check`: never fails, reports what it
    /// found and what is wrong.
    pub fn inspect(&self, path: &Path) -> Inspection {
        let name = name_of(path);
        let bytes = match std::fs::read(path) {
            Ok(b) => b,
            Err(source) => {
                return Inspection {
                    name,
                    hash: String::new(),
                    size: 0,
                    world: None,
                    contract: None,
                    imports: vec![],
                    exports: vec![],
                    options: None,
                    error: Some(LoadError::Io {
                        path: path.display().to_string(),
                        source,
                    }),
                };
            }
        };
        let hash = content_hash(&bytes);
        let mut inspection = Inspection {
            name: name.clone(),
            hash: hash.clone(),
            size: bytes.len(),
            world: None,
            contract: None,
            imports: vec![],
            exports: vec![],
            options: crate::options::read(&bytes).ok().flatten(),
            error: None,
        };
        match self.load_bytes(&name, &bytes) {
            Ok(p) => {
                inspection.world = Some(p.world());
                inspection.contract = Some(p.contract_version());
                inspection.imports = p.imports().to_vec();
                inspection.exports = p.exports().to_vec();
            }
            Err(e) => {
                // Names are worth showing even when validation failed.
                if check_header(&name, &bytes).is_ok()
                    && let Ok(c) =
                        cache::compile(self.engine(), self.cache_dir(), &name, &hash, &bytes)
                {
                    let (i, e) = names(self, &c);
                    inspection.world = world_of(&e);
                    inspection.contract = contract_of(&e).ok().map(version_of);
                    inspection.imports = i;
                    inspection.exports = e;
                }
                inspection.error = Some(e);
            }
        }
        inspection
    }
}

fn names(rt: &Runtime, component: &Component) -> (Vec<String>, Vec<String>) {
    let ty = component.component_type();
    let imports = ty
        .imports(rt.engine())
        .map(|(n, _)| n.to_string())
        .collect();
    let exports = ty
        .exports(rt.engine())
        .map(|(n, _)| n.to_string())
        .collect();
    (imports, exports)
}
