//! Stills of the live picture: the composite and the RGBA cutout as PNGs, written on their own thread so
//! the window never waits for the disk. Both are made by the CPU compositor, which the GPU compositor
//! matches exactly (tests/gpu.rs), from the frame and matte on screen.

use std::path::{Path, PathBuf};
use std::thread::JoinHandle;
use std::time::{SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender, bounded};

use crate::composite::cpu::{Composite, CpuCompositor};
use crate::composite::{Background, CompositeSettings, View};
use crate::frame::{Frame, Matte};
use crate::paths::display;
use crate::sink::{Partial, png};

pub struct SnapshotJob {
    pub frame: Frame,
    pub matte: Matte,
    pub settings: CompositeSettings,
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
    #[error("snapshot folder {}: {reason}", display(.dir))]
    Folder { dir: PathBuf, reason: String },
    #[error(transparent)]
    Composite(#[from] crate::composite::CompositeError),
    #[error(transparent)]
    Write(#[from] crate::sink::SinkError),
}

/// Writes snapshots on a thread named "snapshot"; results come back through [`Self::poll`].
pub struct SnapshotWriter {
    jobs: Option<Sender<SnapshotJob>>,
    results: Receiver<Result<SnapshotFiles, SnapshotError>>,
    thread: Option<JoinHandle<()>>,
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
        let thread = std::thread::Builder::new()
            .name("snapshot".into())
            .spawn(move || {
                for job in job_rx.iter() {
                    let _ = result_tx.send(write_snapshot(&job));
                }
            })
            .expect("failed to spawn the snapshot thread");
        Self { jobs: Some(jobs), results, thread: Some(thread) }
    }

    /// Queues a snapshot; refused while the previous one is still being written.
    pub fn request(&self, job: SnapshotJob) -> Result<(), SnapshotError> {
        let jobs = self.jobs.as_ref().expect("open until drop");
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

/// Composites `job` twice (as set, and as a straight-alpha cutout) and writes both PNGs, each under a
/// temporary name first so a full disk leaves no half-written file.
pub fn write_snapshot(job: &SnapshotJob) -> Result<SnapshotFiles, SnapshotError> {
    let folder_error = |reason: String| SnapshotError::Folder { dir: job.dir.clone(), reason };
    std::fs::create_dir_all(&job.dir).map_err(|err| folder_error(err.to_string()))?;
    let stamp_ms = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let files = SnapshotFiles {
        composite: job.dir.join(format!("mattecam-{stamp_ms}-composite.png")),
        cutout: job.dir.join(format!("mattecam-{stamp_ms}-cutout.png")),
    };
    let shown = CompositeSettings { view: View::Composite, ..job.settings.clone() };
    let cutout = CompositeSettings { background: Background::Transparent { premultiplied: false }, ..shown.clone() };
    let mut alpha = Vec::new();
    let mut picture = Composite::default();
    for (settings, path) in [(shown, &files.composite), (cutout, &files.cutout)] {
        CpuCompositor::new(settings)?.composite(&job.frame, &job.matte, &mut alpha, &mut picture)?;
        write_committed(path, &picture)?;
    }
    Ok(files)
}

fn write_committed(path: &Path, picture: &Composite) -> Result<(), SnapshotError> {
    let mut partial = Partial::file(path)?;
    png::write_png(partial.working(), picture.width, picture.height, picture.channels, &picture.pixels)?;
    Ok(partial.commit()?)
}
