#!/usr/bin/env python3
"""Quantise a matting model to INT8 with ONNX Runtime's own static quantiser, reproducibly.

    quantize.py --kind modnet|rvm|bgmv2 --video CLIP [--exclude OP_OR_PREFIX ...] MODEL_IN MODEL_OUT

Run by `scripts/setup.py` (for each `[model.int8]` recipe of `models/models.toml`) and by
`mattecam models quantize FILE`, in the setup's Python environment (`.cache/venv`: onnx, onnxruntime, numpy).

Steps:
1. The model is converted to opset 13 (per-channel `DequantizeLinear` needs it) and pre-processed by
   `quant_pre_process(skip_symbolic_shape=True)`.
2. Calibration: frames of CLIP (decoded by ffmpeg as raw YUV, converted and resized here in numpy, so no
   SIMD scaler's rounding enters) are run through the float model. RVM runs them in order, fed the float
   model's own recurrent state, at each downsample ratio the app uses. BGMv2 gets the first frame as plate.
3. The MinMax ranges are rounded to 3 significant digits before quantising. The float runs differ in their
   last bits between CPUs (kernels differ by instruction set); the rounding makes the quantised file the
   same everywhere, so its sha256 can be pinned.
4. QDQ format, per-channel QInt8 weights, QUInt8 activations; operators whose node names start with an
   `--exclude` prefix (or whose op type is named) stay in float.
The output is written to a working name and renamed into place, never over an existing file.
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import onnx
from onnx import version_converter
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.calibrate import TensorsData, create_calibrator, save_tensors_data
from onnxruntime.quantization.shape_inference import quant_pre_process

CALIBRATION_FRAMES = 8
# RVM: the ratios the app uses on HD input (live default 0.25, evaluation 0.375).
RVM_RATIOS = (0.25, 0.375)
SIGNIFICANT_DIGITS = 3


def fail(msg: str) -> "None":
    print(f"quantize: error: {msg}", file=sys.stderr, flush=True)
    sys.exit(1)


def say(msg: str) -> None:
    print(f"quantize: {msg}", flush=True)


def decode_frames(video: Path, count: int) -> list[np.ndarray]:
    """`count` frames spread evenly over the clip, RGB float32 HxWx3 in [0, 1]."""
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets", "-show_entries",
         "stream=width,height,nb_read_packets", "-of", "json", f"file:{video}"],
        capture_output=True, text=True,
    )
    if probe.returncode != 0:
        fail(f"ffprobe cannot read {video}: {probe.stderr.strip()}")
    stream = json.loads(probe.stdout)["streams"][0]
    width, height, total = int(stream["width"]), int(stream["height"]), int(stream["nb_read_packets"])
    if width % 2 or height % 2:
        fail(f"{video} is {width}x{height}; calibration needs even sides")
    wanted = {round(i * (total - 1) / max(count - 1, 1)) for i in range(count)}
    # Raw YUV 4:2:0 as decoded (H.264 decoding is bit-exact); every frame is read, the wanted ones kept.
    proc = subprocess.Popen(
        ["ffmpeg", "-v", "error", "-nostdin", "-protocol_whitelist", "file,pipe", "-i", f"file:{video}",
         "-f", "rawvideo", "-pix_fmt", "yuv420p", "pipe:1"],
        stdout=subprocess.PIPE,
    )
    size = width * height * 3 // 2
    frames = []
    index = 0
    while True:
        raw = proc.stdout.read(size)
        if len(raw) < size:
            break
        if index in wanted:
            frames.append(yuv420_to_rgb(np.frombuffer(raw, np.uint8), width, height))
        index += 1
    proc.wait()
    if len(frames) < count:
        fail(f"{video} gave {len(frames)} of the {count} calibration frames")
    return frames


def yuv420_to_rgb(raw: np.ndarray, width: int, height: int) -> np.ndarray:
    """BT.709 limited range (the demo clip's tags) to RGB, rounded to 8 bits as a decoder would give them."""
    y = raw[: width * height].reshape(height, width).astype(np.float32)
    chroma = (height // 2) * (width // 2)
    u = raw[width * height : width * height + chroma].reshape(height // 2, width // 2).astype(np.float32)
    v = raw[width * height + chroma :].reshape(height // 2, width // 2).astype(np.float32)
    u = u.repeat(2, axis=0).repeat(2, axis=1) - 128.0
    v = v.repeat(2, axis=0).repeat(2, axis=1) - 128.0
    y = (y - 16.0) * np.float32(255.0 / 219.0)
    scale = np.float32(255.0 / 224.0)
    r = y + np.float32(1.5748) * scale * v
    g = y - np.float32(0.1873) * scale * u - np.float32(0.4681) * scale * v
    b = y + np.float32(1.8556) * scale * u
    rgb = np.stack([r, g, b], axis=-1)
    return np.clip(np.rint(rgb), 0, 255).astype(np.float32) / np.float32(255.0)


def resize_bilinear(image: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize by gathers and elementwise sums (no BLAS, so exact everywhere)."""
    in_h, in_w = image.shape[:2]

    def taps(n_out: int, n_in: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        pos = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
        pos = np.clip(pos, 0, n_in - 1)
        lo = np.floor(pos).astype(np.int64)
        hi = np.minimum(lo + 1, n_in - 1)
        return lo, hi, (pos - lo).astype(np.float32)

    y0, y1, wy = taps(out_h, in_h)
    x0, x1, wx = taps(out_w, in_w)
    rows = image[y0] * (1 - wy)[:, None, None] + image[y1] * wy[:, None, None]
    return rows[:, x0] * (1 - wx)[None, :, None] + rows[:, x1] * wx[None, :, None]


def nchw(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image.transpose(2, 0, 1)[None]).astype(np.float32)


def modnet_inputs(frames: list[np.ndarray], model: onnx.ModelProto) -> list[dict]:
    """As the app feeds MODNet: shorter side 512, both sides multiples of 32, RGB in [-1, 1]."""
    name = model.graph.input[0].name
    feeds = []
    for frame in frames:
        h, w = frame.shape[:2]
        scale = 512 / min(h, w)
        out_h, out_w = max(32, int(h * scale) // 32 * 32), max(32, int(w * scale) // 32 * 32)
        feeds.append({name: nchw(resize_bilinear(frame, out_h, out_w) * 2.0 - 1.0)})
    return feeds


def rvm_inputs(frames: list[np.ndarray], model_path: Path) -> list[dict]:
    """Each frame with the recurrent state the float model left after the frames before it, per ratio."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    feeds = []
    for ratio in RVM_RATIOS:
        state = [np.zeros((1, 1, 1, 1), np.float32) for _ in range(4)]
        for frame in frames:
            feed = {"src": nchw(frame), "downsample_ratio": np.array([ratio], np.float32)}
            feed.update({f"r{i + 1}i": state[i] for i in range(4)})
            feeds.append(feed)
            outputs = session.run(["r1o", "r2o", "r3o", "r4o"], feed)
            state = [np.asarray(o) for o in outputs]
    return feeds


def bgmv2_inputs(frames: list[np.ndarray], model: onnx.ModelProto) -> list[dict]:
    """The first frame stands in for the clean plate: most of its background is the later frames'."""
    names = [i.name for i in model.graph.input]
    return [{names[0]: nchw(frame), names[1]: nchw(frames[0])} for frame in frames]


class Feeds(CalibrationDataReader):
    def __init__(self, feeds: list[dict]):
        self.feeds = feeds
        self.next = 0

    def get_next(self):
        if self.next >= len(self.feeds):
            return None
        self.next += 1
        return self.feeds[self.next - 1]

    def rewind(self):
        self.next = 0


def round_significant(values, digits: int):
    """Rounds away from zero at `digits` significant digits, so a range only ever widens."""

    def one(x: float) -> float:
        if x == 0 or not math.isfinite(x):
            return x
        exponent = math.floor(math.log10(abs(x))) - digits + 1
        step = 10.0**exponent
        return math.copysign(math.ceil(abs(x) / step - 1e-9) * step, x)

    array = np.asarray(values)
    return np.array([one(float(x)) for x in array.ravel()], dtype=array.dtype).reshape(array.shape)


METHODS = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
           "entropy": CalibrationMethod.Entropy}


def calibrate(model_path: Path, feeds: list[dict], work: Path, method: str, percentile: float) -> Path:
    calibrator = create_calibrator(
        model_path,
        augmented_model_path=str(work / "augmented.onnx"),
        calibrate_method=METHODS[method],
        extra_options={"percentile": percentile, "symmetric": False} if method == "percentile" else {},
    )
    calibrator.collect_data(Feeds(feeds))
    ranges = calibrator.compute_data()
    rounded = {}
    for name in sorted(ranges.data):
        data = ranges.data[name]
        low, high = data.range_value
        data = type(data)(lowest=round_significant(low, SIGNIFICANT_DIGITS), highest=round_significant(high, SIGNIFICANT_DIGITS))
        rounded[name] = data
    table = work / "ranges.json"
    save_tensors_data(TensorsData(METHODS[method], rounded), table)
    return table


def excluded_nodes(model: onnx.ModelProto, patterns: list[str]) -> list[str]:
    return sorted(
        node.name for node in model.graph.node if any(node.op_type == p or node.name.startswith(p) for p in patterns)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--kind", required=True, choices=["modnet", "rvm", "bgmv2"])
    parser.add_argument("--video", required=True, type=Path, help="calibration clip")
    parser.add_argument("--frames", type=int, default=CALIBRATION_FRAMES)
    parser.add_argument("--exclude", action="append", default=[], help="node-name prefix or op type kept in float")
    parser.add_argument("--threads", type=int, default=1, help="calibration threads")
    parser.add_argument("--method", choices=sorted(METHODS), default="minmax", help="calibration method")
    parser.add_argument("--percentile", type=float, default=99.999, help="with --method percentile")
    parser.add_argument("model_in", type=Path)
    parser.add_argument("model_out", type=Path)
    args = parser.parse_args()
    if args.model_out.exists():
        fail(f"{args.model_out} exists; refusing to replace it (move it away first)")
    if not args.model_in.is_file():
        fail(f"{args.model_in} is not a file")
    os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    with tempfile.TemporaryDirectory(prefix="mattecam-quantize.") as tmp:
        work = Path(tmp)
        model = onnx.load(str(args.model_in))
        opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
        if opset < 13:
            model = version_converter.convert_version(model, 13)
        converted = work / "opset13.onnx"
        onnx.save(model, str(converted))
        prepared = work / "prepared.onnx"
        quant_pre_process(str(converted), str(prepared), skip_symbolic_shape=True)
        prepared_model = onnx.load(str(prepared))
        frames = decode_frames(args.video, args.frames)
        if args.kind == "modnet":
            feeds = modnet_inputs(frames, prepared_model)
        elif args.kind == "rvm":
            feeds = rvm_inputs(frames, prepared)
        else:
            feeds = bgmv2_inputs(frames, prepared_model)
        say(f"calibrating {args.model_in.name} on {len(feeds)} inputs from {args.video.name}")
        table = calibrate(prepared, feeds, work, args.method, args.percentile)
        exclude = excluded_nodes(prepared_model, args.exclude)
        if args.exclude:
            say(f"{len(exclude)} nodes kept in float ({', '.join(args.exclude)})")
        output = work / "int8.onnx"
        quantize_static(
            str(prepared),
            str(output),
            calibration_data_reader=None,
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            nodes_to_exclude=exclude,
            calibrate_method=METHODS[args.method],
            calibration_cache_path=str(table),
        )
        args.model_out.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(output, args.model_out)
        except FileExistsError:
            fail(f"{args.model_out} appeared meanwhile; refusing to replace it")
        except OSError:
            fd = os.open(args.model_out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            with os.fdopen(fd, "wb") as out, open(output, "rb") as src:
                out.write(src.read())
    say(f"wrote {args.model_out}")


if __name__ == "__main__":
    main()
