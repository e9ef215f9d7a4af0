//! Texture to CPU memory, with the 256-byte row alignment copies need.

use super::{GpuContext, GpuError};

/// Bytes a copied row of `width` RGBA8 pixels takes in a buffer: rounded up to 256.
pub fn padded_bytes_per_row(width: u32) -> u32 {
    let unpadded = width * 4;
    unpadded.div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT) * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT
}

/// Maps `buffer` for reading, waiting for the GPU to finish the work submitted before.
pub fn map_for_reading(ctx: &GpuContext, buffer: &wgpu::Buffer) -> Result<(), GpuError> {
    let failed = |err: &dyn std::fmt::Display| GpuError::Readback(err.to_string());
    let (tx, rx) = crossbeam_channel::bounded(1);
    buffer.slice(..).map_async(wgpu::MapMode::Read, move |result| {
        let _ = tx.send(result);
    });
    ctx.device.poll(wgpu::PollType::wait_indefinitely()).map_err(|err| failed(&err))?;
    rx.recv().map_err(|err| failed(&err))?.map_err(|err| failed(&err))
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
        let row = padded_bytes_per_row(width);
        if self.staging.as_ref().is_none_or(|(_, w, h)| (*w, *h) != (width, height)) {
            let buffer = ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("readback"),
                size: row as u64 * height as u64,
                usage: wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::MAP_READ,
                mapped_at_creation: false,
            });
            self.staging = Some((buffer, width, height));
        }
        let buffer = &self.staging.as_ref().expect("set above").0;
        let mut encoder =
            ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("readback") });
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row),
                    rows_per_image: Some(height),
                },
            },
            wgpu::Extent3d { width, height, depth_or_array_layers: 1 },
        );
        ctx.queue.submit([encoder.finish()]);
        map_for_reading(ctx, buffer)?;
        ctx.take_error()?;
        {
            let view = buffer.get_mapped_range(..).map_err(|err| GpuError::Readback(err.to_string()))?;
            let packed = width as usize * 4;
            out.resize(packed * height as usize, 0);
            for (dst, src) in out.chunks_exact_mut(packed).zip(view.chunks_exact(row as usize)) {
                dst.copy_from_slice(&src[..packed]);
            }
        }
        buffer.unmap();
        Ok(())
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
