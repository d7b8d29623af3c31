#!/usr/bin/env bash
# The package as its users get it: build the wheel and the sdist, check them, install the wheel alone into a
# fresh venv (torch from constraints.txt) and use it from outside the source tree.
#
#     bash .ci/package.sh        # from the repository root; .ci/run calls it before the test suite
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

python -m venv "$work/tools"
"$work/tools/bin/pip" install -q -c "$repo/.ci/constraints-packaging.txt" build twine
"$work/tools/bin/python" -m build -q --sdist --wheel --outdir "$work/dist" "$repo" >/dev/null
"$work/tools/bin/twine" check --strict "$work"/dist/*
wheel=$(ls "$work"/dist/*.whl)
python - "$wheel" <<'PY'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
need = ["fashion_cnn/kernels/csrc/conv_pool.c", "fashion_cnn/kernels/csrc/parallel.h", "fashion_cnn/serving/static/index.html",
        "fashion_cnn/inspection/templates/report.html"]
missing = [n for n in need if n not in names]
sys.exit(f"the wheel lacks {', '.join(missing)}" if missing else 0)
PY

python -m venv "$work/venv"
"$work/venv/bin/pip" install -q -c "$repo/constraints.txt" "$wheel"
cd "$(mktemp -d -p "$work")"
export PATH="$work/venv/bin:$PATH" FASHION_CNN_CACHE="$work/cache"
where=$(python -c "import fashion_cnn; print(fashion_cnn.__file__)")
case $where in "$work/venv/"*) ;; *) echo "fashion_cnn came from $where, not the installed wheel" >&2; exit 1 ;; esac
summary=$(fashion-cnn summary)
grep -q "333,526" <<<"$summary" || { echo "the summary does not count 333,526 parameters" >&2; exit 1; }
fashion-cnn build-kernels  # compiled from the wheel's own C sources
data="$repo/../shared/data/fashion-mnist"
if [ -d "$data" ]; then
    fashion-cnn train --data-dir "$data" --epochs 1 --limit 2000 --runs-dir runs --name smoke --quiet
    fashion-cnn evaluate runs/smoke --split test --data-dir "$data"
    fashion-cnn predict runs/smoke --index 0 --split test --data-dir "$data" >/dev/null
else
    echo "package smoke: no real data at $data; train/evaluate/predict not tried"
fi
echo "package smoke: wheel $(basename "$wheel") installed and used from outside the tree"
