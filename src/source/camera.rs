//! Webcams, through `nokhwa`: the only module that imports it.
//!
//! nokhwa's camera handle cannot move between threads, so each camera lives on its own named capture
//! thread, which hands decoded frames over a one-frame channel.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, bounded};
use nokhwa::Camera;
use nokhwa::pixel_format::RgbFormat;
use nokhwa::utils::FrameFormat;
use nokhwa::utils::{ApiBackend, CameraFormat, CameraIndex, RequestedFormat, RequestedFormatType};

use super::{FrameSource, SourceError, SourceInfo};
use crate::frame::Frame;

/// How long a camera may stay silent before it counts as gone.
const FRAME_TIMEOUT: Duration = Duration::from_secs(3);

/// A camera the system offers, with the modes it reports.
#[derive(Clone, Debug)]
pub struct CameraDescription {
    pub index: u32,
    pub name: String,
    /// `(width, height, fps)` triples, largest first.
    pub modes: Vec<(u32, u32, u32)>,
}

/// Every camera the platform backend finds; an empty list (not an error) when there is none.
pub fn list_cameras() -> Vec<CameraDescription> {
    let Ok(found) = nokhwa::query(ApiBackend::Auto) else {
        return Vec::new();
    };
    found
        .iter()
        .enumerate()
        .map(|(position, info)| {
            let index = match info.index() {
                CameraIndex::Index(i) => *i,
                CameraIndex::String(_) => position as u32,
            };
            let modes = Camera::new(info.index().clone(), RequestedFormat::new::<RgbFormat>(RequestedFormatType::None))
                .and_then(|mut cam| cam.compatible_camera_formats())
                .map(|formats| {
                    let mut modes: Vec<_> = formats
                        .iter()
                        .map(|f| (f.resolution().width(), f.resolution().height(), f.frame_rate()))
                        .collect();
                    modes.sort_unstable_by_key(|m| std::cmp::Reverse((m.0 * m.1, m.2)));
                    modes.dedup();
                    modes
                })
                .unwrap_or_default();
            CameraDescription { index, name: info.human_name(), modes }
        })
        .collect()
}

pub struct CameraSource {
    info: SourceInfo,
    frames: Receiver<Result<Frame, SourceError>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl CameraSource {
    /// Opens camera `index` at its highest frame rate.
    pub fn open(index: u32) -> Result<Self, SourceError> {
        Self::open_mode(index, None)
    }

    /// Opens camera `index` in the mode closest to `(width, height, fps)`, or at its highest frame rate.
    pub fn open_mode(index: u32, mode: Option<(u32, u32, u32)>) -> Result<Self, SourceError> {
        let cameras = nokhwa::query(ApiBackend::Auto).unwrap_or_default();
        if cameras.is_empty() {
            return Err(SourceError::NoCamera);
        }
        let count = cameras.len();
        let Some(found) = cameras.into_iter().find(|c| matches!(c.index(), CameraIndex::Index(i) if *i == index))
        else {
            return Err(SourceError::NoSuchCamera { index, count });
        };
        let (info_tx, info_rx) = bounded(1);
        let (frame_tx, frames) = bounded(1);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(format!("camera-{index}"))
            .spawn(move || {
                let name = found.human_name();
                let camera_error = |reason: String| SourceError::Camera { name: name.clone(), reason };
                let wanted = match mode {
                    Some((width, height, fps)) => {
                        RequestedFormatType::Closest(CameraFormat::new_from(width, height, FrameFormat::MJPEG, fps))
                    }
                    None => RequestedFormatType::AbsoluteHighestFrameRate,
                };
                let requested = RequestedFormat::new::<RgbFormat>(wanted);
                let opened = Camera::new(found.index().clone(), requested).and_then(|mut camera| {
                    camera.open_stream()?;
                    Ok(camera)
                });
                let mut camera = match opened {
                    Ok(camera) => camera,
                    Err(err) => {
                        let _ = info_tx.send(Err(camera_error(err.to_string())));
                        return;
                    }
                };
                let resolution = camera.resolution();
                let info = SourceInfo {
                    name: name.clone(),
                    width: resolution.width(),
                    height: resolution.height(),
                    fps: camera.frame_rate() as f64,
                    frame_count: None,
                    live: true,
                };
                let _ = info_tx.send(Ok(info));
                let started_at = Instant::now();
                let mut seq = 0;
                while !thread_stop.load(Ordering::Relaxed) {
                    let frame = capture(&mut camera, seq, started_at).map_err(&camera_error);
                    let failed = frame.is_err();
                    if frame_tx.send(frame).is_err() || failed {
                        break;
                    }
                    seq += 1;
                }
                let _ = camera.stop_stream();
            })
            .expect("failed to spawn the camera thread");
        let info = info_rx.recv().unwrap_or_else(|_| {
            Err(SourceError::Camera { name: format!("camera {index}"), reason: "its capture thread ended".into() })
        })?;
        Ok(Self { info, frames, stop, thread: Some(thread) })
    }
}

fn capture(camera: &mut Camera, seq: u64, started_at: Instant) -> Result<Frame, String> {
    let buffer = camera.frame().map_err(|err| format!("stopped delivering frames ({err})"))?;
    let captured_at = Instant::now();
    let resolution = buffer.resolution();
    let (width, height) = (resolution.width(), resolution.height());
    let mut rgb = vec![0; width as usize * height as usize * 3];
    // YUYV and NV12 go through our kernels (BT.601 limited range, as UVC cameras send them, and as the
    // GPU compositor's `convert.wgsl` does); anything else, or a buffer with row padding, through nokhwa.
    let ours = match buffer.source_frame_format() {
        FrameFormat::YUYV => crate::color::rgb_from_yuyv(buffer.buffer(), width, height, &mut rgb).is_ok(),
        FrameFormat::NV12 => crate::color::rgb_from_nv12(buffer.buffer(), width, height, &mut rgb).is_ok(),
        _ => false,
    };
    if !ours {
        buffer
            .decode_image_to_buffer::<RgbFormat>(&mut rgb)
            .map_err(|err| format!("sent a frame that does not decode ({err})"))?;
    }
    let pts_ms = captured_at.duration_since(started_at).as_secs_f64() * 1000.0;
    Ok(Frame { seq, captured_at, pts_ms, width, height, rgb })
}

impl FrameSource for CameraSource {
    fn info(&self) -> &SourceInfo {
        &self.info
    }

    fn next_frame(&mut self, _buf: Vec<u8>) -> Result<Option<Frame>, SourceError> {
        match self.frames.recv_timeout(FRAME_TIMEOUT) {
            Ok(frame) => frame.map(Some),
            Err(RecvTimeoutError::Timeout) => Err(SourceError::Camera {
                name: self.info.name.clone(),
                reason: format!("sent no frame for {} s (unplugged?)", FRAME_TIMEOUT.as_secs()),
            }),
            Err(RecvTimeoutError::Disconnected) => {
                Err(SourceError::Camera { name: self.info.name.clone(), reason: "its capture thread ended".into() })
            }
        }
    }
}

impl Drop for CameraSource {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock a capture thread waiting to hand over a frame.
        while self.frames.try_recv().is_ok() {}
        // A camera stuck inside its driver may never return; give it a moment, then leave it detached
        // rather than hang the app.
        let deadline = Instant::now() + Duration::from_secs(1);
        while self.thread.as_ref().is_some_and(|t| !t.is_finished()) && Instant::now() < deadline {
            while self.frames.try_recv().is_ok() {}
            std::thread::sleep(Duration::from_millis(10));
        }
        if let Some(thread) = self.thread.take().filter(|t| t.is_finished()) {
            let _ = thread.join();
        }
    }
}
