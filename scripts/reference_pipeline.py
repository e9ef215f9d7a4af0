#!/usr/bin/env python3
"""The pipeline a user would otherwise run: the models' authors' demo loop in Python, for `mattecam bench
--reference` to compare against.

One loop, no overlap, as in MODNet's `inference_onnx.py` / webcam demo and RVM's `inference.py`: read a
frame with OpenCV, (MODNet) resize with INTER_AREA to the model size and normalise, run ONNX Runtime,
(MODNet) resize the matte back with INTER_AREA, composite over a colour with NumPy, next frame.

The ONNX Runtime session gets the app's options (same intra-op thread count, one inter-op thread,
spinning off, all graph optimisations), so the comparison is about the pipeline around the model.

Usage: reference_pipeline.py --model modnet|rvm --model-file F --input CLIP --frames N --threads T
       [--ref-size 512] [--downsample-ratio R] [--background R,G,B]
       [--spinning] [--optimization disable|basic|extended|all] [--no-arena]
Prints one JSON line: fps (after the first WARMUP_FRAMES frames), frames, model_ms_p50, frame_ms_p50.
"""

import argparse
import json
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort

# As `mattecam bench`: the first frames pay for start-up and are not timed.
WARMUP_FRAMES = 3


OPTIMIZATION = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


def make_session(path: str, threads: int, spinning: bool, optimization: str, arena: bool) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = OPTIMIZATION[optimization]
    options.enable_cpu_mem_arena = arena
    spin = "1" if spinning else "0"
    options.add_session_config_entry("session.intra_op.allow_spinning", spin)
    options.add_session_config_entry("session.inter_op.allow_spinning", spin)
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def modnet_size(im_h: int, im_w: int, ref_size: int) -> tuple[int, int]:
    """`get_scale_factor` of the authors' inference_onnx.py, as a size."""
    if max(im_h, im_w) < ref_size or min(im_h, im_w) > ref_size:
        if im_w >= im_h:
            im_rh, im_rw = ref_size, int(im_w / im_h * ref_size)
        else:
            im_rw, im_rh = ref_size, int(im_h / im_w * ref_size)
    else:
        im_rh, im_rw = im_h, im_w
    return max(im_rw - im_rw % 32, 32), max(im_rh - im_rh % 32, 32)


class Modnet:
    def __init__(self, session: ort.InferenceSession, ref_size: int):
        self.session = session
        self.ref_size = ref_size
        self.input_name = session.get_inputs()[0].name
        self.output_name = session.get_outputs()[0].name

    def step(self, rgb: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, float]:
        im_h, im_w = rgb.shape[:2]
        small = cv2.resize(rgb, modnet_size(im_h, im_w, self.ref_size), interpolation=cv2.INTER_AREA)
        x = (small.astype(np.float32) - 127.5) / 127.5
        x = np.transpose(x, (2, 0, 1))[None]
        started = time.perf_counter()
        matte = self.session.run([self.output_name], {self.input_name: x})[0]
        model_ms = (time.perf_counter() - started) * 1000.0
        alpha = cv2.resize(np.squeeze(matte), (im_w, im_h), interpolation=cv2.INTER_AREA)[..., None]
        composite = rgb * alpha + background * (1.0 - alpha)
        return composite.astype(np.uint8), model_ms


class Rvm:
    def __init__(self, session: ort.InferenceSession, downsample_ratio: float):
        self.session = session
        self.ratio = np.array([downsample_ratio], dtype=np.float32)
        self.state = [np.zeros((1, 1, 1, 1), dtype=np.float32)] * 4

    def step(self, rgb: np.ndarray, background: np.ndarray) -> tuple[np.ndarray, float]:
        src = np.transpose(rgb, (2, 0, 1))[None].astype(np.float32) / 255.0
        feed = {"src": src, "downsample_ratio": self.ratio}
        feed.update({f"r{i + 1}i": s for i, s in enumerate(self.state)})
        started = time.perf_counter()
        fgr, pha, *self.state = self.session.run(["fgr", "pha", "r1o", "r2o", "r3o", "r4o"], feed)
        model_ms = (time.perf_counter() - started) * 1000.0
        composite = fgr[0] * pha[0] + (background / 255.0).reshape(3, 1, 1) * (1.0 - pha[0])
        composite = (np.transpose(composite, (1, 2, 0)) * 255.0).astype(np.uint8)
        return composite, model_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=["modnet", "rvm"], required=True)
    parser.add_argument("--model-file", required=True)
    parser.add_argument("--input", required=True)
    parser.add_argument("--frames", type=int, required=True)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--ref-size", type=int, default=512)
    parser.add_argument("--downsample-ratio", type=float, default=0.25)
    parser.add_argument("--background", default="120,255,155")
    parser.add_argument("--spinning", action="store_true")
    parser.add_argument("--optimization", choices=sorted(OPTIMIZATION), default="all")
    parser.add_argument("--no-arena", action="store_true")
    args = parser.parse_args()

    session = make_session(args.model_file, args.threads, args.spinning, args.optimization, not args.no_arena)
    model = Modnet(session, args.ref_size) if args.model == "modnet" else Rvm(session, args.downsample_ratio)
    background = np.array([float(v) for v in args.background.split(",")], dtype=np.float32)
    capture = cv2.VideoCapture(args.input)
    if not capture.isOpened():
        sys.exit(f"reference: cannot open {args.input}")

    model_ms, frame_ms = [], []
    frames, steady_from = 0, None
    while frames < args.frames:
        started = time.perf_counter()
        ok, bgr = capture.read()
        if not ok:
            break
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        composite, ms = model.step(rgb, background)
        frames += 1
        if frames == WARMUP_FRAMES:
            steady_from = time.perf_counter()
        if frames > WARMUP_FRAMES:
            model_ms.append(ms)
            frame_ms.append((time.perf_counter() - started) * 1000.0)
    elapsed = time.perf_counter() - steady_from if steady_from else 0.0
    timed = frames - WARMUP_FRAMES
    if timed < 1 or elapsed <= 0.0:
        sys.exit(f"reference: only {frames} frames could be read from {args.input}; need more than {WARMUP_FRAMES}")
    print(
        json.dumps(
            {
                "fps": timed / elapsed,
                "frames": frames,
                "model_ms_p50": float(np.median(model_ms)),
                "frame_ms_p50": float(np.median(frame_ms)),
                "threads": args.threads,
                "onnxruntime": ort.__version__,
                "opencv": cv2.__version__,
            }
        )
    )


if __name__ == "__main__":
    main()
