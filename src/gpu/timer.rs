//! GPU time of a frame's compute pass, from timestamp queries: read after the frame (waiting for the GPU),
//! or mapped in the background and read by a later frame (the window's case: nothing waits).

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use super::readback::map_for_reading;
use super::{GpuContext, GpuError};

const STAGING_FREE: u8 = 0;
const STAGING_MAPPING: u8 = 1;
const STAGING_MAPPED: u8 = 2;

pub struct Timer {
    pub queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    staging: wgpu::Buffer,
    blocking: bool,
    staging_state: Arc<AtomicU8>,
}

impl Timer {
    /// `None` where the device has no timestamp queries.
    pub fn new(ctx: &GpuContext, blocking: bool) -> Option<Self> {
        if !ctx.timestamps {
            return None;
        }
        let device = &ctx.device;
        Some(Self {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("frame time"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("frame time resolve"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
            staging: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("frame time staging"),
                size: 16,
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            }),
            blocking,
            staging_state: Arc::new(AtomicU8::new(STAGING_FREE)),
        })
    }

    /// Milliseconds between the two timestamps in the mapped staging buffer.
    fn read_mapped_ms(&self, queue: &wgpu::Queue) -> Result<f64, GpuError> {
        let view = self.staging.get_mapped_range(..).map_err(|err| GpuError::Readback(err.to_string()))?;
        let ticks: &[u64] = bytemuck::cast_slice(&view);
        Ok(ticks[1].saturating_sub(ticks[0]) as f64 * queue.get_timestamp_period() as f64 / 1e6)
    }

    /// Before a frame: a background-mapped time, if one has come back; and whether this frame's time can
    /// be copied (the staging buffer is free).
    pub fn harvest(&self, queue: &wgpu::Queue) -> (Option<f64>, bool) {
        if self.blocking {
            return (None, true);
        }
        match self.staging_state.load(Ordering::Acquire) {
            STAGING_MAPPED => {
                let read = self.read_mapped_ms(queue);
                self.staging.unmap();
                self.staging_state.store(STAGING_FREE, Ordering::Release);
                (read.ok(), true)
            }
            STAGING_FREE => (None, true),
            _ => (None, false),
        }
    }

    /// Records the copy of this frame's timestamps.
    pub fn copy(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.queries, 0..2, &self.resolve, 0);
        encoder.copy_buffer_to_buffer(&self.resolve, 0, &self.staging, 0, 16);
    }

    /// After the submit of a copied frame: the background map starts (or, blocking, the time is read now).
    pub fn after_submit(&self, ctx: &GpuContext) -> Result<Option<f64>, GpuError> {
        if self.blocking {
            map_for_reading(ctx, &self.staging)?;
            let read = self.read_mapped_ms(&ctx.queue);
            self.staging.unmap();
            return read.map(Some);
        }
        self.staging_state.store(STAGING_MAPPING, Ordering::Release);
        let state = Arc::clone(&self.staging_state);
        self.staging.slice(..).map_async(wgpu::MapMode::Read, move |result| {
            state.store(if result.is_ok() { STAGING_MAPPED } else { STAGING_FREE }, Ordering::Release);
        });
        Ok(None)
    }
}
