//! The `ffmpeg` and `ffprobe` programs, run as subprocesses.
//!
//! A subprocess rather than libav bindings: it needs no `-dev` packages or bindgen at build time, it follows
//! whatever ffmpeg the system has, and decoding or encoding runs in its own process, on its own core, beside
//! inference.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::paths::display;

#[derive(Debug, thiserror::Error)]
pub enum FfmpegError {
    #[error(
        "`{program}` was not found or does not run ({reason}); install ffmpeg (Debian: `apt-get install ffmpeg`) or set {env} to its path"
    )]
    Missing { program: &'static str, env: &'static str, reason: String },
    #[error("{} is not a readable video ({reason}); the file is corrupt, truncated or not a video: re-export or re-download it", display(.path))]
    Unreadable { path: PathBuf, reason: String },
    #[error("could not start `{program}`: {source}")]
    Spawn { program: &'static str, source: std::io::Error },
}

/// Path of a tool, from its environment variable or PATH, checked to run.
fn tool(program: &'static str, env: &'static str) -> Result<PathBuf, FfmpegError> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(program));
    match Command::new(&path).arg("-version").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(status) if status.success() => Ok(path),
        Ok(status) => Err(FfmpegError::Missing {
            program,
            env,
            reason: format!("`{} -version` exited with {status}", path.display()),
        }),
        Err(err) => Err(FfmpegError::Missing { program, env, reason: format!("{}: {err}", path.display()) }),
    }
}

pub fn ffmpeg() -> Result<PathBuf, FfmpegError> {
    tool("ffmpeg", "MATTECAM_FFMPEG")
}

pub fn ffprobe() -> Result<PathBuf, FfmpegError> {
    tool("ffprobe", "MATTECAM_FFPROBE")
}

/// What `ffprobe` says about the first video stream of a file.
#[derive(Clone, Debug, PartialEq)]
pub struct VideoInfo {
    /// Size of the decoded (display-rotated) frames.
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    /// Frame count from the container, when it records one.
    pub frame_count: Option<u64>,
}

pub fn probe(path: &Path) -> Result<VideoInfo, FfmpegError> {
    let ffprobe = ffprobe()?;
    let output = Command::new(&ffprobe)
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=width,height,avg_frame_rate,r_frame_rate,nb_frames:stream_side_data=rotation")
        .args(["-of", "json"])
        .arg(path)
        .stdin(Stdio::null())
        .output()
        .map_err(|source| FfmpegError::Spawn { program: "ffprobe", source })?;
    let unreadable = |reason: String| FfmpegError::Unreadable { path: path.to_path_buf(), reason };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(unreadable(format!("ffprobe: {}", last_line(&stderr))));
    }
    let json: serde_json::Value =
        serde_json::from_slice(&output.stdout).map_err(|err| unreadable(format!("ffprobe printed no JSON: {err}")))?;
    let stream = json["streams"].get(0).ok_or_else(|| unreadable("it has no video stream".into()))?;
    let dim = |key: &str| stream[key].as_u64().filter(|v| *v > 0).map(|v| v as u32);
    let (Some(mut width), Some(mut height)) = (dim("width"), dim("height")) else {
        return Err(unreadable("its video stream has no frame size".into()));
    };
    let rotation = stream["side_data_list"]
        .as_array()
        .and_then(|list| list.iter().find_map(|item| item["rotation"].as_i64()))
        .unwrap_or(0);
    if rotation.rem_euclid(180) == 90 {
        std::mem::swap(&mut width, &mut height);
    }
    let fps = [stream["avg_frame_rate"].as_str(), stream["r_frame_rate"].as_str()]
        .into_iter()
        .flatten()
        .find_map(parse_rate)
        .unwrap_or(25.0);
    let frame_count = stream["nb_frames"].as_str().and_then(|s| s.parse().ok()).filter(|n| *n > 0);
    Ok(VideoInfo { width, height, fps, frame_count })
}

fn parse_rate(text: &str) -> Option<f64> {
    let (num, den) = text.split_once('/')?;
    let (num, den): (f64, f64) = (num.parse().ok()?, den.parse().ok()?);
    (num > 0.0 && den > 0.0).then_some(num / den)
}

/// The last non-empty line of a tool's error output, for one-line messages.
pub fn last_line(text: &str) -> String {
    text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("no message").trim().to_string()
}

/// Collects a child's stderr on a named thread so that a chatty ffmpeg never blocks on a full pipe.
pub struct StderrCollector {
    handle: Option<std::thread::JoinHandle<String>>,
}

impl StderrCollector {
    pub fn start(child: &mut Child, name: &str) -> Self {
        let handle = child.stderr.take().map(|mut stderr| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(move || {
                    let mut text = String::new();
                    let _ = stderr.read_to_string(&mut text);
                    text
                })
                .expect("failed to spawn a thread")
        });
        Self { handle }
    }

    pub fn finish(mut self) -> String {
        self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default()
    }
}

/// Puts an ffmpeg child in a process group of its own, so that Ctrl-C in the terminal reaches only us:
/// we then finish the recording and close ffmpeg's input ourselves, instead of ffmpeg stopping mid-frame.
pub fn own_process_group(command: &mut Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        command.process_group(0);
    }
}
