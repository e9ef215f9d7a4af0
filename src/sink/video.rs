//! Video files through an `ffmpeg` subprocess reading raw frames on its standard input: H.264 MP4,
//! ProRes 4444 MOV and VP9 WebM with alpha, a gray track matte, and the source video beside it.
//!
//! Recordings must survive a killed ffmpeg or a full disk, so MP4 and MOV are written fragmented (every
//! second of video is playable as soon as it is on disk) and WebM closes a cluster every second. A clean
//! finish remuxes MP4 and MOV into ordinary files with the index first, which every editor imports; a
//! failure keeps what reached the disk, repaired by the same remux when there is room for it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use super::partial::claim;
use super::{Partial, Sink, SinkError, SinkFrame};
use crate::audio::AudioCodec;
use crate::ffmpeg::{self, StderrCollector};
use crate::paths::display;

/// Quality of the H.264 and VP9 encodes (constant rate factor: lower is better and bigger).
pub const DEFAULT_CRF: u8 = 18;

/// What a video file holds, and how it is encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VideoKind {
    /// The composite, H.264 4:2:0 in MP4.
    H264 { crf: u8 },
    /// The composite with alpha (a transparent background), ProRes 4444 (10-bit, 16-bit alpha) in MOV.
    ProRes4444,
    /// The composite with alpha, VP9 4:2:0 with an alpha plane in WebM.
    Vp9Alpha { crf: u8 },
    /// The frame-size alpha as luma (neutral chroma), H.264 in MP4: a track matte for editors.
    MatteH264 { crf: u8 },
    /// The frame as the source gave it (mirrored when the picture is), H.264 in MP4, frame-aligned with a
    /// matte written beside it.
    SourceH264 { crf: u8, mirror: bool },
}

impl VideoKind {
    /// Raw pixel format fed to ffmpeg and its bytes per pixel.
    fn input_format(self) -> (&'static str, usize) {
        match self {
            Self::H264 { .. } | Self::SourceH264 { .. } => ("rgb24", 3),
            Self::ProRes4444 | Self::Vp9Alpha { .. } => ("rgba", 4),
            Self::MatteH264 { .. } => ("gray", 1),
        }
    }

    /// The codec of its sound, when it carries the take's: AAC in MP4, 24-bit PCM in MOV, Opus in WebM.
    /// The track matte has none (its sound is a WAV beside it).
    pub fn audio_codec(self) -> Option<AudioCodec> {
        match self {
            Self::H264 { .. } | Self::SourceH264 { .. } => Some(AudioCodec::Aac),
            Self::ProRes4444 => Some(AudioCodec::Pcm24),
            Self::Vp9Alpha { .. } => Some(AudioCodec::Opus),
            Self::MatteH264 { .. } => None,
        }
    }

    /// Container: MP4 and MOV are remuxed on finish; WebM is final as written (unless sound joins it).
    fn is_fragmented_mp4(self) -> bool {
        !matches!(self, Self::Vp9Alpha { .. })
    }

    fn output_args(self, fps: f64) -> Vec<String> {
        // One keyframe (and so one playable fragment) per second.
        let gop = (fps.round() as u32).max(1).to_string();
        let bt709 = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"];
        let h264 = |crf: u8, filters: &str| -> Vec<String> {
            let mut args: Vec<String> = ["-vf", filters, "-c:v", "libx264", "-preset", "veryfast", "-crf"]
                .iter()
                .map(|s| s.to_string())
                .collect();
            args.extend([crf.to_string(), "-g".into(), gop.clone(), "-pix_fmt".into(), "yuv420p".into()]);
            args.extend(bt709.iter().map(|s| s.to_string()));
            args.extend(["-movflags", "+frag_keyframe+empty_moov+default_base_moof", "-f", "mp4"].map(String::from));
            args
        };
        // yuv420p needs even sides; HD players assume BT.709, so convert with that matrix and say so.
        let to_yuv = "pad=ceil(iw/2)*2:ceil(ih/2)*2,scale=out_color_matrix=bt709:out_range=tv";
        match self {
            Self::H264 { crf } | Self::SourceH264 { crf, .. } => h264(crf, to_yuv),
            Self::MatteH264 { crf } => h264(crf, to_yuv),
            Self::ProRes4444 => {
                let mut args: Vec<String> =
                    ["-c:v", "prores_ks", "-profile:v", "4444", "-pix_fmt", "yuva444p10le", "-alpha_bits", "16"]
                        .map(String::from)
                        .to_vec();
                args.extend(["-vendor", "apl0", "-vf", "scale=out_color_matrix=bt709"].map(String::from));
                args.extend(bt709.iter().map(|s| s.to_string()));
                args.extend(
                    ["-movflags", "+empty_moov+default_base_moof", "-frag_duration", "1000000", "-f", "mov"]
                        .map(String::from),
                );
                args
            }
            Self::Vp9Alpha { crf } => {
                let mut args: Vec<String> =
                    ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2,scale=out_color_matrix=bt709"].map(String::from).to_vec();
                args.extend(["-c:v", "libvpx-vp9", "-pix_fmt", "yuva420p", "-crf"].map(String::from));
                args.extend([crf.to_string(), "-b:v".into(), "0".into(), "-g".into(), gop]);
                // Real-time settings: the recorder must keep up with a live camera on a few cores.
                args.extend(
                    ["-deadline", "realtime", "-cpu-used", "8", "-row-mt", "1", "-auto-alt-ref", "0"].map(String::from),
                );
                args.extend(bt709.iter().map(|s| s.to_string()));
                args.extend(
                    ["-cluster_time_limit", "1000", "-cluster_size_limit", "8000000", "-f", "webm"].map(String::from),
                );
                args
            }
        }
    }
}

/// A WAV to mux: its codec in the file, and how much of it (the video's length, or less when the sound
/// stopped first).
struct MuxAudio {
    codec: AudioCodec,
    wav: PathBuf,
    rate: u32,
    seconds: f64,
}

/// The take's sound, a WAV being written beside the video: muxed in when the video is finished (or kept
/// after a failure).
#[derive(Clone, Debug, PartialEq)]
pub struct AudioTrack {
    pub wav: PathBuf,
}

pub struct VideoSink {
    kind: VideoKind,
    audio: Option<AudioTrack>,
    /// Whether the finished (or kept) file holds the sound.
    audio_muxed: bool,
    partial: Partial,
    child: Child,
    stdin: Option<ChildStdin>,
    stderr: Option<StderrCollector>,
    frame_bytes: usize,
    /// Frames handed to the encoder.
    frames: u64,
    /// Scratch for a mirrored source frame.
    mirrored: Vec<u8>,
    fps: f64,
}

impl VideoSink {
    /// Starts the encoder into a new working file beside `path`; an existing `path` is refused unless
    /// `overwrite`.
    pub fn create(
        kind: VideoKind,
        path: &Path,
        width: u32,
        height: u32,
        fps: f64,
        overwrite: bool,
    ) -> Result<Self, SinkError> {
        let ffmpeg = ffmpeg::ffmpeg()?;
        let partial = Partial::file(path, overwrite)?;
        let (pix_fmt, bytes_per_pixel) = kind.input_format();
        let mut command = Command::new(ffmpeg);
        ffmpeg::own_process_group(&mut command);
        let mut child = command
            .args(["-y", "-nostdin", "-v", "error", "-f", "rawvideo", "-pix_fmt", pix_fmt])
            .args(["-s", &format!("{width}x{height}"), "-r", &format!("{fps}")])
            .args(ffmpeg::INPUT_PROTOCOLS)
            .args(["-i", "pipe:0"])
            .args(kind.output_args(fps))
            // Each finished fragment goes to the disk at once, not when an I/O buffer fills.
            .args(["-flush_packets", "1"])
            .arg(ffmpeg::file_arg(partial.working()))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| ffmpeg::FfmpegError::Spawn { program: "ffmpeg", source })?;
        let stdin = child.stdin.take();
        if let Some(stdin) = &stdin {
            set_nonblocking(stdin);
        }
        let stderr = Some(StderrCollector::start(&mut child, "ffmpeg-encode-stderr"));
        Ok(Self {
            kind,
            audio: None,
            audio_muxed: false,
            partial,
            child,
            stdin,
            stderr,
            frame_bytes: width as usize * height as usize * bytes_per_pixel,
            frames: 0,
            mirrored: Vec::new(),
            fps,
        })
    }

    /// Muxes `audio` in when the video is finished (formats that carry sound).
    pub fn with_audio(mut self, audio: Option<AudioTrack>) -> Self {
        self.audio = audio.filter(|_| self.kind.audio_codec().is_some());
        self
    }

    /// The sound to mux with `video_frames` of video, when the WAV holds any: both are cut to the shorter,
    /// so they end at the same instant.
    fn audio_input(&self, video_frames: u64) -> Option<MuxAudio> {
        let codec = self.kind.audio_codec()?;
        let track = self.audio.as_ref()?;
        match crate::audio::wav::read_header(&track.wav) {
            Ok((rate, _, frames)) if frames > 0 => {
                let seconds = (frames as f64 / f64::from(rate)).min(video_frames as f64 / self.fps);
                Some(MuxAudio { codec, wav: track.wav.clone(), rate, seconds })
            }
            _ => None,
        }
    }

    /// Stops the encoder and keeps what reached the disk as `NAME.incomplete.EXT`, repaired when possible;
    /// the error says what was kept.
    fn encoder_error(&mut self, fallback: String) -> SinkError {
        drop(self.stdin.take());
        let status = match ffmpeg::wait_within(&mut self.child, "ffmpeg", None) {
            Ok(status) => Some(status),
            Err(err) => {
                self.stderr.take();
                let kept = self.salvage();
                return SinkError::Encoder { path: self.partial.target().to_path_buf(), reason: err.to_string(), kept };
            }
        };
        let stderr = self.stderr.take().map(StderrCollector::finish).unwrap_or_default();
        let reason = if !stderr.trim().is_empty() {
            ffmpeg::last_line(&stderr)
        } else if let Some(signal) = status.as_ref().and_then(killed_by) {
            format!("ffmpeg was killed by signal {signal}")
        } else {
            fallback
        };
        let kept = self.salvage();
        SinkError::Encoder { path: self.partial.target().to_path_buf(), reason, kept }
    }

    /// After a failure: the complete frames as `NAME.incomplete.EXT` (a truncated last frame is left out),
    /// or nothing when no frame is readable. Never under the final name: that only ever holds a complete
    /// output.
    fn salvage(&mut self) -> String {
        drop(self.stdin.take());
        if matches!(self.child.try_wait(), Ok(None)) {
            ffmpeg::kill(&mut self.child);
        }
        let working = self.partial.working().to_path_buf();
        let Some((packets, clean)) = probe_packets(&working) else {
            return "no frame reached the disk".into();
        };
        let frames = if clean { packets } else { packets.saturating_sub(1) };
        if frames == 0 {
            return "no frame reached the disk".into();
        }
        let mp4 = self.kind.is_fragmented_mp4();
        if let Err(reason) = remux_in_place(&working, mp4, Some((frames, self.fps)), None) {
            // No room for a repaired copy (a full disk): cut the file after its last whole fragment, which
            // needs no space, and keep it as it is.
            let shown = display(&working);
            tracing::warn!("could not repair {shown}: {reason}");
            if self.kind.is_fragmented_mp4()
                && let Err(err) = truncate_to_whole_fragments(&working)
            {
                tracing::warn!("could not trim the cut-off fragment: {err}");
            }
        } else if let Some(audio) = self.audio_input(frames) {
            // A second pass: ffmpeg ends a file when its video reaches a frame limit, cutting the sound
            // short of it; the video is whole frames now, so the sound is added without one.
            match remux_in_place(&working, mp4, None, Some(&audio)) {
                Ok(()) => self.audio_muxed = true,
                Err(reason) => {
                    let shown = display(&working);
                    tracing::warn!("could not add the sound to {shown}: {reason}");
                }
            }
        }
        match self.partial.keep_incomplete() {
            Ok(kept) => format!(
                "the first {frames} frames ({:.1} s) are kept in {}, playable",
                frames as f64 / self.fps,
                display(&kept)
            ),
            Err(err) => format!("nothing could be kept ({err})"),
        }
    }
}

#[cfg(unix)]
fn set_nonblocking(stdin: &ChildStdin) {
    use std::os::fd::AsRawFd;
    let fd = stdin.as_raw_fd();
    // SAFETY: fcntl on a pipe we own; only its flags change.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags >= 0 {
            libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK);
        }
    }
}

/// Writes all of `bytes` to the encoder, failing when it takes nothing for [`ffmpeg::stall_timeout`]
/// (stopped or stuck), instead of blocking for ever on a full pipe.
fn write_within(stdin: &mut ChildStdin, mut bytes: &[u8]) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    while !bytes.is_empty() {
        match stdin.write(bytes) {
            Ok(0) => return Err(std::io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                if !ffmpeg::ready_within(stdin.as_raw_fd(), true) {
                    return Err(std::io::Error::new(std::io::ErrorKind::TimedOut, "hung"));
                }
            }
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

#[cfg(unix)]
fn killed_by(status: &std::process::ExitStatus) -> Option<i32> {
    std::os::unix::process::ExitStatusExt::signal(status)
}

#[cfg(not(unix))]
fn killed_by(_: &std::process::ExitStatus) -> Option<i32> {
    None
}

/// Replaces `path` by a copy of its streams (for MP4/MOV an ordinary file with the index first), the first
/// `frames` (at a rate) only when given, with the sound of a WAV added when given (coded as asked, and no
/// longer than the video: both end at the same instant). The copy is written to a new file beside it,
/// then renamed over it.
fn remux_in_place(path: &Path, mp4: bool, frames: Option<(u64, f64)>, audio: Option<&MuxAudio>) -> Result<(), String> {
    let ffmpeg = ffmpeg::ffmpeg().map_err(|e| e.to_string())?;
    let temp = claim(path, "finishing", false).map_err(|e| e.to_string())?;
    let mut command = Command::new(ffmpeg);
    ffmpeg::own_process_group(&mut command);
    command.args(["-y", "-nostdin", "-v", "error"]).args(ffmpeg::INPUT_PROTOCOLS).arg("-i").arg(ffmpeg::file_arg(path));
    if let Some(audio) = audio {
        command.args(["-f", "wav"]).args(ffmpeg::INPUT_PROTOCOLS).arg("-i").arg(ffmpeg::file_arg(&audio.wav));
    }
    command.args(["-map", "0:v", "-c", "copy"]);
    if let Some(audio) = audio {
        // Cut to the sample (an output `-t` cuts at the codec's frames, tens of milliseconds apart).
        let end_sample = (audio.seconds * f64::from(audio.rate)).round() as u64;
        command.args(["-map", "1:a", "-af", &format!("atrim=end_sample={end_sample}")]);
        command.args(audio.codec.ffmpeg_args(audio.rate));
    }
    if mp4 {
        command.args(["-movflags", "+faststart"]);
    }
    if let Some((frames, _)) = frames {
        command.args(["-frames:v", &frames.to_string()]);
    }
    command.arg(ffmpeg::file_arg(&temp));
    let result = match ffmpeg::run(&mut command, "ffmpeg", Some(&temp)) {
        Ok(output) if output.status.success() => std::fs::rename(&temp, path).map_err(|e| e.to_string()),
        Ok(output) => Err(ffmpeg::last_line(&String::from_utf8_lossy(&output.stderr))),
        Err(err) => Err(err.to_string()),
    };
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// Cuts a fragmented MP4/MOV after its last complete `mdat` box (a fragment's media), dropping a fragment
/// that was being written when the encoder stopped. Returns the new length.
pub fn truncate_to_whole_fragments(path: &Path) -> std::io::Result<u64> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(path)?;
    let length = file.metadata()?.len();
    let (mut offset, mut keep) = (0u64, 0u64);
    while offset + 8 <= length {
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(offset))?;
        let available = (length - offset).min(16) as usize;
        file.read_exact(&mut header[..available])?;
        let size32 = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as u64;
        let size = match size32 {
            1 if available >= 16 => u64::from_be_bytes(header[8..16].try_into().expect("8 bytes")),
            0 => length - offset,
            n => n,
        };
        if size < 8 || offset + size > length {
            break;
        }
        offset += size;
        if &header[4..8] == b"mdat" {
            keep = offset;
        }
    }
    if keep > 0 && keep < length {
        file.set_len(keep)?;
    }
    Ok(if keep > 0 { keep } else { length })
}

/// Video packets ffprobe reads from `path`, and whether it read them without complaint (a file cut off
/// mid-frame makes it complain about the last one).
fn probe_packets(path: &Path) -> Option<(u64, bool)> {
    let ffprobe = ffmpeg::ffprobe().ok()?;
    let mut command = Command::new(ffprobe);
    command
        .args(["-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries", "stream=nb_read_packets"])
        .args(["-of", "csv=p=0"])
        .args(ffmpeg::INPUT_PROTOCOLS)
        .arg(ffmpeg::file_arg(path));
    let output = ffmpeg::run(&mut command, "ffprobe", None).ok()?;
    let packets = String::from_utf8_lossy(&output.stdout).trim().parse().ok()?;
    Some((packets, output.stderr.is_empty()))
}

impl Sink for VideoSink {
    fn write(&mut self, output: SinkFrame<'_>) -> Result<(), SinkError> {
        let (pixels, width) = match self.kind {
            VideoKind::H264 { .. } | VideoKind::ProRes4444 | VideoKind::Vp9Alpha { .. } => {
                let c = &output.picture;
                let channels = self.kind.input_format().1 as u8;
                if c.channels != channels {
                    let want = if channels == 4 { "a transparent background" } else { "an opaque background" };
                    return Err(SinkError::Write {
                        path: self.partial.target().to_path_buf(),
                        reason: format!("this format needs {want}"),
                    });
                }
                (&c.pixels[..], c.width)
            }
            VideoKind::MatteH264 { .. } => (output.alpha, output.frame.width),
            VideoKind::SourceH264 { mirror, .. } => {
                let frame = &output.frame;
                if mirror {
                    mirror_rgb(&frame.rgb, frame.width as usize, &mut self.mirrored);
                    (&self.mirrored[..], frame.width)
                } else {
                    (&frame.rgb[..], frame.width)
                }
            }
        };
        if pixels.len() != self.frame_bytes {
            let kept = self.keep_incomplete().unwrap_or_else(|| "nothing was written yet".into());
            return Err(SinkError::Write {
                path: self.partial.target().to_path_buf(),
                reason: format!("the frame size changed mid-stream (now {width} px wide); {kept}"),
            });
        }
        let Some(stdin) = self.stdin.as_mut() else {
            return Err(self.encoder_error("encoder already closed".into()));
        };
        match write_within(stdin, pixels) {
            Ok(()) => {
                self.frames += 1;
                Ok(())
            }
            Err(err) if err.kind() == std::io::ErrorKind::TimedOut => {
                let hung = ffmpeg::FfmpegError::Hung {
                    program: "ffmpeg",
                    seconds: ffmpeg::stall_timeout().as_secs_f64(),
                    env: ffmpeg::TIMEOUT_ENV,
                };
                let kept = self.salvage();
                Err(SinkError::Encoder { path: self.partial.target().to_path_buf(), reason: hung.to_string(), kept })
            }
            Err(err) => Err(self.encoder_error(err.to_string())),
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        drop(self.stdin.take());
        let status = match ffmpeg::wait_within(&mut self.child, "ffmpeg", Some(self.partial.working())) {
            Ok(status) => status,
            Err(err) => return Err(self.encoder_error(err.to_string())),
        };
        if !status.success() {
            return Err(self.encoder_error(format!("ffmpeg exited with {status}")));
        }
        let audio = self.audio_input(self.frames);
        if self.kind.is_fragmented_mp4() || audio.is_some() {
            let working = self.partial.working().to_path_buf();
            // No room for a second copy: the fragmented file plays as it is (and its sound is kept beside).
            match remux_in_place(&working, self.kind.is_fragmented_mp4(), None, audio.as_ref()) {
                Ok(()) => self.audio_muxed = audio.is_some(),
                Err(reason) => {
                    let shown = display(self.partial.target());
                    tracing::warn!("could not finalise {shown}: {reason}; keeping it as written, without its sound");
                }
            }
        }
        self.partial.commit()
    }

    fn keep_incomplete(&mut self) -> Option<String> {
        if self.frames == 0 {
            return None;
        }
        // The encoder ends cleanly on its input's end, writing every frame it was given.
        drop(self.stdin.take());
        let _ = ffmpeg::wait_within(&mut self.child, "ffmpeg", Some(self.partial.working()));
        Some(self.salvage())
    }

    fn path(&self) -> &Path {
        self.partial.target()
    }

    fn bytes_written(&self) -> u64 {
        std::fs::metadata(self.partial.working()).map(|m| m.len()).unwrap_or(0)
    }

    fn encoder_pid(&self) -> Option<u32> {
        Some(self.child.id())
    }

    fn audio_muxed(&self) -> bool {
        self.audio_muxed
    }
}

impl Drop for VideoSink {
    fn drop(&mut self) {
        if self.stdin.is_some() {
            drop(self.stdin.take());
            ffmpeg::kill(&mut self.child);
        }
    }
}

/// `rgb` (packed, `width` pixels a row) flipped left to right into `out`.
pub fn mirror_rgb(rgb: &[u8], width: usize, out: &mut Vec<u8>) {
    out.clear();
    for row in rgb.chunks_exact(width * 3) {
        out.extend(row.chunks_exact(3).rev().flatten());
    }
}
