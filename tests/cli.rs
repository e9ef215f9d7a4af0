//! `mattecam` as a user runs it: real outputs checked with ffprobe, and every kind of bad input answered
//! with one clear sentence, a non-zero exit and no output left behind.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut command = Command::new(mattecam());
    command.args(args).current_dir(root());
    for (key, value) in envs {
        command.env(key, value);
    }
    command.output().expect("mattecam runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a command that must fail, and checks its message and that `dir` is left empty.
fn assert_refused(args: &[&str], envs: &[(&str, &str)], dir: &Path, expected: &[&str]) {
    let output = run(args, envs);
    let message = stderr(&output);
    assert!(!output.status.success(), "{args:?} succeeded; stderr: {message}");
    let error_lines: Vec<&str> = message.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(error_lines.len(), 1, "one error line expected, got: {message}");
    for needle in expected {
        assert!(message.contains(needle), "{args:?}: {needle:?} not in: {message}");
    }
    let left: Vec<_> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(left.is_empty(), "{args:?} left {left:?} behind");
}

fn ffprobe_frames(path: &Path) -> (u64, String) {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=nb_read_frames,codec_name,pix_fmt,width,height", "-of", "json"])
        .arg(path)
        .output()
        .unwrap();
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let stream = &json["streams"][0];
    let frames = stream["nb_read_frames"].as_str().unwrap().parse().unwrap();
    (frames, format!("{} {} {}x{}", stream["codec_name"], stream["pix_fmt"], stream["width"], stream["height"]))
}

#[test]
fn process_writes_a_30_frame_video_and_alpha_pngs() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("demo.mp4");
    let alpha = dir.path().join("alpha");
    let output = run(
        &[
            "process",
            "demo",
            "-o",
            video.to_str().unwrap(),
            "--max-frames",
            "30",
            "--alpha-dir",
            alpha.to_str().unwrap(),
            "--temporal",
            "ofd",
            "--background",
            "color:#00ff00",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("30 frames") && stdout.contains("provider CPU") && stdout.contains("ms/frame"), "{stdout}");
    let (frames, format) = ffprobe_frames(&video);
    assert_eq!(frames, 30, "{format}");
    assert_eq!(format, "\"h264\" \"yuv420p\" 1080x720");
    let alphas = std::fs::read_dir(&alpha).unwrap().count();
    assert_eq!(alphas, 30);
    let first = image::open(alpha.join("000000.png")).unwrap();
    assert_eq!((first.width(), first.height(), first.color()), (1080, 720, image::ColorType::L8));
}

#[test]
fn process_handles_images_folders_and_transparency() {
    let dir = tempfile::tempdir().unwrap();
    let cutout = dir.path().join("cutout.png");
    let output = run(
        &[
            "process",
            fetched("assets/hires.jpg").to_str().unwrap(),
            "-o",
            cutout.to_str().unwrap(),
            "--background",
            "transparent",
        ],
        &[],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let rgba = image::open(&cutout).unwrap().into_rgba8();
    assert_eq!(rgba.dimensions(), (3240, 2160));
    // Transparent corners, opaque person in the middle of the frame.
    assert!(rgba.get_pixel(10, 10).0[3] < 10, "corner alpha {}", rgba.get_pixel(10, 10).0[3]);
    assert!(rgba.get_pixel(1620, 1500).0[3] > 245, "centre alpha {}", rgba.get_pixel(1620, 1500).0[3]);

    // A folder of frames in, a folder of frames out, RVM this time.
    let frames = dir.path().join("frames");
    std::fs::create_dir(&frames).unwrap();
    let status = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(fetched("assets/demovideo.mp4"))
        .args(["-frames:v", "4", "-vf", "scale=540:360"])
        .arg(frames.join("%03d.png"))
        .status();
    assert!(status.unwrap().success());
    let out = dir.path().join("out");
    let output = run(&["process", frames.to_str().unwrap(), "-o", out.to_str().unwrap(), "--model", "rvm"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4);
}

#[test]
fn missing_and_unreadable_inputs_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("o.mp4");
    let out = out.to_str().unwrap();
    assert_refused(&["process", "no/such/clip.mp4", "-o", out], &[], &out_dir, &["no/such/clip.mp4", "does not exist"]);

    let bytes = std::fs::read(fetched("assets/demovideo.mp4")).unwrap();
    let half = dir.path().join("half.mp4");
    std::fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    assert_refused(
        &["process", half.to_str().unwrap(), "-o", out],
        &[],
        &out_dir,
        &["half.mp4", "re-export or re-download"],
    );

    let not_image = dir.path().join("photo.jpg");
    std::fs::write(&not_image, "not a jpeg").unwrap();
    let png_out = out_dir.join("o.png");
    assert_refused(
        &["process", not_image.to_str().unwrap(), "-o", png_out.to_str().unwrap()],
        &[],
        &out_dir,
        &["photo.jpg", "not a readable image"],
    );
}

#[test]
fn a_video_that_breaks_mid_stream_keeps_only_an_incomplete_output() {
    let dir = tempfile::tempdir().unwrap();
    let cut = cut_demo_clip(dir.path(), 3);
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("o.mp4");
    let alpha = out_dir.join("alpha");
    let output = run(
        &["process", cut.to_str().unwrap(), "-o", out.to_str().unwrap(), "--alpha-dir", alpha.to_str().unwrap()],
        &[],
    );
    let message = stderr(&output);
    assert!(!output.status.success(), "{message}");
    for needle in ["cut.mp4", "truncated or corrupt", "decoding stopped after"] {
        assert!(message.contains(needle), "{needle:?} not in: {message}");
    }
    // The final names never hold a cut-short output; what was written may be kept, and is then playable.
    let mut left: Vec<String> =
        std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    left.sort();
    assert!(left.iter().all(|name| name == "o.incomplete.mp4" || name == "alpha.incomplete"), "left {left:?}");
    if left.contains(&"o.incomplete.mp4".to_string()) {
        let (frames, _) = ffprobe_frames(&out_dir.join("o.incomplete.mp4"));
        assert!(frames > 0 && message.contains("o.incomplete.mp4"), "{message}");
    }
}

#[test]
fn missing_corrupt_and_wrong_models_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // A home of its own: the files named here are recorded as the user's models on first use, and that
    // record must not be the checkout's.
    let home = dir.path().join("home");
    home_like_checkout(&home);
    std::fs::create_dir(home.join("assets")).unwrap();
    std::os::unix::fs::symlink(fetched("assets/demovideo.mp4"), home.join("assets/demovideo.mp4")).unwrap();
    let home_env = [("MATTECAM_HOME", home.to_str().unwrap())];
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("o.mp4");
    let out = out.to_str().unwrap();
    let missing = dir.path().join("gone.onnx");
    assert_refused(
        &["process", "demo", "-o", out, "--model-file", missing.to_str().unwrap()],
        &home_env,
        &out_dir,
        &["gone.onnx", "make setup"],
    );
    let corrupt = dir.path().join("broken.onnx");
    std::fs::write(&corrupt, b"\x08\x07garbage that is not a protobuf model").unwrap();
    assert_refused(
        &["process", "demo", "-o", out, "--model-file", corrupt.to_str().unwrap()],
        &home_env,
        &out_dir,
        &["broken.onnx", "not a loadable ONNX model"],
    );
    assert_refused(
        &[
            "process",
            "demo",
            "-o",
            out,
            "--model",
            "rvm",
            "--model-file",
            fetched("models/modnet.onnx").to_str().unwrap(),
        ],
        &home_env,
        &out_dir,
        &["modnet.onnx", "not a RVM model", "choose the matching --model"],
    );
}

#[test]
fn missing_or_broken_onnx_runtime_says_what_to_run() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("o.mp4");
    let out = out.to_str().unwrap();
    assert_refused(
        &["process", "demo", "-o", out],
        &[("ORT_DYLIB_PATH", "/nonexistent/libonnxruntime.so")],
        &out_dir,
        &["libonnxruntime.so", "was not found", "make setup"],
    );
    let fake = dir.path().join("libonnxruntime.so");
    std::fs::write(&fake, "not a shared library").unwrap();
    assert_refused(
        &["process", "demo", "-o", out],
        &[("ORT_DYLIB_PATH", fake.to_str().unwrap())],
        &out_dir,
        &["could not load ONNX Runtime", "libonnxruntime.so"],
    );
}

#[test]
fn missing_ffmpeg_says_how_to_install_it() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("o.mp4");
    // Reading a video needs ffprobe and ffmpeg.
    assert_refused(
        &["process", "demo", "-o", out.to_str().unwrap()],
        &[("PATH", "/nonexistent")],
        &out_dir,
        &["`ffprobe` was not found", "apt-get install ffmpeg"],
    );
    // An image in, a video out: the encoder is what is missing.
    assert_refused(
        &["process", fetched("assets/hires.jpg").to_str().unwrap(), "-o", out.to_str().unwrap()],
        &[("MATTECAM_FFMPEG", "/nonexistent/ffmpeg")],
        &out_dir,
        &["`ffmpeg` was not found", "MATTECAM_FFMPEG"],
    );
}

#[test]
fn unwritable_and_unsuitable_outputs_are_refused_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    assert_refused(
        &["process", "demo", "-o", "/dev/null/out.mp4"],
        &[],
        &empty,
        &["/dev/null/out.mp4", "cannot write"],
    );
    let out = empty.join("o.mp4");
    assert_refused(
        &["process", "demo", "-o", out.to_str().unwrap(), "--background", "transparent"],
        &[],
        &empty,
        &["no alpha", "--format prores, webm-alpha or png"],
    );
    let one = empty.join("one.png");
    assert_refused(
        &["process", "demo", "-o", one.to_str().unwrap()],
        &[],
        &empty,
        &["single image", "more than one frame"],
    );
    assert_refused(
        &["process", "demo", "-o", out.to_str().unwrap(), "--background", "color:#xyz"],
        &[],
        &empty,
        &["invalid background"],
    );
    assert_refused(
        &["process", "demo", "-o", out.to_str().unwrap(), "--model", "rvm", "--sessions", "2"],
        &[],
        &empty,
        &["RVM cannot matte frames in parallel sessions", "recurrent state", "--sessions 1"],
    );
}

/// A 256 KiB file system fills up during the encode: the run fails and says so, and leaves no partial or
/// temporary file (what reached the disk, if any frame did, is kept playable under the output's name).
#[test]
fn a_full_disk_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount").args(["-t", "tmpfs", "-o", "size=256k", "tmpfs"]).arg(&small).status();
    if !mounted.is_ok_and(|s| s.success()) {
        assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI runs as root and must be able to mount a tmpfs");
        eprintln!("skipped: mounting a small tmpfs needs root");
        return;
    }
    struct Unmount<'a>(&'a Path);
    impl Drop for Unmount<'_> {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(self.0).status();
        }
    }
    let _guard = Unmount(&small);
    let out = small.join("o.mp4");
    let output = run(&["process", "demo", "-o", out.to_str().unwrap(), "--max-frames", "60", "--ref-size", "256"], &[]);
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(message.contains("o.mp4") && message.contains("disk may be full"), "{message}");
    let left: Vec<String> =
        std::fs::read_dir(&small).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert!(left.iter().all(|name| name == "o.incomplete.mp4"), "left {left:?}");
    let kept = small.join("o.incomplete.mp4");
    if kept.exists() {
        assert!(message.contains("are kept in") && message.contains("o.incomplete.mp4"), "{message}");
        let (frames, _) = ffprobe_frames(&kept);
        assert!(frames > 0);
    } else {
        assert!(message.contains("no frame reached the disk"), "{message}");
    }
}

#[test]
fn models_command_lists_licences_and_verification() {
    let output = run(&["models"], &[]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("modnet") && text.contains("Apache-2.0") && text.contains("GPL-3.0"), "{text}");
    // MODNet, its INT8 file (made by setup), RVM.
    assert_eq!(text.matches("verified").count(), 3, "{text}");
    assert!(text.contains("ONNX Runtime: "), "{text}");
}

/// Ctrl-C on a file run ends it and keeps what was done, finalised and playable.
#[test]
fn ctrl_c_on_a_file_run_keeps_what_was_done() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("o.mp4");
    let child = Command::new(mattecam())
        .args(["process", "demo", "-o", out.to_str().unwrap(), "--threads", "1"])
        .current_dir(root())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait until the run has frames on disk (however long that takes here), then interrupt it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
    let working = out_dir.join("o.partial.mp4");
    while std::fs::metadata(&working).map_or(0, |m| m.len()) < 20_000 {
        assert!(std::time::Instant::now() < deadline, "no frames reached the disk");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let status = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(message.contains("interrupted") && message.contains("holds the first"), "{message}");
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left, ["o.mp4"], "left {left:?}");
    let (frames, _) = ffprobe_frames(&out);
    assert!(frames > 0 && frames < 433, "{frames} frames: some, not the whole clip");
}

/// The setup refuses a file whose sha256 differs from the manifest, and `mattecam models` flags one.
#[test]
fn setup_refuses_a_mismatching_model_and_models_flags_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path();
    for sub in ["scripts", "models", "assets", ".cache"] {
        std::fs::create_dir(home.join(sub)).unwrap();
    }
    for script in ["setup.py", "pins.toml"] {
        std::fs::copy(root().join("scripts").join(script), home.join("scripts").join(script)).unwrap();
    }
    // The wheels already fetched are reused, so this needs no network.
    std::os::unix::fs::symlink(root().join(".cache/wheels"), home.join(".cache/wheels")).unwrap();
    let manifest = std::fs::read_to_string(root().join("models/models.toml")).unwrap();
    let tampered =
        manifest.replacen("07c308cf0fc7e6e8b2065a12ed7fc07e1de8febb7dc7839d7b7f15dd66584df9", &"0".repeat(64), 1);
    assert_ne!(manifest, tampered, "the manifest's MODNet sha256 changed: update this test");
    std::fs::write(home.join("models/models.toml"), &tampered).unwrap();
    std::fs::write(home.join("assets/assets.toml"), "asset = []\n").unwrap();
    let output = Command::new("python3").arg(home.join("scripts/setup.py")).output().unwrap();
    let message = stderr(&output);
    assert!(!output.status.success(), "setup accepted a mismatching file");
    assert!(message.contains("refusing it") && message.contains("modnet.onnx"), "{message}");
    assert!(!home.join("models/modnet.onnx").exists(), "the refused file was kept");

    // A wrong file in place is reported as such.
    std::fs::write(home.join("models/models.toml"), &manifest).unwrap();
    std::fs::write(home.join("models/modnet.onnx"), b"not the model").unwrap();
    let output = run(&["models"], &[("MATTECAM_HOME", home.to_str().unwrap())]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("WRONG FILE") && text.contains("missing") && text.contains("make setup"), "{text}");
}

/// Whether this machine has a GPU adapter; in CI it must.
fn has_gpu() -> bool {
    match mattecam::gpu::GpuContext::headless() {
        Ok(_) => true,
        Err(err) => {
            assert_ne!(std::env::var("CI").as_deref(), Ok("true"), "CI must have a GPU adapter: {err}");
            eprintln!("skipped: {err}");
            false
        }
    }
}

#[test]
fn gpu_and_cpu_compositors_write_the_same_video() {
    if !has_gpu() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut decoded = Vec::new();
    for compositor in ["gpu", "cpu"] {
        let video = dir.path().join(format!("{compositor}.mp4"));
        let output = run(
            &[
                "process",
                "demo",
                "-o",
                video.to_str().unwrap(),
                "--max-frames",
                "6",
                "--compositor",
                compositor,
                "--upsample",
                "guided",
                "--background",
                "blur:16",
                "--mirror",
                "--feather-px",
                "2",
                "--shrink-px",
                "1",
            ],
            &[],
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(&format!("({compositor}")), "the summary names the compositor: {stdout}");
        let mut source = mattecam::source::video::VideoSource::open(&video).unwrap();
        let mut frames = Vec::new();
        while let Some(frame) = mattecam::source::FrameSource::next_frame(&mut source, Vec::new()).unwrap() {
            frames.push(frame.rgb);
        }
        assert_eq!(frames.len(), 6);
        decoded.push(frames);
    }
    for (i, (gpu, cpu)) in decoded[0].iter().zip(&decoded[1]).enumerate() {
        let max = gpu.iter().zip(cpu).map(|(a, b)| a.abs_diff(*b)).max().unwrap();
        assert!(max <= 1, "frame {i}: GPU and CPU videos differ by {max}/255");
    }
}

#[test]
fn without_a_gpu_auto_falls_back_to_the_cpu_and_gpu_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Point the Vulkan loader at no driver: as on a machine without one.
    let no_driver = [("VK_ICD_FILENAMES", "/nonexistent/icd.json"), ("VK_DRIVER_FILES", "/nonexistent/icd.json")];
    let video = dir.path().join("out.mp4");
    let args = ["process", "demo", "-o", video.to_str().unwrap(), "--max-frames", "2"];
    assert_refused(
        &[&args[..], &["--compositor", "gpu"]].concat(),
        &no_driver,
        dir.path(),
        &["no GPU adapter", "--compositor cpu"],
    );
    let output = run(&args, &no_driver);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("compositing on the CPU: no GPU adapter"), "{}", stderr(&output));
    assert!(!stderr(&output).contains("ERROR"), "loader noise leaks: {}", stderr(&output));
    assert!(String::from_utf8_lossy(&output.stdout).contains("(cpu)"));
    assert_eq!(ffprobe_frames(&video).0, 2);
}

#[test]
fn auto_compositor_passes_over_a_software_rasteriser_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let video = dir.path().join("out.mp4");
    let output = run(&["process", "demo", "-o", video.to_str().unwrap(), "--max-frames", "2"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    let stdout = String::from_utf8_lossy(&output.stdout);
    match mattecam::gpu::GpuContext::headless_with(false) {
        Ok(ctx) => assert!(stdout.contains("(gpu"), "a hardware GPU ({}) must be used: {stdout}", ctx.adapter_name),
        Err(mattecam::gpu::GpuError::SoftwareOnly { .. }) => {
            assert!(stderr(&output).contains("software rasteriser"), "{}", stderr(&output));
            assert!(stdout.contains("(cpu)"), "{stdout}");
        }
        Err(_) => assert!(stdout.contains("(cpu)"), "{stdout}"),
    }
}
