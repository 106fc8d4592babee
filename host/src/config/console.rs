//! `[console]`: the control API and web console of a running host — where
//! it listens and which tokens it accepts besides the ones it writes into
//! the data directory.
//!
//! ```toml
//! [console]
//! listen = "127.0.0.1:7480"      # the default; "" turns the console off
//!
//! [console.tokens.alice]          # a named token: its name is "who" in the audit log
//! role = "operator"               # or "viewer"
//! sha256 = "9f86d081…"            # sha256 of the token: printf %s TOKEN | sha256sum
//! ```

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::ops::Range;

use serde::{Deserialize, Serialize};
use toml::Spanned;

/// The address the console listens on when the file does not say.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7480";

/// What a token allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// Read: lists, messages, exceptions, jobs, plugins, the audit log,
    /// metrics. Never a change.
    Viewer,
    /// Read and act: hold, release, resubmit, edit, delete, bulk actions,
    /// job actions.
    Operator,
}

impl Role {
    /// "viewer" or "operator".
    pub fn word(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
        }
    }
}

/// A token given in the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NamedToken {
    /// Its name (the table's key): who acted, in the audit log.
    pub name: String,
    /// What it allows.
    pub role: Role,
    /// The sha256 of the token, lower-case hex.
    pub sha256: String,
}

/// The console's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleConfig {
    /// Where to listen; `None`: the console is off.
    pub listen: Option<SocketAddr>,
    /// Whether `listen` was written in the file. The default address, when
    /// taken (another host on the machine), falls back to a free port; an
    /// address the file names is used or the host does not start.
    pub explicit: bool,
    /// The configured tokens.
    pub tokens: Vec<NamedToken>,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            listen: DEFAULT_LISTEN.parse().ok(),
            explicit: false,
            tokens: Vec::new(),
        }
    }
}

/// `[console]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConsole {
    listen: Option<Spanned<String>>,
    #[serde(default)]
    tokens: BTreeMap<String, RawToken>,
}

/// `[console.tokens.NAME]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToken {
    role: Role,
    sha256: Spanned<String>,
}

/// Reads `[console]`; each problem goes to `problem(span, key, message)`.
pub(crate) fn parse(
    raw: Option<Spanned<RawConsole>>,
    problem: &mut dyn FnMut(Range<usize>, &str, String),
) -> ConsoleConfig {
    let mut out = ConsoleConfig::default();
    let Some(raw) = raw else {
        return out;
    };
    let raw = raw.into_inner();
    if let Some(listen) = raw.listen {
        out.explicit = true;
        let text = listen.get_ref().trim();
        out.listen = if text.is_empty() {
            None
        } else {
            let text = text.replace("localhost:", "127.0.0.1:");
            match text.parse::<SocketAddr>() {
                Ok(a) => Some(a),
                Err(e) => {
                    problem(
                        listen.span(),
                        "console.listen",
                        format!(
                            "{:?} is not an address to listen on ({e}); write IP:PORT such as \
                             \"{DEFAULT_LISTEN}\", or \"\" to turn the console off",
                            listen.get_ref()
                        ),
                    );
                    None
                }
            }
        };
    }
    for (name, t) in raw.tokens {
        let hash = t.sha256.get_ref().trim().to_ascii_lowercase();
        let hash = hash.strip_prefix("sha256:").unwrap_or(&hash).to_string();
        if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
            problem(
                t.sha256.span(),
                &format!("console.tokens.{name}.sha256"),
                "must be the 64 hex digits of the token's sha256 (printf %s TOKEN | sha256sum)"
                    .to_string(),
            );
            continue;
        }
        out.tokens.push(NamedToken {
            name,
            role: t.role,
            sha256: hash,
        });
    }
    out
}
