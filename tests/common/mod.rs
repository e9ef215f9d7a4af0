//! Helpers shared by the test binaries: the fetched models and demo media, and decoded demo frames.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod pipewire;
pub mod sound;

use mattecam::frame::Frame;
use mattecam::infer::{MatterOptions, ModelKind, ProviderRequest, SessionOptions};
use mattecam::source::FrameSource;
use mattecam::source::video::VideoSource;

pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A file `make setup` fetches; a clear failure (not a skip) when it is missing.
pub fn fetched(relative: &str) -> PathBuf {
    let path = root().join(relative);
    assert!(path.is_file(), "{} is missing: run `make setup` (or `make test`, which runs it)", path.display());
    path
}

/// `../shared/SUB` beside the checkout: always there in CI; in a user's clone, absent, and the caller skips.
pub fn shared_dir(sub: &str) -> Option<PathBuf> {
    let dir = root().join("../shared").join(sub);
    if dir.is_dir() {
        return Some(dir);
    }
    assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must have ../shared beside the checkout");
    eprintln!("skipped: ../shared/{sub} is absent (a user's clone); these checks need the shared material");
    None
}

pub fn model_file(kind: ModelKind) -> PathBuf {
    match kind {
        ModelKind::Modnet => fetched("models/modnet.onnx"),
        ModelKind::Rvm => fetched("models/rvm_mobilenetv3_fp32.onnx"),
        ModelKind::Bgmv2 => root().join("../shared/fixtures/bgmv2/bgmv2_mobilenetv2_thresholding_random.onnx"),
    }
}

pub fn cpu_options() -> MatterOptions {
    MatterOptions {
        session: SessionOptions { threads: 2, provider: ProviderRequest::Cpu, ..Default::default() },
        ..Default::default()
    }
}

/// Frames of the demo clip at the given indices (ascending).
pub fn demo_frames(indices: &[u64]) -> Vec<Frame> {
    let mut source = VideoSource::open(&fetched("assets/demovideo.mp4")).expect("demo clip opens");
    let mut frames = Vec::new();
    while let Some(frame) = source.next_frame(Vec::new()).expect("demo clip decodes") {
        if indices.contains(&frame.seq) {
            frames.push(frame);
        }
        if frames.len() == indices.len() {
            break;
        }
    }
    assert_eq!(frames.len(), indices.len(), "demo clip is shorter than expected");
    frames
}

/// The mean of `alpha` (row-major, `width` wide) over a square of side `2 * r + 1` around `(x, y)`.
pub fn mean_around(alpha: &[f32], width: u32, x: u32, y: u32, r: u32) -> f32 {
    let mut sum = 0.0;
    let mut n = 0;
    for yy in y - r..=y + r {
        for xx in x - r..=x + r {
            sum += alpha[(yy * width + xx) as usize];
            n += 1;
        }
    }
    sum / n as f32
}

/// Path of the mattecam binary built for the integration tests.
pub fn mattecam() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_mattecam"))
}

/// A copy of the first `seconds` of the demo clip with its index first (`+faststart`), cut after 60% of
/// its bytes: the header reads fine and decoding runs into the missing data.
pub fn cut_demo_clip(dir: &std::path::Path, seconds: u32) -> PathBuf {
    let fast = dir.join("fast.mp4");
    let status = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y", "-i"])
        .arg(fetched("assets/demovideo.mp4"))
        .args(["-c", "copy", "-movflags", "+faststart", "-t", &seconds.to_string()])
        .arg(&fast)
        .status()
        .expect("ffmpeg runs");
    assert!(status.success());
    let bytes = std::fs::read(&fast).unwrap();
    let cut = dir.join("cut.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() * 6 / 10]).unwrap();
    cut
}

/// A file run on the engine: every frame of `source` matted by `matters`, composited on the CPU with
/// `composite`, written to `sinks`.
pub fn file_engine(
    source: Box<dyn FrameSource>,
    matters: Vec<Box<dyn mattecam::infer::Matter>>,
    temporal: mattecam::filter::temporal::TemporalMode,
    composite: mattecam::composite::CompositeSettings,
    sinks: Vec<Box<dyn mattecam::sink::Sink>>,
    max_frames: Option<u64>,
) -> mattecam::engine::Engine {
    use mattecam::engine::{CompositorSetup, Engine, EngineConfig, ModelInput, SinkWriter, SourceInput};
    let compositor = Box::new(mattecam::composite::CpuCompositor::new(composite.clone()).expect("CPU compositor"));
    Engine::start(EngineConfig {
        hold_rate: None,
        source: SourceInput::File(source),
        model: ModelInput::Opened(matters),
        temporal,
        composite,
        compositor: CompositorSetup::Opened(compositor),
        plate: None,
        writer: Some(SinkWriter::new(sinks)),
        max_frames,
        notify: std::sync::Arc::new(|| {}),
    })
}

/// A test model whose alpha is a function of the frame's number: `alpha_of(seq)` fills the whole matte,
/// or fails the frame with `Err`. It counts its resets (RVM's recurrent state starting afresh).
pub struct ScriptedMatter<F> {
    pub alpha_of: F,
    pub resets: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl<F: FnMut(u64) -> Result<f32, mattecam::infer::InferError> + Send> mattecam::infer::Matter for ScriptedMatter<F> {
    fn infer(&mut self, frame: &Frame, out: &mut mattecam::frame::Matte) -> Result<(), mattecam::infer::InferError> {
        let value = (self.alpha_of)(frame.seq)?;
        out.seq = frame.seq;
        (out.width, out.height) = (frame.width, frame.height);
        out.alpha.clear();
        out.alpha.resize(frame.pixel_count(), value);
        out.foreground = None;
        Ok(())
    }

    fn run_model_only(&mut self) -> Result<(), mattecam::infer::InferError> {
        Ok(())
    }

    fn reset(&mut self) {
        self.resets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    fn kind(&self) -> ModelKind {
        ModelKind::Rvm
    }

    fn provider(&self) -> &mattecam::infer::ProviderInUse {
        static CPU: std::sync::OnceLock<mattecam::infer::ProviderInUse> = std::sync::OnceLock::new();
        CPU.get_or_init(|| mattecam::infer::ProviderInUse::cpu(None))
    }
}

/// A folder laid out as mattecam's home (`models/`, `.cache/onnxruntime/cpu/`), each file linked to the
/// checkout's verified one, for a test to replace some of them.
pub fn home_like_checkout(home: &std::path::Path) {
    let models = home.join("models");
    std::fs::create_dir_all(&models).unwrap();
    for name in ["models.toml", "modnet.onnx", "rvm_mobilenetv3_fp32.onnx"] {
        std::os::unix::fs::symlink(fetched(&format!("models/{name}")), models.join(name)).unwrap();
    }
    let cpu = home.join(".cache/onnxruntime/cpu");
    std::fs::create_dir_all(&cpu).unwrap();
    for name in ["libonnxruntime.so.1.31.1", "libonnxruntime_providers_shared.so"] {
        std::os::unix::fs::symlink(fetched(&format!(".cache/onnxruntime/cpu/{name}")), cpu.join(name)).unwrap();
    }
    std::os::unix::fs::symlink("libonnxruntime.so.1.31.1", cpu.join("libonnxruntime.so")).unwrap();
}

/// Waits for a condition on an engine's status, with a guard against hanging (not a bound on speed).
pub fn wait_for(
    engine: &mattecam::engine::Engine,
    what: &str,
    done: impl Fn(&mattecam::engine::EngineStatus) -> bool,
) -> mattecam::engine::EngineStatus {
    let started = std::time::Instant::now();
    loop {
        let status = engine.status();
        if done(&status) {
            return status;
        }
        assert!(started.elapsed() < WAIT_PATIENCE, "timed out waiting for {what}; status: {status:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// How long [`wait_for`] waits before it calls the engine stuck.
pub const WAIT_PATIENCE: std::time::Duration = std::time::Duration::from_secs(180);
