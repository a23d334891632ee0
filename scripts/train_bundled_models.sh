#!/usr/bin/env bash
# Reproduce the adversarially trained / Fashion-MNIST models of the bundled zoo with `robustkit train`.
#
# Usage: scripts/train_bundled_models.sh [DATA_ROOT]   (default: $ROBUSTKIT_DATA; needs MNIST/raw
# and FashionMNIST/raw). One CPU thread per run (faster than two on a shared 2-core machine) and
# fixed seeds, so each run is deterministic. Writes build/zoo/NAME.{pt,json,metrics.csv,ckpt.pt}
# and copies NAME.pt and NAME.json into robustkit/models/weights/; then update the sha256 of the
# entry in robustkit/models/zoo.py (printed at the end, also in NAME.json).
set -euo pipefail

ROOT="${1:-${ROBUSTKIT_DATA:?give DATA_ROOT or set ROBUSTKIT_DATA}}"
HERE="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$HERE/build/zoo"
WEIGHTS="$HERE/robustkit/models/weights"
export OMP_NUM_THREADS=1
mkdir -p "$BUILD"

train() {  # NAME, then robustkit train options
  local name="$1"
  shift
  robustkit train --data-root "$ROOT" --out "$BUILD/$name.pt" --seed 0 "$@"
  cp "$BUILD/$name.pt" "$BUILD/$name.json" "$WEIGHTS/"
  echo "$name sha256 $(sha256sum "$WEIGHTS/$name.pt" | cut -d' ' -f1)"
}

# Robust MNIST, L-inf eps 0.3: PGD-3 adversarial training, eps ramped up over the first epoch.
# (Fast FGSM-RS at eps 0.3 overfits catastrophically on this net within 1-2 epochs.)
train mnist-robust --model arch:fast-mnist --dataset mnist \
  --method pgd --steps 3 --eps 0.3 --eps-warmup 1 --epochs 6 --lr 5e-3

# Fashion-MNIST: natural, and PGD-AT at L-inf eps 0.1
train fashion-cnn --model arch:fast-mnist --dataset fashion-mnist \
  --method natural --eps 0.1 --epochs 5 --lr 5e-3
train fashion-robust --model arch:fast-mnist --dataset fashion-mnist \
  --method pgd --steps 2 --eps 0.1 --eps-warmup 1 --epochs 4 --lr 5e-3
