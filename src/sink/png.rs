//! PNG outputs: one image, a sequence of composited frames, or a sequence of alpha mattes.

use std::path::Path;

use super::{Partial, Sink, SinkError, SinkFrame};

/// Writes a PNG (see [`crate::imageio::write_png`]), its failure as a sink's.
pub fn write_png(path: &Path, width: u32, height: u32, channels: u8, pixels: &[u8]) -> Result<(), SinkError> {
    crate::imageio::write_png(path, width, height, channels, pixels)
        .map_err(|err| SinkError::Write { path: path.to_path_buf(), reason: err.to_string() })
}

/// File name of frame `seq` in a sequence.
pub fn frame_file_name(seq: u64) -> String {
    format!("{seq:06}.png")
}

/// What a PNG sequence holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Content {
    Composite,
    Alpha,
}

pub struct PngSequenceSink {
    partial: Partial,
    content: Content,
    /// Files are numbered in the order written, from 0 (a recording repeats frames to keep its rate).
    written: u64,
    bytes: u64,
}

impl PngSequenceSink {
    pub fn create(dir: &Path, content: Content) -> Result<Self, SinkError> {
        Ok(Self { partial: Partial::dir(dir)?, content, written: 0, bytes: 0 })
    }
}

impl Sink for PngSequenceSink {
    fn write(&mut self, output: SinkFrame<'_>) -> Result<(), SinkError> {
        let path = self.partial.working().join(frame_file_name(self.written));
        let (w, h) = (output.frame.width, output.frame.height);
        let written = match self.content {
            Content::Composite => write_png(&path, w, h, output.picture.channels, &output.picture.pixels),
            Content::Alpha => write_png(&path, w, h, 1, output.alpha),
        };
        if let Err(err) = written {
            // Keep the complete frames (a full disk must not cost the take), never a half-written one.
            let _ = std::fs::remove_file(&path);
            let reason = match err {
                SinkError::Write { reason, .. } => reason,
                other => other.to_string(),
            };
            let kept = self.keep_incomplete().unwrap_or_else(|| "nothing was kept".to_string());
            return Err(SinkError::Write {
                path: self.partial.target().to_path_buf(),
                reason: format!("{reason}; {kept}"),
            });
        }
        self.bytes += std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        self.written += 1;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.partial.commit()
    }

    fn keep_incomplete(&mut self) -> Option<String> {
        if self.written == 0 {
            return None;
        }
        Some(match self.partial.keep_incomplete() {
            Ok(kept) => format!("the first {} frames are kept in {}", self.written, crate::paths::display(&kept)),
            Err(err) => format!("nothing could be kept ({err})"),
        })
    }

    fn path(&self) -> &Path {
        self.partial.target()
    }

    fn bytes_written(&self) -> u64 {
        self.bytes
    }
}

pub struct SinglePngSink {
    partial: Partial,
    written: bool,
}

impl SinglePngSink {
    pub fn create(path: &Path, overwrite: bool) -> Result<Self, SinkError> {
        Ok(Self { partial: Partial::file(path, overwrite)?, written: false })
    }
}

impl Sink for SinglePngSink {
    fn write(&mut self, output: SinkFrame<'_>) -> Result<(), SinkError> {
        if self.written {
            return Err(SinkError::SingleImageOverflow(self.partial.target().to_path_buf()));
        }
        let c = &output.picture;
        write_png(self.partial.working(), c.width, c.height, c.channels, &c.pixels)?;
        self.written = true;
        Ok(())
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.partial.commit()
    }

    fn path(&self) -> &Path {
        self.partial.target()
    }
}
