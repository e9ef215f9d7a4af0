//! The v4l2loopback output: find a loopback device (sysfs, or `VIDIOC_QUERYCAP`), set YUYV with
//! `VIDIOC_S_FMT` and `write()` each frame, as backscrub and OBS do. Who has the device open is watched
//! with inotify (as Linux-Fake-Background-Webcam does): with no reader, nothing is written and the engine
//! may pause.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use super::convert::{PixelFormat, convert};
use super::{CameraShared, CameraState, Clock, Feed, POLL};

/// The line that makes a loopback camera apps can see. `exclusive_caps=1`: the device says it is only a
/// capture device once we write, which Chrome and WebRTC apps need before they list it.
pub const MODPROBE: &str = "sudo modprobe v4l2loopback devices=1 video_nr=10 card_label=mattecam exclusive_caps=1";

const VIDIOC_QUERYCAP: libc::c_ulong = 0x8068_5600;
const VIDIOC_S_FMT: libc::c_ulong = 0xc0d0_5605;
const V4L2_BUF_TYPE_VIDEO_OUTPUT: u32 = 2;
const V4L2_FIELD_NONE: u32 = 1;
const V4L2_PIX_FMT_YUYV: u32 = u32::from_le_bytes(*b"YUYV");
const V4L2_COLORSPACE_SMPTE170M: u32 = 1;
const V4L2_YCBCR_ENC_601: u32 = 1;
const V4L2_QUANTIZATION_LIM_RANGE: u32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum V4l2Error {
    #[error(
        "no v4l2loopback device found. Load the module with:\n    {MODPROBE}\n(or use the PipeWire camera: --output pipewire)"
    )]
    NoDevice,
    #[error(
        "{path} is not a v4l2loopback device (its driver is {driver:?}); the v4l2loopback devices are under /dev/video*"
    )]
    NotLoopback { path: PathBuf, driver: String },
    #[error("{path}: {reason}")]
    Device { path: PathBuf, reason: String },
}

/// A v4l2loopback device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LoopbackDevice {
    pub path: PathBuf,
    /// Its card label.
    pub name: String,
}

/// The v4l2loopback devices under `sysfs` (`/sys` on a real system), as nodes under `dev` (`/dev`): those
/// whose driver (`device/driver`) is v4l2loopback, or whose node answers `VIDIOC_QUERYCAP` as one.
pub fn find_loopback_devices(sysfs: &Path, dev: &Path) -> Vec<LoopbackDevice> {
    let Ok(entries) = std::fs::read_dir(sysfs.join("class/video4linux")) else { return Vec::new() };
    let mut found: Vec<LoopbackDevice> = entries
        .flatten()
        .filter_map(|entry| {
            let node = entry.file_name().to_string_lossy().into_owned();
            let name = std::fs::read_to_string(entry.path().join("name")).unwrap_or_default().trim().to_string();
            let driver = std::fs::read_link(entry.path().join("device/driver"))
                .ok()
                .and_then(|link| link.file_name().map(|n| n.to_string_lossy().into_owned()));
            let path = dev.join(&node);
            let loopback = match driver {
                Some(driver) => driver.contains("v4l2loopback"),
                None => query_driver(&path).is_some_and(|d| is_loopback_driver(&d)),
            };
            loopback.then_some(LoopbackDevice { path, name })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

fn is_loopback_driver(driver: &str) -> bool {
    driver.contains("loopback")
}

/// The driver a V4L2 node reports, if it is one.
fn query_driver(path: &Path) -> Option<String> {
    let file = OpenOptions::new().read(true).custom_flags(libc::O_NONBLOCK).open(path).ok()?;
    let mut caps = [0u8; 104];
    // SAFETY: VIDIOC_QUERYCAP fills a 104-byte struct v4l2_capability, the buffer's size.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), VIDIOC_QUERYCAP, caps.as_mut_ptr()) };
    (rc == 0).then(|| String::from_utf8_lossy(&caps[..16]).trim_end_matches('\0').to_string())
}

/// The device the camera writes to: the one named, or the first loopback device found.
pub fn choose_device(named: Option<&Path>) -> Result<PathBuf, V4l2Error> {
    match named {
        Some(path) => Ok(path.to_path_buf()),
        None => find_loopback_devices(Path::new("/sys"), Path::new("/dev"))
            .into_iter()
            .next()
            .map(|device| device.path)
            .ok_or(V4l2Error::NoDevice),
    }
}

/// An open output: a loopback device set to YUYV at the camera's size, or a regular file standing in for
/// one (the bytes are the same; there is nothing to set).
pub struct V4l2Writer {
    file: File,
    width: u32,
    height: u32,
    yuyv: Vec<u8>,
}

impl V4l2Writer {
    /// Opens `path` for `width` x `height` (even) frames.
    pub fn open(path: &Path, width: u32, height: u32) -> Result<Self, V4l2Error> {
        let device_error = |reason: String| V4l2Error::Device { path: path.to_path_buf(), reason };
        let meta = std::fs::metadata(path).map_err(|err| device_error(err.to_string()))?;
        let device = meta.file_type().is_char_device();
        if device && let Some(driver) = query_driver(path).filter(|d| !is_loopback_driver(d)) {
            return Err(V4l2Error::NotLoopback { path: path.to_path_buf(), driver });
        }
        let file = OpenOptions::new().read(device).write(true).open(path).map_err(|err| {
            let busy = err.raw_os_error() == Some(libc::EBUSY);
            device_error(if busy { "busy: another program writes to it".into() } else { err.to_string() })
        })?;
        if device {
            set_format(&file, width, height)
                .map_err(|err| device_error(format!("setting YUYV {width}x{height}: {err}")))?;
        }
        Ok(Self { file, width, height, yuyv: Vec::new() })
    }

    /// Writes one frame of packed RGB at the writer's size.
    pub fn write_frame(&mut self, rgb: &[u8]) -> std::io::Result<()> {
        convert(rgb, self.width, self.height, PixelFormat::Yuyv, &mut self.yuyv);
        self.file.write_all(&self.yuyv)
    }
}

fn set_format(file: &File, width: u32, height: u32) -> std::io::Result<()> {
    // struct v4l2_format on 64-bit Linux: the type, padding, then a 200-byte union whose first member is
    // struct v4l2_pix_format (twelve u32s).
    let mut format = [0u8; 208];
    let pix = [
        width,
        height,
        V4L2_PIX_FMT_YUYV,
        V4L2_FIELD_NONE,
        width * 2,
        width * height * 2,
        V4L2_COLORSPACE_SMPTE170M,
        0,
        0,
        V4L2_YCBCR_ENC_601,
        V4L2_QUANTIZATION_LIM_RANGE,
        0,
    ];
    format[..4].copy_from_slice(&V4L2_BUF_TYPE_VIDEO_OUTPUT.to_ne_bytes());
    for (i, value) in pix.iter().enumerate() {
        format[8 + 4 * i..12 + 4 * i].copy_from_slice(&value.to_ne_bytes());
    }
    // SAFETY: VIDIOC_S_FMT reads and writes a 208-byte struct v4l2_format, the buffer's size.
    let rc = unsafe { libc::ioctl(file.as_raw_fd(), VIDIOC_S_FMT, format.as_mut_ptr()) };
    if rc != 0 { Err(std::io::Error::last_os_error()) } else { Ok(()) }
}

/// Counts the programs that have a file open, from inotify's open and close events on it (ours excluded:
/// it was opened before the watch).
pub struct OpenWatch {
    fd: OwnedFd,
    readers: i64,
}

impl OpenWatch {
    pub fn new(path: &Path) -> std::io::Result<Self> {
        // SAFETY: plain syscalls; the descriptor is owned from here on.
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` was just returned by inotify_init1 and is owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes())
            .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
        let mask = libc::IN_OPEN | libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE | libc::IN_DELETE_SELF;
        // SAFETY: a valid inotify descriptor and a NUL-terminated path.
        if unsafe { libc::inotify_add_watch(fd.as_raw_fd(), c_path.as_ptr(), mask) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Self { fd, readers: 0 })
    }

    /// The programs that have it open now; `None` once the file is gone.
    pub fn readers(&mut self) -> Option<u32> {
        let mut buffer = [0u8; 4096];
        loop {
            // SAFETY: reading into a buffer of the length given.
            let n = unsafe { libc::read(self.fd.as_raw_fd(), buffer.as_mut_ptr().cast(), buffer.len()) };
            if n <= 0 {
                break;
            }
            let mut at = 0;
            while at + 16 <= n as usize {
                let mask = u32::from_ne_bytes(buffer[at + 4..at + 8].try_into().expect("4 bytes"));
                let len = u32::from_ne_bytes(buffer[at + 12..at + 16].try_into().expect("4 bytes")) as usize;
                if mask & libc::IN_OPEN != 0 {
                    self.readers += 1;
                }
                if mask & (libc::IN_CLOSE_WRITE | libc::IN_CLOSE_NOWRITE) != 0 {
                    self.readers -= 1;
                }
                if mask & (libc::IN_DELETE_SELF | libc::IN_IGNORED) != 0 {
                    return None;
                }
                at += 16 + len;
            }
        }
        Some(self.readers.max(0) as u32)
    }
}

pub fn run(mut feed: Feed, fps: f64, named: Option<&Path>, shared: &CameraShared) {
    shared.set_format(Some(PixelFormat::Yuyv));
    let unavailable = |err: V4l2Error| {
        let text = err.to_string();
        let (reason, fix) = match text.split_once('\n') {
            Some((reason, fix)) => (reason.trim_end_matches('.').to_string(), Some(fix.trim().to_string())),
            None => (text, None),
        };
        shared.set_state(CameraState::Unavailable { reason, fix });
    };
    let path = match choose_device(named) {
        Ok(path) => path,
        Err(err) => return unavailable(err),
    };
    shared.set_target(path.display().to_string());
    let (width, height) = feed.size();
    let mut writer = match V4l2Writer::open(&path, width, height) {
        Ok(writer) => writer,
        Err(err) => return unavailable(err),
    };
    let mut watch = match OpenWatch::new(&path) {
        Ok(watch) => watch,
        Err(err) => return unavailable(V4l2Error::Device { path, reason: format!("watching who opens it: {err}") }),
    };
    let mut clock = Clock::new(fps);
    let mut streaming = false;
    while !shared.stopping() {
        let Some(readers) = watch.readers() else {
            return shared.set_state(CameraState::Ended(format!("{} was removed", path.display())));
        };
        feed.subscription().set_idle(readers == 0);
        if readers == 0 {
            shared.set_state(CameraState::Waiting);
            streaming = false;
            std::thread::sleep(POLL);
            continue;
        }
        if !streaming {
            clock.restart();
            streaming = true;
        }
        shared.set_state(CameraState::Streaming { consumers: readers });
        let missed = clock.tick(shared);
        shared.record_dropped(missed);
        let Some(picture) = feed.picture() else { continue };
        let captured_at = picture.captured_at;
        match writer.write_frame(picture.rgb) {
            Ok(()) => shared.record_sent(captured_at),
            Err(err) if err.raw_os_error() == Some(libc::ENODEV) => {
                return shared.set_state(CameraState::Ended(format!("{} was removed", path.display())));
            }
            Err(err) => {
                tracing::warn!("virtual camera: writing to {}: {err}", path.display());
                shared.record_dropped(1);
            }
        }
    }
}
