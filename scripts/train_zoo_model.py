"""Train the bundled MnistCNN and write robustkit/models/weights/mnist-cnn.pt.

Usage: python scripts/train_zoo_model.py [DATA_ROOT] [--epochs N]   (default root: $ROBUSTKIT_DATA)
Deterministic on CPU: fixed seed, 2 threads, no data-loader workers.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets, transforms

from robustkit.models.architectures import MnistCNN

SEED = 0
MEAN, STD = 0.1307, 0.3081
OUT = Path(__file__).resolve().parents[1] / "robustkit" / "models" / "weights" / "mnist-cnn.pt"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("root", nargs="?", default=os.environ.get("ROBUSTKIT_DATA"))
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if not args.root:
        parser.error("give the data root (folder holding MNIST/raw) or set ROBUSTKIT_DATA")

    torch.set_num_threads(2)
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    tf = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MEAN,), (STD,))])
    train = datasets.MNIST(args.root, train=True, download=False, transform=tf)
    test = datasets.MNIST(args.root, train=False, download=False, transform=tf)
    loader = DataLoader(
        train, batch_size=128, shuffle=True, generator=torch.Generator().manual_seed(SEED)
    )
    model = MnistCNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    start = time.time()
    for epoch in range(args.epochs):
        model.train()
        total = 0.0
        for x, y in loader:
            opt.zero_grad()
            loss = loss_fn(model(x), y)
            loss.backward()
            opt.step()
            total += loss.item() * len(y)
        acc = evaluate(model, test)
        print(
            f"epoch {epoch + 1}: loss {total / len(train):.4f} test acc {acc:.4f} "
            f"({time.time() - start:.0f}s)"
        )
    model.eval()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"test accuracy {evaluate(model, test):.4f}")
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes) sha256={digest}")


@torch.no_grad()
def evaluate(model: nn.Module, dataset: datasets.MNIST) -> float:
    """Top-1 accuracy on a dataset."""
    model.eval()
    correct = 0
    for x, y in DataLoader(dataset, batch_size=1000):
        correct += (model(x).argmax(1) == y).sum().item()
    return correct / len(dataset)


if __name__ == "__main__":
    main()
