//! The plugin directory: every component the configuration references,
//! loaded once and validated against the world it is used for.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::config::Config;
use crate::runtime::{LoadError, Plugin, Runtime, World};

/// The loaded plugins, by name.
#[derive(Debug, Default)]
pub struct PluginSet {
    plugins: BTreeMap<String, Arc<Plugin>>,
}

impl PluginSet {
    /// Load every plugin `config` references and check each targets the
    /// world its use needs. Returns every problem, not only the first.
    pub fn load(runtime: &Runtime, config: &Config) -> Result<PluginSet, Vec<LoadError>> {
        // Every use of every component: a component may serve several roles
        // only if it targets each of their worlds (it cannot: each targets
        // one), so each use is checked on its own.
        let mut uses: Vec<(&str, World)> = Vec::new();
        uses.extend(
            config
                .adapters
                .values()
                .map(|a| (a.plugin.component.as_str(), World::Adapter)),
        );
        uses.extend(
            config
                .rules
                .values()
                .map(|r| (r.component.as_str(), World::Rule)),
        );
        uses.extend(
            config
                .services
                .values()
                .map(|s| (s.component.as_str(), World::Service)),
        );
        uses.sort();
        uses.dedup();
        let mut plugins: BTreeMap<String, Arc<Plugin>> = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, world) in uses {
            let loaded = match plugins.get(name) {
                Some(p) => Ok(p.clone()),
                None => runtime.load(&config.plugin_path(name)),
            };
            match loaded {
                Ok(p) => {
                    if let Err(e) = p.expect(world) {
                        errors.push(e);
                    }
                    plugins.insert(name.to_string(), p);
                }
                Err(e) => errors.push(e),
            }
        }
        if errors.is_empty() {
            Ok(PluginSet { plugins })
        } else {
            Err(errors)
        }
    }

    /// The plugin named `name`.
    pub fn get(&self, name: &str) -> Option<&Arc<Plugin>> {
        self.plugins.get(name)
    }

    /// All loaded plugins.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Plugin>> {
        self.plugins.values()
    }
}
