//! Where the files fetched by `make setup` live.

use std::path::{Path, PathBuf};

/// The folder holding `models/`, `assets/` and `.cache/`: `MATTECAM_HOME` when set, else the current
/// directory when it holds `models/models.toml`, else the source checkout this binary was built from.
pub fn project_root() -> PathBuf {
    if let Some(home) = std::env::var_os("MATTECAM_HOME") {
        return PathBuf::from(home);
    }
    if let Ok(cwd) = std::env::current_dir()
        && cwd.join("models/models.toml").is_file()
    {
        return cwd;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn models_dir() -> PathBuf {
    project_root().join("models")
}

pub fn assets_dir() -> PathBuf {
    project_root().join("assets")
}

pub fn cache_dir() -> PathBuf {
    project_root().join(".cache")
}

/// The demo clip fetched by setup.
pub fn demo_clip() -> PathBuf {
    assets_dir().join("demovideo.mp4")
}

/// The demo still fetched by setup.
pub fn demo_still() -> PathBuf {
    assets_dir().join("hires.jpg")
}

/// `path` shown relative to the current directory when it is inside it.
pub fn display(path: &Path) -> String {
    std::env::current_dir()
        .ok()
        .and_then(|cwd| path.strip_prefix(cwd).ok().map(Path::to_path_buf))
        .unwrap_or_else(|| path.to_path_buf())
        .display()
        .to_string()
}
