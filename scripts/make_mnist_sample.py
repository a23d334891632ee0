"""Write robustkit/data/files/mnist_test_1000.npz: 1,000 stratified MNIST test images.

Usage: python scripts/make_mnist_sample.py [DATA_ROOT]   (default: $ROBUSTKIT_DATA)
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import numpy as np
from torchvision.datasets import MNIST

SEED = 0
PER_CLASS = 100
OUT = Path(__file__).resolve().parents[1] / "robustkit" / "data" / "files" / "mnist_test_1000.npz"


def main() -> None:
    root = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ROBUSTKIT_DATA")
    if not root:
        sys.exit("give the data root (folder holding MNIST/raw) as argument or ROBUSTKIT_DATA")
    test = MNIST(root, train=False, download=False)
    images = test.data.numpy().astype(np.uint8)
    labels = test.targets.numpy().astype(np.int64)
    rng = np.random.default_rng(SEED)
    picks = [
        rng.choice(np.flatnonzero(labels == c), size=PER_CLASS, replace=False) for c in range(10)
    ]
    index = np.sort(np.concatenate(picks))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(OUT, images=images[index], labels=labels[index], indices=index)
    digest = hashlib.sha256(OUT.read_bytes()).hexdigest()
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(index)} images) sha256={digest}")


if __name__ == "__main__":
    main()
