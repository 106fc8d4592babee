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
        let mut wanted: BTreeMap<&str, World> = BTreeMap::new();
        for a in config.adapters.values() {
            wanted.insert(&a.plugin.component, World::Adapter);
        }
        for r in config.rules.values() {
            wanted.insert(&r.component, World::Rule);
        }
        for s in config.services.values() {
            wanted.insert(&s.component, World::Service);
        }
        let mut plugins = BTreeMap::new();
        let mut errors = Vec::new();
        for (name, world) in wanted {
            match runtime.load(&config.plugin_path(name)) {
                Ok(p) => match p.expect(world) {
                    Ok(()) => {
                        plugins.insert(name.to_string(), p);
                    }
                    Err(e) => errors.push(e),
                },
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
