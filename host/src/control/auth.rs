//! Who may use the control API and the console: bearer tokens with a role.
//!
//! At start the host makes sure `DATA_DIR/console/operator.token` and
//! `DATA_DIR/console/viewer.token` exist — each a random 256-bit token in
//! hex, created once and kept across restarts (delete a file to rotate its
//! token) — readable by the host's user only (the folder 0700, the files
//! 0600). The CLI of that user reads them to talk to the running host.
//! `[console.tokens.NAME]` adds tokens by their sha256, each with a role
//! and a name that the audit log records.
//!
//! Tokens are compared by their sha256 in constant time. The console keeps
//! the token in an HttpOnly, SameSite=Strict cookie and puts a CSRF token
//! derived from it (a keyed hash another site cannot compute) in every
//! form.

use std::io::Write as _;
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use crate::config::{ConsoleConfig, Role};

/// The folder of the console's files in the data directory.
pub const FOLDER: &str = "console";

/// The token file of a role.
pub fn token_file(data_dir: &Path, role: Role) -> PathBuf {
    data_dir.join(FOLDER).join(format!("{}.token", role.word()))
}

/// Who a token belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its name (`operator`/`viewer` for the data directory's tokens).
    pub name: String,
    /// What it allows.
    pub role: Role,
}

/// The tokens the host accepts.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    known: Vec<([u8; 32], Identity)>,
}

fn sha256(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

/// Equal, in time that does not depend on where they differ.
fn same(a: &[u8; 32], b: &[u8; 32]) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// A new random token: 32 bytes, hex.
pub fn new_token() -> std::io::Result<String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| std::io::Error::other(e.to_string()))?;
    Ok(hex::encode(bytes))
}

/// Reads a token file (trimmed); an empty or short one is no token.
pub fn read_token(path: &Path) -> std::io::Result<String> {
    let text = std::fs::read_to_string(path)?;
    let t = text.trim().to_string();
    if t.len() < 32 {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{} holds no token (expected 64 hex digits)", path.display()),
        ));
    }
    Ok(t)
}

/// Makes sure the token file of `role` exists with a token and mode 0600;
/// returns the token.
fn ensure_file(data_dir: &Path, role: Role) -> std::io::Result<String> {
    let path = token_file(data_dir, role);
    if let Ok(t) = read_token(&path) {
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
        return Ok(t);
    }
    let token = new_token()?;
    let tmp = path.with_file_name(format!(".{}.token.tmp", role.word()));
    let _ = std::fs::remove_file(&tmp);
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)?;
    writeln!(f, "{token}")?;
    f.sync_all()?;
    std::fs::rename(&tmp, &path)?;
    Ok(token)
}

impl Tokens {
    /// The data directory's two tokens (created if needed) and the
    /// configured ones.
    pub fn load(data_dir: &Path, config: &ConsoleConfig) -> std::io::Result<Tokens> {
        let dir = data_dir.join(FOLDER);
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        let mut known = Vec::new();
        for role in [Role::Operator, Role::Viewer] {
            let token = ensure_file(data_dir, role)?;
            known.push((
                sha256(&token),
                Identity {
                    name: role.word().to_string(),
                    role,
                },
            ));
        }
        for t in &config.tokens {
            let mut hash = [0u8; 32];
            if hex::decode_to_slice(&t.sha256, &mut hash).is_ok() {
                known.push((
                    hash,
                    Identity {
                        name: t.name.clone(),
                        role: t.role,
                    },
                ));
            }
        }
        Ok(Tokens { known })
    }

    /// Tokens from a list (tests).
    pub fn from_list(list: &[(&str, &str, Role)]) -> Tokens {
        Tokens {
            known: list
                .iter()
                .map(|(token, name, role)| {
                    (
                        sha256(token),
                        Identity {
                            name: name.to_string(),
                            role: *role,
                        },
                    )
                })
                .collect(),
        }
    }

    /// Whose token this is, if any.
    pub fn check(&self, token: &str) -> Option<Identity> {
        let h = sha256(token.trim());
        let mut found = None;
        // Every entry is compared, so the time does not tell which matched.
        for (k, id) in &self.known {
            if same(k, &h) && found.is_none() {
                found = Some(id.clone());
            }
        }
        found
    }
}

/// The CSRF token of the console's forms for a session holding `token`:
/// a hash keyed by the token, which a page of another site cannot know.
pub fn csrf_for(token: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"ferry-console-csrf\0");
    h.update(token.trim().as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Whether `given` is the CSRF token of `token`'s session.
pub fn csrf_ok(token: &str, given: &str) -> bool {
    let want = sha256(&csrf_for(token));
    same(&want, &sha256(given.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_created_once_private_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = ConsoleConfig {
            tokens: vec![crate::config::NamedToken {
                name: "alice".into(),
                role: Role::Viewer,
                sha256: hex::encode(sha256("alice-secret")),
            }],
            ..ConsoleConfig::default()
        };
        let t = Tokens::load(dir.path(), &cfg).unwrap();
        let op = read_token(&token_file(dir.path(), Role::Operator)).unwrap();
        let view = read_token(&token_file(dir.path(), Role::Viewer)).unwrap();
        assert_ne!(op, view);
        assert_eq!(op.len(), 64);
        let mode = std::fs::metadata(token_file(dir.path(), Role::Operator))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(t.check(&op).unwrap().role, Role::Operator);
        assert_eq!(t.check(&view).unwrap().role, Role::Viewer);
        assert_eq!(t.check("alice-secret").unwrap().name, "alice");
        assert!(t.check("nope").is_none());
        assert!(t.check("").is_none());
        // Kept across a restart.
        Tokens::load(dir.path(), &cfg).unwrap();
        assert_eq!(
            read_token(&token_file(dir.path(), Role::Operator)).unwrap(),
            op
        );
    }

    #[test]
    fn csrf_tokens_belong_to_their_session() {
        let c = csrf_for("a");
        assert!(csrf_ok("a", &c));
        assert!(!csrf_ok("b", &c));
        assert!(!csrf_ok("a", ""));
    }
}
