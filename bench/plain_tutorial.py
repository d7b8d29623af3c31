"""The tutorial as a plain PyTorch script: what most users would write by hand, to compare whole runs against.

    python bench/plain_tutorial.py --data-dir ../shared/data/fashion-mnist --epochs 2

Reads the four IDX files with gzip + NumPy, scales to 0..1 as float32, splits 48,000 / 12,000 with
scikit-learn's ``train_test_split(test_size=0.2, random_state=42)``, builds the tutorial's CNN as an
``nn.Sequential`` (PyTorch's default initialisation), and trains with ``Adam(lr=1e-3)``, batch 32, a
``TensorDataset`` + ``DataLoader(shuffle=True)``, validating after each epoch as Keras' ``fit`` does, then
evaluates on the test set. It prints one JSON line: accuracies and the seconds of each part.
``bench/speed.py --whole-process`` runs it beside ``fashion-cnn train --epochs 2`` as separate processes.
"""

from __future__ import annotations

import argparse
import gzip
import json
import time
from pathlib import Path

STARTED = time.perf_counter()

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402


def read_idx(path: Path, offset: int) -> np.ndarray:
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), np.uint8, offset=offset)


def load(folder: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(folder / f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
    labels = read_idx(folder / f"{split}-labels-idx1-ubyte.gz", 8)
    return torch.from_numpy(images.astype(np.float32) / 255.0), torch.from_numpy(labels.astype(np.int64))


def model() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(3136, 100),
        nn.ReLU(),
        nn.Dropout(0.4),
        nn.Linear(100, 10),
    )


def train_epoch(net: nn.Module, optimizer: torch.optim.Optimizer, loader: DataLoader) -> None:
    """One pass over ``loader`` the way the PyTorch tutorials write it (also bench/speed.py's plain row)."""
    net.train()
    for xb, yb in loader:
        loss = F.cross_entropy(net(xb), yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()


@torch.no_grad()
def evaluate(net: nn.Module, loader: DataLoader) -> tuple[float, float]:
    net.eval()
    loss, correct, n = 0.0, 0, 0
    for x, y in loader:
        logits = net(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return loss / n, correct / n


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    imported = time.perf_counter()
    torch.manual_seed(args.seed)
    folder = Path(args.data_dir)
    x, y = load(folder, "train")
    x_test, y_test = load(folder, "t10k")
    x_train, x_val, y_train, y_val = train_test_split(x, y, test_size=0.2, random_state=42)
    net = model()
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    train_loader = DataLoader(TensorDataset(x_train, y_train), batch_size=32, shuffle=True)
    val_loader = DataLoader(TensorDataset(x_val, y_val), batch_size=32)
    loaded = time.perf_counter()
    for _ in range(args.epochs):
        train_epoch(net, optimizer, train_loader)
        val_loss, val_accuracy = evaluate(net, val_loader)
    trained = time.perf_counter()
    test_loss, test_accuracy = evaluate(net, DataLoader(TensorDataset(x_test, y_test), batch_size=32))
    done = time.perf_counter()
    print(
        json.dumps(
            {
                "val_accuracy": val_accuracy,
                "test_accuracy": test_accuracy,
                "import_seconds": imported - STARTED,
                "load_seconds": loaded - imported,
                "train_seconds": trained - loaded,
                "test_seconds": done - trained,
            }
        )
    )


if __name__ == "__main__":
    main()
