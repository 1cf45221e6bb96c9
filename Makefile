# Two commands on a fresh machine: `make run` (install + launch) and `make test` (install + whole suite).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
GPU ?= 0
RUNTIME_EXTRA := $(if $(filter 1,$(GPU)),gpu,cpu)
OTHER_RUNTIME := $(if $(filter 1,$(GPU)),onnxruntime,onnxruntime-gpu)
# Where ../shared-style data lives (FER+, UTKFace, occluders); only train/eval need it.
OFER_DATA ?= ../shared/data
ARGS ?=
BENCH_ARGS ?= --frames 300 --repeat 3
# The README's model-card table was made with these settings (a fixed, seeded subset: a full run takes about an hour on 2 cores).
EVAL_ARGS ?= --max-images 1000 --curve-images 300 --max-utkface 300 --seed 0
PRESET ?= default
# train-all / pack: where the compact data pack lives, the device and the output folder.
PACK ?= pack
DEVICE ?= auto
TRAIN_OUT ?= runs/all
TRAIN_BENCH_ARGS ?=

.PHONY: run test lint bench eval cost demo doctor install-run install-dev clean system-deps train-bench pack train-all eval-full

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# Qt needs a few shared libraries that a bare Debian image lacks; install them when missing.
system-deps:
	@bash scripts/ensure_system_deps.sh

$(VENV)/.installed-run-$(RUNTIME_EXTRA): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip uninstall -q -y $(OTHER_RUNTIME) >/dev/null 2>&1 || true
	$(BIN)/python -m pip install -q -e ".[$(RUNTIME_EXTRA)]"
	$(BIN)/python -m pip install -q -e ".[meeting]" || echo "note: the virtual camera extra (pyvirtualcam) did not install; the app runs without it"
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip uninstall -q -y onnxruntime-gpu >/dev/null 2>&1 || true
	$(BIN)/python -m pip install -q -e ".[cpu,train,dev,meeting]"
	touch $@ $(VENV)/.installed-run-cpu

install-run: system-deps $(VENV)/.installed-run-$(RUNTIME_EXTRA)
install-dev: system-deps $(VENV)/.installed-dev

## make run: install the app and launch it on the shipped models (ARGS="--source demo" etc.)
run: install-run
	$(BIN)/ofer-live $(ARGS)

## make test: install everything and run ruff, import-linter and pytest
test: install-dev
	$(BIN)/ruff format --check ofer_live tests benchmarks scripts
	$(BIN)/ruff check ofer_live tests benchmarks scripts
	$(BIN)/lint-imports
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff format --check ofer_live tests benchmarks scripts
	$(BIN)/ruff check ofer_live tests benchmarks scripts
	$(BIN)/lint-imports

## make bench: per-stage latency and end-to-end FPS on the demo clip with the shipped models
bench: install-run
	$(BIN)/ofer-live bench $(BENCH_ARGS)

## make eval: reproduce the README's accuracy table from OFER_DATA (needs the train extra)
eval: install-dev
	$(BIN)/ofer-live eval --data $(OFER_DATA) --out report $(EVAL_ARGS)

## make eval-full: every labelled FER+ valid face (3,370), plus the input paths (crop alignment, detection, colour
## against gray) into report-full/ (about an hour on 2 cores)
eval-full: install-dev
	$(BIN)/ofer-live eval --data $(OFER_DATA) --out report-full --max-images 0 --curve-images 1000 --max-utkface 0 --seed 0
	$(BIN)/ofer-live eval --data $(OFER_DATA) --out report-full --input-paths --seed 0

## make cost: parameters, GFLOPs and ORT CPU latency (batch 1) of the three models of PRESET (tiny|default|paper)
cost: install-dev
	$(BIN)/python -m ofer_live.export.cost $(PRESET)

## make train-bench: train-step img/s of the three models, fp32 against bf16 (auto), side by side (TRAIN_BENCH_ARGS=--json)
train-bench: install-dev
	$(BIN)/ofer-live train bench $(TRAIN_BENCH_ARGS)

## make pack: the compact data pack (<= 60 MB) of OFER_DATA in PACK, for training anywhere with --data $(PACK)
pack: install-dev
	$(BIN)/ofer-live train pack --data $(OFER_DATA) --out $(PACK)

## make train-all DEVICE=cuda: train the three models from PACK, export to TRAIN_OUT/exported_models
train-all: install-dev
	PYTHON=$(BIN)/python PRESET=$(PRESET) DEVICE=$(DEVICE) bash scripts/train_all.sh $(PACK) $(TRAIN_OUT)

demo: install-run
	$(BIN)/ofer-live demo -o demo.mp4

doctor: install-run
	$(BIN)/ofer-live doctor

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache report report-full
