//! Where the files fetched by `make setup` live.

use std::path::{Path, PathBuf};

/// The folder holding `models/`, `assets/` and `.cache/`: `MATTECAM_HOME` when set, else the user's data
/// folder (`$XDG_DATA_HOME/mattecam`, by default `~/.local/share/mattecam`) when it holds
/// `models/models.toml`, else the source checkout this binary was built from.
///
/// Never the current directory: a folder the user merely runs mattecam in (a cloned repository, an
/// unpacked archive) must not decide which library is loaded or which models count as verified.
pub fn project_root() -> PathBuf {
    if let Some(home) = std::env::var_os("MATTECAM_HOME") {
        return PathBuf::from(home);
    }
    if let Some(data) = user_data_dir()
        && data.join("models/models.toml").is_file()
    {
        return data;
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// `$XDG_DATA_HOME/mattecam`, or `~/.local/share/mattecam`.
pub fn user_data_dir() -> Option<PathBuf> {
    let absolute = |var: &str| std::env::var_os(var).map(PathBuf::from).filter(|p| p.is_absolute());
    absolute("XDG_DATA_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/share")))
        .map(|data| data.join("mattecam"))
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

/// The current UTC time as `YYYYMMDD-HHMMSS`, for file names that sort by time.
pub fn utc_stamp() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{:02}{:02}{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}
