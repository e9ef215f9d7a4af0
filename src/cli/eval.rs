//! `mattecam eval`: matte quality on exact-ground-truth data, as the matting papers measure it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use mattecam::composite::CompositorKind;
use mattecam::compositor::AlphaStage;
use mattecam::eval::{self, Perturbation, Region, dataset};
use mattecam::infer::{self, ModelKind};
use mattecam::models;
use mattecam::paths::display;
use mattecam::plate::{Plate, PlatedMatter};

use super::{ModelArgs, parse_size};

#[derive(Args)]
pub struct EvalArgs {
    /// A folder in the RVM/BGMv2 evaluation layout: `com/`, `pha/`, optional `bgr/`.
    #[arg(long, conflicts_with_all = ["cutouts", "video"])]
    dataset: Option<PathBuf>,
    /// Treat the dataset folder as stills even if its files are named by frame index.
    #[arg(long, requires = "dataset")]
    stills: bool,
    /// Straight-alpha RGBA cutouts (files or folders) to composite over `--backgrounds`.
    #[arg(long, num_args = 1.., requires = "backgrounds", conflicts_with = "video")]
    cutouts: Vec<PathBuf>,
    /// Background images (files or folders).
    #[arg(long, num_args = 1..)]
    backgrounds: Vec<PathBuf>,
    /// Generate clips of this many frames (one per cutout, the person moving) instead of stills.
    #[arg(long)]
    clip_frames: Option<usize>,
    /// Size of generated samples (default 1920x1080 for stills, 1280x720 for clips).
    #[arg(long)]
    size: Option<String>,
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Camera-like noise on generated composites: `SIGMA:JPEG_QUALITY`, e.g. `3:80`.
    #[arg(long)]
    noise: Option<String>,
    /// A real video: no-reference flicker only.
    #[arg(long)]
    video: Option<PathBuf>,
    /// With --video: frames to read.
    #[arg(long)]
    max_frames: Option<u64>,
    #[arg(long, value_enum, default_value_t = Region::Whole)]
    region: Region,
    /// Where alpha is upsampled: the GPU runs the app's compositor shaders (`auto`: a hardware GPU when
    /// found; `gpu` also accepts a software one).
    #[arg(long, value_enum, default_value_t = CompositorKind::Auto)]
    compositor: CompositorKind,
    /// Write per-item and mean figures as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write predicted alphas (`pha/`) and prediction | truth | error images (`compare/`) here.
    #[arg(long)]
    save_dir: Option<PathBuf>,
    /// Replace the JSON file and the images in --save-dir if they exist (without this, an existing JSON
    /// file or a --save-dir that holds files is refused before any work).
    #[arg(long)]
    overwrite: bool,
    /// Give the model each sample's own clean background (generated samples, or a dataset's `bgr/`) as
    /// its plate: `exact`, or `perturbed` as a real capture drifts (2 px shift, gain 1.03, noise sigma 2).
    #[arg(long, value_enum, conflicts_with_all = ["plate", "video"])]
    sample_plate: Option<SamplePlate>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SamplePlate {
    Exact,
    Perturbed,
}

pub fn run(args: EvalArgs) -> anyhow::Result<ExitCode> {
    if !args.overwrite {
        if let Some(path) = args.json.as_ref().filter(|path| path.exists()) {
            anyhow::bail!("{}", mattecam::sink::SinkError::Exists(path.clone()));
        }
        let holds_files = |dir: &PathBuf| std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some());
        if let Some(dir) = args.save_dir.as_ref().filter(|dir| holds_files(dir)) {
            anyhow::bail!(
                "--save-dir {} already holds files; choose a new or empty folder, or pass --overwrite",
                display(dir)
            );
        }
    }
    let region = args.region;
    let save = eval::SaveTo(args.save_dir.as_deref());
    let resolved = args.model.resolve()?;
    let model_file = resolved.path;
    if let Some(notice) = models::check_model_file(&model_file)? {
        eprintln!("{notice}");
    }
    let model = infer::open_matter(args.model.model, &model_file, &args.model.matter_options())?;
    let plate = args.model.plate.as_deref().map(Plate::load).transpose()?;
    if args.model.model == ModelKind::Bgmv2 && plate.is_none() && args.sample_plate.is_none() {
        anyhow::bail!("{} (or --sample-plate exact|perturbed)", infer::InferError::NeedsPlate);
    }
    let provider = model.provider().to_string();
    let matter = Box::new(PlatedMatter::new(model, plate, args.model.plate_options()));
    let (alpha, notice) = AlphaStage::open(args.model.upsample, args.compositor)?;
    if let Some(notice) = notice {
        eprintln!("{notice}");
    }
    let upsampled_on = alpha.describe();
    let sample_plate = args.sample_plate.map(|kind| match kind {
        SamplePlate::Exact => Perturbation::default(),
        SamplePlate::Perturbed => Perturbation::drifted(args.seed),
    });
    let mut predictor = eval::Predictor { matter, temporal: args.model.temporal, alpha, sample_plate };
    let bar = indicatif::ProgressBar::new_spinner();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {pos} items {msg}")
            .expect("valid template"),
    );
    let progress = |s: &eval::ItemScores| {
        bar.inc(1);
        bar.set_message(s.name.clone());
    };
    let items = if let Some(dir) = &args.dataset {
        let set = dataset::read_folder(dir, args.stills)?;
        eval::eval_set(&mut predictor, &set, region, &save, progress)?
    } else if !args.cutouts.is_empty() {
        let default_size = if args.clip_frames.is_some() { (1280, 720) } else { (1920, 1080) };
        let (width, height) = args.size.as_deref().map(parse_size).transpose()?.unwrap_or(default_size);
        let noise = args
            .noise
            .as_deref()
            .map(|text| -> anyhow::Result<(f64, u8)> {
                let (sigma, quality) = text.split_once(':').context("--noise is SIGMA:JPEG_QUALITY, e.g. 3:80")?;
                Ok((sigma.parse()?, quality.parse()?))
            })
            .transpose()?;
        let spec = dataset::SynthSpec {
            cutouts: dataset::expand_paths(&args.cutouts)?,
            backgrounds: dataset::expand_paths(&args.backgrounds)?,
            width,
            height,
            seed: args.seed,
            noise,
        };
        anyhow::ensure!(
            !spec.cutouts.is_empty() && !spec.backgrounds.is_empty(),
            "no cutout or background images found"
        );
        match args.clip_frames {
            Some(frames) => {
                let mut all = Vec::new();
                for (name, clip) in dataset::generated_clips(&spec, frames) {
                    all.extend(eval::eval_clip(&mut predictor, &name, &clip, region, &save, progress)?);
                }
                all
            }
            None => eval::eval_stills(&mut predictor, &dataset::generated_stills(&spec), region, &save, progress)?,
        }
    } else if let Some(video) = &args.video {
        let mut source = mattecam::source::video::VideoSource::open(video)?;
        eval::eval_flicker(&mut predictor, &mut source, args.max_frames, progress)?
    } else {
        anyhow::bail!("say what to evaluate: --dataset DIR, --cutouts ... --backgrounds ..., or --video FILE");
    };
    bar.finish_and_clear();
    let report = eval::Report {
        mean: eval::report::MeanScores::of(&items),
        resolution: eval::report::resolution_of(&items),
        items,
        region,
        model: match args.sample_plate {
            Some(SamplePlate::Exact) => {
                format!("{}, each sample's exact plate", args.model.describe(resolved.precision))
            }
            Some(SamplePlate::Perturbed) => {
                format!("{}, each sample's plate perturbed", args.model.describe(resolved.precision))
            }
            None => args.model.describe(resolved.precision),
        },
        settings: format!(
            "temporal {}, upsample {} on {}",
            format!("{:?}", args.model.temporal).to_lowercase(),
            format!("{:?}", args.model.upsample).to_lowercase(),
            upsampled_on
        ),
        provider,
    };
    print!("{}", report.table());
    if let Some(path) = &args.json {
        report.write_json(path, args.overwrite)?;
        println!("wrote {}", display(path));
    }
    if let Some(dir) = &args.save_dir {
        println!("predicted alphas in {}, comparisons in {}", display(&dir.join("pha")), display(&dir.join("compare")));
    }
    Ok(ExitCode::SUCCESS)
}
