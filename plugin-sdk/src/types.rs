//! Conveniences on the WIT types shared by every world.

use crate::{Direction, Level, Message, PluginError, Stage};
use std::fmt;

impl Message {
    /// A message named `name` with the raw bytes `content`.
    pub fn new(name: impl Into<String>, content: impl Into<Vec<u8>>) -> Self {
        Message {
            name: name.into(),
            content: content.into(),
        }
    }
}

impl PluginError {
    /// The input is bad (the message's own fault): `PluginError::Rejected`.
    pub fn rejected(reason: impl Into<String>) -> Self {
        PluginError::Rejected(reason.into())
    }

    /// The plugin could not work (its own or its environment's fault):
    /// `PluginError::Failed`.
    pub fn failed(reason: impl Into<String>) -> Self {
        PluginError::Failed(reason.into())
    }

    /// The reason, whichever the variant.
    pub fn reason(&self) -> &str {
        match self {
            PluginError::Rejected(r) | PluginError::Failed(r) => r,
        }
    }
}

impl From<crate::EnvelopeError> for PluginError {
    /// A document that is not the envelope it should be is the message's
    /// fault: `rejected`.
    fn from(e: crate::EnvelopeError) -> Self {
        PluginError::Rejected(e.to_string())
    }
}

impl Direction {
    /// `"inbound"` or `"outbound"`, as in the WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

impl fmt::Display for Direction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Stage {
    /// `"transform"`, `"pipeline"` or `"service"`, as in the WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Transform => "transform",
            Stage::Pipeline => "pipeline",
            Stage::Service => "service",
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Level {
    /// `"trace"`, `"debug"`, `"info"`, `"warn"` or `"error"`, as in the WIT.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Trace => "trace",
            Level::Debug => "debug",
            Level::Info => "info",
            Level::Warn => "warn",
            Level::Error => "error",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
