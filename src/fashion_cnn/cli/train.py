"""``fashion-cnn train``: the tutorial end to end, writing ``runs/NAME/``.

    fashion-cnn train --data-dir ../shared/data/fashion-mnist --name tutorial
    fashion-cnn train --resume runs/tutorial --epochs 30

The flags are made from ``TrainConfig``'s fields (name, type, help, choices): a setting is declared once,
in ``fashion_cnn.experiment.config``. Only the options typed reach ``TrainConfig`` (every default is
``argparse.SUPPRESS``), so ``--resume`` can tell ``--batch-size 32`` from the default 32.
"""

from __future__ import annotations

from .. import runtime
from ..experiment.config import TrainConfig, flag_of
from ..experiment.recipes import RECIPES
from ..experiment.train import resume, train
from .common import add_config_args, add_json_arg, config_from_args, print_json, typed_settings


def register(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train a model (defaults: the tutorial's) and write a run directory",
        description="Train a model and write runs/NAME/. Every default is the Keras tutorial's.",
    )
    add_config_args(p)
    p.add_argument(
        "--no-hold-memory",
        dest="hold_memory",
        action="store_false",
        default=runtime.hold_memory_default(),
        help="leave glibc's malloc thresholds as they are (default: raise them for this process, ~5%% faster fp32 steps; "
        "FASHION_CNN_HOLD_MEMORY=0 makes this the default)",
    )
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (and --json)")
    p.add_argument(
        "--resume",
        metavar="RUN",
        help="continue RUN (runs/NAME) from its last completed epoch, with its own settings; --epochs may be raised",
    )
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    if args.hold_memory:
        runtime.hold_freed_memory()  # this process is the command's own: no fresh pages for every step's tensors
    given = typed_settings(args)
    verbose = not (args.quiet or args.json)
    if args.resume:
        # resume() refuses typed options that would change the run; untyped ones take the run's own values.
        result = resume(args.resume, verbose, **given)
    else:
        config = config_from_args(args)
        if verbose and config.recipe:
            print(recipe_line(config, set(given)))
        result = train(config, verbose=verbose)
    if args.json:
        print_json({"run_dir": str(result.run_dir), "metrics": result.metrics, "history": result.history.epochs})
    return 0


def recipe_line(config: TrainConfig, typed: set[str]) -> str:
    """``Recipe fast: --batch-size 256 --epochs 6 ...``: every value the recipe sets, as the flags that would set
    it, with the ones typed on the command line marked as overriding it."""
    parts = []
    for name in RECIPES[config.recipe]:
        value = getattr(config, name)
        flag = flag_of(name)
        text = flag if value is True else f"{flag} {value}"
        parts.append(text + (" (yours)" if name in typed else ""))
    extra = [f"{flag_of(n)} {getattr(config, n)}" for n in sorted(typed) if n not in RECIPES[config.recipe] and n != "recipe"]
    return f"Recipe {config.recipe}: " + (" ".join(parts) or "the tutorial's defaults") + (f"; and {' '.join(extra)}" if extra else "")
