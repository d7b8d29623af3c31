#!/usr/bin/env bash
# The wheel as a user gets it: install it alone (no extras) into a fresh venv, then use it from a folder outside
# the source tree: summary, a 1-epoch train on a toy Fashion-MNIST-format dataset, predict, evaluate, and the CPU
# kernels compiled from the installed package's own C sources.
#
#     bash .ci/smoke.sh dist/fashion_cnn-*.whl     # from the repository root; .ci/package.sh builds the wheel and calls it
set -euo pipefail
[ $# -eq 1 ] && [ -f "$1" ] || { echo "usage: bash .ci/smoke.sh WHEEL (one .whl file; got: $*)" >&2; exit 2; }
repo=$(cd "$(dirname "$0")/.." && pwd)
wheel=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
SECONDS=0

python -m venv "$work/venv"
"$work/venv/bin/pip" install -q -c "$repo/constraints.txt" "$wheel"
echo "smoke: installed $(basename "$wheel") in ${SECONDS}s"

mkdir "$work/use" && cd "$work/use"
# Nothing of the developer's: not the source tree, not their cache, data folder or Matplotlib settings.
unset PYTHONPATH FASHION_CNN_DATA FASHION_CNN_KERNELS
export PATH="$work/venv/bin:$PATH" FASHION_CNN_CACHE="$work/cache" MPLCONFIGDIR="$work/mpl"
where=$(python -c "import fashion_cnn; print(fashion_cnn.__file__)")
case $where in "$work"/venv/lib/python*/site-packages/fashion_cnn/*) ;; *) echo "smoke: fashion_cnn came from $where, not the installed wheel" >&2; exit 1 ;; esac

summary=$(fashion-cnn summary)
grep -q "333,526" <<<"$summary" || { printf '%s\n' "$summary" >&2; echo "smoke: the summary does not count 333,526 parameters" >&2; exit 1; }

# A toy dataset under the official file names (a local --data-dir is checked for its structure, not its SHA-256):
# class c is a bright bar at row 2c+4 over dim noise, 200 training and 50 test images.
python - toy <<'PY'
import gzip
import struct
import sys
from pathlib import Path

import numpy as np

folder = Path(sys.argv[1])
folder.mkdir()
rng = np.random.default_rng(0)


def write_idx(name: str, values: np.ndarray) -> None:
    header = struct.pack(">HBB", 0, 0x08, values.ndim) + struct.pack(f">{values.ndim}I", *values.shape)
    (folder / name).write_bytes(gzip.compress(header + values.tobytes(), mtime=0))


for prefix, n in (("train", 200), ("t10k", 50)):
    labels = rng.permutation(np.arange(n) % 10).astype(np.uint8)
    images = rng.integers(0, 60, (n, 28, 28), dtype=np.uint8)
    for image, c in zip(images, labels):
        image[2 * c + 4 : 2 * c + 6, 4:24] = 230
    write_idx(f"{prefix}-images-idx3-ubyte.gz", images)
    write_idx(f"{prefix}-labels-idx1-ubyte.gz", labels)
PY

fashion-cnn train --data-dir toy --epochs 1 --limit 100 --runs-dir runs --name smoke --quiet
[ -f runs/smoke/best.safetensors ] || { echo "smoke: train wrote no runs/smoke/best.safetensors" >&2; exit 1; }
fashion-cnn predict runs/smoke --index 0 --split test --data-dir toy
fashion-cnn evaluate runs/smoke --split test --data-dir toy
fashion-cnn build-kernels  # exit 1, naming the compiler's log, where the wheel's C sources do not build
echo "smoke: passed in ${SECONDS}s, from $where"
