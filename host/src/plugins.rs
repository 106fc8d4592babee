//! The plugin directory: every component the configuration references,
//! loaded and validated against the world it is used for.
//!
//! A [`PluginSet`] is immutable; the running host replaces it as a whole
//! (see [`crate::reload`]) when a plugin file is added, replaced or removed.
//! A plugin removed while running is *missing*: the ports that need it are
//! paused, with the reason, until it comes back.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::{Config, PortConfig, PortDirection, TaskKind};
use crate::runtime::{LoadError, Plugin, Runtime, World};

/// The loaded plugins, by name, and the referenced ones that are missing.
#[derive(Debug, Default, Clone)]
pub struct PluginSet {
    plugins: BTreeMap<String, Arc<Plugin>>,
    missing: BTreeMap<String, String>,
}

/// Every (component, world) the configuration uses, without repeats.
pub fn uses(config: &Config) -> Vec<(String, World)> {
    let mut uses: Vec<(String, World)> = Vec::new();
    uses.extend(
        config
            .adapters
            .values()
            .map(|a| (a.plugin.component.clone(), World::Adapter)),
    );
    uses.extend(
        config
            .rules
            .values()
            .map(|r| (r.component.clone(), World::Rule)),
    );
    uses.extend(
        config
            .services
            .values()
            .map(|s| (s.component.clone(), World::Service)),
    );
    uses.sort();
    uses.dedup();
    uses
}

/// The components `port` needs for one of the four services (all four
/// when `kind` is None): receive — its adapter and (inbound) transforms;
/// inbound processing — its pipeline and services; outbound processing —
/// (outbound ports) its pipeline and transforms; send — its adapter.
fn port_components(config: &Config, port: &PortConfig, kind: Option<TaskKind>) -> Vec<String> {
    let inbound = port.direction == PortDirection::Inbound;
    let wants = |k: TaskKind| kind.is_none_or(|x| x == k);
    let rules = |list: &[String]| -> Vec<String> {
        list.iter()
            .filter_map(|r| config.rules.get(r).map(|r| r.component.clone()))
            .collect()
    };
    let mut out = Vec::new();
    if ((wants(TaskKind::GatewayReceive) && inbound) || wants(TaskKind::GatewaySend))
        && let Some(a) = config.adapters.get(&port.adapter)
    {
        out.push(a.plugin.component.clone());
    }
    if wants(TaskKind::GatewayReceive) && inbound {
        out.extend(rules(&port.transforms));
    }
    if wants(TaskKind::InboundProcessing) && inbound {
        out.extend(rules(&port.pipeline));
        for route in &port.services {
            if let Some(s) = config.services.get(&route.service) {
                out.push(s.component.clone());
            }
        }
    }
    if wants(TaskKind::OutboundProcessing) && !inbound {
        out.extend(rules(&port.pipeline));
        out.extend(rules(&port.transforms));
    }
    out
}

/// Whether `port` needs component `name`.
pub fn needs(config: &Config, port: &PortConfig, name: &str) -> bool {
    port_components(config, port, None)
        .iter()
        .any(|c| c == name)
}

impl PluginSet {
    /// Load every plugin `config` references and check each targets the
    /// world its use needs. Returns every problem, not only the first.
    pub fn load(runtime: &Runtime, config: &Config) -> Result<PluginSet, Vec<LoadError>> {
        PluginSet::load_reusing(runtime, config, None)
    }

    /// [`PluginSet::load`], keeping each plugin of `previous` whose file
    /// still has the same content as it is (no new compile).
    pub fn load_reusing(
        runtime: &Runtime,
        config: &Config,
        previous: Option<&PluginSet>,
    ) -> Result<PluginSet, Vec<LoadError>> {
        // A component may serve several roles only if it targets each of
        // their worlds (it cannot: each targets one), so each use is checked
        // on its own.
        let mut plugins: BTreeMap<String, Arc<Plugin>> = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, world) in uses(config) {
            let loaded = match plugins.get(&name) {
                Some(p) => Ok(p.clone()),
                None => load_one(runtime, config, &name, previous),
            };
            match loaded {
                Ok(p) => {
                    if let Err(e) = p.expect(world) {
                        errors.push(e);
                    }
                    plugins.insert(name, p);
                }
                Err(e) => errors.push(e),
            }
        }
        // Options the plugin does not declare, or of the wrong type.
        let configured = config
            .adapters
            .values()
            .map(|a| &a.plugin)
            .chain(config.rules.values())
            .chain(config.services.values());
        for c in configured {
            let Some(decls) = plugins.get(&c.component).and_then(|p| p.options()) else {
                continue;
            };
            for problem in crate::options::check(decls, &c.options) {
                errors.push(LoadError::Options {
                    at: c.options_at.clone(),
                    name: c.component.clone(),
                    problem,
                });
            }
        }
        if errors.is_empty() {
            Ok(PluginSet {
                plugins,
                missing: BTreeMap::new(),
            })
        } else {
            Err(errors)
        }
    }

    /// The plugin named `name`, if it is loaded (not missing).
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// All loaded plugins.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }

    /// The referenced plugins that are missing, with why.
    pub fn missing(&self) -> &BTreeMap<String, String> {
        &self.missing
    }

    /// This set with `plugin` in place of the plugin of the same name.
    pub fn with(&self, plugin: Arc<Plugin>) -> PluginSet {
        let mut next = self.clone();
        next.missing.remove(plugin.name());
        next.plugins.insert(plugin.name().to_string(), plugin);
        next
    }

    /// This set without plugin `name`, which is now missing for `reason`.
    pub fn without(&self, name: &str, reason: String) -> PluginSet {
        let mut next = self.clone();
        next.plugins.remove(name);
        next.missing.insert(name.to_string(), reason);
        next
    }

    /// Why `port` is paused for service `kind` (any of them when None), if
    /// it is: a plugin it needs there is missing.
    pub fn paused(
        &self,
        config: &Config,
        port: &PortConfig,
        kind: Option<TaskKind>,
    ) -> Option<String> {
        let mut gone: Vec<String> = port_components(config, port, kind)
            .into_iter()
            .filter_map(|c| self.missing.get(&c).map(|why| format!("plugin {c} {why}")))
            .collect();
        gone.dedup();
        if gone.is_empty() {
            return None;
        }
        let what = kind.map_or("is paused".to_string(), |k| {
            format!("is paused for {}", k.name())
        });
        Some(format!(
            "port {} {what}: {}; its messages wait (nothing goes to Error) until the plugin is back",
            port.name,
            gone.join("; ")
        ))
    }
}

/// Load `name` from the plugin directory, reusing `previous`'s plugin when
/// the file's content did not change.
fn load_one(
    runtime: &Runtime,
    config: &Config,
    name: &str,
    previous: Option<&PluginSet>,
) -> Result<Arc<Plugin>, LoadError> {
    let path = config.plugin_path(name);
    if let Some(old) = previous.and_then(|p| p.get(name))
        && old.path() == Some(path.as_path())
        && let Ok(bytes) = std::fs::read(&path)
        && crate::runtime::content_hash(&bytes) == old.hash()
    {
        return Ok(old.clone());
    }
    runtime.load(&path)
}
