//! An adapter's granted folders (`ferry:plugin/files`), reached with many
//! paths per host call: [`list`], [`stat`], [`read`], [`write`], [`rename`],
//! [`remove`]. Paths are the sandbox's: a granted folder's guest path (the
//! port's address, e.g. `/port`) and names inside it. The host checks each
//! against the grant as WASI checks a preopen (no `..`, no absolute path
//! outside the grants, no symbolic link out of it, no NUL) and answers each
//! path on its own. Enabled by the `adapter` feature.
//!
//! Off WebAssembly (unit tests) the paths are the build machine's, served by
//! `std::fs` without a grant.

/// One entry of a folder: `name`, `kind`, `size`.
pub use crate::bindings::ferry::plugin::files::Entry;
/// A file to write: `path`, `content`.
pub use crate::bindings::ferry::plugin::files::File;
/// Why one path could not be served: `Denied(reason)`, `NotFound`,
/// `TooLarge(size)`, `NotAFile`, `Io(what the system said)`.
pub use crate::bindings::ferry::plugin::files::FileError;
/// What kind of entry a name is: `File`, `Directory`, `Symlink` (not
/// followed) or `Other` (a FIFO, socket or device).
pub use crate::bindings::ferry::plugin::files::Kind;

impl FileError {
    /// What went wrong, in words (`not found`, `denied: ...`, ...).
    pub fn message(&self) -> String {
        match self {
            FileError::Denied(m) => format!("denied: {m}"),
            FileError::NotFound => "not found".to_string(),
            FileError::TooLarge(n) => format!("too large ({n} bytes)"),
            FileError::NotAFile => "not a regular file".to_string(),
            FileError::Io(m) => m.clone(),
        }
    }
}

/// The entries of folder `path`, sorted by name; links are not followed.
pub fn list(path: &str) -> Result<Vec<Entry>, FileError> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::files::list_folder(path);
    #[cfg(not(target_arch = "wasm32"))]
    return native::list(path);
}

/// What each path is (links not followed): one result per path.
pub fn stat(paths: &[String]) -> Vec<Result<Entry, FileError>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::files::stat(paths);
    #[cfg(not(target_arch = "wasm32"))]
    return paths.iter().map(|p| native::stat(p)).collect();
}

/// Read whole files of at most `max_size` bytes each: one result per path.
pub fn read(paths: &[String], max_size: u64) -> Vec<Result<Vec<u8>, FileError>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::files::read(paths, max_size);
    #[cfg(not(target_arch = "wasm32"))]
    return paths.iter().map(|p| native::read(p, max_size)).collect();
}

/// Write whole files, each atomically (a synced temporary file renamed
/// into place): one result per file.
pub fn write(files: &[File]) -> Vec<Result<(), FileError>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::files::write(files);
    #[cfg(not(target_arch = "wasm32"))]
    return files.iter().map(native::write).collect();
}

/// Write whole files in place, each synced (a file already at the path is
/// replaced, not written through), without `write`'s temporary file and
/// rename: not atomic, for staging files a later [`rename`] publishes. One
/// result per file. Needs a host of `ferry:plugin@0.2.1` or later.
pub fn write_in_place(files: &[File]) -> Vec<Result<(), FileError>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::files::write_in_place(files);
    #[cfg(not(target_arch = "wasm32"))]
    return files.iter().map(native::write_in_place).collect();
}

/// Rename each `(from, to)`: one result per pair.
pub fn rename(pairs: &[(String, String)]) -> Vec<Result<(), FileError>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::files::rename(pairs);
    #[cfg(not(target_arch = "wasm32"))]
    return pairs.iter().map(|(a, b)| native::rename(a, b)).collect();
}

/// Remove files (a link itself, never its target): one result per path.
pub fn remove(paths: &[String]) -> Vec<Result<(), FileError>> {
    #[cfg(target_arch = "wasm32")]
    return crate::bindings::ferry::plugin::files::remove(paths);
    #[cfg(not(target_arch = "wasm32"))]
    return paths.iter().map(|p| native::remove(p)).collect();
}

#[cfg(not(target_arch = "wasm32"))]
mod native {
    use super::{Entry, File, FileError, Kind};
    use std::fs;
    use std::io::{ErrorKind, Read, Write};
    use std::path::Path;

    fn kind_of(t: fs::FileType) -> Kind {
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

    fn err(e: std::io::Error) -> FileError {
        match e.kind() {
            ErrorKind::NotFound => FileError::NotFound,
            _ => FileError::Io(e.to_string()),
        }
    }

    pub fn list(path: &str) -> Result<Vec<Entry>, FileError> {
        let mut out = Vec::new();
        for e in fs::read_dir(path).map_err(err)? {
            let e = e.map_err(err)?;
            let Ok(name) = e.file_name().into_string() else {
                continue;
            };
            let Ok(meta) = fs::symlink_metadata(e.path()) else {
                continue;
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

    pub fn stat(path: &str) -> Result<Entry, FileError> {
        let meta = fs::symlink_metadata(path).map_err(err)?;
        let kind = kind_of(meta.file_type());
        Ok(Entry {
            name: Path::new(path)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default(),
            kind,
            size: meta.len(),
        })
    }

    pub fn read(path: &str, max: u64) -> Result<Vec<u8>, FileError> {
        let meta = fs::symlink_metadata(path).map_err(err)?;
        if !meta.file_type().is_file() {
            return Err(FileError::NotAFile);
        }
        if meta.len() > max {
            return Err(FileError::TooLarge(meta.len()));
        }
        let mut content = Vec::new();
        fs::File::open(path)
            .and_then(|f| f.take(max + 1).read_to_end(&mut content))
            .map_err(err)?;
        if content.len() as u64 > max {
            return Err(FileError::TooLarge(content.len() as u64));
        }
        Ok(content)
    }

    pub fn write(f: &File) -> Result<(), FileError> {
        let path = Path::new(&f.path);
        let temp = path.with_file_name(format!(
            ".{}.native.tmp",
            path.file_name().and_then(|n| n.to_str()).unwrap_or("x")
        ));
        let mut file = fs::File::create(&temp).map_err(err)?;
        file.write_all(&f.content).map_err(err)?;
        file.sync_all().map_err(err)?;
        fs::rename(&temp, path).map_err(err)
    }

    pub fn write_in_place(f: &File) -> Result<(), FileError> {
        let path = Path::new(&f.path);
        match fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(err(e)),
            _ => {}
        }
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(err)?;
        file.write_all(&f.content).map_err(err)?;
        file.sync_all().map_err(err)
    }

    pub fn rename(from: &str, to: &str) -> Result<(), FileError> {
        fs::rename(from, to).map_err(err)
    }

    pub fn remove(path: &str) -> Result<(), FileError> {
        let meta = fs::symlink_metadata(path).map_err(err)?;
        if meta.is_dir() {
            return Err(FileError::NotAFile);
        }
        fs::remove_file(path).map_err(err)
    }
}
