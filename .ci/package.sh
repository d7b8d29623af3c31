#!/usr/bin/env bash
# The package as its users get it: build the sdist and, from it, the wheel; check both (twine, and what each must
# hold); then .ci/smoke.sh installs the wheel alone into a fresh venv and uses it from outside the source tree.
#
#     bash .ci/package.sh        # from the repository root; .ci/run calls it before the test suite
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
SECONDS=0

python -m venv "$work/tools"
"$work/tools/bin/pip" install -q -c "$repo/.ci/constraints-packaging.txt" build twine
# No flags: the sdist first, then the wheel from the unpacked sdist, so the wheel proves the sdist is complete
# (and nothing left in the tree's build/ can reach it). PIP_CONSTRAINT pins setuptools in the isolated build env.
PIP_CONSTRAINT="$repo/.ci/constraints-packaging.txt" "$work/tools/bin/python" -m build --outdir "$work/dist" "$repo" >"$work/build.log" 2>&1 ||
    { cat "$work/build.log" >&2; echo "package: python -m build failed (its log above)" >&2; exit 1; }
"$work/tools/bin/twine" check --strict "$work"/dist/*
sdist=$(ls "$work"/dist/*.tar.gz) wheel=$(ls "$work"/dist/*.whl)

# The wheel: every file of the package, its data included (the kernels' C sources, the page, the report's
# templates); kernels/harness/ is the kernels' C test bench, run from a checkout. The sdist: the whole test suite
# and what it reads, so `pytest` runs from an unpacked sdist (how distributions such as Debian or conda-forge
# test what they package). The lists are the source tree's own, so a new file is checked without editing this.
tracked=$(git -C "$repo" ls-files -- tests bench notebooks src conftest.py constraints.txt 2>/dev/null) || tracked=""
"$work/tools/bin/python" - "$repo" "$wheel" "$sdist" "$tracked" <<'PY'
import sys
import tarfile
import zipfile
from pathlib import Path

repo, wheel, sdist, tracked = Path(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4].split()
package = repo / "src" / "fashion_cnn"
shipped = [p.relative_to(package.parent).as_posix() for p in package.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
need = [name for name in shipped if not name.startswith("fashion_cnn/kernels/harness/")]
lacks = sorted(set(need) - set(zipfile.ZipFile(wheel).namelist()))
problems = [f"the wheel lacks {len(lacks)} file(s) of src/: {', '.join(lacks[:8])}"] if lacks else []
if tracked:  # a checkout (CI's clone); from an unpacked sdist, there is nothing to compare with
    with tarfile.open(sdist) as tar:
        held = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    lacks = sorted(set(tracked) - held)
    if lacks:
        problems.append(
            f"the sdist lacks {len(lacks)} file(s) the tests need, e.g. {', '.join(lacks[:6])}; "
            "list them in MANIFEST.in (graft tests, bench, notebooks and src/fashion_cnn/kernels/harness; "
            "include conftest.py constraints.txt .importlinter)"
        )
sys.exit("package: " + "\n package: ".join(problems) if problems else 0)
PY
echo "package: built and checked $(basename "$sdist") and $(basename "$wheel") in ${SECONDS}s"

bash "$repo/.ci/smoke.sh" "$wheel"
