"""The ``fashion-cnn`` command: one subcommand per step of the tutorial.

    fashion-cnn train --data-dir ../shared/data/fashion-mnist    # load, split, fit, evaluate; writes runs/NAME/
    fashion-cnn summary                                          # the layer table, 333,526 parameters
    fashion-cnn evaluate runs/NAME --split test                  # loss and accuracy
    fashion-cnn predict runs/NAME --index 0 --split val --lang ko

Each subcommand lives in its own module with a ``register(subparsers)`` function; the command line only
parses, calls the Python API and prints. Bad input ends with one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys

from ..errors import FashionCNNError
from . import evaluate, summary, train

COMMANDS = (train, summary, evaluate)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="fashion-cnn", description="Train, inspect and serve the Fashion-MNIST CNN of the Keras tutorial.")
    parser.add_argument("--version", action="version", version=f"fashion-cnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except FashionCNNError as e:
        print(f"fashion-cnn: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fashion-cnn: interrupted", file=sys.stderr)
        return 130
