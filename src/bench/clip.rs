//! The benchmark's input: whatever the user named, rendered once to an H.264 clip of the asked size and
//! length, so that every phase (and the Python reference) decodes exactly the same frames.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::BenchError;
use crate::ffmpeg::{self, FfmpegError};
use crate::source::SourceSpec;
use crate::source::synthetic::SyntheticSource;

/// The clip's frame rate when the source has none of its own (an image, the synthetic scene).
pub const CLIP_FPS: f64 = 30.0;

/// Writes `frames` frames of `source` at `width`x`height` to `out` (H.264, CRF 18: close to what a camera
/// or a screen recording gives). A video shorter than `frames` is looped.
pub fn render(source: &SourceSpec, width: u32, height: u32, frames: u64, out: &Path) -> Result<PathBuf, BenchError> {
    let mut command = Command::new(ffmpeg::ffmpeg()?);
    ffmpeg::own_process_group(&mut command);
    command.args(["-nostdin", "-v", "error", "-y"]);
    let input = match source {
        SourceSpec::Demo => Some(crate::paths::demo_clip()),
        SourceSpec::Path(path) => Some(path.clone()),
        SourceSpec::Synthetic { .. } => None,
        SourceSpec::Camera { .. } => return Err(BenchError::Camera),
    };
    let rate = CLIP_FPS.to_string();
    match &input {
        Some(path) if !path.is_file() => {
            return Err(BenchError::Source(crate::source::SourceError::NotFound(path.clone())));
        }
        Some(path) if crate::source::is_image_path(path) => {
            command.args(["-loop", "1", "-framerate", &rate]).args(ffmpeg::INPUT_PROTOCOLS);
            command.arg("-i").arg(ffmpeg::file_arg(path));
        }
        Some(path) => {
            command.args(["-stream_loop", "-1"]).args(ffmpeg::INPUT_PROTOCOLS);
            command.arg("-i").arg(ffmpeg::file_arg(path));
        }
        None => {
            let size = format!("{width}x{height}");
            command.args(["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", &size, "-r", &rate, "-i", "-"]);
        }
    }
    // Area scaling keeps the picture as sharp as a camera at that size would give it.
    let scale = format!("scale={width}:{height}:flags=area,setsar=1");
    command
        .args(["-frames:v", &frames.to_string(), "-vf", &scale, "-an", "-c:v", "libx264", "-preset", "veryfast"])
        .args(["-crf", "18", "-pix_fmt", "yuv420p"])
        .arg(ffmpeg::file_arg(out))
        .stdin(if input.is_none() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|source| FfmpegError::Spawn { program: "ffmpeg", source })?;
    let stderr = ffmpeg::StderrCollector::start(&mut child, "bench-clip-stderr");
    if let Some(mut stdin) = child.stdin.take() {
        let mut rgb = Vec::new();
        for seq in 0..frames {
            SyntheticSource::render(width, height, seq, &mut rgb);
            if stdin.write_all(&rgb).is_err() {
                break;
            }
        }
    }
    let status =
        ffmpeg::wait_within(&mut child, "ffmpeg", Some(out)).map_err(|err| BenchError::Clip(err.to_string()))?;
    let errors = stderr.finish();
    if !status.success() || !out.is_file() {
        return Err(BenchError::Clip(ffmpeg::last_line(&errors)));
    }
    Ok(out.to_path_buf())
}
