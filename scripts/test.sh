#!/usr/bin/env bash
# Set up and run the tests: the whole suite on TensorFlow, the backend-agnostic core
# (layers, losses, pair model, save/load, pair sampling) on JAX and PyTorch too.
# Slow tests run unless FAST=1.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh ".[dev,jax,serve]" "torch==2.13.0"
export TF_CPP_MIN_LOG_LEVEL=3
marks=()
[ "${FAST:-0}" = 1 ] && marks=(-m "not slow")
KERAS_BACKEND=tensorflow .venv/bin/python -m pytest -q "${marks[@]}"
KERAS_BACKEND=jax .venv/bin/python -m pytest -q -m core
KERAS_BACKEND=torch .venv/bin/python -m pytest -q -m core
