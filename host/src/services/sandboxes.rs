//! One worker's plugin instances: an adapter sandbox per port and side, a
//! rule sandbox per port and rule, a service sandbox per port and service.
//! Created on first use, reused across messages, recycled after a trap (by
//! [`Sandbox`] itself).
//!
//! Versions: a task takes the configuration and plugins in force when it
//! starts ([`Sandboxes::begin_task`]) and keeps that configuration to its
//! end. Between messages ([`Sandboxes::refresh`]) it picks up a new plugin
//! set for the same configuration — a plugin file replaced or removed — so
//! a message runs start to end on the versions it started with, and
//! messages that start after a swap use the new ones.

use std::collections::HashMap;
use std::sync::Arc;

use crate::config::{ComponentConfig, PortConfig, PortDirection, TaskKind};
use crate::runtime::{
    Answered, Context, Direction, Document, Grant, Plugin, PluginFailure, Sandbox, SandboxConfig,
    ServiceRequest, Stage,
};

use super::{Gateway, Live};

/// Where an adapter sees its port's folder.
pub const PORT_FOLDER: &str = "/port";

/// Which side of an adapter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// Receive (gateway receive).
    Receive,
    /// Send (gateway send).
    Send,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Role {
    Adapter(Side),
    Rule(String),
    Service(String),
}

/// Why a sandbox could not be had: the configuration names a plugin that is
/// not loaded, or a folder that cannot be granted.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// Nothing to build the sandbox from.
    #[error("{0}")]
    Unavailable(String),
    /// The plugin failed.
    #[error(transparent)]
    Plugin(#[from] PluginFailure),
}

/// One worker's sandboxes.
#[derive(Default)]
pub struct Sandboxes {
    map: HashMap<(String, Role), Sandbox>,
    /// The configuration and plugins the sandboxes were made from.
    live: Option<Arc<Live>>,
    /// Sandboxes lent to the threads this task hands work to (the engine's
    /// workers, the stages of a pipelined occurrence) and given back, kept
    /// for the next run so their instances are reused.
    spare: Vec<Sandboxes>,
}

impl Sandboxes {
    /// No sandboxes yet.
    pub fn new() -> Sandboxes {
        Sandboxes::default()
    }

    /// Sandboxes for a task that started with `live` (a worker of it).
    pub fn for_task(live: Arc<Live>) -> Sandboxes {
        Sandboxes {
            map: HashMap::new(),
            live: Some(live),
            spare: Vec::new(),
        }
    }

    /// `n` sandboxes for threads that work for this task: those given back
    /// after an earlier run, if they are for the same configuration and
    /// plugins, else new ones.
    pub fn lend(&mut self, gw: &Gateway, n: usize) -> Vec<Sandboxes> {
        let live = self.live(gw);
        let mut lent: Vec<Sandboxes> = std::mem::take(&mut self.spare)
            .into_iter()
            .filter(|s| s.live.as_ref().is_some_and(|l| Arc::ptr_eq(l, &live)))
            .take(n)
            .collect();
        while lent.len() < n {
            lent.push(Sandboxes::for_task(live.clone()));
        }
        lent
    }

    /// Keep only the instances made for `port` (a worker lent for one
    /// port's run: the pool of instances is bounded, so a worker does not
    /// keep every port's instances it ever ran).
    pub fn keep_only(&mut self, port: &str) {
        self.map.retain(|(p, _), _| p == port);
    }

    /// Take back sandboxes lent by [`Sandboxes::lend`], for the next run.
    pub fn give_back(&mut self, lent: Vec<Sandboxes>) {
        self.spare = lent;
    }

    /// Start a task: take the configuration and plugins in force now.
    pub fn begin_task(&mut self, gw: &Gateway) -> Arc<Live> {
        let live = gw.live();
        self.take(live.clone());
        live
    }

    /// Between messages: take the plugins in force now if they are for
    /// the task's configuration (a configuration reloaded meanwhile applies
    /// from the next task).
    pub fn refresh(&mut self, gw: &Gateway) {
        let now = gw.live();
        match &self.live {
            Some(cur) if Arc::ptr_eq(cur, &now) => {}
            Some(cur) if !Arc::ptr_eq(&cur.config, &now.config) => {}
            _ => self.take(now),
        }
    }

    /// The configuration and plugins in use.
    pub fn live(&mut self, gw: &Gateway) -> Arc<Live> {
        match &self.live {
            Some(l) => l.clone(),
            None => self.begin_task(gw),
        }
    }

    /// Why `port` cannot run now, if it cannot: a plugin it needs is gone.
    pub fn paused(&mut self, gw: &Gateway, port: &PortConfig, kind: TaskKind) -> Option<String> {
        let live = self.live(gw);
        live.plugins.paused(&live.config, port, Some(kind))
    }

    fn take(&mut self, live: Arc<Live>) {
        let changed = self
            .live
            .as_ref()
            .is_some_and(|cur| !Arc::ptr_eq(cur, &live));
        if changed {
            // Instances of replaced plugins end here; the others are made
            // again on first use (cheap: the compiled code is shared).
            self.map.clear();
            self.spare.clear();
        }
        self.live = Some(live);
    }

    /// The adapter sandbox of `port` for `side`, with the port's folder
    /// (address for receive; send address for send) granted read-write at
    /// [`PORT_FOLDER`], plus the adapter's own grants.
    pub fn adapter(
        &mut self,
        gw: &Gateway,
        port: &PortConfig,
        side: Side,
    ) -> Result<&mut Sandbox, SandboxError> {
        let key = (port.name.clone(), Role::Adapter(side));
        if !self.map.contains_key(&key) {
            let live = self.live(gw);
            let adapter = live.config.adapters.get(&port.adapter).ok_or_else(|| {
                SandboxError::Unavailable(format!(
                    "port {}: no adapter {}",
                    port.name, port.adapter
                ))
            })?;
            let plugin = live.plugins.get(&adapter.plugin.component).ok_or_else(|| {
                SandboxError::Unavailable(format!(
                    "port {}: adapter plugin {} is not loaded",
                    port.name, adapter.plugin.component
                ))
            })?;
            let folder = match side {
                Side::Receive => port.address.clone(),
                Side::Send => port.send_address().map(Into::into).ok_or_else(|| {
                    SandboxError::Unavailable(format!(
                        "port {} has no response address to send to",
                        port.name
                    ))
                })?,
            };
            std::fs::create_dir_all(&folder).map_err(|e| {
                SandboxError::Unavailable(format!(
                    "port {}: cannot create folder {}: {e}",
                    port.name,
                    folder.display()
                ))
            })?;
            let mut grants = vec![Grant {
                host: folder,
                guest: PORT_FOLDER.to_string(),
                writable: true,
            }];
            grants.extend(adapter.grants.iter().cloned());
            let setup = SandboxConfig {
                port: port.name.clone(),
                direction: runtime_direction(port),
                config: adapter.plugin.options.clone(),
                grants,
                limits: port.limits,
                outbound_ports: Arc::default(),
            };
            self.map
                .insert(key.clone(), Sandbox::new(plugin.clone(), Arc::new(setup)));
        }
        Ok(self.map.get_mut(&key).expect("inserted above"))
    }

    /// The sandbox of rule `rule` on `port`.
    pub fn rule(
        &mut self,
        gw: &Gateway,
        port: &PortConfig,
        rule: &str,
    ) -> Result<&mut Sandbox, SandboxError> {
        let live = self.live(gw);
        let cfg = live.config.rules.get(rule);
        self.component(
            &live,
            port,
            Role::Rule(rule.to_string()),
            cfg,
            Arc::default(),
        )
    }

    /// The sandbox of service `service` for `port`; it may send to every
    /// outbound port through the Send API.
    pub fn service(
        &mut self,
        gw: &Gateway,
        port: &PortConfig,
        service: &str,
    ) -> Result<&mut Sandbox, SandboxError> {
        let live = self.live(gw);
        let cfg = live.config.services.get(service);
        let outbound = Arc::new(live.config.outbound_ports());
        self.component(
            &live,
            port,
            Role::Service(service.to_string()),
            cfg,
            outbound,
        )
    }

    /// A rule or service sandbox: no folders, the component's options.
    fn component(
        &mut self,
        live: &Live,
        port: &PortConfig,
        role: Role,
        cfg: Option<&ComponentConfig>,
        outbound_ports: Arc<std::collections::BTreeSet<String>>,
    ) -> Result<&mut Sandbox, SandboxError> {
        let key = (port.name.clone(), role);
        if !self.map.contains_key(&key) {
            let what = match &key.1 {
                Role::Rule(n) => format!("rule {n}"),
                Role::Service(n) => format!("service {n}"),
                Role::Adapter(_) => unreachable!("adapters have their own constructor"),
            };
            let cfg = cfg.ok_or_else(|| {
                SandboxError::Unavailable(format!("port {}: no {what}", port.name))
            })?;
            let plugin = live.plugins.get(&cfg.component).ok_or_else(|| {
                SandboxError::Unavailable(format!(
                    "port {}: plugin {} of {what} is not loaded",
                    port.name, cfg.component
                ))
            })?;
            let setup = SandboxConfig {
                port: port.name.clone(),
                direction: runtime_direction(port),
                config: cfg.options.clone(),
                grants: vec![],
                limits: port.limits,
                outbound_ports,
            };
            self.map
                .insert(key.clone(), Sandbox::new(plugin.clone(), Arc::new(setup)));
        }
        Ok(self.map.get_mut(&key).expect("inserted above"))
    }
}

/// The direction of `port` as plugins see it.
fn runtime_direction(port: &PortConfig) -> Direction {
    match port.direction {
        PortDirection::Inbound => Direction::Inbound,
        PortDirection::Outbound => Direction::Outbound,
    }
}

/// What the rules of a stage made of one document: the document they
/// passed on and the (name, hash) of each plugin that touched it, or the
/// failure of the first rule that did not pass it on.
pub type RulesOutcome = Result<(Document, Vec<(String, String)>), SandboxError>;

/// Run `port`'s rules `rules` in order over a batch of documents, each
/// rule called once for all the documents still passing: one outcome per
/// document, in order. A document one rule fails goes to no further rule;
/// the others go on (see [`Sandbox::apply`] for how a trap in a batch
/// lands on one document only).
pub fn run_rules_batch(
    gw: &Gateway,
    sandboxes: &mut Sandboxes,
    port: &PortConfig,
    rules: &[String],
    stage: Stage,
    docs: Vec<Document>,
) -> Vec<RulesOutcome> {
    let ctx = Context {
        port: port.name.clone(),
        direction: runtime_direction(port),
        stage,
    };
    let mut slots: Vec<RulesOutcome> = docs.into_iter().map(|d| Ok((d, Vec::new()))).collect();
    for rule in rules {
        let passing: Vec<usize> = (0..slots.len()).filter(|&i| slots[i].is_ok()).collect();
        if passing.is_empty() {
            break;
        }
        let sandbox = match sandboxes.rule(gw, port, rule) {
            Ok(s) => s,
            Err(e) => {
                let text = e.to_string();
                for &i in &passing {
                    slots[i] = Err(SandboxError::Unavailable(text.clone()));
                }
                break;
            }
        };
        let plugin = sandbox.plugin().clone();
        let mut provenances = Vec::with_capacity(passing.len());
        let batch: Vec<Document> = passing
            .iter()
            .map(|&i| {
                let (doc, prov) =
                    std::mem::replace(&mut slots[i], Err(SandboxError::Unavailable(String::new())))
                        .expect("passing");
                provenances.push(prov);
                doc
            })
            .collect();
        let results = sandbox.apply(&ctx, batch);
        for ((&i, result), mut prov) in passing.iter().zip(results).zip(provenances) {
            slots[i] = match result {
                Ok(doc) => {
                    prov.push((plugin.name().to_string(), plugin.hash().to_string()));
                    Ok((doc, prov))
                }
                Err(f) => Err(SandboxError::Plugin(f)),
            };
        }
    }
    slots
}

/// [`run_rules_batch`] for one document: the final document, with the
/// (name, hash) of each plugin that touched it added to `provenance`.
pub fn run_rules(
    gw: &Gateway,
    sandboxes: &mut Sandboxes,
    port: &PortConfig,
    rules: &[String],
    stage: Stage,
    doc: Document,
    provenance: &mut Vec<(String, String)>,
) -> Result<Document, SandboxError> {
    let (doc, by) = run_rules_batch(gw, sandboxes, port, rules, stage, vec![doc])
        .pop()
        .expect("one outcome for one document")?;
    provenance.extend(by);
    Ok(doc)
}

/// The plugin that answered a batch of requests, and one outcome per
/// request, in order.
pub type ServiceOutcome = (Arc<Plugin>, Vec<Result<Answered, PluginFailure>>);

/// Call service `service` of `port` with a batch of requests (stage
/// `service`): one outcome per request, in order, with the plugin that
/// answered.
pub fn invoke_service(
    gw: &Gateway,
    sandboxes: &mut Sandboxes,
    port: &PortConfig,
    service: &str,
    reqs: &[ServiceRequest],
) -> Result<ServiceOutcome, SandboxError> {
    let ctx = Context {
        port: port.name.clone(),
        direction: runtime_direction(port),
        stage: Stage::Service,
    };
    let sandbox = sandboxes.service(gw, port, service)?;
    let plugin = sandbox.plugin().clone();
    Ok((plugin, sandbox.invoke(&ctx, reqs)))
}
