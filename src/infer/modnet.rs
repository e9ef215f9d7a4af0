//! MODNet (Ke et al., AAAI 2022) as its authors' ONNX inference runs it: RGB normalised to [-1, 1], area
//! resized so the shorter side is the reference size (512) with both sides rounded down to multiples of
//! 32, alpha out at that size (the caller resizes it back).

use std::path::{Path, PathBuf};
use std::time::Instant;

use ort::session::{IoBinding, Session};
use ort::value::Tensor;

use super::{InferError, Matter, MatterOptions, ModelKind, ProviderInUse, describe_inputs, session};
use crate::frame::{Frame, Matte};
use crate::resample::{ResampleKind, Resampler};

pub const DEFAULT_REF_SIZE: u32 = 512;

/// The model input size for a frame, following `get_scale_factor` of the authors' `inference_onnx.py`.
pub fn input_size(width: u32, height: u32, ref_size: u32) -> (u32, u32) {
    let (w, h, r) = (width as f64, height as f64, ref_size as f64);
    let (mut rw, mut rh) = if width.max(height) < ref_size || width.min(height) > ref_size {
        if width >= height { ((w / h * r) as u32, ref_size) } else { (ref_size, (h / w * r) as u32) }
    } else {
        (width, height)
    };
    rw -= rw % 32;
    rh -= rh % 32;
    (rw.max(32), rh.max(32))
}

/// Buffers for one frame size, reused for every frame of that size.
struct SizedBuffers {
    frame_size: (u32, u32),
    input_size: (u32, u32),
    resampler: Resampler,
    input: Tensor<f32>,
    output: Tensor<f32>,
    binding: IoBinding,
}

fn run_error(width: u32, height: u32) -> impl Fn(ort::Error) -> InferError {
    move |err| InferError::Run { model: "MODNet", width, height, reason: err.to_string() }
}

pub struct Modnet {
    session: Session,
    provider: ProviderInUse,
    path: PathBuf,
    ref_size: u32,
    input_name: String,
    output_name: String,
    buffers: Option<SizedBuffers>,
}

impl Modnet {
    pub fn open(path: &Path, options: &MatterOptions) -> Result<Self, InferError> {
        let (session, provider) = session::build_session(path, &options.session)?;
        let wrong = |found: String| InferError::WrongModel {
            path: path.to_path_buf(),
            kind: "MODNet",
            expected: "one 1x3xHxW image input and a 1x1xHxW alpha output",
            found,
        };
        let inputs = session.inputs();
        let image_input = inputs.len() == 1 && inputs[0].dtype().tensor_shape().is_some_and(|s| s.len() == 4);
        let alpha_output =
            session.outputs().first().and_then(|o| o.dtype().tensor_shape()).is_some_and(|s| s.len() == 4);
        if !image_input || !alpha_output {
            return Err(wrong(describe_inputs(&session)));
        }
        let input_name = inputs[0].name().to_string();
        let output_name = session.outputs()[0].name().to_string();
        tracing::info!("MODNet loaded from {} on {provider}", crate::paths::display(path));
        Ok(Self {
            session,
            provider,
            path: path.to_path_buf(),
            ref_size: options.ref_size.unwrap_or(DEFAULT_REF_SIZE),
            input_name,
            output_name,
            buffers: None,
        })
    }

    fn prepare(&mut self, width: u32, height: u32) -> Result<(), InferError> {
        if self.buffers.as_ref().is_some_and(|b| b.frame_size == (width, height)) {
            return Ok(());
        }
        let err = run_error(width, height);
        let (in_w, in_h) = input_size(width, height, self.ref_size);
        let allocator = self.session.allocator();
        let input = Tensor::<f32>::new(allocator, [1usize, 3, in_h as usize, in_w as usize]).map_err(&err)?;
        let mut output = Tensor::<f32>::new(allocator, [1usize, 1, in_h as usize, in_w as usize]).map_err(&err)?;
        let mut binding = self.session.create_binding().map_err(&err)?;
        binding.bind_output(&self.output_name, &mut output).map_err(&err)?;
        binding.bind_input(&self.input_name, &input).map_err(&err)?;
        self.buffers = Some(SizedBuffers {
            frame_size: (width, height),
            input_size: (in_w, in_h),
            resampler: Resampler::new(ResampleKind::Area, width, height, in_w, in_h),
            input,
            output,
            binding,
        });
        Ok(())
    }

    pub fn model_path(&self) -> &Path {
        &self.path
    }
}

impl Matter for Modnet {
    fn infer(&mut self, frame: &Frame, out: &mut Matte) -> Result<(), InferError> {
        let started = Instant::now();
        self.prepare(frame.width, frame.height)?;
        let err = run_error(frame.width, frame.height);
        let buffers = self.buffers.as_mut().expect("prepared above");
        {
            let (_, input) = buffers.input.try_extract_tensor_mut().map_err(&err)?;
            buffers.resampler.rgb8_to_planar(&frame.rgb, input, 1.0 / 127.5, -1.0);
        }
        if session::rebinds_inputs(&self.provider) {
            buffers.binding.bind_input(&self.input_name, &buffers.input).map_err(&err)?;
        }
        let model_started = Instant::now();
        session::run_bound(&self.session, &buffers.binding).map_err(&err)?;
        out.model_ms = model_started.elapsed().as_secs_f64() * 1000.0;
        let (_, alpha) = buffers.output.try_extract_tensor().map_err(&err)?;
        let (in_w, in_h) = buffers.input_size;
        out.seq = frame.seq;
        out.width = in_w;
        out.height = in_h;
        out.alpha.clear();
        out.alpha.extend(alpha.iter().map(|a: &f32| a.clamp(0.0, 1.0)));
        out.foreground = None;
        out.infer_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn run_model_only(&mut self) -> Result<(), InferError> {
        let buffers = self.buffers.as_mut().ok_or(InferError::NotPrepared("MODNet"))?;
        let err = run_error(buffers.frame_size.0, buffers.frame_size.1);
        if session::rebinds_inputs(&self.provider) {
            buffers.binding.bind_input(&self.input_name, &buffers.input).map_err(&err)?;
        }
        session::run_bound(&self.session, &buffers.binding).map_err(&err)
    }

    fn reset(&mut self) {}

    fn set_work(&mut self, work: super::Work) {
        if let Some(size) = work.ref_size
            && size != self.ref_size
        {
            self.ref_size = size;
            self.buffers = None;
        }
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Modnet
    }

    fn provider(&self) -> &ProviderInUse {
        &self.provider
    }
}

#[cfg(test)]
mod tests {
    use super::input_size;

    #[test]
    fn input_size_follows_the_authors_rule() {
        assert_eq!(input_size(1080, 720, 512), (768, 512));
        assert_eq!(input_size(3240, 2160, 512), (768, 512));
        assert_eq!(input_size(1920, 1080, 512), (896, 512));
        assert_eq!(input_size(720, 1280, 512), (512, 896));
        // Between the bounds the frame keeps its size, rounded down to multiples of 32.
        assert_eq!(input_size(640, 480, 512), (640, 480));
        assert_eq!(input_size(300, 200, 512), (768, 512));
    }
}
