"""The ``fashion-cnn`` command: one subcommand per step of the tutorial.

    fashion-cnn train --data-dir ../shared/data/fashion-mnist    # load, split, fit, evaluate; writes runs/NAME/
    fashion-cnn lr-find --data-dir ../shared/data/fashion-mnist  # the learning-rate range test: lr-find.png, the suggested --lr
    fashion-cnn summary                                          # the layer table, 333,526 parameters
    fashion-cnn evaluate runs/NAME --split test                  # loss and accuracy
    fashion-cnn predict runs/NAME --index 0 --split val --lang ko
    fashion-cnn report runs/NAME                                 # report.html; also plot-model, plot-history, show
    fashion-cnn runs                                             # one row per run; compare RUN RUN... overlays their curves
    fashion-cnn predict runs/NAME photo.jpg                      # your own pictures (see fashion_cnn.data.images)
    fashion-cnn serve runs/NAME                                  # JSON API and a page on http://127.0.0.1:8000/
    fashion-cnn export runs/NAME --format onnx                   # runs/NAME/model.onnx for onnxruntime
    fashion-cnn import best-cnn-model.keras                      # bring your Keras model (also .h5); export --format keras goes back
    fashion-cnn filters runs/NAME --untrained                    # inside the model: also feature-maps, gradcam, embedding
    fashion-cnn build-kernels                                    # compile the CPU kernels now (else at first use)

Each subcommand's whole implementation is one module here, named after it, with ``register(subparsers)``
and ``run(args)``; the command line only parses, calls the Python API and prints. Bad input ends with one
line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from .. import runtime
from ..errors import FashionCNNError
from ..version import __version__
from . import (
    build_kernels,
    calibrate,
    compare,
    embedding,
    evaluate,
    export,
    feature_maps,
    filters,
    gradcam,
    import_keras,
    lr_find,
    plot_history,
    plot_model,
    predict,
    report,
    runs,
    serve,
    show,
    summary,
    train,
)

#: In the tutorial's order, then past it.
COMMANDS = (
    train,
    summary,
    evaluate,
    calibrate,
    lr_find,
    predict,
    plot_model,
    plot_history,
    show,
    report,
    runs,
    compare,
    filters,
    feature_maps,
    gradcam,
    embedding,
    serve,
    export,
    import_keras,
    build_kernels,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fashion-cnn", description="Train, inspect and serve the Fashion-MNIST CNN of the Keras tutorial."
    )
    parser.add_argument("--version", action="version", version=f"fashion-cnn {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    parser.set_defaults(commands=sub.choices)  # each command's own parser, for its own usage in errors
    return parser


def command() -> int:
    """The ``fashion-cnn`` program (and ``python -m fashion_cnn``): ``main()``, then an exit without the garbage
    collector's last pass (``runtime.exit_without_collecting``: ~1 s of every ``train``'s exit). Tests call
    ``main`` and keep their collector."""
    code = main()
    runtime.exit_without_collecting()  # the process ends next
    return code


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # argparse fills a positional list (predict's IMAGE...) only before the first option; the files after
    # an option (predict RUN --top-k 3 a.jpg b.jpg) come back unparsed and belong to that list.
    if extra and isinstance(getattr(args, "images", None), list) and not any(e.startswith("-") for e in extra):
        args.images += extra
    elif extra:
        args.commands[args.command].error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.run(args) or 0
    except FashionCNNError as e:
        print(f"fashion-cnn: error: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("fashion-cnn: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader went away (``fashion-cnn ... | head``): what was asked for is done; say nothing more, and
        # point stdout at /dev/null so Python's own flush at exit does not fail (and print a traceback) again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # the shell's status for a process ended by SIGPIPE
