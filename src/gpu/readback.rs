//! Texture to CPU memory, with the 256-byte row alignment copies need.

use super::{GpuContext, GpuError};

/// Bytes a copied row of `width` RGBA8 pixels takes in a buffer: rounded up to 256.
pub fn padded_bytes_per_row(width: u32) -> u32 {
    let unpadded = width * 4;
    unpadded.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT
}

/// Maps `buffer` for reading, waiting for the GPU to finish the work submitted before.
pub fn map_for_reading(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<(), GpuError> {
    map_on(&ctx.device, buffer)
}

fn map_on(device: &wgpu::Device, buffer: &wgpu::Buffer) -> Result<(), GpuError> {
    let failed = |err: &dyn std::fmt::Display| GpuError::Readback(err.to_string());
    let (tx, rx) = crossbeam_channel::bounded(1);
    buffer.slice(..).map_async(wgpu::MapMode::Read, move |result| {
        let _ = tx.send(result);
    });
    device.poll(wgpu::PollType::wait_indefinitely()).map_err(|err| failed(&err))?;
    rx.recv().map_err(|err| failed(&err))?.map_err(|err| failed(&err))
}

/// Reads an RGBA8 texture back once (rows packed), waiting: for a rare read such as a snapshot, off the
/// window's thread.
pub fn read_texture(device: &wgpu::Device, queue: &wgpu::Queue, texture: &wgpu::Texture) -> Result<Vec<u8>, GpuError> {
    let mut out = Vec::new();
    copy_and_read(device, queue, &staging_for(device, texture.width(), texture.height()), texture, &mut out)?;
    Ok(out)
}

fn staging_for(device: &wgpu::Device, width: u32, height: u32) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: padded_bytes_per_row(width) as u64 * height as u64,
        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
        mapped_at_creation: false,
    })
}

/// Copies `texture` into `buffer`, waits for it, and unpacks the rows into `out`.
fn copy_and_read(
    device: &wgpu::Device,
    queue: &wgpu::Queue,
    buffer: &wgpu::Buffer,
    texture: &wgpu::Texture,
    out: &mut Vec<u8>,
) -> Result<(), GpuError> {
    let (width, height) = (texture.width(), texture.height());
    let row = padded_bytes_per_row(width);
    let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
    encoder.copy_texture_to_buffer(
        texture.as_image_copy(),
        wgpu::TexelCopyBufferInfo {
            buffer,
            layout: wgpu::TexelCopyBufferLayout { offset: 0, bytes_per_row: Some(row), rows_per_image: Some(height) },
        },
        wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
    );
    queue.submit([encoder.finish()]);
    map_on(device, buffer)?;
    unpack_rows(buffer, width, height, out)
}

/// The mapped `buffer`'s rows (padded to 256 bytes) packed into `out`; then unmaps it.
fn unpack_rows(buffer: &wgpu::Buffer, width: u32, height: u32, out: &mut Vec<u8>) -> Result<(), GpuError> {
    {
        let view = buffer.get_mapped_range(..).map_err(|err| GpuError::Readback(err.to_string()))?;
        let (packed, row) = (width as usize * 4, padded_bytes_per_row(width) as usize);
        out.resize(packed * height as usize, 0);
        for (dst, src) in out.chunks_exact_mut(packed).zip(view.chunks_exact(row)) {
            dst.copy_from_slice(&src[..packed]);
        }
    }
    buffer.unmap();
    Ok(())
}

/// A staging buffer kept between reads of textures of one size.
#[derive(Default)]
pub struct Readback {
    staging: Option<(wgpu::Buffer, u32, u32)>,
}

impl Readback {
    /// Copies an RGBA8 texture into `out` (`width * height * 4` bytes, rows packed), waiting for the GPU.
    pub fn read_rgba(&mut self, ctx: &GpuContext, texture: &wgpu::Texture, out: &mut Vec<u8>) -> Result<(), GpuError> {
        let (width, height) = (texture.width(), texture.height());
        if self.staging.as_ref().is_none_or(|(_, w, h)| (*w, *h) != (width, height)) {
            self.staging = Some((staging_for(&ctx.device, width, height), width, height));
        }
        let buffer = &self.staging.as_ref().expect("set above").0;
        copy_and_read(&ctx.device, &ctx.queue, buffer, texture, out)?;
        ctx.take_error()
    }
}

/// Slots of a [`ReadbackRing`]: one being filled while the one before is read (and one spare).
const RING_SLOTS: usize = 3;

const SLOT_FREE: u8 = 0;
const SLOT_MAPPING: u8 = 1;
const SLOT_MAPPED: u8 = 2;
const SLOT_FAILED: u8 = 3;

struct RingSlot {
    buffer: wgpu::Buffer,
    width: u32,
    height: u32,
    state: std::sync::Arc<std::sync::atomic::AtomicU8>,
}

/// Textures read back without waiting: each copy goes into a staging buffer of its own, mapped in the
/// background; the caller polls and reads a slot once its map has come back, so the GPU keeps working on
/// the next frame meanwhile and nobody waits for a map unless every slot is in flight.
#[derive(Default)]
pub struct ReadbackRing {
    slots: Vec<RingSlot>,
}

impl ReadbackRing {
    pub fn capacity(&self) -> usize {
        RING_SLOTS
    }

    /// Copies `texture` into a free slot and starts mapping it; an error when every slot is in flight.
    pub fn start(&mut self, ctx: &GpuContext, texture: &wgpu::Texture) -> Result<usize, GpuError> {
        use std::sync::atomic::Ordering;
        let (width, height) = (texture.width(), texture.height());
        let row = padded_bytes_per_row(width);
        let free = self.slots.iter().position(|s| s.state.load(Ordering::Acquire) == SLOT_FREE);
        let index = match free {
            Some(index) if (self.slots[index].width, self.slots[index].height) == (width, height) => index,
            found => {
                if found.is_none() && self.slots.len() >= RING_SLOTS {
                    return Err(GpuError::Readback("every readback buffer is in flight".into()));
                }
                let slot = RingSlot {
                    buffer: ctx.device.create_buffer(&wgpu::BufferDescriptor {
                        label: Some("readback ring"),
                        size: row as u64 * height as u64,
                        usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
                        mapped_at_creation: false,
                    }),
                    width,
                    height,
                    state: std::sync::Arc::default(),
                };
                match found {
                    Some(index) => {
                        self.slots[index] = slot;
                        index
                    }
                    None => {
                        self.slots.push(slot);
                        self.slots.len() - 1
                    }
                }
            }
        };
        let slot = &self.slots[index];
        let mut encoder =
            ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &slot.buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row),
                    rows_per_image: Some(height),
                },
            },
            wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        );
        ctx.queue.submit([encoder.finish()]);
        slot.state.store(SLOT_MAPPING, Ordering::Release);
        let state = std::sync::Arc::clone(&slot.state);
        slot.buffer.slice(..).map_async(wgpu::MapMode::Read, move |result| {
            state.store(if result.is_ok() { SLOT_MAPPED } else { SLOT_FAILED }, Ordering::Release);
        });
        Ok(index)
    }

    /// Whether `slot`'s map has come back, after a poll that does not wait.
    pub fn is_ready(&self, ctx: &GpuContext, slot: usize) -> bool {
        use std::sync::atomic::Ordering;
        let _ = ctx.device.poll(wgpu::PollType::Poll);
        self.slots.get(slot).is_some_and(|s| s.state.load(Ordering::Acquire) >= SLOT_MAPPED)
    }

    /// Copies `slot` (waiting for its map if it has not come back) into `out` (rows packed), frees it, and
    /// returns the texture's size.
    pub fn finish(&mut self, ctx: &GpuContext, slot: usize, out: &mut Vec<u8>) -> Result<(u32, u32), GpuError> {
        use std::sync::atomic::Ordering;
        let slot = self.slots.get(slot).ok_or_else(|| GpuError::Readback(format!("no readback slot {slot}")))?;
        while slot.state.load(Ordering::Acquire) == SLOT_MAPPING {
            ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|err| GpuError::Readback(err.to_string()))?;
        }
        if slot.state.load(Ordering::Acquire) == SLOT_FAILED {
            slot.state.store(SLOT_FREE, Ordering::Release);
            return Err(GpuError::Readback("mapping the readback buffer failed".into()));
        }
        ctx.take_error()?;
        unpack_rows(&slot.buffer, slot.width, slot.height, out)?;
        slot.state.store(SLOT_FREE, Ordering::Release);
        Ok((slot.width, slot.height))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn rows_are_padded_to_256_bytes() {
        assert_eq!(super::padded_bytes_per_row(64), 256);
        assert_eq!(super::padded_bytes_per_row(65), 512);
        assert_eq!(super::padded_bytes_per_row(1280), 5120);
        assert_eq!(super::padded_bytes_per_row(1279), 5120);
    }
}
