"""``fashion-cnn build-kernels``: compile the CPU kernels now (else the first command that uses them does).

fashion-cnn build-kernels          # prints how the blocks will run; exit 1, naming the compiler's log, if they do not build
"""

from __future__ import annotations

from ..kernels import build
from ..kernels.build import library_folder
from .common import add_json_arg, print_json


def register(sub) -> None:
    p = sub.add_parser("build-kernels", help="compile the CPU kernels for the conv blocks now (else at their first use)")
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    status = build()  # KernelBuildError (one line, with the log's path) where they do not build
    if args.json:
        print_json({"kernels": status, "cache": str(library_folder())})
    else:
        print(f"{status}; cached in {library_folder()}")
    return 0
