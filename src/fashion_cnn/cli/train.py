"""``fashion-cnn train``: the tutorial end to end, writing ``runs/NAME/``."""

from __future__ import annotations

import argparse
from dataclasses import fields

from ..training.recipe import TrainConfig, resume, train
from .common import add_data_args, add_json_arg, print_json


def register(sub) -> None:
    d = TrainConfig()
    p = sub.add_parser("train", help="train a model (defaults: the tutorial's) and write a run directory",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    _record_given(p)
    add_data_args(p)
    p.add_argument("--model", default=d.model, help="architecture name (see 'fashion-cnn summary --list')")
    p.add_argument("--epochs", type=int, default=d.epochs, help="most epochs")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="images per step")
    p.add_argument("--lr", type=float, default=d.lr, help="Adam learning rate")
    p.add_argument("--schedule", choices=("constant", "onecycle"), default=d.schedule, help="learning-rate schedule (onecycle: peak --lr)")
    p.add_argument("--adam-epsilon", type=float, default=d.adam_epsilon, help="Adam epsilon (Keras' default)")
    p.add_argument("--val-fraction", type=float, default=d.val_fraction, help="share of training data held out for validation")
    p.add_argument("--split-seed", type=int, default=d.split_seed, help="random_state of the train/validation split")
    p.add_argument("--seed", type=int, default=d.seed, help="seed for initialisation, shuffling and dropout")
    p.add_argument("--patience", type=int, default=d.patience, help="early-stopping patience (epochs)")
    p.add_argument("--monitor", default=d.monitor, help="metric for checkpoint and early stopping")
    p.add_argument("--no-restore-best", dest="restore_best_weights", action="store_false", help="keep the last epoch's weights instead of the best")
    p.add_argument("--limit", type=int, default=d.limit, help="train on only the first N training images (quick trials)")
    p.add_argument("--device", default=d.device, help="auto, cpu, cuda or mps")
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default=d.precision, help="auto: bf16 autocast where the hardware has native bf16, else fp32")
    p.add_argument("--threads", type=int, default=d.threads, help="CPU threads (default: all cores)")
    p.add_argument("--runs-dir", default=d.runs_dir, help="parent folder of run directories")
    p.add_argument("--name", default=d.name, help="run directory name (default: MODEL-DATE-TIME)")
    p.add_argument("--quiet", action="store_true", help="print nothing but errors (and --json)")
    p.add_argument("--resume", metavar="RUN", help="continue RUN (runs/NAME) from its last completed epoch, with its own settings; --epochs may be raised")
    add_json_arg(p)
    p.set_defaults(run=run)


def run(args) -> int:
    config = TrainConfig(**{f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    verbose = not (args.quiet or args.json)
    if args.resume:
        # resume() refuses the flags typed that would change the run; the others' defaults do not count.
        given = {f.name: getattr(config, f.name) for f in fields(TrainConfig) if f.name in getattr(args, GIVEN, ())}
        result = resume(args.resume, verbose, **given)
    else:
        result = train(config, verbose=verbose)
    if args.json:
        print_json({"run_dir": str(result.run_dir), "metrics": result.metrics, "history": result.history.epochs})
    return 0


GIVEN = "_given_options"


def _record_given(parser: argparse.ArgumentParser) -> None:
    """Make ``parser`` note in ``args._given_options`` the options typed, so ``--resume`` can tell
    ``--batch-size 32`` from the default 32."""

    def noting(action_class):
        class Noting(action_class):
            def __call__(self, parser, namespace, values, option_string=None):
                super().__call__(parser, namespace, values, option_string)
                setattr(namespace, GIVEN, {*getattr(namespace, GIVEN, ()), self.dest})

        return Noting

    store = noting(argparse._StoreAction)
    for name, action_class in ((None, store), ("store", store), ("store_true", noting(argparse._StoreTrueAction)),
                               ("store_false", noting(argparse._StoreFalseAction))):
        parser.register("action", name, action_class)
