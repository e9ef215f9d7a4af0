//! A 24-bit PCM WAV file written as the take goes: its header is brought up to date every few hundred
//! milliseconds, so a take cut short by a crash or a full disk still leaves a file every player opens,
//! holding the sound up to then.

use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;
use std::time::{Duration, Instant};

const HEADER_BYTES: u64 = 44;
const BYTES_PER_SAMPLE: u16 = 3;
/// How often the header's sizes are brought up to date.
const HEADER_EVERY: Duration = Duration::from_millis(250);

pub struct WavWriter {
    file: BufWriter<File>,
    rate: u32,
    channels: u16,
    frames: u64,
    header_at: Instant,
    /// Converted samples, reused.
    bytes: Vec<u8>,
}

impl WavWriter {
    /// Writes the header of an empty file into `path` (a new working file the caller created).
    pub fn create(path: &Path, rate: u32, channels: u16) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new().write(true).truncate(true).open(path)?;
        let mut writer = Self {
            file: BufWriter::new(file),
            rate,
            channels,
            frames: 0,
            header_at: Instant::now(),
            bytes: Vec::new(),
        };
        writer.file.write_all(&header(rate, channels, 0))?;
        Ok(writer)
    }

    pub fn frames(&self) -> u64 {
        self.frames
    }

    pub fn duration_s(&self) -> f64 {
        self.frames as f64 / f64::from(self.rate)
    }

    /// Appends interleaved samples (-1..1, clipped).
    pub fn write(&mut self, samples: &[f32]) -> std::io::Result<()> {
        self.bytes.clear();
        for &sample in samples {
            let value = (f64::from(sample.clamp(-1.0, 1.0)) * 8_388_607.0).round() as i32;
            self.bytes.extend_from_slice(&value.to_le_bytes()[..3]);
        }
        self.file.write_all(&self.bytes)?;
        self.frames += (samples.len() / usize::from(self.channels)) as u64;
        self.maybe_update_header()
    }

    /// Appends `frames` frames of silence.
    pub fn silence(&mut self, frames: u64) -> std::io::Result<()> {
        let zeros = [0u8; 4096 * 3];
        let mut left = frames * u64::from(self.channels) * u64::from(BYTES_PER_SAMPLE);
        while left > 0 {
            let n = left.min(zeros.len() as u64) as usize;
            self.file.write_all(&zeros[..n])?;
            left -= n as u64;
        }
        self.frames += frames;
        self.maybe_update_header()
    }

    /// Cuts the file to its first `frames` frames.
    pub fn truncate(&mut self, frames: u64) -> std::io::Result<()> {
        let frames = frames.min(self.frames);
        self.file.flush()?;
        let bytes = HEADER_BYTES + frames * self.frame_bytes();
        self.file.get_ref().set_len(bytes)?;
        self.file.seek(SeekFrom::End(0))?;
        self.frames = frames;
        self.update_header()
    }

    /// Brings the header up to date and writes everything to the disk.
    pub fn finish(mut self) -> std::io::Result<()> {
        self.update_header()?;
        self.file.get_ref().sync_all()
    }

    /// After a failed write (a full disk): the header says what is whole on disk, which needs no space.
    pub fn settle(&mut self) -> std::io::Result<u64> {
        let _ = self.file.flush();
        let on_disk = self.file.get_ref().metadata()?.len().saturating_sub(HEADER_BYTES);
        self.frames = on_disk / self.frame_bytes();
        let data = self.frames * self.frame_bytes();
        self.file.get_ref().set_len(HEADER_BYTES + data)?;
        let header = header(self.rate, self.channels, data);
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header)?;
        file.seek(SeekFrom::End(0))?;
        Ok(self.frames)
    }

    fn frame_bytes(&self) -> u64 {
        u64::from(self.channels) * u64::from(BYTES_PER_SAMPLE)
    }

    fn maybe_update_header(&mut self) -> std::io::Result<()> {
        if self.header_at.elapsed() >= HEADER_EVERY { self.update_header() } else { Ok(()) }
    }

    fn update_header(&mut self) -> std::io::Result<()> {
        self.header_at = Instant::now();
        self.file.flush()?;
        let data = self.frames * self.frame_bytes();
        let file = self.file.get_mut();
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&header(self.rate, self.channels, data))?;
        file.seek(SeekFrom::End(0))?;
        Ok(())
    }
}

/// The 44-byte header of a PCM WAV holding `data_bytes` of 24-bit samples.
fn header(rate: u32, channels: u16, data_bytes: u64) -> [u8; HEADER_BYTES as usize] {
    // A RIFF file cannot say more than 4 GiB; past that (about 7 hours of stereo) the sizes stay at the
    // most they can say, and readers read to the end.
    let data = u32::try_from(data_bytes).unwrap_or(u32::MAX - 36);
    let block = channels * BYTES_PER_SAMPLE;
    let mut out = [0u8; HEADER_BYTES as usize];
    out[0..4].copy_from_slice(b"RIFF");
    out[4..8].copy_from_slice(&(data.saturating_add(36)).to_le_bytes());
    out[8..16].copy_from_slice(b"WAVEfmt ");
    out[16..20].copy_from_slice(&16u32.to_le_bytes());
    out[20..22].copy_from_slice(&1u16.to_le_bytes());
    out[22..24].copy_from_slice(&channels.to_le_bytes());
    out[24..28].copy_from_slice(&rate.to_le_bytes());
    out[28..32].copy_from_slice(&(rate * u32::from(block)).to_le_bytes());
    out[32..34].copy_from_slice(&block.to_le_bytes());
    out[34..36].copy_from_slice(&(BYTES_PER_SAMPLE * 8).to_le_bytes());
    out[36..40].copy_from_slice(b"data");
    out[40..44].copy_from_slice(&data.to_le_bytes());
    out
}

/// Frames and rate of a WAV this module wrote (tests and the salvage of a take).
pub fn read_header(path: &Path) -> std::io::Result<(u32, u16, u64)> {
    let bytes = std::fs::read(path).map(|all| all.into_iter().take(HEADER_BYTES as usize).collect::<Vec<_>>())?;
    if bytes.len() < HEADER_BYTES as usize || &bytes[0..4] != b"RIFF" || &bytes[36..40] != b"data" {
        return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, "not a WAV file this app wrote"));
    }
    let rate = u32::from_le_bytes(bytes[24..28].try_into().expect("4 bytes"));
    let channels = u16::from_le_bytes(bytes[22..24].try_into().expect("2 bytes"));
    let data = u32::from_le_bytes(bytes[40..44].try_into().expect("4 bytes"));
    Ok((rate, channels, u64::from(data) / (u64::from(channels) * u64::from(BYTES_PER_SAMPLE))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_sizes_follow_the_data_and_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.wav");
        std::fs::File::create(&path).unwrap();
        let mut wav = WavWriter::create(&path, 48_000, 2).unwrap();
        wav.write(&[0.5, -0.5, 1.5, -1.0]).unwrap();
        wav.silence(10).unwrap();
        assert_eq!(wav.frames(), 12);
        wav.truncate(5).unwrap();
        wav.finish().unwrap();
        assert_eq!(read_header(&path).unwrap(), (48_000, 2, 5));
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 44 + 5 * 6);
        // 0.5 as 24-bit, little-endian; 1.5 clipped to full scale.
        assert_eq!(&bytes[44..47], &[0x00, 0x00, 0x40]);
        assert_eq!(&bytes[50..53], &[0xff, 0xff, 0x7f]);
    }
}
