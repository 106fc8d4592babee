//! The `files` interface of `wit/ferry.wit`: an adapter's granted folders,
//! reached with many paths per call. Every path is resolved inside its
//! grant with cap-primitives, the crate wasmtime-wasi resolves preopened
//! folders with (`openat` beneath the grant's folder, symbolic links
//! followed only while they stay inside it), after a stricter check of its
//! own: no `..`, `.` or empty component and no NUL at all. The host only
//! makes the system calls the grant allows.

use std::fs;
use std::io::{self, ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use cap_primitives::fs::{FollowSymlinks, OpenOptions};

use super::Grant;

/// Why one path could not be served (`files.file-error`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileError {
    /// Outside the grants, malformed, or a write to a read-only grant.
    Denied(String),
    /// No such file or folder.
    NotFound,
    /// Larger than the limit asked for.
    TooLarge(u64),
    /// Not a regular file.
    NotAFile,
    /// Another error of the operating system.
    Io(String),
}

/// What kind of entry a name is (`files.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A regular file.
    File,
    /// A folder.
    Directory,
    /// A symbolic link (not followed).
    Symlink,
    /// A FIFO, socket or device.
    Other,
}

/// One entry of a folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Its name.
    pub name: String,
    /// Its kind.
    pub kind: Kind,
    /// Its size in bytes.
    pub size: u64,
}

/// Files a [`Grants::write_many`] round holds open at most (a round's
/// files are open together, between their write and their rename).
pub const WRITE_ROUND: usize = 64;

/// A file written to its temporary name, not yet synced and renamed.
struct Staged<'g, 'c> {
    dir: &'g fs::File,
    /// The path as the plugin gave it.
    path: &'c str,
    /// The path inside the grant.
    rel: &'c str,
    /// The path written inside the grant: the temporary file's, or `rel`
    /// itself when written in place.
    temp: String,
    /// Written in place: no rename.
    in_place: bool,
    file: fs::File,
}

/// How [`Grants::write_many`] writes a file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteMode {
    /// To a temporary file renamed over the path once synced (`write`).
    Atomic,
    /// The path itself, created or truncated, synced (`write-in-place`).
    InPlace,
}

impl Staged<'_, '_> {
    /// Gives up on this file: its temporary file goes.
    fn discard(self) {
        drop(self.file);
        let _ = cap_primitives::fs::remove_file(self.dir, Path::new(&self.temp));
    }
}

/// The kind of an entry from its (not followed) file type.
fn kind_of(t: cap_primitives::fs::FileType) -> Kind {
    if t.is_symlink() {
        Kind::Symlink
    } else if t.is_dir() {
        Kind::Directory
    } else if t.is_file() {
        Kind::File
    } else {
        Kind::Other
    }
}

/// A granted folder, opened.
#[derive(Debug)]
struct Open {
    guest: String,
    host: PathBuf,
    dir: fs::File,
    writable: bool,
}

/// The grants of one sandbox, opened once per instance.
#[derive(Debug, Default)]
pub struct Grants {
    open: Vec<Open>,
}

fn io_error(e: io::Error) -> FileError {
    match e.kind() {
        ErrorKind::NotFound => FileError::NotFound,
        // Resolution that would leave the grant.
        ErrorKind::PermissionDenied if e.to_string().contains("outside") => {
            FileError::Denied(e.to_string())
        }
        _ => FileError::Io(e.to_string()),
    }
}

/// An escape attempt cap-primitives stopped (it says "a path led outside
/// of the filesystem") is reported as `denied`, whatever errno it carries.
fn resolve_error(e: io::Error) -> FileError {
    let text = e.to_string();
    if text.contains("outside of the filesystem") || text.contains("escape") {
        FileError::Denied(format!("the path leads out of its grant: {text}"))
    } else {
        io_error(e)
    }
}

impl Grants {
    /// Open `grants` (their host folders) for the files interface.
    pub fn open(grants: &[Grant]) -> io::Result<Grants> {
        let mut open = Vec::with_capacity(grants.len());
        for g in grants {
            let dir =
                cap_primitives::fs::open_ambient_dir(&g.host, cap_primitives::ambient_authority())?;
            open.push(Open {
                guest: g.guest.trim_end_matches('/').to_string(),
                host: g.host.clone(),
                dir,
                writable: g.writable,
            });
        }
        Ok(Grants { open })
    }

    /// The grant `path` is in and the path relative to it, after the
    /// checks; `write` asks for a writable grant.
    fn resolve<'p>(&self, path: &'p str, write: bool) -> Result<(&Open, &'p str), FileError> {
        let denied = |why: &str| Err(FileError::Denied(format!("{path:?}: {why}")));
        if path.contains('\0') {
            return denied("a path may not hold a NUL character");
        }
        if !path.starts_with('/') {
            return denied(
                "a path starts with a granted folder's path (e.g. /port/file.xml), not a relative name",
            );
        }
        let grant = self
            .open
            .iter()
            .filter(|g| {
                path == g.guest
                    || (path.starts_with(&g.guest) && path[g.guest.len()..].starts_with('/'))
            })
            .max_by_key(|g| g.guest.len());
        let Some(grant) = grant else {
            let granted: Vec<&str> = self.open.iter().map(|g| g.guest.as_str()).collect();
            return denied(&format!(
                "it is outside the folders granted to this adapter ({})",
                if granted.is_empty() {
                    "none".to_string()
                } else {
                    granted.join(", ")
                }
            ));
        };
        let rest = &path[grant.guest.len()..];
        let rel = rest.strip_prefix('/').unwrap_or(rest);
        if !rel.is_empty() {
            for c in rel.split('/') {
                match c {
                    "" => return denied("a path may not hold an empty component (`//`)"),
                    "." | ".." => return denied("a path may not hold `.` or `..` components"),
                    _ => {}
                }
            }
        }
        if write && !grant.writable {
            return denied(&format!("the grant {} is read-only", grant.guest));
        }
        Ok((grant, rel))
    }

    fn file_path<'p>(&self, path: &'p str, write: bool) -> Result<(&Open, &'p str), FileError> {
        let (g, rel) = self.resolve(path, write)?;
        if rel.is_empty() {
            return Err(FileError::Denied(format!(
                "{path:?} is a granted folder, not a file in it"
            )));
        }
        Ok((g, rel))
    }

    /// `list-folder`.
    pub fn list(&self, path: &str) -> Result<Vec<Entry>, FileError> {
        let (g, rel) = self.resolve(path, false)?;
        let entries = if rel.is_empty() {
            cap_primitives::fs::read_base_dir(&g.dir)
        } else {
            cap_primitives::fs::read_dir(&g.dir, Path::new(rel))
        }
        .map_err(resolve_error)?;
        let mut out = Vec::new();
        for entry in entries {
            let entry = match entry {
                Ok(e) => e,
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(e)),
            };
            let Ok(name) = entry.file_name().into_string() else {
                continue;
            };
            // Not followed: a link's own metadata.
            let meta = match entry.metadata() {
                Ok(m) => m,
                // Gone since the listing began.
                Err(e) if e.kind() == ErrorKind::NotFound => continue,
                Err(e) => return Err(io_error(e)),
            };
            out.push(Entry {
                name,
                kind: kind_of(meta.file_type()),
                size: meta.len(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// `stat` of one path (not followed).
    pub fn stat(&self, path: &str) -> Result<Entry, FileError> {
        let (g, rel) = self.resolve(path, false)?;
        if rel.is_empty() {
            return Ok(Entry {
                name: String::new(),
                kind: Kind::Directory,
                size: g.dir.metadata().map_err(io_error)?.len(),
            });
        }
        let meta = cap_primitives::fs::stat(&g.dir, Path::new(rel), FollowSymlinks::No)
            .map_err(resolve_error)?;
        Ok(Entry {
            name: rel.rsplit('/').next().unwrap_or("").to_string(),
            kind: kind_of(meta.file_type()),
            size: meta.len(),
        })
    }

    /// `read` of one path.
    pub fn read(&self, path: &str, max_size: u64) -> Result<Vec<u8>, FileError> {
        let (g, rel) = self.file_path(path, false)?;
        let rel = Path::new(rel);
        let meta =
            cap_primitives::fs::stat(&g.dir, rel, FollowSymlinks::No).map_err(resolve_error)?;
        if !meta.file_type().is_file() {
            return Err(FileError::NotAFile);
        }
        if meta.len() > max_size {
            return Err(FileError::TooLarge(meta.len()));
        }
        let mut options = OpenOptions::new();
        options.read(true);
        options._cap_fs_ext_follow(FollowSymlinks::No);
        // Replaced by a FIFO since the stat: do not wait on it.
        options._cap_fs_ext_nonblock(true);
        let file = cap_primitives::fs::open(&g.dir, rel, &options).map_err(resolve_error)?;
        let meta = file.metadata().map_err(io_error)?;
        if !meta.is_file() {
            return Err(FileError::NotAFile);
        }
        if meta.len() > max_size {
            return Err(FileError::TooLarge(meta.len()));
        }
        // Read what the file held when opened, with room for a byte more
        // to see that it grew: one call for a file on a local disk.
        let size = meta.len() as usize;
        let mut content = vec![0; size + 1];
        let mut n = 0;
        while n < size {
            match (&file).read(&mut content[n..]) {
                Ok(0) => break,
                Ok(k) => n += k,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_error(e)),
            }
        }
        content.truncate(n);
        if n > size {
            // It grew: the rest, up to the limit.
            (&file)
                .take(max_size.saturating_add(1) - n as u64)
                .read_to_end(&mut content)
                .map_err(io_error)?;
        }
        if content.len() as u64 > max_size {
            return Err(FileError::TooLarge(content.len() as u64));
        }
        Ok(content)
    }

    /// `write` of one file: a synced temporary file (`.NAME.ferry-tmp` in
    /// the same folder) renamed into place.
    pub fn write(&self, path: &str, content: &[u8]) -> Result<(), FileError> {
        self.write_many([(path, content)], WriteMode::Atomic)
            .pop()
            .expect("one result per file")
    }

    /// `write` of several files, each as [`write`](Self::write) does it,
    /// in rounds of up to [`WRITE_ROUND`] files, each round in three steps:
    /// all written to their temporary names, then all synced, then each
    /// renamed into place. Each file is synced before it is renamed, as alone; the
    /// rounds let the file system write its journal once for the files
    /// of a round (on ext4, the first `fsync` commits what the others
    /// would) instead of once per file. One result per file, in order; a
    /// path written twice in one call is written in order (a round ends
    /// before the second). [`WriteMode::InPlace`] writes each path itself
    /// (created or truncated; a file that fails is removed) and renames
    /// nothing: for staging files a later rename publishes.
    pub fn write_many<'c>(
        &self,
        files: impl IntoIterator<Item = (&'c str, &'c [u8])>,
        mode: WriteMode,
    ) -> Vec<Result<(), FileError>> {
        let mut results = Vec::new();
        let mut round: Vec<Result<Staged<'_, 'c>, FileError>> = Vec::new();
        for (path, content) in files {
            let again = round
                .iter()
                .any(|s| s.as_ref().is_ok_and(|s| s.path == path));
            if round.len() == WRITE_ROUND || again {
                results.extend(self.finish(std::mem::take(&mut round)));
            }
            round.push(self.stage(path, content, mode));
        }
        results.extend(self.finish(round));
        results
    }

    /// The first step of a write: `content` in the temporary file of
    /// `path`, not synced yet.
    fn stage<'c>(
        &self,
        path: &'c str,
        content: &[u8],
        mode: WriteMode,
    ) -> Result<Staged<'_, 'c>, FileError> {
        let (g, rel) = self.file_path(path, true)?;
        let in_place = mode == WriteMode::InPlace;
        let temp = if in_place {
            rel.to_string()
        } else {
            let (folder, name) = match rel.rsplit_once('/') {
                Some((f, n)) => (Some(f), n),
                None => (None, rel),
            };
            // One temporary name per target: what a crash leaves is
            // replaced by the next write of the same path, not left for
            // ever.
            let temp_name = format!(".{name}.ferry-tmp");
            match folder {
                Some(f) => format!("{f}/{temp_name}"),
                None => temp_name,
            }
        };
        let mut options = OpenOptions::new();
        options._cap_fs_ext_follow(FollowSymlinks::No);
        let mut file = if in_place {
            // A new file: one already there (a link, or a hard link to a
            // file elsewhere) is removed, never written through.
            options.write(true).create_new(true);
            let open = || cap_primitives::fs::open(&g.dir, Path::new(&temp), &options);
            match open() {
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    cap_primitives::fs::remove_file(&g.dir, Path::new(&temp))
                        .map_err(resolve_error)?;
                    open()
                }
                other => other,
            }
        } else {
            options.write(true).create(true).truncate(true);
            cap_primitives::fs::open(&g.dir, Path::new(&temp), &options)
        }
        .map_err(resolve_error)?;
        let staged = |file| Staged {
            dir: &g.dir,
            path,
            rel,
            temp,
            in_place,
            file,
        };
        match file.write_all(content) {
            Ok(()) => Ok(staged(file)),
            Err(e) => {
                staged(file).discard();
                Err(io_error(e))
            }
        }
    }

    /// The last two steps of a round: sync every staged file, then rename
    /// each synced one into place.
    fn finish(&self, round: Vec<Result<Staged<'_, '_>, FileError>>) -> Vec<Result<(), FileError>> {
        let synced: Vec<_> = round
            .into_iter()
            .map(|s| {
                let s = s?;
                match s.file.sync_all() {
                    Ok(()) => Ok(s),
                    Err(e) => {
                        s.discard();
                        Err(io_error(e))
                    }
                }
            })
            .collect();
        synced
            .into_iter()
            .map(|s| {
                let s = s?;
                if s.in_place {
                    return Ok(());
                }
                match cap_primitives::fs::rename(s.dir, Path::new(&s.temp), s.dir, Path::new(s.rel))
                {
                    Ok(()) => Ok(()),
                    Err(e) => {
                        s.discard();
                        Err(resolve_error(e))
                    }
                }
            })
            .collect()
    }

    /// `rename` of one pair.
    pub fn rename(&self, from: &str, to: &str) -> Result<(), FileError> {
        let (gf, rf) = self.file_path(from, true)?;
        let (gt, rt) = self.file_path(to, true)?;
        cap_primitives::fs::rename(&gf.dir, Path::new(rf), &gt.dir, Path::new(rt))
            .map_err(resolve_error)
    }

    /// `remove` of one path (a file, or a link itself).
    pub fn remove(&self, path: &str) -> Result<(), FileError> {
        let (g, rel) = self.file_path(path, true)?;
        // A folder is refused by the system call itself (`unlinkat`
        // without AT_REMOVEDIR: EISDIR).
        cap_primitives::fs::remove_file(&g.dir, Path::new(rel)).map_err(|e| {
            if e.kind() == ErrorKind::IsADirectory {
                FileError::NotAFile
            } else {
                resolve_error(e)
            }
        })
    }

    /// The host folder of a grant, for messages.
    pub fn host_folder(&self, guest: &str) -> Option<&Path> {
        self.open
            .iter()
            .find(|g| g.guest == guest)
            .map(|g| g.host.as_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grants(dir: &Path, writable: bool) -> Grants {
        Grants::open(&[Grant {
            host: dir.to_path_buf(),
            guest: "/port".into(),
            writable,
        }])
        .unwrap()
    }

    /// Many files in one call, over several rounds: each written whole
    /// and in place, one result per file in order, a refused path failing
    /// only itself, a path written twice ending with its second content,
    /// no temporary file left; atomically and in place alike.
    #[test]
    fn writes_many_files_in_rounds_each_on_its_own() {
        for mode in [WriteMode::Atomic, WriteMode::InPlace] {
            writes_many_files(mode);
        }
    }

    fn writes_many_files(mode: WriteMode) {
        let tmp = tempfile::tempdir().unwrap();
        fs::create_dir(tmp.path().join("sub")).unwrap();
        let g = grants(tmp.path(), true);
        let mut files: Vec<(String, Vec<u8>)> = (0..2 * WRITE_ROUND + 10)
            .map(|i| {
                (
                    format!("/port/{i:04}.xml"),
                    format!("<o>{i}</o>").into_bytes(),
                )
            })
            .collect();
        files[5].0 = "/port/../escape.xml".into();
        files[70].0 = "/port/missing/x.xml".into();
        files[71].0 = "/port/sub/0003.xml".into();
        // Written again in the same round.
        files[10].0 = "/port/0003.xml".into();
        files[10].1 = b"<o>second</o>".to_vec();
        let results = g.write_many(files.iter().map(|(p, c)| (p.as_str(), c.as_slice())), mode);
        assert_eq!(results.len(), files.len());
        for (i, ((path, content), r)) in files.iter().zip(&results).enumerate() {
            match i {
                5 => assert!(matches!(r, Err(FileError::Denied(_))), "{r:?}"),
                70 => assert!(r.is_err(), "{r:?}"),
                _ => {
                    r.as_ref().unwrap();
                    let on_disk = fs::read(tmp.path().join(&path["/port/".len()..])).unwrap();
                    if i != 3 {
                        assert_eq!(&on_disk, content, "{path}");
                    }
                }
            }
        }
        assert_eq!(
            fs::read(tmp.path().join("0003.xml")).unwrap(),
            b"<o>second</o>"
        );
        assert!(!tmp.path().parent().unwrap().join("escape.xml").exists());
        let left: Vec<String> = fs::read_dir(tmp.path())
            .unwrap()
            .chain(fs::read_dir(tmp.path().join("sub")).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".ferry-tmp"))
            .collect();
        assert!(left.is_empty(), "{left:?}");
        // A read-only grant refuses every file of the call.
        let ro = grants(tmp.path(), false);
        let results = ro.write_many(
            [("/port/a.xml", &b"a"[..]), ("/port/b.xml", &b"b"[..])],
            mode,
        );
        assert!(
            results
                .iter()
                .all(|r| matches!(r, Err(FileError::Denied(_))))
        );
    }

    /// In place: a file already at the path is replaced, never written
    /// through — not a symbolic link out of the grant, not a hard link to
    /// a file elsewhere; nothing is renamed and no temporary file made.
    #[test]
    fn writes_in_place_without_writing_through_links() {
        let tmp = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let port = tmp.path().join("port");
        fs::create_dir(&port).unwrap();
        let g = grants(&port, true);
        let secret = tmp.path().join("secret.txt");
        fs::write(&secret, b"secret").unwrap();
        fs::hard_link(&secret, port.join("hard.tmp")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("x"), port.join("soft.tmp")).unwrap();
        fs::write(port.join("old.tmp"), b"old content, longer").unwrap();
        let results = g.write_many(
            [
                ("/port/hard.tmp", &b"new"[..]),
                ("/port/soft.tmp", &b"new"[..]),
                ("/port/old.tmp", &b"new"[..]),
                ("/port/fresh.tmp", &b"new"[..]),
            ],
            WriteMode::InPlace,
        );
        for r in &results {
            r.as_ref().unwrap();
        }
        for name in ["hard.tmp", "soft.tmp", "old.tmp", "fresh.tmp"] {
            let p = port.join(name);
            assert!(!fs::symlink_metadata(&p).unwrap().is_symlink(), "{name}");
            assert_eq!(fs::read(&p).unwrap(), b"new", "{name}");
        }
        assert_eq!(fs::read(&secret).unwrap(), b"secret");
        assert!(!outside.path().join("x").exists());
        let mut names: Vec<String> = fs::read_dir(&port)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["fresh.tmp", "hard.tmp", "old.tmp", "soft.tmp"]);
    }

    #[test]
    fn lists_reads_writes_renames_and_removes_inside_the_grant() {
        let tmp = tempfile::tempdir().unwrap();
        let g = grants(tmp.path(), true);
        g.write("/port/b.xml", b"bee").unwrap();
        g.write("/port/a.xml", b"a").unwrap();
        fs::create_dir(tmp.path().join("sub")).unwrap();
        let names: Vec<(String, Kind)> = g
            .list("/port")
            .unwrap()
            .into_iter()
            .map(|e| (e.name, e.kind))
            .collect();
        assert_eq!(
            names,
            vec![
                ("a.xml".into(), Kind::File),
                ("b.xml".into(), Kind::File),
                ("sub".into(), Kind::Directory)
            ]
        );
        assert_eq!(g.read("/port/b.xml", 10).unwrap(), b"bee");
        assert_eq!(g.stat("/port/b.xml").unwrap().kind, Kind::File);
        assert_eq!(g.stat("/port/b.xml").unwrap().size, 3);
        assert_eq!(g.stat("/port/sub").unwrap().kind, Kind::Directory);
        assert_eq!(g.stat("/port").unwrap().kind, Kind::Directory);
        assert_eq!(g.stat("/port/none"), Err(FileError::NotFound));
        assert_eq!(g.read("/port/b.xml", 2), Err(FileError::TooLarge(3)));
        assert_eq!(g.read("/port/none.xml", 10), Err(FileError::NotFound));
        assert_eq!(g.read("/port/sub", 10), Err(FileError::NotAFile));
        g.rename("/port/a.xml", "/port/sub/a.xml").unwrap();
        assert_eq!(fs::read(tmp.path().join("sub/a.xml")).unwrap(), b"a");
        g.write("/port/empty", b"").unwrap();
        assert_eq!(g.read("/port/empty", 10).unwrap(), b"");
        assert_eq!(g.read("/port/b.xml", 3).unwrap(), b"bee");
        // A folder is not removed.
        assert_eq!(g.remove("/port/sub"), Err(FileError::NotAFile));
        g.remove("/port/empty").unwrap();
        g.remove("/port/b.xml").unwrap();
        assert_eq!(g.remove("/port/b.xml"), Err(FileError::NotFound));
        assert_eq!(g.list("/port/sub").unwrap().len(), 1);
        // No temporary file is left behind.
        assert_eq!(g.list("/port").unwrap().len(), 1);
    }

    #[test]
    fn escapes_are_denied_and_touch_nothing() {
        let outside = tempfile::tempdir().unwrap();
        fs::write(outside.path().join("secret"), "s").unwrap();
        let tmp = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink(outside.path(), tmp.path().join("out")).unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), tmp.path().join("link")).unwrap();
        let g = grants(tmp.path(), true);
        let secret = outside.path().join("secret");
        let denied = |r: Result<Vec<u8>, FileError>| matches!(r, Err(FileError::Denied(_)));
        assert!(denied(g.read("/port/../secret", 100)));
        assert!(denied(g.read("/port/./x", 100)));
        assert!(denied(g.read(&secret.display().to_string(), 100)));
        assert!(denied(g.read("port/x", 100)));
        assert!(denied(g.read("/port/a\0b", 100)));
        assert!(denied(g.read("/other/x", 100)));
        assert!(denied(g.read("/port//x", 100)));
        assert!(
            denied(g.read("/port/out/secret", 100)),
            "{:?}",
            g.read("/port/out/secret", 100)
        );
        assert!(matches!(
            g.stat("/port/out/secret"),
            Err(FileError::Denied(_))
        ));
        assert_eq!(g.stat("/port/out").unwrap().kind, Kind::Symlink);
        // The last component is never followed.
        assert_eq!(g.read("/port/link", 100), Err(FileError::NotAFile));
        assert!(matches!(
            g.write("/port/out/secret", b"x"),
            Err(FileError::Denied(_))
        ));
        assert!(matches!(
            g.write("/port/../x", b"x"),
            Err(FileError::Denied(_))
        ));
        assert!(matches!(
            g.rename("/port/link", "/port/../y"),
            Err(FileError::Denied(_))
        ));
        assert!(matches!(g.list("/port/out"), Err(FileError::Denied(_))));
        // Removing the link removes the link, not its target.
        g.remove("/port/link").unwrap();
        assert!(matches!(
            g.remove("/port/out/secret"),
            Err(FileError::Denied(_))
        ));
        assert_eq!(fs::read_to_string(&secret).unwrap(), "s");
        assert_eq!(fs::read_dir(outside.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_read_only_grant_refuses_changes() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("a"), "a").unwrap();
        let g = grants(tmp.path(), false);
        assert_eq!(g.read("/port/a", 9).unwrap(), b"a");
        assert!(matches!(
            g.write("/port/b", b"b"),
            Err(FileError::Denied(_))
        ));
        assert!(matches!(g.remove("/port/a"), Err(FileError::Denied(_))));
        assert!(tmp.path().join("a").exists());
    }
}
