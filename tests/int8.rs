//! INT8 models: setup's quantiser makes the pinned file again from the same inputs, `--precision` picks the
//! file everywhere models are chosen, `auto` falls back to float when the INT8 file is not the verified
//! one, and `mattecam models quantize` makes a user's model INT8.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

/// The manifest's `[model.int8]` of `name`: (file, sha256, the quantiser's arguments).
fn recipe(name: &str) -> (String, String, Vec<String>) {
    let manifest: toml::Value =
        toml::from_str(&std::fs::read_to_string(fetched("models/models.toml")).unwrap()).unwrap();
    let model = manifest["model"].as_array().unwrap().iter().find(|m| m["name"].as_str() == Some(name)).unwrap();
    let int8 = &model["int8"];
    let exclude = int8.get("exclude").and_then(|e| e.as_array()).cloned().unwrap_or_default();
    let mut args = vec!["--method".to_string(), int8.get("method").map_or("minmax", |m| m.as_str().unwrap()).into()];
    if let Some(p) = int8.get("percentile") {
        args.extend(["--percentile".to_string(), p.as_float().unwrap().to_string()]);
    }
    for node in exclude {
        args.extend(["--exclude".to_string(), node.as_str().unwrap().to_string()]);
    }
    (int8["file"].as_str().unwrap().to_string(), int8["sha256"].as_str().unwrap().to_string(), args)
}

fn venv_python() -> PathBuf {
    fetched(".cache/venv/bin/python")
}

fn sha256(path: &Path) -> String {
    mattecam::models::sha256_file(path).unwrap()
}

fn run(home: &Path, args: &[&str]) -> Output {
    Command::new(mattecam())
        .args(args)
        .env("MATTECAM_HOME", home)
        .env_remove("MATTECAM_TEST_MATTER_DELAY_MS")
        .output()
        .unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A home with the checkout's verified float models and, unless `int8` is `None`, this INT8 MODNet.
fn home_with_int8(home: &Path, int8: Option<&Path>) {
    home_like_checkout(home);
    let (file, _, _) = recipe("modnet");
    if let Some(int8) = int8 {
        std::fs::copy(int8, home.join("models").join(file)).unwrap();
    }
    std::os::unix::fs::symlink(fetched("assets/demovideo.mp4"), home.join("demo.mp4")).unwrap();
}

#[test]
fn the_quantiser_makes_the_pinned_modnet_again() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("modnet_int8.onnx");
    let (_, pinned, recipe_args) = recipe("modnet");
    let mut command = Command::new(venv_python());
    command.arg(root().join("scripts/quantize.py")).args(["--kind", "modnet", "--video"]);
    command.arg(fetched("assets/demovideo.mp4")).args(&recipe_args);
    let output = command.arg(fetched("models/modnet.onnx")).arg(&out).output().unwrap();
    assert!(output.status.success(), "{}", text(&output));
    assert_eq!(sha256(&out), pinned, "the same inputs and versions must give the pinned file");
    // It is never written over.
    let again = Command::new(venv_python())
        .arg(root().join("scripts/quantize.py"))
        .args(["--kind", "modnet", "--video"])
        .arg(fetched("assets/demovideo.mp4"))
        .arg(fetched("models/modnet.onnx"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success() && text(&again).contains("refusing to replace"), "{}", text(&again));
}

#[test]
fn precision_picks_the_file_and_auto_runs_int8_only_where_it_is_verified_and_allowed() {
    let int8 = fetched(&format!("models/{}", recipe("modnet").0));
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    home_with_int8(&home, Some(&int8));
    let clip = home.join("demo.mp4");
    let process = |precision: &str, out: &str| {
        let out = dir.path().join(out);
        let args = ["process", clip.to_str().unwrap(), "-o", out.to_str().unwrap(), "--model", "modnet"];
        let output = run(&home, &[&args[..], &["--max-frames", "2", "--precision", precision]].concat());
        assert!(output.status.success(), "{}", text(&output));
        text(&output)
    };
    assert!(process("int8", "a.mp4").contains("(int8)"), "int8 runs the INT8 file");
    assert!(process("fp32", "b.mp4").contains("(fp32)"));
    // MODNet's INT8 met the quality targets: auto runs it on a CPU.
    assert!(process("auto", "c.mp4").contains("(int8)"), "auto takes the verified INT8 file");
    let listed = text(&run(&home, &["models"]));
    assert!(listed.lines().any(|l| l.contains("modnet_int8.onnx") && l.contains("verified")), "{listed}");

    // A model whose INT8 file missed them is run float by auto, which says why.
    let manifest = home.join("models/models.toml");
    let text_now = std::fs::read_to_string(&manifest).unwrap();
    let refusing = text_now.replacen("auto = true", "auto = false\nnot_auto = \"it flickers more\"", 1);
    assert_ne!(refusing, text_now, "MODNet's recipe says `auto = true`: update this test");
    std::fs::remove_file(&manifest).unwrap();
    std::fs::write(&manifest, &refusing).unwrap();
    let output = process("auto", "d.mp4");
    assert!(output.contains("(fp32)") && output.contains("it flickers more"), "{output}");
    std::fs::write(&manifest, &text_now).unwrap();

    // ... and float once that file changed, saying why; asked for by name, the changed file is refused.
    let file = home.join("models").join(recipe("modnet").0);
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&file, bytes).unwrap();
    let output = process("auto", "e.mp4");
    assert!(output.contains("(fp32)") && output.contains("not the verified INT8 file"), "{output}");
    let out = dir.path().join("f.mp4");
    let refused = run(
        &home,
        &["process", clip.to_str().unwrap(), "-o", out.to_str().unwrap(), "--model", "modnet", "--precision", "int8"],
    );
    assert!(!refused.status.success() && text(&refused).contains("make setup"), "{}", text(&refused));
    assert!(!out.exists());
    let listed = text(&run(&home, &["models"]));
    assert!(listed.lines().any(|l| l.contains("modnet_int8.onnx") && l.contains("WRONG FILE")), "{listed}");
}

#[test]
fn int8_missing_is_an_error_that_says_how_to_make_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    home_with_int8(&home, None);
    let out = dir.path().join("x.mp4");
    let clip = home.join("demo.mp4");
    let args = ["process", clip.to_str().unwrap(), "-o", out.to_str().unwrap(), "--model", "modnet", "--precision"];
    let output = run(&home, &[&args[..], &["int8"]].concat());
    assert!(!output.status.success(), "{}", text(&output));
    assert!(text(&output).contains("no INT8 MODNet") && text(&output).contains("make setup"), "{}", text(&output));
    // auto runs float.
    let output = run(&home, &[&args[..], &["auto", "--max-frames", "2"]].concat());
    assert!(output.status.success() && text(&output).contains("(fp32)"), "{}", text(&output));
}

#[test]
fn models_quantize_makes_a_users_model_int8_beside_it() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home");
    home_with_int8(&home, None);
    // The quantiser of the checkout (its script and Python environment) serves the home.
    std::os::unix::fs::symlink(root().join("scripts"), home.join("scripts")).unwrap();
    std::os::unix::fs::symlink(root().join(".cache/venv"), home.join(".cache/venv")).unwrap();
    let mine = dir.path().join("mine.onnx");
    std::fs::copy(fetched("models/modnet.onnx"), &mine).unwrap();
    let clip = home.join("demo.mp4");
    let quantize = || {
        run(
            &home,
            &["models", "quantize", mine.to_str().unwrap(), "--model", "modnet", "--video", clip.to_str().unwrap()],
        )
    };
    let output = quantize();
    assert!(output.status.success(), "{}", text(&output));
    let int8 = dir.path().join("mine_int8.onnx");
    assert!(int8.is_file() && text(&output).contains("mine_int8.onnx"), "{}", text(&output));
    let again = quantize();
    assert!(!again.status.success() && text(&again).contains("never replaced"), "{}", text(&again));

    let out = dir.path().join("y.mp4");
    let args =
        ["process", clip.to_str().unwrap(), "-o", out.to_str().unwrap(), "--model", "modnet", "--max-frames", "2"];
    let output = run(&home, &[&args[..], &["--model-file", mine.to_str().unwrap(), "--precision", "int8"]].concat());
    assert!(output.status.success() && text(&output).contains("(int8)"), "{}", text(&output));
}
