//! Real MODNet and RVM on real frames: shape of the matte, fidelity to the authors' procedure, recurrent
//! state, refusal of wrong or broken model files, and the pipeline end to end.

mod common;

use std::process::Command;

use common::*;
use mattecam::composite::{AlphaUpsampler, Background, CompositeSettings, Upsample};
use mattecam::filter::temporal::TemporalMode;
use mattecam::frame::{Frame, Matte};
use mattecam::infer::{self, InferError, Matter, MatterOptions, ModelKind, ProviderRequest, SessionOptions};
use mattecam::sink::png::{Content, PngSequenceSink};
use mattecam::source::image::load_rgb;

/// Demo frames with torso points of their three people and points of plain background (1080x720; the
/// clip cuts between scenes, so each frame has its own).
type Point = (u32, u32);
const SCENES: [(u64, [Point; 3], [Point; 4]); 3] = [
    (0, [(200, 450), (470, 520), (840, 450)], [(20, 20), (1059, 20), (20, 699), (1059, 699)]),
    (200, [(200, 450), (470, 520), (840, 450)], [(20, 20), (1059, 20), (20, 699), (1059, 699)]),
    (400, [(260, 500), (580, 600), (900, 520)], [(20, 20), (1059, 20), (480, 120), (20, 400)]),
];

fn frame_alpha(matter: &mut dyn Matter, frame: &Frame) -> Vec<f32> {
    let mut matte = Matte::default();
    matter.infer(frame, &mut matte).expect("inference runs");
    assert!(matte.alpha.iter().all(|a| (0.0..=1.0).contains(a)), "alpha outside [0, 1]");
    let mut alpha = Vec::new();
    AlphaUpsampler::new(Upsample::Area).upsample_f32(&matte, frame.guide(), &mut alpha);
    alpha
}

fn assert_person_shaped(alpha: &[f32], model: &str, seq: u64) {
    let (_, people, background) = SCENES.iter().find(|s| s.0 == seq).expect("a frame of SCENES");
    for &(x, y) in people {
        let inside = mean_around(alpha, 1080, x, y, 8);
        assert!(inside > 0.9, "{model} frame {seq}: alpha {inside} at person point ({x}, {y})");
    }
    for &(x, y) in background {
        let corner = mean_around(alpha, 1080, x, y, 8);
        assert!(corner < 0.05, "{model} frame {seq}: alpha {corner} at background point ({x}, {y})");
    }
}

#[test]
fn modnet_alpha_is_person_shaped_on_demo_frames() {
    let mut modnet = infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Modnet), &cpu_options()).unwrap();
    assert_eq!(modnet.provider().name, "CPU");
    for frame in demo_frames(&SCENES.map(|s| s.0)) {
        let alpha = frame_alpha(modnet.as_mut(), &frame);
        assert_person_shaped(&alpha, "MODNet", frame.seq);
    }
}

#[test]
fn rvm_alpha_is_person_shaped_and_keeps_recurrent_state() {
    let mut rvm = infer::open_matter(ModelKind::Rvm, &model_file(ModelKind::Rvm), &cpu_options()).unwrap();
    let frames = demo_frames(&[0, 1, 2, 3, 4, 5]);
    let mut matte = Matte::default();
    let mut first_alphas = Vec::new();
    for frame in &frames {
        rvm.infer(frame, &mut matte).unwrap();
        assert_eq!((matte.width, matte.height), (1080, 720), "RVM answers at frame size");
        let fg = matte.foreground.as_ref().expect("RVM predicts foreground");
        assert_eq!(fg.len(), 1080 * 720 * 3);
        first_alphas.push(matte.alpha.clone());
    }
    let mut rvm_scenes = infer::open_matter(ModelKind::Rvm, &model_file(ModelKind::Rvm), &cpu_options()).unwrap();
    for frame in demo_frames(&SCENES.map(|s| s.0)) {
        // RVM needs a few frames to settle on a new scene, so each is fed a few times.
        for _ in 0..3 {
            rvm_scenes.infer(&frame, &mut matte).unwrap();
        }
        assert_person_shaped(&matte.alpha, "RVM", frame.seq);
    }
    // The same frame after five others differs from the same frame alone: the state is carried.
    rvm.reset();
    rvm.infer(&frames[5], &mut matte).unwrap();
    let alone = matte.alpha.clone();
    let carried_vs_alone: f32 =
        first_alphas[5].iter().zip(&alone).map(|(a, b)| (a - b).abs()).sum::<f32>() / alone.len() as f32;
    assert!(carried_vs_alone > 1e-4, "recurrent state had no effect ({carried_vs_alone})");
    // After reset the model starts afresh: frame 0 gives exactly what it gave first time.
    rvm.reset();
    rvm.infer(&frames[0], &mut matte).unwrap();
    let again: f32 = first_alphas[0].iter().zip(&matte.alpha).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
    assert!(again < 1e-5, "reset did not restore the initial state (max diff {again})");
}

#[test]
fn rvm_downsample_ratio_is_chosen_from_frame_size() {
    assert_eq!(infer::rvm::auto_downsample_ratio(1080, 720), 512.0 / 1080.0);
    assert_eq!(infer::rvm::auto_downsample_ratio(1920, 1080), 512.0 / 1920.0);
    assert_eq!(infer::rvm::auto_downsample_ratio(320, 240), 1.0);
}

/// MODNet alpha at frame size matches an independent Python re-computation of the authors' ONNX inference
/// (OpenCV INTER_AREA both ways) within a mean absolute difference of 0.002.
#[test]
fn modnet_matches_the_authors_onnx_inference() {
    let python = root().join(".cache/venv/bin/python");
    assert!(python.is_file(), "{} is missing: run `make setup-test` (part of `make test`)", python.display());
    let dir = tempfile::tempdir().unwrap();
    let inputs_dir = dir.path().join("in");
    std::fs::create_dir(&inputs_dir).unwrap();
    // The frames are decoded once, here, and handed to Python as PNG, so that both sides see the same pixels.
    let mut frames: Vec<(String, Frame)> =
        demo_frames(&[0, 150, 300]).into_iter().map(|f| (format!("demo_{:03}", f.seq), f)).collect();
    let (w, h, rgb) = load_rgb(&fetched("assets/hires.jpg")).unwrap();
    frames.push((
        "hires".into(),
        Frame { seq: 0, captured_at: std::time::Instant::now(), pts_ms: 0.0, width: w, height: h, rgb },
    ));
    let mut paths = Vec::new();
    for (name, frame) in &frames {
        let path = inputs_dir.join(format!("{name}.png"));
        mattecam::sink::png::write_png(&path, frame.width, frame.height, 3, &frame.rgb).unwrap();
        paths.push(path);
    }
    let reference_dir = dir.path().join("ref");
    let status = Command::new(&python)
        .arg(root().join("scripts/modnet_reference.py"))
        .arg(model_file(ModelKind::Modnet))
        .arg(&reference_dir)
        .args(&paths)
        .status()
        .unwrap();
    assert!(status.success(), "reference script failed");

    let mut modnet = infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Modnet), &cpu_options()).unwrap();
    for (name, frame) in &frames {
        let alpha = frame_alpha(modnet.as_mut(), frame);
        let reference = image::open(reference_dir.join(format!("{name}.png"))).unwrap().into_luma16();
        assert_eq!(reference.dimensions(), (frame.width, frame.height));
        let mad =
            alpha.iter().zip(reference.as_raw()).map(|(a, r)| (a - *r as f32 / 65535.0).abs() as f64).sum::<f64>()
                / alpha.len() as f64;
        println!("{name}: mean absolute difference from the authors' procedure {mad:.7}");
        assert!(mad < 0.002, "{name}: MAD {mad} from the reference");
    }
}

#[test]
fn a_model_of_the_wrong_kind_is_refused() {
    let as_modnet = infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Rvm), &cpu_options());
    assert!(matches!(as_modnet, Err(InferError::WrongModel { .. })), "RVM file accepted as MODNet");
    let as_rvm = infer::open_matter(ModelKind::Rvm, &model_file(ModelKind::Modnet), &cpu_options());
    let message = as_rvm.err().expect("MODNet file accepted as RVM").to_string();
    assert!(message.contains("not a RVM model") && message.contains("`input`"), "{message}");
}

#[test]
fn corrupt_and_missing_model_files_are_refused_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("modnet.onnx");
    let mut bytes = std::fs::read(model_file(ModelKind::Modnet)).unwrap();
    bytes.truncate(bytes.len() / 3);
    std::fs::write(&corrupt, bytes).unwrap();
    let err = infer::open_matter(ModelKind::Modnet, &corrupt, &cpu_options()).err().expect("truncated model accepted");
    assert!(matches!(err, InferError::ModelInvalid { .. }), "{err}");
    assert!(err.to_string().contains("make setup"), "{err}");

    let missing = dir.path().join("absent.onnx");
    let err = infer::open_matter(ModelKind::Rvm, &missing, &cpu_options()).err().expect("missing model accepted");
    assert!(matches!(err, InferError::ModelMissing(_)), "{err}");
}

#[test]
fn cuda_request_without_cuda_support_falls_back_to_cpu_and_says_why() {
    let options = MatterOptions {
        session: SessionOptions { threads: 1, provider: ProviderRequest::Cuda, ..Default::default() },
        ..Default::default()
    };
    let modnet = infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Modnet), &options).unwrap();
    if cfg!(feature = "cuda") {
        // With CUDA compiled in, either CUDA runs or the note says why it could not.
        let provider = modnet.provider();
        assert!(provider.name == "CUDA" || provider.note.is_some(), "{provider}");
    } else {
        assert_eq!(modnet.provider().name, "CPU");
        assert!(modnet.provider().note.as_deref().unwrap_or("").contains("--features cuda"));
    }
}

#[test]
fn file_pipeline_writes_every_frame_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frames");
    let alpha_out = dir.path().join("alpha");
    let source = mattecam::source::open(&"demo".parse().unwrap()).unwrap();
    let summary = file_engine(
        source,
        vec![infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Modnet), &cpu_options()).unwrap()],
        TemporalMode::Ofd,
        CompositeSettings {
            background: Background::Color([0, 255, 0]),
            upsample: Upsample::Area,
            ..Default::default()
        },
        vec![
            Box::new(PngSequenceSink::create(&out, Content::Composite).unwrap()),
            Box::new(PngSequenceSink::create(&alpha_out, Content::Alpha).unwrap()),
        ],
        Some(8),
    )
    .wait()
    .unwrap();
    assert_eq!(summary.stats.frames_read, 8);
    assert_eq!(summary.stats.frames_written, 8);
    assert_eq!(summary.stats.frames_dropped, 0);
    let mut names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
    names.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("{i:06}.png")).collect();
    assert_eq!(names, expected);
    // A composited corner is the background colour; a person point is not.
    let composite = image::open(out.join("000004.png")).unwrap().into_rgb8();
    assert_eq!(composite.get_pixel(10, 10).0, [0, 255, 0]);
    assert_ne!(composite.get_pixel(200, 450).0, [0, 255, 0]);
    let alpha = image::open(alpha_out.join("000004.png")).unwrap().into_luma8();
    assert!(alpha.get_pixel(200, 450).0[0] > 230 && alpha.get_pixel(10, 10).0[0] < 13);
}

/// Frames' sequence numbers and alphas, in the order the pipeline wrote them.
type Collected = std::sync::Arc<std::sync::Mutex<Vec<(u64, Vec<u8>)>>>;

struct CollectingSink {
    written: Collected,
    path: std::path::PathBuf,
}

impl mattecam::sink::Sink for CollectingSink {
    fn write(&mut self, output: mattecam::sink::SinkFrame<'_>) -> Result<(), mattecam::sink::SinkError> {
        self.written.lock().unwrap().push((output.frame.seq, output.alpha.to_vec()));
        Ok(())
    }
    fn finish(&mut self) -> Result<(), mattecam::sink::SinkError> {
        Ok(())
    }
    fn path(&self) -> &std::path::Path {
        &self.path
    }
}

/// The demo's first `frames` frames through MODNet in `sessions` sessions sharing two threads.
fn alphas_with_sessions(sessions: usize, frames: u64) -> Vec<(u64, Vec<u8>)> {
    let options = MatterOptions { ref_size: Some(256), ..cpu_options() };
    let written = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let source = mattecam::source::open(&"demo".parse().unwrap()).unwrap();
    file_engine(
        source,
        infer::open_matters(ModelKind::Modnet, &model_file(ModelKind::Modnet), &options, sessions).unwrap(),
        TemporalMode::Ofd,
        CompositeSettings::default(),
        vec![Box::new(CollectingSink { written: written.clone(), path: "collected".into() })],
        Some(frames),
    )
    .wait()
    .unwrap();
    std::sync::Arc::try_unwrap(written).unwrap().into_inner().unwrap()
}

#[test]
fn parallel_sessions_matte_every_frame_in_order_as_one_session_does() {
    let one = alphas_with_sessions(1, 9);
    let three = alphas_with_sessions(3, 9);
    let seqs = |written: &[(u64, Vec<u8>)]| written.iter().map(|(seq, _)| *seq).collect::<Vec<_>>();
    assert_eq!(seqs(&one), (0..9).collect::<Vec<_>>());
    assert_eq!(seqs(&three), seqs(&one), "frames must leave in order");
    for ((seq, a), (_, b)) in one.iter().zip(&three) {
        // A single-threaded session may sum in another order than a two-threaded one: a level at most.
        let worst = a.iter().zip(b).map(|(x, y)| x.abs_diff(*y)).max().unwrap();
        assert!(worst <= 2, "frame {seq}: alpha differs by {worst} levels between one and three sessions");
    }
}

#[test]
fn recurrent_and_plate_models_refuse_parallel_sessions() {
    for kind in [ModelKind::Rvm, ModelKind::Bgmv2] {
        let err = match infer::open_matters(kind, &model_file(ModelKind::Rvm), &cpu_options(), 2) {
            Ok(_) => panic!("{} must not open in two sessions", kind.title()),
            Err(err) => err.to_string(),
        };
        assert!(err.contains("--sessions 1") && err.contains(kind.title()), "{err}");
    }
    assert_eq!(infer::default_sessions(ModelKind::Rvm, ProviderRequest::Cpu, 2), 1);
    assert_eq!(infer::default_sessions(ModelKind::Modnet, ProviderRequest::Cpu, 1), 1);
    assert_eq!(infer::default_sessions(ModelKind::Modnet, ProviderRequest::Cpu, 2), 2);
}

#[test]
fn failing_stage_leaves_no_output_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frames");
    // A source whose frame size changes mid-stream makes the single-image sink fail on the second frame.
    let source = mattecam::source::open(&"demo".parse().unwrap()).unwrap();
    let engine = file_engine(
        source,
        vec![infer::open_matter(ModelKind::Modnet, &model_file(ModelKind::Modnet), &cpu_options()).unwrap()],
        TemporalMode::Off,
        CompositeSettings {
            background: Background::Transparent { premultiplied: false },
            upsample: Upsample::Area,
            ..Default::default()
        },
        vec![
            Box::new(PngSequenceSink::create(&out, Content::Composite).unwrap()),
            Box::new(mattecam::sink::png::SinglePngSink::create(&dir.path().join("one.png"), false).unwrap()),
        ],
        Some(3),
    );
    let err = engine.wait().expect_err("a second frame into one PNG must fail");
    assert!(err.to_string().contains("single image"), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    // Nothing under a final name; what was written before the failure may be kept as incomplete.
    assert!(left.iter().all(|name| name == "frames.incomplete"), "partial outputs left behind: {left:?}");
}

/// The BGMv2 architecture fixtures (random weights: shapes and paths only, never quality), by refine mode.
fn bgmv2_fixture(mode: &str) -> Option<std::path::PathBuf> {
    let dir = shared_dir("fixtures/bgmv2")?;
    let path = dir.join(format!("bgmv2_mobilenetv2_{mode}_random.onnx"));
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    let sha = mattecam::models::sha256_file(&path).unwrap();
    assert!(readme.contains(&sha), "{} is not the fixture its README lists ({sha})", path.display());
    Some(path)
}

/// A frame of `width` x `height` (a scaled demo still) and its plate (the same picture, a person-sized
/// block painted over the frame): the shapes BGMv2 sees from a camera.
fn frame_and_plate(width: u32, height: u32) -> (Frame, Vec<u8>) {
    let (w, h) = (width as usize, height as usize);
    let plate: Vec<u8> =
        (0..w * h * 3).map(|i| ((i / 3 % w * 255 / w) as u8).wrapping_add((i % 3) as u8 * 40)).collect();
    let mut rgb = plate.clone();
    for y in h / 4..h {
        for x in w / 3..2 * w / 3 {
            rgb[(y * w + x) * 3..][..3].copy_from_slice(&[200, 120, 90]);
        }
    }
    let frame = Frame { seq: 0, captured_at: std::time::Instant::now(), pts_ms: 0.0, width, height, rgb };
    (frame, plate)
}

#[test]
fn bgmv2_runs_the_fixtures_at_720p_and_1080p_with_alpha_and_foreground_of_the_frame_size() {
    let runs: [(&str, u32, u32); 5] = [
        ("thresholding", 1280, 720),
        ("thresholding", 1920, 1080),
        ("sampling", 1280, 720),
        ("base", 1280, 720),
        // Sides that are not multiples of 4 are padded for the network and cropped back.
        ("thresholding", 642, 362),
    ];
    for (mode, width, height) in runs {
        let Some(path) = bgmv2_fixture(mode) else { return };
        let mut matter = infer::open_matter(ModelKind::Bgmv2, &path, &cpu_options()).expect("fixture opens");
        assert_eq!(matter.kind(), ModelKind::Bgmv2);
        assert_eq!(matter.provider().name, "CPU");
        let (frame, plate) = frame_and_plate(width, height);
        let mut matte = Matte::default();
        let err = matter.infer(&frame, &mut matte).expect_err("no plate yet");
        assert!(matches!(err, InferError::NeedsPlate), "{err}");
        assert!(err.to_string().contains("Capture plate"), "{err}");
        matter.set_plate(Some((width, height, &plate)));
        matter.infer(&frame, &mut matte).unwrap_or_else(|e| panic!("{mode} {width}x{height}: {e}"));
        assert_eq!((matte.width, matte.height), (width, height), "{mode}: alpha at frame size");
        assert_eq!(matte.alpha.len(), (width * height) as usize);
        assert!(matte.alpha.iter().all(|a| (0.0..=1.0).contains(a)));
        let foreground = matte.foreground.as_ref().expect("BGMv2 gives the foreground colour");
        assert_eq!(foreground.len(), (width * height * 3) as usize, "{mode}: foreground at frame size");
        // Random weights still give a picture that varies (a constant would mean the output was never read).
        let (lo, hi) = matte.alpha.iter().fold((1.0f32, 0.0f32), |(lo, hi), &a| (lo.min(a), hi.max(a)));
        assert!(hi - lo > 0.01, "{mode}: flat alpha {lo}..{hi}");
        // A plate of another size is refused with the fix.
        matter.set_plate(Some((width / 2, height / 2, &plate[..(width / 2 * height / 2 * 3) as usize])));
        let err = matter.infer(&frame, &mut matte).expect_err("wrong plate size");
        assert!(matches!(err, InferError::PlateSize { .. }) && err.to_string().contains("capture a plate"), "{err}");
    }
}

#[test]
fn bgmv2_refuses_other_models_and_the_others_refuse_bgmv2() {
    let Some(bgmv2) = bgmv2_fixture("thresholding") else { return };
    let err =
        infer::open_matter(ModelKind::Bgmv2, &model_file(ModelKind::Rvm), &cpu_options()).err().expect("RVM as BGMv2");
    let message = err.to_string();
    assert!(matches!(err, InferError::WrongModel { .. }) && message.contains("`src`, `bgr`"), "{message}");
    for kind in [ModelKind::Modnet, ModelKind::Rvm] {
        let err = infer::open_matter(kind, &bgmv2, &cpu_options()).err().expect("BGMv2 accepted as another kind");
        assert!(matches!(err, InferError::WrongModel { .. }), "{err}");
    }
}

#[test]
fn process_runs_bgmv2_with_a_plate_and_asks_for_one_without() {
    let Some(model) = bgmv2_fixture("thresholding") else { return };
    let dir = tempfile::tempdir().unwrap();
    let (frame, plate) = frame_and_plate(640, 360);
    let input = dir.path().join("frame.png");
    let plate_file = dir.path().join("plate.png");
    image::RgbImage::from_raw(640, 360, frame.rgb.clone()).unwrap().save(&input).unwrap();
    image::RgbImage::from_raw(640, 360, plate).unwrap().save(&plate_file).unwrap();
    let home = dir.path().join("home");
    home_like_checkout(&home);
    let run = |extra: &[&str]| {
        let output = dir.path().join("out.png");
        let mut args = vec!["process", input.to_str().unwrap(), "-o", output.to_str().unwrap(), "--model", "bgmv2"];
        args.extend_from_slice(&["--model-file", model.to_str().unwrap(), "--threads", "2", "--overwrite"]);
        args.extend_from_slice(extra);
        // A home of its own: the user's model record is written there, not in the checkout.
        let result = Command::new(mattecam()).args(&args).env("MATTECAM_HOME", &home).output().unwrap();
        (result, output)
    };
    let (result, output) = run(&[]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success() && stderr.contains("--plate"), "{stderr}");
    assert!(!output.exists());
    let (result, output) = run(&["--plate", plate_file.to_str().unwrap()]);
    assert!(result.status.success(), "{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(image::open(&output).unwrap().width(), 640);
    // A plate of another size than the input is refused before any work.
    let small = dir.path().join("small.png");
    image::RgbImage::new(320, 180).save(&small).unwrap();
    let (result, _) = run(&["--plate", small.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(!result.status.success() && stderr.contains("320x180") && stderr.contains("640x360"), "{stderr}");
}
