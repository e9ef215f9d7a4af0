//! Outputs written under a working name and renamed only when complete.
//!
//! The promises: the final name only ever holds a complete output; an existing output is never replaced
//! unless the user said so; a working file is always one this run created new (`O_EXCL`, which does not
//! follow links), so nothing planted under a working name can redirect a write; working files that an
//! earlier run left behind (a crash, a kill) are reported, never reused or deleted.

use std::path::{Path, PathBuf};

use super::SinkError;
use crate::paths::display;

/// A file or folder being written at `working`, renamed to `target` by `commit`, removed if dropped first.
#[derive(Debug)]
pub struct Partial {
    target: PathBuf,
    working: PathBuf,
    is_dir: bool,
    /// The user allowed replacing an existing output.
    overwrite: bool,
    committed: bool,
}

impl Partial {
    /// Prepares a file: refuses an existing output unless `overwrite`, and creates the working file now
    /// (which also checks that the folder is writable).
    pub fn file(target: &Path, overwrite: bool) -> Result<Self, SinkError> {
        let not_writable = |reason: String| SinkError::NotWritable { path: target.to_path_buf(), reason };
        if target.is_dir() {
            return Err(not_writable("it is a folder".into()));
        }
        if !overwrite && std::fs::symlink_metadata(target).is_ok() {
            return Err(SinkError::Exists(target.to_path_buf()));
        }
        report_leftovers(target, "partial");
        let working = claim(target, "partial", false).map_err(|err| not_writable(err.to_string()))?;
        Ok(Self { target: target.to_path_buf(), working, is_dir: false, overwrite, committed: false })
    }

    /// Prepares a folder: the target must be absent or empty (a folder of the user's is never emptied).
    pub fn dir(target: &Path) -> Result<Self, SinkError> {
        let not_writable = |reason: String| SinkError::NotWritable { path: target.to_path_buf(), reason };
        if let Ok(meta) = std::fs::symlink_metadata(target) {
            if !meta.is_dir() {
                return Err(SinkError::Exists(target.to_path_buf()));
            }
            let mut entries = std::fs::read_dir(target).map_err(|err| not_writable(err.to_string()))?;
            if entries.next().is_some() {
                return Err(SinkError::FolderNotEmpty(target.to_path_buf()));
            }
        }
        report_leftovers(target, "partial");
        let working = claim(target, "partial", true).map_err(|err| not_writable(err.to_string()))?;
        Ok(Self { target: target.to_path_buf(), working, is_dir: true, overwrite: false, committed: false })
    }

    pub fn working(&self) -> &Path {
        &self.working
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Moves the finished output into place; never over an existing output unless the user allowed it.
    pub fn commit(&mut self) -> Result<(), SinkError> {
        if self.committed {
            return Ok(());
        }
        let failed = |err: std::io::Error| SinkError::Write { path: self.target.clone(), reason: err.to_string() };
        if self.is_dir && self.target.is_dir() {
            // Only an empty folder: remove_dir refuses anything else.
            std::fs::remove_dir(&self.target).map_err(failed)?;
        }
        let moved = if self.overwrite {
            std::fs::rename(&self.working, &self.target)
        } else {
            rename_no_replace(&self.working, &self.target)
        };
        match moved {
            Ok(()) => {
                self.committed = true;
                Ok(())
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                // Something took the name while we wrote: the finished output stays where it is.
                self.committed = true;
                Err(SinkError::Write {
                    path: self.target.clone(),
                    reason: format!(
                        "a file of that name appeared while writing, so the finished output was left in {}",
                        display(&self.working)
                    ),
                })
            }
            Err(err) => Err(failed(err)),
        }
    }

    /// After a failure: keeps what was written as `NAME.incomplete.EXT` (never under the final name) and
    /// returns where.
    pub fn keep_incomplete(&mut self) -> Result<PathBuf, SinkError> {
        let failed = |err: std::io::Error| SinkError::Write { path: self.target.clone(), reason: err.to_string() };
        for n in 1..1000 {
            let path = tagged(&self.target, "incomplete", n);
            match rename_no_replace(&self.working, &path) {
                Ok(()) => {
                    self.committed = true;
                    return Ok(path);
                }
                Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(err) => return Err(failed(err)),
            }
        }
        Err(failed(std::io::Error::other("no free name for the incomplete output")))
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.committed {
            let _ =
                if self.is_dir { std::fs::remove_dir_all(&self.working) } else { std::fs::remove_file(&self.working) };
        }
    }
}

/// `dir/name.ext` as `dir/name.TAG.ext`, or `dir/name.TAG-N.ext` for `n` above 1, so tools still see the
/// format and nobody mistakes it for a finished file.
pub fn tagged(target: &Path, tag: &str, n: u32) -> PathBuf {
    let stem = target.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let tag = if n < 2 { tag.to_string() } else { format!("{tag}-{n}") };
    let name = match target.extension() {
        Some(ext) => format!("{stem}.{tag}.{}", ext.to_string_lossy()),
        None => format!("{stem}.{tag}"),
    };
    target.with_file_name(name)
}

/// Creates a new working file (or folder) `NAME.TAG.EXT` beside `target`, or the first free
/// `NAME.TAG-N.EXT`: always one this call created, never one that was there (a leftover, or a link
/// planted to redirect the write).
pub fn claim(target: &Path, tag: &str, dir: bool) -> std::io::Result<PathBuf> {
    for n in 1..1000 {
        let path = tagged(target, tag, n);
        let created = if dir {
            std::fs::create_dir(&path)
        } else {
            std::fs::OpenOptions::new().write(true).create_new(true).open(&path).map(drop)
        };
        match created {
            Ok(()) => return Ok(path),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(err) => return Err(err),
        }
    }
    Err(std::io::Error::other("no free working name"))
}

/// Working files of `target` already on disk (`NAME.TAG*.EXT`): left by a run that crashed or was killed,
/// or in use by one still running.
pub fn leftovers(target: &Path, tag: &str) -> Vec<PathBuf> {
    let stem = target.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = target.extension().map(|e| format!(".{}", e.to_string_lossy())).unwrap_or_default();
    let prefix = format!("{stem}.{tag}");
    let dir = match target.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let Ok(entries) = std::fs::read_dir(&dir) else { return Vec::new() };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_prefix(&prefix)
                .and_then(|rest| rest.strip_suffix(&ext))
                .is_some_and(|middle| middle.is_empty() || middle.strip_prefix('-').is_some_and(is_number))
        })
        .map(|entry| target.with_file_name(entry.file_name()))
        .collect();
    found.sort();
    found
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

fn report_leftovers(target: &Path, tag: &str) {
    for path in leftovers(target, tag) {
        let shown = display(&path);
        tracing::warn!(
            "{shown} is a working file left by an earlier run of this output that did not finish (a crash or a kill), or by one still running; it is left as it is and not reused: delete it, or play it to recover what it holds"
        );
    }
}

/// Renames `from` to `to` unless `to` exists (then `AlreadyExists`), atomically where the file system can.
pub fn rename_no_replace(from: &Path, to: &Path) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::ffi::OsStrExt;
        let c = |p: &Path| std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(std::io::Error::other);
        let (old, new) = (c(from)?, c(to)?);
        // SAFETY: both are NUL-terminated paths that live across the call.
        let rc = unsafe {
            libc::renameat2(libc::AT_FDCWD, old.as_ptr(), libc::AT_FDCWD, new.as_ptr(), libc::RENAME_NOREPLACE)
        };
        if rc == 0 {
            return Ok(());
        }
        let err = std::io::Error::last_os_error();
        // File systems without RENAME_NOREPLACE answer EINVAL: fall through to the portable way.
        if err.raw_os_error() != Some(libc::EINVAL) && err.raw_os_error() != Some(libc::ENOSYS) {
            return Err(err);
        }
    }
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(std::io::Error::from(std::io::ErrorKind::AlreadyExists));
    }
    std::fs::rename(from, to)
}

/// `dir/stem.ext` (a folder `dir/stem` when `ext` is `None`), or with `-2`, `-3`... after the stem when that
/// name is taken: by an output, its sidecar, or the working or incomplete files of one being written (two
/// takes started in the same second get two names).
pub fn free_name(dir: &Path, stem: &str, ext: Option<&str>) -> PathBuf {
    let name = |n: u32| {
        let stem = if n < 2 { stem.to_string() } else { format!("{stem}-{n}") };
        match ext {
            Some(ext) => dir.join(format!("{stem}.{ext}")),
            None => dir.join(stem),
        }
    };
    let taken = |path: &PathBuf| {
        std::fs::symlink_metadata(path).is_ok()
            || path.with_extension("json").exists()
            || !leftovers(path, "partial").is_empty()
            || !leftovers(path, "incomplete").is_empty()
    };
    (1..).map(name).find(|path| !taken(path)).expect("a free name")
}

/// Writes a file whole or not at all through a working name (`write` fills it), never replacing an
/// existing `path` unless `overwrite`: reports, plates and other single-file outputs.
pub fn write_new(
    path: &Path,
    overwrite: bool,
    write: impl FnOnce(&Path) -> Result<(), String>,
) -> Result<(), SinkError> {
    super::create_parent(path)?;
    let mut partial = Partial::file(path, overwrite)?;
    write(partial.working()).map_err(|reason| SinkError::Write { path: path.to_path_buf(), reason })?;
    partial.commit()
}
