#!/usr/bin/env bash
# Create .venv and install keras-siamese into it. Extra pip arguments are passed on,
# e.g. `bash scripts/setup.sh ".[dev]" "torch==2.13.0"`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e "${@:-.}"
