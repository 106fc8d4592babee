//! # file-adapter
//!
//! Ferry's file-system adapter (world `adapter`), AIF's file system adapter.
//! The port's address is a folder the host grants the plugin (a path inside
//! the sandbox, e.g. `/port`).
//!
//! The folders are reached through the host's `files` interface, many
//! files per call: one call lists the folder, one reads a receive batch,
//! one deletes (or moves) the committed files; on the send side one writes
//! a batch of messages, one renames them into place.
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
//! **Send**: `begin(address)`; `send(msgs)` writes each `.<name>.tmp` in the
//! folder (synced, in place: `files.write-in-place`, so the adapter needs a
//! host of `ferry:plugin@0.2.1`); `commit()` renames each temporary file to `<name>` plus
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

use ferry_plugin_sdk::files::{self, File, FileError, Kind};
use ferry_plugin_sdk::{Adapter, Message, PluginError, Received, Refusal, config, log};
use std::cell::RefCell;
use std::collections::{HashSet, VecDeque};

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
    /// Move it into this folder (a granted path).
    Move(String),
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
                Some(dir) if !dir.trim().is_empty() => {
                    OnCommit::Move(dir.trim().trim_end_matches('/').to_string())
                }
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
    folder: String,
    options: ReceiveOptions,
    pending: VecDeque<files::Entry>,
}

/// One staged outgoing file.
struct Staged {
    temp: String,
    target: String,
}

/// A send session: the folder and the files staged since `begin`.
struct SendSession {
    folder: String,
    options: SendOptions,
    staged: Vec<Staged>,
    /// The `temp` paths of `staged`: a name sent twice in one session is
    /// found without a scan of `staged` per message.
    temps: HashSet<String>,
}

/// `folder/name`, as the files interface takes it.
fn join(folder: &str, name: &str) -> String {
    join_parts(folder, &["", name, ""])
}

/// `folder/` followed by `parts` concatenated: one allocation, no
/// formatting machinery (this runs for every file).
fn join_parts(folder: &str, parts: &[&str]) -> String {
    let folder = folder.trim_end_matches('/');
    let len = folder.len() + 1 + parts.iter().map(|p| p.len()).sum::<usize>();
    let mut path = String::with_capacity(len);
    path.push_str(folder);
    path.push('/');
    for p in parts {
        path.push_str(p);
    }
    path
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
    // Bytes, not chars: the three are ASCII, and a char pattern costs a
    // UTF-8 decode per character in the guest.
    if name.is_empty()
        || name == "."
        || name == ".."
        || name.bytes().any(|b| matches!(b, b'/' | b'\\' | 0))
    {
        return Err(PluginError::failed(format!(
            "{what}: invalid file name {name:?}"
        )));
    }
    Ok(())
}

/// The entries of `folder` to receive, in order: not folders, not names
/// starting with `.`, names matching one of `patterns`. Links, FIFOs,
/// sockets and devices are kept, so that `receive` refuses them with the
/// reason instead of leaving them in the folder without a word.
pub fn list_folder(folder: &str, patterns: &[String]) -> Result<Vec<files::Entry>, PluginError> {
    let entries = files::list(folder)
        .map_err(|e| PluginError::failed(format!("cannot list {folder}: {}", e.message())))?;
    Ok(entries
        .into_iter()
        .filter(|e| e.kind != Kind::Directory)
        .filter(|e| !e.name.starts_with('.') && patterns.iter().any(|p| glob_match(p, &e.name)))
        .collect())
}

/// The refusal of a file over the size limit.
fn too_big(folder: &str, name: &str, size: u64, max: u64) -> Received {
    Received::Refused(Refusal::new(
        name,
        format!(
            "file {} is {size} bytes, over the limit of {max} bytes (max_file_size)",
            join(folder, name)
        ),
    ))
}

/// The refusal of an entry that is not a regular file.
fn not_a_file(folder: &str, name: &str, kind: Kind) -> Received {
    let path = join(folder, name);
    Received::Refused(Refusal::new(
        name,
        if kind == Kind::Symlink {
            format!(
                "{path} is a symbolic link, which the file adapter does not follow; put the \
                 file itself in the folder"
            )
        } else {
            format!(
                "{path} is not a regular file (a FIFO, socket or device), so it is not read; \
                 remove it from the folder"
            )
        },
    ))
}

/// Load the entries `batch` of `folder` with one host call: accepted,
/// refused, or left out when a file vanished meanwhile.
pub fn load(folder: &str, batch: Vec<files::Entry>, max_file_size: u64) -> Vec<Received> {
    let mut out: Vec<Option<Received>> = Vec::with_capacity(batch.len());
    let mut to_read: Vec<(usize, String)> = Vec::new();
    for e in &batch {
        match e.kind {
            Kind::File if e.size > max_file_size => {
                out.push(Some(too_big(folder, &e.name, e.size, max_file_size)))
            }
            Kind::File => {
                to_read.push((out.len(), e.name.clone()));
                out.push(None);
            }
            kind => out.push(Some(not_a_file(folder, &e.name, kind))),
        }
    }
    let paths: Vec<String> = to_read.iter().map(|(_, n)| join(folder, n)).collect();
    for ((at, name), result) in to_read.into_iter().zip(files::read(&paths, max_file_size)) {
        out[at] = match result {
            Ok(content) => Some(Received::Accepted(Message::new(name, content))),
            // Gone since the listing: not ours to receive.
            Err(FileError::NotFound) => None,
            Err(FileError::TooLarge(n)) => Some(too_big(folder, &name, n, max_file_size)),
            Err(FileError::NotAFile) => Some(not_a_file(folder, &name, Kind::Other)),
            Err(e) => Some(Received::Refused(Refusal::new(
                &name,
                format!("cannot read {}: {}", join(folder, &name), e.message()),
            ))),
        };
    }
    out.into_iter().flatten().collect()
}

/// Delete or move the files `names` of `folder` with one host call; files
/// already gone are ignored; every other failure is reported, naming the
/// file.
pub fn remove_received(
    folder: &str,
    names: &[String],
    on_commit: &OnCommit,
) -> Result<usize, PluginError> {
    let mut errors = Vec::new();
    let mut valid = Vec::new();
    for name in names {
        match check_name(name, "commit") {
            Ok(()) => valid.push(name),
            Err(e) => errors.push(e.reason().to_string()),
        }
    }
    let results = match on_commit {
        OnCommit::Delete => {
            let paths: Vec<String> = valid.iter().map(|n| join(folder, n)).collect();
            files::remove(&paths)
        }
        OnCommit::Move(dir) => {
            let pairs: Vec<(String, String)> = valid
                .iter()
                .map(|n| (join(folder, n), join(dir, n)))
                .collect();
            files::rename(&pairs)
        }
    };
    let mut done = 0;
    for (name, r) in valid.iter().zip(results) {
        match r {
            Ok(()) => done += 1,
            Err(FileError::NotFound) => {}
            Err(e) => errors.push(match on_commit {
                OnCommit::Delete => {
                    format!("cannot delete {}: {}", join(folder, name), e.message())
                }
                OnCommit::Move(dir) => format!(
                    "cannot move {} to {}: {}",
                    join(folder, name),
                    join(dir, name),
                    e.message()
                ),
            }),
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
    let has = name.len() >= extension.len()
        && name.as_bytes()[name.len() - extension.len()..]
            .eq_ignore_ascii_case(extension.as_bytes());
    let mut target = String::with_capacity(name.len() + extension.len());
    target.push_str(name);
    if !has {
        target.push_str(extension);
    }
    target
}

/// Remove staged temporary files with one host call; those already gone
/// are ignored.
fn remove_staged(staged: &mut Vec<Staged>) -> Result<(), PluginError> {
    let paths: Vec<String> = staged.drain(..).map(|s| s.temp).collect();
    let errors: Vec<String> = paths
        .iter()
        .zip(files::remove(&paths))
        .filter_map(|(p, r)| match r {
            Ok(()) | Err(FileError::NotFound) => None,
            Err(e) => Some(format!("cannot remove {p}: {}", e.message())),
        })
        .collect();
    if errors.is_empty() {
        Ok(())
    } else {
        Err(PluginError::failed(errors.join("; ")))
    }
}

/// `failed` unless `path` is a folder (one host call).
fn folder_exists(path: &str, what: &str) -> Result<(), PluginError> {
    match files::stat(&[path.to_string()]).pop() {
        Some(Ok(e)) if e.kind == Kind::Directory => Ok(()),
        Some(Ok(_)) => Err(PluginError::failed(format!("{what}{path} is not a folder"))),
        Some(Err(e)) => Err(PluginError::failed(format!(
            "cannot open {what}{path}: {}",
            e.message()
        ))),
        None => Err(PluginError::failed(format!("cannot open {what}{path}"))),
    }
}

fn no_session(what: &str) -> PluginError {
    PluginError::failed(format!("{what} without a session: call begin first"))
}

impl Adapter for FileAdapter {
    fn receive_begin(address: String) -> Result<(), PluginError> {
        let options = ReceiveOptions::from_config()?;
        if let OnCommit::Move(dir) = &options.on_commit {
            folder_exists(dir, "move_to ")?;
        }
        let pending = list_folder(&address, &options.patterns)?.into();
        RECEIVE.with(|r| {
            *r.borrow_mut() = Some(ReceiveSession {
                folder: address,
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
            // Files that vanished are left out: read on until `max` or the
            // end of the listing.
            while out.len() < max as usize && !session.pending.is_empty() {
                let take = (max as usize - out.len()).min(session.pending.len());
                let batch: Vec<files::Entry> = session.pending.drain(..take).collect();
                out.extend(load(&session.folder, batch, session.options.max_file_size));
            }
            for entry in &out {
                if let Received::Refused(refusal) = entry {
                    log::warn_with(
                        "refused a file",
                        &[("file", &refusal.name), ("reason", &refusal.reason)],
                    );
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
            if log::enabled(ferry_plugin_sdk::Level::Debug) {
                log::debug_with(
                    "committed received files",
                    &[
                        ("files", &names.len().to_string()),
                        ("removed", &done.to_string()),
                    ],
                );
            }
            Ok(())
        })
    }

    fn receive_rollback(_names: Vec<String>) -> Result<(), PluginError> {
        // The files stay where they are, to be received again.
        Ok(())
    }

    fn send_begin(address: String) -> Result<(), PluginError> {
        folder_exists(&address, "")?;
        // A session left unfinished is withdrawn.
        let previous = SEND.with(|s| s.borrow_mut().take());
        if let Some(mut old) = previous {
            remove_staged(&mut old.staged)?;
        }
        let options = SendOptions::from_config();
        SEND.with(|s| {
            *s.borrow_mut() = Some(SendSession {
                folder: address,
                options,
                staged: Vec::new(),
                temps: HashSet::new(),
            })
        });
        Ok(())
    }

    fn send(msgs: Vec<Message>) -> Vec<Result<(), PluginError>> {
        SEND.with(|s| {
            let mut s = s.borrow_mut();
            let Some(session) = s.as_mut() else {
                return msgs.iter().map(|_| Err(no_session("send"))).collect();
            };
            // Each message to its hidden temporary file, all in one host
            // call, each synced; in place (no rename of its own): the file
            // is only a stage, published by the rename of `commit`.
            let mut results: Vec<Result<(), PluginError>> = Vec::with_capacity(msgs.len());
            let mut writes: Vec<(usize, Staged)> = Vec::new();
            let mut batch: Vec<File> = Vec::new();
            for msg in msgs {
                match check_name(&msg.name, "send") {
                    Err(e) => results.push(Err(e)),
                    Ok(()) => {
                        let temp = join_parts(&session.folder, &[".", &msg.name, ".tmp"]);
                        let target = join(
                            &session.folder,
                            &target_name(&msg.name, &session.options.extension),
                        );
                        writes.push((
                            results.len(),
                            Staged {
                                temp: temp.clone(),
                                target,
                            },
                        ));
                        batch.push(File {
                            path: temp,
                            content: msg.content,
                        });
                        results.push(Ok(()));
                    }
                }
            }
            let written = files::write_in_place(&batch);
            for ((at, staged), written) in writes.into_iter().zip(written) {
                match written {
                    Ok(()) => {
                        if !session.temps.insert(staged.temp.clone()) {
                            // Sent again in this session: the new content
                            // replaces it.
                            session.staged.retain(|st| st.temp != staged.temp);
                        }
                        session.staged.push(staged);
                    }
                    Err(e) => {
                        results[at] = Err(PluginError::failed(format!(
                            "cannot write {}: {}",
                            staged.temp,
                            e.message()
                        )))
                    }
                }
            }
            results
        })
    }

    fn send_commit() -> Result<(), PluginError> {
        SEND.with(|s| {
            let mut s = s.borrow_mut();
            let session = s.as_mut().ok_or_else(|| no_session("commit"))?;
            // One host call renames them all; the files renamed leave the
            // session, those that failed stay staged.
            let pairs: Vec<(String, String)> = session
                .staged
                .iter()
                .map(|st| (st.temp.clone(), st.target.clone()))
                .collect();
            let results = files::rename(&pairs);
            let mut errors = Vec::new();
            let mut kept = Vec::new();
            for (st, r) in session.staged.drain(..).zip(results) {
                match r {
                    Ok(()) => {
                        session.temps.remove(&st.temp);
                    }
                    Err(e) => {
                        errors.push(format!(
                            "cannot rename {} to {}: {}",
                            st.temp,
                            st.target,
                            e.message()
                        ));
                        kept.push(st);
                    }
                }
            }
            session.staged = kept;
            if errors.is_empty() {
                Ok(())
            } else {
                Err(PluginError::failed(errors.join("; ")))
            }
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
    use std::fs;
    use std::path::PathBuf;

    /// `send` of one message.
    fn send1(msg: Message) -> Result<(), PluginError> {
        FileAdapter::send(vec![msg]).pop().expect("one result")
    }

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
        assert_eq!(target_name("a.xm", ".xml"), "a.xm.xml");
        assert_eq!(target_name("x", ".xml"), "x.xml");
        assert_eq!(target_name("été.Xml", ".xml"), "été.Xml");
        assert_eq!(target_name("été", ".xml"), "été.xml");
    }

    #[test]
    fn paths_and_names() {
        assert_eq!(join("/port", "a.xml"), "/port/a.xml");
        assert_eq!(join("/port//", "a.xml"), "/port/a.xml");
        assert_eq!(join_parts("/port/", &[".", "a", ".tmp"]), "/port/.a.tmp");
        for bad in ["", ".", "..", "a/b", "a\\b", "a\0b"] {
            assert!(check_name(bad, "send").is_err(), "{bad:?}");
        }
        for good in ["a.xml", "..a", "{ID}.xml", "é"] {
            assert!(check_name(good, "send").is_ok(), "{good:?}");
        }
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
        send1(Message::new("r", b"first, longer".to_vec())).unwrap();
        send1(Message::new("s", b"2".to_vec())).unwrap();
        send1(Message::new("r", b"3".to_vec())).unwrap();
        FileAdapter::send_commit().unwrap();
        assert_eq!(dir.names(), vec!["r.xml", "s.xml"]);
        assert_eq!(fs::read(dir.0.join("r.xml")).unwrap(), b"3");
        // Nothing is left staged: a second commit renames nothing.
        FileAdapter::send_commit().unwrap();
        send1(Message::new("r", b"4".to_vec())).unwrap();
        FileAdapter::send_rollback().unwrap();
        assert_eq!(dir.names(), vec!["r.xml", "s.xml"]);
        assert_eq!(fs::read(dir.0.join("r.xml")).unwrap(), b"3");
    }

    #[test]
    fn sends_through_temp_files() {
        testing::reset();
        let dir = TempDir::new("send");
        FileAdapter::send_begin(dir.path()).unwrap();
        send1(Message::new("resp_1", b"<a/>".to_vec())).unwrap();
        send1(Message::new("resp_2.xml", b"<b/>".to_vec())).unwrap();
        assert_eq!(dir.names(), vec![".resp_1.tmp", ".resp_2.xml.tmp"]);
        FileAdapter::send_commit().unwrap();
        assert_eq!(dir.names(), vec!["resp_1.xml", "resp_2.xml"]);
        assert_eq!(fs::read(dir.0.join("resp_1.xml")).unwrap(), b"<a/>");

        testing::set_config(&[("extension", "txt")]);
        FileAdapter::send_begin(dir.path()).unwrap();
        send1(Message::new("r3", b"3".to_vec())).unwrap();
        FileAdapter::send_rollback().unwrap();
        assert_eq!(dir.names(), vec!["resp_1.xml", "resp_2.xml"]);
        send1(Message::new("r4", b"4".to_vec())).unwrap();
        FileAdapter::send_commit().unwrap();
        assert_eq!(dir.names(), vec!["r4.txt", "resp_1.xml", "resp_2.xml"]);
        assert!(send1(Message::new("a/b", b"x".to_vec())).is_err());
    }
}
