#!/usr/bin/env bash
# Reproduce the bundled generators in robustkit/generative/weights/ (CPU, ~1 h each when the
# machine is busy). Needs ROBUSTKIT_DATA pointing at a folder with MNIST/raw and FashionMNIST/raw.
# After a run, put the printed sha256 into robustkit/generative/zoo.py.
set -euo pipefail
: "${ROBUSTKIT_DATA:?set ROBUSTKIT_DATA to the folder holding MNIST/raw and FashionMNIST/raw}"
runs=${RUNS:-gan-runs}
weights="$(dirname "$0")/../robustkit/generative/weights"
mkdir -p "$runs" "$weights"
for dataset in mnist fashion-mnist; do
    OMP_NUM_THREADS=${OMP_NUM_THREADS:-1} robustkit train-gan \
        --dataset "$dataset" --arch dcgan --latent-dim 128 --width 64 --batch-size 64 \
        --iterations 1500 --sample-every 250 --seed 0 --half --out "$runs/$dataset-dcgan.pt"
    cp "$runs/$dataset-dcgan.pt" "$weights/$dataset-dcgan.pt"
    sha256sum "$weights/$dataset-dcgan.pt"
done
