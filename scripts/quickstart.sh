#!/usr/bin/env bash
# Set up, train on the embedded MNIST sample, then show random pairs of example digits.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export TF_CPP_MIN_LOG_LEVEL=2
.venv/bin/siamese train --data mnist-sample --output output
.venv/bin/siamese samples --data mnist-sample --output examples
.venv/bin/siamese pairs --model output/model.keras --input examples --output output/pairs.png
