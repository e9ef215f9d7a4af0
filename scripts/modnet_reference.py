#!/usr/bin/env python3
"""Independent MODNet alpha, computed the way the MODNet authors' `onnx/inference_onnx.py` does it.

Usage: modnet_reference.py MODEL OUT_DIR IMAGE [IMAGE ...]
Writes OUT_DIR/<image stem>.png: the alpha at the image's size as a 16-bit grayscale PNG.

Follows the authors' script step by step (OpenCV read, BGR->RGB, (x - 127.5) / 127.5, `get_scale_factor`,
`cv2.resize(..., INTER_AREA)` down, ONNX Runtime, `cv2.resize(..., INTER_AREA)` back), except that the
matte stays in float instead of being cast to uint8 for their output file, so that the comparison measures
the pipeline and not that file format's truncation.
"""

import sys
from pathlib import Path

import cv2
import numpy as np
import onnxruntime


def get_scale_factor(im_h, im_w, ref_size):
    if max(im_h, im_w) < ref_size or min(im_h, im_w) > ref_size:
        if im_w >= im_h:
            im_rh = ref_size
            im_rw = int(im_w / im_h * ref_size)
        else:
            im_rw = ref_size
            im_rh = int(im_h / im_w * ref_size)
    else:
        im_rh = im_h
        im_rw = im_w
    im_rw = im_rw - im_rw % 32
    im_rh = im_rh - im_rh % 32
    return im_rw / im_w, im_rh / im_h


def main() -> None:
    model, out_dir, images = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    out_dir.mkdir(parents=True, exist_ok=True)
    session = onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"])
    input_name = session.get_inputs()[0].name
    output_name = session.get_outputs()[0].name
    for path in images:
        im = cv2.imread(path)
        im = cv2.cvtColor(im, cv2.COLOR_BGR2RGB)
        im = (im - 127.5) / 127.5
        im_h, im_w, _ = im.shape
        x, y = get_scale_factor(im_h, im_w, 512)
        im = cv2.resize(im, None, fx=x, fy=y, interpolation=cv2.INTER_AREA)
        im = np.transpose(im)
        im = np.swapaxes(im, 1, 2)
        im = np.expand_dims(im, axis=0).astype("float32")
        result = session.run([output_name], {input_name: im})
        matte = np.squeeze(result[0]).astype("float32")
        matte = cv2.resize(matte, dsize=(im_w, im_h), interpolation=cv2.INTER_AREA)
        alpha16 = np.round(np.clip(matte, 0.0, 1.0) * 65535.0).astype(np.uint16)
        cv2.imwrite(str(out_dir / (Path(path).stem + ".png")), alpha16)


if __name__ == "__main__":
    main()
