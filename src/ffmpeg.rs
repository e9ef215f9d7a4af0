//! The `ffmpeg` and `ffprobe` programs, run as subprocesses.
//!
//! A subprocess rather than libav bindings: it needs no `-dev` packages or bindgen at build time, it follows
//! whatever ffmpeg the system has, and decoding or encoding runs in its own process, on its own core, beside
//! inference.

use std::ffi::OsString;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

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
    #[error(
        "`{program}` stopped responding ({seconds:.0} s without progress) and was killed; it may be stopped or stuck (set {env} to allow it longer)"
    )]
    Hung { program: &'static str, seconds: f64, env: &'static str },
}

/// The variable that sets how long ffmpeg or ffprobe may go without progress before it counts as hung.
pub const TIMEOUT_ENV: &str = "MATTECAM_FFMPEG_TIMEOUT_S";

/// How long ffmpeg or ffprobe may go without progress (a frame read or written, a file growing) before it
/// is killed as hung: far longer than any frame takes, short enough that a stuck encoder fails a run
/// within seconds, not never.
pub fn stall_timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|text| text.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map_or(Duration::from_secs(15), |s| Duration::from_secs_f64(s.min(86_400.0)))
}

/// Arguments before an input: ffmpeg may only read files and pipes (a playlist or a crafted file cannot
/// make it open a network address or another protocol).
pub const INPUT_PROTOCOLS: [&str; 2] = ["-protocol_whitelist", "file,pipe"];

/// `path` as ffmpeg must be given it: through the `file:` protocol, so that a name starting with `-` is
/// not an option and one like `http:...` or `concat:...` is not another protocol.
pub fn file_arg(path: &Path) -> OsString {
    let mut arg = OsString::from("file:");
    arg.push(path.as_os_str());
    arg
}

/// Path of a tool, from its environment variable or PATH, checked to run.
fn tool(program: &'static str, env: &'static str) -> Result<PathBuf, FfmpegError> {
    let path = std::env::var_os(env).map(PathBuf::from).unwrap_or_else(|| PathBuf::from(program));
    let mut command = Command::new(&path);
    command.arg("-version");
    match run(&mut command, program, None) {
        Ok(output) if output.status.success() => Ok(path),
        Ok(output) => Err(FfmpegError::Missing {
            program,
            env,
            reason: format!("`{} -version` exited with {}", path.display(), output.status),
        }),
        Err(FfmpegError::Spawn { source, .. }) => {
            Err(FfmpegError::Missing { program, env, reason: format!("{}: {source}", path.display()) })
        }
        Err(err) => Err(FfmpegError::Missing { program, env, reason: err.to_string() }),
    }
}

/// Runs `command` to its end and collects its output, killing it when it makes no progress for
/// [`stall_timeout`]: progress is `grows` (a file it writes) getting longer, or without one, the program
/// ending at all.
pub fn run(command: &mut Command, program: &'static str, grows: Option<&Path>) -> Result<Output, FfmpegError> {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|source| FfmpegError::Spawn { program, source })?;
    let stdout = collect(child.stdout.take(), "ffmpeg-stdout");
    let stderr = StderrCollector::start(&mut child, "ffmpeg-stderr");
    let status = wait_within(&mut child, program, grows)?;
    let stdout = stdout.and_then(|h| h.join().ok()).unwrap_or_default();
    Ok(Output { status, stdout, stderr: stderr.finish().into_bytes() })
}

/// Waits for `child` to end, killing it when it makes no progress for [`stall_timeout`] (see [`run`]).
pub fn wait_within(
    child: &mut Child,
    program: &'static str,
    grows: Option<&Path>,
) -> Result<std::process::ExitStatus, FfmpegError> {
    let stall = stall_timeout();
    let size = |path: &Path| std::fs::metadata(path).map_or(0, |m| m.len());
    let (mut last_progress, mut last_size) = (Instant::now(), grows.map_or(0, size));
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ok(status),
            Ok(None) => {}
            Err(source) => return Err(FfmpegError::Spawn { program, source }),
        }
        if let Some(path) = grows
            && size(path) != last_size
        {
            (last_progress, last_size) = (Instant::now(), size(path));
        }
        if last_progress.elapsed() >= stall {
            kill(child);
            return Err(FfmpegError::Hung { program, seconds: stall.as_secs_f64(), env: TIMEOUT_ENV });
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn collect(pipe: Option<impl Read + Send + 'static>, name: &str) -> Option<std::thread::JoinHandle<Vec<u8>>> {
    let mut pipe = pipe?;
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(move || {
            let mut bytes = Vec::new();
            let _ = pipe.read_to_end(&mut bytes);
            bytes
        })
        .ok()
}

/// Waits until `fd` can be read (`out`: written) or [`stall_timeout`] passes: `false` when it timed out.
#[cfg(unix)]
pub fn ready_within(fd: std::os::fd::RawFd, out: bool) -> bool {
    let deadline = Instant::now() + stall_timeout();
    let events = if out { libc::POLLOUT } else { libc::POLLIN };
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        let mut poll = libc::pollfd { fd, events, revents: 0 };
        let ms = left.as_millis().min(i32::MAX as u128) as i32;
        // SAFETY: one pollfd that lives across the call.
        let rc = unsafe { libc::poll(&mut poll, 1, ms) };
        // Readable, writable, or the other end closed (the read or write then says so).
        if rc > 0 {
            return true;
        }
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return true;
        }
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
    let mut command = Command::new(&ffprobe);
    command
        .args(["-v", "error", "-select_streams", "v:0", "-show_entries"])
        .arg("stream=width,height,avg_frame_rate,r_frame_rate,nb_frames:stream_side_data=rotation")
        .args(["-of", "json"])
        .args(INPUT_PROTOCOLS)
        .arg(file_arg(path));
    let output = run(&mut command, "ffprobe", None)?;
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
    handle: Option<std::thread::JoinHandle<Vec<u8>>>,
}

impl StderrCollector {
    /// (Should the thread not start, the messages are lost, never the run.)
    pub fn start(child: &mut Child, name: &str) -> Self {
        Self { handle: collect(child.stderr.take(), name) }
    }

    pub fn finish(mut self) -> String {
        let bytes = self.handle.take().and_then(|h| h.join().ok()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }
}

/// Kills `child` and whatever it started (its process group, when it has its own: a wrapper script's
/// ffmpeg too), and reaps it.
pub fn kill(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: a signal to the group our own child leads (own_process_group); harmless if it has none.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
    }
    let _ = child.kill();
    let _ = child.wait();
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
