//! What goes behind the person: the modes, the pictures an image or video background shows, and the CPU's
//! background planes (a blur of the frame, or the picture fitted to the frame).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::CompositeError;
use crate::frame::Frame;
use crate::latest::LatestSlot;
use crate::resample::{ResampleKind, Resampler};
use crate::source::FrameSource;
use crate::source::video::VideoSource;

/// Blur radius used by `blur` without a number, in pixels of a 720p frame.
pub const DEFAULT_BLUR_RADIUS_PX: u32 = 24;

/// Box-blur passes a blur background makes.
pub const BLUR_PASSES: usize = 3;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum Background {
    /// The original frame, blurred.
    Blur {
        radius_px: u32,
    },
    Color([u8; 3]),
    /// An image, scaled to cover the frame and centred.
    Image(PathBuf),
    /// A video file, looped, scaled to cover and centred.
    Video(PathBuf),
    /// No background: RGBA out, colours straight or premultiplied by alpha.
    Transparent {
        premultiplied: bool,
    },
}

impl Default for Background {
    fn default() -> Self {
        Self::Blur { radius_px: DEFAULT_BLUR_RADIUS_PX }
    }
}

impl Background {
    pub fn has_alpha(&self) -> bool {
        matches!(self, Self::Transparent { .. })
    }

    /// Whether the background is made from the frame itself (so it moves with the person when mirrored).
    pub fn follows_frame(&self) -> bool {
        matches!(self, Self::Blur { .. })
    }

    /// The file the background shows, if any: a change of it is the only change that opens a file.
    pub fn file(&self) -> Option<&Path> {
        match self {
            Self::Image(path) | Self::Video(path) => Some(path),
            _ => None,
        }
    }
}

/// How a video background advances.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Pacing {
    /// One video frame behind each frame, in order: a file run gives the same output every time.
    #[default]
    OnePerFrame,
    /// At the video's own rate, whatever the model's: the live picture (the newest decoded frame is used).
    RealTime,
}

/// The pictures an image or video background shows, loaded once and shared by both compositors.
pub enum BackgroundMedia {
    None,
    Image { width: u32, height: u32, rgb: Vec<u8> },
    Video(Box<LoopingVideo>),
}

impl BackgroundMedia {
    /// Opens the background's file now, so a bad path is an error before the first frame.
    pub fn open(background: &Background, pacing: Pacing) -> Result<Self, CompositeError> {
        match background {
            Background::Image(path) => {
                let (width, height, rgb) = crate::imageio::load_rgb(path)
                    .map_err(|err| CompositeError::BackgroundImage { path: path.clone(), reason: err.to_string() })?;
                Ok(Self::Image { width, height, rgb })
            }
            Background::Video(path) => Ok(Self::Video(Box::new(LoopingVideo::open(path, pacing)?))),
            _ => Ok(Self::None),
        }
    }

    /// The picture behind the next frame, and whether it differs from the last one returned.
    pub fn next_picture(&mut self) -> Result<Option<BackgroundPicture<'_>>, CompositeError> {
        match self {
            Self::None => Ok(None),
            Self::Image { width, height, rgb } => {
                Ok(Some(BackgroundPicture { width: *width, height: *height, rgb, fresh: false }))
            }
            Self::Video(video) => video.next().map(Some),
        }
    }
}

/// One background picture, packed RGB.
pub struct BackgroundPicture<'a> {
    pub width: u32,
    pub height: u32,
    pub rgb: &'a [u8],
    /// A new video frame (an image background is the same picture every time).
    pub fresh: bool,
}

/// How long the first frame of a video background may take to decode before it counts as broken.
const FIRST_FRAME_TIMEOUT: Duration = Duration::from_secs(20);

/// A video file played from the start again when it ends, decoded on a thread of its own
/// ("background-video") so that neither the compositor nor the window waits for ffmpeg; the file is
/// probed once, not at every loop.
pub struct LoopingVideo {
    path: PathBuf,
    pacing: Pacing,
    decoded: Arc<LatestSlot<Result<Frame, String>>>,
    /// `OnePerFrame`: decoded frames in order.
    ordered: Option<crossbeam_channel::Receiver<Result<Frame, String>>>,
    spent: crossbeam_channel::Sender<Vec<u8>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    current: Option<Frame>,
}

impl LoopingVideo {
    pub fn open(path: &Path, pacing: Pacing) -> Result<Self, CompositeError> {
        let source = VideoSource::open(path).map_err(|err| Self::error(path, err))?;
        let decoded = Arc::new(LatestSlot::new());
        let (ordered_tx, ordered_rx) = crossbeam_channel::bounded(2);
        let (spent, spent_rx) = crossbeam_channel::bounded::<Vec<u8>>(4);
        let stop = Arc::new(AtomicBool::new(false));
        let (slot, thread_stop, file) = (Arc::clone(&decoded), Arc::clone(&stop), path.to_path_buf());
        let thread = std::thread::Builder::new()
            .name("background-video".into())
            .spawn(move || {
                let mut decoder = Decoder { source, file, started: Instant::now(), delivered: 0 };
                // A real-time frame the compositor never took gives its buffer to the next decode.
                let mut recycled: Option<Vec<u8>> = None;
                while !thread_stop.load(Ordering::Relaxed) {
                    let buffer = recycled.take().or_else(|| spent_rx.try_recv().ok()).unwrap_or_default();
                    let next = decoder.next(buffer);
                    let failed = next.is_err();
                    match pacing {
                        Pacing::OnePerFrame => {
                            if ordered_tx.send(next).is_err() {
                                break;
                            }
                        }
                        Pacing::RealTime => {
                            decoder.wait_until_due(&thread_stop);
                            if let Some(Ok(stale)) = slot.put(next) {
                                recycled = Some(stale.rgb);
                            }
                        }
                    }
                    if failed {
                        break;
                    }
                }
                slot.close();
            })
            .expect("failed to spawn the background video thread");
        let ordered = (pacing == Pacing::OnePerFrame).then_some(ordered_rx);
        let mut video = Self {
            path: path.to_path_buf(),
            pacing,
            decoded,
            ordered,
            spent,
            stop,
            thread: Some(thread),
            current: None,
        };
        // The first frame now: a file that does not decode is an error where the background is chosen.
        video.next()?;
        Ok(video)
    }

    pub fn pacing(&self) -> Pacing {
        self.pacing
    }

    fn error(path: &Path, err: impl std::fmt::Display) -> CompositeError {
        CompositeError::BackgroundVideo { path: path.to_path_buf(), reason: err.to_string() }
    }

    fn next(&mut self) -> Result<BackgroundPicture<'_>, CompositeError> {
        let received = match (&self.ordered, &self.current) {
            (Some(ordered), _) => {
                Some(ordered.recv_timeout(FIRST_FRAME_TIMEOUT).map_err(|_| "the decoder stopped".to_string()))
            }
            (None, Some(_)) => self.decoded.take_timeout(Duration::ZERO).map(Ok),
            (None, None) => Some(
                self.decoded
                    .take_timeout(FIRST_FRAME_TIMEOUT)
                    .ok_or_else(|| "no frame came from the decoder".to_string()),
            ),
        };
        let fresh = match received {
            Some(result) => {
                let frame = result.and_then(|decoded| decoded).map_err(|err| Self::error(&self.path, err))?;
                if let Some(old) = self.current.replace(frame) {
                    let _ = self.spent.try_send(old.rgb);
                }
                true
            }
            None => false,
        };
        let frame = self.current.as_ref().expect("a frame was decoded");
        Ok(BackgroundPicture { width: frame.width, height: frame.height, rgb: &frame.rgb, fresh })
    }
}

impl Drop for LoopingVideo {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Unblock a decoder waiting to hand over a frame.
        self.ordered = None;
        while self.decoded.take_timeout(Duration::ZERO).is_some() {}
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The decoding side of [`LoopingVideo`]: reads, loops without probing again, paces.
struct Decoder {
    source: VideoSource,
    file: PathBuf,
    started: Instant,
    delivered: u64,
}

impl Decoder {
    fn next(&mut self, buffer: Vec<u8>) -> Result<Frame, String> {
        if let Some(frame) = self.source.next_frame(buffer).map_err(|err| err.to_string())? {
            return Ok(frame);
        }
        self.source = self.source.restart().map_err(|err| err.to_string())?;
        self.source
            .next_frame(Vec::new())
            .map_err(|err| err.to_string())?
            .ok_or_else(|| format!("{} has no frames", crate::paths::display(&self.file)))
    }

    /// Real time: sleeps until this frame's time at the video's rate.
    fn wait_until_due(&mut self, stop: &AtomicBool) {
        let fps = self.source.info().fps.max(1.0);
        let due = self.started + Duration::from_secs_f64(self.delivered as f64 / fps);
        self.delivered += 1;
        while !stop.load(Ordering::Relaxed) {
            let left = due.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            std::thread::sleep(left.min(Duration::from_millis(50)));
        }
    }
}

/// The image a blur background is blurred at, and the box radius there: the frame is shrunk so the radius
/// (given for a 720-line frame, scaled with the frame) is about three pixels, box-blurred three times
/// (close to a Gaussian) and enlarged back.
pub fn blur_geometry(radius_px: u32, width: u32, height: u32) -> (u32, u32, u32) {
    let radius = radius_px as f32 * height as f32 / 720.0;
    let factor = (radius / 3.0).max(1.0);
    let small = |side: u32| ((side as f32 / factor).round() as u32).max(1);
    (small(width), small(height), (radius / factor).round() as u32)
}

/// Box blur of `radius` over planar RGB, horizontal then vertical, edge pixels repeated; each output is
/// the window's sum from its lowest index, divided by the window size.
pub fn box_blur_planes(planes: &mut [f32], scratch: &mut Vec<f32>, width: usize, height: usize, radius: usize) {
    if radius == 0 {
        return;
    }
    scratch.resize(planes.len(), 0.0);
    let r = radius as isize;
    let window = (2 * radius + 1) as f32;
    let n = width * height;
    for c in 0..3 {
        let plane = &mut planes[c * n..(c + 1) * n];
        let tmp = &mut scratch[c * n..(c + 1) * n];
        for y in 0..height {
            for x in 0..width {
                let sum = (-r..=r)
                    .fold(0.0f32, |s, i| s + plane[y * width + (x as isize + i).clamp(0, width as isize - 1) as usize]);
                tmp[y * width + x] = sum / window;
            }
        }
        for y in 0..height {
            for x in 0..width {
                let sum = (-r..=r)
                    .fold(0.0f32, |s, i| s + tmp[(y as isize + i).clamp(0, height as isize - 1) as usize * width + x]);
                plane[y * width + x] = sum / window;
            }
        }
    }
}

/// The CPU's background at frame size, planar RGB in [0, 1], with the resamplers that make it kept
/// between frames.
#[derive(Default)]
pub struct BackgroundPlanes {
    pub planes: Vec<f32>,
    /// The size an image background was fitted to (refitted only when it or the picture changes).
    fitted: Option<(u32, u32)>,
    fit: Option<Resampler>,
    blur_down: Option<Resampler>,
    blur_up: Option<Resampler>,
    small: Vec<f32>,
    small_scratch: Vec<f32>,
}

impl BackgroundPlanes {
    /// Fills the planes for a blur, image or video background (nothing for a colour or transparency).
    pub fn fill(
        &mut self,
        background: &Background,
        media: &mut BackgroundMedia,
        frame: &Frame,
    ) -> Result<(), CompositeError> {
        let (w, h) = (frame.width, frame.height);
        let n = w as usize * h as usize;
        match background {
            Background::Blur { radius_px } => {
                let (sw, sh, radius) = blur_geometry(*radius_px, w, h);
                self.small.resize(3 * sw as usize * sh as usize, 0.0);
                Resampler::reuse(&mut self.blur_down, ResampleKind::Area, w, h, sw, sh).rgb8_to_planar(
                    &frame.rgb,
                    &mut self.small,
                    1.0 / 255.0,
                    0.0,
                );
                for _ in 0..BLUR_PASSES {
                    box_blur_planes(
                        &mut self.small,
                        &mut self.small_scratch,
                        sw as usize,
                        sh as usize,
                        radius as usize,
                    );
                }
                self.planes.resize(3 * n, 0.0);
                let up = Resampler::reuse(&mut self.blur_up, ResampleKind::Bilinear, sw, sh, w, h);
                let small_n = sw as usize * sh as usize;
                for c in 0..3 {
                    up.gray_f32(&self.small[c * small_n..(c + 1) * small_n], &mut self.planes[c * n..(c + 1) * n]);
                }
                self.fitted = None;
            }
            Background::Image(_) | Background::Video(_) => {
                let picture = media.next_picture()?.expect("image and video backgrounds have media");
                let BackgroundPicture { width: pw, height: ph, rgb, fresh } = picture;
                if !fresh && self.fitted == Some((w, h)) {
                    return Ok(());
                }
                if !self.fit.as_ref().is_some_and(|r| r.src_size() == (pw, ph) && r.dst_size() == (w, h)) {
                    self.fit = Some(Resampler::cover(ResampleKind::Bilinear, pw, ph, w, h));
                }
                self.planes.resize(3 * n, 0.0);
                self.fit.as_mut().expect("set above").rgb8_to_planar(rgb, &mut self.planes, 1.0 / 255.0, 0.0);
                self.fitted = Some((w, h));
            }
            Background::Color(_) | Background::Transparent { .. } => {}
        }
        Ok(())
    }

    /// The next fill refits an image background (it changed).
    pub fn forget_fit(&mut self) {
        self.fitted = None;
    }
}

impl std::str::FromStr for Background {
    type Err = CompositeError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || CompositeError::BadSpec(text.to_string());
        let (kind, arg) = text.split_once(':').map_or((text, None), |(k, a)| (k, Some(a)));
        match (kind, arg) {
            ("blur", None) => Ok(Self::default()),
            ("blur", Some(radius)) => Ok(Self::Blur { radius_px: radius.parse().map_err(|_| bad())? }),
            ("color" | "colour", Some(hex)) => {
                let hex = hex.strip_prefix('#').unwrap_or(hex);
                if hex.len() != 6 || !hex.is_ascii() {
                    return Err(bad());
                }
                let channel = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
                Ok(Self::Color([channel(0)?, channel(2)?, channel(4)?]))
            }
            ("image", Some(path)) if !path.is_empty() => Ok(Self::Image(PathBuf::from(path))),
            ("video", Some(path)) if !path.is_empty() => Ok(Self::Video(PathBuf::from(path))),
            ("transparent", None | Some("straight")) => Ok(Self::Transparent { premultiplied: false }),
            ("transparent", Some("premultiplied")) => Ok(Self::Transparent { premultiplied: true }),
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        assert_eq!("blur".parse::<Background>().unwrap(), Background::Blur { radius_px: 24 });
        assert_eq!("blur:8".parse::<Background>().unwrap(), Background::Blur { radius_px: 8 });
        assert_eq!("color:#00ff80".parse::<Background>().unwrap(), Background::Color([0, 255, 128]));
        assert_eq!("image:a.png".parse::<Background>().unwrap(), Background::Image("a.png".into()));
        assert_eq!("video:b.mp4".parse::<Background>().unwrap(), Background::Video("b.mp4".into()));
        assert_eq!("transparent".parse::<Background>().unwrap(), Background::Transparent { premultiplied: false });
        assert_eq!(
            "transparent:premultiplied".parse::<Background>().unwrap(),
            Background::Transparent { premultiplied: true }
        );
        for bad in ["color:#12345", "color:zzzzzz", "blur:x", "image:", "video:", "green", "transparent:1"] {
            assert!(bad.parse::<Background>().is_err(), "{bad} should be refused");
        }
    }
}
