//! # file-adapter
//!
//! Ferry's file-system adapter (world `adapter`), AIF's file system adapter.
//! The port's address is a folder the host grants the plugin (a path inside
//! the sandbox, e.g. `/port`).
//!
//! **Receive**: `begin(address)` lists the folder, skipping subfolders,
//! names that start with `.` (temporary files) and names that do not match
//! `pattern`, sorted alphabetically by file name (byte order).
//! `receive(max)` returns the next `max` files as `accepted(message)`, or as
//! `refused(refusal)` when a file is over `max_file_size` (checked from its
//! metadata before reading) or cannot be read, or when the entry is not a
//! regular file: a symbolic link (never followed) or a FIFO, socket or
//! device (never opened). A file that vanished meanwhile
//! is skipped. `commit(names)` deletes (or moves) exactly those files,
//! ignoring files already gone; `rollback(names)` leaves them.
//!
//! **Send**: `begin(address)`; `send(msg)` writes `.<name>.tmp` in the folder
//! and syncs it; `commit()` renames each temporary file to `<name>` plus
//! `extension` (unless the name already ends with it), so a reader never sees
//! a half-written file; `rollback()` removes the temporary files.
//!
//! ## Options (from the port's configuration)
//!
//! | key | default | meaning |
//! |-----|---------|---------|
//! | `max_file_size` | `10485760` | largest file received, in bytes (AIF's 10 MB) |
//! | `pattern` | `*` | file names to receive: a glob with `*` and `?`; several separated by commas (`*.xml,*.txt`) |
//! | `on_commit` | `delete` | `delete` or `move` the received files on commit |
//! | `move_to` | — | folder (a granted guest path) to move files to; required with `on_commit = "move"` |
//! | `extension` | `.xml` | appended to sent file names (`""` for none) |
//!
//! Errors are `failed("...")` naming the path and the OS error.

use ferry_plugin_sdk::{Adapter, Message, PluginError, Received, Refusal, config, log};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};
use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

/// AIF's limit on one message: 10 MB.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 10 * 1024 * 1024;

/// The file adapter.
pub struct FileAdapter;

ferry_plugin_sdk::export_adapter!(FileAdapter);

/// What to do with a received file once the host has queued it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OnCommit {
    /// Delete it.
    Delete,
    /// Move it into this folder.
    Move(PathBuf),
}

/// Receive-side options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiveOptions {
    /// Largest file received, in bytes.
    pub max_file_size: u64,
    /// Globs a file name must match (one of).
    pub patterns: Vec<String>,
    /// Delete or move on commit.
    pub on_commit: OnCommit,
}

impl ReceiveOptions {
    /// Read the options from the host's configuration.
    pub fn from_config() -> Result<Self, PluginError> {
        let max_file_size =
            config::get_parsed::<u64>("max_file_size")?.unwrap_or(DEFAULT_MAX_FILE_SIZE);
        let mut patterns = config::get_list("pattern");
        if patterns.is_empty() {
            patterns.push("*".to_string());
        }
        let on_commit = match config::get_or("on_commit", "delete").trim() {
            "delete" => OnCommit::Delete,
            "move" => match config::config_get("move_to") {
                Some(dir) if !dir.trim().is_empty() => OnCommit::Move(PathBuf::from(dir.trim())),
                _ => {
                    return Err(PluginError::failed(
                        "option on_commit = \"move\" needs option move_to (a granted folder)",
                    ));
                }
            },
            other => {
                return Err(PluginError::failed(format!(
                    "option `on_commit` = {other:?} is not valid: expected \"delete\" or \"move\""
                )));
            }
        };
        Ok(ReceiveOptions {
            max_file_size,
            patterns,
            on_commit,
        })
    }
}

/// Send-side options.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendOptions {
    /// Appended to file names on commit (`""` for none), starting with `.`.
    pub extension: String,
}

impl SendOptions {
    /// Read the options from the host's configuration.
    pub fn from_config() -> Self {
        let ext = config::get_or("extension", ".xml");
        let ext = ext.trim();
        let extension = if ext.is_empty() || ext.starts_with('.') {
            ext.to_string()
        } else {
            format!(".{ext}")
        };
        SendOptions { extension }
    }
}

/// A receive session: the folder and the files not yet returned.
struct ReceiveSession {
    folder: PathBuf,
    options: ReceiveOptions,
    pending: VecDeque<String>,
}

/// One staged outgoing file.
struct Staged {
    temp: PathBuf,
    target: PathBuf,
}

/// A send session: the folder and the files staged since `begin`.
struct SendSession {
    folder: PathBuf,
    options: SendOptions,
    staged: Vec<Staged>,
    /// The `temp` paths of `staged`: a name sent twice in one session is
    /// found without a scan of `staged` per message.
    temps: HashSet<PathBuf>,
}

thread_local! {
    static RECEIVE: RefCell<Option<ReceiveSession>> = const { RefCell::new(None) };
    static SEND: RefCell<Option<SendSession>> = const { RefCell::new(None) };
}

/// Whether `name` matches the glob `pattern` (`*` any run of characters,
/// `?` one character, anything else itself; case-sensitive).
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == n[ni]) {
            pi += 1;
            ni += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ni));
            pi += 1;
        } else if let Some((sp, sn)) = star {
            pi = sp + 1;
            ni = sn + 1;
            star = Some((sp, sn + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// A file name that stays inside the folder: not empty, no path separator,
/// not `.` or `..`.
fn check_name(name: &str, what: &str) -> Result<(), PluginError> {
    if name.is_empty() || name == "." || name == ".." || name.contains(['/', '\\', '\0']) {
        return Err(PluginError::failed(format!(
            "{what}: invalid file name {name:?}"
        )));
    }
    Ok(())
}

/// The names of the files of `folder` to receive, in order.
pub fn list_folder(folder: &Path, patterns: &[String]) -> Result<Vec<String>, PluginError> {
    // A partner renaming or deleting a file while the folder is listed makes
    // the listing fail with NotFound (WASI stats every entry): list again.
    let mut attempt = 0;
    loop {
        match try_list(folder, patterns) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempt < 10 => attempt += 1,
            Err(e) => {
                return Err(PluginError::failed(format!(
                    "cannot list {}: {e}",
                    folder.display()
                )));
            }
            Ok(names) => return Ok(names),
        }
    }
}

fn try_list(folder: &Path, patterns: &[String]) -> std::io::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in fs::read_dir(folder)? {
        let entry = entry?;
        let file_type = match entry.file_type() {
            Ok(t) => t,
            // Gone since the listing began: not ours to receive.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        // Folders are not sources. Links, FIFOs, sockets and devices are
        // listed so that `load` refuses them, with the reason, instead of
        // leaving them in the folder without a word.
        if file_type.is_dir() {
            continue;
        }
        let Ok(name) = entry.file_name().into_string() else {
            log::warn_with(
                "skipping a file whose name is not UTF-8",
                &[("folder", &folder.display().to_string())],
            );
            continue;
        };
        if name.starts_with('.') || !patterns.iter().any(|p| glob_match(p, &name)) {
            continue;
        }
        names.push(name);
    }
    names.sort();
    Ok(names)
}

/// Load one file: `None` if it vanished (or is now a folder).
pub fn load(folder: &Path, name: &str, max_file_size: u64) -> Option<Received> {
    let path = folder.join(name);
    let too_big = |size: u64| {
        Received::Refused(Refusal::new(
            name,
            format!(
                "file {} is {size} bytes, over the limit of {max_file_size} bytes (max_file_size)",
                path.display()
            ),
        ))
    };
    // Not followed: a link could lead out of the granted folder.
    let meta = match fs::symlink_metadata(&path) {
        Ok(m) => m,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            return Some(Received::Refused(Refusal::new(
                name,
                format!("cannot read {}: {e}", path.display()),
            )));
        }
    };
    if meta.is_dir() {
        return None;
    }
    if meta.is_symlink() {
        return Some(Received::Refused(Refusal::new(
            name,
            format!(
                "{} is a symbolic link, which the file adapter does not follow; put the \
                 file itself in the folder",
                path.display()
            ),
        )));
    }
    if !meta.is_file() {
        return Some(Received::Refused(Refusal::new(
            name,
            format!(
                "{} is not a regular file (a FIFO, socket or device), so it is not read; \
                 remove it from the folder",
                path.display()
            ),
        )));
    }
    if meta.len() > max_file_size {
        return Some(too_big(meta.len()));
    }
    let mut content = Vec::with_capacity(meta.len() as usize);
    let read = fs::File::open(&path).and_then(|f| {
        f.take(max_file_size.saturating_add(1))
            .read_to_end(&mut content)
    });
    match read {
        Ok(n) if n as u64 > max_file_size => Some(too_big(n as u64)),
        Ok(_) => Some(Received::Accepted(Message::new(name, content))),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => Some(Received::Refused(Refusal::new(
            name,
            format!("cannot read {}: {e}", path.display()),
        ))),
    }
}

/// Move `from` to `to`: a rename, or a copy and delete across file systems.
fn move_file(from: &Path, to: &Path) -> std::io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == ErrorKind::CrossesDevices => {
            fs::copy(from, to)?;
            fs::remove_file(from)
        }
        other => other,
    }
}

/// Delete or move the files `names` of `folder`; files already gone are
/// ignored; every other failure is reported, naming the file.
pub fn remove_received(
    folder: &Path,
    names: &[String],
    on_commit: &OnCommit,
) -> Result<usize, PluginError> {
    let mut errors = Vec::new();
    let mut done = 0;
    for name in names {
        if let Err(e) = check_name(name, "commit") {
            errors.push(e.reason().to_string());
            continue;
        }
        let path = folder.join(name);
        let result = match on_commit {
            OnCommit::Delete => {
                fs::remove_file(&path).map_err(|e| (e, format!("cannot delete {}", path.display())))
            }
            OnCommit::Move(dir) => {
                let to = dir.join(name);
                move_file(&path, &to).map_err(|e| {
                    (
                        e,
                        format!("cannot move {} to {}", path.display(), to.display()),
                    )
                })
            }
        };
        match result {
            Ok(()) => done += 1,
            Err((e, _)) if e.kind() == ErrorKind::NotFound && !path.exists() => {}
            Err((e, what)) => errors.push(format!("{what}: {e}")),
        }
    }
    if errors.is_empty() {
        Ok(done)
    } else {
        Err(PluginError::failed(errors.join("; ")))
    }
}

/// The name a sent message gets: `name` plus `extension` unless it already
/// ends with it (ASCII case-insensitively).
pub fn target_name(name: &str, extension: &str) -> String {
    let lower = name.to_ascii_lowercase();
    if extension.is_empty() || lower.ends_with(&extension.to_ascii_lowercase()) {
        name.to_string()
    } else {
        format!("{name}{extension}")
    }
}

/// Write `content` to `path` and sync it.
///
/// The content is written at an offset (`pwrite`, WASI's `descriptor.write`)
/// rather than through the file's output stream (`write`): wasmtime-wasi
/// runs a stream write on tokio's blocking pool, a thread hand-off per file,
/// while a positional write runs on the calling thread when the host allows
/// it (`allow_blocking_current_thread`, as Ferry's sandbox does).
fn write_synced(path: &Path, content: &[u8]) -> std::io::Result<()> {
    let f = fs::File::create(path)?;
    write_all_at(&f, content, 0)?;
    f.sync_all()
}

/// `FileExt::write_all_at`, which is unstable on WASI (`wasi_ext`): wasi-libc's
/// `pwrite`, as std calls it.
#[cfg(target_os = "wasi")]
fn write_all_at(f: &fs::File, mut buf: &[u8], mut offset: u64) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    unsafe extern "C" {
        fn pwrite(fd: i32, buf: *const u8, len: usize, offset: i64) -> isize;
    }
    while !buf.is_empty() {
        let at = i64::try_from(offset).map_err(|_| ErrorKind::InvalidInput)?;
        // SAFETY: `buf` is valid for `buf.len()` bytes and the descriptor
        // belongs to `f`, which outlives the call.
        let n = unsafe { pwrite(f.as_raw_fd(), buf.as_ptr(), buf.len(), at) };
        match n {
            0 => return Err(ErrorKind::WriteZero.into()),
            n if n < 0 => {
                let e = std::io::Error::last_os_error();
                if e.kind() != ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            n => {
                let n = n as usize;
                buf = &buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Natively (the unit tests): std's positional write.
#[cfg(not(target_os = "wasi"))]
fn write_all_at(f: &fs::File, buf: &[u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::write_all_at(f, buf, offset)
}

/// Remove staged temporary files; those already gone are ignored.
fn remove_staged(staged: &mut Vec<Staged>) -> Result<(), PluginError> {
    let mut errors = Vec::new();
    for s in staged.drain(..) {
        match fs::remove_file(&s.temp) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::NotFound => {}
            Err(e) => errors.push(format!("cannot remove {}: {e}", s.temp.display())),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PluginError::failed(errors.join("; ")))
    }
}

fn no_session(what: &str) -> PluginError {
    PluginError::failed(format!("{what} without a session: call begin first"))
}

impl Adapter for FileAdapter {
    fn receive_begin(address: String) -> Result<(), PluginError> {
        let options = ReceiveOptions::from_config()?;
        if let OnCommit::Move(dir) = &options.on_commit {
            match fs::metadata(dir) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => {
                    return Err(PluginError::failed(format!(
                        "move_to {} is not a folder",
                        dir.display()
                    )));
                }
                Err(e) => {
                    return Err(PluginError::failed(format!(
                        "move_to {}: {e}",
                        dir.display()
                    )));
                }
            }
        }
        let folder = PathBuf::from(&address);
        let pending = list_folder(&folder, &options.patterns)?.into();
        RECEIVE.with(|r| {
            *r.borrow_mut() = Some(ReceiveSession {
                folder,
                options,
                pending,
            })
        });
        Ok(())
    }

    fn receive(max: u32) -> Result<Vec<Received>, PluginError> {
        RECEIVE.with(|r| {
            let mut r = r.borrow_mut();
            let session = r.as_mut().ok_or_else(|| no_session("receive"))?;
            let mut out = Vec::new();
            while out.len() < max as usize {
                let Some(name) = session.pending.pop_front() else {
                    break;
                };
                if let Some(entry) = load(&session.folder, &name, session.options.max_file_size) {
                    if let Received::Refused(refusal) = &entry {
                        log::warn_with(
                            "refused a file",
                            &[("file", &name), ("reason", &refusal.reason)],
                        );
                    }
                    out.push(entry);
                }
            }
            Ok(out)
        })
    }

    fn receive_commit(names: Vec<String>) -> Result<(), PluginError> {
        RECEIVE.with(|r| {
            let r = r.borrow();
            let session = r.as_ref().ok_or_else(|| no_session("commit"))?;
            let done = remove_received(&session.folder, &names, &session.options.on_commit)?;
            log::debug_with(
                "committed received files",
                &[
                    ("files", &names.len().to_string()),
                    ("removed", &done.to_string()),
                ],
            );
            Ok(())
        })
    }

    fn receive_rollback(_names: Vec<String>) -> Result<(), PluginError> {
        // The files stay where they are, to be received again.
        Ok(())
    }

    fn send_begin(address: String) -> Result<(), PluginError> {
        let folder = PathBuf::from(&address);
        match fs::metadata(&folder) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => return Err(PluginError::failed(format!("{address} is not a folder"))),
            Err(e) => return Err(PluginError::failed(format!("cannot open {address}: {e}"))),
        }
        // A session left unfinished is withdrawn.
        let previous = SEND.with(|s| s.borrow_mut().take());
        if let Some(mut old) = previous {
            remove_staged(&mut old.staged)?;
        }
        let options = SendOptions::from_config();
        SEND.with(|s| {
            *s.borrow_mut() = Some(SendSession {
                folder,
                options,
                staged: Vec::new(),
                temps: HashSet::new(),
            })
        });
        Ok(())
    }

    fn send(msg: Message) -> Result<(), PluginError> {
        check_name(&msg.name, "send")?;
        SEND.with(|s| {
            let mut s = s.borrow_mut();
            let session = s.as_mut().ok_or_else(|| no_session("send"))?;
            let temp = session.folder.join(format!(".{}.tmp", msg.name));
            let target = session
                .folder
                .join(target_name(&msg.name, &session.options.extension));
            if let Err(e) = write_synced(&temp, &msg.content) {
                let _ = fs::remove_file(&temp);
                return Err(PluginError::failed(format!(
                    "cannot write {}: {e}",
                    temp.display()
                )));
            }
            if !session.temps.insert(temp.clone()) {
                // Sent again in this session: the new content replaces it.
                session.staged.retain(|st| st.temp != temp);
            }
            session.staged.push(Staged { temp, target });
            Ok(())
        })
    }

    fn send_commit() -> Result<(), PluginError> {
        SEND.with(|s| {
            let mut s = s.borrow_mut();
            let session = s.as_mut().ok_or_else(|| no_session("commit"))?;
            // The files renamed leave the session; on a failure, the rest
            // (from the one that failed) stay staged.
            let mut renamed = 0;
            let mut result = Ok(());
            for st in &session.staged {
                if let Err(e) = fs::rename(&st.temp, &st.target) {
                    result = Err(PluginError::failed(format!(
                        "cannot rename {} to {}: {e}",
                        st.temp.display(),
                        st.target.display()
                    )));
                    break;
                }
                renamed += 1;
            }
            for st in session.staged.drain(..renamed) {
                session.temps.remove(&st.temp);
            }
            result
        })
    }

    fn send_rollback() -> Result<(), PluginError> {
        SEND.with(|s| match s.borrow_mut().as_mut() {
            Some(session) => {
                session.temps.clear();
                remove_staged(&mut session.staged)
            }
            None => Ok(()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ferry_plugin_sdk::testing;

    /// A fresh folder under the system temp dir, removed on drop.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(tag: &str) -> Self {
            let p = std::env::temp_dir().join(format!(
                "ferry-file-adapter-{tag}-{}-{:?}",
                std::process::id(),
                std::thread::current().id()
            ));
            let _ = fs::remove_dir_all(&p);
            fs::create_dir_all(&p).unwrap();
            TempDir(p)
        }
        fn path(&self) -> String {
            self.0.display().to_string()
        }
        fn names(&self) -> Vec<String> {
            let mut v: Vec<String> = fs::read_dir(&self.0)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            v.sort();
            v
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn names_of(entries: &[Received]) -> Vec<String> {
        entries.iter().map(|e| e.name().to_string()).collect()
    }

    #[test]
    fn globs() {
        assert!(glob_match("*", "a.xml"));
        assert!(glob_match("*.xml", "a.xml"));
        assert!(!glob_match("*.xml", "a.xml.bak"));
        assert!(glob_match("order_??.xml", "order_01.xml"));
        assert!(!glob_match("order_??.xml", "order_1.xml"));
        assert!(glob_match("a*b*c", "aXbYYc"));
        assert!(!glob_match("a*b*c", "aXbYY"));
        assert!(glob_match("", ""));
        assert!(!glob_match("", "a"));
    }

    #[test]
    fn target_names() {
        assert_eq!(target_name("resp_1", ".xml"), "resp_1.xml");
        assert_eq!(target_name("resp_1.XML", ".xml"), "resp_1.XML");
        assert_eq!(target_name("resp_1", ""), "resp_1");
    }

    #[test]
    fn receives_in_name_order_and_refuses_big_files() {
        testing::reset();
        testing::set_config(&[("max_file_size", "10"), ("pattern", "*.xml, *.txt")]);
        let dir = TempDir::new("recv");
        for (name, content) in [
            ("b.xml", "bbb"),
            ("a.xml", "aaa"),
            ("C.xml", "ccc"),
            ("big.xml", "0123456789A"),
            (".hidden.xml", "h"),
            ("skip.csv", "x"),
            ("n.txt", "n"),
        ] {
            fs::write(dir.0.join(name), content).unwrap();
        }
        fs::create_dir(dir.0.join("sub.xml")).unwrap();
        FileAdapter::receive_begin(dir.path()).unwrap();
        let first = FileAdapter::receive(2).unwrap();
        assert_eq!(names_of(&first), vec!["C.xml", "a.xml"]);
        match &first[1] {
            Received::Accepted(m) => assert_eq!(m.content, b"aaa"),
            other => panic!("{other:?}"),
        }
        let rest = FileAdapter::receive(10).unwrap();
        assert_eq!(names_of(&rest), vec!["b.xml", "big.xml", "n.txt"]);
        match &rest[1] {
            Received::Refused(r) => {
                assert!(
                    r.reason.contains("11 bytes") && r.reason.contains("limit of 10 bytes"),
                    "{}",
                    r.reason
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(FileAdapter::receive(10).unwrap().is_empty());
        assert_eq!(
            testing::logs()
                .iter()
                .filter(|l| l.message == "refused a file")
                .count(),
            1
        );

        // Rollback leaves the files; commit deletes exactly the names given.
        FileAdapter::receive_rollback(vec!["a.xml".into()]).unwrap();
        assert!(dir.0.join("a.xml").exists());
        FileAdapter::receive_commit(vec!["a.xml".into(), "big.xml".into(), "gone.xml".into()])
            .unwrap();
        assert_eq!(
            dir.names(),
            vec![
                ".hidden.xml",
                "C.xml",
                "b.xml",
                "n.txt",
                "skip.csv",
                "sub.xml"
            ]
        );
        let err = FileAdapter::receive_commit(vec!["../x".into()]).unwrap_err();
        assert!(err.reason().contains("invalid file name"));
        let err = FileAdapter::receive_commit(vec!["sub.xml".into()]).unwrap_err();
        assert!(err.reason().contains("sub.xml"), "{err:?}");
    }

    #[test]
    fn a_vanished_file_is_skipped() {
        testing::reset();
        let dir = TempDir::new("vanish");
        fs::write(dir.0.join("1.xml"), "1").unwrap();
        fs::write(dir.0.join("2.xml"), "2").unwrap();
        FileAdapter::receive_begin(dir.path()).unwrap();
        fs::remove_file(dir.0.join("1.xml")).unwrap();
        assert_eq!(names_of(&FileAdapter::receive(5).unwrap()), vec!["2.xml"]);
    }

    #[test]
    fn commit_moves_when_asked() {
        testing::reset();
        let dir = TempDir::new("move-src");
        let archive = TempDir::new("move-dst");
        testing::set_config(&[("on_commit", "move"), ("move_to", &archive.path())]);
        fs::write(dir.0.join("1.xml"), "1").unwrap();
        FileAdapter::receive_begin(dir.path()).unwrap();
        assert_eq!(FileAdapter::receive(5).unwrap().len(), 1);
        FileAdapter::receive_commit(vec!["1.xml".into()]).unwrap();
        assert!(dir.names().is_empty());
        assert_eq!(archive.names(), vec!["1.xml"]);
    }

    #[test]
    fn bad_options_fail() {
        testing::reset();
        let dir = TempDir::new("opts");
        testing::set_config(&[("on_commit", "move")]);
        assert!(
            FileAdapter::receive_begin(dir.path())
                .unwrap_err()
                .reason()
                .contains("move_to")
        );
        testing::set_config(&[("on_commit", "shred")]);
        assert!(
            FileAdapter::receive_begin(dir.path())
                .unwrap_err()
                .reason()
                .contains("shred")
        );
        testing::set_config(&[("max_file_size", "big")]);
        assert!(
            FileAdapter::receive_begin(dir.path())
                .unwrap_err()
                .reason()
                .contains("max_file_size")
        );
        testing::set_config(&[]);
        let err =
            FileAdapter::receive_begin(dir.0.join("missing").display().to_string()).unwrap_err();
        assert!(
            matches!(err, PluginError::Failed(ref r) if r.contains("missing")),
            "{err:?}"
        );
    }

    #[test]
    fn a_name_sent_twice_in_a_session_is_written_once_with_the_last_content() {
        testing::reset();
        let dir = TempDir::new("twice");
        FileAdapter::send_begin(dir.path()).unwrap();
        FileAdapter::send(Message::new("r", b"first, longer".to_vec())).unwrap();
        FileAdapter::send(Message::new("s", b"2".to_vec())).unwrap();
        FileAdapter::send(Message::new("r", b"3".to_vec())).unwrap();
        FileAdapter::send_commit().unwrap();
        assert_eq!(dir.names(), vec!["r.xml", "s.xml"]);
        assert_eq!(fs::read(dir.0.join("r.xml")).unwrap(), b"3");
        // Nothing is left staged: a second commit renames nothing.
        FileAdapter::send_commit().unwrap();
        FileAdapter::send(Message::new("r", b"4".to_vec())).unwrap();
        FileAdapter::send_rollback().unwrap();
        assert_eq!(dir.names(), vec!["r.xml", "s.xml"]);
        assert_eq!(fs::read(dir.0.join("r.xml")).unwrap(), b"3");
    }

    #[test]
    fn sends_through_temp_files() {
        testing::reset();
        let dir = TempDir::new("send");
        FileAdapter::send_begin(dir.path()).unwrap();
        FileAdapter::send(Message::new("resp_1", b"<a/>".to_vec())).unwrap();
        FileAdapter::send(Message::new("resp_2.xml", b"<b/>".to_vec())).unwrap();
        assert_eq!(dir.names(), vec![".resp_1.tmp", ".resp_2.xml.tmp"]);
        FileAdapter::send_commit().unwrap();
        assert_eq!(dir.names(), vec!["resp_1.xml", "resp_2.xml"]);
        assert_eq!(fs::read(dir.0.join("resp_1.xml")).unwrap(), b"<a/>");

        testing::set_config(&[("extension", "txt")]);
        FileAdapter::send_begin(dir.path()).unwrap();
        FileAdapter::send(Message::new("r3", b"3".to_vec())).unwrap();
        FileAdapter::send_rollback().unwrap();
        assert_eq!(dir.names(), vec!["resp_1.xml", "resp_2.xml"]);
        FileAdapter::send(Message::new("r4", b"4".to_vec())).unwrap();
        FileAdapter::send_commit().unwrap();
        assert_eq!(dir.names(), vec!["r4.txt", "resp_1.xml", "resp_2.xml"]);
        assert!(FileAdapter::send(Message::new("a/b", b"x".to_vec())).is_err());
    }
}
