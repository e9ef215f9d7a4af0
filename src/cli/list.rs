//! `mattecam models` and `mattecam sources`: what is installed and what can be read (cameras, clips and
//! microphones).

use std::process::ExitCode;

use mattecam::infer;
use mattecam::models::{self, FileStatus};
use mattecam::paths::display;
use mattecam::source::camera;

#[derive(clap::Args, Debug)]
pub struct ModelsArgs {
    /// A model file of yours that you replaced on purpose: record its new sha256, so that it loads again.
    #[arg(long, value_name = "PATH")]
    accept: Option<std::path::PathBuf>,
    #[command(subcommand)]
    action: Option<ModelsAction>,
}

#[derive(clap::Subcommand, Debug)]
enum ModelsAction {
    /// Make an INT8 version of a model file of yours (BGMv2's exports) with the recipe setup uses for MODNet
    /// and RVM; written beside it as NAME_int8.onnx, which `--precision int8` (and `auto` on a CPU) then
    /// loads. Check its quality with `mattecam eval` at both precisions.
    Quantize {
        file: std::path::PathBuf,
        #[arg(long, value_enum, default_value_t = infer::ModelKind::Bgmv2)]
        model: infer::ModelKind,
        /// The clip the quantiser is calibrated on (default: the demo clip; for BGMv2, its first frame is
        /// the plate, so use a clip from a still camera).
        #[arg(long)]
        video: Option<std::path::PathBuf>,
    },
}

pub fn models(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    if let Some(ModelsAction::Quantize { file, model, video }) = &args.action {
        let video = video.clone().unwrap_or_else(mattecam::paths::demo_clip);
        println!("quantising {} (calibrated on {}; a minute or more)", display(file), display(&video));
        let int8 = mattecam::quantize::quantize(*model, file, &video)?;
        println!("wrote {}; `--precision int8` loads it", display(&int8));
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(path) = &args.accept {
        match models::accept_user_model(path)? {
            models::RecordOutcome::Recorded(sha) => println!("{}: sha256 {sha} recorded", display(path)),
            models::RecordOutcome::Unchanged => println!("{}: already recorded as it is", display(path)),
            models::RecordOutcome::Changed { was, now } => {
                println!("{}: accepted sha256 {now} (was {was})", display(path))
            }
        }
        return Ok(ExitCode::SUCCESS);
    }
    let entries = models::load_manifest()?;
    println!("{:<8} {:<10} {:<12} {:<30} source", "model", "licence", "status", "file");
    for entry in &entries {
        let status = match models::file_status(entry) {
            FileStatus::Verified => "verified".to_string(),
            FileStatus::Missing => "missing".to_string(),
            FileStatus::Mismatch { .. } => "WRONG FILE".to_string(),
        };
        let file = display(&mattecam::paths::models_dir().join(&entry.file));
        println!(
            "{:<8} {:<10} {:<12} {:<30} {} ({})",
            entry.name, entry.licence, status, file, entry.wheel, entry.upstream
        );
        if let (Some(int8), Some(status)) = (&entry.int8, models::int8_status(entry)) {
            let status = match status {
                FileStatus::Verified => "verified",
                FileStatus::Missing => "missing",
                FileStatus::Mismatch { .. } => "WRONG FILE",
            };
            let file = display(&mattecam::paths::models_dir().join(&int8.file));
            println!("{:<8} {:<10} {:<12} {:<30} INT8, made by setup from {}", "", "", status, file, entry.file);
        }
    }
    match infer::runtime_library() {
        Ok(path) => println!("ONNX Runtime: {}", display(&path)),
        Err(err) => println!("ONNX Runtime: {err}"),
    }
    let dir = mattecam::paths::models_dir();
    let recorded = models::recorded_models()?;
    println!();
    println!("BGMv2 needs a model file you download yourself (its weights are on no package registry):");
    println!("  get one of the authors' ONNX exports from github.com/PeterL1n/BackgroundMattingV2 (README,");
    println!("  \"Download\": Google Drive), then put it into {} or pass --model-file PATH.", display(&dir));
    println!(
        "  Its sha256 is recorded on first use ({}) and a later change is reported.",
        display(&models::records_path())
    );
    println!("  {:<22} {:<10} {:<7} {:<26} {:<30} status", "export", "backbone", "scale", "refine", "suits");
    for entry in models::load_user_models()? {
        let path = dir.join(&entry.file);
        let status = match recorded.iter().find(|r| std::fs::canonicalize(&path).ok().as_ref() == Some(&r.path)) {
            Some(r) => format!("present, sha256 {} recorded {}", &r.sha256[..12], r.first_used),
            None if path.is_file() => "present, not used yet".to_string(),
            None => "not present".to_string(),
        };
        println!(
            "  {:<22} {:<10} {:<7} {:<26} {:<30} {status}",
            entry.file, entry.backbone, entry.backbone_scale, entry.refine, entry.suits
        );
    }
    for r in recorded.iter().filter(|r| !r.path.starts_with(&dir)) {
        println!("  also used: {} (sha256 {}, first used {})", display(&r.path), &r.sha256[..12], r.first_used);
    }
    let all_ok = entries.iter().all(|e| {
        models::file_status(e) == FileStatus::Verified
            && models::int8_status(e).is_none_or(|s| s == FileStatus::Verified)
    });
    if !all_ok {
        println!("run `make setup` to fetch and verify the missing or wrong files");
    }
    Ok(ExitCode::SUCCESS)
}

pub fn sources() -> anyhow::Result<ExitCode> {
    let cameras = camera::list_cameras();
    if cameras.is_empty() {
        println!("cameras: none found");
    }
    for cam in cameras {
        let modes: Vec<String> = cam.modes.iter().take(8).map(|(w, h, fps)| format!("{w}x{h}@{fps}")).collect();
        println!("camera:{}  {}  {}", cam.index, cam.name, modes.join(" "));
    }
    let clip = mattecam::paths::demo_clip();
    let state = if clip.is_file() { "present" } else { "missing: run `make setup`" };
    println!("demo      {} ({state})", display(&clip));
    println!("synthetic moving shapes, any size: synthetic:WxH@FPS");
    // Microphones, as `record --audio NAME` takes them.
    let inputs = mattecam::audio::input_devices();
    if inputs.is_empty() {
        println!("audio inputs: none found (record writes no sound)");
    }
    for name in inputs {
        println!("audio     {name}");
    }
    Ok(ExitCode::SUCCESS)
}
