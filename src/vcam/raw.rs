//! Raw frames on stdout or into a FIFO, at a constant rate, for `| ffmpeg -f rawvideo ...` or any other
//! tool. A FIFO is waited for until a reader opens it; the reader closing it (EPIPE) ends the camera.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::convert::{PixelFormat, convert};
use super::{CameraShared, CameraState, Clock, Feed, POLL};

pub fn run(mut feed: Feed, fps: f64, path: Option<&Path>, format: PixelFormat, shared: &CameraShared) {
    shared.set_format(Some(format));
    let mut out: Box<dyn Write> = match path {
        None => {
            shared.set_target("stdout".into());
            Box::new(std::io::stdout().lock())
        }
        Some(path) => {
            shared.set_target(path.display().to_string());
            match open_path(path, shared) {
                Ok(Some(file)) => Box::new(file),
                Ok(None) => return,
                Err(state) => return shared.set_state(state),
            }
        }
    };
    feed.subscription().set_idle(false);
    shared.set_state(CameraState::Streaming { consumers: 1 });
    let mut clock = Clock::new(fps);
    let mut bytes = Vec::new();
    while !shared.stopping() {
        let missed = clock.tick(shared);
        shared.record_dropped(missed);
        let Some(picture) = feed.picture() else {
            clock.restart();
            continue;
        };
        convert(picture.rgb, picture.width, picture.height, format, &mut bytes);
        let captured_at = picture.captured_at;
        if let Err(err) = out.write_all(&bytes).and_then(|()| out.flush()) {
            let reason = if err.kind() == std::io::ErrorKind::BrokenPipe {
                "the reader closed the pipe".to_string()
            } else {
                format!("writing the frames: {err}")
            };
            return shared.set_state(CameraState::Ended(reason));
        }
        shared.record_sent(captured_at);
    }
}

/// Opens a FIFO once a reader has (waiting meanwhile), or creates a new file; an existing regular file is
/// never written over. `Ok(None)`: stopped while waiting.
fn open_path(path: &Path, shared: &CameraShared) -> Result<Option<File>, CameraState> {
    let unavailable = |reason: String, fix: Option<String>| CameraState::Unavailable { reason, fix };
    match std::fs::metadata(path) {
        Ok(meta) if meta.file_type().is_fifo() => {
            shared.set_state(CameraState::Waiting);
            loop {
                // Non-blocking, so a stop is seen while no reader has the FIFO open (ENXIO).
                match OpenOptions::new().write(true).custom_flags(libc::O_NONBLOCK).open(path) {
                    Ok(file) => {
                        set_blocking(&file);
                        return Ok(Some(file));
                    }
                    Err(err) if err.raw_os_error() == Some(libc::ENXIO) => {
                        if shared.stopping() {
                            return Ok(None);
                        }
                        std::thread::sleep(POLL);
                    }
                    Err(err) => return Err(unavailable(format!("{}: {err}", path.display()), None)),
                }
            }
        }
        Ok(_) => Err(unavailable(
            format!("{} exists and is not a FIFO", path.display()),
            Some(format!(
                "raw:PATH writes into a FIFO (mkfifo {}) or a new file; it never replaces a file",
                path.display()
            )),
        )),
        Err(_) => OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map(Some)
            .map_err(|err| unavailable(format!("{}: {err}", path.display()), None)),
    }
}

/// Writes then wait for the reader: a slow reader delays the camera's thread (ticks it misses are counted),
/// never the engine.
fn set_blocking(file: &File) {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns and keeps open.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
    }
}
