//! Background Matting V2 (Lin et al., CVPR 2021), as the authors' ONNX export script writes it: the frame
//! (`src`) and the clean plate (`bgr`), N x 3 x H x W in [0, 1], in; alpha (`pha`) and foreground colour
//! (`fgr`) at full size out, plus coarse results (`pha_sm`, `fgr_sm`, `err_sm`, `ref_sm`) for the refine
//! models or `err`, `hid` for the base model. Any backbone; the backbone scale and refine mode are baked
//! into the file. Sides must be multiples of 4 (refined patches land in the wrong place otherwise, with no
//! error), so frames are padded by repeating their last row and column, and the outputs cropped.

use std::path::Path;
use std::time::Instant;

use ort::session::{IoBinding, Session};
use ort::value::Tensor;

use super::rvm::{planar_unit_from_rgb8, rgb8_from_planar_unit};
use super::{InferError, Matter, MatterOptions, ModelKind, ProviderInUse, describe_inputs, session};
use crate::frame::{Frame, Matte};

/// Which of the authors' exports a file is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    /// Base network and refiner (outputs `pha_sm`, `ref_sm`, ...).
    Refine,
    /// Base network only (outputs `err`, `hid`).
    Base,
}

/// Sampling-mode refiners pick a fixed number of pixels (80,000 in the authors' default) and fail on
/// smaller frames.
pub const MIN_PIXELS_SAMPLING: u32 = 80_000;

fn run_error(width: u32, height: u32) -> impl Fn(ort::Error) -> InferError {
    move |err| InferError::Run { model: "BGMv2", width, height, reason: err.to_string() }
}

struct SizedBuffers {
    frame_size: (u32, u32),
    padded: (u32, u32),
    src: Tensor<f32>,
    bgr: Tensor<f32>,
    pha: Tensor<f32>,
    fgr: Tensor<f32>,
    binding: IoBinding,
    /// Padded packed RGB, reused.
    staging: Vec<u8>,
    /// The foreground planes cropped to the frame.
    fgr_crop: Vec<f32>,
}

pub struct Bgmv2 {
    session: Session,
    provider: ProviderInUse,
    variant: Variant,
    /// The plate for the next frames (packed RGB, frame size), as the caller last set it.
    plate: Option<(u32, u32, Vec<u8>)>,
    plate_changed: bool,
    buffers: Option<SizedBuffers>,
}

/// The frame size rounded up to multiples of 4.
pub fn padded_size(width: u32, height: u32) -> (u32, u32) {
    (width.div_ceil(4) * 4, height.div_ceil(4) * 4)
}

/// Copies packed RGB `width` x `height` into `out` at `padded` size, repeating the last column and row.
fn pad_rgb(rgb: &[u8], width: u32, height: u32, padded: (u32, u32), out: &mut Vec<u8>) {
    let (w, pw, ph) = (width as usize, padded.0 as usize, padded.1 as usize);
    out.clear();
    for y in 0..ph {
        let row = &rgb[y.min(height as usize - 1) * w * 3..][..w * 3];
        out.extend_from_slice(row);
        for _ in w..pw {
            out.extend_from_slice(&row[(w - 1) * 3..]);
        }
    }
}

impl Bgmv2 {
    pub fn open(path: &Path, options: &MatterOptions) -> Result<Self, InferError> {
        let (session, provider) = session::build_session(path, &options.session)?;
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        let has = |names: &[&str], wanted: &[&str]| wanted.iter().all(|n| names.contains(n));
        let variant = if has(&outputs, &["pha_sm", "ref_sm"]) {
            Some(Variant::Refine)
        } else if has(&outputs, &["err", "hid"]) {
            Some(Variant::Base)
        } else {
            None
        };
        let (true, Some(variant)) =
            (inputs.len() == 2 && has(&inputs, &["src", "bgr"]) && has(&outputs, &["pha", "fgr"]), variant)
        else {
            let found = format!("{}; outputs {}", describe_inputs(&session), outputs.join(", "));
            return Err(InferError::WrongModel {
                path: path.to_path_buf(),
                kind: "BGMv2",
                expected: "inputs `src`, `bgr` and outputs `pha`, `fgr` with `pha_sm`, `ref_sm` (refine) or `err`, `hid` (base)",
                found,
            });
        };
        tracing::info!("BGMv2 ({variant:?}) loaded from {} on {provider}", crate::paths::display(path));
        Ok(Self { session, provider, variant, plate: None, plate_changed: false, buffers: None })
    }

    pub fn variant(&self) -> Variant {
        self.variant
    }

    fn prepare(&mut self, width: u32, height: u32) -> Result<(), InferError> {
        if self.buffers.as_ref().is_some_and(|b| b.frame_size == (width, height)) {
            return Ok(());
        }
        let err = run_error(width, height);
        let padded = padded_size(width, height);
        let (pw, ph) = (padded.0 as usize, padded.1 as usize);
        let allocator = self.session.allocator();
        let src = Tensor::<f32>::new(allocator, [1usize, 3, ph, pw]).map_err(&err)?;
        let bgr = Tensor::<f32>::new(allocator, [1usize, 3, ph, pw]).map_err(&err)?;
        let mut pha = Tensor::<f32>::new(allocator, [1usize, 1, ph, pw]).map_err(&err)?;
        let mut fgr = Tensor::<f32>::new(allocator, [1usize, 3, ph, pw]).map_err(&err)?;
        let mut binding = self.session.create_binding().map_err(&err)?;
        binding.bind_output("pha", &mut pha).map_err(&err)?;
        binding.bind_output("fgr", &mut fgr).map_err(&err)?;
        binding.bind_input("src", &src).map_err(&err)?;
        binding.bind_input("bgr", &bgr).map_err(&err)?;
        self.buffers = Some(SizedBuffers {
            frame_size: (width, height),
            padded,
            src,
            bgr,
            pha,
            fgr,
            binding,
            staging: Vec::new(),
            fgr_crop: Vec::new(),
        });
        self.plate_changed = true;
        Ok(())
    }
}

impl Matter for Bgmv2 {
    fn infer(&mut self, frame: &Frame, out: &mut Matte) -> Result<(), InferError> {
        let started = Instant::now();
        let (width, height) = (frame.width, frame.height);
        let Some((plate_width, plate_height, _)) = &self.plate else {
            return Err(InferError::NeedsPlate);
        };
        if (*plate_width, *plate_height) != (width, height) {
            return Err(InferError::PlateSize {
                plate_width: *plate_width,
                plate_height: *plate_height,
                width,
                height,
            });
        }
        self.prepare(width, height)?;
        let err = run_error(width, height);
        let buffers = self.buffers.as_mut().expect("prepared above");
        let padded = buffers.padded;
        {
            pad_rgb(&frame.rgb, width, height, padded, &mut buffers.staging);
            let (_, src) = buffers.src.try_extract_tensor_mut().map_err(&err)?;
            planar_unit_from_rgb8(&buffers.staging, src);
        }
        if std::mem::take(&mut self.plate_changed) {
            let (_, _, plate) = self.plate.as_ref().expect("checked above");
            pad_rgb(plate, width, height, padded, &mut buffers.staging);
            let (_, bgr) = buffers.bgr.try_extract_tensor_mut().map_err(&err)?;
            planar_unit_from_rgb8(&buffers.staging, bgr);
        }
        if session::rebinds_inputs(&self.provider) {
            buffers.binding.bind_input("src", &buffers.src).map_err(&err)?;
            buffers.binding.bind_input("bgr", &buffers.bgr).map_err(&err)?;
        }
        let model_started = Instant::now();
        session::run_bound(&self.session, &buffers.binding).map_err(|e| {
            let mut error = err(e);
            if let InferError::Run { reason, .. } = &mut error
                && width * height < MIN_PIXELS_SAMPLING
            {
                reason.push_str("; sampling-mode BGMv2 models need frames of at least 80,000 pixels");
            }
            error
        })?;
        out.model_ms = model_started.elapsed().as_secs_f64() * 1000.0;
        let (_, pha) = buffers.pha.try_extract_tensor().map_err(&err)?;
        let (_, fgr) = buffers.fgr.try_extract_tensor().map_err(&err)?;
        let (pw, w, h) = (padded.0 as usize, width as usize, height as usize);
        out.seq = frame.seq;
        out.width = width;
        out.height = height;
        out.alpha.clear();
        for y in 0..h {
            out.alpha.extend(pha[y * pw..][..w].iter().map(|a: &f32| a.clamp(0.0, 1.0)));
        }
        // Foreground: crop the three planes, then pack.
        let plane = pw * padded.1 as usize;
        buffers.fgr_crop.clear();
        for c in 0..3 {
            for y in 0..h {
                buffers.fgr_crop.extend_from_slice(&fgr[c * plane + y * pw..][..w]);
            }
        }
        let foreground = out.foreground.get_or_insert_with(Vec::new);
        foreground.resize(w * h * 3, 0);
        rgb8_from_planar_unit(&buffers.fgr_crop, foreground);
        out.infer_ms = started.elapsed().as_secs_f64() * 1000.0;
        Ok(())
    }

    fn set_plate(&mut self, plate: Option<(u32, u32, &[u8])>) {
        match plate {
            Some((width, height, rgb)) => {
                let slot = self.plate.get_or_insert_with(|| (0, 0, Vec::new()));
                slot.0 = width;
                slot.1 = height;
                slot.2.clear();
                slot.2.extend_from_slice(rgb);
            }
            None => self.plate = None,
        }
        self.plate_changed = true;
    }

    fn run_model_only(&mut self) -> Result<(), InferError> {
        let buffers = self.buffers.as_mut().ok_or(InferError::NotPrepared("BGMv2"))?;
        let err = run_error(buffers.frame_size.0, buffers.frame_size.1);
        if session::rebinds_inputs(&self.provider) {
            buffers.binding.bind_input("src", &buffers.src).map_err(&err)?;
            buffers.binding.bind_input("bgr", &buffers.bgr).map_err(&err)?;
        }
        session::run_bound(&self.session, &buffers.binding).map_err(&err)
    }

    fn reset(&mut self) {}

    fn kind(&self) -> ModelKind {
        ModelKind::Bgmv2
    }

    fn provider(&self) -> &ProviderInUse {
        &self.provider
    }
}
