//! Errors of the component runtime: loading a plugin ([`LoadError`]) and
//! calling one ([`PluginFailure`]). Every error names the plugin and its
//! content hash, so an operator can tell which version of which plugin did it.

use std::fmt;

use super::World;

/// Why a plugin file could not be loaded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plugin {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What the operating system said.
        source: std::io::Error,
    },
    /// The bytes are not a WebAssembly component.
    #[error("{name} is not a WebAssembly component: {reason}")]
    NotAComponent {
        /// The plugin's name.
        name: String,
        /// What the file is instead.
        reason: String,
    },
    /// wasmtime could not compile the component.
    #[error("{name} (sha256:{hash}) does not compile: {reason}")]
    Compile {
        /// The plugin's name.
        name: String,
        /// Its short content hash.
        hash: String,
        /// The compiler's message.
        reason: String,
    },
    /// The component exports none of Ferry's worlds.
    #[error(
        "{name} (sha256:{hash}) does not target a Ferry world: it exports [{exports}], \
         but a Ferry plugin exports ferry:plugin/rule, ferry:plugin/service, or \
         ferry:plugin/receive and ferry:plugin/send (WIT package ferry:plugin@{})",
        super::contract::version()
    )]
    WrongWorld {
        /// The plugin's name.
        name: String,
        /// Its short content hash.
        hash: String,
        /// What it exports instead.
        exports: String,
    },
    /// The component imports something the host does not provide.
    #[error("{name} (sha256:{hash}) cannot run in Ferry's {world} sandbox: {reason}")]
    Imports {
        /// The plugin's name.
        name: String,
        /// Its short content hash.
        hash: String,
        /// The world it targets.
        world: World,
        /// The imports that are not provided, in plain words.
        reason: String,
    },
    /// The component's declaration of its options (`ferry:plugin` section)
    /// cannot be read.
    #[error("{name} (sha256:{hash}): {reason}")]
    Declaration {
        /// The plugin's name.
        name: String,
        /// Its short content hash.
        hash: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The configuration gives a plugin options it does not declare, or of
    /// the wrong type.
    #[error("{at}: {problem} (plugin {name})")]
    Options {
        /// `FILE:LINE: KEY` of the options.
        at: String,
        /// The plugin's name.
        name: String,
        /// What is wrong.
        problem: String,
    },
    /// The plugin targets a world other than the one it is used for.
    #[error("{name} (sha256:{hash}) is a {found} plugin, but it is configured as {}", expected.with_article())]
    Mismatch {
        /// The plugin's name.
        name: String,
        /// Its short content hash.
        hash: String,
        /// The world its configuration needs.
        expected: World,
        /// The world it targets.
        found: World,
    },
}

/// What kind of failure a plugin call ended in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum FailureKind {
    /// The plugin rejected the input (the message's fault).
    Rejected,
    /// The plugin reported that it failed (its own fault).
    Failed,
    /// The call ran past the plugin's time limit.
    Timeout,
    /// The plugin tried to grow its memory beyond its cap.
    OutOfMemory,
    /// The plugin exhausted its call stack.
    StackOverflow,
    /// The plugin panicked (or raised an uncaught exception).
    Panic,
    /// Any other trap (unreachable, out-of-bounds access, ...).
    Trap,
    /// The plugin could not be instantiated.
    Instantiate,
    /// The plugin handed the host more than a quota allows (documents sent,
    /// responses, log records, output, a receive batch).
    Quota,
    /// The plugin broke the contract: e.g. a result count that is not the
    /// batch's length.
    Contract,
}

impl FailureKind {
    /// True when the sandbox instance is poisoned by this failure and must be
    /// discarded (every trap). A rejection or reported failure leaves the
    /// instance usable.
    pub fn poisons(self) -> bool {
        !matches!(self, FailureKind::Rejected | FailureKind::Failed)
    }

    /// A short lower-case label (`timeout`, `out-of-memory`, ...).
    pub fn label(self) -> &'static str {
        match self {
            FailureKind::Rejected => "rejected",
            FailureKind::Failed => "failed",
            FailureKind::Timeout => "timeout",
            FailureKind::OutOfMemory => "out-of-memory",
            FailureKind::StackOverflow => "stack-overflow",
            FailureKind::Panic => "panic",
            FailureKind::Trap => "trap",
            FailureKind::Instantiate => "instantiate",
            FailureKind::Quota => "quota",
            FailureKind::Contract => "contract",
        }
    }
}

impl fmt::Display for FailureKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// A plugin call that did not succeed: which plugin (name, content hash,
/// world), which function, what kind of failure, what it said, and what it
/// wrote on stderr during the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PluginFailure {
    /// The plugin's name (its file name without `.wasm`).
    pub plugin: String,
    /// The plugin's full sha256 content hash, hex.
    pub hash: String,
    /// The world the plugin targets.
    pub world: World,
    /// The exported function that was called (`apply`, `receive`, ...).
    pub function: &'static str,
    /// What kind of failure it was.
    pub kind: FailureKind,
    /// What the plugin or the runtime said.
    pub message: String,
    /// What the guest wrote to stderr/stdout during the call (trimmed).
    pub stderr: String,
}

impl PluginFailure {
    /// The first 12 hex digits of the content hash.
    pub fn short_hash(&self) -> &str {
        &self.hash[..self.hash.len().min(12)]
    }
}

impl fmt::Display for PluginFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "plugin {} (sha256:{}, {}) {}: {}",
            self.plugin,
            self.short_hash(),
            self.world,
            match self.kind {
                FailureKind::Rejected => "rejected the message".to_string(),
                FailureKind::Failed => format!("failed in {}", self.function),
                FailureKind::Timeout => format!("ran past its time limit in {}", self.function),
                FailureKind::OutOfMemory => format!("exceeded its memory cap in {}", self.function),
                FailureKind::StackOverflow => format!("overflowed its stack in {}", self.function),
                FailureKind::Panic => format!("panicked in {}", self.function),
                FailureKind::Trap => format!("trapped in {}", self.function),
                FailureKind::Instantiate => "could not be instantiated".to_string(),
                FailureKind::Quota => format!("reached a quota in {}", self.function),
                FailureKind::Contract => format!("broke the contract in {}", self.function),
            },
            self.message
        )?;
        if !self.stderr.is_empty() {
            write!(f, "; stderr: {}", self.stderr)?;
        }
        Ok(())
    }
}

impl std::error::Error for PluginFailure {}
