//! Stills of the picture on screen: the frame the window shows (the same shared output, not composited
//! again), saved as the picture (the composite, or the split view when it is on) and the RGBA cutout, on a
//! thread of its own ("snapshot") so the window never waits for the disk or the GPU.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::composite::output::cutout;
use crate::frame::{Composite, GpuImage, Output, Picture};
use crate::paths::display;
use crate::sink::{Partial, png};

/// One snapshot to write: the output on screen, and where.
pub struct SnapshotJob {
    pub output: Arc<Output>,
    pub dir: PathBuf,
}

/// The files one snapshot wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct SnapshotFiles {
    pub composite: PathBuf,
    pub cutout: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("a snapshot is still being written; try again in a moment")]
    Busy,
    #[error("nothing is on screen yet")]
    Nothing,
    #[error("snapshots are not available: their thread could not start ({0})")]
    Unavailable(String),
    #[error("snapshot folder {}: {reason}", display(.dir))]
    Folder { dir: PathBuf, reason: String },
    #[error(transparent)]
    Gpu(#[from] crate::gpu::GpuError),
    #[error(transparent)]
    Write(#[from] crate::sink::SinkError),
}

/// Writes snapshots on a thread named "snapshot"; results come back through [`Self::poll`].
pub struct SnapshotWriter {
    jobs: Option<Sender<SnapshotJob>>,
    results: Receiver<Result<SnapshotFiles, SnapshotError>>,
    thread: Option<JoinHandle<()>>,
    /// Why the thread could not start, if it could not.
    unavailable: Option<String>,
}

impl Default for SnapshotWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl SnapshotWriter {
    pub fn new() -> Self {
        let (jobs, job_rx) = bounded::<SnapshotJob>(1);
        let (result_tx, results) = bounded(4);
        let thread = std::thread::Builder::new().name("snapshot".into()).spawn(move || {
            for job in job_rx.iter() {
                let _ = result_tx.send(write_snapshot(&job));
            }
        });
        match thread {
            Ok(thread) => Self { jobs: Some(jobs), results, thread: Some(thread), unavailable: None },
            Err(err) => Self { jobs: None, results, thread: None, unavailable: Some(err.to_string()) },
        }
    }

    /// Queues a snapshot; refused while the previous one is still being written.
    pub fn request(&self, job: SnapshotJob) -> Result<(), SnapshotError> {
        let Some(jobs) = self.jobs.as_ref() else {
            return Err(SnapshotError::Unavailable(self.unavailable.clone().unwrap_or_default()));
        };
        jobs.try_send(job).map_err(|_| SnapshotError::Busy)
    }

    /// Finished snapshots, without waiting.
    pub fn poll(&self) -> Option<Result<SnapshotFiles, SnapshotError>> {
        self.results.try_recv().ok()
    }

    /// Waits for the next finished snapshot (tests).
    pub fn wait(&self, timeout: std::time::Duration) -> Option<Result<SnapshotFiles, SnapshotError>> {
        self.results.recv_timeout(timeout).ok()
    }
}

impl Drop for SnapshotWriter {
    fn drop(&mut self) {
        self.jobs = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Names that two snapshots in the same millisecond cannot share: the first free `-N` is taken.
fn free_names(dir: &Path) -> SnapshotFiles {
    let stamp_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let name = |n: u32, what: &str| {
        let suffix = if n == 0 { String::new() } else { format!("-{n}") };
        dir.join(format!("mattecam-{stamp_ms}{suffix}-{what}.png"))
    };
    let n = (0..).find(|&n| !name(n, "composite").exists() && !name(n, "cutout").exists()).expect("a free name");
    SnapshotFiles { composite: name(n, "composite"), cutout: name(n, "cutout") }
}

/// Writes the picture on screen and the cutout, each under a temporary name first so a full disk leaves
/// no half-written file.
pub fn write_snapshot(job: &SnapshotJob) -> Result<SnapshotFiles, SnapshotError> {
    let folder_error = |reason: String| SnapshotError::Folder { dir: job.dir.clone(), reason };
    std::fs::create_dir_all(&job.dir).map_err(|err| folder_error(err.to_string()))?;
    let output = &job.output;
    // On the window's GPU the pixels may exist only there: read back the textures of this very frame.
    let read_back;
    let (picture, shown) = match (&output.gpu, !output.has_pixels()) {
        (Some(gpu), true) => {
            read_back = read_textures(gpu, output.transparent.is_some())?;
            (&read_back.0, read_back.1.as_ref().unwrap_or(&read_back.0.composite))
        }
        _ => (&output.picture, output.shown()),
    };
    if picture.alpha.is_empty() {
        return Err(SnapshotError::Nothing);
    }
    let files = free_names(&job.dir);
    write_committed(&files.composite, shown)?;
    let (frame, premultiplied) = (&output.frame, output.transparent == Some(true));
    let mut person = Composite::default();
    let fg = output.matte.foreground_for(frame);
    cutout(fg, &picture.alpha, frame.width, frame.height, output.mirror, premultiplied, &mut person);
    write_committed(&files.cutout, &person)?;
    Ok(files)
}

/// The composite (with its alpha) and, when the window shows another picture (the split view), that one.
fn read_textures(gpu: &GpuImage, transparent: bool) -> Result<(Picture, Option<Composite>), SnapshotError> {
    let read = |texture: &wgpu::Texture| crate::gpu::readback::read_texture(&gpu.device, &gpu.queue, texture);
    let rgba = read(&gpu.composite)?;
    let (w, h) = (gpu.composite.width(), gpu.composite.height());
    let mut picture = Picture { alpha: rgba.chunks_exact(4).map(|p| p[3]).collect(), ..Default::default() };
    picture.composite = if transparent {
        Composite { width: w, height: h, channels: 4, pixels: rgba }
    } else {
        Composite {
            width: w,
            height: h,
            channels: 3,
            pixels: rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        }
    };
    // A split view is its own texture; a transparent composite shown over the checkerboard is saved as it
    // is, with its alpha.
    let split = (!Arc::ptr_eq(&gpu.shown, &gpu.composite) && gpu.shown.size() != gpu.composite.size())
        .then(|| read(&gpu.shown))
        .transpose()?
        .map(|rgba| Composite {
            width: gpu.shown.width(),
            height: gpu.shown.height(),
            channels: 3,
            pixels: rgba.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect(),
        });
    Ok((picture, split))
}

fn write_committed(path: &Path, picture: &Composite) -> Result<(), SnapshotError> {
    let mut partial = Partial::file(path, false)?;
    png::write_png(partial.working(), picture.width, picture.height, picture.channels, &picture.pixels)?;
    Ok(partial.commit()?)
}
