//! Video files, decoded to RGB by an `ffmpeg` subprocess.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Instant;

use super::{FrameSource, SourceError, SourceInfo};
use crate::ffmpeg::{self, StderrCollector};
use crate::frame::Frame;

pub struct VideoSource {
    info: SourceInfo,
    path: PathBuf,
    child: Child,
    stdout: ChildStdout,
    stderr: Option<StderrCollector>,
    next_seq: u64,
    finished: bool,
}

impl VideoSource {
    pub fn open(path: &Path) -> Result<Self, SourceError> {
        if !path.exists() {
            return Err(SourceError::NotFound(path.to_path_buf()));
        }
        let probe = ffmpeg::probe(path)?;
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let info = SourceInfo {
            name,
            width: probe.width,
            height: probe.height,
            fps: probe.fps,
            frame_count: probe.frame_count,
            live: false,
        };
        Self::decode(path, info)
    }

    /// The same file from its start again, without probing it again (a looped video).
    pub fn restart(&self) -> Result<Self, SourceError> {
        Self::decode(&self.path, self.info.clone())
    }

    fn decode(path: &Path, info: SourceInfo) -> Result<Self, SourceError> {
        let mut command = Command::new(ffmpeg::ffmpeg()?);
        ffmpeg::own_process_group(&mut command);
        let mut child = command
            .args(["-nostdin", "-v", "error"])
            .args(ffmpeg::INPUT_PROTOCOLS)
            .arg("-i")
            .arg(ffmpeg::file_arg(path))
            .args(["-map", "0:v:0", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ffmpeg::FfmpegError::Spawn { program: "ffmpeg", source })?;
        let stdout = child.stdout.take().expect("stdout was piped");
        widen_pipe(&stdout);
        let stderr = Some(StderrCollector::start(&mut child, "ffmpeg-decode-stderr"));
        Ok(Self { info, path: path.to_path_buf(), child, stdout, stderr, next_seq: 0, finished: false })
    }

    /// Called at the end of the stream: a decoder that failed, or complained, means the file is damaged.
    fn check_clean_end(&mut self, partial_bytes: usize) -> Result<(), SourceError> {
        self.finished = true;
        let status = ffmpeg::wait_within(&mut self.child, "ffmpeg", None)?;
        let stderr = self.stderr.take().map(StderrCollector::finish).unwrap_or_default();
        let truncated =
            |reason: String| SourceError::Truncated { path: self.path.clone(), decoded: self.next_seq, reason };
        if !status.success() {
            return Err(truncated(format!("ffmpeg: {}", ffmpeg::last_line(&stderr))));
        }
        if partial_bytes > 0 {
            return Err(truncated("the last frame is incomplete".into()));
        }
        if !stderr.trim().is_empty() {
            return Err(truncated(format!("ffmpeg: {}", ffmpeg::last_line(&stderr))));
        }
        if self.next_seq == 0 {
            return Err(truncated("it holds no decodable frame".into()));
        }
        Ok(())
    }
}

/// A frame is megabytes and a pipe holds 64 KB: each frame would take dozens of switches between ffmpeg
/// and the reading thread, each one taking a core from the model for a moment. A 1 MB pipe (Linux's
/// default limit for unprivileged processes) takes a few. Where the call fails, the default stays.
fn widen_pipe(pipe: &ChildStdout) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_SETPIPE_SZ on a pipe we own; the result is only a size or an error code.
        let _ = unsafe { libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20) };
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

impl FrameSource for VideoSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn reopen(&self) -> Result<Option<Box<dyn FrameSource>>, SourceError> {
        Ok(Some(Box::new(self.restart()?)))
    }

    fn next_frame(&mut self, mut buf: Vec<u8>) -> Result<Option<Frame>, SourceError> {
        if self.finished {
            return Ok(None);
        }
        let frame_bytes = self.info.width as usize * self.info.height as usize * 3;
        buf.resize(frame_bytes, 0);
        let mut filled = 0;
        while filled < frame_bytes {
            // A decoder that stops producing (stopped, stuck) fails the run instead of stalling it.
            #[cfg(unix)]
            if !ffmpeg::ready_within(std::os::fd::AsRawFd::as_raw_fd(&self.stdout), false) {
                self.finished = true;
                ffmpeg::kill(&mut self.child);
                let hung = ffmpeg::FfmpegError::Hung {
                    program: "ffmpeg",
                    seconds: ffmpeg::stall_timeout().as_secs_f64(),
                    env: ffmpeg::TIMEOUT_ENV,
                };
                return Err(hung.into());
            }
            match self.stdout.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(source) => {
                    return Err(SourceError::Io { path: self.path.clone(), source });
                }
            }
        }
        if filled < frame_bytes {
            self.check_clean_end(filled)?;
            return Ok(None);
        }
        let seq = self.next_seq;
        self.next_seq += 1;
        Ok(Some(Frame {
            seq,
            captured_at: Instant::now(),
            pts_ms: seq as f64 * 1000.0 / self.info.fps,
            width: self.info.width,
            height: self.info.height,
            rgb: buf,
        }))
    }
}

impl Drop for VideoSource {
    fn drop(&mut self) {
        if !self.finished {
            ffmpeg::kill(&mut self.child);
        }
    }
}
