//! Robust Video Matting (Lin et al., WACV 2022): frame in [0, 1] at full size, four recurrent states
//! carried from frame to frame, alpha and foreground out at full size.

use std::path::Path;
use std::time::Instant;

use ort::memory::{AllocationDevice, AllocatorType, MemoryInfo, MemoryType};
use ort::session::{IoBinding, Session};
use ort::value::Tensor;

use super::{InferError, Matter, MatterOptions, ModelKind, ProviderInUse, describe_inputs, session};
use crate::frame::{Frame, Matte};

const STATE_INPUTS: [&str; 4] = ["r1i", "r2i", "r3i", "r4i"];
const STATE_OUTPUTS: [&str; 4] = ["r1o", "r2o", "r3o", "r4o"];

/// The ratio the authors' `auto_downsample_ratio` picks: the backbone sees at most 512 px on the long side.
pub fn auto_downsample_ratio(width: u32, height: u32) -> f32 {
    (512.0 / width.max(height) as f32).min(1.0)
}

/// Recurrent state as two sets of tensors, and two bindings: `bindings[k]` reads `states[k]` and writes
/// the other set, so that alternating between them carries the state with nothing bound again per frame.
struct Recurrent {
    /// Only read through the bindings; held here for as long as they are.
    _states: [Vec<Tensor<f32>>; 2],
    bindings: [IoBinding; 2],
    /// The set holding the newest state.
    newest: usize,
}

struct SizedBuffers {
    frame_size: (u32, u32),
    ratio: f32,
    src: Tensor<f32>,
    ratio_tensor: Tensor<f32>,
    fgr: Tensor<f32>,
    pha: Tensor<f32>,
    /// For the first frame after a reset: zero state in, state outputs allocated by ONNX Runtime.
    binding: IoBinding,
    /// `None` until the first frame after a reset has told us the state shapes.
    recurrent: Option<Recurrent>,
}

pub struct Rvm {
    session: Session,
    provider: ProviderInUse,
    downsample_ratio: Option<f32>,
    /// 1x1x1x1 zeros: the state of "no previous frame", as the authors feed it.
    zero_state: Tensor<f32>,
    buffers: Option<SizedBuffers>,
}

fn run_error(width: u32, height: u32) -> impl Fn(ort::Error) -> InferError {
    move |err| InferError::Run { model: "RVM", width, height, reason: err.to_string() }
}

impl Rvm {
    pub fn open(path: &Path, options: &MatterOptions) -> Result<Self, InferError> {
        let (session, provider) = session::build_session(path, &options.session)?;
        let names: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let expected = ["src", "r1i", "r2i", "r3i", "r4i", "downsample_ratio"];
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if !expected.iter().all(|n| names.contains(n)) || !["fgr", "pha"].iter().all(|n| outputs.contains(n)) {
            return Err(InferError::WrongModel {
                path: path.to_path_buf(),
                kind: "RVM",
                expected: "inputs `src`, `r1i`..`r4i`, `downsample_ratio` and outputs `fgr`, `pha`",
                found: describe_inputs(&session),
            });
        }
        let mut zero_state = Tensor::<f32>::new(session.allocator(), [1usize, 1, 1, 1]).map_err(run_error(0, 0))?;
        zero_state.try_extract_tensor_mut::<f32>().map_err(run_error(0, 0))?.1.fill(0.0);
        tracing::info!("RVM loaded from {} on {provider}", crate::paths::display(path));
        Ok(Self { session, provider, downsample_ratio: options.downsample_ratio, zero_state, buffers: None })
    }

    fn prepare(&mut self, width: u32, height: u32) -> Result<(), InferError> {
        let ratio = self.downsample_ratio.unwrap_or_else(|| auto_downsample_ratio(width, height));
        if self.buffers.as_ref().is_some_and(|b| b.frame_size == (width, height) && b.ratio == ratio) {
            return Ok(());
        }
        let err = run_error(width, height);
        let (w, h) = (width as usize, height as usize);
        let allocator = self.session.allocator();
        let src = Tensor::<f32>::new(allocator, [1usize, 3, h, w]).map_err(&err)?;
        let mut ratio_tensor = Tensor::<f32>::new(allocator, [1usize]).map_err(&err)?;
        ratio_tensor.try_extract_tensor_mut().map_err(&err)?.1[0] = ratio;
        let mut fgr = Tensor::<f32>::new(allocator, [1usize, 3, h, w]).map_err(&err)?;
        let mut pha = Tensor::<f32>::new(allocator, [1usize, 1, h, w]).map_err(&err)?;
        let mut binding = self.session.create_binding().map_err(&err)?;
        binding.bind_output("fgr", &mut fgr).map_err(&err)?;
        binding.bind_output("pha", &mut pha).map_err(&err)?;
        binding.bind_input("downsample_ratio", &ratio_tensor).map_err(&err)?;
        self.buffers = Some(SizedBuffers {
            frame_size: (width, height),
            ratio,
            src,
            ratio_tensor,
            fgr,
            pha,
            binding,
            recurrent: None,
        });
        Ok(())
    }

    /// Runs one frame; the first frame after a reset lets ONNX Runtime allocate the state outputs so that
    /// their shapes are known, later frames write into preallocated state.
    fn run(&mut self, width: u32, height: u32) -> Result<(), InferError> {
        let err = run_error(width, height);
        let buffers = self.buffers.as_mut().expect("prepared");
        match buffers.recurrent.as_mut() {
            Some(state) => {
                let binding = &mut state.bindings[state.newest];
                if session::rebinds_inputs(&self.provider) {
                    binding.bind_input("src", &buffers.src).map_err(&err)?;
                }
                session::run_bound(&self.session, binding).map_err(&err)?;
                state.newest = 1 - state.newest;
            }
            None => {
                buffers.binding.bind_input("src", &buffers.src).map_err(&err)?;
                buffers.binding.bind_input("downsample_ratio", &buffers.ratio_tensor).map_err(&err)?;
                let memory = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::Default)
                    .map_err(&err)?;
                for name in STATE_INPUTS {
                    buffers.binding.bind_input(name, &self.zero_state).map_err(&err)?;
                }
                for name in STATE_OUTPUTS {
                    buffers.binding.bind_output_to_device(name, &memory).map_err(&err)?;
                }
                let outputs = self.session.run_binding(&buffers.binding).map_err(&err)?;
                let mut states = Vec::with_capacity(4);
                for name in STATE_OUTPUTS {
                    let (shape, data) = outputs[name].try_extract_tensor::<f32>().map_err(&err)?;
                    let dims: Vec<usize> = shape.iter().map(|d| *d as usize).collect();
                    states.push((dims, data.to_vec()));
                }
                drop(outputs);
                let allocator = self.session.allocator();
                let mut first = Vec::with_capacity(4);
                let mut second = Vec::with_capacity(4);
                for (dims, data) in states {
                    let mut state = Tensor::<f32>::new(allocator, dims.clone()).map_err(&err)?;
                    state.try_extract_tensor_mut().map_err(&err)?.1.copy_from_slice(&data);
                    first.push(state);
                    second.push(Tensor::<f32>::new(allocator, dims).map_err(&err)?);
                }
                let mut states = [first, second];
                let mut bindings =
                    [self.session.create_binding().map_err(&err)?, self.session.create_binding().map_err(&err)?];
                for (k, binding) in bindings.iter_mut().enumerate() {
                    binding.bind_input("src", &buffers.src).map_err(&err)?;
                    binding.bind_input("downsample_ratio", &buffers.ratio_tensor).map_err(&err)?;
                    binding.bind_output("fgr", &mut buffers.fgr).map_err(&err)?;
                    binding.bind_output("pha", &mut buffers.pha).map_err(&err)?;
                    let [first, second] = &mut states;
                    let (read, write) = if k == 0 { (&*first, second) } else { (&*second, first) };
                    for (name, tensor) in STATE_INPUTS.iter().zip(read.iter()) {
                        binding.bind_input(*name, tensor).map_err(&err)?;
                    }
                    for (name, tensor) in STATE_OUTPUTS.iter().zip(write.iter_mut()) {
                        binding.bind_output(*name, tensor).map_err(&err)?;
                    }
                }
                buffers.recurrent = Some(Recurrent { _states: states, bindings, newest: 0 });
            }
        }
        Ok(())
    }
}

impl Matter for Rvm {
    fn infer(&mut self, frame: &Frame, out: &mut Matte) -> Result<(), InferError> {
        let started = Instant::now();
        let (width, height) = (frame.width, frame.height);
        self.prepare(width, height)?;
        let err = run_error(width, height);
        {
            let buffers = self.buffers.as_mut().expect("prepared");
            let (_, src) = buffers.src.try_extract_tensor_mut().map_err(&err)?;
            planar_unit_from_rgb8(&frame.rgb, src);
        }
        let model_started = Instant::now();
        self.run(width, height)?;
        out.model_ms = model_started.elapsed().as_secs_f64() * 1000.0;
        let buffers = self.buffers.as_ref().expect("prepared");
        let (_, pha) = buffers.pha.try_extract_tensor().map_err(&err)?;
        let (_, fgr) = buffers.fgr.try_extract_tensor().map_err(&err)?;
        out.seq = frame.seq;
        out.width = width;
        out.height = height;
        out.alpha.clear();
        out.alpha.extend(pha.iter().map(|a: &f32| a.clamp(0.0, 1.0)));
        let foreground = out.foreground.get_or_insert_with(Vec::new);
        foreground.resize(frame.pixel_count() * 3, 0);
        rgb8_from_planar_unit(fgr, foreground);
        out.infer_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn run_model_only(&mut self) -> Result<(), InferError> {
        let (width, height) = self.buffers.as_ref().ok_or(InferError::NotPrepared("RVM"))?.frame_size;
        self.run(width, height)
    }

    fn set_work(&mut self, work: super::Work) {
        // A new ratio rebuilds the buffers and starts the recurrent state afresh (its shapes follow it).
        if work.downsample_ratio.is_some() {
            self.downsample_ratio = work.downsample_ratio;
        }
    }

    fn reset(&mut self) {
        if let Some(buffers) = self.buffers.as_mut() {
            buffers.recurrent = None;
        }
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Rvm
    }

    fn provider(&self) -> &ProviderInUse {
        &self.provider
    }
}

/// Packed RGB8 to planar float in [0, 1].
pub fn planar_unit_from_rgb8(rgb: &[u8], planar: &mut [f32]) {
    // The 256 quotients, looked up: the same values as dividing each byte, without a division per byte.
    static UNIT: std::sync::LazyLock<[f32; 256]> =
        std::sync::LazyLock::new(|| std::array::from_fn(|v| v as f32 / 255.0));
    let unit = &*UNIT;
    let n = rgb.len() / 3;
    let (r, rest) = planar.split_at_mut(n);
    let (g, b) = rest.split_at_mut(n);
    for ((px, r), (g, b)) in rgb.chunks_exact(3).zip(r.iter_mut()).zip(g.iter_mut().zip(b.iter_mut())) {
        *r = unit[px[0] as usize];
        *g = unit[px[1] as usize];
        *b = unit[px[2] as usize];
    }
}

/// Planar float in [0, 1] to packed RGB8, rounded.
pub fn rgb8_from_planar_unit(planar: &[f32], rgb: &mut [u8]) {
    let n = rgb.len() / 3;
    // Adding one half and truncating rounds without a libm call per channel.
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0 + 0.5) as u8;
    let (r, rest) = planar[..3 * n].split_at(n);
    let (g, b) = rest.split_at(n);
    for ((px, r), (g, b)) in rgb.chunks_exact_mut(3).zip(r).zip(g.iter().zip(b)) {
        px[0] = to_u8(*r);
        px[1] = to_u8(*g);
        px[2] = to_u8(*b);
    }
}
