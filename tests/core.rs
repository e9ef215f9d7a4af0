//! The parts that need no model: temporal filters on hand-made sequences, the compositor on hand-computed
//! pixels, sources and their errors, outputs that are only visible once complete.

mod common;

use common::*;
use mattecam::composite::background::box_blur_planes;
use mattecam::composite::output::{blend, over};
use mattecam::composite::{Background, Composite, CompositeSettings, CpuCompositor, Picture};
use mattecam::filter::temporal::{OFD_TOLERANCE, TemporalFilter, TemporalMode, ema, ofd};
use mattecam::frame::{Frame, Matte};
use mattecam::sink::{Partial, SinkError};
use mattecam::source::image::{ImageFolderSource, ImageSource};
use mattecam::source::synthetic::SyntheticSource;
use mattecam::source::video::VideoSource;
use mattecam::source::{FrameSource, SourceError, SourceSpec};

fn matte(seq: u64, alpha: &[f32]) -> Matte {
    Matte { seq, width: alpha.len() as u32, height: 1, alpha: alpha.to_vec(), ..Default::default() }
}

/// Composites with a frame-size 8-bit alpha (and optional foreground) on the CPU reference.
fn composite_cpu(background: Background, f: &Frame, alpha: &[u8], foreground: Option<&[u8]>, out: &mut Composite) {
    let matte = Matte {
        width: f.width,
        height: f.height,
        alpha: alpha.iter().map(|&a| a as f32 / 255.0).collect(),
        foreground: foreground.map(<[u8]>::to_vec),
        ..Default::default()
    };
    let settings = CompositeSettings { background, ..Default::default() };
    let mut picture = Picture::default();
    CpuCompositor::new(settings).unwrap().composite(f, &matte, &mut picture).unwrap();
    assert_eq!(picture.alpha, alpha, "8-bit alpha survives the round trip through f32");
    *out = picture.composite;
}

fn frame(width: u32, height: u32, rgb: Vec<u8>) -> Frame {
    Frame { seq: 0, captured_at: std::time::Instant::now(), pts_ms: 0.0, width, height, rgb }
}

#[test]
fn ofd_replaces_a_one_frame_flicker_with_the_mean_of_its_neighbours() {
    // Pixel 0 flickers off for one frame; pixel 1 ramps (neighbours disagree); pixel 2 is steady;
    // pixel 3 changes by less than the tolerance.
    let prev = [1.0, 0.0, 0.5, 0.50];
    let cur = [0.0, 0.5, 0.5, 0.55];
    let next = [0.96, 1.0, 0.5, 0.50];
    let mut out = [9.0; 4];
    let replaced = ofd(&prev, &cur, &next, OFD_TOLERANCE, &mut out);
    assert_eq!(replaced, 1);
    assert_eq!(out, [0.98, 0.5, 0.5, 0.55]);
}

#[test]
fn ofd_filter_delays_one_frame_and_keeps_first_and_last_frames() {
    // A pixel that is 1 except for a dropout at t = 2, and a second pixel that steps from 0 to 1 at t = 3
    // (a real change, which must not be smoothed away).
    let sequence = [[1.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 1.0], [1.0, 1.0]];
    let mut filter = TemporalFilter::new(TemporalMode::Ofd);
    assert_eq!(filter.delay_frames(), 1);
    let mut out = Vec::new();
    for (t, alpha) in sequence.iter().enumerate() {
        if let Some(((), m)) = filter.push((), matte(t as u64, alpha)) {
            out.push((m.seq, m.alpha));
        }
        if t == 0 {
            assert!(out.is_empty(), "OFD releases frame t only when t + 1 arrives");
        }
    }
    out.extend(filter.flush().map(|((), m)| (m.seq, m.alpha)));
    let seqs: Vec<u64> = out.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [0, 1, 2, 3, 4], "every frame comes out, in order");
    let alphas: Vec<Vec<f32>> = out.into_iter().map(|(_, a)| a).collect();
    assert_eq!(alphas, vec![vec![1.0, 0.0], vec![1.0, 0.0], vec![1.0, 0.0], vec![1.0, 1.0], vec![1.0, 1.0]]);
    assert_eq!(filter.replaced_pixels, 1);
}

#[test]
fn ofd_filter_restarts_after_a_size_change() {
    let mut filter = TemporalFilter::new(TemporalMode::Ofd);
    assert!(filter.push((), matte(0, &[1.0, 1.0])).is_none());
    let (_, first) = filter.push((), matte(1, &[0.0])).unwrap();
    assert_eq!(first.alpha, [1.0, 1.0]);
    let (_, second) = filter.push((), matte(2, &[1.0])).unwrap();
    assert_eq!(second.alpha, [0.0], "no neighbour of the same size yet, so no change");
    let (_, third) = filter.flush().unwrap();
    assert_eq!(third.alpha, [1.0]);
}

#[test]
fn adaptive_filter_holds_still_pixels_and_follows_moving_ones() {
    // An 8x1 picture whose right half changes brightness between the frames; the model's alpha moves by
    // 0.04 everywhere (small enough to count as jitter where the picture stood still).
    let picture = |right: u8| {
        let mut f = frame(8, 1, Vec::new());
        f.rgb = (0..8).flat_map(|x| if x < 4 { [100u8; 3] } else { [right; 3] }).collect();
        f
    };
    let mut filter = TemporalFilter::new(TemporalMode::Adaptive);
    let (_, first) =
        filter.push(picture(100), Matte { width: 8, height: 1, alpha: vec![0.0; 8], ..Default::default() }).unwrap();
    assert_eq!(first.alpha, [0.0; 8], "the first frame passes unchanged");
    let (_, second) =
        filter.push(picture(200), Matte { width: 8, height: 1, alpha: vec![0.04; 8], ..Default::default() }).unwrap();
    assert_eq!(second.alpha[0], 0.02, "a still pixel moves half the way");
    assert_eq!(second.alpha[7], 0.04, "a moving pixel follows the model");
    // A large change of the model's alpha is followed even where the picture stood still.
    let (_, third) =
        filter.push(picture(200), Matte { width: 8, height: 1, alpha: vec![0.9; 8], ..Default::default() }).unwrap();
    assert_eq!(third.alpha[0], 0.9);
    // Without a picture to look at, the filter leaves alpha alone.
    let mut blind = TemporalFilter::new(TemporalMode::Adaptive);
    blind.push((), matte(0, &[0.0]));
    assert_eq!(blind.push((), matte(1, &[1.0])).unwrap().1.alpha, [1.0]);
}

#[test]
fn guided_upsampling_follows_the_picture_edge_more_closely_than_bilinear() {
    use mattecam::composite::{AlphaUpsampler, Upsample};
    // A 64x16 picture with a colour edge between columns 32 and 33; the model saw it at half size, where
    // the edge falls inside a pixel, so its alpha is an exact area average (0.5 on the edge pixel).
    let (w, h) = (64u32, 16u32);
    let edge = 33;
    let f = frame(w, h, (0..w * h).flat_map(|i| if i % w < edge { [30u8, 40, 50] } else { [220, 200, 190] }).collect());
    let ideal: Vec<f32> = (0..w * h).map(|i| if i % w < edge { 0.0 } else { 1.0 }).collect();
    let mut low = vec![0.0; 32 * 8];
    mattecam::resample::Resampler::new(mattecam::resample::ResampleKind::Area, w, h, 32, 8).gray_f32(&ideal, &mut low);
    let matte = Matte { width: 32, height: 8, alpha: low, ..Default::default() };
    let error = |kind| {
        let mut out = Vec::new();
        AlphaUpsampler::new(kind).upsample_f32(&matte, f.guide(), &mut out);
        out.iter().zip(&ideal).map(|(a, b)| (a - b).abs()).sum::<f32>() / out.len() as f32
    };
    let (guided, bilinear) = (error(Upsample::Guided), error(Upsample::Bilinear));
    assert!(guided < 0.5 * bilinear, "guided {guided}, bilinear {bilinear}");

    // Flat alpha stays flat whatever the picture.
    let flat = Matte { width: 32, height: 8, alpha: vec![0.6; 32 * 8], ..Default::default() };
    let mut out = Vec::new();
    AlphaUpsampler::new(Upsample::Guided).upsample_f32(&flat, f.guide(), &mut out);
    assert!(out.iter().all(|a| (a - 0.6).abs() < 1e-3), "{:?}", &out[..8]);
}

#[test]
fn ema_and_off_modes() {
    let mut out = [0.0; 2];
    ema(&[0.0, 1.0], &[1.0, 1.0], 0.25, &mut out);
    assert_eq!(out, [0.25, 1.0]);
    let mut filter = TemporalFilter::new(TemporalMode::Ema);
    assert_eq!(filter.push((), matte(0, &[0.0])).unwrap().1.alpha, [0.0]);
    assert_eq!(filter.push((), matte(1, &[1.0])).unwrap().1.alpha, [0.5]);
    assert_eq!(filter.push((), matte(2, &[1.0])).unwrap().1.alpha, [0.75]);
    let mut off = TemporalFilter::new(TemporalMode::Off);
    assert_eq!(off.push((), matte(0, &[0.3])).unwrap().1.alpha, [0.3]);
    assert!(off.flush().is_none());
}

#[test]
fn blend_is_exact_rounding() {
    assert_eq!(blend(255, 0, 255), 255);
    assert_eq!(blend(255, 0, 0), 0);
    assert_eq!(blend(200, 100, 128), 150); // (200*128 + 100*127) / 255 = 150.196
    assert_eq!(blend(10, 250, 51), 202); // (10*51 + 250*204) / 255 = 202.0
    // Every input: the integer form (the CPU compositor's colour background) must equal the float `over`
    // the shader and the other backgrounds use, and exact rounding.
    for f in 0..=255u32 {
        for b in 0..=255u32 {
            for a in 0..=255u32 {
                let exact = ((f as f64 * a as f64 + b as f64 * (255 - a) as f64) / 255.0).round() as u8;
                let fast = blend(f as u8, b as u8, a as u8);
                assert_eq!(fast, exact, "f {f} b {b} a {a}");
                assert_eq!(over(f as f32, b as f32, a as f32), exact, "f {f} b {b} a {a}");
            }
        }
    }
}

#[test]
fn colour_and_transparent_composites_on_hand_computed_pixels() {
    let f = frame(2, 1, vec![200, 100, 0, 10, 20, 30]);
    let alpha = [255u8, 51];
    let mut out = Composite::default();
    composite_cpu(Background::Color([0, 255, 100]), &f, &alpha, None, &mut out);
    assert_eq!((out.channels, out.width, out.height), (3, 2, 1));
    // Pixel 1: (10*51 + 0*204)/255 = 2, (20*51 + 255*204)/255 = 208, (30*51 + 100*204)/255 = 86.
    assert_eq!(out.pixels, [200, 100, 0, 2, 208, 86]);

    // A predicted foreground (RVM's) replaces the frame's colours.
    let fg = [0u8, 0, 0, 255, 255, 255];
    composite_cpu(Background::Color([0, 0, 0]), &f, &alpha, Some(&fg), &mut out);
    assert_eq!(out.pixels, [0, 0, 0, 51, 51, 51]);

    composite_cpu(Background::Transparent { premultiplied: false }, &f, &alpha, None, &mut out);
    assert_eq!(out.channels, 4);
    assert_eq!(out.pixels, [200, 100, 0, 255, 10, 20, 30, 51]);
}

#[test]
fn transparent_output_over_a_colour_equals_the_colour_mode() {
    let (w, h) = (64, 48);
    let mut rgb = Vec::new();
    SyntheticSource::render(w, h, 7, &mut rgb);
    let f = frame(w, h, rgb);
    let alpha: Vec<u8> = (0..w * h).map(|i| (i * 37 % 256) as u8).collect();
    let colour = [30, 200, 90];
    let (mut rgba, mut direct) = (Composite::default(), Composite::default());
    composite_cpu(Background::Transparent { premultiplied: false }, &f, &alpha, None, &mut rgba);
    composite_cpu(Background::Color(colour), &f, &alpha, None, &mut direct);
    let over: Vec<u8> =
        rgba.pixels.chunks_exact(4).flat_map(|p| (0..3).map(move |c| blend(p[c], colour[c], p[3]))).collect();
    assert_eq!(over, direct.pixels);
}

#[test]
fn blur_keeps_flat_colour_and_softens_edges() {
    // Planar RGB, 9x1: one bright pixel in each plane.
    let mut planes = vec![0.0f32; 9 * 3];
    for c in 0..3 {
        planes[c * 9 + 4] = 90.0;
    }
    let mut scratch = Vec::new();
    box_blur_planes(&mut planes, &mut scratch, 9, 1, 1);
    // A 3-wide box spreads the bright pixel over three pixels: 90/3 = 30 each.
    assert_eq!(&planes[3..6], &[30.0; 3]);
    assert_eq!(&planes[0..3], &[0.0; 3]);

    // The blurred-background composite of a flat frame is the frame itself, wherever alpha is.
    let f = frame(40, 30, [17u8, 99, 201].repeat(40 * 30));
    let alpha: Vec<u8> = (0..40 * 30).map(|i| (i % 256) as u8).collect();
    let mut out = Composite::default();
    composite_cpu(Background::Blur { radius_px: 30 }, &f, &alpha, None, &mut out);
    assert_eq!(out.pixels, f.rgb);
}

#[test]
fn image_background_covers_the_frame() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bg.png");
    // 4x2: left half red, right half blue. Cover-fit into 2x2 keeps the centre: red left, blue right.
    let bg: Vec<u8> = (0..8).flat_map(|i| if i % 4 < 2 { [255, 0, 0] } else { [0, 0, 255] }).collect();
    mattecam::sink::png::write_png(&path, 4, 2, 3, &bg).unwrap();
    let f = frame(2, 2, vec![0; 12]);
    let mut out = Composite::default();
    composite_cpu(Background::Image(path), &f, &[0; 4], None, &mut out);
    assert_eq!(out.pixels[0..3], [255, 0, 0]);
    assert_eq!(out.pixels[3..6], [0, 0, 255]);

    let settings =
        CompositeSettings { background: Background::Image(dir.path().join("missing.png")), ..Default::default() };
    let err = CpuCompositor::new(settings).err().unwrap();
    assert!(err.to_string().contains("missing.png"), "{err}");
}

#[test]
fn demo_clip_decodes_every_frame_with_sequence_numbers() {
    let mut source = VideoSource::open(&fetched("assets/demovideo.mp4")).unwrap();
    let info = source.info().clone();
    assert_eq!((info.width, info.height, info.frame_count, info.live), (1080, 720, Some(433), false));
    assert!((info.fps - 25.0).abs() < 1e-9);
    let mut count = 0;
    let mut buffer = Vec::new();
    while let Some(frame) = source.next_frame(buffer).unwrap() {
        assert_eq!(frame.seq, count);
        assert_eq!(frame.rgb.len(), 1080 * 720 * 3);
        assert!((frame.pts_ms - count as f64 * 40.0).abs() < 1e-6);
        count += 1;
        buffer = frame.rgb;
    }
    assert_eq!(count, 433);
}

#[test]
fn truncated_and_corrupt_videos_are_reported_not_half_read() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(fetched("assets/demovideo.mp4")).unwrap();
    // Half a file: its index is gone or points past the end.
    let half = dir.path().join("half.mp4");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let result = VideoSource::open(&half).and_then(|mut source| {
        while source.next_frame(Vec::new())?.is_some() {}
        Ok(())
    });
    let err = result.expect_err("a truncated video must be an error");
    assert!(matches!(err, SourceError::Ffmpeg(_) | SourceError::Truncated { .. }), "{err}");
    assert!(err.to_string().contains("half.mp4"), "{err}");

    // Index first, data cut: the header reads fine and decoding runs into the missing data.
    let cut = cut_demo_clip(dir.path(), 4);
    let mut source = VideoSource::open(&cut).expect("the header is intact");
    let mut decoded = 0;
    let err = loop {
        match source.next_frame(Vec::new()) {
            Ok(Some(_)) => decoded += 1,
            Ok(None) => panic!("a cut video read to the end without complaint after {decoded} frames"),
            Err(err) => break err,
        }
    };
    assert!(matches!(err, SourceError::Truncated { decoded: d, .. } if d == decoded), "{err}");
    assert!(decoded > 10 && decoded < 100, "{decoded} frames decoded");
    assert!(err.to_string().contains("cut.mp4") && err.to_string().contains("truncated or corrupt"), "{err}");

    let garbage = dir.path().join("garbage.mp4");
    std::fs::write(&garbage, b"this is not a video at all").unwrap();
    let err = VideoSource::open(&garbage).err().expect("garbage accepted as video");
    assert!(err.to_string().contains("not a readable video"), "{err}");
}

#[test]
fn images_folders_and_their_errors() {
    let dir = tempfile::tempdir().unwrap();
    let not_image = dir.path().join("notes.png");
    std::fs::write(&not_image, "plain text").unwrap();
    let err = ImageSource::open(&not_image).err().expect("text accepted as image");
    assert!(matches!(err, SourceError::BadImage { .. }) && err.to_string().contains("notes.png"), "{err}");

    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let err = ImageFolderSource::open(&frames).err().unwrap();
    assert!(matches!(err, SourceError::EmptyFolder(_)), "{err}");
    for (i, (w, h)) in [(8, 6), (8, 6), (4, 4)].into_iter().enumerate() {
        let mut rgb = Vec::new();
        SyntheticSource::render(w, h, i as u64, &mut rgb);
        mattecam::sink::png::write_png(&frames.join(format!("{i:03}.png")), w, h, 3, &rgb).unwrap();
    }
    let mut source = ImageFolderSource::open(&frames).unwrap();
    assert_eq!(source.info().frame_count, Some(3));
    assert_eq!(source.next_frame(Vec::new()).unwrap().unwrap().seq, 0);
    assert_eq!(source.next_frame(Vec::new()).unwrap().unwrap().seq, 1);
    let err = source.next_frame(Vec::new()).expect_err("size change accepted");
    assert!(matches!(err, SourceError::SizeChanged { .. }), "{err}");

    let mut single = ImageSource::open(&fetched("assets/hires.jpg")).unwrap();
    let frame = single.next_frame(Vec::new()).unwrap().unwrap();
    assert_eq!((frame.width, frame.height), (3240, 2160));
    assert!(single.next_frame(Vec::new()).unwrap().is_none());
}

#[test]
fn source_specs_parse_and_missing_inputs_name_the_file() {
    assert_eq!("demo".parse::<SourceSpec>().unwrap(), SourceSpec::Demo);
    assert_eq!(
        "synthetic:320x240@15".parse::<SourceSpec>().unwrap(),
        SourceSpec::Synthetic { width: 320, height: 240, fps: 15.0 }
    );
    assert_eq!("camera:2".parse::<SourceSpec>().unwrap(), SourceSpec::Camera { index: 2 });
    assert!("synthetic:big".parse::<SourceSpec>().is_err());
    let err = mattecam::source::open(&"no/such/clip.mp4".parse().unwrap()).err().unwrap();
    assert!(matches!(err, SourceError::NotFound(_)) && err.to_string().contains("no/such/clip.mp4"), "{err}");
}

/// A camera that is not there is a clear error on any machine: with no camera at all it offers another
/// source; past the last camera found it says how many there are.
#[test]
fn a_missing_camera_is_a_clear_error() {
    let cameras = mattecam::source::camera::list_cameras();
    let index = cameras.iter().map(|c| c.index).max().map_or(0, |i| i + 1);
    let err = mattecam::source::open(&SourceSpec::Camera { index }).err().expect("no such camera, yet it opened");
    match &err {
        SourceError::NoCamera => {
            assert!(cameras.is_empty(), "cameras were listed, yet opening says there are none");
            assert!(err.to_string().contains("demo"), "the message offers another source: {err}");
        }
        SourceError::NoSuchCamera { index: asked, count } => {
            assert_eq!((*asked, *count), (index, cameras.len()));
            assert!(err.to_string().contains("mattecam sources"), "{err}");
        }
        other => panic!("camera {index} that does not exist: {other}"),
    }
}

/// The synthetic scene draws what its definition says (pixels computed by hand), moves from frame to
/// frame, and ends at its limit.
#[test]
fn synthetic_source_draws_its_scene() {
    let (w, h) = (64u32, 48u32);
    let mut source = SyntheticSource::new(w, h, 30.0, Some(4));
    let frames: Vec<Frame> = std::iter::from_fn(|| source.next_frame(Vec::new()).unwrap()).collect();
    assert_eq!(frames.iter().map(|f| f.seq).collect::<Vec<_>>(), [0, 1, 2, 3]);
    let pixel = |f: &Frame, x: u32, y: u32| -> [u8; 3] {
        let i = ((y * w + x) * 3) as usize;
        [f.rgb[i], f.rgb[i + 1], f.rgb[i + 2]]
    };
    let f3 = &frames[3];
    // Frame 3: the disc (radius h/4 = 12) is centred at (16 + 3*7, 24 + 15 % 13 - 6) = (37, 20).
    assert_eq!(pixel(f3, 37, 20), [240, 200, 160]);
    assert_eq!(pixel(f3, 37 + 12, 20), [240, 200, 160]);
    // The bar (4 wide) starts at x = 64 - 33 = 31; at the bottom row the disc is far.
    assert_eq!(pixel(f3, 32, 47), [40, 40, 200]);
    // The backdrop is the gradient (x * 200 / w + 20, y * 200 / h + 20, 90).
    assert_eq!(pixel(f3, 0, 0), [20, 20, 90]);
    assert_eq!(pixel(f3, 63, 47), [216, 215, 90]);
    // Frame 0's disc is elsewhere: at (16, 18).
    assert_eq!(pixel(&frames[0], 16, 18), [240, 200, 160]);
    assert_ne!(pixel(&frames[0], 37, 20), [240, 200, 160]);
    assert!(source.next_frame(Vec::new()).unwrap().is_none(), "the limit ends the stream");
}

#[test]
fn partial_outputs_appear_only_when_committed() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("clip.mp4");
    {
        let partial = Partial::file(&target, false).unwrap();
        assert!(partial.working().exists() && !target.exists());
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "a dropped partial file is removed");
    let mut partial = Partial::file(&target, false).unwrap();
    std::fs::write(partial.working(), b"done").unwrap();
    partial.commit().unwrap();
    assert_eq!(std::fs::read(&target).unwrap(), b"done");

    let folder = dir.path().join("frames");
    std::fs::create_dir(&folder).unwrap();
    std::fs::write(folder.join("old.png"), b"x").unwrap();
    assert!(matches!(Partial::dir(&folder), Err(SinkError::FolderNotEmpty(_))));
    let err = Partial::file(&dir.path().join("no-such-dir/clip.mp4"), false).err().unwrap();
    assert!(matches!(err, SinkError::NotWritable { .. }), "{err}");
}

// ---- The clean background plate ----

use mattecam::plate::assist::AssistScratch;
use mattecam::plate::{AlphaGrid, AssistSettings, GainOffset, Plate, PlateAverager, Staleness, assist_alpha};

/// A real room (the shared bgmv1 plate), cropped to 640x360 from its middle so that tests stay fast.
fn room() -> Option<Plate> {
    let path = shared_dir("eval/backgrounds")?.join("bgmv1_plate.png");
    let full = Plate::load(&path).expect("shared plate loads");
    let (w, h) = (640u32, 360u32);
    let (x0, y0) = ((full.width - w) / 2, (full.height - h) / 2);
    let rgb = (0..h)
        .flat_map(|y| {
            let start = (((y0 + y) * full.width + x0) * 3) as usize;
            full.rgb[start..start + (w * 3) as usize].to_vec()
        })
        .collect();
    Some(Plate { width: w, height: h, rgb })
}

/// Gaussian-ish sensor noise of about `sigma` levels (sum of uniforms), deterministic.
fn noisy(rgb: &[u8], sigma: f32, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut uniform = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    rgb.iter()
        .map(|&v| {
            // Sum of 12 uniforms minus 6: mean 0, variance 1.
            let n: f32 = (0..12).map(|_| uniform()).sum::<f32>() - 6.0;
            (v as f32 + n * sigma).round().clamp(0.0, 255.0) as u8
        })
        .collect()
}

fn shifted(plate: &Plate, dx: u32) -> Vec<u8> {
    let w = plate.width as usize;
    let mut out = plate.rgb.clone();
    for y in 0..plate.height as usize {
        for x in 0..w {
            let from = x.saturating_sub(dx as usize);
            out[(y * w + x) * 3..(y * w + x) * 3 + 3]
                .copy_from_slice(&plate.rgb[(y * w + from) * 3..(y * w + from) * 3 + 3]);
        }
    }
    out
}

/// A person-shaped block: alpha 1 inside, 0 outside, at frame size.
fn person_alpha(w: u32, h: u32) -> Vec<f32> {
    (0..w * h).map(|i| if (w / 3..2 * w / 3).contains(&(i % w)) && i / w > h / 4 { 1.0 } else { 0.0 }).collect()
}

#[test]
fn plate_averaging_rejects_a_person_crossing_and_the_noise() {
    let Some(room) = room() else { return };
    let (w, h) = (room.width, room.height);
    let mut averager = PlateAverager::new(30);
    for seq in 0..30u64 {
        let mut rgb = noisy(&room.rgb, 3.0, seq);
        // Someone walks across: a 100 px wide red figure moving 20 px a frame.
        let x0 = (seq as u32 * 20) % w;
        for y in 60..h {
            for x in x0..(x0 + 100).min(w) {
                let i = ((y * w + x) * 3) as usize;
                rgb[i..i + 3].copy_from_slice(&[200, 30, 40]);
            }
        }
        averager.push(&frame(w, h, rgb));
        assert_eq!(averager.is_complete(), seq == 29);
    }
    let plate = averager.finish().expect("a plate");
    let diffs: Vec<u8> = plate.rgb.iter().zip(&room.rgb).map(|(a, b)| a.abs_diff(*b)).collect();
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len() as f64;
    let max = *diffs.iter().max().unwrap();
    // Noise of sigma 3 averages out (a single frame differs by 2.4 levels on average); the figure, on
    // each pixel for at most 5 of the 30 frames, is gone entirely.
    assert!(mean < 1.2 && max <= 12, "plate differs from the room: mean {mean:.2}, max {max}");
    // A mean (not a median) would keep a red trace of the figure.
    let red_cast = plate
        .rgb
        .chunks_exact(3)
        .zip(room.rgb.chunks_exact(3))
        .filter(|(p, r)| i32::from(p[0]) > i32::from(r[0]) + 20)
        .count();
    assert_eq!(red_cast, 0);
}

#[test]
fn gain_compensation_recovers_a_known_gain_and_offset() {
    let Some(room) = room() else { return };
    let (w, h) = (room.width, room.height);
    let (gain, offset) = ([1.08f32, 0.95, 1.02], [-6.0f32, 4.0, 2.0]);
    let alpha = person_alpha(w, h);
    // The camera's exposure changed, and a person (not the plate) stands in the middle.
    let mut live: Vec<u8> = room
        .rgb
        .iter()
        .enumerate()
        .map(|(i, &v)| (gain[i % 3] * v as f32 + offset[i % 3]).round().clamp(0.0, 255.0) as u8)
        .collect();
    for (i, a) in alpha.iter().enumerate() {
        if *a > 0.5 {
            live[i * 3..i * 3 + 3].copy_from_slice(&[30, 200, 90]);
        }
    }
    let live = noisy(&live, 2.0, 7);
    let grid = AlphaGrid { alpha: &alpha, width: w, height: h };
    let fit = GainOffset::fit(&live, &room, grid).expect("enough background");
    for c in 0..3 {
        assert!((fit.gain[c] - gain[c]).abs() < 0.02, "gain {c}: {} vs {}", fit.gain[c], gain[c]);
        assert!((fit.offset[c] - offset[c]).abs() < 2.5, "offset {c}: {} vs {}", fit.offset[c], offset[c]);
    }
    // A coarse alpha grid (a model's own resolution) finds the same.
    let small: Vec<f32> = (0..160 * 90).map(|i| alpha[((i / 160) * 4 * w + (i % 160) * 4) as usize]).collect();
    let coarse = GainOffset::fit(&live, &room, AlphaGrid { alpha: &small, width: 160, height: 90 }).unwrap();
    assert!((coarse.gain[0] - gain[0]).abs() < 0.02, "{coarse:?}");
    // After compensation the background matches: not stale.
    let staleness = Staleness::measure(&live, &room, &fit, grid);
    assert!(!staleness.is_stale() && staleness.mean_difference < 4.0, "{staleness:?}");
    // Uncompensated, the same exposure change would read as a changed background.
    assert!(Staleness::measure(&live, &room, &GainOffset::default(), grid).is_stale());
    let mut compensated = Vec::new();
    fit.apply(&room, &mut compensated);
    let i = 3 * (10 * w + 10) as usize;
    assert!(compensated[i].abs_diff(live[i]) <= 8, "{} vs {}", compensated[i], live[i]);
}

#[test]
fn staleness_fires_on_a_shifted_plate_and_not_on_noise() {
    let Some(room) = room() else { return };
    let (w, h) = (room.width, room.height);
    let alpha = person_alpha(w, h);
    let grid = AlphaGrid { alpha: &alpha, width: w, height: h };
    let check = |live: &[u8]| {
        let fit = GainOffset::fit(live, &room, grid).unwrap_or_default();
        Staleness::measure(live, &room, &fit, grid)
    };
    for seed in 0..3 {
        let quiet = check(&noisy(&room.rgb, 2.0, seed));
        assert!(!quiet.is_stale(), "noise read as a stale plate: {quiet:?}");
    }
    // The camera moved by 2 px (and then by 1 px).
    let moved = check(&noisy(&shifted(&room, 2), 2.0, 9));
    assert!(moved.is_stale(), "a 2 px shift went unnoticed: {moved:?}");
    assert!(moved.changed_fraction > 2.0 * Staleness::STALE_FRACTION, "{moved:?}");
}

#[test]
fn plate_assistance_clears_what_matches_the_plate_keeps_the_person_and_restores_soft_edges() {
    let Some(room) = room() else { return };
    let (w, h) = (room.width, room.height);
    let person = person_alpha(w, h);
    let colour = [30.0f32, 200.0, 90.0];
    // Hair: a 6 px band left of the person, 40% person and 60% room.
    let (hair_alpha, hair_px) = (0.4f32, 6u32);
    let in_hair = |x: u32, y: u32| y > h / 4 && (w / 3 - hair_px..w / 3).contains(&x);
    let mut live = room.rgb.clone();
    for y in 0..h {
        for x in 0..w {
            let i = (y * w + x) as usize;
            let a = if person[i] > 0.5 {
                1.0
            } else if in_hair(x, y) {
                hair_alpha
            } else {
                continue;
            };
            for c in 0..3 {
                live[i * 3 + c] = (a * colour[c] + (1.0 - a) * f32::from(room.rgb[i * 3 + c])).round() as u8;
            }
        }
    }
    let live = noisy(&live, 2.0, 3);
    // A plate-free model's mistakes: it kept a block of the room (a chair) at alpha 0.9, left a haze of 0.2
    // in a corner, called the hair nearly opaque (0.9), and left a soft halo 4 px wide around all that
    // (0.6, as upsampled to frame size). The rest it calls background.
    let inside = |x: u32, y: u32| person[(y * w + x) as usize] > 0.5 || in_hair(x, y);
    let near_person = |x: u32, y: u32| {
        (x.saturating_sub(4)..(x + 5).min(w)).any(|nx| (y.saturating_sub(4)..(y + 5).min(h)).any(|ny| inside(nx, ny)))
    };
    let model: Vec<f32> = (0..w * h)
        .map(|i| {
            let (x, y) = (i % w, i / w);
            if person[i as usize] > 0.5 {
                1.0
            } else if in_hair(x, y) {
                0.9
            } else if near_person(x, y) {
                0.6
            } else if x < w / 5 && y > h / 2 {
                0.9
            } else if x > 3 * w / 4 && y < h / 4 {
                0.2
            } else {
                0.0
            }
        })
        .collect();
    let mut alpha = model.clone();
    let mut scratch = AssistScratch::default();
    assist_alpha(&mut alpha, &live, &room.rgb, w, h, &AssistSettings::default(), &mut scratch);
    let at = |x: u32, y: u32| alpha[(y * w + x) as usize];
    assert!(at(40, 300) < 0.02, "the chair is the plate: {}", at(40, 300));
    assert!(at(600, 20) < 0.02, "the haze is gone: {}", at(600, 20));
    // The halo 2 px outside the hair shows the room: cleared.
    assert!(at(w / 3 - hair_px - 2, h / 2) < 0.05, "the halo: {}", at(w / 3 - hair_px - 2, h / 2));
    // Inside the person (away from the edge) alpha stays.
    assert!(at(w / 2, h / 2) > 0.99, "the person: {}", at(w / 2, h / 2));
    let person_pixels = person.iter().filter(|&&a| a > 0.5).count() as f32;
    let kept = alpha.iter().zip(&person).filter(|&(&a, &p)| p > 0.5 && a > 0.99).count() as f32;
    assert!(kept / person_pixels > 0.95, "kept {kept} of {person_pixels} person pixels");
    // The hair: the plate says how much of it is room (the model said 0.9).
    let hair: Vec<f32> =
        (h / 3..h - 4).flat_map(|y| (w / 3 - hair_px..w / 3).map(move |x| (x, y))).map(|(x, y)| at(x, y)).collect();
    let hair_mean = hair.iter().sum::<f32>() / hair.len() as f32;
    // The person's colour is estimated from nearby opaque pixels, so the band's own blend pulls it toward
    // the room: the error must at least be cut to under half of the model's (0.5).
    assert!((hair_mean - hair_alpha).abs() < 0.2, "hair alpha {hair_mean}, truth {hair_alpha}, model 0.9");

    // A plate from another place (the camera moved a lot) changes nothing that the model said was there.
    let elsewhere = shifted(&room, 150);
    let mut untouched = model.clone();
    assist_alpha(&mut untouched, &live, &elsewhere, w, h, &AssistSettings::default(), &mut scratch);
    let changed = untouched.iter().zip(&model).filter(|&(a, m)| (a - m).abs() > 0.02).count();
    assert!(changed < (w * h / 20) as usize, "{changed} pixels changed on a plate of another view");
    let kept = untouched.iter().zip(&person).filter(|&(&a, &p)| p > 0.5 && a > 0.99).count() as f32;
    assert!(kept / person_pixels > 0.99, "kept {kept} of {person_pixels} person pixels");
}

#[test]
fn a_perturbed_plate_is_shifted_scaled_and_noisy_as_asked() {
    use mattecam::eval::Perturbation;
    let Some(room) = room() else { return };
    let (w, h) = (room.width as usize, room.height as usize);
    let exact = Perturbation::default().apply(&room);
    assert_eq!(exact, room, "the default perturbation is the exact plate");
    let drifted = Perturbation::drifted(5).apply(&room);
    // Against the room shifted by 2 px and scaled by 1.03: noise of sigma 2 and nothing else.
    let (mut sum, mut sum_sq, mut n) = (0.0f64, 0.0f64, 0.0f64);
    for y in 0..h {
        for x in 2..w {
            for c in 0..3 {
                let expected = f64::from(room.rgb[(y * w + x - 2) * 3 + c]) * 1.03;
                if expected > 250.0 {
                    continue;
                }
                let d = f64::from(drifted.rgb[(y * w + x) * 3 + c]) - expected;
                (sum, sum_sq, n) = (sum + d, sum_sq + d * d, n + 1.0);
            }
        }
    }
    let (mean, sigma) = (sum / n, (sum_sq / n - (sum / n).powi(2)).sqrt());
    assert!(mean.abs() < 0.1 && (sigma - 2.0).abs() < 0.15, "mean {mean:.3}, sigma {sigma:.3}");
}
