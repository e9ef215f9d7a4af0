//! Outputs written under a temporary name and renamed only when complete.

use std::path::{Path, PathBuf};

use super::SinkError;

/// A file or folder being written at `working`, renamed to `target` by `commit`, removed if dropped first.
#[derive(Debug)]
pub struct Partial {
    target: PathBuf,
    working: PathBuf,
    is_dir: bool,
    committed: bool,
}

impl Partial {
    /// Prepares a file: checks the folder exists and is writable by creating the working file now.
    pub fn file(target: &Path) -> Result<Self, SinkError> {
        let working = working_name(target);
        let not_writable = |reason: String| SinkError::NotWritable { path: target.to_path_buf(), reason };
        if target.is_dir() {
            return Err(not_writable("it is a folder".into()));
        }
        std::fs::File::create(&working).map_err(|err| not_writable(err.to_string()))?;
        Ok(Self { target: target.to_path_buf(), working, is_dir: false, committed: false })
    }

    /// Prepares a folder: the target must be absent or empty.
    pub fn dir(target: &Path) -> Result<Self, SinkError> {
        let not_writable = |reason: String| SinkError::NotWritable { path: target.to_path_buf(), reason };
        if target.exists() {
            let mut entries = std::fs::read_dir(target).map_err(|err| not_writable(err.to_string()))?;
            if entries.next().is_some() {
                return Err(SinkError::FolderNotEmpty(target.to_path_buf()));
            }
        }
        let working = working_name(target);
        if working.exists() {
            std::fs::remove_dir_all(&working).map_err(|err| not_writable(err.to_string()))?;
        }
        std::fs::create_dir(&working).map_err(|err| not_writable(err.to_string()))?;
        Ok(Self { target: target.to_path_buf(), working, is_dir: true, committed: false })
    }

    pub fn working(&self) -> &Path {
        &self.working
    }

    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Marks the target as written by other means (the working file was replaced by a finished copy).
    pub fn forget(&mut self) {
        self.committed = true;
    }

    pub fn commit(&mut self) -> Result<(), SinkError> {
        if self.committed {
            return Ok(());
        }
        let failed = |err: std::io::Error| SinkError::Write { path: self.target.clone(), reason: err.to_string() };
        if self.is_dir && self.target.exists() {
            std::fs::remove_dir(&self.target).map_err(failed)?;
        }
        std::fs::rename(&self.working, &self.target).map_err(failed)?;
        self.committed = true;
        Ok(())
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

/// `dir/name.ext` is written as `dir/name.partial.ext` so tools still see the format, and nobody
/// mistakes it for a finished file.
fn working_name(target: &Path) -> PathBuf {
    let stem = target.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
    let name = match target.extension() {
        Some(ext) => format!("{stem}.partial.{}", ext.to_string_lossy()),
        None => format!("{stem}.partial"),
    };
    target.with_file_name(name)
}
