#!/usr/bin/env python3
"""Prints the shared Python reference metrics for one prediction, for the tests' cross-check.

Usage: metrics_crosscheck.py REFERENCE_DIR PRED.png GT.png [MASK.png]
REFERENCE_DIR holds `metrics.py` (../shared/eval/reference). Prints one JSON object.
"""

import json
import sys

import cv2
import numpy as np

sys.path.insert(0, sys.argv[1])
import metrics  # noqa: E402


def load(path):
    return cv2.imread(path, cv2.IMREAD_GRAYSCALE).astype(np.float64) / 255.0


pred, gt = load(sys.argv[2]), load(sys.argv[3])
mask = load(sys.argv[4]) > 0.5 if len(sys.argv) > 4 else None
print(json.dumps({
    "sad": metrics.sad(pred, gt, mask),
    "mse_x1e3": metrics.mse(pred, gt, mask) * 1e3,
    "mad_x1e3": metrics.mad(pred, gt, mask) * 1e3,
    "grad": metrics.grad(pred, gt, mask),
    "conn": metrics.conn(pred, gt, mask),
}))
