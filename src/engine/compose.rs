//! The composite stage: the temporal filter, then one composite per matted frame, published to every
//! consumer. On the window's GPU, the picture stays a texture the window draws as it is, and is read back
//! through a ring of staging buffers only while a consumer needs the pixels (a recording, a snapshot of
//! a file run); nothing waits for a map unless every buffer of the ring is in flight.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::fanout::PublishScratch;
use super::infer::Matted;
use super::link::{LinkIn, Recv};
use super::{CompositorSetup, EngineError, Shared};
use crate::color::PixelData;
use crate::composite::CompositeSettings;
use crate::composite::background::Pacing;
use crate::compositor::{self, Compositor, CompositorError};
use crate::filter::temporal::{TemporalFilter, TemporalMode};
use crate::frame::{Frame, GpuImage, Matte, Output};
use crate::gpu::GpuCompositor;
use crate::gpu::pipelines::rgba_texture;

/// How long the stage waits for a matte before it looks at its inputs again.
const POLL: Duration = Duration::from_millis(50);
/// Outputs kept for reuse: more than the consumers hold at once when they keep up (the window's shown and
/// newest frames, a snapshot, a file run's writer and its queue, a few queued for a recording). Made at
/// start and used in turn, so every one's buffers are sized by the first frames.
const OUTPUT_POOL: usize = 8;
/// Textures the window's frames are kept in, so that the one on screen is never drawn over.
const DISPLAY_TEXTURES: usize = 8;

pub fn run(
    shared: &Shared,
    setup: CompositorSetup,
    settings: CompositeSettings,
    temporal: TemporalMode,
    live: bool,
    input: LinkIn<Matted>,
) -> Result<(), EngineError> {
    // The consumers see the end of the stream however this stage ends.
    struct CloseOnExit<'a>(&'a Shared);
    impl Drop for CloseOnExit<'_> {
        fn drop(&mut self) {
            self.0.fanout.close();
        }
    }
    let _close = CloseOnExit(shared);
    let pacing = if live { Pacing::RealTime } else { Pacing::OnePerFrame };
    let mut stage = Compose {
        compositor: open(shared, setup, settings, pacing)?,
        filter: TemporalFilter::new(temporal),
        pool: (0..OUTPUT_POOL).map(|_| Some(Arc::new(Output::default()))).collect(),
        next: 0,
        scratch: Vec::new(),
        display: Vec::new(),
        pending: VecDeque::new(),
    };
    loop {
        stage.take_changes(shared);
        let matted = match input.recv_timeout(POLL) {
            Recv::Value(matted) => matted,
            Recv::Empty => continue,
            Recv::Closed => break,
        };
        if shared.failed() {
            return Ok(());
        }
        super::stage::test_panic("composite", matted.frame.seq);
        if matted.restart {
            stage.filter.reset();
        }
        let started = Instant::now();
        let filtered = stage.filter.push(matted.frame, matted.matte);
        shared.stats.record_filter(started.elapsed().as_secs_f64() * 1000.0);
        if let Some((frame, matte)) = filtered
            && !stage.finish(shared, frame, matte)?
        {
            return Ok(());
        }
    }
    if shared.failed() {
        return Ok(());
    }
    if let Some((frame, matte)) = stage.filter.flush()
        && !stage.finish(shared, frame, matte)?
    {
        return Ok(());
    }
    stage.drain_readbacks(shared, true)?;
    Ok(())
}

/// Opens the compositor; a picture setting that cannot be opened (a background file) falls back to the
/// default background, and the status says why.
fn open(
    shared: &Shared,
    setup: CompositorSetup,
    settings: CompositeSettings,
    pacing: Pacing,
) -> Result<Box<dyn Compositor>, EngineError> {
    let open_with = |settings: CompositeSettings| -> Result<Box<dyn Compositor>, CompositorError> {
        match &setup {
            CompositorSetup::Kind(kind) => compositor::open(*kind, settings, pacing).map(|(c, notice)| {
                if let Some(notice) = notice {
                    tracing::info!("{notice}");
                }
                c
            }),
            CompositorSetup::Device(ctx) => {
                let mut gpu = GpuCompositor::new(ctx.clone(), settings, pacing)?;
                gpu.set_display(true);
                gpu.measure_gpu_time_in_background(true);
                Ok(Box::new(gpu))
            }
            CompositorSetup::Opened(_) => unreachable!("an opened compositor is used as it is"),
        }
    };
    let compositor = match setup {
        CompositorSetup::Opened(compositor) => compositor,
        _ => match open_with(settings.clone()) {
            Ok(compositor) => compositor,
            Err(err @ CompositorError::Composite(_)) => {
                shared.update_status(|status| status.composite_error = Some(err.to_string()));
                let fallback = CompositeSettings { background: Default::default(), ..settings };
                open_with(fallback)?
            }
            Err(err) => return Err(err.into()),
        },
    };
    shared.update_status(|status| {
        status.compositor = compositor.describe();
        status.composite = compositor.settings().clone();
    });
    Ok(compositor)
}

/// An output and the pool slot it returns to (none: made while the pool's were all held).
type Pooled = (Option<usize>, Arc<Output>);

struct Compose {
    compositor: Box<dyn Compositor>,
    filter: TemporalFilter<Frame>,
    /// Outputs for reuse (a slot is empty while its output is being filled); one no consumer holds is free.
    pool: Vec<Option<Arc<Output>>>,
    /// Where the search for a free output starts: the one after the last used.
    next: usize,
    scratch: PublishScratch,
    /// The window's textures (GPU on the window's device).
    display: Vec<Arc<wgpu::Texture>>,
    /// Outputs waiting for their pixels to come back from the GPU, oldest first, with their pool slot and
    /// their readback slot.
    pending: VecDeque<(Pooled, usize)>,
}

impl Compose {
    /// New picture settings and a new temporal filter, latest-wins.
    fn take_changes(&mut self, shared: &Shared) {
        if let Some(settings) = shared.composite.take_timeout(Duration::ZERO) {
            match self.compositor.set_settings(settings) {
                Ok(()) => shared.update_status(|status| {
                    status.composite = self.compositor.settings().clone();
                    status.composite_error = None;
                }),
                Err(err) => shared.update_status(|status| status.composite_error = Some(err.to_string())),
            }
        }
        if let Some(mode) = shared.temporal.take_timeout(Duration::ZERO) {
            self.filter = TemporalFilter::new(mode);
        }
    }

    /// An output to fill: the next one no consumer holds any more, or a new one while they hold them all.
    fn fresh_output(&mut self) -> Pooled {
        let n = self.pool.len();
        let free = (0..n)
            .map(|k| (self.next + k) % n)
            .find(|&i| self.pool[i].as_ref().is_some_and(|o| Arc::strong_count(o) == 1 && Arc::weak_count(o) == 0));
        match free {
            Some(i) => {
                self.next = (i + 1) % n;
                (Some(i), self.pool[i].take().expect("found above"))
            }
            None => (None, Arc::new(Output::default())),
        }
    }

    /// Composites one frame and publishes it (or, on the GPU with consumers that need pixels, starts its
    /// readback). False when a file run's writer has gone: the run stops.
    fn finish(&mut self, shared: &Shared, frame: Frame, matte: Matte) -> Result<bool, EngineError> {
        let started = Instant::now();
        let (slot, mut output) = self.fresh_output();
        let out = Arc::get_mut(&mut output).expect("a fresh output has one owner");
        shared.recycle_frame(std::mem::replace(&mut out.frame, frame).rgb);
        shared.recycle_matte(std::mem::replace(&mut out.matte, matte));
        let settings = self.compositor.settings();
        out.mirror = settings.mirror;
        out.transparent = settings.transparent();
        let readback = match self.compositor.as_gpu() {
            Some(gpu) => {
                let Output { frame, matte, .. } = &*out;
                gpu.render(PixelData::Rgb(&frame.rgb), frame.width, frame.height, matte)
                    .map_err(CompositorError::from)?;
                out.gpu = if gpu.is_display() { Some(keep_textures(gpu, &mut self.display)?) } else { None };
                out.picture.alpha.clear();
                out.gpu.is_none() || shared.fanout.wants_pixels()
            }
            None => {
                let Output { frame, matte, picture, .. } = out;
                self.compositor.composite(frame, matte, picture)?;
                false
            }
        };
        out.composited_at = Some(Instant::now());
        let gpu_ms = self.compositor.as_gpu().and_then(|gpu| gpu.last_gpu_ms());
        out.composite_ms = gpu_ms.unwrap_or_else(|| started.elapsed().as_secs_f64() * 1000.0);
        shared.stats.record_composite(out.composite_ms, out.frame.captured_at);
        if readback {
            let gpu = self.compositor.as_gpu().expect("a readback is a GPU's");
            if self.pending.len() >= gpu.readback_slots() {
                self.drain_readbacks(shared, true)?;
            }
            let gpu = self.compositor.as_gpu().expect("a readback is a GPU's");
            let readback = gpu.start_readback().map_err(CompositorError::from)?;
            self.pending.push_back(((slot, output), readback));
            return self.drain_readbacks(shared, false);
        }
        Ok(self.publish(shared, (slot, output)))
    }

    /// Publishes the outputs whose pixels came back (all of them, waiting, with `wait`).
    fn drain_readbacks(&mut self, shared: &Shared, wait: bool) -> Result<bool, EngineError> {
        while let Some((_, slot)) = self.pending.front() {
            let slot = *slot;
            let gpu = self.compositor.as_gpu().expect("only a GPU has readbacks");
            if !wait && !gpu.readback_ready(slot) {
                break;
            }
            let ((pool_slot, mut output), _) = self.pending.pop_front().expect("looked at above");
            let out = Arc::get_mut(&mut output).expect("a pending output is not published yet");
            let transparent = out.transparent.is_some();
            gpu.finish_readback(slot, transparent, &mut out.picture).map_err(CompositorError::from)?;
            if !self.publish(shared, (pool_slot, output)) {
                return Ok(false);
            }
        }
        Ok(true)
    }

    fn publish(&mut self, shared: &Shared, (slot, output): Pooled) -> bool {
        let delivered = shared.fanout.publish(&output, &mut self.scratch);
        if let Some(slot) = slot {
            self.pool[slot] = Some(output);
        }
        (shared.notify)();
        delivered
    }
}

/// Copies of this frame's textures (what the window shows, and the composite when that is another
/// texture) into textures no frame still held is using.
fn keep_textures(gpu: &mut GpuCompositor, ring: &mut Vec<Arc<wgpu::Texture>>) -> Result<GpuImage, CompositorError> {
    let (shown, composite) = gpu.output_textures().expect("rendered before");
    let (shown, composite) = (shown.clone(), composite.clone());
    let ctx = gpu.context();
    let mut encoder = ctx.device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("keep") });
    let shown_copy = copy_into_free(ctx, ring, &shown, &mut encoder, None);
    let composite_copy = if composite == shown {
        Arc::clone(&shown_copy)
    } else {
        copy_into_free(ctx, ring, &composite, &mut encoder, Some(&shown_copy))
    };
    ctx.queue.submit([encoder.finish()]);
    ctx.take_error().map_err(CompositorError::from)?;
    Ok(GpuImage { shown: shown_copy, composite: composite_copy, device: ctx.device.clone(), queue: ctx.queue.clone() })
}

fn copy_into_free(
    ctx: &crate::gpu::GpuContext,
    ring: &mut Vec<Arc<wgpu::Texture>>,
    source: &wgpu::Texture,
    encoder: &mut wgpu::CommandEncoder,
    taken: Option<&Arc<wgpu::Texture>>,
) -> Arc<wgpu::Texture> {
    let size = source.size();
    let free = ring.iter().position(|t| {
        Arc::strong_count(t) == 1 && t.size() == size && taken.is_none_or(|taken| !Arc::ptr_eq(t, taken))
    });
    let texture = match free {
        Some(i) => Arc::clone(&ring[i]),
        None => {
            let texture = Arc::new(rgba_texture(&ctx.device, "kept frame", size, wgpu::TextureUsages::empty()));
            if ring.len() >= DISPLAY_TEXTURES {
                // Sizes no longer made are forgotten first.
                ring.retain(|t| t.size() == size);
            }
            if ring.len() < DISPLAY_TEXTURES {
                ring.push(Arc::clone(&texture));
            }
            texture
        }
    };
    encoder.copy_texture_to_texture(source.as_image_copy(), texture.as_image_copy(), size);
    texture
}
