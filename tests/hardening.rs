//! Hardening, from outside wherever possible: only the code the user installed is loaded; no output is ever
//! silently replaced, redirected or lost; no run stalls for ever or crashes on a number out of range.

mod common;

use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::*;
use mattecam::composite::{Background, CompositeSettings, CompositorKind};
use mattecam::engine::{
    CompositorSetup, Delivery, Engine, EngineConfig, ModelChoice, ModelInput, Received, SourceChoice,
};
use mattecam::filter::temporal::{TemporalFilter, TemporalMode};
use mattecam::frame::{Frame, Matte};
use mattecam::infer::InferError;
use mattecam::settings::AppSettings;
use mattecam::sink::partial::{Partial, free_name};
use mattecam::sink::{Sink, SinkFrame, VideoKind, VideoSink};

/// A guard against a hang (not a bound on speed): a run that has not ended by then never will.
const PATIENCE: Duration = Duration::from_secs(180);

/// `mattecam` with nothing of the user's environment that decides what it loads: no `MATTECAM_HOME`, no
/// `ORT_DYLIB_PATH`, and an empty data folder of its own (never the user's `~/.local/share`).
fn mattecam_in(cwd: &Path, data: &Path) -> Command {
    let mut command = Command::new(mattecam());
    command
        .current_dir(cwd)
        .env_remove("MATTECAM_HOME")
        .env_remove("ORT_DYLIB_PATH")
        .env_remove("MATTECAM_TEST_MATTER_DELAY_MS")
        .env_remove("MATTECAM_TEST_PANIC")
        .env("XDG_DATA_HOME", data)
        .stdin(Stdio::null());
    command
}

/// Runs `command` to its end, failing the test if it has not ended within [`PATIENCE`] (a hang).
fn finish(command: &mut Command) -> Output {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("the command starts");
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let drain = |name: &str, mut pipe: Box<dyn Read + Send>| {
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let mut text = Vec::new();
                pipe.read_to_end(&mut text).unwrap();
                text
            })
            .unwrap()
    };
    let out = drain("test-stdout", Box::new(stdout));
    let err = drain("test-stderr", Box::new(stderr));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("the command hung: {command:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Output { status, stdout: out.join().unwrap(), stderr: err.join().unwrap() }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `process` of a short synthetic clip with the test stand-in model (no ONNX Runtime).
fn quick_process(cwd: &Path, output: &str, extra: &[&str]) -> Command {
    let mut command = mattecam_in(cwd, cwd);
    command
        .args(["process", "synthetic:64x48@30", "--max-frames", "12", "--compositor", "cpu", "-o", output])
        .args(extra)
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "1");
    command
}

/// Frames of a video as ffprobe counts them by decoding.
fn frames_in(video: &Path) -> u64 {
    let output = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries", "stream=nb_read_frames"])
        .args(["-of", "csv=p=0"])
        .arg(video)
        .output()
        .expect("ffprobe runs");
    text(&output.stdout).trim().parse().unwrap_or_else(|_| panic!("{} is not a playable video", video.display()))
}

fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Copies `from` to `to` with one byte changed (the middle one).
fn copy_with_one_byte_changed(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    let mut file = std::fs::OpenOptions::new().read(true).write(true).open(to).unwrap();
    let middle = file.metadata().unwrap().len() / 2;
    let mut byte = [0u8];
    file.seek(SeekFrom::Start(middle)).unwrap();
    file.read_exact(&mut byte).unwrap();
    file.seek(SeekFrom::Start(middle)).unwrap();
    file.write_all(&[byte[0] ^ 0xff]).unwrap();
}

/// A shared library whose constructor writes `marker` when anything loads it: planted code.
fn planted_library(dir: &Path, marker: &Path) -> PathBuf {
    let source = dir.join("planted.c");
    std::fs::write(
        &source,
        format!(
            "#include <stdio.h>\n__attribute__((constructor)) static void planted(void) {{ FILE *f = fopen(\"{}\", \"w\"); if (f) {{ fputs(\"planted code ran\", f); fclose(f); }} }}\n",
            marker.display()
        ),
    )
    .unwrap();
    let library = dir.join("planted.so");
    let status = Command::new("cc")
        .args(["-shared", "-fPIC", "-o"])
        .arg(&library)
        .arg(&source)
        .status()
        .expect("a C compiler (cc) builds the planted library");
    assert!(status.success(), "cc failed");
    library
}

// ---------------------------------------------------------------------------------------------------
// Code loaded or trusted from the wrong place.

/// A folder with a planted `models/models.toml` and a library whose constructor leaves a marker: running
/// mattecam from it loads the checkout's verified library, never the planted one.
#[test]
fn a_planted_library_in_the_current_folder_is_never_loaded() {
    let dir = tempfile::tempdir().unwrap();
    let planted = dir.path().join("cloned-repo");
    let marker = dir.path().join("planted-code-ran");
    let library = planted_library(dir.path(), &marker);
    std::fs::create_dir_all(planted.join("models")).unwrap();
    std::fs::create_dir_all(planted.join(".cache/onnxruntime/cpu")).unwrap();
    // A manifest that claims the planted file is the verified MODNet.
    std::fs::write(planted.join("models/models.toml"), std::fs::read_to_string(fetched("models/models.toml")).unwrap())
        .unwrap();
    std::fs::copy(&library, planted.join(".cache/onnxruntime/cpu/libonnxruntime.so")).unwrap();
    let out = dir.path().join("out.mp4");
    let output = finish(mattecam_in(&planted, dir.path()).args([
        "process",
        "synthetic:64x48@30",
        "--max-frames",
        "2",
        "--compositor",
        "cpu",
        "-o",
        out.to_str().unwrap(),
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(!marker.exists(), "the planted library was loaded: {}", text(&output.stderr));
    assert!(text(&output.stderr).contains(&root().join(".cache/onnxruntime/cpu").display().to_string()));

    // The marker works: a library the user names explicitly is loaded as asked.
    let output = finish(mattecam_in(dir.path(), dir.path()).env("ORT_DYLIB_PATH", &library).args([
        "process",
        "synthetic:64x48@30",
        "--max-frames",
        "1",
        "-o",
        "x.mp4",
    ]));
    assert!(!output.status.success());
    assert!(marker.exists(), "ORT_DYLIB_PATH names a file: it is loaded without a hash check");
}

/// The setup's cache holding a library that is not the one setup verified (one byte changed, or planted
/// code): refused before it is loaded, with the fix; the verified one loads.
#[test]
fn a_changed_library_in_the_setup_cache_is_refused_before_loading() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    home_like_checkout(&home);
    let versioned = home.join(".cache/onnxruntime/cpu/libonnxruntime.so.1.31.1");
    let run = || {
        finish(mattecam_in(dir.path(), dir.path()).env("MATTECAM_HOME", &home).args([
            "process",
            "synthetic:64x48@30",
            "--max-frames",
            "1",
            "--compositor",
            "cpu",
            "-o",
            "out.mp4",
            "--overwrite",
        ]))
    };
    let output = run();
    assert!(output.status.success(), "the verified library loads: {}", text(&output.stderr));

    std::fs::remove_file(&versioned).unwrap();
    copy_with_one_byte_changed(&fetched(".cache/onnxruntime/cpu/libonnxruntime.so.1.31.1"), &versioned);
    let output = run();
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("not the library `make setup` verified") && stderr.contains("make setup"), "{stderr}");

    let marker = dir.path().join("planted-code-ran");
    std::fs::remove_file(&versioned).unwrap();
    std::fs::copy(planted_library(dir.path(), &marker), &versioned).unwrap();
    let output = run();
    assert!(!output.status.success());
    assert!(!marker.exists(), "planted code ran: {}", text(&output.stderr));
}

fn python() -> String {
    std::env::var("PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Hard-links (or copies) the checkout's cached wheels into `wheels`.
fn link_wheels(wheels: &Path) {
    std::fs::create_dir_all(wheels).unwrap();
    for entry in std::fs::read_dir(root().join(".cache/wheels")).unwrap() {
        let path = entry.unwrap().path();
        let to = wheels.join(path.file_name().unwrap());
        if std::fs::hard_link(&path, &to).is_err() {
            std::fs::copy(&path, &to).unwrap();
        }
    }
}

/// Setup checks every wheel before reading from it, and every file it extracted on every run: a wheel
/// with one byte changed is refused (nothing is extracted from it, and it leaves the cache); a library on
/// disk with one byte changed is replaced by the verified one.
#[test]
fn setup_refuses_a_changed_wheel_and_replaces_a_changed_library() {
    let dir = tempfile::tempdir().unwrap();
    let setup_root = dir.path();
    for manifest in ["models/models.toml", "assets/assets.toml"] {
        std::fs::create_dir_all(setup_root.join(manifest).parent().unwrap()).unwrap();
        std::fs::copy(root().join(manifest), setup_root.join(manifest)).unwrap();
    }
    let wheels = setup_root.join(".cache/wheels");
    link_wheels(&wheels);
    let setup = || {
        finish(
            Command::new(python())
                .arg(root().join("scripts/setup.py"))
                .arg("--root")
                .arg(setup_root)
                .arg("--no-int8")
                .stdin(Stdio::null()),
        )
    };
    let wheel = std::fs::read_dir(&wheels)
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.file_name().unwrap().to_string_lossy().starts_with("onnxruntime-"))
        .expect("the ONNX Runtime wheel is cached");
    let good = dir.path().join("good.whl");
    std::fs::rename(&wheel, &good).unwrap();
    copy_with_one_byte_changed(&good, &wheel);
    let output = setup();
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("refusing it"), "{stderr}");
    assert!(!wheel.exists(), "the changed wheel leaves the cache");
    let library = setup_root.join(".cache/onnxruntime/cpu/libonnxruntime.so.1.31.1");
    assert!(!library.exists(), "nothing is extracted from a refused wheel");

    std::fs::rename(&good, &wheel).unwrap();
    let output = setup();
    assert!(output.status.success(), "{}", text(&output.stderr));
    let verified = std::fs::read(fetched(".cache/onnxruntime/cpu/libonnxruntime.so.1.31.1")).unwrap();
    assert!(std::fs::read(&library).unwrap() == verified);
    let changed = dir.path().join("changed.so");
    copy_with_one_byte_changed(&library, &changed);
    std::fs::rename(&changed, &library).unwrap();
    let output = setup();
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("replacing it"), "{}", text(&output.stdout));
    assert!(std::fs::read(&library).unwrap() == verified, "the verified library is back");
}

/// An ONNX graph shaped like MODNet (1x3xHxW in, 1x1xHxW out) whose alpha is NaN everywhere: 0/0 of the
/// input's mean. Made with the `onnx` package of the test tools.
fn nan_model(path: &Path) {
    let script = format!(
        r#"
import onnx
from onnx import TensorProto, helper
x = helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, "h", "w"])
y = helper.make_tensor_value_info("alpha", TensorProto.FLOAT, [1, 1, "h", "w"])
nodes = [
    helper.make_node("ReduceMean", ["input"], ["mean"], axes=[1], keepdims=1),
    helper.make_node("Sub", ["mean", "mean"], ["zero"]),
    helper.make_node("Div", ["zero", "zero"], ["alpha"]),
]
graph = helper.make_graph(nodes, "nan", [x], [y])
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, {:?})
"#,
        path.display().to_string()
    );
    let venv_python = fetched(".cache/venv/bin/python");
    let output = Command::new(venv_python).args(["-c", &script]).output().expect("the test tools' python runs");
    assert!(output.status.success(), "making the NaN model failed: {}", text(&output.stderr));
}

/// Model files are checked before they are loaded. A fetched model whose sha256 changed is refused (not
/// taken for a user's). A user's model is recorded on first use; once changed it is refused with both
/// hashes and the command that accepts it; accepted, it loads. An unreadable record is an error, never an
/// empty one. A model giving NaN fails `process` with a clear error and leaves no output.
#[test]
fn model_files_are_checked_before_loading_and_nan_fails_a_file_run() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    home_like_checkout(&home);
    let process = |model_file: Option<&Path>, out: &str| {
        let mut command = mattecam_in(dir.path(), dir.path());
        command.env("MATTECAM_HOME", &home).args([
            "process",
            "synthetic:64x48@30",
            "--max-frames",
            "3",
            "--compositor",
            "cpu",
            "--model",
            "modnet",
            "-o",
            out,
        ]);
        if let Some(file) = model_file {
            command.arg("--model-file").arg(file);
        }
        finish(&mut command)
    };

    // A user's model: recorded on first use; this one gives NaN, which fails the run and writes nothing.
    let user = dir.path().join("mine.onnx");
    nan_model(&user);
    let output = process(Some(&user), "nan.mp4");
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("recorded on first use"), "{stderr}");
    assert!(stderr.contains("non-finite alpha (NaN or infinity) on frame 0"), "{stderr}");
    assert_eq!(names_in(dir.path()).iter().filter(|n| n.starts_with("nan")).count(), 0, "no output");

    // Replaced by another file: refused, with both hashes and the command to accept it.
    std::fs::copy(fetched("models/modnet.onnx"), &user).unwrap();
    let output = process(Some(&user), "user.mp4");
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("changed since its first use") && stderr.contains("mattecam models --accept"), "{stderr}");
    let modnet_sha = mattecam::models::sha256_file(&user).unwrap();
    assert!(stderr.contains(&modnet_sha), "the new sha256 is shown: {stderr}");
    let output = finish(
        mattecam_in(dir.path(), dir.path()).env("MATTECAM_HOME", &home).arg("models").arg("--accept").arg(&user),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let output = process(Some(&user), "user.mp4");
    assert!(output.status.success(), "accepted, it loads: {}", text(&output.stderr));

    // A record that cannot be read is an error, not an empty list that would accept anything.
    let records = home.join("models/user-models.toml");
    std::fs::write(&records, "this is [not toml").unwrap();
    let output = process(Some(&user), "again.mp4");
    let stderr = text(&output.stderr);
    assert!(!output.status.success() && stderr.contains("user-models.toml cannot be read"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&records).unwrap(), "this is [not toml", "left for the user to fix");

    // The fetched MODNet with one byte changed: refused as the fetched file it claims to be.
    let modnet = home.join("models/modnet.onnx");
    std::fs::remove_file(&modnet).unwrap();
    copy_with_one_byte_changed(&fetched("models/modnet.onnx"), &modnet);
    let output = process(None, "fetched.mp4");
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("not the file `make setup` verified") && stderr.contains("make setup"), "{stderr}");
}

// ---------------------------------------------------------------------------------------------------
// Outputs.

/// An existing output is refused unless `--overwrite` is given; then it is replaced by a complete one.
#[test]
fn an_existing_output_is_refused_unless_overwrite_is_given() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out.mp4");
    std::fs::write(&out, "the user's own file").unwrap();
    let output = finish(&mut quick_process(dir.path(), "out.mp4", &[]));
    let stderr = text(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("already exists") && stderr.contains("--overwrite"), "{stderr}");
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "the user's own file");
    assert_eq!(names_in(dir.path()), ["out.mp4"], "nothing else was written");

    let output = finish(&mut quick_process(dir.path(), "out.mp4", &["--overwrite"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(frames_in(&out), 12);

    // The single-file outputs of the other commands: a plate, the benchmark's and eval's JSON.
    let mine = dir.path().join("mine.json");
    std::fs::write(&mine, "the user's own file").unwrap();
    let commands: [&[&str]; 3] = [
        &["plate", "--source", "synthetic:64x48@30", "--frames", "2", "-o", "mine.json"],
        &["bench", "--source", "synthetic", "--size", "64x48", "--frames", "2", "--json", "mine.json"],
        &["eval", "--video", "x.mp4", "--json", "mine.json"],
    ];
    for args in commands {
        let output = finish(mattecam_in(dir.path(), dir.path()).args(args));
        let stderr = text(&output.stderr);
        assert!(!output.status.success() && stderr.contains("already exists"), "{args:?}: {stderr}");
        assert_eq!(std::fs::read_to_string(&mine).unwrap(), "the user's own file");
    }
    let output = finish(mattecam_in(dir.path(), dir.path()).args([
        "plate",
        "--source",
        "synthetic:64x48@30",
        "--frames",
        "2",
        "-o",
        "mine.json",
        "--overwrite",
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(std::fs::read(&mine).unwrap().starts_with(b"\x89PNG"), "replaced by the plate, as asked");
}

/// A link planted at every working name (the encoder's file, the remux's copy, the incomplete name, a
/// recording's sidecar) redirects nothing: the links' targets are untouched, the outputs complete, and the
/// leftovers reported and left alone. A leftover working folder is never deleted.
#[test]
fn links_planted_at_working_names_redirect_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious").unwrap();
    let victim_dir = dir.path().join("victim-dir");
    std::fs::create_dir(&victim_dir).unwrap();
    std::fs::write(victim_dir.join("keep.txt"), "precious").unwrap();
    let plant = |name: &str, target: &Path| std::os::unix::fs::symlink(target, dir.path().join(name)).unwrap();
    for name in ["out.partial.mp4", "out.partial.finishing.mp4", "out.incomplete.mp4", "out.partial-2.finishing.mp4"] {
        plant(name, &victim);
    }
    plant("seq.partial", &victim_dir);
    // A real leftover folder of an earlier crash, with a frame in it.
    std::fs::create_dir(dir.path().join("alpha.partial")).unwrap();
    std::fs::write(dir.path().join("alpha.partial/000000.png"), "an earlier run's frame").unwrap();

    let output = finish(&mut quick_process(dir.path(), "out.mp4", &["--alpha-dir", "alpha"]));
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("out.partial.mp4 is a working file left by an earlier run"), "{stderr}");
    assert!(stderr.contains("alpha.partial is a working file left by an earlier run"), "{stderr}");
    assert_eq!(frames_in(&dir.path().join("out.mp4")), 12);
    assert_eq!(std::fs::read_dir(dir.path().join("alpha")).unwrap().count(), 12);
    let output = finish(&mut quick_process(dir.path(), "seq", &["--format", "png"]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(std::fs::read_dir(dir.path().join("seq")).unwrap().count(), 12);

    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert_eq!(names_in(&victim_dir), ["keep.txt"]);
    assert_eq!(std::fs::read_to_string(dir.path().join("alpha.partial/000000.png")).unwrap(), "an earlier run's frame");
    for name in ["out.partial.mp4", "out.partial.finishing.mp4", "out.incomplete.mp4", "seq.partial"] {
        assert!(dir.path().join(name).is_symlink(), "{name} is still the planted link");
    }

    // A recording's sidecar is written through a working name too.
    for name in ["rec.partial.mp4", "rec.partial.json"] {
        plant(name, &victim);
    }
    let output = finish(mattecam_in(dir.path(), dir.path()).env("MATTECAM_TEST_MATTER_DELAY_MS", "1").args([
        "record",
        "--source",
        "synthetic:64x48@30",
        "--seconds",
        "0.5",
        "--compositor",
        "cpu",
        "-o",
        "rec.mp4",
    ]));
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(frames_in(&dir.path().join("rec.mp4")) > 0);
    assert!(std::fs::read_to_string(dir.path().join("rec.json")).unwrap().contains("\"complete\": true"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
}

/// Two takes named in the same second (the window names them by the time): the second gets its own name
/// while the first is still being written, and neither replaces the other, even if a file of that name
/// appears while writing.
#[test]
fn two_takes_in_the_same_second_never_share_a_name() {
    let dir = tempfile::tempdir().unwrap();
    let stem = "mattecam-20261201-120000";
    let first = free_name(dir.path(), stem, Some("mp4"));
    let mut first_take = Partial::file(&first, false).unwrap();
    let second = free_name(dir.path(), stem, Some("mp4"));
    assert_ne!(first, second, "the first take's working file holds its name");
    assert!(second.ends_with(format!("{stem}-2.mp4")));
    let mut second_take = Partial::file(&second, false).unwrap();
    std::fs::write(first_take.working(), "take one").unwrap();
    std::fs::write(second_take.working(), "take two").unwrap();
    second_take.commit().unwrap();
    first_take.commit().unwrap();
    assert_eq!(std::fs::read_to_string(&first).unwrap(), "take one");
    assert_eq!(std::fs::read_to_string(&second).unwrap(), "take two");

    // A file that takes the name while a take is written is not replaced; the take stays where it is.
    let third = dir.path().join("third.mp4");
    let mut third_take = Partial::file(&third, false).unwrap();
    std::fs::write(third_take.working(), "take three").unwrap();
    std::fs::write(&third, "someone else's").unwrap();
    let err = third_take.commit().unwrap_err();
    assert!(err.to_string().contains("third.partial.mp4"), "{err}");
    assert_eq!(std::fs::read_to_string(&third).unwrap(), "someone else's");
    assert_eq!(std::fs::read_to_string(dir.path().join("third.partial.mp4")).unwrap(), "take three");
}

/// A frame of a new size mid-stream: the encoder's file keeps the frames before it, playable, as
/// `NAME.incomplete.mp4`; the final name never holds a cut-short file.
#[test]
fn a_size_change_mid_stream_keeps_the_frames_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("take.mp4");
    let mut sink = VideoSink::create(VideoKind::H264 { crf: 23 }, &path, 64, 48, 30.0, false).unwrap();
    let write = |sink: &mut VideoSink, width: u32, height: u32| {
        let rgb = vec![128; (width * height * 3) as usize];
        let frame = Frame { seq: 0, captured_at: Instant::now(), pts_ms: 0.0, width, height, rgb };
        let alpha = vec![255; frame.pixel_count()];
        let picture = mattecam::composite::Composite { width, height, channels: 3, pixels: frame.rgb.clone() };
        sink.write(SinkFrame { frame: &frame, alpha: &alpha, picture: &picture })
    };
    for _ in 0..40 {
        write(&mut sink, 64, 48).unwrap();
    }
    let err = write(&mut sink, 32, 24).unwrap_err().to_string();
    assert!(err.contains("size changed") && err.contains("take.incomplete.mp4"), "{err}");
    drop(sink);
    assert!(!path.exists(), "the final name holds only a complete output");
    assert_eq!(frames_in(&dir.path().join("take.incomplete.mp4")), 40);

    // A video file whose frame size changes is decoded at its first size to the end: nothing is lost.
    let segment = |name: &str, size: &str| {
        let status = Command::new("ffmpeg")
            .args(["-v", "error", "-y", "-f", "lavfi", "-i", &format!("testsrc=s={size}:d=1:r=25")])
            .args(["-c:v", "libx264", "-pix_fmt", "yuv420p"])
            .arg(dir.path().join(name))
            .status()
            .unwrap();
        assert!(status.success());
        std::fs::read(dir.path().join(name)).unwrap()
    };
    let joined = [segment("a.ts", "320x240"), segment("b.ts", "160x120")].concat();
    std::fs::write(dir.path().join("changes.ts"), joined).unwrap();
    let mut command = mattecam_in(dir.path(), dir.path());
    command
        .args(["process", "changes.ts", "--compositor", "cpu", "-o", "changes.mp4"])
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "1");
    let output = finish(&mut command);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(frames_in(&dir.path().join("changes.mp4")), 50);
}

/// Paths reach ffmpeg and ffprobe as files, whatever they look like: a name that ffmpeg would take for
/// a protocol (`pipe:...`) or an option (`-...`) is a file, and an input may only open files (a playlist
/// pointing at the network is refused).
#[test]
fn paths_reach_ffmpeg_as_files_and_inputs_open_only_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = mattecam_in(dir.path(), dir.path());
    command
        .args(["process", "synthetic:64x48@30", "--max-frames", "12", "--compositor", "cpu", "--output=-dash.mp4"])
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "1");
    let output = finish(&mut command);
    assert!(output.status.success(), "{}", text(&output.stderr));
    std::fs::rename(dir.path().join("-dash.mp4"), dir.path().join("pipe:0.mp4")).unwrap();
    let mut command = mattecam_in(dir.path(), dir.path());
    command
        .args(["process", "pipe:0.mp4", "--compositor", "cpu", "--output=-out.mp4"])
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "1");
    let output = finish(&mut command);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(frames_in(&dir.path().join("-out.mp4")), 12);

    // Playlists that point at a server: nothing connects to it, and the run fails clearly.
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    server.set_nonblocking(true).unwrap();
    let url = format!("http://{}/segment.ts", server.local_addr().unwrap());
    std::fs::write(
        dir.path().join("remote.m3u8"),
        format!("#EXTM3U\n#EXT-X-TARGETDURATION:1\n#EXTINF:1,\n{url}\n#EXT-X-ENDLIST\n"),
    )
    .unwrap();
    std::fs::write(dir.path().join("remote.ffconcat"), format!("ffconcat version 1.0\nfile '{url}'\n")).unwrap();
    for playlist in ["remote.m3u8", "remote.ffconcat"] {
        let mut command = mattecam_in(dir.path(), dir.path());
        command.args(["process", playlist, "-o", "remote.mp4"]).env("MATTECAM_TEST_MATTER_DELAY_MS", "1");
        let output = finish(&mut command);
        let stderr = text(&output.stderr);
        assert!(!output.status.success() && stderr.contains("is not a readable video"), "{playlist}: {stderr}");
        assert!(server.accept().is_err(), "{playlist}: ffmpeg connected to the server");
    }
}

// ---------------------------------------------------------------------------------------------------
// Stalls and crashes.

/// A panic in any stage fails the run with an error naming it, and the final name is never written
/// (what was written may be kept as `NAME.incomplete.mp4`). The source is live (synthetic): a panicking
/// live source once left `process` hanging.
#[test]
fn a_panic_in_any_stage_fails_the_run_and_commits_nothing() {
    for stage in ["source", "infer", "composite", "sink"] {
        let dir = tempfile::tempdir().unwrap();
        let mut command = quick_process(dir.path(), "out.mp4", &[]);
        command.env("MATTECAM_TEST_PANIC", format!("{stage}:5")).env("RUST_BACKTRACE", "0");
        let output = finish(&mut command);
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{stage}: {stderr}");
        assert!(stderr.contains(&format!("the {stage} stage panicked")), "{stage}: {stderr}");
        let names = names_in(dir.path());
        assert!(names.iter().all(|n| n == "out.incomplete.mp4"), "{stage}: {names:?}");
        if let Some(kept) = names.first() {
            assert!(frames_in(&dir.path().join(kept)) <= 5, "{stage}: only frames before the panic");
        }
    }
}

/// An encoder that stops (SIGSTOP) after its first fragment reached the disk: the run fails within the
/// stall timeout with a clear message, and the frames on disk are kept, playable, as `NAME.incomplete`.
#[test]
fn a_hung_encoder_fails_the_run_and_its_frames_are_salvaged() {
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("stopping-ffmpeg");
    std::fs::write(
        &script,
        r#"#!/bin/sh
# ffmpeg, except that the encoder of raw frames stops (SIGSTOP) once a fragment is on disk.
case "$*" in *rawvideo*pipe:0*) ;; *) exec ffmpeg "$@";; esac
for a; do last=$a; done
out=${last#file:}
exec 3<&0
ffmpeg "$@" <&3 &
pid=$!
until grep -q mdat "$out" 2>/dev/null; do sleep 0.05; done
kill -STOP $pid
wait $pid
"#,
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut command = mattecam_in(dir.path(), dir.path());
    command
        .args(["process", "synthetic:320x240@30", "--max-frames", "600", "--compositor", "cpu", "-o", "out.mp4"])
        .env("MATTECAM_TEST_MATTER_DELAY_MS", "1")
        .env("MATTECAM_FFMPEG", &script)
        .env("MATTECAM_FFMPEG_TIMEOUT_S", "5");
    let output = finish(&mut command);
    let stderr = text(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("stopped responding"), "{stderr}");
    assert!(stderr.contains("out.incomplete.mp4, playable"), "{stderr}");
    assert!(!dir.path().join("out.mp4").exists());
    // The first fragment at least, and as many frames as the message says.
    let kept = frames_in(&dir.path().join("out.incomplete.mp4"));
    assert!(kept > 0 && stderr.contains(&format!("the first {kept} frames")), "{kept} frames: {stderr}");
}

/// A model that gives NaN on some frames, live: those frames are dropped, the model's memory and the
/// filters start afresh, a notice says so, and no NaN ever reaches a picture.
#[test]
fn non_finite_alpha_live_is_dropped_and_the_model_reset() {
    let resets = Arc::new(AtomicU64::new(0));
    let composite = CompositeSettings { background: Background::Color([0, 0, 0]), ..Default::default() };
    let source = SourceChoice::Synthetic { width: 64, height: 48, fps: 30.0 };
    let mut config = EngineConfig::live(source, ModelChoice::default(), TemporalMode::Ema, composite);
    let nan_every_third = |seq: u64| Ok(if seq % 3 == 1 { f32::NAN } else { 0.75 });
    let model = ScriptedMatter { alpha_of: nan_every_third, resets: Arc::clone(&resets) };
    config.model = ModelInput::Opened(vec![Box::new(model)]);
    config.compositor = CompositorSetup::Kind(CompositorKind::Cpu);
    let engine = Engine::start(config);
    let frames = engine.subscribe("test", Delivery::Queue(64));
    let started = Instant::now();
    let mut seen = 0;
    while seen < 12 {
        assert!(started.elapsed() < PATIENCE, "no frames came");
        if let Received::Value(output) = frames.recv_timeout(Duration::from_millis(100)) {
            assert!(output.frame.seq % 3 != 1, "a NaN frame reached the picture: {}", output.frame.seq);
            assert!(output.matte.alpha.iter().all(|a| a.is_finite() && (*a - 0.75).abs() < 1e-6));
            let first = output.picture.alpha[0];
            assert!(first > 0 && output.picture.alpha.iter().all(|&a| a == first), "{:?}", &output.picture.alpha[..4]);
            seen += 1;
        }
    }
    let status = engine.status();
    assert!(status.nonfinite_frames >= 3, "{}", status.nonfinite_frames);
    assert!(status.nonfinite_notice.as_deref().is_some_and(|n| n.contains("non-finite alpha")));
    assert!(resets.load(Ordering::SeqCst) >= 3, "the model's state is reset after each");
}

/// No temporal filter carries NaN forward: a NaN frame gives alpha in [0, 1], and the frames after it are
/// exactly what they would have been after a zero frame.
#[test]
fn no_filter_carries_nan_forward() {
    for mode in [TemporalMode::Ema, TemporalMode::Ofd, TemporalMode::Adaptive, TemporalMode::Off] {
        let run = |poison: f32| {
            let mut filter = TemporalFilter::<()>::new(mode);
            let mut outputs = Vec::new();
            for (seq, value) in [0.5, poison, 0.5, 0.5, 0.5].into_iter().enumerate() {
                let matte =
                    Matte { seq: seq as u64, width: 2, height: 1, alpha: vec![value, 1.0], ..Default::default() };
                if let Some(((), out)) = filter.push((), matte) {
                    outputs.push(out.alpha);
                }
            }
            outputs
        };
        let with_nan = run(f32::NAN);
        assert!(with_nan.iter().flatten().all(|a| a.is_finite() && (0.0..=1.0).contains(a)), "{mode:?}: {with_nan:?}");
        assert_eq!(with_nan, run(0.0), "{mode:?}");
        let with_inf = run(f32::INFINITY);
        assert_eq!(with_inf, run(1.0), "{mode:?}");
    }
}

/// Numbers out of range, from the command line: a clear error, never a panic.
#[test]
fn numbers_out_of_range_on_the_command_line_are_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let cases: [&[&str]; 8] = [
        &["process", "synthetic:0x48@30", "-o", "a.mp4"],
        &["process", "synthetic:64x9000@30", "-o", "a.mp4"],
        &["process", "synthetic:64x64@1e-300", "-o", "a.mp4"],
        &["process", "synthetic:64x64@inf", "-o", "a.mp4"],
        &["plate", "--source", "synthetic:64x48@30", "-o", "p.png", "--delay-s", "1e300"],
        &["plate", "--source", "synthetic:64x48@30", "-o", "p.png", "--frames", "500"],
        &["record", "--source", "synthetic:64x48@30", "--seconds", "NaN", "-o", "r.mp4"],
        &["camera", "--source", "synthetic:64x48@30", "--size", "0x0", "--output", "raw:-"],
    ];
    for args in cases {
        let output = finish(mattecam_in(dir.path(), dir.path()).env("MATTECAM_TEST_MATTER_DELAY_MS", "1").args(args));
        let stderr = text(&output.stderr);
        assert!(!output.status.success(), "{args:?} was accepted");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
        assert!(stderr.contains("must be"), "{args:?}: the bound is named: {stderr}");
    }
    assert!(names_in(dir.path()).is_empty(), "nothing was written");
}

/// Numbers out of range in the settings file: the window starts with the defaults for them, and a notice.
#[test]
fn settings_out_of_range_fall_back_to_the_defaults_with_a_notice() {
    let mut settings =
        AppSettings { source: SourceChoice::Synthetic { width: 0, height: 720, fps: 1e-300 }, ..Default::default() };
    settings.camera.size = Some((100_000, 0));
    settings.plate.frames = 100_000;
    settings.recording.crf = 200;
    settings.recording.queue_mib = 0;
    settings.model.downsample_ratio = f32::NAN;
    settings.model.ref_size = 0;
    let mut json: serde_json::Value = serde_json::from_str(&settings.to_json()).unwrap();
    // JSON has no NaN: a hand-edited file says null, which serde refuses; use a huge number instead.
    json["model"]["downsample_ratio"] = serde_json::json!(1e30);
    let (loaded, notice) = AppSettings::load(Some(&json.to_string()), true);
    let defaults = AppSettings::default();
    assert_eq!(loaded.source, defaults.source);
    assert_eq!(loaded.camera.size, None);
    assert_eq!(loaded.plate.frames, defaults.plate.frames);
    assert_eq!(loaded.recording.crf, defaults.recording.crf);
    assert_eq!(loaded.recording.queue_mib, defaults.recording.queue_mib);
    assert_eq!(loaded.model.downsample_ratio, defaults.model.downsample_ratio);
    assert_eq!(loaded.model.ref_size, defaults.model.ref_size);
    let notice = notice.expect("a notice says what was reset");
    assert!(notice.contains("reset to the defaults") && notice.contains("plate frames"), "{notice}");
    let (_, none) = AppSettings::load(Some(&AppSettings::default().to_json()), true);
    assert_eq!(none, None, "the defaults are in range");
}

/// A model that fails mid-run (as ONNX Runtime can): the run fails with its error, and the frames written
/// before are kept, playable, as `NAME.incomplete.mp4`, the error saying how many; nothing under the
/// final name.
#[test]
fn a_model_failing_mid_run_keeps_what_was_written_as_incomplete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("long.mp4");
    let sinks: Vec<Box<dyn Sink>> =
        vec![Box::new(VideoSink::create(VideoKind::H264 { crf: 23 }, &path, 64, 48, 30.0, false).unwrap())];
    let source = Box::new(mattecam::source::synthetic::SyntheticSource::new(64, 48, 30.0, Some(200)));
    let composite = CompositeSettings { background: Background::Color([0, 0, 0]), ..Default::default() };
    let fails_at_120 = |seq: u64| match seq {
        120 => Err(InferError::ModelInvalid { path: "test.onnx".into(), reason: "the run failed".into() }),
        _ => Ok(1.0),
    };
    let model = ScriptedMatter { alpha_of: fails_at_120, resets: Arc::default() };
    let err = file_engine(source, vec![Box::new(model)], TemporalMode::Off, composite, sinks, None)
        .wait()
        .expect_err("a failing model fails the run")
        .to_string();
    assert!(err.contains("the run failed") && err.contains("long.incomplete.mp4"), "{err}");
    assert!(!path.exists(), "the final name holds only a complete output");
    let kept = frames_in(&dir.path().join("long.incomplete.mp4"));
    assert!(kept > 0 && kept <= 120 && err.contains(&format!("the first {kept} frames")), "{kept}: {err}");
}
