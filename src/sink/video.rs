//! H.264 MP4 through an `ffmpeg` subprocess reading raw RGB on its standard input.

use std::io::Write;
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};

use super::{Output, Partial, Sink, SinkError};
use crate::ffmpeg::{self, StderrCollector};

/// Quality of the H.264 encode (x264's constant rate factor; lower is better and bigger).
pub const DEFAULT_CRF: u8 = 18;

pub struct H264Sink {
    partial: Partial,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<StderrCollector>,
    frame_bytes: usize,
}

impl H264Sink {
    pub fn create(path: &Path, width: u32, height: u32, fps: f64) -> Result<Self, SinkError> {
        let ffmpeg = ffmpeg::ffmpeg()?;
        let partial = Partial::file(path)?;
        let mut child = Command::new(ffmpeg)
            .args(["-y", "-v", "error", "-f", "rawvideo", "-pix_fmt", "rgb24"])
            .args(["-s", &format!("{width}x{height}"), "-r", &format!("{fps}"), "-i", "-"])
            // yuv420p needs even sides.
            .args(["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"])
            .args(["-c:v", "libx264", "-preset", "veryfast", "-crf", &DEFAULT_CRF.to_string()])
            .args(["-pix_fmt", "yuv420p", "-movflags", "+faststart", "-f", "mp4"])
            .arg(partial.working())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ffmpeg::FfmpegError::Spawn { program: "ffmpeg", source })?;
        let stdin = child.stdin.take();
        let stderr = Some(StderrCollector::start(&mut child, "ffmpeg-encode-stderr"));
        Ok(Self { partial, child, stdin, stderr, frame_bytes: width as usize * height as usize * 3 })
    }

    fn encoder_error(&mut self, fallback: String) -> SinkError {
        drop(self.stdin.take());
        let _ = self.child.wait();
        let stderr = self.stderr.take().map(StderrCollector::finish).unwrap_or_default();
        let reason = if stderr.trim().is_empty() { fallback } else { ffmpeg::last_line(&stderr) };
        SinkError::Encoder { path: self.partial.target().to_path_buf(), reason }
    }
}

impl Sink for H264Sink {
    fn write(&mut self, output: &Output) -> Result<(), SinkError> {
        let c = &output.composite;
        assert_eq!(c.channels, 3, "H.264 sink takes RGB");
        if c.pixels.len() != self.frame_bytes {
            return Err(SinkError::Write {
                path: self.partial.target().to_path_buf(),
                reason: format!("frame size changed mid-stream to {}x{}", c.width, c.height),
            });
        }
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.encoder_error("encoder already closed".into()));
        };
        if let Err(err) = stdin.write_all(&c.pixels) {
            return Err(self.encoder_error(err.to_string()));
        }
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        drop(self.stdin.take());
        let status = self
            .child
            .wait()
            .map_err(|err| SinkError::Encoder { path: self.partial.target().to_path_buf(), reason: err.to_string() })?;
        if !status.success() {
            return Err(self.encoder_error(format!("ffmpeg exited with {status}")));
        }
        self.partial.commit()
    }

    fn path(&self) -> &Path {
        self.partial.target()
    }
}

impl Drop for H264Sink {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            drop(self.stdin.take());
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
